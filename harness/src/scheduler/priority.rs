//! The order in which the scheduler looks at ready stages: the stage heading the longest chain
//! of estimated training work first (critical path), so that a long stage does not start last
//! while the other slots sit idle.

use crate::plan::estimate::training_flops;
use crate::plan::Plan;

/// Stage indices, most estimated work first: a stage's own training FLOPs (none when cached or
/// not a training stage) plus those of its heaviest chain of dependents. Ties keep plan order.
pub fn start_order(plan: &Plan) -> Vec<usize> {
    let own: Vec<f64> = plan
        .stages
        .iter()
        .map(|s| {
            if s.cached {
                0.0
            } else {
                training_flops(s).unwrap_or(0.0)
            }
        })
        .collect();
    let mut chain = own.clone();
    // Every stage comes after the stages it needs, so walking backwards finishes each chain
    // before it is pushed into the stages it needs.
    for i in (0..plan.stages.len()).rev() {
        for &j in &plan.stages[i].needs {
            chain[j] = chain[j].max(own[j] + chain[i]);
        }
    }
    let mut order: Vec<usize> = (0..plan.stages.len()).collect();
    order.sort_by(|&a, &b| chain[b].total_cmp(&chain[a]));
    order
}
