//! ZeRO-1's exchange of updated parameters: after each rank updated its slice of the
//! flattened parameters, every rank receives the others' slices.
//!
//! The gather is an all-reduce sum of buffers that hold this rank's slice and zeros elsewhere:
//! every element is one rank's value plus zeros, so each rank ends with exactly the values
//! their owners computed (the shim's all-reduce serves, at twice an all-gather's traffic).

use std::ops::Range;

use tch::{Device, Kind, Tensor};

use super::process_group::ProcessGroup;

/// The parameters in flat order, bucketed for the exchange, and this rank's slice.
#[derive(Debug)]
pub struct ParameterGather<'g> {
    group: &'g ProcessGroup,
    buckets: Vec<Bucket>,
    owned: Range<usize>,
}

/// Consecutive parameters of one device and dtype, and where the first starts in the flat
/// vector.
#[derive(Debug)]
struct Bucket {
    params: Vec<Tensor>,
    start: usize,
    numel: usize,
}

impl<'g> ParameterGather<'g> {
    /// The exchange of `params` (in the flat order the slices are taken of) of which this rank
    /// updates elements `owned`, in buckets of at most `bucket_bytes` (a larger parameter gets
    /// one of its own).
    pub fn new(
        group: &'g ProcessGroup,
        params: Vec<Tensor>,
        owned: Range<usize>,
        bucket_bytes: usize,
    ) -> Self {
        let mut buckets: Vec<Bucket> = Vec::new();
        let mut start = 0;
        let mut current_type: Option<(Device, Kind)> = None;
        for p in params {
            let numel = p.numel();
            let bytes = numel * p.kind().elt_size_in_bytes();
            let same_type = current_type == Some((p.device(), p.kind()));
            current_type = Some((p.device(), p.kind()));
            match buckets.last_mut() {
                Some(last)
                    if same_type
                        && (last.numel + numel) * p.kind().elt_size_in_bytes()
                            <= bucket_bytes.max(bytes) =>
                {
                    last.numel += numel;
                    last.params.push(p);
                }
                _ => buckets.push(Bucket {
                    params: vec![p],
                    start,
                    numel,
                }),
            }
            start += numel;
        }
        ParameterGather {
            group,
            buckets,
            owned,
        }
    }

    /// Gives every rank every rank's updated slice.
    pub fn all_gather(&self) -> anyhow::Result<()> {
        tch::no_grad(|| {
            let flats: Vec<Tensor> = self.buckets.iter().map(|b| self.own_part(b)).collect();
            self.group.all_reduce_sum(&flats)?;
            for (bucket, flat) in self.buckets.iter().zip(flats) {
                let sizes: Vec<i64> = bucket.params.iter().map(|p| p.numel() as i64).collect();
                for (param, piece) in bucket.params.iter().zip(flat.split_with_sizes(&sizes, 0)) {
                    param.shallow_clone().copy_(&piece.view_as(param));
                }
            }
            Ok(())
        })
    }

    /// The bucket's parameters in one flat tensor, zero outside this rank's slice.
    fn own_part(&self, bucket: &Bucket) -> Tensor {
        let pieces: Vec<Tensor> = bucket.params.iter().map(|p| p.reshape([-1])).collect();
        let flat = Tensor::cat(&pieces, 0);
        let end = bucket.start + bucket.numel;
        let from = self.owned.start.clamp(bucket.start, end) - bucket.start;
        let to = self.owned.end.clamp(bucket.start, end) - bucket.start;
        let _ = flat.narrow(0, 0, from as i64).zero_();
        let _ = flat
            .narrow(0, to as i64, (bucket.numel - to) as i64)
            .zero_();
        flat
    }
}
