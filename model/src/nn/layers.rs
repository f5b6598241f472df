//! Transformer building blocks with timm parameter names: attention, MLP, drop path and the
//! (parallel) block that the ViT, the MAE decoder and ViTDet stack.

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

/// LayerNorm epsilon of timm's ViT and of MAE.
pub const LAYER_NORM_EPS: f64 = 1e-6;

/// Xavier-uniform initialisation for a `fan_in → fan_out` weight (MAE's choice for Linear).
pub fn xavier_uniform(fan_in: i64, fan_out: i64) -> Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// A linear layer with a Xavier-uniform weight and a zero bias.
pub fn linear(path: nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: xavier_uniform(in_dim, out_dim),
        bs_init: Some(Init::Const(0.0)),
        bias,
    };
    nn::linear(path, in_dim, out_dim, config)
}

/// A LayerNorm over the last dimension with timm's epsilon.
pub fn layer_norm(path: nn::Path, dim: i64) -> nn::LayerNorm {
    nn::layer_norm(
        path,
        vec![dim],
        nn::LayerNormConfig {
            eps: LAYER_NORM_EPS,
            ..Default::default()
        },
    )
}

/// Stochastic depth: zeroes whole samples with probability `rate` in training and rescales
/// the kept ones, so the expectation is unchanged.
pub fn drop_path(x: &Tensor, rate: f64, train: bool) -> Tensor {
    if !train || rate <= 0.0 {
        return x.shallow_clone();
    }
    let keep = 1.0 - rate;
    let mut shape = vec![x.size()[0]];
    shape.resize(x.dim(), 1);
    let mask = Tensor::empty(shape.as_slice(), (x.kind(), x.device())).bernoulli_float_(keep);
    x * mask / keep
}

/// How attention weights are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKernel {
    /// `scaled_dot_product_attention`: one fused kernel (flash or memory-efficient on GPUs,
    /// the fused CPU kernel here), without the `[tokens, tokens]` weights kept for backward.
    Fused,
    /// `softmax(q·kᵀ/√d)·v` spelled out: the reference the fused kernel is tested against.
    Explicit,
}

/// Attention of `q`, `k`, `v` (`[batch, heads, tokens, head_dim]`) with `kernel`; `bias`
/// (`[batch, heads, tokens, tokens]`) is added to the scaled scores before the softmax.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    kernel: AttentionKernel,
) -> Tensor {
    match kernel {
        AttentionKernel::Fused => {
            Tensor::scaled_dot_product_attention(q, k, v, bias, 0.0, false, None, false)
        }
        AttentionKernel::Explicit => {
            let scale = (q.size()[3] as f64).powf(-0.5);
            let scores = (q * scale).matmul(&k.transpose(-2, -1));
            let scores = match bias {
                Some(bias) => scores + bias,
                None => scores,
            };
            scores.softmax(-1, q.kind()).matmul(v)
        }
    }
}

/// ViTDet's decomposed relative position biases of one attention over a fixed `height ×
/// width` token grid: per-axis tables `rel_pos_h` `[2·height − 1, head_dim]` and `rel_pos_w`
/// `[2·width − 1, head_dim]`, zero-initialised. The bias of query `i` and key `j` is
/// `q_i · (rel_pos_h[y_i − y_j] + rel_pos_w[x_i − x_j])`.
#[derive(Debug)]
pub struct RelPos {
    rel_pos_h: Tensor,
    rel_pos_w: Tensor,
    height: i64,
    width: i64,
}

impl RelPos {
    /// Zero tables under `path` for a `height × width` grid and heads of `head_dim`.
    pub fn new(path: &nn::Path, height: i64, width: i64, head_dim: i64) -> Self {
        RelPos {
            rel_pos_h: path.var("rel_pos_h", &[2 * height - 1, head_dim], Init::Const(0.0)),
            rel_pos_w: path.var("rel_pos_w", &[2 * width - 1, head_dim], Init::Const(0.0)),
            height,
            width,
        }
    }

