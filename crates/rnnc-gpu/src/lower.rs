//! Lowering a verified graph at one (B, T) to a [`GpuPlan`]. Every value gets a
//! region of the arena or is a strided *view* of another value's region (slices,
//! indexing, transposes and flips cost nothing); kernels that need rows in order
//! (products, row reductions, lookups, the outputs) get a copy. Values that depend
//! only on weights are computed by the prologue, once per upload.

use crate::plan::{
    row_major, Access, Body, Constant, Coord, Expr, ExprKind, GpuPlan, IdsInput, Kernel,
    LengthsInput, Region, RowOp, Scalar, ScanPlan, Stage, Step, StoreGroup, TimeRef, THREADS, TILE,
};
use crate::step::StepIo;
use rnnc_ir::deps::{dependencies, Dep};
use rnnc_ir::{
    ArgKind, BinaryOp, DType, Dim, Graph, NodeId, Op, TensorTy, UnaryOp, Value, Verified,
};
use std::collections::HashMap;

pub use rnnc_ir::compiling::Unsupported;

pub(crate) fn unsupported<T>(msg: impl Into<String>) -> Result<T, Unsupported> {
    Err(Unsupported::new(msg))
}

/// Products of at most this many rows (per batch) outside the prologue are planned
/// as [`gemv`], as are those of fewer columns than a tile; more rows share each
/// weight tile through workgroup memory.
const GEMV_ROWS: usize = 32;

/// Most workgroups a one-dimensional kernel launches; its threads then loop.
const MAX_GROUPS: usize = 4096;
/// WebGPU's (and CUDA's y/z) limit on workgroups per dispatch dimension.
const MAX_DISPATCH: usize = 65535;
/// Token ids are stored as f32 values, exact up to this.
pub(crate) const MAX_VOCAB: usize = 1 << 24;
/// The arena is indexed with signed 32-bit integers.
const MAX_WORDS: usize = (i32::MAX as usize) / 2;

/// A value: `shape` read at `offset + Σ coordᵢ · stridesᵢ`.
#[derive(Clone, Debug)]
pub(crate) struct Val {
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<isize>,
    /// i32 token ids rather than f32.
    pub ids: bool,
}

impl Val {
    fn contiguous(offset: usize, shape: Vec<usize>, ids: bool) -> Self {
        Val {
            offset,
            strides: row_major(&shape),
            shape,
            ids,
        }
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn is_contiguous(&self) -> bool {
        let want = row_major(&self.shape);
        self.shape
            .iter()
            .zip(self.strides.iter().zip(&want))
            .all(|(n, (s, w))| *n == 1 || s == w)
    }

    pub(crate) fn access(&self) -> Access {
        Access {
            offset: self.offset,
            strides: self.strides.clone(),
            time: None,
        }
    }

    /// How `self` is read at each coordinate of `shape`, which it broadcasts to.
    fn broadcast_to(&self, shape: &[usize]) -> Access {
        let lead = shape.len() - self.shape.len();
        let strides = (0..shape.len())
            .map(|d| match d.checked_sub(lead) {
                Some(i) if self.shape[i] == shape[d] && shape[d] != 1 => self.strides[i],
                _ => 0,
            })
            .collect();
        Access {
            offset: self.offset,
            strides,
            time: None,
        }
    }
}

/// Plans `graph` for batch `batch` and length `time` (a sequence-to-sequence
/// model's source as long as its target); `model` names the kernels.
pub fn plan(
    graph: &Verified<'_>,
    model: &str,
    batch: usize,
    time: usize,
) -> Result<GpuPlan, Unsupported> {
    let dims = Dims {
        batch,
        time,
        source: time,
    };
    plan_with(graph, model, dims, Steps::Auto)
}

/// The sizes of the named axes a plan is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims {
    pub batch: usize,
    pub time: usize,
    /// The source length `S` of a sequence-to-sequence model.
    pub source: usize,
}

/// How scans' time steps are planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Steps {
    /// Fused steps, the whole scan in one workgroup where that pays (see `step.rs`).
    #[default]
    Auto,
    /// Fused steps, launched per step, never one workgroup for the whole scan.
    PerStep,
    /// One kernel per body op (the plan before fused steps; tests compare them).
    PerOp,
}

/// [`plan`] with the scans' strategy chosen by `steps`.
pub fn plan_with(
    graph: &Verified<'_>,
    model: &str,
    dims: Dims,
    steps: Steps,
) -> Result<GpuPlan, Unsupported> {
    let g = graph.graph();
    let Dims {
        batch,
        time,
        source,
    } = dims;
    let mut b = Builder {
        steps,
        dims,
        plan: GpuPlan {
            model: identifier(model),
            batch,
            time,
            source_len: source,
            arena_words: 0,
            inputs: vec![],
            lengths_inputs: vec![],
            ids_inputs: vec![],
            outputs: vec![],
            weights: vec![],
            constants: vec![],
            kernels: vec![],
            prologue: vec![],
            schedule: vec![],
            clock_max: 0,
            scans: vec![],
        },
        weight_at: HashMap::new(),
        names: HashMap::new(),
        scans: 0,
        transposed: HashMap::new(),
    };
    let mut schedule = vec![];
    let vals = b.graph(g, &[], Layout::default(), &mut schedule, "")?;
    for (name, v) in &g.outputs {
        let val = vals[v].clone();
        let val = b.contiguous(val, false, &mut schedule, &format!("output_{name}"));
        b.plan.outputs.push(Region {
            name: name.clone(),
            offset: val.offset,
            shape: val.shape.clone(),
            dtype: if val.ids { "id" } else { "f32" },
        });
    }
    b.plan.clock_max = GpuPlan::clock_max(&schedule);
    b.plan.schedule = schedule;
    if b.plan.arena_words > MAX_WORDS {
        return unsupported(format!(
            "the model needs {} MiB of GPU memory at batch {batch}, length {time}; \
             the arena is limited to {} MiB",
            b.plan.arena_words / (1 << 18),
            MAX_WORDS / (1 << 18)
        ));
    }
    Ok(b.plan)
}

