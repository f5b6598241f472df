//! The flattened parameter vector the sharded optimiser and its checkpoints speak of: the
//! trainable parameters in name order, each flattened row-major, one after another; and its
//! balanced partition into contiguous slices, one per rank.
//!
//! Rank `r` of `W` owns elements `[⌊r·N/W⌋, ⌊(r+1)·N/W⌋)` of the `N` elements: the slices
//! differ in length by at most one element and may cut a parameter anywhere.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// One parameter of the flattened vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatEntry {
    /// The parameter's variable name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<i64>,
}

impl FlatEntry {
    /// Its number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product::<i64>().max(0) as usize
    }
}

/// The parameters in flat order (by name) and where each starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatLayout {
    entries: Vec<FlatEntry>,
    starts: Vec<usize>,
    total: usize,
}

/// The part of one parameter that lies in a slice of the flat vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Index of the parameter in flat order.
    pub param: usize,
    /// First element of the piece within the parameter (flattened).
    pub offset: usize,
    /// Elements in the piece.
    pub len: usize,
    /// First element of the piece within the slice.
    pub at: usize,
}

impl FlatLayout {
    /// The layout of `entries`, sorted by name.
    pub fn new(mut entries: Vec<FlatEntry>) -> Self {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let mut starts = Vec::with_capacity(entries.len());
        let mut total = 0;
        for entry in &entries {
            starts.push(total);
            total += entry.numel();
        }
        FlatLayout {
            entries,
            starts,
            total,
        }
    }

    /// The parameters in flat order.
    pub fn entries(&self) -> &[FlatEntry] {
        &self.entries
    }

    /// Elements of the whole vector.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The pieces of the parameters that `slice` covers, in flat order.
    pub fn pieces(&self, slice: Range<usize>) -> Vec<Piece> {
        let mut pieces = Vec::new();
        for (param, (entry, &start)) in self.entries.iter().zip(&self.starts).enumerate() {
            let end = start + entry.numel();
            let (from, to) = (start.max(slice.start), end.min(slice.end));
            if from < to {
                pieces.push(Piece {
                    param,
                    offset: from - start,
                    len: to - from,
                    at: from - slice.start,
                });
            }
        }
        pieces
    }

    /// How this layout differs from `other` (the one a checkpoint was written with), in
    /// words, or None when they are the same.
    pub fn difference(&self, other: &FlatLayout) -> Option<String> {
        let shown = |layout: &FlatLayout| {
            format!(
                "{} parameters, {} elements",
                layout.entries.len(),
                layout.total
            )
        };
        let first = self
            .entries
            .iter()
            .zip(&other.entries)
            .position(|(a, b)| a != b);
        let detail = match first {
            Some(i) => {
                let (here, there) = (&self.entries[i], &other.entries[i]);
                if here.name == there.name {
                    format!(
                        "`{}` has shape {:?} there and {:?} here",
                        here.name, there.shape, here.shape
                    )
                } else {
                    format!(
                        "parameter {} is `{}` {:?} there and `{}` {:?} here",
                        i + 1,
                        there.name,
                        there.shape,
                        here.name,
                        here.shape
                    )
                }
            }
            None if self.entries.len() == other.entries.len() => return None,
            None if self.entries.len() > other.entries.len() => format!(
                "`{}` and later parameters are new here",
                self.entries[other.entries.len()].name
            ),
            None => format!(
                "`{}` and later parameters are not in this model",
                other.entries[self.entries.len()].name
            ),
        };
        Some(format!(
            "{} there, {} here: {detail}",
            shown(other),
            shown(self)
        ))
    }
}

/// Rank `rank`'s slice of `total` elements split over `world_size` ranks:
/// `[⌊rank·total/world_size⌋, ⌊(rank+1)·total/world_size⌋)`.
pub fn slice_of(total: usize, rank: usize, world_size: usize) -> Range<usize> {
    let bound = |r: usize| (r as u128 * total as u128 / world_size.max(1) as u128) as usize;
    bound(rank)..bound(rank + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(shapes: &[(&str, &[i64])]) -> FlatLayout {
        FlatLayout::new(
            shapes
                .iter()
                .map(|(name, shape)| FlatEntry {
                    name: name.to_string(),
                    shape: shape.to_vec(),
                })
                .collect(),
        )
    }

    #[test]
    fn slices_are_balanced_contiguous_and_cover_everything() {
        for world in 1..=5 {
            let slices: Vec<_> = (0..world).map(|r| slice_of(23, r, world)).collect();
            assert_eq!(slices[0].start, 0);
            assert_eq!(slices[world - 1].end, 23);
            for pair in slices.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            let lens: Vec<usize> = slices.iter().map(|s| s.len()).collect();
            assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn pieces_cut_parameters_at_slice_bounds_in_name_order() {
        // Sorted: a (6), b (2), c (4): 12 elements.
        let flat = layout(&[("c", &[2, 2]), ("a", &[2, 3]), ("b", &[2])]);
        assert_eq!(flat.total(), 12);
        assert_eq!(flat.entries()[0].name, "a");
        let pieces = flat.pieces(5..9);
        assert_eq!(
            pieces,
            vec![
                Piece {
                    param: 0,
                    offset: 5,
                    len: 1,
                    at: 0
                },
                Piece {
                    param: 1,
                    offset: 0,
                    len: 2,
                    at: 1
                },
                Piece {
                    param: 2,
                    offset: 0,
                    len: 1,
                    at: 3
                },
            ]
        );
        assert!(flat.pieces(0..0).is_empty());
    }

    #[test]
    fn differences_name_the_first_parameter_that_differs() {
        let here = layout(&[("a", &[2]), ("b", &[3])]);
        assert_eq!(here.difference(&here.clone()), None);
        let shape = here
            .difference(&layout(&[("a", &[2]), ("b", &[4])]))
            .unwrap();
        assert!(
            shape.contains("`b` has shape [4] there and [3] here"),
            "{shape}"
        );
        let name = here
            .difference(&layout(&[("a", &[2]), ("x", &[3])]))
            .unwrap();
        assert!(name.contains("parameter 2 is `x`"), "{name}");
        let fewer = here.difference(&layout(&[("a", &[2])])).unwrap();
        assert!(
            fewer.contains("1 parameters, 2 elements there, 2 parameters, 5 elements here")
                && fewer.contains("`b` and later parameters are new here"),
            "{fewer}"
        );
    }
}