    /// The bias `[batch, heads, tokens, tokens]` for queries `q` (`[batch, heads, tokens,
    /// head_dim]`, tokens in row-major grid order), from one product per axis.
    pub fn bias(&self, q: &Tensor) -> Tensor {
        let (b, heads, n, d) = q.size4().expect("queries are [batch, heads, tokens, dim]");
        let (h, w) = (self.height, self.width);
        let rows = q.reshape([b * heads, h, w, d]);
        let by_row = axis_offsets(&self.rel_pos_h, h).to_kind(q.kind());
        let by_col = axis_offsets(&self.rel_pos_w, w).to_kind(q.kind());
        let rel_h = Tensor::einsum("bhwc,hkc->bhwk", &[&rows, &by_row], None::<i64>);
        let rel_w = Tensor::einsum("bhwc,wkc->bhwk", &[&rows, &by_col], None::<i64>);
        (rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2)).reshape([b, heads, n, n])
    }
}

/// `table[i − j + size − 1]` for every pair of positions `i`, `j` of an axis of `size`:
/// `[size, size, head_dim]`.
fn axis_offsets(table: &Tensor, size: i64) -> Tensor {
    let positions = Tensor::arange(size, (Kind::Int64, table.device()));
    let offsets = positions.unsqueeze(1) - positions.unsqueeze(0) + (size - 1);
    table
        .index_select(0, &offsets.reshape([-1]))
        .reshape([size, size, -1])
}

/// Multi-head self-attention (`qkv`, `proj`, and with relative position biases `rel_pos_h`,
/// `rel_pos_w`).
#[derive(Debug)]
pub struct Attention {
    qkv: nn::Linear,
    proj: nn::Linear,
    num_heads: i64,
    rel_pos: Option<RelPos>,
}

impl Attention {
    /// Creates the attention of width `dim` under `path` (`path.qkv`, `path.proj`).
    pub fn new(path: nn::Path, dim: i64, num_heads: i64, qkv_bias: bool) -> Self {
        Attention {
            qkv: linear(&path / "qkv", dim, 3 * dim, qkv_bias),
            proj: linear(&path / "proj", dim, dim, true),
            num_heads,
            rel_pos: None,
        }
    }

    /// Adds zero-initialised relative position biases under `path` for the `height × width`
    /// token grid this attention always sees.
    pub fn add_rel_pos(&mut self, path: &nn::Path, height: i64, width: i64) {
        let head_dim = self.qkv.ws.size()[1] / self.num_heads;
        self.rel_pos = Some(RelPos::new(path, height, width, head_dim));
    }

    /// Attends over the tokens of `x` (`[batch, tokens, dim]`) with the fused kernel.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(x, AttentionKernel::Fused)
    }

    /// Attends over the tokens of `x` (`[batch, tokens, dim]`) with `kernel`.
    pub fn forward_with(&self, x: &Tensor, kernel: AttentionKernel) -> Tensor {
        let (b, n, c) = x.size3().expect("attention input is [batch, tokens, dim]");
        let head_dim = c / self.num_heads;
        let qkv = self
            .qkv
            .forward(x)
            .reshape([b, n, 3, self.num_heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let q = qkv.get(0);
        let bias = self.rel_pos.as_ref().map(|rel_pos| rel_pos.bias(&q));
        let out = attend(&q, &qkv.get(1), &qkv.get(2), bias.as_ref(), kernel);
        self.proj.forward(&out.transpose(1, 2).reshape([b, n, c]))
    }
}

/// The two-layer MLP of a transformer block (`fc1`, GELU, `fc2`).
#[derive(Debug)]
pub struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Mlp {
    /// Creates the MLP `dim → hidden → dim` under `path`.
    pub fn new(path: nn::Path, dim: i64, hidden: i64) -> Self {
        Mlp {
            fc1: linear(&path / "fc1", dim, hidden, true),
            fc2: linear(&path / "fc2", hidden, dim, true),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).gelu("none"))
    }
}

/// How the attention branches of a block mix tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMixing {
    /// Every token attends to every token.
    Global,
    /// Tokens of a `height × width` patch grid (no class token) attend within
    /// non-overlapping `size × size` windows; the grid is zero-padded to a multiple of `size`.
    Window {
        /// Rows of the patch grid.
        height: i64,
        /// Columns of the patch grid.
        width: i64,
        /// Window side in tokens.
        size: i64,
    },
}

