//! rsfm-model: what runs inside a stage. The pure-Rust half (geometry, metrics, dataset
//! formats, synthetic data, the worker protocol) builds without libtorch; the tch models,
//! training loops and the worker live behind the `torch` feature.

pub mod protocol;
#[cfg(feature = "torch")]
pub mod worker;
