//! The model crate's integration tests, one binary (one link of the crate and libtorch): a
//! module per area, each described in its own first lines; the `torch_*` modules need the
//! `torch` feature. Tests that use torch's global random generator in this process take turns
//! (`common::torch_turn`). `torch_dist` is its own binary: it is the rank program of its test.

mod common;

mod formats_bad_input;
mod formats_fixtures;
mod geometry_props;
mod loader;
mod refdata_dota_map;
mod refdata_rotated_iou;
mod refdata_seg_metrics;
mod synth_datasets;
mod tiling_dota;
mod torch_bf16;
mod torch_checkpointing;
mod torch_detector;
mod torch_flops;
mod torch_golden;
mod torch_loader;
mod torch_params;
mod torch_seg_overfit;
mod torch_seg_worker;
mod torch_worker;
mod torch_zero;