/// The fewest rows of the embedding tables `v`'s token ids index, following them
/// through views and into scan bodies; None where no embedding reads them.
fn rows_indexed(g: &Graph, v: Value) -> Option<usize> {
    let mut fewest: Option<usize> = None;
    let mut note = |n: Option<usize>| {
        if let Some(n) = n {
            fewest = Some(fewest.map_or(n, |f| f.min(n)));
        }
    };
    for (user, pos) in g.users(v) {
        let node = g.node(user);
        let pos = pos as usize;
        match &node.op {
            Op::Embedding if pos == 1 => {
                let table = g.ty(g.operands(user)[0]);
                if let Some(Dim::Fixed(n)) = table.dims.first() {
                    note(Some(*n));
                }
            }
            Op::Scan(scan) => {
                let (kind, index) = if pos < scan.n_seqs {
                    (ArgKind::Seq, pos)
                } else if pos >= scan.n_seqs + scan.n_states {
                    (ArgKind::Memory, pos - scan.n_seqs - scan.n_states)
                } else {
                    (ArgKind::State, pos - scan.n_seqs)
                };
                let bodies = std::iter::once(&scan.body).chain(scan.tail.as_ref());
                for body in bodies {
                    for id in body.node_ids() {
                        if let Op::Arg { kind: k, index: i } = body.node(id).op {
                            // An unrolled body reads sequence s at offset j as j·n + s.
                            let same = match kind {
                                ArgKind::Seq => k == kind && i % scan.n_seqs.max(1) == index,
                                _ => k == kind && i == index,
                            };
                            if same {
                                note(rows_indexed(body, Value::new(id, 0)));
                            }
                        }
                    }
                }
            }
            Op::Slice { .. }
            | Op::Index { .. }
            | Op::Flip { .. }
            | Op::Transpose { .. }
            | Op::Squeeze { .. }
            | Op::Unsqueeze { .. }
            | Op::Concat { .. }
            | Op::Stack { .. } => note(rows_indexed(g, Value::new(user, 0))),
            _ => {}
        }
    }
    fewest
}

/// `name` as a C and WGSL identifier.
pub fn identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Where a body's arguments are in its list of values: the `seq` (or fused
/// `operand`) arguments first, then the states, then the memories.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Layout {
    pub seqs: usize,
    pub states: usize,
}

impl Layout {
    pub(crate) fn index(self, kind: ArgKind, index: usize) -> usize {
        match kind {
            ArgKind::Seq | ArgKind::Operand => index,
            ArgKind::State => self.seqs + index,
            ArgKind::Memory => self.seqs + self.states + index,
        }
    }
}

/// Where a node is planned: its graph, whether it depends on weights only (then its
/// kernels go to the prologue), its kernels' name and the scan prefix.
#[derive(Clone, Copy)]
pub(crate) struct Site<'a> {
    pub g: &'a Graph,
    pub id: NodeId,
    pub load: bool,
    /// What each node of `g` depends on, where known (not for the weight-only
    /// nodes a fused step plans into the prologue).
    pub deps: Option<&'a HashMap<NodeId, Dep>>,
    pub name: &'a str,
    pub prefix: &'a str,
}

pub(crate) struct Builder {
    pub(crate) steps: Steps,
    dims: Dims,
    plan: GpuPlan,
    weight_at: HashMap<String, usize>,
    /// Kernel names given so far, for unique ones.
    names: HashMap<String, usize>,
    scans: usize,
    /// Weights already stored k-major for fused steps, by (offset, shape, strides).
    pub(crate) transposed: HashMap<(usize, Vec<usize>, Vec<isize>), Val>,
}

