//! From a scan body to a step program for one batch size and length: every value
//! becomes a view into a buffer (a sequence, a state, an emit, a load-time constant
//! or scratch), every op an instruction over views. Slices and indexing cost
//! nothing: they are views. Whatever has no instruction here is reported as
//! [`Unsupported`], and the model is refused.

use crate::layout::{broadcast, rows_cols, Layout};
use crate::pack::{pack_panels, panel_width};
use ndarray::ArrayD;
use rnnc_interp::load_time_values;
use rnnc_ir::{ArgKind, BinaryOp, DType, Dim, Graph, NodeId, Op, Scan, TensorTy, UnaryOp, Value};
use rnnc_kernels::Isa;
use rnnc_runtime::{Tensor, Weights};
use std::collections::HashMap;
use std::rc::Rc;

/// On the portable path, from this many rows on, a matrix product calls the
/// tuned GEMM instead of generated code. Measured (LSTM H=256, T=100, median ms,
/// generated vs GEMM): B=4 10.7 vs 15.7, B=8 23.3 vs 31.8, B=16 55.7 vs 44.1.
pub const GEMM_MIN_ROWS: usize = 16;

/// How a plan computes its matrix products: which code generated functions may
/// call in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Products {
    /// The kernels' ISA (`rnnc-kernels`); with [`Isa::Portable`], generated f32x4
    /// code, or the GEMM from `gemm_min_rows` rows on.
    pub isa: Isa,
    pub gemm_min_rows: usize,
}

impl Products {
    /// For code run in this process: the kernels of `isa`.
    pub fn jit(isa: Isa) -> Self {
        Products {
            isa,
            gemm_min_rows: GEMM_MIN_ROWS,
        }
    }

    /// For code that must not call into this process (object files): generated
    /// code only.
    pub fn standalone() -> Self {
        Products {
            isa: Isa::Portable,
            gemm_min_rows: usize::MAX,
        }
    }
}

pub use rnnc_ir::compiling::Unsupported;

pub(crate) fn unsupported<T>(msg: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported::new(msg))
}

/// Marks an [`Unsupported`] that the interpreter refuses too at these sizes.
const RUN_ERROR: &str = "run error: ";

/// Sizes the interpreter refuses as well (a value over its allocation limit, an
/// index out of range): `msg` is the interpreter's message, which a run reports.
pub(crate) fn run_error<T>(msg: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported::new(format!("{RUN_ERROR}{}", msg.into())))
}

/// The interpreter's message, where the interpreter refuses this run too.
pub fn as_run_error(why: &Unsupported) -> Option<&str> {
    why.0.strip_prefix(RUN_ERROR)
}

/// The buffers a compiled scan reads and writes, in the order of its pointer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Sequence operand `[B, T, F]`.
    Seq(usize),
    /// State buffer `[B, F]`: holds the initial state on entry, the final one on exit.
    /// Inside the loop, the state a step reads (the buffers alternate, see
    /// [`Plan::alt`]).
    State(usize),
    /// The buffer a step writes state `i`'s next value to: the one it does not
    /// read, so no thread overwrites a state another may still be reading, and
    /// the threads meet once per step. Not in the pointer table.
    NextState(usize),
    /// Memory operand `i` of a scan (`memory = …`, such as the encoder states an
    /// attention step reads), whole and the same at every step: `[B, …]`, read only.
    Memory(usize),
    /// Emit output `[B, T, F]`.
    Emit(usize),
    /// A load-time constant (a weight, folded value, or packed weight panels).
    Const(usize),
    /// The one scratch buffer every intermediate value lives in.
    Scratch,
    /// A compiled scan the program calls (whole-model programs only, `whole.rs`).
    Fn(usize),
}

/// A rows × cols window of f32 elements. `row_stride` 0 repeats one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub slot: Slot,
    /// Offset in elements.
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    /// For sequences and emits: (step offset j within an unrolled body, elements
    /// per time step). The element offset grows by `time(t + j) * stride`.
    pub time: Option<(usize, usize)>,
}

impl View {
    /// Step `j` of a `[B, T, width]` sequence or emit buffer whose time steps lie
    /// `pitch` elements apart (`pitch` > `width`: the columns of a wider value,
    /// such as one gate's slice of a hoisted projection, read in place).
    fn time_step(
        slot: Slot,
        batch: usize,
        time: usize,
        (width, pitch): (usize, usize),
        j: usize,
    ) -> Self {
        View {
            slot,
            offset: 0,
            rows: batch,
            cols: width,
            row_stride: time * pitch,
            time: Some((j, pitch)),
        }
    }

    /// The elements of its buffer the view may touch, first to last.
    pub(crate) fn span(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.rows.saturating_sub(1) * self.row_stride + self.cols
    }

    pub(crate) fn contiguous(slot: Slot, offset: usize, rows: usize, cols: usize) -> Self {
        View {
            slot,
            offset,
            rows,
            cols,
            row_stride: cols,
            time: None,
        }
    }
}

/// One step of elementwise code, over lanes of all operands at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EOp {
    Input(usize),
    Const(f32),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
}

/// An elementwise loop nest over `rows × cols`; inputs broadcast by their own shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Elementwise {
    pub rows: usize,
    pub cols: usize,
    pub inputs: Vec<View>,
    pub code: Vec<EOp>,
    /// (index into `code`, where the result goes).
    pub outputs: Vec<(usize, View)>,
}

impl Elementwise {
    /// The same loop with whole contiguous matrices run as one long row (when every
    /// operand is one, or a single element).
    pub fn flattened(&self) -> Elementwise {
        let (rows, cols) = (self.rows, self.cols);
        let dense = |v: &View| v.rows == rows && v.cols == cols && v.row_stride == cols;
        let scalar = |v: &View| v.rows == 1 && v.cols == 1;
        let mut f = self.clone();
        if rows > 1
            && f.inputs.iter().all(|v| dense(v) || scalar(v))
            && f.outputs.iter().all(|(_, v)| dense(v))
        {
            let views = f
                .inputs
                .iter_mut()
                .chain(f.outputs.iter_mut().map(|(_, v)| v));
            for v in views.filter(|v| !scalar(v)) {
                v.cols = rows * cols;
                v.rows = 1;
                v.row_stride = rows * cols;
            }
            f.cols = rows * cols;
            f.rows = 1;
        }
        f
    }
}

