//! Published weights in and out of rsfm: PyTorch `.pth` files (MAE's `{"model": …}`, timm's flat
//! state dicts, MMEngine's `{"state_dict": {"backbone.…"}, "meta"}`) and safetensors, read
//! without Python (the pickle as data, never run), turned into the timm names rsfm's ViT uses,
//! and rsfm's checkpoints written back in those layouts.

pub mod command;
pub mod export;
pub mod import;
pub mod layout;
pub mod pth;
pub mod unpickle;