/// Width and sub-layer sizes of one block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockDims {
    /// Token width.
    pub dim: i64,
    /// Attention heads.
    pub num_heads: i64,
    /// MLP hidden width.
    pub mlp_hidden: i64,
    /// Whether `qkv` has a bias.
    pub qkv_bias: bool,
}

/// One stage of `parallel` transformer branches that read the same input:
/// `x += Σ_i drop_path(attn_i(norm_i(x)))`, then `x += Σ_i drop_path(mlp_i(norm_i(x)))`.
///
/// Parameter names follow timm: a single branch is a plain `Block` (`norm1`, `attn`, `norm2`,
/// `mlp`); several branches follow timm's `ParallelThingsBlock` (`attns.{i}.norm`,
/// `attns.{i}.attn`, `ffns.{i}.norm`, `ffns.{i}.mlp`).
#[derive(Debug)]
pub struct Block {
    attns: Vec<(nn::LayerNorm, Attention)>,
    ffns: Vec<(nn::LayerNorm, Mlp)>,
    drop_path: f64,
}

impl Block {
    /// Creates a block of `parallel` branches under `path` with stochastic depth `drop_path`.
    pub fn new(path: nn::Path, dims: BlockDims, parallel: usize, drop_path: f64) -> Self {
        let branch = |i: usize| {
            if parallel == 1 {
                let attn = (
                    layer_norm(&path / "norm1", dims.dim),
                    Attention::new(&path / "attn", dims.dim, dims.num_heads, dims.qkv_bias),
                );
                let ffn = (
                    layer_norm(&path / "norm2", dims.dim),
                    Mlp::new(&path / "mlp", dims.dim, dims.mlp_hidden),
                );
                (attn, ffn)
            } else {
                let a = &path / "attns" / i;
                let f = &path / "ffns" / i;
                let attn = (
                    layer_norm(&a / "norm", dims.dim),
                    Attention::new(&a / "attn", dims.dim, dims.num_heads, dims.qkv_bias),
                );
                let ffn = (
                    layer_norm(&f / "norm", dims.dim),
                    Mlp::new(&f / "mlp", dims.dim, dims.mlp_hidden),
                );
                (attn, ffn)
            }
        };
        let (attns, ffns) = (0..parallel).map(branch).unzip();
        Block {
            attns,
            ffns,
            drop_path,
        }
    }

    /// Gives every branch's attention relative position biases for a `height × width` token
    /// grid, under the names [`Block::new`] gives the branches (`path` is the block's).
    pub fn add_rel_pos(&mut self, path: &nn::Path, height: i64, width: i64) {
        let single = self.attns.len() == 1;
        for (i, (_, attn)) in self.attns.iter_mut().enumerate() {
            let attn_path = if single {
                path / "attn"
            } else {
                path / "attns" / i / "attn"
            };
            attn.add_rel_pos(&attn_path, height, width);
        }
    }

    /// Whether a forward pass draws from torch's generator (drop path in training).
    pub fn is_random(&self, train: bool) -> bool {
        train && self.drop_path > 0.0
    }

    /// Applies the block to `x` (`[batch, tokens, dim]`) with fused attention.
    pub fn forward(&self, x: &Tensor, mixing: TokenMixing, train: bool) -> Tensor {
        self.forward_with(x, mixing, train, AttentionKernel::Fused)
    }

    /// Applies the block to `x` (`[batch, tokens, dim]`) with the attention `kernel`.
    pub fn forward_with(
        &self,
        x: &Tensor,
        mixing: TokenMixing,
        train: bool,
        kernel: AttentionKernel,
    ) -> Tensor {
        let mut attended = Tensor::zeros_like(x);
        for (norm, attn) in &self.attns {
            let y = mix_tokens(&norm.forward(x), mixing, |t| attn.forward_with(t, kernel));
            attended += drop_path(&y, self.drop_path, train);
        }
        let x = x + attended;
        let mut fed = Tensor::zeros_like(&x);
        for (norm, mlp) in &self.ffns {
            fed += drop_path(&mlp.forward(&norm.forward(&x)), self.drop_path, train);
        }
        x + fed
    }
}

