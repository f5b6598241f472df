//! rsfm-model: what runs inside a stage. The pure-Rust half (geometry, metrics, dataset
//! formats, synthetic data, the worker protocol) builds without libtorch; the tch models,
//! training loops and the worker live behind the `torch` feature.

#![warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

pub mod arch;
#[cfg(feature = "torch")]
pub mod autocast;
pub mod data;
pub mod dist;
pub mod geometry;
pub mod libtorch_version;
pub mod metrics;
#[cfg(feature = "torch")]
pub mod nn;
pub mod params;
pub mod protocol;
pub mod rng;
pub mod shapes;
#[cfg(feature = "torch")]
mod shim;
#[cfg(feature = "torch")]
pub mod train;
#[cfg(feature = "torch")]
pub mod weights;
#[cfg(feature = "torch")]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the worker protocol: events are JSON lines on stdout"
)]
pub mod worker;
