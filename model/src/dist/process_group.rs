//! A c10d process group for this rank: TCPStore rendezvous, Gloo for CPU tensors and NCCL
//! for CUDA tensors where the shim has it (otherwise Gloo carries them too).

use std::ffi::CString;
use std::time::Duration;

use anyhow::Context;
use tch::Tensor;

use super::env::RankEnv;
use crate::shim;

/// This rank's membership in a job; collectives block until every rank joins them.
#[derive(Debug)]
pub struct ProcessGroup {
    raw: *mut shim::RsfmProcessGroup,
    rank: usize,
    world_size: usize,
}

// SAFETY: c10d backends may be used from any thread; this wrapper hands out no aliases.
unsafe impl Send for ProcessGroup {}

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
            raw,
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
        let error = unsafe { shim::rsfm_pg_allreduce_sum(self.raw, ptrs.as_ptr(), ptrs.len()) };
        shim::check(error, "all-reduce failed")
    }

    /// Overwrites each tensor with rank `root`'s values.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> anyhow::Result<()> {
        let ptrs: Vec<_> = tensors.iter().map(|t| t.as_ptr()).collect();
        // SAFETY: as in all_reduce_sum.
        let error =
            unsafe { shim::rsfm_pg_broadcast(self.raw, ptrs.as_ptr(), ptrs.len(), root as i32) };
        shim::check(error, "broadcast failed")
    }

    /// Returns once every rank has reached its barrier.
    pub fn barrier(&self) -> anyhow::Result<()> {
        // SAFETY: raw is a live process group.
        let error = unsafe { shim::rsfm_pg_barrier(self.raw) };
        shim::check(error, "barrier failed")
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: raw came from rsfm_pg_new and is freed once.
        unsafe { shim::rsfm_pg_free(self.raw) }
    }
}
