//! Training loops: optimiser, schedule, deterministic data order, resumable state, and the
//! MAE pretraining and segmentation fine-tuning loops.

pub mod optim;
pub mod schedule;
