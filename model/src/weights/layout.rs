//! Where a checkpoint keeps its backbone: which of a file's leaves form the state dict, which
//! prefixes wrap the names, and what a fine-tuning start leaves out (MAE's decoder and mask
//! token). The result is a flat map in the timm names rsfm's ViT uses.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use tch::Tensor;

use super::pth::Leaf;

/// A checkpoint layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// MAE's official files: `{"model": state_dict, ...}` (or a flat state dict), names maybe
    /// under `module.` or `encoder.`, with the decoder (`decoder_*`) and `mask_token`.
    Mae,
    /// timm: a flat state dict (`.pth` or safetensors), maybe under `module.`.
    Timm,
    /// MMEngine: `{"state_dict": {"backbone.…": …, "neck.…": …}, "meta": {…}}`; the backbone
    /// in timm names under `backbone.`.
    Mmengine,
}

impl Format {
    /// The spellings on the command line (besides `auto`).
    pub const SPELLINGS: &'static [&'static str] = &["mae", "timm", "mmengine"];

    /// Parses a spelling; `auto` is `None`.
    pub fn parse(text: &str) -> anyhow::Result<Option<Format>> {
        match text {
            "auto" => Ok(None),
            "mae" => Ok(Some(Format::Mae)),
            "timm" => Ok(Some(Format::Timm)),
            "mmengine" => Ok(Some(Format::Mmengine)),
            other => anyhow::bail!(
                "unknown format `{other}`: use auto, {}",
                Format::SPELLINGS.join(", ")
            ),
        }
    }

    /// The layout the leaves' names show: a `state_dict` group is MMEngine's, a `model` group
    /// MAE's, anything else a flat (timm) state dict.
    pub fn detect(leaves: &[(String, Leaf)]) -> Format {
        let has_group = |group: &str| {
            leaves
                .iter()
                .any(|(name, _)| name.strip_prefix(group).is_some_and(|r| r.starts_with('.')))
        };
        if has_group("state_dict") {
            Format::Mmengine
        } else if has_group("model") {
            Format::Mae
        } else {
            Format::Timm
        }
    }

    /// The top-level key holding the state dict in files of this layout (`None`: flat).
    fn group(self, leaves: &[(String, Leaf)]) -> Option<&'static str> {
        let grouped = |group: &str| {
            leaves
                .iter()
                .any(|(name, _)| name.strip_prefix(group).is_some_and(|r| r.starts_with('.')))
        };
        match self {
            Format::Mmengine => Some("state_dict"),
            Format::Mae if grouped("model") => Some("model"),
            Format::Mae | Format::Timm => None,
        }
    }
}

/// A checkpoint's state dict in timm names, and what was left out and why.
#[derive(Debug, Default)]
pub struct StateDict {
    /// Tensors by timm name (prefixes stripped).
    pub tensors: BTreeMap<String, Tensor>,
    /// MAE's decoder and mask token, as named in the file (a fine-tuning start drops them).
    pub dropped: Vec<String>,
    /// Tensors outside the backbone (MMEngine's neck and heads, an optimiser's state), as
    /// named in the file.
    pub outside: Vec<String>,
    /// Plain values outside the state dict (`meta.*`, `epoch`, ...) left out, with their kind.
    pub skipped: Vec<String>,
}

/// The state dict of `leaves` (read from `file`) in `format`, in timm names. A leaf inside the
/// state dict that is not a tensor, or a leaf outside it that is neither a tensor nor a plain
/// value, is an error naming its key.
pub fn state_dict(
    file: &Path,
    leaves: Vec<(String, Leaf)>,
    format: Format,
) -> anyhow::Result<StateDict> {
    let group = format.group(&leaves);
    let mut out = StateDict::default();
    for (name, leaf) in leaves {
        let inner = match group {
            Some(group) => name
                .strip_prefix(group)
                .and_then(|rest| rest.strip_prefix('.'))
                .map(str::to_string),
            None => Some(name.clone()),
        };
        match (inner, leaf) {
            (Some(inner), Leaf::Tensor(tensor)) => match timm_name(&inner, format) {
                Name::Backbone(timm) => {
                    if out.tensors.insert(timm.clone(), tensor).is_some() {
                        anyhow::bail!(
                            "{}: two tensors become `{timm}` once prefixes are stripped (one is `{name}`): pick the format that matches the file (--format)",
                            file.display()
                        );
                    }
                }
                Name::Decoder => out.dropped.push(name),
                Name::Outside => out.outside.push(name),
            },
            (Some(_), Leaf::Value { kind, .. }) => anyhow::bail!(
                "{}: `{}` is a{} {kind}, not a tensor: a state dict holds tensors only{}",
                file.display(),
                display_key(&name),
                if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "n" } else { "" },
                match group {
                    Some(group) => format!(" (the file's state dict is its `{group}` entry)"),
                    None => " (a flat state dict: pass --format mae or mmengine if the file nests it)".to_string(),
                }
            ),
            (None, Leaf::Tensor(_)) => out.outside.push(name),
            (None, Leaf::Value { kind, plain: true }) => {
                out.skipped.push(format!("{} ({kind})", display_key(&name)))
            }
            (None, Leaf::Value { kind, plain: false }) => anyhow::bail!(
                "{}: `{}` is a{} {kind}: rsfm reads tensors in dicts of string keys, and plain values beside them; save the state dict alone",
                file.display(),
                display_key(&name),
                if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "n" } else { "" },
            ),
        }
    }
    Ok(out)
}