/// What [`Instr::Rows`] does with each row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowOp {
    Softmax,
    LogSoftmax,
    /// `(x − mean) / sqrt(var + eps)`, the variance over the row (no affine part).
    LayerNorm {
        eps: f32,
    },
    /// `Σ_k x[k] · w[k]` into the row's one result: a product with one result
    /// column, on the kernels' [`Isa::dot`] (`w` is the constant buffer of its K
    /// weights). A panel would compute 16 or 32 columns to keep one.
    Dot {
        w: usize,
    },
}

/// A decode loop's sequences, one per row (an example, or one hypothesis of a
/// beam), i64 values as two f32 units each.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyps {
    /// i64 `[rows]`: the token each row feeds the next step.
    pub prev: View,
    /// f32 `[rows]`: 1 once the row's sequence has ended.
    pub done: View,
    /// i64 `[rows, max_len]`: the tokens so far, `pad` after them.
    pub tokens: View,
    /// i64 `[rows]`: how many tokens.
    pub lengths: View,
    /// f32 `[rows]`: their summed log-probabilities.
    pub scores: View,
    /// f32 `[1]`: 1 once every row has ended (the loop then stops, as the
    /// interpreter's does).
    pub finished: View,
}

impl Hyps {
    pub(crate) fn all(&self) -> [View; 6] {
        [
            self.prev,
            self.done,
            self.tokens,
            self.lengths,
            self.scores,
            self.finished,
        ]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Instr {
    /// `out[r, m] = Σ_k x[r, k] · B[k, m]`, B packed in panels of `nb` columns
    /// (see `pack.rs`); `out` has room for whole panels in every row. Generated
    /// code where the plan's ISA is [`Isa::Portable`], else a call of its kernel.
    MatMul {
        x: View,
        panels: usize,
        k: usize,
        m: usize,
        nb: usize,
        out: View,
        /// Kernels only: where the accumulators start (`init + x · B`, an
        /// addition folded into the product), rows × m or one row for all.
        init: Option<View>,
    },
    /// The same product through the tuned GEMM (`gemm.rs`): `B` is a plain
    /// row-major `[K, M]` constant.
    Gemm {
        x: View,
        b: usize,
        k: usize,
        m: usize,
        out: View,
    },
    Elementwise(Elementwise),
    /// Calls compiled scan `scan` with a pointer table made of the start of each view
    /// (whole-model programs only).
    CallScan {
        scan: usize,
        args: Vec<View>,
    },
    /// `steps` copies of the `src` view into the `dst` view, copy `i` at
    /// `i · src_step` and `i · dst_step` elements from them (a step may be
    /// negative: a flip). With the rows of the views as a second loop this moves
    /// any axis of a value: flips, transposes, joins along a middle axis
    /// (whole-model programs only).
    StepCopy {
        src: View,
        dst: View,
        steps: usize,
        src_step: isize,
        dst_step: isize,
    },
    /// `batch` products of two run-time values: `out_s = a_s · b_s`, `a_s` the
    /// contiguous `m × k` block `s · a_step` elements into `a`, `b_s` the `k × n`
    /// block `s · b_step` into `b` (a step of 0 repeats one block for every s),
    /// `out_s` the `m × n` block `s · out_step` into `out` (whole-model programs
    /// only: attention-like products at the top level).
    BatchMatMul {
        a: View,
        b: View,
        out: View,
        dims: (usize, usize, usize, usize),
        steps: (usize, usize, usize),
    },
    /// A reduction over each row of `x` and its use, row by row into `out`.
    Rows {
        x: View,
        out: View,
        op: RowOp,
    },
    /// Row r of `out` (`cols` = T) is 1 for `t < lengths[r]`, else 0, for the
    /// i64 lengths of input `lengths` (whole-model programs only).
    SequenceMask {
        lengths: usize,
        out: View,
    },
    /// Row `ids[r]` of constant `table` (`vocab` rows of `out.cols`) into row r of
    /// `out`; an id outside the table gives a row of zeros. `ids` views i64 token
    /// ids (a model input, or a scan's sequence of them) in f32 units: id r is
    /// the i64 at element `offset + r · row_stride`.
    Gather {
        table: usize,
        vocab: usize,
        ids: View,
        out: View,
    },
    /// A decode loop's start: every row feeds `bos`, no tokens (`pad`), score 0
    /// and live; of a beam's `width` rows per example only the first is live
    /// (the others score −∞ and count as ended), so no two beams are equal.
    DecodeStart {
        hyps: Hyps,
        bos: i64,
        pad: i64,
        width: usize,
    },
    /// Greedy decoding's choice at step t: each live row takes the argmax of its
    /// log-probabilities `logp` (the first among equals), adds it to its score,
    /// feeds it next, and ends on `eos` (the interpreter's rule).
    GreedyPick {
        logp: View,
        hyps: Hyps,
        eos: i64,
    },
    /// Beam search's choice: per example, the best `width` of every continuation
    /// of its live hypotheses and its ended ones as they stand, in the order a
    /// stable sort by score gives (the earlier candidate among equals); then the
    /// hypotheses and the next `states` reordered after their parents through
    /// `spare` (scratch). See `rnnc_interp::run_decode`.
    BeamPick {
        logp: View,
        hyps: Hyps,
        eos: i64,
        pad: i64,
        width: usize,
        states: Vec<View>,
        spare: View,
    },
}

/// The instructions of one run of a body, which covers `steps` time steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub steps: usize,
    pub instrs: Vec<Instr>,
}

/// Everything needed to generate and run the code of one scan at one (B, T).
#[derive(Debug)]
pub struct Plan {
    pub reverse: bool,
    pub batch: usize,
    pub time: usize,
    pub n_seqs: usize,
    pub n_states: usize,
    pub n_memories: usize,
    /// Per sequence: for token ids, the rows of the smallest embedding table
    /// they index (a run checks them against it first); None for f32 values.
    pub id_rows: Vec<Option<usize>>,
    pub n_emits: usize,
    /// Elements per time step of each emit.
    pub emit_widths: Vec<usize>,
    pub state_shapes: Vec<Vec<usize>>,
    /// Run once before the first step (a decode loop's start).
    pub prologue: Option<Program>,
    /// A flag (f32, 1 to stop) the loop reads after each step: a decode loop's
    /// [`Hyps::finished`].
    pub stop: Option<View>,
    pub body: Program,
    pub tail: Option<Program>,
    pub consts: Vec<Vec<f32>>,
    pub scratch_len: usize,
    /// Compiled scans the program calls (0 for a scan's own plan).
    pub callees: usize,
    /// Per state: the scratch offset of its second buffer. Run r of the body
    /// (or tail) reads `State` from the state buffer when r is even, from this one
    /// when odd, and writes `NextState` to the other; after an odd number of runs
    /// the final state is copied back.
    pub alt: Vec<usize>,
    /// The kernels' ISA its products and elementwise loops call
    /// ([`Isa::Portable`]: generated code only).
    pub isa: Isa,
}

impl Plan {
    /// Slots in pointer-table order.
    pub fn slots(&self) -> Vec<Slot> {
        let mut s: Vec<Slot> = (0..self.n_seqs).map(Slot::Seq).collect();
        s.extend((0..self.n_states).map(Slot::State));
        s.extend((0..self.n_memories).map(Slot::Memory));
        s.extend((0..self.n_emits).map(Slot::Emit));
        s.extend((0..self.consts.len()).map(Slot::Const));
        s.push(Slot::Scratch);
        s.extend((0..self.callees).map(Slot::Fn));
        s
    }
}

/// Plans `scan` for batch `batch` and `time` steps, given its operands' shapes,
/// with its products computed as `products` says. `seq_pitches` gives, per
/// sequence, the elements from one time step's row to the next in its buffer
/// (None: the sequences are contiguous `[B, T, F]`).
pub fn plan(
    scan: &Scan,
    operand_shapes: &[Vec<usize>],
    seq_pitches: Option<&[usize]>,
    weights: &Weights,
    products: Products,
) -> Result<Plan, Unsupported> {
    plan_with(scan, operand_shapes, seq_pitches, weights, products, false).map(|(p, _)| p)
}

/// Where a decode loop's step reads its previous tokens and writes its emits
/// (scratch, instead of a scan's sequence and emit buffers): i64 `[rows]` in
/// f32 units, then each emit `[rows, width]`, the logits first.
#[derive(Clone, Debug)]
pub(crate) struct StepIo {
    pub token: View,
    pub emits: Vec<View>,
}

/// [`plan`], or with `decode`, the plan of a decode loop's step (see
/// [`StepIo`], returned with it): sequence 0 is the previous tokens (its shape
/// `[rows, steps]`), and the plan's buffers hold no sequence or emit.
pub(crate) fn plan_with(
    scan: &Scan,
    operand_shapes: &[Vec<usize>],
    seq_pitches: Option<&[usize]>,
    weights: &Weights,
    products: Products,
    decode: bool,
) -> Result<(Plan, Option<StepIo>), Unsupported> {
    let (n_seqs, n_states) = (scan.n_seqs, scan.n_states);
    let seq_shapes = &operand_shapes[..n_seqs];
    let batch = seq_shapes[0][0];
    let time = seq_shapes[0][1];
    let ids = id_seqs(scan);
    let mut seq_widths = Vec::new();
    for (s, ids) in seq_shapes.iter().zip(&ids) {
        match (s.len(), ids) {
            (3, false) => seq_widths.push(s[2]),
            // One i64 per step and row: two f32 units.
            (2, true) => seq_widths.push(2),
            (n, _) => {
                return unsupported(format!(
                    "a sequence of rank {n} (only [B, T, F], or token ids [B, T])"
                ))
            }
        }
    }
    let seq_pitches = seq_pitches.map_or_else(|| seq_widths.clone(), <[usize]>::to_vec);
    assert!(
        seq_pitches.len() == seq_widths.len()
            && seq_pitches.iter().zip(&seq_widths).all(|(p, w)| p >= w),
        "a sequence's pitch is at least its width"
    );
    let state_shapes: Vec<Vec<usize>> = operand_shapes[n_seqs..n_seqs + n_states].to_vec();
    let memory_shapes = &operand_shapes[n_seqs + n_states..];
    let sizes = Sizes {
        batch,
        source: source_len(scan, memory_shapes),
    };
    let n_emits = scan.n_emits();
    let mut emit_widths = Vec::new();
    for (_, v) in &scan.body.outputs[scan.n_states..scan.n_states + n_emits] {
        let dims = concrete(scan.body.ty(*v), sizes)?;
        if dims.len() != 2 || dims[0] != batch {
            return unsupported("an emit that is not [B, F]");
        }
        emit_widths.push(dims[1]);
    }
    let mut b = Builder {
        scan,
        sizes,
        ids: &ids,
        id_rows: vec![None; n_seqs],
        batch,
        time,
        seq_widths: &seq_widths,
        seq_pitches: &seq_pitches,
        weights,
        bufs: Buffers::default(),
        products,
        alt: Vec::new(),
        io: None,
    };
    for shape in &state_shapes {
        let n = shape.iter().product();
        b.alt.push(b.bufs.scratch(n));
    }
    if decode {
        let token = b.bufs.scratch_view(batch, 2);
        let emits = emit_widths
            .iter()
            .map(|w| b.bufs.scratch_view(batch, *w))
            .collect();
        b.io = Some(StepIo { token, emits });
    }
    let body = b.program(&scan.body, scan.step)?;
    let tail = match &scan.tail {
        Some(t) => Some(b.program(t, 1)?),
        None if !time.is_multiple_of(scan.step.max(1)) => {
            return unsupported("an unrolled scan without a tail, at a length it does not divide")
        }
        None => None,
    };
    let plan = Plan {
        reverse: scan.reverse,
        batch,
        time,
        n_seqs,
        n_states,
        n_memories: scan.n_memory,
        id_rows: b.id_rows,
        n_emits,
        emit_widths,
        state_shapes,
        prologue: None,
        stop: None,
        body,
        tail,
        consts: b.bufs.consts,
        scratch_len: b.bufs.scratch_len,
        callees: 0,
        isa: products.isa,
        alt: b.alt,
    };
    Ok((plan, b.io))
}

/// The sizes a scan body's types name: B, and S where a memory has that axis.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sizes {
    pub batch: usize,
    pub source: Option<usize>,
}

