//! The fused time step: a scan body planned as one kernel per *stage* instead of one
//! per op. Every value of the body becomes an expression of its element's
//! coordinates (products are loops over `k` inside the expression, slices and
//! broadcasts re-index their operand), and the kernel evaluates only what the step
//! stores: the next states and the emits. A product whose operand is itself computed
//! with a product in the same step needs every element of that operand first, so
//! the operand is stored by one kernel and read by the next (a stage); the standard
//! LSTM, GRU and RNN cells are one stage, one launch per step.
//!
//! Threads read the states while others write the next ones, so each state has two
//! regions and the steps alternate between them: the loop runs pairs of steps, the
//! second kernel of a pair reading what the first wrote.

use crate::lower::{unsupported, Builder, Layout, Site, Steps, Unsupported, Val, MAX_VOCAB};
use crate::plan::{
    Access, Body, Coord, Expr, ExprKind, RowOp, ScanPlan, SeqLoop, Stage, Step, StoreGroup, TimeRef,
};
use rnnc_ir::deps::{dependencies, Dep};
use rnnc_ir::{Graph, Op, Scan, Value};
use std::collections::HashMap;

/// A value of the step being planned: its expression, and the first stage kernel
/// that can evaluate it (stage s + 1 reads what stage s stored).
#[derive(Clone, Copy)]
struct Lazy {
    expr: usize,
    stage: usize,
}

#[derive(Default)]
struct Exprs {
    list: Vec<Expr>,
    /// Whether an expression computes a product somewhere (re-evaluating it per
    /// element of a consumer's product would multiply its cost).
    has_dot: Vec<bool>,
    /// Stores of each stage kernel: (shape, where, expression).
    stores: Vec<Vec<(Vec<usize>, Access, usize)>>,
}

impl Exprs {
    fn push(&mut self, shape: Vec<usize>, kind: ExprKind, stage: usize) -> Lazy {
        let dot = match &kind {
            ExprKind::Load(_) | ExprKind::Const(_) => false,
            ExprKind::Dot { .. } => true,
            ExprKind::Unary(_, a) | ExprKind::View { src: a, .. } => self.has_dot[*a],
            ExprKind::Binary(_, a, b) => self.has_dot[*a] || self.has_dot[*b],
            ExprKind::Concat { parts, .. } => parts.iter().any(|p| self.has_dot[*p]),
            // A row's reduction reads the whole row per element: as costly to
            // re-evaluate per element of a consumer as a product.
            ExprKind::Row { .. } => true,
            ExprKind::Gather { ids, .. } => self.has_dot[*ids],
        };
        self.list.push(Expr { shape, kind });
        self.has_dot.push(dot);
        Lazy {
            expr: self.list.len() - 1,
            stage,
        }
    }

    fn load(&mut self, v: &Val, time: Option<TimeRef>, stage: usize) -> Lazy {
        let access = Access {
            offset: v.offset,
            strides: v.strides.clone(),
            time,
        };
        self.push(v.shape.clone(), ExprKind::Load(access), stage)
    }

    fn shape(&self, x: Lazy) -> &[usize] {
        &self.list[x.expr].shape
    }

    /// `x` read at `coords` (one per axis of `x`, from coordinates of `shape`): a
    /// load's access re-indexed, a view of a view composed, else a view.
    fn view(&mut self, x: Lazy, shape: Vec<usize>, coords: Vec<Coord>) -> Lazy {
        let kind = match &self.list[x.expr].kind {
            ExprKind::Load(a) => {
                let mut offset = a.offset as isize;
                let mut strides = vec![0isize; shape.len()];
                for (c, s) in coords.iter().zip(&a.strides) {
                    offset += c.base * s;
                    if let Some((axis, scale)) = c.from {
                        strides[axis] += scale * s;
                    }
                }
                ExprKind::Load(Access {
                    offset: offset as usize,
                    strides,
                    time: a.time,
                })
            }
            ExprKind::View { src, coords: inner } => {
                let composed = inner
                    .iter()
                    .map(|c| match c.from {
                        None => *c,
                        Some((axis, scale)) => {
                            let outer = coords[axis];
                            Coord {
                                base: c.base + scale * outer.base,
                                from: outer.from.map(|(a, s)| (a, s * scale)),
                            }
                        }
                    })
                    .collect();
                ExprKind::View {
                    src: *src,
                    coords: composed,
                }
            }
            _ => ExprKind::View {
                src: x.expr,
                coords,
            },
        };
        self.push(shape, kind, x.stage)
    }

