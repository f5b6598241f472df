//! Training augmentations on 8-bit images, torch-free: random crops (of an image with its
//! label map, or of a DOTA split window with its objects), the flips and quarter turns of
//! a square image that move boxes with the pixels, and mmseg's segmentation pipeline
//! (rescale, class-balanced crop, photometric distortion). Every draw comes from the caller's
//! generator, the training loop's augmentation stream.

pub mod crop;
pub mod dihedral;
pub mod seg_augment;
