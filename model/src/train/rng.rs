//! Deterministic randomness keyed by (seed, purpose, counter), so a resumed run draws exactly
//! what an uninterrupted one would without saving generator state.

pub use crate::rng::SplitMix64;

/// Stream ids, one per kind of random choice.
pub mod stream {
    /// Order of samples in an epoch.
    pub const DATA_ORDER: u64 = 1;
    /// torch's generator at the start of a step (masking, drop path, sampling).
    pub const TORCH_STEP: u64 = 2;
    /// Choice of a training subset.
    pub const SUBSET: u64 = 3;
    /// Model initialisation.
    pub const INIT: u64 = 4;
    /// Data augmentation (crops, flips) of a step.
    pub const AUGMENT: u64 = 5;
}

/// Seeds torch's global generator for `step`, so a step's random draws depend only on the
/// run seed and the step number.
pub fn seed_torch_for_step(seed: u64, step: u64) {
    tch::manual_seed((SplitMix64::new(seed, stream::TORCH_STEP, step).next_u64() >> 1) as i64);
}

/// Indices of the samples of batch `step` of size `batch`: epochs are seeded permutations of
/// `0..len`, batches run through them back to back.
pub fn batch_indices(seed: u64, len: usize, batch: usize, step: u64) -> Vec<usize> {
    let mut out = Vec::with_capacity(batch);
    let mut position = step as usize * batch;
    let mut epoch = usize::MAX;
    let mut order = Vec::new();
    while out.len() < batch {
        let e = position / len;
        if e != epoch {
            epoch = e;
            order = SplitMix64::new(seed, stream::DATA_ORDER, e as u64).permutation(len);
        }
        out.push(order[position % len]);
        position += 1;
    }
    out
}

/// A subset of `fraction` of `0..len` (at least one element), chosen deterministically from
/// `seed` and returned sorted.
pub fn subset(seed: u64, len: usize, fraction: f64) -> Vec<usize> {
    let keep = ((len as f64 * fraction).round() as usize).clamp(1, len.max(1));
    let mut chosen = SplitMix64::new(seed, stream::SUBSET, 0).permutation(len);
    chosen.truncate(keep);
    chosen.sort_unstable();
    chosen
}

/// The items of [`subset`]`(seed, items.len(), fraction)`, in their original order: the
/// training samples of a data-efficiency run.
pub fn subset_of<T: Clone>(seed: u64, items: &[T], fraction: f64) -> Vec<T> {
    subset(seed, items.len(), fraction)
        .into_iter()
        .map(|i| items[i].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_each_epoch_once_and_depend_on_the_seed() {
        let mut seen: Vec<usize> = (0..5).flat_map(|s| batch_indices(7, 10, 2, s)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(batch_indices(7, 10, 3, 4), batch_indices(7, 10, 3, 4));
        assert_ne!(
            (0..5)
                .flat_map(|s| batch_indices(7, 10, 2, s))
                .collect::<Vec<_>>(),
            (0..5)
                .flat_map(|s| batch_indices(8, 10, 2, s))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn subsets_are_deterministic_nested_fractions() {
        let a = subset(3, 100, 0.1);
        assert_eq!(a.len(), 10);
        assert_eq!(a, subset(3, 100, 0.1));
        assert!(subset(3, 100, 0.2).len() == 20);
        assert_eq!(subset(3, 5, 0.01).len(), 1);
        let b = subset(4, 100, 0.1);
        assert_ne!(a, b);
    }
}