/// A leaf's name in messages (`(the whole file)` for the root).
fn display_key(name: &str) -> &str {
    if name.is_empty() {
        "(the whole file)"
    } else {
        name
    }
}

/// What a state-dict entry is to a fine-tuning start.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    /// A backbone tensor, by its timm name.
    Backbone(String),
    /// MAE's decoder or mask token.
    Decoder,
    /// Not part of the backbone in this layout (MMEngine's neck and heads).
    Outside,
}

/// `name` (inside the state dict) without its wrappers: `module.` (DistributedDataParallel),
/// then `backbone.` (required in MMEngine files) or `encoder.`.
fn timm_name(name: &str, format: Format) -> Name {
    let mut name = name;
    while let Some(rest) = name.strip_prefix("module.") {
        name = rest;
    }
    let name = match (format, name.strip_prefix("backbone.")) {
        (_, Some(rest)) => rest,
        (Format::Mmengine, None) => return Name::Outside,
        (_, None) => name.strip_prefix("encoder.").unwrap_or(name),
    };
    if name == "mask_token" || name.starts_with("decoder_") || name.starts_with("decoder.") {
        Name::Decoder
    } else {
        Name::Backbone(name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrappers_are_stripped_and_the_decoder_is_dropped() {
        assert_eq!(
            timm_name("module.blocks.0.attn.qkv.weight", Format::Mae),
            Name::Backbone("blocks.0.attn.qkv.weight".into())
        );
        assert_eq!(
            timm_name("module.encoder.cls_token", Format::Mae),
            Name::Backbone("cls_token".into())
        );
        assert_eq!(
            timm_name("decoder_embed.weight", Format::Mae),
            Name::Decoder
        );
        assert_eq!(timm_name("mask_token", Format::Mae), Name::Decoder);
        assert_eq!(
            timm_name("backbone.pos_embed", Format::Mmengine),
            Name::Backbone("pos_embed".into())
        );
        assert_eq!(
            timm_name("neck.fpn.0.weight", Format::Mmengine),
            Name::Outside
        );
    }

    #[test]
    fn the_layout_follows_the_top_level_keys() {
        let t = || Leaf::Tensor(Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu)));
        let meta = || Leaf::Value {
            kind: "str".into(),
            plain: true,
        };
        let mm = vec![
            ("state_dict.backbone.cls_token".to_string(), t()),
            ("meta.time".to_string(), meta()),
        ];
        assert_eq!(Format::detect(&mm), Format::Mmengine);
        assert_eq!(
            Format::detect(&[("model.cls_token".to_string(), t())]),
            Format::Mae
        );
        assert_eq!(
            Format::detect(&[("cls_token".to_string(), t())]),
            Format::Timm
        );
        let sd = state_dict(Path::new("x.pth"), mm, Format::Mmengine).unwrap();
        assert_eq!(sd.tensors.keys().collect::<Vec<_>>(), ["cls_token"]);
        assert_eq!(sd.skipped, ["meta.time (str)"]);
    }

    #[test]
    fn a_value_inside_the_state_dict_names_its_key() {
        let leaves = vec![(
            "model.blocks.0.extra".to_string(),
            Leaf::Value {
                kind: "int".into(),
                plain: true,
            },
        )];
        let err = state_dict(Path::new("x.pth"), leaves, Format::Mae)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`model.blocks.0.extra` is an int, not a tensor"),
            "{err}"
        );
        let leaves = vec![(
            "args".to_string(),
            Leaf::Value {
                kind: "dict with Int keys".into(),
                plain: false,
            },
        )];
        let err = state_dict(Path::new("x.pth"), leaves, Format::Mae)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`args` is a dict with Int keys"), "{err}");
    }
}
