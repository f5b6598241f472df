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

/// The first three of `names`, comma-separated, with `, …` when there are more: how log lines
/// list tensor names.
pub fn first_names(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    let more = if names.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    format!("{}{more}", shown.join(", "))
}