impl Builder {
    pub(crate) fn shape(&self, ty: &TensorTy) -> Vec<usize> {
        ty.dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Batch => self.dims.batch,
                Dim::Time => self.dims.time,
                Dim::Source => self.dims.source,
            })
            .collect()
    }

    pub(crate) fn dims(&self) -> Dims {
        self.dims
    }

    /// Plans what follows at batch `batch` (a beam's rows); returns the batch before.
    pub(crate) fn set_batch(&mut self, batch: usize) -> usize {
        std::mem::replace(&mut self.dims.batch, batch)
    }

    /// How a loop over time was planned, for the manifest.
    pub(crate) fn push_scan_plan(&mut self, s: ScanPlan) {
        self.plan.scans.push(s);
    }

    /// A scalar constant at `offset`, uploaded with the weights.
    pub(crate) fn push_constant(&mut self, offset: usize, value: f32) {
        self.plan.constants.push(Constant { offset, value });
    }

    fn alloc(&mut self, shape: &[usize]) -> usize {
        let offset = self.plan.arena_words;
        // Regions start on 16-byte boundaries (vector loads may use them later).
        let words = shape.iter().product::<usize>().max(1);
        self.plan.arena_words = offset.saturating_add(words.next_multiple_of(4));
        offset
    }

    pub(crate) fn fresh(&mut self, shape: Vec<usize>, ids: bool) -> Val {
        let offset = self.alloc(&shape);
        Val::contiguous(offset, shape, ids)
    }

    /// Adds a kernel and its launch (to the prologue when `load`, else to `sched`).
    pub(crate) fn launch(
        &mut self,
        load: bool,
        sched: &mut Vec<Step>,
        name: &str,
        about: String,
        body: Body,
    ) {
        let (groups, threads, work) = match &body {
            Body::Map { shape, .. } | Body::Copy { shape, .. } => {
                let n: usize = shape.iter().product();
                (line(n), [THREADS, 1, 1], n)
            }
            Body::Rows {
                outer, inner, len, ..
            } => (line(outer * inner), [THREADS, 1, 1], outer * inner * len),
            Body::Gather { rows, dim, .. } | Body::Pick { rows, dim, .. } => {
                (line(rows * dim), [THREADS, 1, 1], rows * dim)
            }
            Body::Greedy { rows, vocab, .. } => (line(*rows), [THREADS, 1, 1], rows * vocab),
            Body::BeamStep(b) => (line(b.batch), [THREADS, 1, 1], b.batch * b.width * b.vocab),
            Body::Step(stage) => {
                let n = crate::step::step_work(&stage.groups);
                (line(n), [THREADS, 1, 1], n)
            }
            Body::Sequence { loops } => {
                let n = loops
                    .iter()
                    .flat_map(|l| &l.stages)
                    .map(|s| crate::step::step_work(&s.groups))
                    .max()
                    .unwrap_or(0);
                let threads = n.next_multiple_of(32).max(32) as u32;
                ([1, 1, 1], [threads, 1, 1], n)
            }
            Body::MatMul {
                m, n, batch_dims, ..
            } => {
                let z: usize = batch_dims.iter().product();
                let t = TILE as usize;
                (
                    [n.div_ceil(t) as u32, m.div_ceil(t) as u32, z as u32],
                    [TILE, TILE, 1],
                    m * n * z,
                )
            }
        };
        if work == 0 {
            return; // an empty batch: nothing to compute
        }
        let uses_clock = match &body {
            Body::Copy { src, dst, .. } => src.time.is_some() || dst.time.is_some(),
            Body::Greedy { .. } | Body::BeamStep(_) => true,
            Body::Step(stage) => {
                let loads = stage.exprs.iter().any(|e| match &e.kind {
                    ExprKind::Load(a) => a.time.is_some(),
                    _ => false,
                });
                let mut stores = stage.groups.iter().flat_map(|g| &g.stores);
                loads || stores.any(|(a, _)| a.time.is_some())
            }
            _ => false,
        };
        // Prefixed with the model, so no kernel is named like a builtin (`exp`) and
        // CUDA's extern "C" names of two models do not clash.
        let base = identifier(&format!("{}_{name}", self.plan.model));
        let n = self.names.entry(base.clone()).or_insert(0);
        *n += 1;
        let name = if *n == 1 { base } else { format!("{base}_{n}") };
        let kernel = self.plan.kernels.len();
        self.plan.kernels.push(Kernel {
            name,
            groups,
            threads,
            uses_clock,
            about,
            body,
        });
        let step = Step::Launch { kernel };
        if load {
            self.plan.prologue.push(step);
        } else {
            sched.push(step);
        }
    }

    /// `v` itself if its elements are in row-major order, else a copy that is.
    pub(crate) fn contiguous(
        &mut self,
        v: Val,
        load: bool,
        sched: &mut Vec<Step>,
        name: &str,
    ) -> Val {
        if v.is_contiguous() {
            return v;
        }
        let out = self.fresh(v.shape.clone(), v.ids);
        self.copy(
            load,
            sched,
            name,
            "gather a strided view into rows",
            &v,
            &out,
        );
        out
    }

    pub(crate) fn copy(
        &mut self,
        load: bool,
        sched: &mut Vec<Step>,
        name: &str,
        about: &str,
        from: &Val,
        to: &Val,
    ) {
        let body = Body::Copy {
            shape: from.shape.clone(),
            src: from.access(),
            dst: to.access(),
        };
        self.launch(load, sched, name, about.to_string(), body);
    }

    /// Lowers `g`, whose arguments are `args` as `layout` says.
    pub(crate) fn graph(
        &mut self,
        g: &Graph,
        args: &[Val],
        layout: Layout,
        sched: &mut Vec<Step>,
        prefix: &str,
    ) -> Result<HashMap<Value, Val>, Unsupported> {
        let deps = dependencies(g);
        let named: HashMap<Value, &str> = g.outputs.iter().map(|(n, v)| (*v, n.as_str())).collect();
        let mut vals: HashMap<Value, Val> = HashMap::new();
        let order = g.topo_order().expect("verified graphs are acyclic");
        for id in order {
            let ops: Vec<Val> = g.operands(id).iter().map(|v| vals[v].clone()).collect();
            let load = deps[&id] == Dep::Load;
            let name = self.kernel_name(g, &named, id, prefix);
            let site = Site {
                g,
                id,
                load,
                deps: Some(&deps),
                name: &name,
                prefix,
            };
            let results = self.node(site, ops, args, layout, sched)?;
            for (r, v) in results.into_iter().enumerate() {
                vals.insert(Value::new(id, r as u32), v);
            }
        }
        Ok(vals)
    }

    /// The name of node `id`'s kernels: the value's name where it has one.
    pub(crate) fn kernel_name(
        &self,
        g: &Graph,
        named: &HashMap<Value, &str>,
        id: NodeId,
        prefix: &str,
    ) -> String {
        match named.get(&Value::new(id, 0)) {
            Some(n) => format!("{prefix}{n}"),
            None => format!("{prefix}{}", g.node(id).op.name()),
        }
    }

    /// Plans one node on operands `ops`; a body's arguments are `args`, as `layout`
    /// says.
    pub(crate) fn node(
        &mut self,
        site: Site<'_>,
        ops: Vec<Val>,
        args: &[Val],
        layout: Layout,
        sched: &mut Vec<Step>,
    ) -> Result<Vec<Val>, Unsupported> {
        let Site {
            g,
            id,
            load,
            deps,
            name,
            prefix,
        } = site;
        let node = g.node(id);
        let _at = rnnc_ir::compiling::node_at(node.span);
        let out_shape = |b: &Builder, r: usize| b.shape(&node.results[r]);
        let name = name.to_string();
        let results: Vec<Val> = match &node.op {
            Op::Input { name, .. } => {
                let ty = &node.results[0];
                let v = self.fresh(self.shape(ty), ty.dtype == DType::I64);
                if let Some(vocab) = rows_indexed(g, Value::new(id, 0)) {
                    self.plan.ids_inputs.push(IdsInput {
                        name: name.clone(),
                        vocab,
                    });
                }
                self.plan.inputs.push(Region {
                    name: name.clone(),
                    offset: v.offset,
                    shape: v.shape.clone(),
                    dtype: if v.ids { "id" } else { "f32" },
                });
                vec![v]
            }
            Op::Weight { key } => {
                let shape = out_shape(self, 0);
                let offset = match self.weight_at.get(key) {
                    Some(o) => *o,
                    None => {
                        let o = self.alloc(&shape);
                        self.weight_at.insert(key.clone(), o);
                        self.plan.weights.push(Region {
                            name: key.clone(),
                            offset: o,
                            shape: shape.clone(),
                            dtype: "f32",
                        });
                        o
                    }
                };
                vec![Val::contiguous(offset, shape, false)]
            }
            Op::Const(c) => {
                let v = self.fresh(vec![], false);
                self.plan.constants.push(Constant {
                    offset: v.offset,
                    value: *c,
                });
                vec![v]
            }
            Op::Zeros => {
                let ty = &node.results[0];
                vec![self.fresh(self.shape(ty), ty.dtype == DType::I64)]
            }
            Op::Arg { kind, index } => vec![args[layout.index(*kind, *index)].clone()],
            Op::Unary(u) => {
                let scalars = vec![Scalar::Load(0), Scalar::Unary(*u, 0)];
                self.map(load, sched, &name, &ops, out_shape(self, 0), scalars, &[1])?
            }
            Op::Binary(bo) => {
                let scalars = vec![Scalar::Load(0), Scalar::Load(1), Scalar::Binary(*bo, 0, 1)];
                self.map(load, sched, &name, &ops, out_shape(self, 0), scalars, &[2])?
            }
            Op::Fused(f) => self.fused(load, sched, &name, &f.body, &ops)?,
            // A unit axis in or out: the same elements, read with one stride more
            // or less.
            Op::Unsqueeze { axis } => {
                let mut v = ops[0].clone();
                v.shape.insert(*axis, 1);
                v.strides.insert(*axis, 0);
                vec![v]
            }
            Op::Squeeze { axis } => {
                let mut v = ops[0].clone();
                v.shape.remove(*axis);
                v.strides.remove(*axis);
                vec![v]
            }
            // mask[b, t] = step(lengths[b] − t): the lengths (exact integers as
            // f32) read along the batch, the step index from a constant row.
            Op::SequenceMask => {
                let lengths = g.operands(id)[0];
                let Op::Input { name: input, .. } = &g.node(lengths.node).op else {
                    return unsupported("sequence lengths that are not a model input");
                };
                let shape = out_shape(self, 0);
                let lengths = LengthsInput {
                    name: input.clone(),
                    max: shape[1],
                };
                if !self.plan.lengths_inputs.contains(&lengths) {
                    self.plan.lengths_inputs.push(lengths);
                }
                let (batch, steps) = (shape[0], shape[1]);
                let iota = self.fresh(vec![steps], false);
                for t in 0..steps {
                    self.plan.constants.push(Constant {
                        offset: iota.offset + t,
                        value: t as f32,
                    });
                }
                let len = &ops[0];
                let by_batch = Val {
                    offset: len.offset,
                    shape: vec![batch, steps],
                    strides: vec![len.strides[0], 0],
                    ids: false,
                };
                let by_step = Val {
                    offset: iota.offset,
                    shape: vec![batch, steps],
                    strides: vec![0, 1],
                    ids: false,
                };
                let scalars = vec![
                    Scalar::Load(0),
                    Scalar::Load(1),
                    Scalar::Binary(BinaryOp::Sub, 0, 1),
                    Scalar::Unary(UnaryOp::Step, 2),
                ];
                self.map(
                    load,
                    sched,
                    &name,
                    &[by_batch, by_step],
                    shape,
                    scalars,
                    &[3],
                )?
            }
            Op::Decode(d) => {
                if !prefix.is_empty() {
                    return unsupported("a decode loop inside a scan body");
                }
                self.decode(d, &ops, sched, &format!("{name}_"))?
            }
            Op::Linear | Op::MatMul => {
                let a = self.contiguous(ops[0].clone(), load, sched, &format!("{name}_lhs"));
                let k = *a.shape.last().expect("rank >= 1");
                let rows = match node.op {
                    Op::Linear => a.len() / k.max(1),
                    _ => a.shape[a.shape.len() - 2],
                };
                let cols = match node.op {
                    Op::Linear => ops[1].shape[0],
                    _ => *ops[1].shape.last().expect("rank >= 2"),
                };
                // Few rows, or fewer columns than a tile (a score per position).
                let gemv_rows = !load && (rows <= GEMV_ROWS || cols < TILE as usize);
                // A linear layer's weight (known at load time) read by a GEMV is
                // stored k-major by the prologue, so neighbouring threads read
                // neighbouring words; from the operand itself (a view of weights,
                // say), as the prologue cannot read a copy the schedule makes.
                let weight = |d: &HashMap<NodeId, Dep>| d[&g.operands(id)[1].node] == Dep::Load;
                let k_major =
                    gemv_rows && matches!(node.op, Op::Linear) && deps.is_some_and(weight);
                let out = self.fresh(out_shape(self, 0), false);
                let (body, b_shape) = if k_major {
                    let wt = self.transposed(&ops[1], &format!("{name}_kmajor"));
                    (linear(&a, &wt, out.offset), wt.shape)
                } else {
                    let b = self.contiguous(ops[1].clone(), load, sched, &format!("{name}_rhs"));
                    let body = match node.op {
                        Op::Linear => linear(&a, &b, out.offset),
                        _ => matmul(&a, &b, &out),
                    };
                    (body, b.shape)
                };
                if let Body::MatMul { batch_dims, m, .. } = &body {
                    let z: usize = batch_dims.iter().product();
                    if z > MAX_DISPATCH || m.div_ceil(TILE as usize) > MAX_DISPATCH {
                        return unsupported(format!(
                            "a product of {z} batches of {m} rows is too large for one dispatch"
                        ));
                    }
                }
                let about = format!("{} {:?} x {:?}", node.op.name(), a.shape, b_shape);
                let body = if gemv_rows { gemv(body) } else { body };
                self.launch(load, sched, &name, about, body);
                vec![out]
            }
            Op::Concat { axis } => {
                let out = self.fresh(out_shape(self, 0), ops[0].ids);
                let mut start = 0;
                for v in &ops {
                    let mut part = out.clone();
                    part.offset += start * out.strides[*axis] as usize;
                    part.shape = v.shape.clone();
                    start += v.shape[*axis];
                    self.copy(load, sched, &name, "concatenate", v, &part);
                }
                vec![out]
            }
            Op::Stack { axis } => {
                let out = self.fresh(out_shape(self, 0), ops[0].ids);
                for (k, v) in ops.iter().enumerate() {
                    let mut part = out.clone();
                    part.offset += k * out.strides[*axis] as usize;
                    part.strides.remove(*axis);
                    part.shape = v.shape.clone();
                    self.copy(load, sched, &name, "stack", v, &part);
                }
                vec![out]
            }
            Op::Slice { axis, start, end } => {
                let mut v = ops[0].clone();
                v.offset += start * v.strides[*axis] as usize;
                v.shape[*axis] = end - start;
                vec![v]
            }
            Op::Index { axis, index } => {
                let mut v = ops[0].clone();
                let n = v.shape[*axis] as i64;
                let i = if *index < 0 { index + n } else { *index };
                if i < 0 || i >= n {
                    return unsupported(format!(
                        "index {index} is out of range for an axis of length {n}"
                    ));
                }
                v.offset = (v.offset as isize + i as isize * v.strides[*axis]) as usize;
                v.shape.remove(*axis);
                v.strides.remove(*axis);
                vec![v]
            }
            Op::Flip { axis } => {
                let mut v = ops[0].clone();
                let n = v.shape[*axis];
                if n > 0 {
                    v.offset = (v.offset as isize + (n as isize - 1) * v.strides[*axis]) as usize;
                }
                v.strides[*axis] = -v.strides[*axis];
                vec![v]
            }
            Op::Transpose { a, b } => {
                let mut v = ops[0].clone();
                v.shape.swap(*a, *b);
                v.strides.swap(*a, *b);
                vec![v]
            }
            Op::Embedding => {
                let table = self.contiguous(ops[0].clone(), load, sched, &format!("{name}_table"));
                let ids = self.contiguous(ops[1].clone(), load, sched, &format!("{name}_ids"));
                if table.shape[0] > MAX_VOCAB {
                    return unsupported(format!(
                        "an embedding table of {} rows (token ids are f32 values on the \
                             GPU, exact up to {MAX_VOCAB})",
                        table.shape[0]
                    ));
                }
                let out = self.fresh(out_shape(self, 0), false);
                let body = Body::Gather {
                    rows: ids.len(),
                    dim: table.shape[1],
                    vocab: table.shape[0],
                    table: table.offset,
                    ids: ids.offset,
                    dst: out.offset,
                };
                self.launch(load, sched, &name, "embedding lookup".into(), body);
                vec![out]
            }
            Op::Softmax { axis } => {
                self.rows(load, sched, &name, &ops[0], *axis, RowOp::Softmax)?
            }
            Op::LogSoftmax { axis } => {
                self.rows(load, sched, &name, &ops[0], *axis, RowOp::LogSoftmax)?
            }
            Op::LayerNorm { eps } => {
                let last = ops[0].shape.len() - 1;
                self.rows(load, sched, &name, &ops[0], last, RowOp::LayerNorm(*eps))?
            }
            Op::Scan(scan) => {
                if !prefix.is_empty() {
                    return unsupported("a scan inside a scan body");
                }
                let k = self.scans;
                self.scans += 1;
                let shapes: Vec<Vec<usize>> = (0..node.results.len())
                    .map(|r| out_shape(self, r))
                    .collect();
                self.scan(scan, &ops, &shapes, sched, &format!("scan{k}_"))?
            }
        };
        Ok(results)
    }

    /// One elementwise kernel computing `scalars` over `shape` from `ops`; returns
    /// the values of the scalars listed in `outs`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn map(
        &mut self,
        load: bool,
        sched: &mut Vec<Step>,
        name: &str,
        ops: &[Val],
        shape: Vec<usize>,
        scalars: Vec<Scalar>,
        outs: &[usize],
    ) -> Result<Vec<Val>, Unsupported> {
        // Keep only what the outputs need, so every load broadcasts to `shape`.
        let mut needed = vec![false; scalars.len()];
        for &o in outs {
            needed[o] = true;
        }
        for i in (0..scalars.len()).rev() {
            if needed[i] {
                match scalars[i] {
                    Scalar::Unary(_, a) => needed[a] = true,
                    Scalar::Binary(_, a, b) => {
                        needed[a] = true;
                        needed[b] = true;
                    }
                    _ => {}
                }
            }
        }
        let mut renumber = vec![usize::MAX; scalars.len()];
        let mut kept = vec![];
        let mut loads = vec![];
        let mut load_of: HashMap<usize, usize> = HashMap::new();
        for (i, s) in scalars.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            renumber[i] = kept.len();
            kept.push(match *s {
                Scalar::Load(op) => Scalar::Load(*load_of.entry(op).or_insert_with(|| {
                    loads.push(ops[op].broadcast_to(&shape));
                    loads.len() - 1
                })),
                Scalar::Const(c) => Scalar::Const(c),
                Scalar::Unary(u, a) => Scalar::Unary(u, renumber[a]),
                Scalar::Binary(b, x, y) => Scalar::Binary(b, renumber[x], renumber[y]),
            });
        }
        let results: Vec<Val> = outs
            .iter()
            .map(|_| self.fresh(shape.clone(), false))
            .collect();
        let stores = outs
            .iter()
            .zip(&results)
            .map(|(o, v)| (v.access(), renumber[*o]))
            .collect();
        let about = describe(&kept);
        let body = Body::Map {
            shape,
            loads,
            scalars: kept,
            stores,
        };
        self.launch(load, sched, name, about, body);
        Ok(results)
    }

    /// A fused region: one kernel per distinct result shape (usually one).
    fn fused(
        &mut self,
        load: bool,
        sched: &mut Vec<Step>,
        name: &str,
        body: &Graph,
        ops: &[Val],
    ) -> Result<Vec<Val>, Unsupported> {
        let mut scalars = vec![];
        let mut at: HashMap<Value, usize> = HashMap::new();
        for id in body.topo_order().expect("verified graphs are acyclic") {
            let operand = |v: &Value| at[v];
            let args = body.operands(id);
            let s = match &body.node(id).op {
                Op::Arg { index, .. } => Scalar::Load(*index),
                Op::Const(c) => Scalar::Const(*c),
                Op::Unary(u) => Scalar::Unary(*u, operand(&args[0])),
                Op::Binary(b) => Scalar::Binary(*b, operand(&args[0]), operand(&args[1])),
                other => return unsupported(format!("`{}` inside a fused region", other.name())),
            };
            at.insert(Value::new(id, 0), scalars.len());
            scalars.push(s);
        }
        let shapes: Vec<Vec<usize>> = body
            .outputs
            .iter()
            .map(|(_, v)| self.shape(body.ty(*v)))
            .collect();
        let mut results: Vec<Option<Val>> = vec![None; shapes.len()];
        for (r, shape) in shapes.iter().enumerate() {
            if results[r].is_some() {
                continue;
            }
            let group: Vec<usize> = (0..shapes.len()).filter(|&o| &shapes[o] == shape).collect();
            let outs: Vec<usize> = group.iter().map(|&o| at[&body.outputs[o].1]).collect();
            let vals = self.map(
                load,
                sched,
                name,
                ops,
                shape.clone(),
                scalars.clone(),
                &outs,
            )?;
            for (o, v) in group.into_iter().zip(vals) {
                results[o] = Some(v);
            }
        }
        Ok(results
            .into_iter()
            .map(|v| v.expect("every output planned"))
            .collect())
    }

    fn rows(
        &mut self,
        load: bool,
        sched: &mut Vec<Step>,
        name: &str,
        x: &Val,
        axis: usize,
        op: RowOp,
    ) -> Result<Vec<Val>, Unsupported> {
        let x = self.contiguous(x.clone(), load, sched, &format!("{name}_in"));
        let out = self.fresh(x.shape.clone(), false);
        let body = Body::Rows {
            op,
            outer: x.shape[..axis].iter().product(),
            len: x.shape[axis],
            inner: x.shape[axis + 1..].iter().product(),
            src: x.offset,
            dst: out.offset,
        };
        self.launch(load, sched, name, format!("{op:?} over axis {axis}"), body);
        Ok(vec![out])
    }

    /// A scan: its states get regions, initialised by copies; each step copies its
    /// sequence slices in, runs the body's kernels, copies emits out to their time
    /// index and the next states over the states. Results: emits, then final states.
    fn scan(
        &mut self,
        scan: &rnnc_ir::Scan,
        ops: &[Val],
        shapes: &[Vec<usize>],
        sched: &mut Vec<Step>,
        prefix: &str,
    ) -> Result<Vec<Val>, Unsupported> {
        let (seqs, rest) = ops.split_at(scan.n_seqs);
        let (inits, memories) = rest.split_at(scan.n_states);
        let steps = seqs.first().map_or(self.dims.time, |s| s.shape[1]);
        let mut states = vec![];
        for (i, init) in inits.iter().enumerate() {
            let s = self.fresh(init.shape.clone(), init.ids);
            self.copy(
                false,
                sched,
                &format!("{prefix}init{i}"),
                "initial state",
                init,
                &s,
            );
            states.push(s);
        }
        let n_emits = scan.n_emits();
        let emits: Vec<Val> = shapes[..n_emits]
            .iter()
            .map(|s| self.fresh(s.clone(), false))
            .collect();
        let k = scan.step.max(1);
        let full = steps / k;
        let left = steps % k;
        if left > 0 && scan.tail.is_none() {
            return unsupported(format!(
                "a scan unrolled by {k} without a tail cannot run {steps} steps"
            ));
        }
        let io = StepIo {
            scan,
            seqs,
            memories,
            emits: &emits,
            steps,
            prefix,
        };
        let saved = self.checkpoint();
        let fused = match self.steps {
            Steps::PerOp => Err(Unsupported::new("the per-op plan was asked for")),
            _ => self.fused_scan(&io, &states),
        };
        let why = match fused {
            Ok((run, plan)) => {
                sched.extend(run);
                self.plan.scans.push(plan);
                return Ok(emits.into_iter().chain(states).collect());
            }
            Err(Unsupported(why, _)) => why,
        };
        self.restore(saved);
        let first = sched.len();
        if full > 0 {
            let body = self.step_body(&io, &scan.body, k, &states, prefix)?;
            sched.push(Step::Loop {
                count: full,
                first: 0,
                stride: k,
                body,
            });
        }
        if let (Some(tail), true) = (&scan.tail, left > 0) {
            let tail_prefix = format!("{prefix}tail_");
            let body = self.step_body(&io, tail, 1, &states, &tail_prefix)?;
            sched.push(Step::Loop {
                count: left,
                first: full * k,
                stride: 1,
                body,
            });
        }
        let launches_per_body = match sched.get(first) {
            Some(Step::Loop { body, .. }) => body.len(),
            _ => 0,
        };
        self.plan.scans.push(ScanPlan {
            scan: prefix.trim_end_matches('_').to_string(),
            strategy: "per op",
            launches_per_body,
            steps_per_body: k,
            why: Some(why),
        });
        Ok(emits.into_iter().chain(states).collect())
    }

    /// What planning has added so far, to undo a fused step that cannot be planned.
    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            arena_words: self.plan.arena_words,
            kernels: self.plan.kernels.len(),
            prologue: self.plan.prologue.len(),
            constants: self.plan.constants.len(),
            weights: self.plan.weights.len(),
            lengths_inputs: self.plan.lengths_inputs.len(),
            weight_at: self.weight_at.clone(),
            names: self.names.clone(),
            transposed: self.transposed.clone(),
        }
    }

    pub(crate) fn restore(&mut self, c: Checkpoint) {
        self.plan.arena_words = c.arena_words;
        self.plan.kernels.truncate(c.kernels);
        self.plan.prologue.truncate(c.prologue);
        self.plan.constants.truncate(c.constants);
        self.plan.weights.truncate(c.weights);
        self.plan.lengths_inputs.truncate(c.lengths_inputs);
        self.weight_at = c.weight_at;
        self.names = c.names;
        self.transposed = c.transposed;
    }

    /// The launches of one run of a `k`-step body.
    fn step_body(
        &mut self,
        io: &StepIo<'_>,
        body: &Graph,
        k: usize,
        states: &[Val],
        prefix: &str,
    ) -> Result<Vec<Step>, Unsupported> {
        let StepIo {
            scan,
            seqs,
            memories,
            emits,
            steps,
            ..
        } = *io;
        let mut run = vec![];
        let at = |lag: usize, stride: isize| TimeRef {
            stride,
            lag,
            reverse: scan.reverse,
            steps,
        };
        let mut args = vec![];
        for j in 0..k {
            for (s, seq) in seqs.iter().enumerate() {
                let mut shape = seq.shape.clone();
                shape.remove(1);
                let slot = self.fresh(shape.clone(), seq.ids);
                let mut strides = seq.strides.clone();
                let t_stride = strides.remove(1);
                let src = Access {
                    offset: seq.offset,
                    strides,
                    time: Some(at(j, t_stride)),
                };
                let body = Body::Copy {
                    shape,
                    src,
                    dst: slot.access(),
                };
                self.launch(
                    false,
                    &mut run,
                    &format!("{prefix}x{s}"),
                    format!("step t+{j} of sequence {s}"),
                    body,
                );
                args.push(slot);
            }
        }
        args.extend(states.iter().chain(memories).cloned());
        let layout = Layout {
            seqs: seqs.len() * k,
            states: states.len(),
        };
        let vals = self.graph(body, &args, layout, &mut run, prefix)?;
        let out = |i: usize| vals[&body.outputs[i].1].clone();
        let n_states = states.len();
        for j in 0..k {
            for (e, emit) in emits.iter().enumerate() {
                let v = out(n_states + j * emits.len() + e);
                let mut strides = emit.strides.clone();
                let t_stride = strides.remove(1);
                let dst = Access {
                    offset: emit.offset,
                    strides,
                    time: Some(at(j, t_stride)),
                };
                let copy = Body::Copy {
                    shape: v.shape.clone(),
                    src: v.access(),
                    dst,
                };
                let name = format!("{prefix}{}_out", body.outputs[n_states + e].0);
                let about = format!("emit {e} at step t+{j}");
                self.launch(false, &mut run, &name, about, copy);
            }
        }
        let next: Vec<Val> = (0..n_states).map(out).collect();
        self.advance(&mut run, &next, states, prefix);
        Ok(run)
    }

    /// Copies the next states `next` over `states`. Next states that read a state
    /// region (a state passed on unchanged, a slice of one) are copied aside first,
    /// so no update overwrites what another reads.
    pub(crate) fn advance(
        &mut self,
        run: &mut Vec<Step>,
        next: &[Val],
        states: &[Val],
        prefix: &str,
    ) {
        let mut kept = vec![];
        for (i, v) in next.iter().enumerate() {
            let reads_state = states.iter().any(|s| overlaps(v, s));
            kept.push(if reads_state {
                let tmp = self.fresh(v.shape.clone(), v.ids);
                let name = format!("{prefix}keep{i}");
                self.copy(false, run, &name, "next state, set aside", v, &tmp);
                tmp
            } else {
                v.clone()
            });
        }
        for (i, (v, s)) in kept.iter().zip(states).enumerate() {
            self.copy(false, run, &format!("{prefix}next{i}"), "next state", v, s);
        }
    }
}