pub(crate) fn concrete(ty: &TensorTy, sizes: Sizes) -> Result<Vec<usize>, Unsupported> {
    ty.dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Ok(*n),
            Dim::Batch => Ok(sizes.batch),
            Dim::Time => unsupported("a value with a time axis inside a scan body"),
            Dim::Source => sizes.source.map_or_else(
                || unsupported("a source-length axis (S) no memory of the scan has"),
                Ok,
            ),
        })
        .collect()
}

/// Per sequence of `scan`: whether it holds i64 token ids (read by `embedding`).
fn id_seqs(scan: &Scan) -> Vec<bool> {
    let mut ids = vec![false; scan.n_seqs];
    for id in scan.body.node_ids() {
        let node = scan.body.node(id);
        if let Op::Arg {
            kind: ArgKind::Seq,
            index,
        } = node.op
        {
            ids[index % scan.n_seqs] |= node.results[0].dtype != DType::F32;
        }
    }
    ids
}

/// S, from the first memory whose type has that axis.
fn source_len(scan: &Scan, memory_shapes: &[Vec<usize>]) -> Option<usize> {
    scan.body.node_ids().find_map(|id| {
        let node = scan.body.node(id);
        let Op::Arg {
            kind: ArgKind::Memory,
            index,
        } = node.op
        else {
            return None;
        };
        let axis = node.results[0]
            .dims
            .iter()
            .position(|d| *d == Dim::Source)?;
        memory_shapes.get(index)?.get(axis).copied()
    })
}

