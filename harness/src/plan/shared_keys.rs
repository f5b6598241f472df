//! Stages of one experiment whose keys are equal: one computation under several names (two
//! stages with the same command, or a matrix axis the stage never uses). The cache and the
//! store keep one entry and one record for a key, so the plan says so, naming the axes that
//! never reach the key, rather than letting a name vanish from `rsfm results`.

use std::collections::HashMap;

use super::Plan;

impl Plan {
    /// For each stage, the first earlier stage with the same key, if any (any experiment).
    pub fn same_key_as(&self) -> Vec<Option<usize>> {
        let mut first: HashMap<&str, usize> = HashMap::new();
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let earlier = *first.entry(s.key.key.as_str()).or_insert(i);
                (earlier != i).then_some(earlier)
            })
            .collect()
    }

    /// One warning per stage whose key equals that of an earlier stage of the same
    /// experiment. (Stages of different experiments sharing a key, a pretraining reused by two
    /// studies, are the cache doing its job.)
    pub fn shared_key_warnings(&self) -> Vec<String> {
        self.same_key_as()
            .iter()
            .enumerate()
            .filter_map(|(i, earlier)| {
                let (later, first) = (&self.stages[i], &self.stages[(*earlier)?]);
                if later.experiment != first.experiment {
                    return None;
                }
                let axes: Vec<String> = later
                    .stage
                    .matrix
                    .iter()
                    .filter(|(axis, value)| first.stage.matrix.get(*axis) != Some(*value))
                    .map(|(axis, _)| format!("`{axis}`"))
                    .collect();
                let why = if axes.is_empty() {
                    "the two stages are the same computation".to_string()
                } else {
                    format!(
                        "the matrix {} {} never {} its key (nothing in the stage uses {})",
                        if axes.len() == 1 { "axis" } else { "axes" },
                        axes.join(", "),
                        if axes.len() == 1 { "reaches" } else { "reach" },
                        if axes.len() == 1 { "it" } else { "them" },
                    )
                };
                Some(format!(
                    "{}: same key as {} ({}): {why}; it runs once and `rsfm results` shows it as {}\nhelp: use the variable in the stage (e.g. in argv or a parameter), or drop the axis or the duplicate stage",
                    later.display_name(),
                    first.display_name(),
                    crate::query::short_key(&later.key.key),
                    first.stage.name,
                ))
            })
            .collect()
    }
}
