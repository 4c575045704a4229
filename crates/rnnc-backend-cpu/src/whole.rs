//! A whole model as one program for one (B, T): the top-level graph's values become
//! views into the model's inputs, outputs, constants and one workspace, its ops
//! instructions over them, and each scan a call of that scan's own compiled plan.
//! This is what the object file (`aot.rs`) holds: nothing is left to Rust at run
//! time. Ops with no instruction here are reported as [`Unsupported`].
//!
//! A top-level value of shape `[d0, …, dn]` is a view of `d0·…·d(n−1)` rows of `dn`
//! columns; slicing and indexing keep that form where the rows stay evenly spaced,
//! and everything else (stacking, concatenating, a scan's operands) is copied into
//! the workspace.

use crate::layout::{broadcast, row_strides, rows_cols, Layout};
use crate::plan::{
    self, copy, elementwise_code, product, row_major, run_error, unsupported, Buffers, EOp,
    Elementwise, Instr, Plan, Products, Program, RowOp, Slot, Unsupported, View,
};
use rnnc_ir::op::Decode;
use rnnc_ir::{DType, Dim, Graph, NodeId, Op, TensorTy, Value};
use rnnc_runtime::{Tensor, Weights};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// The model's program, the scans it calls, and its interface.
#[derive(Debug)]
pub struct WholePlan {
    /// The top-level program: `Seq(i)` is input i, `Emit(i)` output i, and
    /// `Fn(k · threads + t)` scan k's function for thread t.
    pub top: Plan,
    pub scans: Vec<Plan>,
    /// (name, shape) of each input, in `Seq` slot order.
    pub inputs: Vec<(String, Vec<usize>)>,
    /// Per input: what an integer (i64) input holds; None for f32 inputs.
    pub ints: Vec<Option<IntInput>>,
    /// (name, shape) of each output, in `Emit` slot order.
    pub outputs: Vec<(String, Vec<usize>)>,
    /// Per output: whether it holds i64 values (a decode loop's tokens and
    /// lengths), two f32 units each in its buffer.
    pub output_ints: Vec<bool>,
}

/// What an i64 input holds: what a run checks its values against, and what the
/// object file's header says about them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntInput {
    /// Token ids, rows of embedding tables; `rows` is the smallest table's
    /// (`usize::MAX` while nothing reads the input).
    Ids { rows: usize },
    /// Sequence lengths (`lengths = …`), each in `1..=time`.
    Lengths { time: usize },
}

/// The interpreter's allocation limit (1 GiB of f32): a larger value fails the
/// run with the interpreter's message.
const MAX_ELEMS: usize = 1 << 28;

/// The sizes a program is compiled for: B, T, and S for a model with a
/// source-length axis (None for one without).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    pub batch: usize,
    pub time: usize,
    pub source: Option<usize>,
}

impl Dims {
    /// (B, T), and S = T where `g` has a source-length axis.
    pub fn at(g: &Graph, batch: usize, time: usize) -> Self {
        let has_source = g.node_ids().any(|id| {
            g.node(id)
                .results
                .iter()
                .any(|t| t.dims.contains(&Dim::Source))
        });
        Dims {
            batch,
            time,
            source: has_source.then_some(time),
        }
    }
}

fn concrete(ty: &TensorTy, d: Dims) -> Result<Vec<usize>, Unsupported> {
    let dims: Vec<usize> = ty
        .dims
        .iter()
        .map(|x| match x {
            Dim::Fixed(n) => Some(*n),
            Dim::Batch => Some(d.batch),
            Dim::Time => Some(d.time),
            Dim::Source => d.source,
        })
        .collect::<Option<_>>()
        .map_or_else(
            || unsupported("a source-length axis (S) of unknown length"),
            Ok,
        )?;
    match dims.iter().try_fold(1usize, |acc, n| acc.checked_mul(*n)) {
        Some(n) if n <= MAX_ELEMS => Ok(dims),
        _ => run_error(format!(
            "a tensor of shape {dims:?} is too large to allocate"
        )),
    }
}