/// Where a planner keeps constants and scratch space.
#[derive(Default)]
pub(crate) struct Buffers {
    pub consts: Vec<Vec<f32>>,
    pub scratch_len: usize,
}

impl Buffers {
    /// A new constant buffer; returns its index.
    pub fn constant(&mut self, data: Vec<f32>) -> usize {
        self.consts.push(data);
        self.consts.len() - 1
    }

    /// Scratch space for `n` elements, 64-byte aligned so vector rows start
    /// aligned; returns its offset.
    pub fn scratch(&mut self, n: usize) -> usize {
        let at = self.scratch_len;
        self.scratch_len += n.div_ceil(16) * 16;
        at
    }

    pub fn scratch_view(&mut self, rows: usize, cols: usize) -> View {
        let at = self.scratch(rows * cols);
        View::contiguous(Slot::Scratch, at, rows, cols)
    }
}

/// `x · w` (or `x · wᵀ` with `transposed`, as `linear` stores `w`): the ISA's
/// kernel over its panels, else generated code over packed panels, or the tuned
/// GEMM from `gemm_min_rows` rows on.
pub(crate) fn product(
    bufs: &mut Buffers,
    x: View,
    w: &ArrayD<f32>,
    transposed: bool,
    products: Products,
) -> (Instr, View) {
    let (k, m) = if transposed {
        (w.shape()[1], w.shape()[0])
    } else {
        (w.shape()[0], w.shape()[1])
    };
    if m == 1 && products.isa.dot().is_some() {
        // [K, 1] or linear's [1, K]: the K weights in order either way.
        let w = bufs.constant(w.iter().copied().collect());
        let out = bufs.scratch_view(x.rows, 1);
        return (
            Instr::Rows {
                x,
                out,
                op: RowOp::Dot { w },
            },
            out,
        );
    }
    let nb = match products.isa.panel_width() {
        Some(nb) => nb,
        None if x.rows >= products.gemm_min_rows => {
            // One panel as wide as B: B itself, row-major [K, M].
            let b = bufs.constant(pack_panels(w, transposed, m));
            let out = bufs.scratch_view(x.rows, m);
            return (Instr::Gemm { x, b, k, m, out }, out);
        }
        None => panel_width(x.rows),
    };
    let panels = bufs.constant(pack_panels(w, transposed, nb));
    // Room for whole panels in every row.
    let padded = m.div_ceil(nb) * nb;
    let at = bufs.scratch(x.rows * padded);
    let out = View {
        slot: Slot::Scratch,
        offset: at,
        rows: x.rows,
        cols: m,
        row_stride: padded,
        time: None,
    };
    let instr = Instr::MatMul {
        x,
        panels,
        k,
        m,
        nb,
        out,
        init: None,
    };
    (instr, out)
}

struct Builder<'a> {
    scan: &'a Scan,
    sizes: Sizes,
    /// Per sequence: whether it holds token ids.
    ids: &'a [bool],
    /// Per sequence of token ids: the rows of the smallest table they index.
    id_rows: Vec<Option<usize>>,
    batch: usize,
    time: usize,
    seq_widths: &'a [usize],
    seq_pitches: &'a [usize],
    weights: &'a Weights,
    bufs: Buffers,
    products: Products,
    alt: Vec<usize>,
    /// A decode loop's step: where its tokens and emits are.
    io: Option<StepIo>,
}

