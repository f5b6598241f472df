//! Dependency order of a recipe's stages.

use std::collections::HashMap;

use crate::recipe::Stage;

/// The stages sorted so that each comes after the stages it needs, otherwise keeping recipe
/// order. The recipe layer already rejects cycles and unknown `needs`; this re-checks both.
pub fn topological(stages: &[Stage]) -> anyhow::Result<Vec<&Stage>> {
    let index: HashMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut state = vec![0u8; stages.len()]; // 0 new, 1 on the stack, 2 done
    let mut out = Vec::with_capacity(stages.len());
    fn visit<'a>(
        i: usize,
        stages: &'a [Stage],
        index: &HashMap<&str, usize>,
        state: &mut [u8],
        out: &mut Vec<&'a Stage>,
    ) -> anyhow::Result<()> {
        match state[i] {
            2 => return Ok(()),
            1 => anyhow::bail!(
                "{}: stage `{}` is part of a cycle",
                stages[i].location,
                stages[i].name
            ),
            _ => {}
        }
        state[i] = 1;
        for need in &stages[i].needs {
            let j = *index.get(need.as_str()).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: stage `{}` needs unknown stage `{need}`",
                    stages[i].location,
                    stages[i].name
                )
            })?;
            visit(j, stages, index, state, out)?;
        }
        state[i] = 2;
        out.push(&stages[i]);
        Ok(())
    }
    for i in 0..stages.len() {
        visit(i, stages, &index, &mut state, &mut out)?;
    }
    Ok(out)
}