    /// `x` broadcast to `shape` (NumPy's rules: axes aligned at the end).
    fn broadcast(&mut self, x: Lazy, shape: &[usize]) -> Lazy {
        let own = self.shape(x).to_vec();
        if own == shape {
            return x;
        }
        let lead = shape.len() - own.len();
        let coords = own
            .iter()
            .enumerate()
            .map(|(j, n)| match *n == shape[j + lead] {
                true => Coord::at(j + lead),
                false => Coord::fixed(0),
            })
            .collect();
        self.view(x, shape.to_vec(), coords)
    }

    /// Elementwise `kind` built from `operands` broadcast to `shape`.
    fn elementwise(
        &mut self,
        shape: &[usize],
        operands: &[Lazy],
        build: impl FnOnce(&[usize]) -> ExprKind,
    ) -> Lazy {
        let ops: Vec<Lazy> = operands.iter().map(|x| self.broadcast(*x, shape)).collect();
        let stage = ops.iter().map(|x| x.stage).max().unwrap_or(0);
        let ids: Vec<usize> = ops.iter().map(|x| x.expr).collect();
        self.push(shape.to_vec(), build(&ids), stage)
    }

    fn store(&mut self, stage: usize, shape: Vec<usize>, at: Access, x: usize) {
        if self.stores.len() <= stage {
            self.stores.resize(stage + 1, vec![]);
        }
        self.stores[stage].push((shape, at, x));
    }
}

/// Steps whose stores all fit this many threads run as one workgroup for the whole
/// sequence (WebGPU guarantees 256 invocations per workgroup).
const WHOLE_MAX: usize = 256;
/// Most stage copies (each body's stages and its copy of the next states) in one
/// whole-sequence kernel.
const WHOLE_COPIES: usize = 5;
/// Multiply-adds per step below which a scan that fits one workgroup runs in one.
const WHOLE_MACS: usize = 32 * 1024;

/// A stage of a fused step before it is launched: its kernel's name and comment.
struct Named {
    name: String,
    about: String,
    stage: Stage,
}

/// Where the fused step of one scan reads and writes.
#[derive(Clone, Copy)]
pub(crate) struct StepIo<'a> {
    pub scan: &'a Scan,
    pub seqs: &'a [Val],
    /// What the body's `memory` arguments read (the same at every step).
    pub memories: &'a [Val],
    pub emits: &'a [Val],
    /// Time steps of the whole scan (reverse scans count from the end).
    pub steps: usize,
    pub prefix: &'a str,
}