impl Builder<'_> {
    fn program(&mut self, g: &Graph, steps: usize) -> Result<Program, Unsupported> {
        let known = load_time_values(g, self.weights).map_err(|e| Unsupported::new(e.0))?;
        let order = g.topo_order().expect("verified graphs are acyclic");
        let mut views: HashMap<Value, View> = HashMap::new();
        // Values holding a step's token ids (sequences of them).
        let mut ids: HashMap<Value, usize> = HashMap::new();
        let mut instrs = Vec::new();
        // Load-time values become constant buffers only when run-time code reads them.
        let mut const_of: HashMap<NodeId, View> = HashMap::new();
        for id in order {
            let node = g.node(id);
            let _at = rnnc_ir::compiling::node_at(node.span);
            if known.contains_key(&id) {
                continue;
            }
            let operands = g.operands(id);
            let dims = concrete(&node.results[0], self.sizes)?;
            let result = match &node.op {
                Op::Arg {
                    kind: ArgKind::Seq,
                    index,
                } => {
                    let (s, j) = (index % self.scan.n_seqs, index / self.scan.n_seqs);
                    if self.ids[s] {
                        ids.insert(Value::new(id, 0), s);
                    }
                    if let Some(io) = &self.io {
                        views.insert(Value::new(id, 0), io.token);
                        continue;
                    }
                    View::time_step(
                        Slot::Seq(s),
                        self.batch,
                        self.time,
                        (self.seq_widths[s], self.seq_pitches[s]),
                        j,
                    )
                }
                Op::Arg {
                    kind: ArgKind::State,
                    index,
                } => {
                    let (r, c) = rows_cols(&dims);
                    View::contiguous(Slot::State(*index), 0, r, c)
                }
                Op::Arg {
                    kind: ArgKind::Memory,
                    index,
                } => {
                    if node.results[0].dtype != DType::F32 {
                        return unsupported("a memory of integers");
                    }
                    let (r, c) = rows_cols(&dims);
                    View::contiguous(Slot::Memory(*index), 0, r, c)
                }
                Op::Zeros => {
                    let (r, c) = rows_cols(&dims);
                    let k = self.bufs.constant(vec![0.0; r * c]);
                    View::contiguous(Slot::Const(k), 0, r, c)
                }
                Op::Slice { axis, start, end } => {
                    let v = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let od = self.dims_of(g, &known, operands[0])?;
                    match Layout::sub_view(v, &od, *axis, *start, *end) {
                        Ok(view) => view,
                        Err(_) => self
                            .layout(&mut instrs)
                            .sliced_copy(v, &od, *axis, *start, *end)?,
                    }
                }
                Op::Index { axis, index } => {
                    let v = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let od = self.dims_of(g, &known, operands[0])?;
                    let n = od[*axis] as i64;
                    let i = if *index < 0 { *index + n } else { *index };
                    if !(0..n).contains(&i) {
                        return run_error(format!(
                            "index {index} is out of range for an axis of length {n}"
                        ));
                    }
                    let i = i as usize;
                    let mut layout = self.layout(&mut instrs);
                    let one = match Layout::sub_view(v, &od, *axis, i, i + 1) {
                        Ok(view) => view,
                        Err(_) => layout.sliced_copy(v, &od, *axis, i, i + 1)?,
                    };
                    // Without the indexed axis (the last one: a column of rows).
                    layout.reshaped(one, &dims)
                }
                // A new axis of length 1, or one dropped: the same elements, seen
                // as the new shape (copied first where they are not one block).
                Op::Unsqueeze { .. } | Op::Squeeze { .. } => {
                    let v = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let (r, c) = rows_cols(&dims);
                    if (v.rows, v.cols) == (r, c) {
                        v
                    } else {
                        let v = self.layout(&mut instrs).contiguous(v);
                        View::contiguous(v.slot, v.offset, r, c)
                    }
                }
                Op::Embedding => {
                    let Some(table) = known.get(&operands[0].node) else {
                        return unsupported("an embedding table computed at run time");
                    };
                    let Some(&seq) = ids.get(&operands[1]) else {
                        return unsupported("embedding ids that are not a sequence of the scan");
                    };
                    let ids = lookup(self, &known, &mut const_of, &views, operands[1])?;
                    let table = table.f32();
                    let (vocab, d) = (table.shape()[0], table.shape()[1]);
                    let rows = self.id_rows[seq].get_or_insert(vocab);
                    *rows = (*rows).min(vocab);
                    let t = self.bufs.constant(row_major(table));
                    let out = self.bufs.scratch_view(ids.rows, d);
                    instrs.push(Instr::Gather {
                        table: t,
                        vocab,
                        ids,
                        out,
                    });
                    out
                }
                Op::MatMul if !known.contains_key(&operands[1].node) => {
                    let x = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let y = lookup(self, &known, &mut const_of, &views, operands[1])?;
                    let xd = self.dims_of(g, &known, operands[0])?;
                    let yd = self.dims_of(g, &known, operands[1])?;
                    self.layout(&mut instrs)
                        .batch_matmul(x, &xd, y, &yd, &dims)?
                }
                Op::Linear | Op::MatMul => {
                    let x = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let Some(w) = known.get(&operands[1].node) else {
                        return unsupported("a matrix product with a run-time right operand");
                    };
                    let w = w.f32();
                    if w.ndim() != 2 {
                        return unsupported("a matrix product with a batched right operand");
                    }
                    let transposed = matches!(node.op, Op::Linear);
                    let (instr, out) = product(&mut self.bufs, x, w, transposed, self.products);
                    instrs.push(instr);
                    out
                }
                Op::Unary(_) | Op::Binary(_) | Op::Fused(_) => {
                    if node.results.iter().any(|t| t != &node.results[0]) {
                        return unsupported("a fused region whose results differ in shape");
                    }
                    let (r, c) = rows_cols(&dims);
                    let mut inputs = Vec::new();
                    for v in &operands {
                        let view = lookup(self, &known, &mut const_of, &views, *v)?;
                        let od = self.dims_of(g, &known, *v)?;
                        inputs.push(match broadcast(view, &od, &dims) {
                            Ok(view) => view,
                            // A broadcast the loop cannot read in place: written out.
                            Err(_) => self.layout(&mut instrs).broadcast_copy(view, &od, &dims)?,
                        });
                    }
                    if let Some(v) = fold_into_product(
                        g,
                        id,
                        &operands,
                        &inputs,
                        (&mut instrs, self.products.isa),
                    ) {
                        views.insert(Value::new(id, 0), v);
                        continue;
                    }
                    let (code, results) = match &node.op {
                        Op::Unary(u) => (vec![EOp::Input(0), EOp::Unary(*u, 0)], vec![1]),
                        Op::Binary(b) => (
                            vec![EOp::Input(0), EOp::Input(1), EOp::Binary(*b, 0, 1)],
                            vec![2],
                        ),
                        Op::Fused(f) => elementwise_code(&f.body)?,
                        _ => unreachable!(),
                    };
                    let mut outputs = Vec::new();
                    for (i, at) in results.into_iter().enumerate() {
                        let out = self.bufs.scratch_view(r, c);
                        views.insert(Value::new(id, i as u32), out);
                        outputs.push((at, out));
                    }
                    instrs.push(Instr::Elementwise(Elementwise {
                        rows: r,
                        cols: c,
                        inputs,
                        code,
                        outputs,
                    }));
                    continue;
                }
                Op::Concat { axis }
                    if *axis + 1 == dims.len() || (*axis == 0 && dims.len() == 2) =>
                {
                    let (r, c) = rows_cols(&dims);
                    let out = self.bufs.scratch_view(r, c);
                    let mut at = 0;
                    for v in &operands {
                        let src = lookup(self, &known, &mut const_of, &views, *v)?;
                        let mut dst = out;
                        if *axis + 1 == dims.len() {
                            dst.offset += at;
                            dst.cols = src.cols;
                            at += src.cols;
                        } else {
                            dst.offset += at * out.row_stride;
                            dst.rows = src.rows;
                            at += src.rows;
                        }
                        instrs.push(copy(src, dst));
                    }
                    out
                }
                Op::Softmax { axis } | Op::LogSoftmax { axis } if *axis + 1 != dims.len() => {
                    return unsupported(format!("`{}` over a leading axis", node.op.name()))
                }
                Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::LayerNorm { .. } => {
                    let x = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let (r, c) = rows_cols(&dims);
                    let out = self.bufs.scratch_view(r, c);
                    let op = match node.op {
                        Op::LayerNorm { eps } => RowOp::LayerNorm { eps },
                        Op::LogSoftmax { .. } => RowOp::LogSoftmax,
                        _ => RowOp::Softmax,
                    };
                    instrs.push(Instr::Rows { x, out, op });
                    out
                }
                Op::Transpose { a, b: bx } => {
                    let v = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let od = self.dims_of(g, &known, operands[0])?;
                    self.layout(&mut instrs)
                        .transpose(v, &od, &dims, (*a, *bx))?
                }
                Op::Flip { axis } => {
                    let v = lookup(self, &known, &mut const_of, &views, operands[0])?;
                    let od = self.dims_of(g, &known, operands[0])?;
                    self.layout(&mut instrs).flip(v, &od, &dims, *axis)?
                }
                // Joins along a middle axis, stacks: each part copied into place.
                Op::Concat { axis } | Op::Stack { axis } => {
                    let mut parts = Vec::new();
                    for v in &operands {
                        let view = lookup(self, &known, &mut const_of, &views, *v)?;
                        parts.push((view, self.dims_of(g, &known, *v)?));
                    }
                    let stack = matches!(node.op, Op::Stack { .. });
                    self.layout(&mut instrs).join(&parts, &dims, *axis, stack)?
                }
                other => return unsupported(format!("`{}` inside a scan body", other.name())),
            };
            views.insert(Value::new(id, 0), result);
        }
        let mut instrs = merge_elementwise(instrs, self.products.isa);
        // The step's results: emits, then the next states, each written by the
        // loop that computes it where it can (an extra output), else copied. The
        // next states go to the buffers this step does not read.
        let n_states = self.scan.n_states;
        let n_emits = (g.outputs.len() - n_states) / steps;
        for j in 0..steps {
            for e in 0..n_emits {
                let v = g.outputs[n_states + j * n_emits + e].1;
                let src = lookup(self, &known, &mut const_of, &views, v)?;
                let dst = match &self.io {
                    Some(io) => io.emits[e],
                    None => View::time_step(
                        Slot::Emit(e),
                        self.batch,
                        self.time,
                        (src.cols, src.cols),
                        j,
                    ),
                };
                write_also(&mut instrs, src, dst);
            }
        }
        for i in 0..n_states {
            let src = lookup(self, &known, &mut const_of, &views, g.outputs[i].1)?;
            let dst = View::contiguous(Slot::NextState(i), 0, src.rows, src.cols);
            write_also(&mut instrs, src, dst);
        }
        drop_dead_scratch_writes(&mut instrs);
        Ok(Program { steps, instrs })
    }

    /// Where a layout change puts its copies: this builder's buffers, `instrs`.
    fn layout<'s>(&'s mut self, instrs: &'s mut Vec<Instr>) -> Layout<'s> {
        Layout {
            bufs: &mut self.bufs,
            instrs,
        }
    }

    /// The shape of value `v` of body `g` at this plan's sizes.
    fn dims_of(
        &self,
        g: &Graph,
        known: &HashMap<NodeId, Rc<Tensor>>,
        v: Value,
    ) -> Result<Vec<usize>, Unsupported> {
        match known.get(&v.node) {
            Some(t) => Ok(t.shape().to_vec()),
            None => concrete(g.ty(v), self.sizes),
        }
    }

    fn const_view(&mut self, t: &Rc<Tensor>) -> Result<View, Unsupported> {
        let Tensor::F32(a) = &**t else {
            return unsupported("an integer constant inside a scan body");
        };
        let (r, c) = rows_cols(a.shape());
        let k = self.bufs.constant(row_major(a));
        Ok(View::contiguous(Slot::Const(k), 0, r, c))
    }
}

