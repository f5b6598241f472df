//! A c10d process group for this rank: TCPStore rendezvous, Gloo for CPU tensors and NCCL
//! for CUDA tensors where the shim has it (otherwise Gloo carries them too).

use std::ffi::CString;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tch::Tensor;

use super::env::RankEnv;
use crate::shim;

/// This rank's membership in a job; collectives block until every rank joins them. Clones
/// share the one group (a model's synchronised batch norms hold one each).
#[derive(Debug, Clone)]
pub struct ProcessGroup {
    raw: Arc<RawGroup>,
    rank: usize,
    world_size: usize,
}

/// The shim's process group, freed when the last clone of its [`ProcessGroup`] goes.
#[derive(Debug)]
struct RawGroup(*mut shim::RsfmProcessGroup);

// SAFETY: c10d backends may be used from any thread; the pointer is only passed to the shim.
unsafe impl Send for RawGroup {}
// SAFETY: as above; the shim's calls do not mutate the group object itself.
unsafe impl Sync for RawGroup {}

impl Drop for RawGroup {
    fn drop(&mut self) {
        // SAFETY: the pointer came from rsfm_pg_new and is freed once, here.
        unsafe { shim::rsfm_pg_free(self.0) }
    }
}

impl ProcessGroup {
    /// Joins the job described by `env`: rank 0 serves the store at
    /// `master_addr:master_port`, every rank waits for all others up to `timeout`.
    pub fn join(env: &RankEnv, timeout: Duration) -> anyhow::Result<Self> {
        let host = CString::new(env.master_addr.as_str())
            .with_context(|| format!("MASTER_ADDR {:?} holds a NUL byte", env.master_addr))?;
        let mut raw = std::ptr::null_mut();
        let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let with_nccl = tch::Cuda::is_available() as i32;
        // SAFETY: host is NUL-terminated and outlives the call; raw receives an owned pointer.
        let error = unsafe {
            shim::rsfm_pg_new(
                host.as_ptr(),
                i32::from(env.master_port),
                env.rank as i32,
                env.world_size as i32,
                timeout_ms,
                with_nccl,
                &mut raw,
            )
        };
        shim::check(
            error,
            &format!(
                "rank {} of {} cannot join the process group at {}:{}",
                env.rank, env.world_size, env.master_addr, env.master_port
            ),
        )?;
        Ok(ProcessGroup {
            raw: Arc::new(RawGroup(raw)),
            rank: env.rank,
            world_size: env.world_size,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of processes in the job.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// Whether NCCL carries CUDA tensors (else Gloo does).
    pub fn has_nccl() -> bool {
        // SAFETY: a pure query.
        unsafe { shim::rsfm_has_nccl() != 0 }
    }

    /// Sums each tensor in place over all ranks; all are sent before any is awaited.
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> anyhow::Result<()> {
        let ptrs: Vec<_> = tensors.iter().map(|t| t.as_ptr()).collect();
        // SAFETY: the pointers are live at::Tensor handles owned by `tensors` for the call.
        let error = unsafe { shim::rsfm_pg_allreduce_sum(self.raw.0, ptrs.as_ptr(), ptrs.len()) };
        shim::check(error, "all-reduce failed")
    }

    /// Overwrites each tensor with rank `root`'s values.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> anyhow::Result<()> {
        let ptrs: Vec<_> = tensors.iter().map(|t| t.as_ptr()).collect();
        // SAFETY: as in all_reduce_sum.
        let error =
            unsafe { shim::rsfm_pg_broadcast(self.raw.0, ptrs.as_ptr(), ptrs.len(), root as i32) };
        shim::check(error, "broadcast failed")
    }

    /// A new tensor holding the sum of `input` over all ranks, which autograd differentiates:
    /// the backward pass sums each rank's output gradient over the ranks. Every rank must call
    /// it, and run its backward pass, in the same order.
    pub fn all_reduce_sum_differentiable(&self, input: &Tensor) -> anyhow::Result<Tensor> {
        let mut out = std::ptr::null_mut();
        // SAFETY: input is a live tensor for the call; out receives a new owned at::Tensor.
        let error =
            unsafe { shim::rsfm_pg_allreduce_sum_autograd(self.raw.0, input.as_ptr(), &mut out) };
        shim::check(error, "differentiable all-reduce failed")?;
        // SAFETY: on success the shim allocated `out` with `new at::Tensor`, which tch owns now.
        Ok(unsafe { Tensor::from_ptr(out) })
    }

    /// Returns once every rank has reached its barrier.
    pub fn barrier(&self) -> anyhow::Result<()> {
        // SAFETY: raw is a live process group.
        let error = unsafe { shim::rsfm_pg_barrier(self.raw.0) };
        shim::check(error, "barrier failed")
    }
}