pub(crate) struct Checkpoint {
    arena_words: usize,
    kernels: usize,
    prologue: usize,
    constants: usize,
    weights: usize,
    lengths_inputs: usize,
    weight_at: HashMap<String, usize>,
    names: HashMap<String, usize>,
    transposed: HashMap<(usize, Vec<usize>, Vec<isize>), Val>,
}

/// Whether `v` reads any word of `s`'s region (conservatively, by address range).
fn overlaps(v: &Val, s: &Val) -> bool {
    let span = |x: &Val| {
        let (mut lo, mut hi) = (x.offset as isize, x.offset as isize);
        for (n, st) in x.shape.iter().zip(&x.strides) {
            let reach = (*n as isize - 1).max(0) * st;
            if reach < 0 {
                lo += reach
            } else {
                hi += reach
            }
        }
        (lo, hi)
    };
    let ((a0, a1), (b0, b1)) = (span(v), span(s));
    a0 <= b1 && b0 <= a1
}

/// Workgroups for `n` elements, each thread looping when there are more.
fn line(n: usize) -> [u32; 3] {
    [
        n.div_ceil(THREADS as usize).clamp(1, MAX_GROUPS) as u32,
        1,
        1,
    ]
}

/// `x @ wᵀ` over x's last axis (torch's F.linear); `w` `[n, k]` read through its
/// own strides (row-major, or a view of a k-major copy).
fn linear(x: &Val, w: &Val, c: usize) -> Body {
    let k = *x.shape.last().expect("rank ≥ 1");
    let m = x.len() / k.max(1);
    let n = w.shape[0];
    Body::MatMul {
        m,
        n,
        k,
        batch_dims: vec![],
        a: Access {
            offset: x.offset,
            strides: vec![k as isize, 1],
            time: None,
        },
        b: Access {
            offset: w.offset,
            strides: vec![w.strides[1], w.strides[0]],
            time: None,
        },
        c,
    }
}