/// The view of an operand: a constant buffer for load-time values (made once).
fn lookup(
    b: &mut Builder<'_>,
    known: &HashMap<NodeId, Rc<Tensor>>,
    const_of: &mut HashMap<NodeId, View>,
    views: &HashMap<Value, View>,
    v: Value,
) -> Result<View, Unsupported> {
    if let Some(t) = known.get(&v.node) {
        if let Some(view) = const_of.get(&v.node) {
            return Ok(*view);
        }
        let view = b.const_view(t)?;
        const_of.insert(v.node, view);
        return Ok(view);
    }
    Ok(views[&v])
}

/// `a + p` (or `p + a`), node `id`, where `p` is the result of the product just
/// planned (the last instruction, a kernel's) and read nowhere else: the product
/// starts its accumulators from `a` instead (`a + x · B`: the hoisted input
/// projection added to the recurrent product, a bias added to a projection), and
/// its result is the sum. `a` must have the product's columns and its rows or one
/// row. Returns the sum's view.
pub(crate) fn fold_into_product(
    g: &Graph,
    id: NodeId,
    operands: &[Value],
    views: &[View],
    (instrs, isa): (&mut [Instr], Isa),
) -> Option<View> {
    if isa == Isa::Portable || !matches!(g.node(id).op, Op::Binary(BinaryOp::Add)) {
        return None;
    }
    let Some(Instr::MatMul {
        out,
        init: init @ None,
        ..
    }) = instrs.last_mut()
    else {
        return None;
    };
    for (i, v) in operands.iter().enumerate() {
        let other = views[1 - i];
        let only_use = g.users(*v).len() == 1 && !g.outputs.iter().any(|(_, o)| o == v);
        let fits = other.cols == out.cols && (other.rows == out.rows || other.rows == 1);
        if views[i] == *out && only_use && fits {
            *init = Some(other);
            return Some(*out);
        }
    }
    None
}

