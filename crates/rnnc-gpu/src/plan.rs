//! The GPU plan: what both GPU backends emit and run. A model at one (B, T) becomes
//! one f32 buffer (the *arena*: every value has its own region at a fixed offset),
//! a list of kernels over it, and the order to launch them in: a *prologue* run once
//! after the weights are uploaded (stacked gate weights, folded biases), and the
//! per-run schedule, where each scan is a loop of launches (the recurrence as a
//! dispatch sequence, one launch per body op and step).
//!
//! The kernels are described, not written: `render.rs` turns each into WGSL or CUDA
//! C through a small dialect, so both targets come from the same plan.

use rnnc_ir::{BinaryOp, UnaryOp};
use serde::Serialize;

/// Threads per workgroup (block) of every one-dimensional kernel.
pub const THREADS: u32 = 64;
/// Side of a matrix-product tile (and of its workgroup: TILE × TILE threads).
pub const TILE: u32 = 16;

#[derive(Clone, Debug, Serialize)]
pub struct GpuPlan {
    /// The model's name, a C/WGSL identifier (file names, kernel prefixes).
    pub model: String,
    pub batch: usize,
    pub time: usize,
    /// The source length `S` of a sequence-to-sequence model (`time` elsewhere;
    /// not `source`, which the manifest uses for the kernel file).
    pub source_len: usize,
    /// Arena length in 32-bit words; it starts zeroed (zeros values are never written).
    pub arena_words: usize,
    pub inputs: Vec<Region>,
    /// Inputs that hold sequence lengths (`lengths = …`, `sequence_mask`): the
    /// host checks each is in `1..=max` (the interpreter's rule: `max` is the
    /// length of the axis they mask, T or S) before it writes them.
    pub lengths_inputs: Vec<LengthsInput>,
    /// Inputs of token ids and the rows of the smallest embedding table they index:
    /// the host checks each id is in `0..vocab`.
    pub ids_inputs: Vec<IdsInput>,
    pub outputs: Vec<Region>,
    /// Weight regions, uploaded from the `state_dict` by key before the prologue.
    pub weights: Vec<Region>,
    /// Scalar constants outside fused kernels, uploaded with the weights.
    pub constants: Vec<Constant>,
    pub kernels: Vec<Kernel>,
    pub prologue: Vec<Step>,
    pub schedule: Vec<Step>,
    /// Clock values the loops use: 0 ..= clock_max.
    pub clock_max: usize,
    /// How each scan's time step was planned, in source order.
    pub scans: Vec<ScanPlan>,
}

/// How one scan's time step runs.
#[derive(Clone, Debug, Serialize)]
pub struct ScanPlan {
    /// `scan0`, `scan1`, …: the prefix of its kernels' names.
    pub scan: String,
    /// `fused step`: the body's products and gate math in as few kernels as its
    /// data flow allows (a new kernel only where a product reads a value computed in
    /// the same step), the states double-buffered; `whole sequence`: those stages,
    /// every step, in one dispatch of one workgroup (barriers between stages), where
    /// the step fits one workgroup; `per op`: one kernel per body op.
    pub strategy: &'static str,
    /// Launches per run of the body, which covers `steps_per_body` time steps (more
    /// than one after `unroll-time`); 0 for a whole sequence (one launch in all).
    pub launches_per_body: usize,
    pub steps_per_body: usize,
    /// Why the fused step did not apply, where it did not.
    pub why: Option<String>,
}

/// An input of sequence lengths and the longest length it may hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LengthsInput {
    pub name: String,
    pub max: usize,
}

/// An input of token ids and the rows of the smallest table they index.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdsInput {
    pub name: String,
    pub vocab: usize,
}

/// A named, contiguous, row-major region of the arena.
#[derive(Clone, Debug, Serialize)]
pub struct Region {
    /// Input or output name, or weight key.
    pub name: String,
    pub offset: usize,
    pub shape: Vec<usize>,
    /// `f32`, or `id` for token ids, stored as f32 values (exact below 2^24; the
    /// host checks them against the vocabulary before it writes them).
    pub dtype: &'static str,
}

