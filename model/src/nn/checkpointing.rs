//! Activation checkpointing per block, built on plain autograd (tch has no
//! `torch.utils.checkpoint`): a checkpointed stack of blocks runs forward without a graph,
//! keeping only each block's input, and hands the rest of the model a leaf tensor. After the
//! loss's backward pass has filled that leaf's gradient, [`Tape::backward`] recomputes the
//! blocks in reverse, each on its saved input made a leaf, and back-propagates the incoming
//! gradient through it with `(out · grad_out).sum().backward()`: the weights collect their
//! gradients and the leaf collects the gradient for the block before it.
//!
//! Randomness (drop path) replays exactly: before a block that draws from torch's generator,
//! a seed is drawn from the generator and the generator reseeded with it, and the recompute
//! reseeds with the same seed. Unchecked stacks fork the generator the same way (see
//! [`run_blocks`]), so checkpointing changes memory and time, never the numbers.

use std::cell::RefCell;
use std::rc::Rc;

use tch::{Device, Kind, Tensor};

use super::layers::{Block, TokenMixing};

/// One block of a stack as the tape replays it: its input → output function.
type Segment = Rc<dyn Fn(&Tensor) -> Tensor>;

/// A checkpointed stack run of one forward pass.
struct Run {
    /// The stack's input, still in the graph of what came before the stack.
    entry: Tensor,
    /// Each block's input, without a graph.
    inputs: Vec<Tensor>,
    /// The seed each block's randomness was drawn with, if it draws any.
    seeds: Vec<Option<i64>>,
    /// The blocks.
    segments: Vec<Segment>,
    /// The leaf the rest of the model was given.
    output: Tensor,
}

/// Records the checkpointed stacks of a training step and replays them after the loss's
/// backward pass. Clones share one record.
#[derive(Clone, Default)]
pub struct Tape {
    runs: Rc<RefCell<Vec<Run>>>,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tape({} runs)", self.runs.borrow().len())
    }
}

impl Tape {
    /// Runs `segments` (each with whether it draws randomness) one after the other on `x`
    /// without a graph; returns the output as a leaf whose gradient [`Tape::backward`] carries
    /// back through them.
    fn run(&self, x: &Tensor, segments: Vec<(Segment, bool)>) -> Tensor {
        let mut inputs = Vec::with_capacity(segments.len());
        let mut seeds = Vec::with_capacity(segments.len());
        let mut h = x.detach();
        tch::no_grad(|| {
            for (segment, random) in &segments {
                seeds.push(random.then(fork_rng));
                let next = segment(&h);
                inputs.push(std::mem::replace(&mut h, next));
            }
        });
        let output = h.set_requires_grad(true);
        self.runs.borrow_mut().push(Run {
            entry: x.shallow_clone(),
            inputs,
            seeds,
            segments: segments.into_iter().map(|(s, _)| s).collect(),
            output: output.shallow_clone(),
        });
        output
    }

    /// Back-propagates through the recorded stacks, the last recorded first, then forgets
    /// them. Call it after `loss.backward()`; without recorded stacks it does nothing.
    pub fn backward(&self) {
        let runs = std::mem::take(&mut *self.runs.borrow_mut());
        for run in runs.into_iter().rev() {
            let mut grad = run.output.grad();
            if !grad.defined() {
                continue;
            }
            for i in (0..run.segments.len()).rev() {
                let input = run.inputs[i].detach().set_requires_grad(true);
                if let Some(seed) = run.seeds[i] {
                    tch::manual_seed(seed);
                }
                let out = (run.segments[i])(&input);
                (out * &grad).sum(Kind::Float).backward();
                grad = input.grad();
            }
            if run.entry.requires_grad() {
                (&run.entry * &grad).sum(Kind::Float).backward();
            }
        }
    }

    /// Forgets what was recorded (a step that failed before its backward pass).
    pub fn clear(&self) {
        self.runs.borrow_mut().clear();
    }
}

/// Draws a seed from torch's generator and reseeds the generator with it: what is drawn
/// next can be drawn again after `tch::manual_seed(seed)`.
fn fork_rng() -> i64 {
    let seed = Tensor::randint(1 << 62, [1], (Kind::Int64, Device::Cpu)).int64_value(&[0]);
    tch::manual_seed(seed);
    seed
}

/// Runs `blocks` in order on `x`, block `i` mixing tokens as `mixing(i)`. In training with a
/// `tape`, the stack is checkpointed; otherwise every activation is kept as usual. Either
/// way the generator is forked before each block that draws randomness, so both give the
/// same numbers.
pub fn run_blocks(
    blocks: &[Rc<Block>],
    x: &Tensor,
    mixing: &dyn Fn(usize) -> TokenMixing,
    train: bool,
    tape: Option<&Tape>,
) -> Tensor {
    match tape {
        Some(tape) if train => {
            let segments = blocks
                .iter()
                .enumerate()
                .map(|(i, block)| {
                    let (block, mixing) = (Rc::clone(block), mixing(i));
                    let segment: Segment =
                        Rc::new(move |h: &Tensor| block.forward(h, mixing, true));
                    (segment, blocks[i].is_random(true))
                })
                .collect();
            tape.run(x, segments)
        }
        _ => blocks
            .iter()
            .enumerate()
            .fold(x.shallow_clone(), |h, (i, block)| {
                if block.is_random(train) {
                    fork_rng();
                }
                block.forward(&h, mixing(i), train)
            }),
    }
}
