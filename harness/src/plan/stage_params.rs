//! Reading a planned stage's worker parameters by name, whether the plan nests them (`data`,
//! `mae`, `detector`, `vitdet` tables) or writes them flat, and the backbone a stage trains:
//! the `model` table with the stage's size overrides applied.

use rsfm_model::arch::VitConfig;
use serde_json::{Map, Value};

/// Tables a parameter may be nested in.
const NESTS: [&str; 4] = ["data", "mae", "detector", "vitdet"];

/// The parameter `name`: at the top level, else in one of the nested tables.
pub fn field<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    params
        .get(name)
        .or_else(|| NESTS.iter().find_map(|nest| params.get(*nest)?.get(name)))
}

/// The backbone a stage runs: `model` as a ViT configuration with the flat overrides set
/// beside it (`crop_size` sets the input side of a segmentation stage).
pub fn backbone(params: &Map<String, Value>) -> Option<VitConfig> {
    let mut vit: VitConfig = serde_json::from_value(params.get("model")?.clone()).ok()?;
    let size = |name: &str| params.get(name).and_then(Value::as_u64).map(|v| v as usize);
    if let Some(side) = size("image_size").or(size("crop_size")) {
        vit.image_size = side;
    }
    for (name, slot) in [
        ("patch_size", &mut vit.patch_size),
        ("embed_dim", &mut vit.embed_dim),
        ("depth", &mut vit.depth),
        ("parallel", &mut vit.parallel),
        ("num_heads", &mut vit.num_heads),
    ] {
        if let Some(value) = size(name) {
            *slot = value;
        }
    }
    if let Some(ratio) = params.get("mlp_ratio").and_then(Value::as_f64) {
        vit.mlp_ratio = ratio;
    }
    Some(vit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_and_flat_parameters_read_alike() {
        let nested = json!({ "data": { "format": "dota" }, "mae": { "mask_ratio": 0.6 } });
        let flat = json!({ "format": "dota", "mask_ratio": 0.6 });
        for params in [nested, flat] {
            let params = params.as_object().unwrap();
            assert_eq!(field(params, "format"), Some(&json!("dota")));
            assert_eq!(field(params, "mask_ratio"), Some(&json!(0.6)));
            assert_eq!(field(params, "steps"), None);
        }
    }

    #[test]
    fn flat_overrides_apply_to_the_model_table() {
        let vit = serde_json::to_value(VitConfig::vit_base_patch16_224()).unwrap();
        let params = json!({ "model": vit, "crop_size": 512, "depth": 6 });
        let backbone = backbone(params.as_object().unwrap()).unwrap();
        assert_eq!(
            (backbone.image_size, backbone.depth, backbone.embed_dim),
            (512, 6, 768)
        );
    }
}
