//! Parameter groups for the optimiser: which tensors get weight decay, and layer-wise lr decay.

use tch::nn::VarStore;
use tch::Tensor;

use super::optim::ParamGroup;

/// Whether a parameter is exempt from weight decay: biases, norms (1-D tensors), tokens and
/// position tables.
pub fn no_weight_decay(name: &str, dims: usize) -> bool {
    dims <= 1 || name.ends_with(".bias") || name.ends_with("_token") || name.ends_with("pos_embed")
}

/// The trainable variables of `vs`, sorted by name so groups fill in a fixed order.
fn trainable_by_name(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<_> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Two groups over the trainable variables of `vs`: with and without weight decay.
pub fn decay_groups(vs: &VarStore, weight_decay: f64) -> Vec<ParamGroup> {
    let mut decay = Vec::new();
    let mut no_decay = Vec::new();
    for (name, t) in trainable_by_name(vs) {
        if no_weight_decay(&name, t.dim()) {
            no_decay.push((name, t));
        } else {
            decay.push((name, t));
        }
    }
    vec![
        ParamGroup {
            label: "decay".into(),
            params: decay,
            weight_decay,
            lr_scale: 1.0,
        },
        ParamGroup {
            label: "no_decay".into(),
            params: no_decay,
            weight_decay: 0.0,
            lr_scale: 1.0,
        },
    ]
}

/// Layer id of a backbone parameter for layer-wise lr decay: embeddings 0, stage `i` is
/// `i + 1`, everything else (final norm, necks, heads) `num_stages + 1`.
pub fn layer_id(name: &str, num_stages: usize) -> usize {
    let name = name.strip_prefix("backbone.").unwrap_or(name);
    if name.starts_with("patch_embed") || name == "cls_token" || name == "pos_embed" {
        return 0;
    }
    if let Some(rest) = name.strip_prefix("blocks.") {
        if let Some(i) = rest.split('.').next().and_then(|s| s.parse::<usize>().ok()) {
            return i + 1;
        }
    }
    num_stages + 1
}

/// Groups with layer-wise lr decay: layer `l` gets `decay^(num_stages + 1 - l)`, each split
/// into weight decay / no weight decay.
pub fn layer_decay_groups(
    vs: &VarStore,
    weight_decay: f64,
    layer_decay: f64,
    num_stages: usize,
) -> Vec<ParamGroup> {
    let mut groups: Vec<ParamGroup> = Vec::new();
    for (name, t) in trainable_by_name(vs) {
        let layer = layer_id(&name, num_stages);
        let decays = !no_weight_decay(&name, t.dim());
        let label = format!(
            "layer_{layer}_{}",
            if decays { "decay" } else { "no_decay" }
        );
        let position = groups.iter().position(|g| g.label == label);
        let group = match position {
            Some(i) => &mut groups[i],
            None => {
                groups.push(ParamGroup {
                    label,
                    params: Vec::new(),
                    weight_decay: if decays { weight_decay } else { 0.0 },
                    lr_scale: layer_decay.powi((num_stages + 1 - layer) as i32),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        group.params.push((name, t));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_ids_follow_depth() {
        assert_eq!(layer_id("patch_embed.proj.weight", 12), 0);
        assert_eq!(layer_id("backbone.pos_embed", 12), 0);
        assert_eq!(layer_id("blocks.0.attn.qkv.weight", 12), 1);
        assert_eq!(layer_id("backbone.blocks.11.ffns.2.mlp.fc1.bias", 12), 12);
        assert_eq!(layer_id("decode_head.conv_seg.weight", 12), 13);
        assert!(no_weight_decay("blocks.0.norm1.weight", 1));
        assert!(no_weight_decay("mask_token", 3));
        assert!(!no_weight_decay("blocks.0.attn.qkv.weight", 2));
    }

    #[test]
    fn deeper_layers_get_larger_learning_rates() {
        use tch::nn::Init;
        let vs = VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        for name in [
            "backbone.pos_embed",
            "backbone.blocks.0.attn.qkv.weight",
            "backbone.blocks.1.norm1.bias",
            "decode_head.conv_seg.weight",
        ] {
            let dims: &[i64] = if name.ends_with("bias") {
                &[2]
            } else {
                &[2, 2]
            };
            let (parent, leaf) = name.rsplit_once('.').unwrap();
            let path = parent.split('.').fold(root.clone(), |p, part| p / part);
            let _ = path.var(leaf, dims, Init::Const(0.0));
        }
        let groups = layer_decay_groups(&vs, 0.05, 0.5, 2);
        let scale_of = |param: &str| {
            let g = groups
                .iter()
                .find(|g| g.params.iter().any(|(n, _)| n == param))
                .unwrap();
            (g.lr_scale, g.weight_decay)
        };
        assert_eq!(scale_of("backbone.pos_embed"), (0.125, 0.0));
        assert_eq!(scale_of("backbone.blocks.0.attn.qkv.weight"), (0.25, 0.05));
        assert_eq!(scale_of("backbone.blocks.1.norm1.bias"), (0.5, 0.0));
        assert_eq!(scale_of("decode_head.conv_seg.weight"), (1.0, 0.05));
    }
}
