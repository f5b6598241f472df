//! 2-D normalisation for conv modules: batch norm with each rank's statistics, batch norm with
//! statistics all-reduced over the data-parallel ranks (synchronised), or group norm.

use tch::nn::{self, Init};
use tch::{Kind, Tensor};

use crate::dist::ProcessGroup;
use crate::params::norm::Norm;

/// Running-statistics momentum of PyTorch's batch norm.
const MOMENTUM: f64 = 0.1;
/// Variance epsilon of PyTorch's batch and group norm.
const EPS: f64 = 1e-5;
/// Groups of group norm where the channels allow (MMSegmentation's usual `num_groups`).
const MAX_GROUPS: i64 = 32;

/// How a model's conv modules normalise, and the ranks synchronised batch norm pools over.
#[derive(Debug, Clone, Default)]
pub struct NormSpec {
    /// Which normalisation.
    pub kind: Norm,
    /// The data-parallel group that `sync_bn` all-reduces over (None: one process, or a
    /// model built for inference, where the running statistics are used).
    pub group: Option<ProcessGroup>,
}

impl NormSpec {
    /// `kind` on one process.
    pub fn local(kind: Norm) -> Self {
        NormSpec { kind, group: None }
    }
}

/// A normalisation layer over `[batch, channels, h, w]`: `.bn` (batch norm, plain or
/// synchronised) or `.gn` (group norm) under its module's path, as MMSegmentation names them.
#[derive(Debug)]
pub enum Norm2d {
    /// Batch norm; with a group, its training statistics span all ranks.
    Batch(BatchNorm2d),
    /// Group norm.
    Group(nn::GroupNorm),
}

impl Norm2d {
    /// The layer of `spec` over `channels`, under `module / "bn"` or `module / "gn"`.
    pub fn new(module: &nn::Path, channels: i64, spec: &NormSpec) -> Self {
        match spec.kind {
            Norm::Gn => Norm2d::Group(nn::group_norm(
                module / "gn",
                group_count(channels),
                channels,
                Default::default(),
            )),
            Norm::Bn => Norm2d::Batch(BatchNorm2d::new(module / "bn", channels, None)),
            Norm::SyncBn => Norm2d::Batch(BatchNorm2d::new(
                module / "bn",
                channels,
                spec.group.clone().filter(|g| g.world_size() > 1),
            )),
        }
    }

    /// Normalises `x`; batch norm uses batch statistics (and updates its running ones) when
    /// `train`, its running statistics otherwise.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> anyhow::Result<Tensor> {
        match self {
            Norm2d::Batch(bn) => bn.forward_t(x, train),
            Norm2d::Group(gn) => Ok(nn::Module::forward(gn, x)),
        }
    }
}

/// The most groups, at most [`MAX_GROUPS`], that split `channels` evenly into groups of at least
/// two channels (so a 1×1 map still has two values per group).
fn group_count(channels: i64) -> i64 {
    (1..=MAX_GROUPS.min(channels / 2).max(1))
        .rev()
        .find(|g| channels % g == 0)
        .unwrap_or(1)
}

/// Batch norm with PyTorch's names (`weight`, `bias`, `running_mean`, `running_var`), momentum
/// and unbiased running variance; with a group of several ranks, training statistics are the
/// global batch's: sums all-reduced in the forward pass, and their gradients in the backward
/// pass, so every rank's gradient is the one a single process with the whole batch computes.
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    group: Option<ProcessGroup>,
}

impl BatchNorm2d {
    /// A layer over `channels` under `path`; `group` makes it synchronised.
    pub fn new(path: nn::Path, channels: i64, group: Option<ProcessGroup>) -> Self {
        BatchNorm2d {
            weight: path.var("weight", &[channels], Init::Const(1.0)),
            bias: path.var("bias", &[channels], Init::Const(0.0)),
            running_mean: path.zeros_no_train("running_mean", &[channels]),
            running_var: path.ones_no_train("running_var", &[channels]),
            group,
        }
    }

    /// Normalises `x` (see [`Norm2d::forward_t`]).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> anyhow::Result<Tensor> {
        match &self.group {
            Some(group) if train => self.synchronised(x, group),
            _ => Ok(x.batch_norm(
                Some(&self.weight),
                Some(&self.bias),
                Some(&self.running_mean),
                Some(&self.running_var),
                train,
                MOMENTUM,
                EPS,
                false,
            )),
        }
    }

    /// Training-mode batch norm over the global batch of `group`'s ranks.
    fn synchronised(&self, x: &Tensor, group: &ProcessGroup) -> anyhow::Result<Tensor> {
        let channels = x.size()[1];
        let x = x.to_kind(Kind::Float);
        let per_channel = |t: &Tensor| t.sum_dim_intlist([0, 2, 3].as_slice(), false, Kind::Float);
        let local_count = (x.numel() as i64 / channels) as f64;
        let count = Tensor::from_slice(&[local_count])
            .to_kind(Kind::Float)
            .to_device(x.device());
        let sums =
            group.all_reduce_sum_differentiable(&Tensor::cat(&[per_channel(&x), count], 0))?;
        let total = sums.narrow(0, channels, 1);
        let mean = sums.narrow(0, 0, channels) / &total;
        let centered = &x - mean.view([1, channels, 1, 1]);
        let squares = group.all_reduce_sum_differentiable(&per_channel(&centered.square()))?;
        let var = squares / &total;
        let n = total.double_value(&[0]);
        tch::no_grad(|| {
            let unbiased = var.detach() * (n / (n - 1.0).max(1.0));
            let mut running_mean = self.running_mean.shallow_clone();
            let mut running_var = self.running_var.shallow_clone();
            running_mean.copy_(&(&self.running_mean * (1.0 - MOMENTUM) + mean.detach() * MOMENTUM));
            running_var.copy_(&(&self.running_var * (1.0 - MOMENTUM) + unbiased * MOMENTUM));
        });
        let inv_std = (var + EPS).rsqrt().view([1, channels, 1, 1]);
        Ok(centered * inv_std * self.weight.view([1, channels, 1, 1])
            + self.bias.view([1, channels, 1, 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn group_norm_splits_channels_into_groups_of_two_or_more() {
        assert_eq!(group_count(512), 32);
        assert_eq!(group_count(32), 16);
        assert_eq!(group_count(6), 3);
        assert_eq!(group_count(2), 1);
    }

    #[test]
    fn batch_norm_has_pytorchs_names_and_normalises() {
        let vs = nn::VarStore::new(Device::Cpu);
        let norm = Norm2d::new(&(vs.root() / "m"), 4, &NormSpec::local(Norm::SyncBn));
        let names: Vec<String> = {
            let mut n: Vec<String> = vs.variables().into_keys().collect();
            n.sort();
            n
        };
        assert_eq!(
            names,
            [
                "m.bn.bias",
                "m.bn.running_mean",
                "m.bn.running_var",
                "m.bn.weight"
            ]
        );
        let x = Tensor::randn([3, 4, 5, 5], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let y = norm.forward_t(&x, true).unwrap();
        let mean = y.mean_dim([0, 2, 3].as_slice(), false, Kind::Float);
        assert!(mean.abs().max().double_value(&[]) < 1e-5);
        let gn = Norm2d::new(&(vs.root() / "g"), 4, &NormSpec::local(Norm::Gn));
        assert!(vs.variables().contains_key("g.gn.weight"));
        assert_eq!(gn.forward_t(&x, true).unwrap().size(), x.size());
    }
}
