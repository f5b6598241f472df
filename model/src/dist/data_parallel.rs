//! Data parallel training: the same model on every rank, weights broadcast from rank 0 once,
//! gradients averaged over ranks after each backward pass in buckets of flattened tensors.
//!
//! The all-reduce runs after `backward()` returns (tch exposes no autograd hooks to start a
//! bucket while later layers are still differentiating); within it, every bucket is sent
//! before any is awaited.

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::process_group::ProcessGroup;

/// Bucket size of PyTorch's DistributedDataParallel (25 MiB).
pub const DEFAULT_BUCKET_BYTES: usize = 25 << 20;

/// A model's trainable parameters split into all-reduce buckets, and the group that reduces
/// them.
#[derive(Debug)]
pub struct DataParallel<'g> {
    group: &'g ProcessGroup,
    buckets: Vec<Vec<Tensor>>,
}

impl<'g> DataParallel<'g> {
    /// Buckets the trainable variables of `vs` (in name order, the same on every rank) into
    /// groups of one device and dtype of at most `bucket_bytes` each (a larger tensor gets a
    /// bucket of its own).
    pub fn new(group: &'g ProcessGroup, vs: &VarStore, bucket_bytes: usize) -> Self {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut buckets: Vec<Vec<Tensor>> = Vec::new();
        let mut current: Vec<Tensor> = Vec::new();
        let mut current_bytes = 0usize;
        let mut current_type: Option<(Device, Kind)> = None;
        for (_, t) in named {
            let bytes = t.numel() * t.kind().elt_size_in_bytes();
            let same_type = current_type == Some((t.device(), t.kind()));
            if !current.is_empty() && (!same_type || current_bytes + bytes > bucket_bytes) {
                buckets.push(std::mem::take(&mut current));
                current_bytes = 0;
            }
            current_type = Some((t.device(), t.kind()));
            current_bytes += bytes;
            current.push(t);
        }
        if !current.is_empty() {
            buckets.push(current);
        }
        DataParallel { group, buckets }
    }

    /// The process group.
    pub fn group(&self) -> &ProcessGroup {
        self.group
    }

    /// Number of all-reduce buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Gives every rank rank 0's values of all variables of `vs` (trainable or not), so the
    /// replicas start identical whatever each rank initialised.
    pub fn broadcast_parameters(&self, vs: &VarStore) -> anyhow::Result<()> {
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors: Vec<Tensor> = named.into_iter().map(|(_, t)| t).collect();
        tch::no_grad(|| self.group.broadcast(&tensors, 0))
    }

    /// Replaces each parameter's gradient by its mean over the ranks. A parameter without a
    /// gradient on this rank contributes zeros and keeps no gradient.
    pub fn all_reduce_gradients(&self) -> anyhow::Result<()> {
        let world = self.group.world_size() as f64;
        tch::no_grad(|| {
            let flats: Vec<Tensor> = self.buckets.iter().map(|b| flatten_grads(b)).collect();
            self.group.all_reduce_sum(&flats)?;
            for (bucket, mut flat) in self.buckets.iter().zip(flats) {
                let _ = flat.g_div_scalar_(world);
                let sizes: Vec<i64> = bucket.iter().map(|p| p.numel() as i64).collect();
                for (param, piece) in bucket.iter().zip(flat.split_with_sizes(&sizes, 0)) {
                    let mut grad = param.grad();
                    if grad.defined() {
                        grad.copy_(&piece.view_as(&grad));
                    }
                }
            }
            Ok(())
        })
    }
}

/// The gradients of `params` in one flat tensor (zeros where a gradient is missing).
fn flatten_grads(params: &[Tensor]) -> Tensor {
    let pieces: Vec<Tensor> = params
        .iter()
        .map(|p| {
            let grad = p.grad();
            if grad.defined() {
                grad.reshape([-1])
            } else {
                p.zeros_like().reshape([-1])
            }
        })
        .collect();
    Tensor::cat(&pieces, 0)
}
