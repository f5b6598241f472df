//! Data parallel training on PyTorch's c10d: the rendezvous variables a launcher sets
//! ([`RankEnv`]), the process group over Gloo (and NCCL where compiled in), the gradient
//! all-reduce and weight broadcast of [`DataParallel`], ZeRO-1's exchange of updated parameter
//! slices ([`ParameterGather`]), and the [`DistributedSampler`] that
//! gives each rank its own part of every global batch.

mod env;
mod launch;
pub use env::RankEnv;
pub use launch::{free_port, spawn_local_ranks};

#[cfg(feature = "torch")]
mod data_parallel;
#[cfg(feature = "torch")]
mod process_group;
#[cfg(feature = "torch")]
mod sampler;
#[cfg(feature = "torch")]
mod zero;
#[cfg(feature = "torch")]
pub use data_parallel::{DataParallel, DEFAULT_BUCKET_BYTES};
#[cfg(feature = "torch")]
pub use process_group::ProcessGroup;
#[cfg(feature = "torch")]
pub use sampler::DistributedSampler;
#[cfg(feature = "torch")]
pub use zero::ParameterGather;