impl Builder {
    /// The fused plan of a whole scan: the launches after its initial-state copies
    /// (loops of step kernels, then, after an odd number of steps, copies of the
    /// states back to their first regions), and what the manifest says of it.
    pub(crate) fn fused_scan(
        &mut self,
        io: &StepIo<'_>,
        states: &[Val],
    ) -> Result<(Vec<Step>, ScanPlan), Unsupported> {
        if states.iter().any(|v| v.ids) {
            return unsupported("token ids as a state");
        }
        let twins: Vec<Val> = states
            .iter()
            .map(|s| self.fresh(s.shape.clone(), false))
            .collect();
        let bufs = [states.to_vec(), twins];
        let saved = self.checkpoint();
        let mut parity = 0;
        let k = io.scan.step.max(1);
        let full = io.steps / k;
        let left = io.steps % k;
        // Every stage planned (named), and the loops over them.
        let mut stages: Vec<Named> = vec![];
        let mut loops: Vec<(usize, usize, usize, Vec<usize>)> = vec![];
        let (mut per_body, mut macs) = (0, 0);
        // Stage copies a whole-sequence kernel would hold: each body's stages and
        // the copy of the next states.
        let mut copies = 0;
        if full > 0 {
            let body = &io.scan.body;
            (per_body, macs) = self.fused_loop(
                io,
                body,
                k,
                full,
                0,
                &bufs,
                &mut parity,
                &mut stages,
                &mut loops,
                "",
            )?;
            copies += per_body + 1;
        }
        if let (Some(tail), true) = (&io.scan.tail, left > 0) {
            let (n, tail_macs) = self.fused_loop(
                io,
                tail,
                1,
                left,
                full * k,
                &bufs,
                &mut parity,
                &mut stages,
                &mut loops,
                "tail_",
            )?;
            per_body = per_body.max(n);
            macs = macs.max(tail_macs);
            copies += n + 1;
        }
        // One workgroup for the whole scan where the step fits one: needed for one
        // launch per step when a step has stages (the barrier between them), and
        // faster where a step is so small that launching costs more than it computes.
        // On llvmpipe (2 cores) a step of 16K multiply-adds (LSTM, H = 64) runs as
        // fast either way and one of 65K (H = 128) 25 % slower in one workgroup.
        let fits = stages
            .iter()
            .all(|s| step_work(&s.stage.groups) <= WHOLE_MAX);
        // llvmpipe compiles a kernel with barriers as coroutines, in time that grows
        // much faster than the kernel: an unrolled peephole LSTM (I=12, H=16) in one
        // workgroup, 12 stage copies, took 80 s to prepare (0.5 s launched per step);
        // not unrolled, 3 copies, 1.8 s. Unrolled bodies stay per step.
        let whole = self.steps == Steps::Auto
            && fits
            && copies <= WHOLE_COPIES
            && (per_body > k || macs <= WHOLE_MACS);
        let mut run = vec![];
        if whole && !stages.is_empty() {
            // One workgroup needs no alternation: each step stores the next states
            // aside, and a last stage copies them over the states after a barrier.
            self.restore(saved);
            parity = 0;
            let mut seq = vec![];
            let runs = [
                (Some(&io.scan.body), k, full, 0, ""),
                (io.scan.tail.as_ref(), 1, left, full * k, "tail_"),
            ];
            for (body, k, count, first, tail) in runs {
                let Some(body) = body.filter(|_| count > 0) else {
                    continue;
                };
                let prefix = format!("{}{tail}", io.prefix);
                let (named, _) =
                    self.fused_step(io, body, k, &bufs[0], &bufs[1], 0, &prefix, "")?;
                let mut stages: Vec<Stage> = named.into_iter().map(|s| s.stage).collect();
                stages.push(copy_stage(&bufs[1], &bufs[0]));
                seq.push(SeqLoop {
                    count,
                    first,
                    stride: k,
                    stages,
                });
            }
            let about = format!(
                "the whole scan in one workgroup: {} steps, {per_body} stage(s) per {k}",
                io.steps
            );
            let body = Body::Sequence { loops: seq };
            self.launch(
                false,
                &mut run,
                &format!("{}sequence", io.prefix),
                about,
                body,
            );
            per_body = 0;
        } else {
            let kernels: Vec<Vec<Step>> = stages
                .into_iter()
                .map(|s| {
                    let mut one = vec![];
                    self.launch(false, &mut one, &s.name, s.about, Body::Step(s.stage));
                    one
                })
                .collect();
            for (count, first, stride, ids) in loops {
                run.push(Step::Loop {
                    count,
                    first,
                    stride,
                    body: ids.iter().flat_map(|i| kernels[*i].clone()).collect(),
                });
            }
        }
        if parity == 1 {
            for (i, (from, to)) in bufs[1].iter().zip(&bufs[0]).enumerate() {
                let name = format!("{}final{i}", io.prefix);
                self.copy(
                    false,
                    &mut run,
                    &name,
                    "final state, to its first region",
                    from,
                    to,
                );
            }
        }
        let plan = ScanPlan {
            scan: io.prefix.trim_end_matches('_').to_string(),
            strategy: if whole {
                "whole sequence"
            } else {
                "fused step"
            },
            launches_per_body: per_body,
            steps_per_body: k,
            why: None,
        };
        Ok((run, plan))
    }

