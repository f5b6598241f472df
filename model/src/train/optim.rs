//! AdamW with parameter groups (weight decay and lr scale per group) whose whole state is
//! plain tensors, so a checkpoint can hold it and a resumed run continues bit for bit. Its
//! moments cover a slice of the flattened parameters ([`FlatLayout`]): all of them, or with
//! ZeRO-1 sharding only this rank's slice, which it alone updates (the ranks then exchange
//! the updated slices, [`crate::dist::ParameterGather`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use tch::{Device, Kind, Tensor};

use super::flat_params::{slice_of, FlatEntry, FlatLayout, Piece};
/// Parameters that share a weight decay and an lr multiplier.
#[derive(Debug)]
pub struct ParamGroup {
    /// Group label for logs (e.g. `decay`, `layer_3`).
    pub label: String,
    /// Named parameters of the group.
    pub params: Vec<(String, Tensor)>,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Multiplier on the scheduled learning rate (layer-wise lr decay).
    pub lr_scale: f64,
}

/// Hyper-parameters of AdamW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
}

impl Default for AdamWConfig {
    /// MAE's pretraining betas (0.9, 0.95).
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
        }
    }
}

/// The optimiser: AdamW as in PyTorch (`torch.optim.AdamW`), bias-corrected moments.
#[derive(Debug)]
pub struct AdamW {
    groups: Vec<ParamGroup>,
    config: AdamWConfig,
    layout: FlatLayout,
    /// Each parameter in flat order, with the index of its group.
    flat: Vec<(usize, Tensor)>,
    rank: usize,
    world_size: usize,
    slice: Range<usize>,
    owned: Vec<OwnedPiece>,
    steps: u64,
}

/// The moments of one piece of the slice this optimiser updates.
#[derive(Debug)]
struct OwnedPiece {
    piece: Piece,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

impl AdamW {
    /// Creates the optimiser over every parameter, with zero moments.
    pub fn new(groups: Vec<ParamGroup>, config: AdamWConfig) -> Self {
        Self::sharded(groups, config, 0, 1)
    }

    /// Creates the optimiser of rank `rank` of `world_size` under ZeRO-1: moments (zero) and
    /// updates only for its slice of the flattened parameters ([`slice_of`]).
    pub fn sharded(
        groups: Vec<ParamGroup>,
        config: AdamWConfig,
        rank: usize,
        world_size: usize,
    ) -> Self {
        let mut flat: Vec<(String, usize, Tensor)> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| {
                group
                    .params
                    .iter()
                    .map(move |(name, p)| (name.clone(), g, p.shallow_clone()))
            })
            .collect();
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        let layout = FlatLayout::new(
            flat.iter()
                .map(|(name, _, p)| FlatEntry {
                    name: name.clone(),
                    shape: p.size(),
                })
                .collect(),
        );
        let slice = slice_of(layout.total(), rank, world_size);
        let owned = layout
            .pieces(slice.clone())
            .into_iter()
            .map(|piece| {
                let p = &flat[piece.param].2;
                let zeros = || Tensor::zeros([piece.len as i64], (p.kind(), p.device()));
                OwnedPiece {
                    piece,
                    exp_avg: zeros(),
                    exp_avg_sq: zeros(),
                }
            })
            .collect();
        AdamW {
            groups,
            config,
            layout,
            flat: flat.into_iter().map(|(_, g, p)| (g, p)).collect(),
            rank,
            world_size,
            slice,
            owned,
            steps: 0,
        }
    }

    /// The parameter groups.
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The flattened parameters its slices are taken of.
    pub fn layout(&self) -> &FlatLayout {
        &self.layout
    }

    /// The parameters in flat order (the tensors themselves, not copies).
    pub fn parameters(&self) -> Vec<Tensor> {
        self.flat.iter().map(|(_, p)| p.shallow_clone()).collect()
    }

    /// Its rank and the number of ranks the moments are sharded over (0 of 1: unsharded).
    pub fn shard(&self) -> (usize, usize) {
        (self.rank, self.world_size)
    }

    /// The elements of the flat vector whose moments it holds and which it updates.
    pub fn slice(&self) -> Range<usize> {
        self.slice.clone()
    }

    /// Bytes of the moments this optimiser holds, as allocated.
    pub fn state_bytes(&self) -> usize {
        self.owned
            .iter()
            .map(|o| {
                [&o.exp_avg, &o.exp_avg_sq]
                    .iter()
                    .map(|t| t.numel() * t.kind().elt_size_in_bytes())
                    .sum::<usize>()
            })
            .sum()
    }

