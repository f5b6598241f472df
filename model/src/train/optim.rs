//! AdamW with parameter groups (weight decay and lr scale per group) whose whole state is
//! plain tensors, so a checkpoint can hold it and a resumed run continues bit for bit.

use std::collections::{BTreeMap, HashMap};

use tch::{Kind, Tensor};

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
    exp_avg: HashMap<String, Tensor>,
    exp_avg_sq: HashMap<String, Tensor>,
    steps: u64,
}

impl AdamW {
    /// Creates the optimiser with zero moments.
    pub fn new(groups: Vec<ParamGroup>, config: AdamWConfig) -> Self {
        let mut exp_avg = HashMap::new();
        let mut exp_avg_sq = HashMap::new();
        for (name, p) in groups.iter().flat_map(|g| g.params.iter()) {
            exp_avg.insert(name.clone(), Tensor::zeros_like(p));
            exp_avg_sq.insert(name.clone(), Tensor::zeros_like(p));
        }
        AdamW {
            groups,
            config,
            exp_avg,
            exp_avg_sq,
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

    /// Clears the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        for (_, p) in self.groups.iter_mut().flat_map(|g| g.params.iter_mut()) {
            p.zero_grad();
        }
    }

    /// Applies one update with learning rate `lr` (times each group's `lr_scale`).
    /// Parameters without a gradient are left alone.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let correction1 = 1.0 - beta1.powi(self.steps as i32);
        let correction2 = 1.0 - beta2.powi(self.steps as i32);
        tch::no_grad(|| {
            for group in &mut self.groups {
                let group_lr = lr * group.lr_scale;
                for (name, p) in &mut group.params {
                    let grad = p.grad();
                    if !grad.defined() {
                        continue;
                    }
                    // In place where possible, with PyTorch's formulas:
                    // m ← lerp(m, g, 1 − β1); v ← β2·v + (1 − β2)·g²;
                    // p ← p·(1 − lr·wd) − lr/c1 · m / (sqrt(v)/sqrt(c2) + eps).
                    let m = self
                        .exp_avg
                        .get_mut(name)
                        .expect("moments exist for every parameter");
                    let _ = m.lerp_(&grad, 1.0 - beta1);
                    let v = self
                        .exp_avg_sq
                        .get_mut(name)
                        .expect("moments exist for every parameter");
                    let _ = v
                        .g_mul_scalar_(beta2)
                        .addcmul_(&(&grad * (1.0 - beta2)), &grad);
                    if group.weight_decay != 0.0 {
                        let _ = p.g_mul_scalar_(1.0 - group_lr * group.weight_decay);
                    }
                    let mut update = self.exp_avg_sq[name].sqrt();
                    let _ = update.g_div_scalar_(correction2.sqrt()).g_add_scalar_(eps);
                    let _ = update
                        .reciprocal_()
                        .g_mul_(&self.exp_avg[name])
                        .g_mul_scalar_(group_lr / correction1);
                    let _ = p.g_sub_(&update);
                }
            }
        });
    }

    /// The optimiser state as named tensors (`exp_avg.NAME`, `exp_avg_sq.NAME`, `steps`).
    pub fn state_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut state = BTreeMap::new();
        for (name, m) in &self.exp_avg {
            state.insert(format!("exp_avg.{name}"), m.shallow_clone());
        }
        for (name, v) in &self.exp_avg_sq {
            state.insert(format!("exp_avg_sq.{name}"), v.shallow_clone());
        }
        state.insert("steps".into(), Tensor::from_slice(&[self.steps as i64]));
        state
    }

    /// Restores a state written by [`AdamW::state_tensors`]; the error names a missing or
    /// mis-shaped entry.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> anyhow::Result<()> {
        let steps = state
            .get("steps")
            .ok_or_else(|| anyhow::anyhow!("optimizer state has no `steps`"))?;
        for (prefix, moments) in [
            ("exp_avg", &mut self.exp_avg),
            ("exp_avg_sq", &mut self.exp_avg_sq),
        ] {
            for (name, t) in moments.iter_mut() {
                let key = format!("{prefix}.{name}");
                let src = state
                    .get(&key)
                    .ok_or_else(|| anyhow::anyhow!("optimizer state has no `{key}`"))?;
                anyhow::ensure!(
                    src.size() == t.size(),
                    "optimizer state `{key}` has shape {:?}, expected {:?}",
                    src.size(),
                    t.size()
                );
                tch::no_grad(|| t.copy_(src));
            }
        }
        self.steps = steps.to_kind(Kind::Int64).int64_value(&[0]) as u64;
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

    #[test]
    fn state_round_trips() {
        let p = Tensor::randn([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        p.square().sum(Kind::Float).backward();
        let group = || ParamGroup {
            label: "g".into(),
            params: vec![("p".into(), p.shallow_clone())],
            weight_decay: 0.0,
            lr_scale: 1.0,
        };
        let mut a = AdamW::new(vec![group()], AdamWConfig::default());
        a.step(0.1);
        let state: HashMap<String, Tensor> = a
            .state_tensors()
            .into_iter()
            .map(|(k, v)| (k, v.copy()))
            .collect();
        let mut b = AdamW::new(vec![group()], AdamWConfig::default());
        b.load_state(&state).unwrap();
        assert_eq!(b.steps(), 1);
        assert!(b.exp_avg["p"].equal(&a.exp_avg["p"]));
        let mut partial = state;
        partial.remove("exp_avg_sq.p");
        assert!(b
            .load_state(&partial)
            .unwrap_err()
            .to_string()
            .contains("exp_avg_sq.p"));
    }
}
