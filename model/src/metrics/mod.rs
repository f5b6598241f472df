//! Benchmark metrics that reproduce the reference tools exactly: rotated-box mAP (DOTA
//! devkit and MMRotate protocols) and segmentation scores (MMSeg IoUMetric, Potsdam styles).

pub mod detection;
pub mod segmentation;
