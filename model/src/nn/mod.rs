//! tch models with timm/MAE parameter names: the (parallel) ViT, MAE, the ViTDet backbone,
//! the UperNet segmentation head with its segmenter, Oriented R-CNN, shared layers and position embeddings, plus safetensors checkpoints and
//! activation checkpointing.

pub mod checkpoint;
pub mod checkpointing;
pub mod layers;
pub mod mae;
pub mod norm;
pub mod oriented_rcnn;
pub mod pos_embed;
pub mod segmenter;
pub mod upernet;
pub mod vit;
pub mod vitdet;
