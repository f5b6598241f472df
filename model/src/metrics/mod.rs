//! Benchmark metrics that reproduce the reference tools exactly: rotated-box mAP (DOTA
//! devkit and MMRotate protocols) and segmentation scores (MMSeg IoUMetric, Potsdam styles),
//! and the scoring of prediction files on disk against ground truth on disk ([`files`]).

pub mod detection;
pub mod files;
pub mod segmentation;