pub(crate) fn row_major(a: &ArrayD<f32>) -> Vec<f32> {
    a.iter().copied().collect()
}

/// Consecutive elementwise loops over the same rows × columns as one loop (one
/// pass over the data, one kernel call), where the second reads the first's
/// results only through the very views it wrote them to and nothing either
/// writes is read or written by the other through another view. With a kernel,
/// only where the merged loop still fits it.
fn merge_elementwise(instrs: Vec<Instr>, isa: Isa) -> Vec<Instr> {
    let mut out: Vec<Instr> = Vec::with_capacity(instrs.len());
    for instr in instrs {
        if let (Some(Instr::Elementwise(a)), Instr::Elementwise(b)) = (out.last(), &instr) {
            if let Some(m) = merged(a, b) {
                let fits = isa == Isa::Portable
                    || crate::codegen::kernel_program(isa, &m.flattened(), |_| 0).is_some();
                if fits {
                    *out.last_mut().expect("just matched") = Instr::Elementwise(m);
                    continue;
                }
            }
        }
        out.push(instr);
    }
    out
}

/// `a` then `b` as one loop, if that computes the same (see `merge_elementwise`).
fn merged(a: &Elementwise, b: &Elementwise) -> Option<Elementwise> {
    if (a.rows, a.cols) != (b.rows, b.cols) {
        return None;
    }
    let a_out: Vec<View> = a.outputs.iter().map(|(_, v)| *v).collect();
    let b_out: Vec<View> = b.outputs.iter().map(|(_, v)| *v).collect();
    let clash = |x: &View, ys: &[View]| ys.iter().any(|y| overlap(x, y));
    if a.inputs.iter().any(|v| clash(v, &b_out)) || a_out.iter().any(|v| clash(v, &b_out)) {
        return None;
    }
    let mut m = a.clone();
    // Where each of b's code values is in the merged code.
    let mut at: Vec<usize> = Vec::with_capacity(b.code.len());
    for op in &b.code {
        let new = match *op {
            EOp::Input(i) => {
                let v = b.inputs[i];
                if let Some((code, _)) = a.outputs.iter().find(|(_, o)| *o == v) {
                    at.push(*code);
                    continue;
                }
                if clash(&v, &a_out) {
                    return None;
                }
                let k = match m.inputs.iter().position(|u| *u == v) {
                    Some(k) => k,
                    None => {
                        m.inputs.push(v);
                        m.inputs.len() - 1
                    }
                };
                EOp::Input(k)
            }
            EOp::Const(c) => EOp::Const(c),
            EOp::Unary(u, x) => EOp::Unary(u, at[x]),
            EOp::Binary(o, x, y) => EOp::Binary(o, at[x], at[y]),
        };
        m.code.push(new);
        at.push(m.code.len() - 1);
    }
    m.outputs
        .extend(b.outputs.iter().map(|(code, v)| (at[*code], *v)));
    Some(m)
}

/// Makes `dst` hold what `src` holds at the end of the program: the elementwise
/// loop that last wrote `src` writes `dst` too, or a copy is added. Only for
/// destinations nothing in the program reads (emits, next states), which the
/// loop may then write earlier than a copy at the end would.
fn write_also(instrs: &mut Vec<Instr>, src: View, dst: View) {
    if let Some(Instr::Elementwise(e)) = instrs.iter_mut().rev().find(|i| writes(i, &src)) {
        if let Some(at) = e.outputs.iter().find(|(_, v)| *v == src).map(|(at, _)| *at) {
            e.outputs.push((at, dst));
            return;
        }
    }
    instrs.push(copy(src, dst));
}

