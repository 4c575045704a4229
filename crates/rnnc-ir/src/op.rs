//! The closed set of IR operations. Every op's semantics are pure and explicit
//! (no hidden state, eval mode only), so that printer, parser, verifier, interpreter
//! and, later, differentiation can all be exhaustive over this enum.

use crate::graph::Graph;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Sigmoid,
    Tanh,
    Relu,
    Exp,
    Log,
    /// 1 where x > 0, else 0 (NaN included): the Heaviside step, for thresholds.
    Step,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Which kind of loop-carried or per-step value a scan-body argument is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// Step `t` of the scan's i-th sequence operand (its time axis removed).
    Seq,
    /// The i-th state: the scan's initial value at the first step, then the
    /// body's i-th `next` value of the previous step.
    State,
    /// The i-th operand of a fused elementwise region.
    Operand,
    /// The i-th memory of a scan or decode loop: the same tensor at every step
    /// (the encoder states an attention reads).
    Memory,
}

/// A loop over time. Operands: the sequences (`[B, T, …]`, time is axis 1), then the
/// initial states, then the memories (read whole at every step). Results: each `emit` stacked over time (`[B, T, …]`), then each
/// final state. The body is its own graph whose outputs are the next states and
/// the emits; its loop-carried edges are the `state` arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub reverse: bool,
    pub n_seqs: usize,
    pub n_states: usize,
    /// Operands after the states that every step reads unchanged (`memory` in a cell).
    pub n_memory: usize,
    /// Time steps one run of `body` covers: 1, or k after `unroll-time{factor=k}`.
    /// A k-step body reads sequence s at offset j as `seq` argument `j * n_seqs + s`
    /// and yields the next states, then the emits of offset 0, 1, …, k-1.
    pub step: usize,
    pub body: Box<Graph>,
    /// With `step > 1`: the one-step body that runs the `T mod step` steps left over.
    pub tail: Option<Box<Graph>>,
}

impl Scan {
    /// Emits per time step.
    pub fn n_emits(&self) -> usize {
        (self.body.outputs.len() - self.n_states) / self.step.max(1)
    }

    /// A plain one-step scan.
    pub fn new(reverse: bool, n_seqs: usize, n_states: usize, body: Graph) -> Self {
        Scan {
            reverse,
            n_seqs,
            n_states,
            n_memory: 0,
            step: 1,
            body: Box::new(body),
            tail: None,
        }
    }
}

/// A generation loop: the body (one decoder step) reads the previous token (its
/// `seq 0`, i64 `[B]`: `bos` at the first step), its states and memories; it
/// yields the next states, then its emits, of which the first holds the scores over
/// the vocabulary (`[B, V]`; log_softmax is applied to them, so logits or
/// log-probabilities both work). Operands: the initial states, then the memories.
///
/// Greedy (`beam: None`) feeds back the argmax (the first index among equals) and
/// returns tokens i64 `[B, max_len]`, lengths i64 `[B]`, scores f32 `[B]`. Beam
/// search keeps `k` hypotheses per example and returns tokens `[B, k, max_len]`,
/// lengths `[B, k]`, scores `[B, k]`, best first. A sequence ends with its `eos`
/// (counted in its length) or at `max_len`; positions after its end hold `pad`.
/// Scores are sums of log-probabilities, with no length penalty.
#[derive(Clone, Debug, PartialEq)]
pub struct Decode {
    pub n_states: usize,
    pub n_memory: usize,
    pub bos: i64,
    pub eos: i64,
    pub pad: i64,
    pub max_len: usize,
    pub beam: Option<usize>,
    pub body: Box<Graph>,
}

impl Decode {
    /// The op's name in the text form (and in the language).
    pub fn name(&self) -> &'static str {
        match self.beam {
            Some(_) => "beam_search",
            None => "greedy_decode",
        }
    }
}