/// Runs `attend` over all tokens, or window by window.
fn mix_tokens(x: &Tensor, mixing: TokenMixing, attend: impl Fn(&Tensor) -> Tensor) -> Tensor {
    match mixing {
        TokenMixing::Global => attend(x),
        TokenMixing::Window {
            height,
            width,
            size,
        } => {
            let (b, _, c) = x.size3().expect("tokens are [batch, tokens, dim]");
            let pad_h = (size - height % size) % size;
            let pad_w = (size - width % size) % size;
            let grid =
                x.reshape([b, height, width, c])
                    .pad([0, 0, 0, pad_w, 0, pad_h], "constant", 0.0);
            let (hp, wp) = (height + pad_h, width + pad_w);
            let windows = grid
                .reshape([b, hp / size, size, wp / size, size, c])
                .permute([0, 1, 3, 2, 4, 5])
                .reshape([-1, size * size, c]);
            let out = attend(&windows)
                .reshape([b, hp / size, wp / size, size, size, c])
                .permute([0, 1, 3, 2, 4, 5])
                .reshape([b, hp, wp, c]);
            out.narrow(1, 0, height)
                .narrow(2, 0, width)
                .reshape([b, height * width, c])
        }
    }
}

/// Number of elements of all trainable and frozen variables of a store.
pub fn count_parameters(vs: &nn::VarStore) -> u64 {
    vs.variables().values().map(|t| t.numel() as u64).sum()
}