    /// `count` runs of `body` (`k` steps each) from step `first`, alternating the
    /// state regions: its stages added to `stages`, its loops (count, first,
    /// stride, stages run per iteration) to `loops`; returns the stages of one run
    /// and the multiply-adds of one step.
    #[allow(clippy::too_many_arguments)]
    fn fused_loop(
        &mut self,
        io: &StepIo<'_>,
        body: &Graph,
        k: usize,
        count: usize,
        first: usize,
        bufs: &[Vec<Val>; 2],
        parity: &mut usize,
        stages: &mut Vec<Named>,
        loops: &mut Vec<(usize, usize, usize, Vec<usize>)>,
        tail: &str,
    ) -> Result<(usize, usize), Unsupported> {
        let (a, b) = (&bufs[*parity], &bufs[1 - *parity]);
        let prefix = format!("{}{tail}", io.prefix);
        let add = |stages: &mut Vec<Named>, new: Vec<Named>| {
            let ids: Vec<usize> = (stages.len()..stages.len() + new.len()).collect();
            stages.extend(new);
            ids
        };
        let (even, macs) = self.fused_step(io, body, k, a, b, 0, &prefix, "")?;
        let n = even.len();
        let even = add(stages, even);
        let pairs = count / 2;
        if pairs > 0 {
            let (odd, _) = self.fused_step(io, body, k, b, a, k, &prefix, "_odd")?;
            let odd = add(stages, odd);
            loops.push((
                pairs,
                first,
                2 * k,
                even.iter().chain(&odd).copied().collect(),
            ));
        }
        if count % 2 == 1 {
            loops.push((1, first + pairs * 2 * k, k, even));
            *parity = 1 - *parity;
        }
        Ok((n, macs / k))
    }

