//! The order in which `rsfm run` starts ready stages, on the paper study's plan: the heaviest
//! chain of estimated training work first, and never a stage before one it needs.

use crate::paper_plan::paper_plan;
use rsfm_harness::scheduler::priority::start_order;

#[tokio::test]
async fn the_largest_pretraining_starts_first_and_needs_come_before_their_stages() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, plan) = paper_plan(dir.path()).await;
    let order = start_order(&plan);
    assert_eq!(order.len(), plan.stages.len());
    let first = &plan.stages[order[0]].stage;
    assert_eq!(
        (first.kind.as_str(), first.name.as_str()),
        ("mae-pretrain", "pretrain@vit-2.4b"),
        "the 2.4B pretraining heads the longest chain"
    );
    let position: Vec<usize> = {
        let mut at = vec![0; order.len()];
        for (pos, &i) in order.iter().enumerate() {
            at[i] = pos;
        }
        at
    };
    for (i, planned) in plan.stages.iter().enumerate() {
        for &need in &planned.needs {
            assert!(
                position[need] < position[i],
                "{} comes before {}, which needs it",
                plan.stages[need].stage.name,
                planned.stage.name
            );
        }
    }
}
