//! The tch models hold exactly the parameters `arch::VitConfig::param_count` computes, for the
//! presets in `recipes/models/` that fit in memory here.
#![cfg(feature = "torch")]

use std::path::Path;

use rsfm_model::arch::ModelPreset;
use rsfm_model::nn::layers::count_parameters;
use rsfm_model::nn::vit::{PosEmbed, VisionTransformer};
use tch::nn::VarStore;
use tch::Device;

#[test]
fn instantiated_presets_match_their_analytical_counts() {
    let _turn = crate::common::torch_turn();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/models");
    for name in ["vit-tiny", "vit-tiny-parallel", "vit-b", "vit-605m"] {
        let preset = ModelPreset::load(&models.join(format!("{name}.toml"))).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _vit =
            tch::no_grad(|| VisionTransformer::new(&vs.root(), &preset.vit, PosEmbed::FixedSinCos));
        assert_eq!(count_parameters(&vs), preset.vit.param_count(), "{name}");
    }
}