/// A product of few rows as one thread per element of the result, each a loop over
/// `k` (a fused step's `Dot`): a 16 × 16 tile would leave most of its threads idle,
/// and its barriers cost much where a workgroup is one CPU core (llvmpipe).
fn gemv(body: Body) -> Body {
    let Body::MatMul {
        m,
        n,
        k,
        batch_dims,
        a,
        b,
        c,
    } = body
    else {
        unreachable!("gemv takes a MatMul")
    };
    let nb = batch_dims.len();
    let with = |last: [usize; 2]| [batch_dims.clone(), last.to_vec()].concat();
    let batch_axes = || (0..nb).map(Coord::at);
    let exprs = vec![
        Expr {
            shape: with([m, k]),
            kind: ExprKind::Load(a),
        },
        Expr {
            shape: with([k, n]),
            kind: ExprKind::Load(b),
        },
        Expr {
            shape: with([m, n]),
            kind: ExprKind::Dot {
                len: k,
                a: 0,
                a_coords: batch_axes()
                    .chain([Coord::at(nb), Coord::at(nb + 2)])
                    .collect(),
                b: 1,
                b_coords: batch_axes()
                    .chain([Coord::at(nb + 2), Coord::at(nb + 1)])
                    .collect(),
            },
        },
    ];
    let shape = with([m, n]);
    let store = Access::contiguous(c, &shape);
    Body::Step(Stage {
        exprs,
        groups: vec![StoreGroup {
            shape,
            stores: vec![(store, 2)],
        }],
    })
}

