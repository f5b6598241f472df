//! Datasets: image codecs, the on-disk formats of DOTA, DIOR-R, ISPRS Potsdam/Vaihingen, LoveDA
//! and Million-AID, tiling of large images, segmentation crops, training augmentations, and
//! synthetic data in those formats.

pub mod det_samples;
pub mod error;
pub mod formats;
pub mod image_io;
pub mod loader;
pub mod prepare;
pub mod rescore;
pub mod seg_crops;
pub mod seg_samples;
pub mod synth;
pub mod test_images;
pub mod tiling;
pub mod transforms;