/// Plans `g` for the sizes `sizes`, with `known` its load-time values
/// (`rnnc_interp::load_time_values`, computed once by the caller), for code split
/// over `threads` threads, its products computed as `products` says.
pub fn plan_model(
    g: &Graph,
    weights: &Weights,
    known: &HashMap<NodeId, Rc<Tensor>>,
    sizes: Dims,
    threads: usize,
    products: Products,
) -> Result<WholePlan, Unsupported> {
    let mut b = Top {
        weights,
        bufs: Buffers::default(),
        const_of: HashMap::new(),
        instrs: Vec::new(),
        scans: Vec::new(),
        batch: sizes.batch,
        products,
    };
    let mut inputs: Vec<(String, Vec<usize>)> = Vec::new();
    let mut ints: Vec<Option<IntInput>> = Vec::new();
    // Values holding token ids, and the input each is.
    let mut ids: HashMap<Value, usize> = HashMap::new();
    // Integer values a decode loop computed (only outputs may take them).
    let mut int_results: HashSet<Value> = HashSet::new();
    let mut views: HashMap<Value, View> = HashMap::new();
    let mut shapes: HashMap<Value, Vec<usize>> = HashMap::new();
    for id in g.topo_order().expect("verified graphs are acyclic") {
        let node = g.node(id);
        let _at = rnnc_ir::compiling::node_at(node.span);
        if known.contains_key(&id) {
            continue;
        }
        let dims = concrete(&node.results[0], sizes)?;
        let operands = g.operands(id);
        if operands.iter().any(|v| int_results.contains(v)) {
            return unsupported(format!(
                "the tokens or lengths of a decode loop read by `{}`",
                node.op.name()
            ));
        }
        let integer_input = operands
            .iter()
            .find_map(|v| ids.get(v).map(|i| &inputs[*i].0));
        let reads_ints = matches!(node.op, Op::Embedding | Op::SequenceMask | Op::Scan(_));
        if let Some(name) = integer_input.filter(|_| !reads_ints) {
            return unsupported(format!(
                "the integer input `{name}` read by `{}`",
                node.op.name()
            ));
        }
        let arg = |v: Value, b: &mut Top| -> Result<(View, Vec<usize>), Unsupported> {
            if known.contains_key(&v.node) {
                let t = &known[&v.node];
                return Ok((b.constant_of(v.node, t)?, t.shape().to_vec()));
            }
            Ok((views[&v], shapes[&v].clone()))
        };
        let result = match &node.op {
            Op::Input { name, .. } => {
                let (r, c) = rows_cols(&dims);
                inputs.push((name.clone(), dims.clone()));
                let i = inputs.len() - 1;
                if node.results[0].dtype != DType::F32 {
                    // Only `embedding` and `sequence_mask` may read them (see below).
                    ids.insert(Value::new(id, 0), i);
                    ints.push(Some(IntInput::Ids { rows: usize::MAX }));
                } else {
                    ints.push(None);
                }
                View::contiguous(Slot::Seq(i), 0, r, c)
            }
            Op::Embedding => {
                let Some(table) = known.get(&operands[0].node) else {
                    return unsupported("an embedding table computed at run time");
                };
                let Some(&input) = ids.get(&operands[1]) else {
                    return unsupported("embedding ids that are not a model input");
                };
                let table = table.f32();
                let (n, d) = (table.shape()[0], table.shape()[1]);
                match &mut ints[input] {
                    Some(IntInput::Ids { rows }) => *rows = (*rows).min(n),
                    _ => return unsupported("one integer input read as token ids and as lengths"),
                }
                let rows = dims[..dims.len() - 1].iter().product();
                let t = b.bufs.constant(row_major(table));
                let out = b.bufs.scratch_view(rows, d);
                // One i64 per row: two f32 units.
                let ids = View {
                    row_stride: 2,
                    ..View::contiguous(Slot::Seq(input), 0, rows, 2)
                };
                b.instrs.push(Instr::Gather {
                    table: t,
                    vocab: n,
                    ids,
                    out,
                });
                out
            }
            Op::SequenceMask => {
                let Some(&input) = ids.get(&operands[0]) else {
                    return unsupported("sequence lengths that are not a model input");
                };
                // Lengths along the masked axis (T, or S).
                let axis = dims[dims.len() - 1];
                match ints[input] {
                    Some(IntInput::Ids { rows: usize::MAX }) => {
                        ints[input] = Some(IntInput::Lengths { time: axis })
                    }
                    Some(IntInput::Lengths { time }) => {
                        ints[input] = Some(IntInput::Lengths {
                            time: time.min(axis),
                        })
                    }
                    _ => return unsupported("one integer input read as token ids and as lengths"),
                }
                let (r, c) = rows_cols(&dims);
                let out = b.bufs.scratch_view(r, c);
                b.instrs.push(Instr::SequenceMask {
                    lengths: input,
                    out,
                });
                out
            }
            // A new axis of length 1: the same elements, seen as the new shape.
            Op::Unsqueeze { .. } | Op::Squeeze { .. } => {
                let (v, _) = arg(operands[0], &mut b)?;
                b.layout().reshaped(v, &dims)
            }
            Op::Zeros => {
                let (r, c) = rows_cols(&dims);
                let k = b.bufs.constant(vec![0.0; r * c]);
                View::contiguous(Slot::Const(k), 0, r, c)
            }
            Op::Index { axis, index } => {
                let (v, od) = arg(operands[0], &mut b)?;
                let n = od[*axis] as i64;
                let i = if *index < 0 { *index + n } else { *index };
                if !(0..n).contains(&i) {
                    // The interpreter's error: the run fails with it.
                    return run_error(format!(
                        "index {index} is out of range for an axis of length {n}"
                    ));
                }
                let i = i as usize;
                let one = match Layout::sub_view(v, &od, *axis, i, i + 1) {
                    Ok(view) => view,
                    Err(_) => b.layout().sliced_copy(v, &od, *axis, i, i + 1)?,
                };
                // Without the indexed axis (the last one: a column of rows).
                b.layout().reshaped(one, &dims)
            }
            Op::Slice { axis, start, end } => {
                let (v, od) = arg(operands[0], &mut b)?;
                if *end > od[*axis] || start >= end {
                    return unsupported(format!(
                        "elements {start}..{end} of an axis of length {}",
                        od[*axis]
                    ));
                }
                match Layout::sub_view(v, &od, *axis, *start, *end) {
                    Ok(view) => view,
                    Err(_) => b.layout().sliced_copy(v, &od, *axis, *start, *end)?,
                }
            }
            Op::Transpose { a, b: bx } => {
                let (v, od) = arg(operands[0], &mut b)?;
                b.layout().transpose(v, &od, &dims, (*a, *bx))?
            }
            // Reversed along any axis (time included: a backward direction's input).
            Op::Flip { axis } => {
                let (v, od) = arg(operands[0], &mut b)?;
                b.layout().flip(v, &od, &dims, *axis)?
            }
            // Joins along any other axis: each operand copied into its place.
            Op::Concat { axis } | Op::Stack { axis } if side_by_side(&node.op, &dims).is_none() => {
                let mut parts = Vec::new();
                for v in &operands {
                    parts.push(arg(*v, &mut b)?);
                }
                let stack = matches!(node.op, Op::Stack { .. });
                b.layout().join(&parts, &dims, *axis, stack)?
            }
            // Copies side by side: row blocks or column blocks.
            Op::Stack { .. } | Op::Concat { .. } if side_by_side(&node.op, &dims).is_some() => {
                let by_rows = side_by_side(&node.op, &dims) == Some(true);
                let (r, c) = rows_cols(&dims);
                let out = b.bufs.scratch_view(r, c);
                let mut at = 0;
                for v in &operands {
                    let (src, _) = arg(*v, &mut b)?;
                    let mut dst = out;
                    if by_rows {
                        dst.offset += at * c;
                        dst.rows = src.rows;
                        at += src.rows;
                    } else {
                        dst.offset += at;
                        dst.cols = src.cols;
                        at += src.cols;
                    }
                    b.instrs.push(copy(src, dst));
                }
                out
            }
            Op::Softmax { axis } | Op::LogSoftmax { axis } if axis + 1 == dims.len() => {
                let (x, _) = arg(operands[0], &mut b)?;
                let (r, c) = rows_cols(&dims);
                let out = b.bufs.scratch_view(r, c);
                let op = match node.op {
                    Op::LogSoftmax { .. } => RowOp::LogSoftmax,
                    _ => RowOp::Softmax,
                };
                b.instrs.push(Instr::Rows { x, out, op });
                out
            }
            // Over another axis: that axis moved last, normalised, moved back.
            Op::Softmax { axis } | Op::LogSoftmax { axis } => {
                let (x, _) = arg(operands[0], &mut b)?;
                let last = dims.len() - 1;
                let mut moved = dims.clone();
                moved.swap(*axis, last);
                let swap = |k: usize| {
                    if k == *axis {
                        last
                    } else if k == last {
                        *axis
                    } else {
                        k
                    }
                };
                let to_s = row_strides(&moved);
                let there: Vec<isize> = (0..dims.len()).map(|k| to_s[swap(k)]).collect();
                let x = b.layout().copy_into_new(x, &dims, &moved, 0, &there)?;
                let (r, c) = rows_cols(&moved);
                let normed = b.bufs.scratch_view(r, c);
                let op = match node.op {
                    Op::LogSoftmax { .. } => RowOp::LogSoftmax,
                    _ => RowOp::Softmax,
                };
                b.instrs.push(Instr::Rows { x, out: normed, op });
                let back_s = row_strides(&dims);
                let back: Vec<isize> = (0..dims.len()).map(|k| back_s[swap(k)]).collect();
                b.layout().copy_into_new(normed, &moved, &dims, 0, &back)?
            }
            Op::LayerNorm { eps } => {
                let (x, _) = arg(operands[0], &mut b)?;
                let (r, c) = rows_cols(&dims);
                let out = b.bufs.scratch_view(r, c);
                let op = RowOp::LayerNorm { eps: *eps };
                b.instrs.push(Instr::Rows { x, out, op });
                out
            }
            Op::MatMul if !known.contains_key(&operands[1].node) => {
                let (x, xd) = arg(operands[0], &mut b)?;
                let (y, yd) = arg(operands[1], &mut b)?;
                b.layout().batch_matmul(x, &xd, y, &yd, &dims)?
            }
            Op::Linear | Op::MatMul => {
                let (x, _) = arg(operands[0], &mut b)?;
                let Some(w) = known.get(&operands[1].node) else {
                    return unsupported("a matrix product with a run-time right operand");
                };
                let w = w.f32();
                if w.ndim() != 2 {
                    return unsupported("a matrix product with a batched right operand");
                }
                let (instr, out) =
                    product(&mut b.bufs, x, w, matches!(node.op, Op::Linear), b.products);
                b.instrs.push(instr);
                out
            }
            Op::Unary(_) | Op::Binary(_) | Op::Fused(_) => {
                let (r, c) = rows_cols(&dims);
                let mut ins = Vec::new();
                for v in &operands {
                    let (view, od) = arg(*v, &mut b)?;
                    ins.push(match broadcast(view, &od, &dims) {
                        Ok(v) => v,
                        // A broadcast the loop cannot read in place: written out.
                        Err(_) => b.layout().broadcast_copy(view, &od, &dims)?,
                    });
                }
                let isa = b.products.isa;
                if let Some(v) =
                    plan::fold_into_product(g, id, &operands, &ins, (&mut b.instrs, isa))
                {
                    views.insert(Value::new(id, 0), v);
                    shapes.insert(Value::new(id, 0), dims);
                    continue;
                }
                let (code, results) = match &node.op {
                    Op::Unary(u) => (vec![EOp::Input(0), EOp::Unary(*u, 0)], vec![1]),
                    Op::Binary(o) => (
                        vec![EOp::Input(0), EOp::Input(1), EOp::Binary(*o, 0, 1)],
                        vec![2],
                    ),
                    Op::Fused(f) => elementwise_code(&f.body)?,
                    _ => unreachable!(),
                };
                let mut outputs = Vec::new();
                for (i, at) in results.into_iter().enumerate() {
                    let out = b.bufs.scratch_view(r, c);
                    views.insert(Value::new(id, i as u32), out);
                    shapes.insert(Value::new(id, i as u32), dims.clone());
                    outputs.push((at, out));
                }
                b.instrs.push(Instr::Elementwise(Elementwise {
                    rows: r,
                    cols: c,
                    inputs: ins,
                    code,
                    outputs,
                }));
                continue;
            }
            Op::Scan(scan) => {
                let mut operand_views = Vec::new();
                let mut operand_shapes = Vec::new();
                for v in &operands {
                    let (view, od) = arg(*v, &mut b)?;
                    operand_views.push(view);
                    operand_shapes.push(od);
                }
                // Sequences of token ids: read in place, checked against the
                // tables the body's embeddings index.
                let id_seqs: Vec<Option<usize>> =
                    operands.iter().map(|v| ids.get(v).copied()).collect();
                if id_seqs[scan.n_seqs..].iter().any(Option::is_some) {
                    return unsupported("token ids as a scan's state or memory");
                }
                let (results, id_rows) =
                    b.call_scan(scan, &operand_views, &operand_shapes, &id_seqs)?;
                for (input, rows) in id_seqs.iter().zip(id_rows) {
                    let (Some(input), Some(n)) = (input, rows) else {
                        continue;
                    };
                    match &mut ints[*input] {
                        Some(IntInput::Ids { rows }) => *rows = (*rows).min(n),
                        _ => {
                            return unsupported(
                                "one integer input read as token ids and as lengths",
                            )
                        }
                    }
                }
                for (i, view) in results.into_iter().enumerate() {
                    let v = Value::new(id, i as u32);
                    shapes.insert(v, concrete(&node.results[i], sizes)?);
                    views.insert(v, view);
                }
                continue;
            }
            Op::Decode(d) => {
                let mut operand_views = Vec::new();
                let mut operand_shapes = Vec::new();
                for v in &operands {
                    let (view, od) = arg(*v, &mut b)?;
                    operand_views.push(view);
                    operand_shapes.push(od);
                }
                let results = b.call_decode(d, &operand_views, &operand_shapes)?;
                for (i, view) in results.into_iter().enumerate() {
                    let v = Value::new(id, i as u32);
                    shapes.insert(v, concrete(&node.results[i], sizes)?);
                    views.insert(v, view);
                    if node.results[i].dtype != DType::F32 {
                        int_results.insert(v);
                    }
                }
                continue;
            }
            other => return unsupported(format!("`{}` outside a scan", other.name())),
        };
        views.insert(Value::new(id, 0), result);
        shapes.insert(Value::new(id, 0), dims);
    }
    let mut outputs = Vec::new();
    let mut output_ints = Vec::new();
    // Outputs a scan wrote straight into the output buffer: (its workspace view, the output's).
    let mut redirected: Vec<(View, View)> = Vec::new();
    for (i, (name, v)) in g.outputs.iter().enumerate() {
        let (src, dims) = if let Some(t) = known.get(&v.node) {
            (b.constant_of(v.node, t)?, t.shape().to_vec())
        } else {
            (views[v], shapes[v].clone())
        };
        let (r, c) = rows_cols(&dims);
        let int = int_results.contains(v);
        // An i64 is two f32 units.
        let units = if int { 2 * c } else { c };
        let dst = View::contiguous(Slot::Emit(i), 0, r, units);
        output_ints.push(int);
        if let Some(first) = redirected
            .iter()
            .find(|(from, _)| *from == src)
            .map(|(_, to)| *to)
        {
            // The same value as an earlier output, which its scan wrote there.
            b.instrs.push(copy(first, dst));
        } else if plan::redirect_call_result(&mut b.instrs, src, dst) {
            redirected.push((src, dst));
        } else {
            b.instrs.push(copy(src, dst));
        }
        outputs.push((name.clone(), dims));
    }
    let top = Plan {
        reverse: false,
        batch: sizes.batch,
        time: 1,
        n_seqs: inputs.len(),
        n_states: 0,
        n_memories: 0,
        id_rows: Vec::new(),
        n_emits: outputs.len(),
        emit_widths: outputs
            .iter()
            .zip(&output_ints)
            .map(|((_, d), int)| d.iter().product::<usize>() * if *int { 2 } else { 1 })
            .collect(),
        state_shapes: Vec::new(),
        prologue: None,
        stop: None,
        body: Program {
            steps: 1,
            instrs: b.instrs,
        },
        tail: None,
        consts: b.bufs.consts,
        scratch_len: b.bufs.scratch_len,
        // Each scan has one function per thread: `Fn(k · threads + t)`.
        callees: b.scans.len() * threads,
        isa: b.products.isa,
        alt: Vec::new(),
    };
    if let Some(v) = g.outputs.iter().find(|(_, v)| ids.contains_key(v)) {
        return unsupported(format!("output `{}` is token ids", v.0));
    }
    Ok(WholePlan {
        top,
        scans: b.scans,
        inputs,
        ints,
        outputs,
        output_ints,
    })
}