/// NumPy matmul: a `[…, m, k]` @ b `[…, k, n]`, batch axes broadcast.
fn matmul(a: &Val, b: &Val, out: &Val) -> Body {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    if rb == 2 {
        // b is one matrix: every row of a (whatever its batch axes) is a row of c.
        return Body::MatMul {
            m: a.len() / k.max(1),
            n,
            k,
            batch_dims: vec![],
            a: Access {
                offset: a.offset,
                strides: vec![k as isize, 1],
                time: None,
            },
            b: Access {
                offset: b.offset,
                strides: vec![n as isize, 1],
                time: None,
            },
            c: out.offset,
        };
    }
    let batch_dims = out.shape[..out.shape.len() - 2].to_vec();
    // (batch axes…, row, column) strides of a contiguous operand, its batch axes
    // broadcast to the result's.
    let strides = |v: &Val| {
        let r = v.shape.len();
        let full = row_major(&v.shape);
        let batch = Val {
            offset: v.offset,
            shape: v.shape[..r - 2].to_vec(),
            strides: full[..r - 2].to_vec(),
            ids: false,
        };
        let mut st = batch.broadcast_to(&batch_dims).strides;
        st.extend_from_slice(&full[r - 2..]);
        st
    };
    Body::MatMul {
        m,
        n,
        k,
        batch_dims: batch_dims.clone(),
        a: Access {
            offset: a.offset,
            strides: strides(a),
            time: None,
        },
        b: Access {
            offset: b.offset,
            strides: strides(b),
            time: None,
        },
        c: out.offset,
    }
}

/// A short account of an elementwise kernel, for the source's comments.
fn describe(scalars: &[Scalar]) -> String {
    let ops: Vec<String> = scalars
        .iter()
        .filter_map(|s| match s {
            Scalar::Unary(u, _) => Some(format!("{u:?}").to_lowercase()),
            Scalar::Binary(b, _, _) => Some(format!("{b:?}").to_lowercase()),
            _ => None,
        })
        .collect();
    format!("elementwise: {}", ops.join(", "))
}