    /// The stage kernels of one run of `body`: states read from `read`, the next
    /// ones written to `write`, time indices `lag` steps after the clock.
    #[allow(clippy::too_many_arguments)]
    fn fused_step(
        &mut self,
        io: &StepIo<'_>,
        body: &Graph,
        k: usize,
        read: &[Val],
        write: &[Val],
        lag: usize,
        prefix: &str,
        suffix: &str,
    ) -> Result<(Vec<Named>, usize), Unsupported> {
        let scan = io.scan;
        let at = |j: usize, stride: isize| TimeRef {
            stride,
            lag: lag + j,
            reverse: scan.reverse,
            steps: io.steps,
        };
        let mut x = Exprs::default();
        let mut args = vec![];
        for j in 0..k {
            for seq in io.seqs {
                let mut v = seq.clone();
                let t_stride = v.strides.remove(1);
                v.shape.remove(1);
                args.push(x.load(&v, Some(at(j, t_stride)), 0));
            }
        }
        let layout = Layout {
            seqs: args.len(),
            states: read.len(),
        };
        for s in read.iter().chain(io.memories) {
            args.push(x.load(s, None, 0));
        }
        let deps = dependencies(body);
        let named: HashMap<Value, &str> =
            body.outputs.iter().map(|(n, v)| (*v, n.as_str())).collect();
        let mut lazy: HashMap<Value, Lazy> = HashMap::new();
        let mut loaded: HashMap<Value, Val> = HashMap::new();
        for id in body.topo_order().expect("verified graphs are acyclic") {
            let node = body.node(id);
            let operands = body.operands(id);
            let is_arg = matches!(node.op, Op::Arg { .. });
            if deps[&id] == Dep::Load && !is_arg {
                // Weights only: planned once, in the prologue, as everywhere else.
                let ops: Option<Vec<Val>> =
                    operands.iter().map(|v| loaded.get(v).cloned()).collect();
                let Some(ops) = ops else {
                    return unsupported("a weight-only value computed from step values");
                };
                let name = self.kernel_name(body, &named, id, prefix);
                let site = Site {
                    g: body,
                    id,
                    load: true,
                    deps: None,
                    name: &name,
                    prefix,
                };
                let mut none = vec![];
                let vals = self.node(site, ops, &[], Layout::default(), &mut none)?;
                debug_assert!(none.is_empty(), "weight-only kernels go to the prologue");
                for (r, v) in vals.into_iter().enumerate() {
                    let value = Value::new(id, r as u32);
                    lazy.insert(value, x.load(&v, None, 0));
                    loaded.insert(value, v);
                }
                continue;
            }
            let mut ops: Vec<Lazy> = operands.iter().map(|v| lazy[v]).collect();
            let shape = self.shape(&node.results[0]);
            if matches!(node.op, Op::Binary(_) | Op::Fused(_)) {
                // A product broadcast to more elements than it has (attention's
                // query across the source positions) is stored first: evaluated
                // per element it would be computed again at every one of them.
                let n: usize = shape.iter().product();
                for o in &mut ops {
                    if x.has_dot[o.expr] && x.shape(*o).iter().product::<usize>() < n {
                        *o = self.operand(&mut x, *o)?;
                    }
                }
            }
            let results = match &node.op {
                Op::Arg { kind, index } => vec![args[layout.index(*kind, *index)]],
                Op::Const(c) => vec![x.push(vec![], ExprKind::Const(*c), 0)],
                Op::Unary(u) => vec![x.elementwise(&shape, &ops, |o| ExprKind::Unary(*u, o[0]))],
                Op::Binary(b) => {
                    vec![x.elementwise(&shape, &ops, |o| ExprKind::Binary(*b, o[0], o[1]))]
                }
                Op::Fused(f) => self.fused_region(&mut x, &f.body, &ops)?,
                Op::Unsqueeze { axis } => {
                    let coords = without_axis(shape.len(), *axis);
                    vec![x.view(ops[0], shape, coords)]
                }
                Op::Squeeze { axis } => {
                    let coords = fixed_axis(shape.len(), *axis, 0);
                    vec![x.view(ops[0], shape, coords)]
                }
                Op::Slice { axis, start, .. } => {
                    let c = Coord {
                        base: *start as isize,
                        from: Some((*axis, 1)),
                    };
                    let coords = one_axis(shape.len(), *axis, c);
                    vec![x.view(ops[0], shape, coords)]
                }
                Op::Index { axis, index } => {
                    let n = x.shape(ops[0])[*axis] as i64;
                    let i = if *index < 0 { index + n } else { *index };
                    if i < 0 || i >= n {
                        return unsupported(format!(
                            "index {index} is out of range for an axis of length {n}"
                        ));
                    }
                    let coords = fixed_axis(shape.len(), *axis, i as isize);
                    vec![x.view(ops[0], shape, coords)]
                }
                Op::Flip { axis } => {
                    let c = Coord {
                        base: shape[*axis] as isize - 1,
                        from: Some((*axis, -1)),
                    };
                    let coords = one_axis(shape.len(), *axis, c);
                    vec![x.view(ops[0], shape, coords)]
                }
                Op::Transpose { a, b } => {
                    let coords = (0..shape.len())
                        .map(|d| match d {
                            d if d == *a => Coord::at(*b),
                            d if d == *b => Coord::at(*a),
                            d => Coord::at(d),
                        })
                        .collect();
                    vec![x.view(ops[0], shape, coords)]
                }
                Op::Concat { axis } => vec![concat(&mut x, &shape, *axis, &ops)],
                Op::Stack { axis } => {
                    let parts: Vec<Lazy> = ops
                        .iter()
                        .map(|p| {
                            let mut s = x.shape(*p).to_vec();
                            s.insert(*axis, 1);
                            let coords = without_axis(s.len(), *axis);
                            x.view(*p, s, coords)
                        })
                        .collect();
                    vec![concat(&mut x, &shape, *axis, &parts)]
                }
                Op::Linear => {
                    let a = self.operand(&mut x, ops[0])?;
                    let w = match loaded.get(&operands[1]) {
                        Some(w) => {
                            let name = format!("{prefix}weight_t");
                            let t = self.transposed(w, &name);
                            x.load(&t, None, 0)
                        }
                        None => self.operand(&mut x, ops[1])?,
                    };
                    let r = shape.len();
                    let len = *x.shape(a).last().expect("rank ≥ 1");
                    let mut a_coords: Vec<Coord> = (0..r - 1).map(Coord::at).collect();
                    a_coords.push(Coord::at(r));
                    let b_coords = vec![Coord::at(r - 1), Coord::at(r)];
                    vec![dot(&mut x, shape, len, (a, a_coords), (w, b_coords))]
                }
                Op::MatMul => {
                    let (a, b) = (self.operand(&mut x, ops[0])?, self.operand(&mut x, ops[1])?);
                    let r = shape.len();
                    let side = |x: &Exprs, v: Lazy, last: [Coord; 2]| {
                        let s = x.shape(v);
                        let lead = r - s.len();
                        let mut c: Vec<Coord> = (0..s.len() - 2)
                            .map(|j| match s[j] == shape[j + lead] {
                                true => Coord::at(j + lead),
                                false => Coord::fixed(0),
                            })
                            .collect();
                        c.extend(last);
                        c
                    };
                    let len = *x.shape(a).last().expect("rank ≥ 2");
                    let a_coords = side(&x, a, [Coord::at(r - 2), Coord::at(r)]);
                    let b_coords = side(&x, b, [Coord::at(r), Coord::at(r - 1)]);
                    vec![dot(&mut x, shape, len, (a, a_coords), (b, b_coords))]
                }
                Op::Softmax { .. } | Op::LogSoftmax { .. } | Op::LayerNorm { .. }
                    if last_axis(&node.op, shape.len()) =>
                {
                    let op = match node.op {
                        Op::Softmax { .. } => RowOp::Softmax,
                        Op::LogSoftmax { .. } => RowOp::LogSoftmax,
                        Op::LayerNorm { eps } => RowOp::LayerNorm(eps),
                        _ => unreachable!("matched above"),
                    };
                    // Each element reads its whole row: from memory, where
                    // the row is itself a product or another reduction.
                    let src = self.operand(&mut x, ops[0])?;
                    let len = *shape.last().expect("a row has an axis");
                    let kind = ExprKind::Row {
                        op,
                        src: src.expr,
                        len,
                    };
                    vec![x.push(shape, kind, src.stage)]
                }
                Op::Embedding => {
                    // The table is a weight (planned in the prologue); the ids are
                    // the step's tokens.
                    let Some(table) = loaded.get(&operands[0]) else {
                        return unsupported("an embedding table computed from step values");
                    };
                    if table.shape[0] > MAX_VOCAB {
                        return unsupported(format!(
                            "an embedding table of {} rows (token ids are f32 values on \
                             the GPU, exact up to {MAX_VOCAB})",
                            table.shape[0]
                        ));
                    }
                    let ids = self.operand(&mut x, ops[1])?;
                    let kind = ExprKind::Gather {
                        table: Access {
                            offset: table.offset,
                            strides: table.strides.clone(),
                            time: None,
                        },
                        vocab: table.shape[0],
                        ids: ids.expr,
                    };
                    vec![x.push(shape, kind, ids.stage)]
                }
                other => return unsupported(format!("`{}` in the step", other.name())),
            };
            for (r, v) in results.into_iter().enumerate() {
                lazy.insert(Value::new(id, r as u32), v);
            }
        }
        let out = |i: usize| lazy[&body.outputs[i].1];
        let n_states = read.len();
        for (i, w) in write.iter().enumerate() {
            let v = out(i);
            x.store(v.stage, w.shape.clone(), w.access(), v.expr);
        }
        for j in 0..k {
            for (e, emit) in io.emits.iter().enumerate() {
                let v = out(n_states + j * io.emits.len() + e);
                let mut strides = emit.strides.clone();
                let t_stride = strides.remove(1);
                let mut shape = emit.shape.clone();
                shape.remove(1);
                let dst = Access {
                    offset: emit.offset,
                    strides,
                    time: Some(at(j, t_stride)),
                };
                x.store(v.stage, shape, dst, v.expr);
            }
        }
        let mut out = vec![];
        let stages = x.stores.len();
        let stores = std::mem::take(&mut x.stores);
        let products = x
            .list
            .iter()
            .filter(|e| matches!(e.kind, ExprKind::Dot { .. }))
            .count();
        let macs = x
            .list
            .iter()
            .map(|e| match e.kind {
                ExprKind::Dot { len, .. } => len * e.shape.iter().product::<usize>(),
                _ => 0,
            })
            .sum();
        for (s, stores) in stores.into_iter().enumerate() {
            let groups = by_shape(stores);
            let name = match stages {
                1 => format!("{prefix}step{suffix}"),
                _ => format!("{prefix}step{s}{suffix}"),
            };
            let about = format!(
                "fused time step (stage {} of {stages}): products and gate math ({products} \
                 product(s) in the step), {} store(s)",
                s + 1,
                groups.iter().map(|g| g.stores.len()).sum::<usize>()
            );
            out.push(Named {
                name,
                about,
                stage: Stage {
                    exprs: x.list.clone(),
                    groups,
                },
            });
        }
        Ok((out, macs))
    }