impl Region {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Constant {
    pub offset: usize,
    pub value: f32,
}

/// One launch in the dispatch order.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Launch kernel `kernel` (an index into `kernels`) once.
    Launch { kernel: usize },
    /// Run `body` `count` times; iteration i sees the clock `first + i * stride`
    /// (the scan step it starts at), which time-indexed copies read.
    Loop {
        count: usize,
        first: usize,
        stride: usize,
        body: Vec<Step>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Kernel {
    /// Unique identifier, from the model: the value it computes where that has a name.
    pub name: String,
    /// Workgroups (CUDA blocks) to launch, x/y/z.
    pub groups: [u32; 3],
    /// Threads per workgroup, x/y/z.
    pub threads: [u32; 3],
    /// Whether it reads the clock (its launches pass the loop's step).
    pub uses_clock: bool,
    /// What it computes, in the IR's words (comments in the emitted source).
    pub about: String,
    #[serde(skip)]
    pub body: Body,
}

/// Where a kernel reads or writes: `offset + Σ coordᵢ · stridesᵢ` over the kernel's
/// iteration shape, plus `time_index · time.stride` for a time-indexed access.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    pub offset: usize,
    pub strides: Vec<isize>,
    pub time: Option<TimeRef>,
}

/// The time index a copy in a scan body reads or writes: step `clock + lag` of the
/// scan, counted from the end when it runs in reverse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeRef {
    /// Words between time steps (negative for a sequence read through a flip).
    pub stride: isize,
    pub lag: usize,
    pub reverse: bool,
    pub steps: usize,
}

/// One scalar of an elementwise kernel, in terms of earlier ones.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// Load `i` of the kernel.
    Load(usize),
    Const(f32),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
}

/// A value of a fused step kernel, defined by how each element is computed from its
/// coordinates; operands are earlier entries of the kernel's list.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub shape: Vec<usize>,
    pub kind: ExprKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// Read from the arena (a state, the step's slice of a sequence, a weight, a value
    /// an earlier kernel of the step wrote).
    Load(Access),
    Const(f32),
    /// Elementwise over operands of this expression's shape.
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    /// Another expression read at coordinates computed from these (broadcasts,
    /// slices, transposes of a computed value).
    View {
        src: usize,
        coords: Vec<Coord>,
    },
    /// `Σ_k a(…) · b(…)` for `k < len`: each operand read at its coordinates, which see
    /// this expression's coordinates with `k` appended (as the last axis).
    Dot {
        len: usize,
        a: usize,
        a_coords: Vec<Coord>,
        b: usize,
        b_coords: Vec<Coord>,
    },
    /// The parts laid end to end along `axis`.
    Concat {
        axis: usize,
        parts: Vec<usize>,
    },
    /// Row reduction `op` (softmax, log-softmax, layer norm) of `src`, of this
    /// shape, along its last axis (`len` long): each element computes its row's
    /// reduction itself, reading `src` across the row, as the per-op kernels do.
    Row {
        op: RowOp,
        src: usize,
        len: usize,
    },
    /// Rows of a weight table (`[vocab, dim]`) picked by token ids: the element at
    /// (…, e) is `table[id, e]` for `id` the value of expression `ids` at (…), an
    /// f32 holding a whole number; zeros where it is out of range, as the per-op
    /// [`Body::Gather`] (the host rejects such ids before it launches anything).
    Gather {
        table: Access,
        vocab: usize,
        ids: usize,
    },
}

/// One coordinate of an operand: `base + scale · c[axis]`, or `base` alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coord {
    pub base: isize,
    pub from: Option<(usize, isize)>,
}

impl Coord {
    pub fn at(axis: usize) -> Self {
        Coord {
            base: 0,
            from: Some((axis, 1)),
        }
    }

    pub fn fixed(base: isize) -> Self {
        Coord { base, from: None }
    }
}

/// Stores of one shape in a fused step kernel: one pass over the shape's elements
/// evaluates each store's expression (shared parts once) and writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreGroup {
    pub shape: Vec<usize>,
    pub stores: Vec<(Access, usize)>,
}

/// One stage of a fused step: `exprs` in order, each group's stores evaluated over
/// its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub exprs: Vec<Expr>,
    pub groups: Vec<StoreGroup>,
}

/// A loop of a whole-sequence kernel: `count` iterations, iteration i at clock
/// `first + i * stride`, each running the stages in order with a workgroup barrier
/// after each.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqLoop {
    pub count: usize,
    pub first: usize,
    pub stride: usize,
    pub stages: Vec<Stage>,
}

/// The regions of a decode loop's hypotheses, one row each: tokens
/// (`[rows, max_len]`, token ids as f32), their count, the summed
/// log-probability, and 1 once finished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hypotheses {
    pub tokens: usize,
    pub lengths: usize,
    pub scores: usize,
    pub done: usize,
}