/// Mean over all elements as an `f64` (for logging).
pub fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Block widths small enough for quick tests.
    const TINY: BlockDims = BlockDims {
        dim: 8,
        num_heads: 2,
        mlp_hidden: 16,
        qkv_bias: true,
    };

    /// `block` in eval mode with windows of `size` over a `grid` (height, width) of tokens.
    fn forward_windowed(block: &Block, x: &Tensor, grid: (i64, i64), size: i64) -> Tensor {
        let (height, width) = grid;
        block.forward(
            x,
            TokenMixing::Window {
                height,
                width,
                size,
            },
            false,
        )
    }

    #[test]
    fn decomposed_relative_position_bias_equals_the_explicit_pairwise_one() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let (h, w, d) = (3i64, 4i64, 5i64);
        let rel_pos = RelPos::new(&vs.root(), h, w, d);
        tch::no_grad(|| {
            let _ = rel_pos.rel_pos_h.shallow_clone().normal_(0.0, 1.0);
            let _ = rel_pos.rel_pos_w.shallow_clone().normal_(0.0, 1.0);
        });
        let q = Tensor::randn([2, 2, h * w, d], (Kind::Float, Device::Cpu));
        let decomposed = rel_pos.bias(&q);
        // Pair by pair: q_i · (table_h[y_i − y_j + h − 1] + table_w[x_i − x_j + w − 1]).
        let explicit = Tensor::zeros([2, 2, h * w, h * w], (Kind::Float, Device::Cpu));
        for i in 0..h * w {
            for j in 0..h * w {
                let (yi, xi, yj, xj) = (i / w, i % w, j / w, j % w);
                let offset =
                    rel_pos.rel_pos_h.get(yi - yj + h - 1) + rel_pos.rel_pos_w.get(xi - xj + w - 1);
                let value = (q.narrow(2, i, 1).squeeze_dim(2) * offset).sum_dim_intlist(
                    -1,
                    false,
                    Kind::Float,
                );
                explicit
                    .narrow(2, i, 1)
                    .narrow(3, j, 1)
                    .copy_(&value.reshape([2, 2, 1, 1]));
            }
        }
        let gap = (&decomposed - &explicit).abs().max().double_value(&[]);
        assert!(gap < 1e-5, "largest difference {gap}");
        // Zero tables (the fine-tuning start) add nothing.
        let zero = RelPos::new(&(vs.root() / "zero"), h, w, d);
        assert_eq!(zero.bias(&q).abs().max().double_value(&[]), 0.0);
        // The fused kernel with the bias equals the explicit form.
        let (k, v) = (q.rand_like(), q.rand_like());
        let fused = attend(&q, &k, &v, Some(&decomposed), AttentionKernel::Fused);
        let spelled = attend(&q, &k, &v, Some(&explicit), AttentionKernel::Explicit);
        assert!(fused.allclose(&spelled, 1e-4, 1e-5, false));
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(
            names.contains(&"rel_pos_h".to_string())
                && names.contains(&"zero.rel_pos_w".to_string())
        );
        assert_eq!(rel_pos.rel_pos_h.size(), [2 * h - 1, d]);
    }

    #[test]
    fn small_windows_differ_from_global_attention_and_padding_keeps_the_shape() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = Block::new(vs.root(), TINY, 2, 0.0);
        let x = Tensor::randn([2, 16, 8], (Kind::Float, Device::Cpu));
        let global = block.forward(&x, TokenMixing::Global, false);
        let windowed = forward_windowed(&block, &x, (4, 4), 2);
        assert!(!global.allclose(&windowed, 1e-4, 1e-5, false));
        let odd = Tensor::randn([2, 15, 8], (Kind::Float, Device::Cpu));
        let padded = forward_windowed(&block, &odd, (3, 5), 2);
        assert_eq!(padded.size(), vec![2, 15, 8]);
    }

    #[test]
    fn windows_covering_the_grid_exactly_match_global_attention() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = Block::new(vs.root(), TINY, 1, 0.0);
        let x = Tensor::randn([2, 16, 8], (Kind::Float, Device::Cpu));
        let global = block.forward(&x, TokenMixing::Global, false);
        let window = forward_windowed(&block, &x, (4, 4), 4);
        assert!(global.allclose(&window, 1e-5, 1e-6, false));
    }

    #[test]
    fn parallel_blocks_use_timm_parallel_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = Block::new(vs.root() / "blocks" / 0, TINY, 2, 0.0);
        let names = vs.variables();
        for name in [
            "blocks.0.attns.1.norm.weight",
            "blocks.0.attns.0.attn.qkv.weight",
            "blocks.0.ffns.1.mlp.fc2.bias",
        ] {
            assert!(names.contains_key(name), "missing {name}");
        }
    }

    /// Output and gradients (input first, then every variable by name) of `block` on `x`.
    fn output_and_grads(
        vs: &nn::VarStore,
        block: &Block,
        x: &Tensor,
        mixing: TokenMixing,
        kernel: AttentionKernel,
    ) -> (Tensor, Vec<Tensor>) {
        let x = x.detach().set_requires_grad(true);
        for (_, mut v) in vs.variables() {
            v.zero_grad();
        }
        let out = block.forward_with(&x, mixing, true, kernel);
        (&out * out.sin()).sum(Kind::Float).backward();
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let grads = std::iter::once(x.grad())
            .chain(named.iter().map(|(_, v)| v.grad()))
            .map(|g| g.copy())
            .collect();
        (out.detach(), grads)
    }

    #[test]
    fn fused_attention_equals_the_explicit_form_forward_and_backward() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let block = Block::new(vs.root(), TINY, 2, 0.0);
        let x = Tensor::randn([3, 20, 8], (Kind::Float, Device::Cpu));
        let windows = TokenMixing::Window {
            height: 4,
            width: 5,
            size: 3,
        };
        for mixing in [TokenMixing::Global, windows] {
            let (fused, fused_grads) =
                output_and_grads(&vs, &block, &x, mixing, AttentionKernel::Fused);
            let (explicit, explicit_grads) =
                output_and_grads(&vs, &block, &x, mixing, AttentionKernel::Explicit);
            let diff = (&fused - &explicit).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{mixing:?}: forward differs by {diff}");
            assert_eq!(fused_grads.len(), explicit_grads.len());
            for (a, b) in fused_grads.iter().zip(&explicit_grads) {
                assert!(a.abs().max().double_value(&[]) > 0.0, "a gradient is zero");
                // fp32 sums of many terms: the error is relative to the gradient's scale.
                let scale = b.abs().max().double_value(&[]).max(1.0);
                let diff = (a - b).abs().max().double_value(&[]) / scale;
                assert!(
                    diff < 1e-5,
                    "{mixing:?}: gradients differ by {diff} (relative)"
                );
            }
        }
    }

    #[test]
    fn drop_path_keeps_the_expectation_and_is_identity_in_eval() {
        tch::manual_seed(2);
        let x = Tensor::ones([20000, 1], (Kind::Float, Device::Cpu));
        assert!(drop_path(&x, 0.3, false).equal(&x));
        let mean = drop_path(&x, 0.3, true).mean(Kind::Float).double_value(&[]);
        assert!((mean - 1.0).abs() < 0.03, "{mean}");
    }
}