/// How a `stack` or `concat` with result shape `dims` lays its operands out in the
/// result viewed as a matrix: Some(true) one after another as rows, Some(false)
/// side by side as columns, None when neither (then it is unsupported).
fn side_by_side(op: &Op, dims: &[usize]) -> Option<bool> {
    let rank = dims.len();
    match *op {
        // Along the last axis (or a rank-1 result): column blocks.
        Op::Concat { axis } if axis + 1 == rank => Some(false),
        Op::Stack { axis: 0 } if rank == 1 => Some(false),
        // Along the first axis: row blocks.
        Op::Concat { axis: 0 } | Op::Stack { axis: 0 } => Some(true),
        _ => None,
    }
}

struct Top<'a> {
    weights: &'a Weights,
    bufs: Buffers,
    const_of: HashMap<NodeId, View>,
    instrs: Vec<Instr>,
    scans: Vec<Plan>,
    batch: usize,
    products: Products,
}

impl Top<'_> {
    fn layout(&mut self) -> Layout<'_> {
        Layout {
            bufs: &mut self.bufs,
            instrs: &mut self.instrs,
        }
    }

    /// A load-time value as a constant buffer (made once).
    fn constant_of(&mut self, id: NodeId, t: &Tensor) -> Result<View, Unsupported> {
        if let Some(v) = self.const_of.get(&id) {
            return Ok(*v);
        }
        let Tensor::F32(a) = t else {
            return unsupported("an integer constant");
        };
        let (r, c) = rows_cols(a.shape());
        let k = self.bufs.constant(row_major(a));
        let v = View::contiguous(Slot::Const(k), 0, r, c);
        self.const_of.insert(id, v);
        Ok(v)
    }

    /// Plans decode loop `d` and calls it; returns the views of its tokens and
    /// lengths (i64, two f32 units each) and scores, as values of the shapes its
    /// results have. For a beam, each example's `width` rows start as copies of
    /// its states and memories.
    fn call_decode(
        &mut self,
        d: &Decode,
        operands: &[View],
        shapes: &[Vec<usize>],
    ) -> Result<Vec<View>, Unsupported> {
        let width = d.beam.unwrap_or(1);
        let mut args = Vec::new();
        let mut at_rows = Vec::new();
        for (i, (v, od)) in operands.iter().zip(shapes).enumerate() {
            let mut one = od.clone();
            one.insert(1, 1);
            let mut spread = od.clone();
            spread.insert(1, width);
            // A fresh copy of each state: the loop overwrites it.
            let v = match (width, i < d.n_states) {
                (1, true) => {
                    let (r, c) = rows_cols(od);
                    let buf = self.bufs.scratch_view(r, c);
                    self.instrs.push(copy(*v, buf));
                    buf
                }
                (1, false) => self.layout().contiguous(*v),
                _ => self.layout().broadcast_copy(*v, &one, &spread)?,
            };
            let mut s = od.clone();
            s[0] *= width;
            args.push(v);
            at_rows.push(s);
        }
        let p = crate::decode::plan_decode(d, &at_rows, self.weights, self.products)?;
        let rows = self.batch * width;
        let results = [
            self.bufs.scratch_view(rows, 2 * d.max_len),
            self.bufs.scratch_view(rows, 2),
            self.bufs.scratch_view(rows, 1),
        ];
        args.extend(results);
        let first = self.bufs.consts.len();
        for (i, c) in p.consts.iter().enumerate() {
            let k = self.bufs.constant(c.clone());
            debug_assert_eq!(k, first + i);
            args.push(View::contiguous(Slot::Const(k), 0, 1, c.len()));
        }
        args.push(self.bufs.scratch_view(1, p.scratch_len.max(1)));
        debug_assert_eq!(args.len(), p.slots().len());
        self.instrs.push(Instr::CallScan {
            scan: self.scans.len(),
            args,
        });
        self.scans.push(p);
        // Tokens [B(, width), max_len], lengths and scores [B(, width)].
        let lead = if width == 1 {
            vec![self.batch]
        } else {
            vec![self.batch, width]
        };
        let mut tokens = lead.clone();
        tokens.push(d.max_len);
        Ok([tokens, lead.clone(), lead]
            .iter()
            .zip(results)
            .zip([2, 2, 1])
            .map(|((dims, buf), units)| {
                let (r, c) = rows_cols(dims);
                View::contiguous(buf.slot, buf.offset, r, c * units)
            })
            .collect())
    }

    /// Plans `scan` and calls it; returns the views of its results (emits
    /// `[B·T, F]`, then final states) and, per sequence, the rows of the
    /// smallest table its token ids index. `id_inputs` says which operands
    /// are token-id inputs (read in place: one i64 per step).
    fn call_scan(
        &mut self,
        scan: &rnnc_ir::Scan,
        operands: &[View],
        shapes: &[Vec<usize>],
        id_inputs: &[Option<usize>],
    ) -> Result<(Vec<View>, Vec<Option<usize>>), Unsupported> {
        // A sequence is read in place where its B·T rows are evenly spaced (a
        // gate's columns of a hoisted projection: the scan steps over the whole
        // row), else copied.
        let n_seqs = scan.n_seqs;
        let mut args = Vec::new();
        let mut pitches = Vec::new();
        for (v, ids) in operands[..n_seqs].iter().zip(id_inputs) {
            if ids.is_some() {
                pitches.push(2);
                args.push(*v);
                continue;
            }
            let v = if v.rows > 1 && v.row_stride < v.cols {
                self.layout().contiguous(*v)
            } else {
                *v
            };
            pitches.push(if v.rows > 1 { v.row_stride } else { v.cols });
            args.push(v);
        }
        let p = plan::plan(scan, shapes, Some(&pitches), self.weights, self.products)?;
        // The scan overwrites its state buffers with the final states: each starts
        // as a copy of the initial state in the workspace.
        let mut states = Vec::new();
        for (v, shape) in operands[p.n_seqs..].iter().zip(&p.state_shapes) {
            let (r, c) = rows_cols(shape);
            let buf = self.bufs.scratch_view(r, c);
            self.instrs.push(copy(*v, buf));
            args.push(buf);
            states.push(buf);
        }
        let memories = &operands[p.n_seqs + p.n_states..];
        for v in memories {
            let v = self.layout().contiguous(*v);
            args.push(v);
        }
        let mut emits = Vec::new();
        for w in &p.emit_widths {
            let e = self.bufs.scratch_view(p.batch * p.time, *w);
            args.push(e);
            emits.push(e);
        }
        let first = self.bufs.consts.len();
        for (i, c) in p.consts.iter().enumerate() {
            let k = self.bufs.constant(c.clone());
            debug_assert_eq!(k, first + i);
            args.push(View::contiguous(Slot::Const(k), 0, 1, c.len()));
        }
        args.push(self.bufs.scratch_view(1, p.scratch_len.max(1)));
        debug_assert_eq!(args.len(), p.slots().len());
        debug_assert!(p.batch == self.batch);
        self.instrs.push(Instr::CallScan {
            scan: self.scans.len(),
            args,
        });
        let id_rows = p.id_rows.clone();
        self.scans.push(p);
        emits.extend(states);
        Ok((emits, id_rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Products;
    use ndarray::ArrayD;
    use rnnc_kernels::Isa;

    /// A GRU's shape of top level: one projection whose column blocks are the
    /// scan's sequences.
    const SLICED: &str = r#"graph G {
  %0 = input name="x" zeros=false : f32[B, T, 4]
  %1 = input name="h0" zeros=true : f32[B, 3]
  %2 = weight key="w" : f32[6, 4]
  %3 = linear %0, %2 : f32[B, T, 6]
  %4 = slice axis=2 start=0 end=3 %3 : f32[B, T, 3]
  %5 = slice axis=2 start=3 end=6 %3 : f32[B, T, 3]
  %6, %7 = scan reverse=false seqs=2 states=1 %4, %5, %1 : f32[B, T, 3], f32[B, 3] {
    %8 = state index=0 : f32[B, 3]
    %9 = seq index=0 : f32[B, 3]
    %10 = seq index=1 : f32[B, 3]
    %11 = mul %9, %10 : f32[B, 3]
    %12 = add %8, %11 : f32[B, 3]
    next %12
    emit %12
  }
  output "y" %6
}"#;

    #[test]
    fn column_blocks_of_a_projection_are_read_in_place() {
        let g = rnnc_ir::parse_graph(SLICED).unwrap();
        let mut w = Weights::new();
        w.insert("w".into(), ArrayD::zeros(vec![6, 4]));
        let known = rnnc_interp::load_time_values(&g, &w).unwrap();
        let sizes = Dims {
            batch: 2,
            time: 5,
            source: None,
        };
        let p = plan_model(&g, &w, &known, sizes, 1, Products::jit(Isa::Portable)).unwrap();
        let instrs = &p.top.body.instrs;
        let product = instrs
            .iter()
            .find_map(|i| match i {
                Instr::MatMul { out, .. } | Instr::Gemm { out, .. } => Some(*out),
                _ => None,
            })
            .unwrap();
        let Some(Instr::CallScan { args, .. }) =
            instrs.iter().find(|i| matches!(i, Instr::CallScan { .. }))
        else {
            panic!("no scan call in {instrs:?}")
        };
        // Both sequences start inside the product's result (rows padded to whole
        // panels), three columns apart; the only copy is of the initial state (the
        // scan writes its emit straight into the output).
        assert_eq!(
            (args[0].slot, args[0].offset),
            (product.slot, product.offset)
        );
        assert_eq!(
            (args[1].slot, args[1].offset),
            (product.slot, product.offset + 3)
        );
        let copies = instrs
            .iter()
            .filter(|i| matches!(i, Instr::Elementwise(e) if e.code == [EOp::Input(0)]))
            .count();
        assert_eq!(copies, 1, "the initial state only: {instrs:?}");
    }
}