    /// A product's operand as something cheap to read once per `k`: itself where it
    /// computes no product, else stored by its stage and read by the next.
    fn operand(&mut self, x: &mut Exprs, v: Lazy) -> Result<Lazy, Unsupported> {
        if !x.has_dot[v.expr] {
            return Ok(v);
        }
        let shape = x.shape(v).to_vec();
        let region = self.fresh(shape.clone(), false);
        x.store(v.stage, shape, region.access(), v.expr);
        Ok(x.load(&region, None, v.stage + 1))
    }

    /// A weight matrix `[n, k]` as a view of a copy stored `k`-major (written by the
    /// prologue): threads computing neighbouring columns of a product then read
    /// neighbouring words at each `k`, one coalesced (or vector) load for many.
    pub(crate) fn transposed(&mut self, w: &Val, name: &str) -> Val {
        let key = (w.offset, w.shape.clone(), w.strides.clone());
        if let Some(v) = self.transposed.get(&key) {
            return v.clone();
        }
        let (n, k) = (w.shape[0], w.shape[1]);
        let region = self.fresh(vec![k, n], false);
        let view = Val {
            offset: region.offset,
            shape: vec![n, k],
            strides: vec![1, n as isize],
            ids: false,
        };
        let mut none = vec![];
        self.copy(
            true,
            &mut none,
            name,
            "a weight, stored k-major for a product",
            w,
            &view,
        );
        self.transposed.insert(key, view.clone());
        view
    }

