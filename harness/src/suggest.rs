//! "Did you mean": the known name closest to a mistyped one.

/// The entry of `candidates` closest to `word` by edit distance, if close enough to be a typo
/// (at most a third of the longer name's characters differ).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len().max(word.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_name_and_an_unrelated_word_none() {
        assert_eq!(closest("lrr", ["lr", "epochs"]), Some("lr"));
        assert_eq!(closest("eopchs", ["lr", "epochs"]), Some("epochs"));
        assert_eq!(closest("banana", ["lr", "epochs"]), None);
        assert_eq!(
            closest("vit-minni", ["vit-b", "vit-mini"]),
            Some("vit-mini")
        );
    }
}