/// A region of elementwise ops evaluated as one kernel: one pass over memory, no
/// temporaries. Its body reads the region's operands through `operand` arguments and
/// `yield`s its results; inside are only elementwise ops and scalar constants.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused {
    pub body: Box<Graph>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A model input; with `zeros`, a missing input reads as zeros of its type.
    Input {
        name: String,
        zeros: bool,
    },
    /// A weight tensor, loaded by its PyTorch `state_dict` key.
    Weight {
        key: String,
    },
    /// A scalar f32 constant (rank 0).
    Const(f32),
    /// Zeros of the result type (`B` and `T` bound at run time).
    Zeros,
    Unary(UnaryOp),
    /// Elementwise with NumPy broadcasting.
    Binary(BinaryOp),
    /// `x @ w^T` over x's last axis: x `[…, k]`, w `[m, k]` → `[…, m]` (torch's F.linear).
    Linear,
    /// NumPy matmul for rank ≥ 2 operands: `[…, m, k] @ [k, n]` or batched `[…, k, n]`.
    MatMul,
    Concat {
        axis: usize,
    },
    /// Elements `start..end` of one axis.
    Slice {
        axis: usize,
        start: usize,
        end: usize,
    },
    /// Element `index` of one axis, which disappears; negative counts from the end.
    Index {
        axis: usize,
        index: i64,
    },
    /// Stacks equal-typed operands along a new axis.
    Stack {
        axis: usize,
    },
    /// Reverses one axis.
    Flip {
        axis: usize,
    },
    /// Swaps two axes.
    Transpose {
        a: usize,
        b: usize,
    },
    /// Row lookup: table `[n, d]`, ids i64 `[…]` → `[…, d]`.
    Embedding,
    Softmax {
        axis: usize,
    },
    LogSoftmax {
        axis: usize,
    },
    /// Normalises the last axis to zero mean and unit variance (no affine part).
    LayerNorm {
        eps: f32,
    },
    /// A new axis of length 1 at `axis`.
    Unsqueeze {
        axis: usize,
    },
    /// Removes `axis`, which has length 1.
    Squeeze {
        axis: usize,
    },
    /// Lengths i64 `[B]` and a sequence `[B, T, …]` → f32 `[B, T]`: 1 where
    /// `t < lengths[b]`, else 0. A length outside `1..=T` is an error at run time.
    SequenceMask,
    Scan(Scan),
    Decode(Decode),
    Fused(Fused),
    /// A body argument: `seq`/`state` in a scan body, `operand` in a fused region.
    Arg {
        kind: ArgKind,
        index: usize,
    },
}

impl Op {
    /// The op's name in the text form.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Weight { .. } => "weight",
            Op::Const(_) => "const",
            Op::Zeros => "zeros",
            Op::Unary(u) => match u {
                UnaryOp::Neg => "neg",
                UnaryOp::Sigmoid => "sigmoid",
                UnaryOp::Tanh => "tanh",
                UnaryOp::Relu => "relu",
                UnaryOp::Exp => "exp",
                UnaryOp::Log => "log",
                UnaryOp::Step => "step",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
            },
            Op::Linear => "linear",
            Op::MatMul => "matmul",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Index { .. } => "index",
            Op::Stack { .. } => "stack",
            Op::Flip { .. } => "flip",
            Op::Transpose { .. } => "transpose",
            Op::Embedding => "embedding",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::LayerNorm { .. } => "layer_norm",
            Op::Unsqueeze { .. } => "unsqueeze",
            Op::Squeeze { .. } => "squeeze",
            Op::SequenceMask => "sequence_mask",
            Op::Scan(_) => "scan",
            Op::Decode(d) => d.name(),
            Op::Fused(_) => "fused",
            Op::Arg {
                kind: ArgKind::Seq, ..
            } => "seq",
            Op::Arg {
                kind: ArgKind::State,
                ..
            } => "state",
            Op::Arg {
                kind: ArgKind::Operand,
                ..
            } => "operand",
            Op::Arg {
                kind: ArgKind::Memory,
                ..
            } => "memory",
        }
    }

    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_))
    }
}