/// One step of beam search at clock t, a thread per example: of every
/// continuation of its live beams (rows `b * width + k` of `logits`) and each
/// finished beam as it stands, the best `width` (the earlier candidate among
/// equals) become its beams in `to`, their parents' rows in `parents`, their next
/// inputs in `prev` (`eos` for a finished one).
#[derive(Clone, Debug, PartialEq)]
pub struct BeamStep {
    pub batch: usize,
    pub width: usize,
    pub vocab: usize,
    pub max_len: usize,
    pub eos: f32,
    pub pad: f32,
    pub logits: usize,
    /// `[batch · width, vocab]` scratch for the log-probabilities.
    pub logp: usize,
    pub prev: usize,
    pub parents: usize,
    pub from: Hypotheses,
    pub to: Hypotheses,
}

/// Row-wise reductions over one axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowOp {
    Softmax,
    LogSoftmax,
    /// Zero mean, unit variance (biased variance, as PyTorch's layer_norm).
    LayerNorm(f32),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// Elementwise over `shape`: the scalars in order, each output storing one.
    Map {
        shape: Vec<usize>,
        loads: Vec<Access>,
        scalars: Vec<Scalar>,
        stores: Vec<(Access, usize)>,
    },
    /// `c[z] = a[z] · b[z]` for `z < batch`, c contiguous `[batch, m, n]`; `a`'s
    /// strides are (batch axes…, row, k), `b`'s (batch axes…, k, column), the batch
    /// axes `batch_dims` (broadcast axes have stride 0).
    MatMul {
        m: usize,
        n: usize,
        k: usize,
        batch_dims: Vec<usize>,
        a: Access,
        b: Access,
        c: usize,
    },
    /// 32-bit words copied over `shape` (slices, stacks, flips, time steps).
    Copy {
        shape: Vec<usize>,
        src: Access,
        dst: Access,
    },
    /// `op` along the middle axis of `[outer, len, inner]`, contiguous.
    Rows {
        op: RowOp,
        outer: usize,
        len: usize,
        inner: usize,
        src: usize,
        dst: usize,
    },
    /// Rows of `table` (`[vocab, dim]`) picked by the ids at `ids`; an id out of
    /// range reads zeros (the host rejects such ids before it launches anything).
    Gather {
        rows: usize,
        dim: usize,
        vocab: usize,
        table: usize,
        ids: usize,
        dst: usize,
    },
    /// `dst[r, :] = src[index[r], :]` for `r < rows`, rows of `dim` words (a beam's
    /// states after their parents); the row numbers are f32 values, all in range.
    Pick {
        rows: usize,
        dim: usize,
        src: usize,
        index: usize,
        dst: usize,
    },
    /// One step of greedy decoding at clock t, a thread per row: each unfinished row
    /// takes the argmax of the log-softmax of its `[vocab]` logits (the first among
    /// equals) as its token t and its next input, adds its log-probability to its
    /// score, and finishes at `eos`.
    Greedy {
        rows: usize,
        vocab: usize,
        max_len: usize,
        eos: f32,
        logits: usize,
        prev: usize,
        hyps: Hypotheses,
    },
    /// One step of beam search at clock t (see [`BeamStep`]).
    BeamStep(BeamStep),
    /// A fused time step (or a stage of one), launched once per step.
    Step(Stage),
    /// A whole scan in one workgroup: its loops in order, the clock counted inside.
    Sequence { loops: Vec<SeqLoop> },
}

impl Default for Body {
    fn default() -> Self {
        Body::Copy {
            shape: vec![],
            src: Access::contiguous(0, &[]),
            dst: Access::contiguous(0, &[]),
        }
    }
}

/// Row-major strides of `shape`.
pub fn row_major(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut s = 1isize;
    for (d, n) in shape.iter().enumerate().rev() {
        strides[d] = s;
        s *= *n as isize;
    }
    strides
}

impl Access {
    pub fn contiguous(offset: usize, shape: &[usize]) -> Self {
        Access {
            offset,
            strides: row_major(shape),
            time: None,
        }
    }
}

impl GpuPlan {
    /// The largest clock value any launch of `steps` sees.
    pub fn clock_max(steps: &[Step]) -> usize {
        let mut most = 0;
        crate::host::launches(steps, &mut |_, clock| most = most.max(clock));
        most
    }

    /// Launches in the per-run schedule, loops expanded (what one run dispatches).
    pub fn launches_per_run(&self) -> usize {
        let mut n = 0;
        crate::host::launches(&self.schedule, &mut |_, _| n += 1);
        n
    }
}