    /// A fused elementwise region on operands `ops`: its results.
    fn fused_region(
        &mut self,
        x: &mut Exprs,
        body: &Graph,
        ops: &[Lazy],
    ) -> Result<Vec<Lazy>, Unsupported> {
        let mut at: HashMap<Value, Lazy> = HashMap::new();
        for id in body.topo_order().expect("verified graphs are acyclic") {
            let node = body.node(id);
            let args: Vec<Lazy> = body.operands(id).iter().map(|v| at[v]).collect();
            let shape = self.shape(&node.results[0]);
            let v = match &node.op {
                Op::Arg { index, .. } => ops[*index],
                Op::Const(c) => x.push(vec![], ExprKind::Const(*c), 0),
                Op::Unary(u) => x.elementwise(&shape, &args, |o| ExprKind::Unary(*u, o[0])),
                Op::Binary(b) => x.elementwise(&shape, &args, |o| ExprKind::Binary(*b, o[0], o[1])),
                other => return unsupported(format!("`{}` inside a fused region", other.name())),
            };
            at.insert(Value::new(id, 0), v);
        }
        Ok(body.outputs.iter().map(|(_, v)| at[v]).collect())
    }
}

/// Whether row op `op` (of a result of rank `rank`) reduces along the last axis,
/// which is what a fused step computes (layer norm always does).
fn last_axis(op: &Op, rank: usize) -> bool {
    match op {
        Op::Softmax { axis } | Op::LogSoftmax { axis } => axis + 1 == rank,
        _ => true,
    }
}