    /// Clears the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        for (_, p) in self.groups.iter_mut().flat_map(|g| g.params.iter_mut()) {
            p.zero_grad();
        }
    }

    /// Applies one update of its slice with learning rate `lr` (times each group's
    /// `lr_scale`). Parameters without a gradient are left alone.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let correction1 = 1.0 - beta1.powi(self.steps as i32);
        let correction2 = 1.0 - beta2.powi(self.steps as i32);
        tch::no_grad(|| {
            for owned in &mut self.owned {
                let Piece {
                    param, offset, len, ..
                } = owned.piece;
                let (group, p) = &self.flat[param];
                let group = &self.groups[*group];
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let group_lr = lr * group.lr_scale;
                let grad = grad.reshape([-1]).narrow(0, offset as i64, len as i64);
                // A view of the piece: the in-place updates below write the parameter.
                let mut p = p.view([-1]).narrow(0, offset as i64, len as i64);
                // In place where possible, with PyTorch's formulas:
                // m ← lerp(m, g, 1 − β1); v ← β2·v + (1 − β2)·g²;
                // p ← p·(1 − lr·wd) − lr/c1 · m / (sqrt(v)/sqrt(c2) + eps).
                let _ = owned.exp_avg.lerp_(&grad, 1.0 - beta1);
                let _ = owned
                    .exp_avg_sq
                    .g_mul_scalar_(beta2)
                    .addcmul_(&(&grad * (1.0 - beta2)), &grad);
                if group.weight_decay != 0.0 {
                    let _ = p.g_mul_scalar_(1.0 - group_lr * group.weight_decay);
                }
                let mut update = owned.exp_avg_sq.sqrt();
                let _ = update.g_div_scalar_(correction2.sqrt()).g_add_scalar_(eps);
                let _ = update
                    .reciprocal_()
                    .g_mul_(&owned.exp_avg)
                    .g_mul_scalar_(group_lr / correction1);
                let _ = p.g_sub_(&update);
            }
        });
    }

    /// The state of its slice as CPU tensors: `exp_avg` and `exp_avg_sq` (the moments of
    /// elements [`Self::slice`] of the flat vector, in order) and `steps`.
    pub fn slice_state(&self) -> BTreeMap<String, Tensor> {
        let flat = |moment: fn(&OwnedPiece) -> &Tensor| {
            let pieces: Vec<Tensor> = self
                .owned
                .iter()
                .map(|o| moment(o).to_device(Device::Cpu))
                .collect();
            if pieces.is_empty() {
                Tensor::zeros([0], (Kind::Float, Device::Cpu))
            } else {
                Tensor::cat(&pieces, 0)
            }
        };
        let mut state = BTreeMap::new();
        state.insert("exp_avg".into(), flat(|o| &o.exp_avg));
        state.insert("exp_avg_sq".into(), flat(|o| &o.exp_avg_sq));
        state.insert("steps".into(), Tensor::from_slice(&[self.steps as i64]));
        state
    }

    /// Restores the part of its slice that a state written by [`Self::slice_state`] over
    /// elements `start..` of the flat vector covers (any rank's, of any number of ranks), and
    /// the step count; the error names a missing entry.
    pub fn load_slice_state(
        &mut self,
        start: usize,
        state: &HashMap<String, Tensor>,
    ) -> anyhow::Result<()> {
        let entry = |key: &str| {
            state
                .get(key)
                .ok_or_else(|| anyhow::anyhow!("optimizer state has no `{key}`"))
        };
        let (exp_avg, exp_avg_sq) = (entry("exp_avg")?, entry("exp_avg_sq")?);
        let len = exp_avg.numel();
        anyhow::ensure!(
            exp_avg_sq.numel() == len,
            "optimizer state has {len} elements of `exp_avg` but {} of `exp_avg_sq`",
            exp_avg_sq.numel()
        );
        let theirs = start..start + len;
        for owned in &mut self.owned {
            let piece_start = self.slice.start + owned.piece.at;
            let (from, to) = (
                piece_start.max(theirs.start),
                (piece_start + owned.piece.len).min(theirs.end),
            );
            if from >= to {
                continue;
            }
            let n = (to - from) as i64;
            tch::no_grad(|| {
                for (mine, src) in [
                    (&mut owned.exp_avg, exp_avg),
                    (&mut owned.exp_avg_sq, exp_avg_sq),
                ] {
                    mine.narrow(0, (from - piece_start) as i64, n)
                        .copy_(&src.narrow(0, (from - theirs.start) as i64, n));
                }
            });
        }
        self.steps = entry("steps")?.to_kind(Kind::Int64).int64_value(&[0]) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn matches_the_closed_form_first_step() {
        // First AdamW step: p ← p(1 − lr·wd) − lr·g/(|g| + eps) = p(1 − lr·wd) − lr·sign(g).
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let loss = (&p * Tensor::from_slice(&[3.0f32, -0.5])).sum(Kind::Float);
        loss.backward();
        let group = ParamGroup {
            label: "all".into(),
            params: vec![("p".into(), p.shallow_clone())],
            weight_decay: 0.1,
            lr_scale: 0.5,
        };
        let mut opt = AdamW::new(vec![group], AdamWConfig::default());
        opt.step(0.2);
        let got = Vec::<f32>::try_from(&p).unwrap();
        let lr = 0.1f32;
        let expected = [1.0 * (1.0 - lr * 0.1) - lr, -2.0 * (1.0 - lr * 0.1) + lr];
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
        }
    }

    /// Parameters `a` [2, 3] and `b` [4] with fixed gradients, in a decay and a no-decay
    /// group with different lr scales.
    fn groups_with_gradients() -> Vec<ParamGroup> {
        let a = Tensor::arange(6, (Kind::Float, Device::Cpu))
            .reshape([2, 3])
            .set_requires_grad(true);
        let b = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25]).set_requires_grad(true);
        let loss = (&a * &a).sum(Kind::Float) * 0.3 + (&b * &b * &b).sum(Kind::Float);
        loss.backward();
        vec![
            ParamGroup {
                label: "decay".into(),
                params: vec![("a".into(), a)],
                weight_decay: 0.1,
                lr_scale: 0.5,
            },
            ParamGroup {
                label: "no_decay".into(),
                params: vec![("b".into(), b)],
                weight_decay: 0.0,
                lr_scale: 1.0,
            },
        ]
    }

    /// The parameters of `groups` as one flat vector in name order.
    fn flat_values(opt: &AdamW) -> Vec<f32> {
        let parts: Vec<Tensor> = opt.parameters().iter().map(|p| p.reshape([-1])).collect();
        Vec::<f32>::try_from(&Tensor::cat(&parts, 0)).unwrap()
    }

    #[test]
    fn shards_update_exactly_their_slice_as_the_whole_optimizer_does() {
        let mut whole = AdamW::new(groups_with_gradients(), AdamWConfig::default());
        for _ in 0..3 {
            whole.step(0.05);
        }
        let expected = flat_values(&whole);
        for world in [2, 3, 4] {
            let mut joined = Vec::new();
            for rank in 0..world {
                let mut shard =
                    AdamW::sharded(groups_with_gradients(), AdamWConfig::default(), rank, world);
                for _ in 0..3 {
                    shard.step(0.05);
                }
                let slice = shard.slice();
                joined.extend_from_slice(&flat_values(&shard)[slice]);
            }
            assert_eq!(joined, expected, "{world} shards");
        }
        let half = AdamW::sharded(groups_with_gradients(), AdamWConfig::default(), 1, 2);
        assert_eq!(half.slice(), 5..10);
        assert_eq!(half.state_bytes(), 2 * 5 * 4);
        assert_eq!(whole.state_bytes(), 2 * 10 * 4);
    }

    #[test]
    fn a_state_reloads_into_another_split() {
        let mut whole = AdamW::new(groups_with_gradients(), AdamWConfig::default());
        whole.step(0.1);
        let state: HashMap<String, Tensor> = whole.slice_state().into_iter().collect();
        // Rank 1 of 3 (elements 3..6) from the whole state, then back from two halves.
        let mut third = AdamW::sharded(groups_with_gradients(), AdamWConfig::default(), 1, 3);
        third.load_slice_state(0, &state).unwrap();
        assert_eq!(third.steps(), 1);
        let moments = |opt: &AdamW| Vec::<f32>::try_from(&opt.slice_state()["exp_avg_sq"]).unwrap();
        assert_eq!(moments(&third), moments(&whole)[3..6]);
        let mut again = AdamW::new(groups_with_gradients(), AdamWConfig::default());
        for rank in 0..2 {
            let mut half = AdamW::sharded(groups_with_gradients(), AdamWConfig::default(), rank, 2);
            half.load_slice_state(0, &state).unwrap();
            let start = half.slice().start;
            let state: HashMap<String, Tensor> = half.slice_state().into_iter().collect();
            again.load_slice_state(start, &state).unwrap();
        }
        assert_eq!(moments(&again), moments(&whole));
        let mut partial = state;
        partial.remove("exp_avg_sq");
        assert!(third
            .load_slice_state(0, &partial)
            .unwrap_err()
            .to_string()
            .contains("exp_avg_sq"));
    }
}
