//! Training: one step loop with its shared setup, optimiser, schedules, deterministic data
//! order and augmentation streams, resumable state and the pretrained-weight loader, and
//! the stage kinds `mae-pretrain`, `finetune-seg`, `finetune-det` and `evaluate`. Their parameters
//! are declared in [`crate::params`].

pub mod det_data;
pub mod evaluate_det;
pub mod evaluate_seg;
pub mod events;
pub mod finetune_det;
pub mod finetune_seg;
pub mod flat_params;
pub mod images;
pub mod mae_pretrain;
pub mod optim;
pub mod params;
pub mod pretrained;
pub mod replicas;
pub mod resume;
pub mod rng;
pub mod schedule;
pub mod seg_data;
pub mod setup;
pub mod stage;
pub mod stage_inputs;
pub mod step_batches;
pub mod step_loop;
