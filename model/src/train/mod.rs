//! Training loops: optimiser, schedule, deterministic data order, resumable state, and the
//! MAE pretraining and segmentation fine-tuning loops.

pub mod events;
pub mod images;
pub mod mae_pretrain;
pub mod optim;
pub mod params;
pub mod resume;
pub mod rng;
pub mod schedule;