/// A stage that copies each region of `from` over the same-shaped one of `to`.
fn copy_stage(from: &[Val], to: &[Val]) -> Stage {
    let mut x = Exprs::default();
    for (f, t) in from.iter().zip(to) {
        let v = x.load(f, None, 0);
        x.store(0, t.shape.clone(), t.access(), v.expr);
    }
    let groups = by_shape(x.stores.pop().unwrap_or_default());
    Stage {
        exprs: x.list,
        groups,
    }
}

/// Stores (shape, where, expression) gathered into one group per shape, in order.
fn by_shape(stores: Vec<(Vec<usize>, Access, usize)>) -> Vec<StoreGroup> {
    let mut groups: Vec<StoreGroup> = vec![];
    for (shape, access, e) in stores {
        match groups.iter_mut().find(|g| g.shape == shape) {
            Some(g) => g.stores.push((access, e)),
            None => groups.push(StoreGroup {
                shape,
                stores: vec![(access, e)],
            }),
        }
    }
    groups
}

/// An operand's coordinates where the result has a unit axis `axis` it lacks (of
/// a result of rank `rank`).
fn without_axis(rank: usize, axis: usize) -> Vec<Coord> {
    (0..rank).filter(|d| *d != axis).map(Coord::at).collect()
}

/// An operand's coordinates where it has an axis `axis` the result of rank `rank`
/// lacks, read at `index`.
fn fixed_axis(rank: usize, axis: usize, index: isize) -> Vec<Coord> {
    let mut coords: Vec<Coord> = (0..rank).map(Coord::at).collect();
    coords.insert(axis, Coord::fixed(index));
    coords
}

/// The result's coordinates, `axis` read through `c`.
fn one_axis(rank: usize, axis: usize, c: Coord) -> Vec<Coord> {
    let mut coords: Vec<Coord> = (0..rank).map(Coord::at).collect();
    coords[axis] = c;
    coords
}

fn concat(x: &mut Exprs, shape: &[usize], axis: usize, parts: &[Lazy]) -> Lazy {
    let stage = parts.iter().map(|p| p.stage).max().unwrap_or(0);
    let parts = parts.iter().map(|p| p.expr).collect();
    x.push(shape.to_vec(), ExprKind::Concat { axis, parts }, stage)
}

fn dot(
    x: &mut Exprs,
    shape: Vec<usize>,
    len: usize,
    a: (Lazy, Vec<Coord>),
    b: (Lazy, Vec<Coord>),
) -> Lazy {
    let stage = a.0.stage.max(b.0.stage);
    let kind = ExprKind::Dot {
        len,
        a: a.0.expr,
        a_coords: a.1,
        b: b.0.expr,
        b_coords: b.1,
    };
    x.push(shape, kind, stage)
}

/// Threads of a step kernel: one per element of its largest store group.
pub(crate) fn step_work(groups: &[StoreGroup]) -> usize {
    groups
        .iter()
        .map(|g| g.shape.iter().product::<usize>())
        .max()
        .unwrap_or(0)
}