/// Drops an elementwise loop's writes to scratch that no later instruction of
/// the step reads, where the loop writes something else too: a step's last loop
/// typically writes its results to scratch and, through [`write_also`], to the
/// next states and emits, which are all that is read. (Scratch holds nothing
/// from one step to the next.) An LSTM step at B=64 writes 3 streams, not 5.
fn drop_dead_scratch_writes(instrs: &mut [Instr]) {
    for i in 0..instrs.len() {
        let (done, later) = instrs.split_at_mut(i + 1);
        let Instr::Elementwise(e) = &mut done[i] else {
            continue;
        };
        let read = |v: &View| {
            later
                .iter()
                .any(|l| views(l).1.iter().any(|r| overlap(r, v)))
        };
        let dead = |v: &View| v.slot == Slot::Scratch && !read(v);
        if e.outputs.iter().any(|(_, v)| !dead(v)) {
            e.outputs.retain(|(_, v)| !dead(v));
        }
    }
}

/// What `instr` writes, and what it only reads (a call: everything it is given, as
/// written).
pub(crate) fn views(instr: &Instr) -> (Vec<View>, Vec<View>) {
    match instr {
        Instr::MatMul { x, out, init, .. } => {
            (vec![*out], std::iter::once(*x).chain(*init).collect())
        }
        Instr::Gemm { x, out, .. } | Instr::Rows { x, out, .. } => (vec![*out], vec![*x]),
        Instr::Gather { out, ids, .. } => (vec![*out], vec![*ids]),
        Instr::DecodeStart { hyps, .. } => (hyps.all().to_vec(), Vec::new()),
        Instr::GreedyPick { logp, hyps, .. } => (hyps.all().to_vec(), vec![*logp]),
        Instr::BeamPick {
            logp,
            hyps,
            states,
            spare,
            ..
        } => {
            let mut w = hyps.all().to_vec();
            w.extend(states.iter().copied());
            w.push(*spare);
            (w, vec![*logp])
        }
        Instr::SequenceMask { out, .. } => (vec![*out], Vec::new()),
        Instr::BatchMatMul {
            a,
            b,
            out,
            dims: (batch, m, k, n),
            steps: (sa, sb, so),
        } => (
            vec![all_steps(&block(out, m * n), *batch, *so as isize)],
            vec![
                all_steps(&block(a, m * k), *batch, *sa as isize),
                all_steps(&block(b, k * n), *batch, *sb as isize),
            ],
        ),
        Instr::StepCopy {
            src,
            dst,
            steps,
            src_step,
            dst_step,
        } => (
            vec![all_steps(dst, *steps, *dst_step)],
            vec![all_steps(src, *steps, *src_step)],
        ),
        Instr::Elementwise(e) => (
            e.outputs.iter().map(|(_, o)| *o).collect(),
            e.inputs.clone(),
        ),
        Instr::CallScan { args, .. } => (args.clone(), Vec::new()),
    }
}

/// Whether two views may touch a common element.
pub(crate) fn overlap(a: &View, b: &View) -> bool {
    let (x, y) = (a.span(), b.span());
    a.slot == b.slot && x.start < y.end && y.start < x.end
}

/// Whether `instr` may write some element of `v`.
fn writes(instr: &Instr, v: &View) -> bool {
    views(instr).0.iter().any(|o| overlap(o, v))
}

/// Makes the call that fills workspace view `result` (a scan's emit, whole)
/// write into `dst` instead, when nothing else in `instrs` touches `result`;
/// returns whether it did. Saves copying a whole `[B, T, F]` output.
pub(crate) fn redirect_call_result(instrs: &mut [Instr], result: View, dst: View) -> bool {
    let mut call = None;
    for (i, instr) in instrs.iter().enumerate() {
        let (w, r) = views(instr);
        let touches = w.iter().chain(&r).any(|v| overlap(v, &result));
        match instr {
            Instr::CallScan { args, .. } if call.is_none() && args.contains(&result) => {
                call = Some(i);
            }
            _ if touches => return false,
            _ => {}
        }
    }
    let Some(i) = call else {
        return false;
    };
    let Instr::CallScan { args, .. } = &mut instrs[i] else {
        unreachable!("found above")
    };
    // The call's other arguments must not overlap it either.
    if args.iter().filter(|a| overlap(a, &result)).count() != 1 {
        return false;
    }
    for a in args.iter_mut().filter(|a| **a == result) {
        *a = dst;
    }
    true
}

/// `len` contiguous elements from the start of `v`.
fn block(v: &View, len: usize) -> View {
    View::contiguous(v.slot, v.offset, 1, len)
}

/// One view covering every step of a [`Instr::StepCopy`] operand.
pub(crate) fn all_steps(v: &View, steps: usize, step: isize) -> View {
    let last = (steps.saturating_sub(1)) as isize * step;
    let span = v.span();
    let start = (span.start as isize + last.min(0)) as usize;
    let end = (span.end as isize + last.max(0)) as usize;
    View::contiguous(v.slot, start, 1, end - start)
}

pub(crate) fn copy(src: View, dst: View) -> Instr {
    Instr::Elementwise(Elementwise {
        rows: dst.rows,
        cols: dst.cols,
        inputs: vec![src],
        code: vec![EOp::Input(0)],
        outputs: vec![(0, dst)],
    })
}

/// A fused region's body as straight-line elementwise code; returns the code and
/// where each yielded value is.
pub(crate) fn elementwise_code(body: &Graph) -> Result<(Vec<EOp>, Vec<usize>), Unsupported> {
    let mut code = Vec::new();
    let mut at: HashMap<NodeId, usize> = HashMap::new();
    for id in body.topo_order().expect("verified graphs are acyclic") {
        let node = body.node(id);
        let ops: Vec<usize> = body.operands(id).iter().map(|v| at[&v.node]).collect();
        code.push(match &node.op {
            Op::Arg {
                kind: ArgKind::Operand,
                index,
            } => EOp::Input(*index),
            Op::Const(c) => EOp::Const(*c),
            Op::Unary(u) => EOp::Unary(*u, ops[0]),
            Op::Binary(b) => EOp::Binary(*b, ops[0], ops[1]),
            other => return unsupported(format!("`{}` inside a fused region", other.name())),
        });
        at.insert(id, code.len() - 1);
    }
    let results = body.outputs.iter().map(|(_, v)| at[&v.node]).collect();
    Ok((code, results))
}
