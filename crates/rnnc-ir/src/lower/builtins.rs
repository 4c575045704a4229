//! Built-in functions: activations, shape ops, and the two recurrences, `scan`
//! (one pass of a cell over time) and `rnn` (PyTorch-style stacked, optionally
//! bidirectional layers of a cell, with PyTorch's `_l{k}` / `_reverse` weight keys).
//! The generation loops (`greedy_decode`, `beam_search`) live in `decode.rs`.

use super::body::Frame;
use super::value::{LResult, Module, ModuleKind, Tensor, Val};
use super::Lowerer;
use crate::graph::Value;
use crate::infer::step_type;
use crate::op::{BinaryOp, Op, Scan, UnaryOp};
use crate::types::{Dim, TensorTy};
use rnnc_syntax::ast::{Arg, DimExpr, ExprKind, StmtKind};
use rnnc_syntax::{Diagnostic, Span};
use std::rc::Rc;

/// Arguments after matching against a signature: by parameter position.
pub(crate) type Bound = Vec<Option<(Val, Span)>>;

const SCAN_USAGE: &str =
    "scan(cell, x, …, init = (h0, …), memory = (m, …), lengths = len, reverse = false)";

/// What a scan takes besides its cell and sequences.
struct ScanExtras {
    init: Option<(Vec<Tensor>, Span)>,
    memory: Vec<Tensor>,
    lengths: Option<(Tensor, Span)>,
}

/// Makes a lowered cell body respect per-sequence lengths: it reads one more
/// sequence, the mask `m` (`[B, 1]`: 1 while `t < lengths[b]`), keeps each state
/// where `m` is 0 (`m * next + (1 - m) * state`, exact for m in {0, 1}) and emits
/// zeros there, as PyTorch's packed sequences do. Reverse scans start each sequence
/// at its own last step because the steps past its end leave the state unchanged.
fn mask_body(body: &mut super::body::CellBody, mask_index: usize) -> Result<(), String> {
    let g = &mut body.graph;
    for t in &body.state_types {
        if t.rank() != 2 {
            return Err(format!(
                "`lengths` needs states of shape [B, n]; this cell has a state {t}"
            ));
        }
    }
    let n_states = body.state_types.len();
    for (_, v) in &g.outputs[n_states..] {
        let t = g.ty(*v);
        if t.rank() != 2 || t.dtype != crate::types::DType::F32 {
            return Err(format!(
                "`lengths` needs emits of shape [B, n]; this cell emits {t}"
            ));
        }
    }
    let m_node = g.add_node(
        Op::Arg {
            kind: crate::op::ArgKind::Seq,
            index: mask_index,
        },
        &[],
        vec![TensorTy::f32(vec![Dim::Batch, Dim::Fixed(1)])],
    );
    let m = Value::new(m_node, 0);
    let one = g.add1(Op::Const(1.0), &[])?;
    let keep = g.add1(Op::Binary(BinaryOp::Sub), &[one, m])?;
    for i in 0..g.outputs.len() {
        let next = g.outputs[i].1;
        let masked = g.add1(Op::Binary(BinaryOp::Mul), &[m, next])?;
        g.outputs[i].1 = if i < n_states {
            let state = state_arg(g, i, &body.state_types[i]);
            let kept = g.add1(Op::Binary(BinaryOp::Mul), &[keep, state])?;
            g.add1(Op::Binary(BinaryOp::Add), &[masked, kept])?
        } else {
            masked
        };
    }
    Ok(())
}

/// The body's `state i` argument, made when the cell never reads that state.
fn state_arg(g: &mut crate::graph::Graph, i: usize, ty: &TensorTy) -> Value {
    let kind = crate::op::ArgKind::State;
    let found = g
        .node_ids()
        .find(|id| matches!(g.node(*id).op, Op::Arg { kind: k, index } if k == kind && index == i));
    let id = found.unwrap_or_else(|| g.add_node(Op::Arg { kind, index: i }, &[], vec![ty.clone()]));
    Value::new(id, 0)
}

impl Lowerer {
    pub(crate) fn builtin(
        &mut self,
        name: &'static str,
        args: &[Arg],
        frame: &mut Frame,
        span: Span,
    ) -> LResult<Val> {
        match name {
            "sigmoid" | "tanh" | "relu" | "exp" | "log" => {
                let a = self.sig(name, args, frame, span, &["x"], 1)?;
                let (x, xs) = a[0].clone().expect("required");
                let t = self.tensor_of(x, xs)?;
                let u = match name {
                    "sigmoid" => UnaryOp::Sigmoid,
                    "tanh" => UnaryOp::Tanh,
                    "relu" => UnaryOp::Relu,
                    "exp" => UnaryOp::Exp,
                    _ => UnaryOp::Log,
                };
                Ok(Val::Tensor(self.op(Op::Unary(u), &[t], span)?))
            }
            "softmax" | "log_softmax" => {
                let a = self.sig(name, args, frame, span, &["x", "dim"], 1)?;
                let t = self.tensor_at(&a, 0)?;
                let axis = self.axis_at(&a, 1, t, frame, -1)?;
                let op = if name == "softmax" {
                    Op::Softmax { axis }
                } else {
                    Op::LogSoftmax { axis }
                };
                Ok(Val::Tensor(self.op(op, &[t], span)?))
            }
            "layer_norm" => {
                let a = self.sig(name, args, frame, span, &["x", "eps"], 1)?;
                let t = self.tensor_at(&a, 0)?;
                let eps = match &a[1] {
                    None => 1e-5,
                    Some((Val::Float(f), _)) => *f as f32,
                    Some((Val::Int(i), _)) => *i as f32,
                    Some((v, s)) => return Err(self.expected("a number", v, *s)),
                };
                Ok(Val::Tensor(self.op(Op::LayerNorm { eps }, &[t], span)?))
            }
            "chunk" => {
                let a = self.sig(name, args, frame, span, &["x", "chunks", "dim"], 2)?;
                let t = self.tensor_at(&a, 0)?;
                let (n, ns) = match &a[1] {
                    Some((Val::Int(n), s)) if *n > 0 => (*n as usize, *s),
                    Some((v, s)) => return Err(self.expected("a positive int", v, *s)),
                    None => unreachable!("required"),
                };
                let axis = self.axis_at(&a, 2, t, frame, -1)?;
                let len = match self.ty(t).dims[axis] {
                    Dim::Fixed(len) if len % n == 0 => len,
                    d => {
                        return Err(Diagnostic::error(format!(
                            "cannot split an axis of length {d} into {n} equal chunks"
                        ))
                        .with_label(ns, format!("{n} chunks"))
                        .with_note(format!("the value is {}", self.ty(t)))
                        .into())
                    }
                };
                let size = len / n;
                let parts = (0..n)
                    .map(|i| {
                        self.op(
                            Op::Slice {
                                axis,
                                start: i * size,
                                end: (i + 1) * size,
                            },
                            &[t],
                            span,
                        )
                        .map(Val::Tensor)
                    })
                    .collect::<LResult<Vec<_>>>()?;
                Ok(Val::Tuple(parts))
            }
            "cat" => {
                let a = self.sig(name, args, frame, span, &["tensors", "dim"], 1)?;
                let (list, ls) = a[0].clone().expect("required");
                let items = match list {
                    Val::List(items) | Val::Tuple(items) if !items.is_empty() => items,
                    v => return Err(self.expected("a non-empty list `[a, b, …]`", &v, ls)),
                };
                let ts = items
                    .into_iter()
                    .map(|i| self.tensor_of(i, ls))
                    .collect::<LResult<Vec<_>>>()?;
                let axis = self.axis_at(&a, 1, ts[0], frame, -1)?;
                Ok(Val::Tensor(self.op(Op::Concat { axis }, &ts, span)?))
            }
            "flip" => {
                let a = self.sig(name, args, frame, span, &["x", "dim"], 2)?;
                let t = self.tensor_at(&a, 0)?;
                let axis = self.axis_at(&a, 1, t, frame, 0)?;
                Ok(Val::Tensor(self.op(Op::Flip { axis }, &[t], span)?))
            }
            "transpose" => {
                let a = self.sig(name, args, frame, span, &["x", "dim0", "dim1"], 3)?;
                let t = self.tensor_at(&a, 0)?;
                let x = self.axis_at(&a, 1, t, frame, 0)?;
                let y = self.axis_at(&a, 2, t, frame, 0)?;
                Ok(Val::Tensor(self.op(
                    Op::Transpose { a: x, b: y },
                    &[t],
                    span,
                )?))
            }
            "unsqueeze" | "squeeze" => {
                let a = self.sig(name, args, frame, span, &["x", "dim"], 2)?;
                let t = self.tensor_at(&a, 0)?;
                let op = if name == "squeeze" {
                    Op::Squeeze {
                        axis: self.axis_at(&a, 1, t, frame, 0)?,
                    }
                } else {
                    Op::Unsqueeze {
                        axis: self.new_axis_at(&a, 1, t, frame)?,
                    }
                };
                Ok(Val::Tensor(self.op(op, &[t], span)?))
            }
            "sequence_mask" => {
                let a = self.sig(name, args, frame, span, &["lengths", "x"], 2)?;
                let lengths = self.tensor_at(&a, 0)?;
                let x = self.tensor_at(&a, 1)?;
                Ok(Val::Tensor(self.op(
                    Op::SequenceMask,
                    &[lengths, x],
                    span,
                )?))
            }
            "greedy_decode" | "beam_search" => self.decode_builtin(name, args, frame, span),
            "embedding" => {
                let a = self.sig(name, args, frame, span, &["weight", "ids"], 2)?;
                let table = self.tensor_at(&a, 0)?;
                let ids = self.tensor_at(&a, 1)?;
                Ok(Val::Tensor(self.op(Op::Embedding, &[table, ids], span)?))
            }
            "Sequential" => {
                let mut children = Vec::new();
                for arg in args {
                    if let Some(n) = &arg.name {
                        return Err(Diagnostic::error(
                            "`Sequential` takes modules in order, not by name",
                        )
                        .with_label(n.span, "named argument")
                        .into());
                    }
                    match self.eval(&arg.value, frame)? {
                        Val::Module(m) => children.push(m),
                        v => {
                            return Err(self.expected(
                                "a module such as `Linear(16, 4)`",
                                &v,
                                arg.value.span,
                            ))
                        }
                    }
                }
                if children.is_empty() {
                    return Err(Diagnostic::error("`Sequential` needs at least one module")
                        .with_label(span, "here")
                        .into());
                }
                Ok(Val::Module(Rc::new(Module {
                    kind: ModuleKind::Sequential(children),
                    prefix: None,
                    span,
                })))
            }
            "scan" => self.scan_builtin(args, frame, span),
            "rnn" => self.rnn_builtin(args, frame, span),
            "floor" | "ceil" => self.rounding(name, args, frame, span),
            n if super::activations::is_activation(n) => self.activation(n, args, frame, span),
            _ => unreachable!("every name in BUILTINS is handled"),
        }
    }

    /// `scan(cell, xs…, init = (h0, …), reverse = false)` → `(emits…, final states…)`.
    fn scan_builtin(&mut self, args: &[Arg], frame: &mut Frame, span: Span) -> LResult<Val> {
        let mut positional = Vec::new();
        let (mut init, mut reverse, mut memory, mut lengths) = (None, false, Vec::new(), None);
        for a in args {
            let v = self.eval(&a.value, frame)?;
            match a.name.as_ref().map(|n| n.name.as_str()) {
                None => positional.push((v, a.value.span)),
                Some("init") => init = Some((v, a.value.span)),
                Some("memory") => memory = self.tensor_tuple(v, a.value.span)?,
                Some("lengths") => lengths = Some((self.tensor_of(v, a.value.span)?, a.value.span)),
                Some("reverse") => match v {
                    Val::Bool(b) => reverse = b,
                    v => return Err(self.expected("a bool", &v, a.value.span)),
                },
                Some(other) => {
                    return Err(
                        Diagnostic::error(format!("`scan` has no argument `{other}`"))
                            .with_label(a.value.span, "unknown argument")
                            .with_note(SCAN_USAGE)
                            .into(),
                    )
                }
            }
        }
        if positional.len() < 2 {
            return Err(
                Diagnostic::error("`scan` needs a cell and at least one sequence")
                    .with_label(span, "here")
                    .with_note(SCAN_USAGE)
                    .into(),
            );
        }
        let (cell_v, cs) = positional.remove(0);
        let cell = self.cell_module(cell_v, cs, frame)?;
        let seqs = positional
            .into_iter()
            .map(|(v, s)| self.tensor_of(v, s))
            .collect::<LResult<Vec<_>>>()?;
        let init = match init {
            None => None,
            Some((v, s)) => Some((self.tensor_tuple(v, s)?, s)),
        };
        let outs = self.scan_op(
            &cell,
            seqs,
            ScanExtras {
                init,
                memory,
                lengths,
            },
            reverse,
            frame.suffix.clone(),
            span,
        )?;
        Ok(if outs.len() == 1 {
            Val::Tensor(outs[0])
        } else {
            Val::Tuple(outs.into_iter().map(Val::Tensor).collect())
        })
    }

    /// `rnn(cell, x, num_layers = 1, bidirectional = false, init = (h0, …))`, as
    /// torch.nn.LSTM/GRU/RNN: returns `(output, h_n, …)` with states stacked `[L*D, B, n]`.
    fn rnn_builtin(&mut self, args: &[Arg], frame: &mut Frame, span: Span) -> LResult<Val> {
        let a = self.sig(
            "rnn",
            args,
            frame,
            span,
            &[
                "cell",
                "x",
                "num_layers",
                "bidirectional",
                "init",
                "lengths",
            ],
            2,
        )?;
        let lengths = match &a[5] {
            None => None,
            Some((v, s)) => Some((self.tensor_of(v.clone(), *s)?, *s)),
        };
        let (cell_v, cs) = a[0].clone().expect("required");
        let cell = self.cell_module(cell_v, cs, frame)?;
        let x = self.tensor_at(&a, 1)?;
        let layers = match &a[2] {
            None => 1,
            Some((Val::Int(n), _)) if *n >= 1 => *n as usize,
            Some((v, s)) => return Err(self.expected("an int ≥ 1", v, *s)),
        };
        let dirs = match &a[3] {
            None | Some((Val::Bool(false), _)) => 1,
            Some((Val::Bool(true), _)) => 2,
            Some((v, s)) => return Err(self.expected("a bool", v, *s)),
        };
        let init = match &a[4] {
            None => None,
            Some((v, s)) => Some((self.tensor_tuple(v.clone(), *s)?, *s)),
        };
        let ModuleKind::Def { def, hparams } = &cell.kind else {
            unreachable!("cell_module checks")
        };
        // Layers above the first read the previous layer's output: find the hyperparameter
        // that sizes the cell's input (`input x: [input_size]`) to rebind it.
        let input_hparam = def.body.iter().find_map(|s| match &s.kind {
            StmtKind::Input { ty, .. } => match ty.dims.as_slice() {
                [DimExpr::Expr(e)] => match &e.kind {
                    ExprKind::Name(n)
                        if hparams
                            .iter()
                            .any(|(k, v)| k == n && matches!(v, Val::Int(_))) =>
                    {
                        Some(n.clone())
                    }
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        });
        if layers > 1 && input_hparam.is_none() {
            return Err(Diagnostic::error(format!(
                "`rnn` with num_layers > 1 needs to resize the input of `{}` for the upper layers",
                def.name.name
            ))
            .with_label(span, "stacked here")
            .with_label(
                def.name.span,
                "declare its input as `input x: [size]`, with `size` a hyperparameter",
            )
            .into());
        }
        let mut seq = x;
        let mut finals: Vec<Vec<Tensor>> = Vec::new();
        let mut layer_cell = (*cell).clone();
        for l in 0..layers {
            let mut outs = Vec::new();
            for d in 0..dirs {
                let suffix = format!(
                    "{}_l{l}{}",
                    frame.suffix,
                    if d == 1 { "_reverse" } else { "" }
                );
                let init_ld = match &init {
                    None => None,
                    Some((states, s)) => Some((
                        states
                            .iter()
                            .map(|st| {
                                self.op(
                                    Op::Index {
                                        axis: 0,
                                        index: (l * dirs + d) as i64,
                                    },
                                    &[*st],
                                    *s,
                                )
                            })
                            .collect::<LResult<Vec<_>>>()?,
                        *s,
                    )),
                };
                let extras = ScanExtras {
                    init: init_ld,
                    memory: Vec::new(),
                    lengths,
                };
                let res = self.scan_op(&layer_cell, vec![seq], extras, d == 1, suffix, span)?;
                let scan_node = self.graph().node(res[0].value.node);
                let n_states = match &scan_node.op {
                    Op::Scan(s) => s.n_states,
                    _ => unreachable!("scan_op returns the scan's results"),
                };
                if res.len() != n_states + 1 {
                    return Err(Diagnostic::error(format!(
                        "the cell of `rnn` must `emit` exactly one value per step (the layer's output), but `{}` emits {}",
                        def.name.name,
                        res.len() - n_states
                    ))
                    .with_label(def.name.span, "this cell")
                    .with_note("run a cell with several emits with `scan`")
                    .into());
                }
                if finals.is_empty() {
                    finals = vec![Vec::new(); n_states];
                }
                outs.push(res[0]);
                for (i, f) in res[1..].iter().enumerate() {
                    finals[i].push(*f);
                }
            }
            seq = if outs.len() == 1 {
                outs[0]
            } else {
                let axis = self.ty(outs[0]).rank() - 1;
                self.op(Op::Concat { axis }, &outs, span)?
            };
            if let (Some(name), true) = (&input_hparam, l + 1 < layers) {
                let Some(&Dim::Fixed(width)) = self.ty(seq).dims.last() else {
                    unreachable!("emits have fixed widths")
                };
                let ModuleKind::Def { hparams, .. } = &mut layer_cell.kind else {
                    unreachable!()
                };
                for (k, v) in hparams.iter_mut() {
                    if k == name {
                        *v = Val::Int(width as i64);
                    }
                }
            }
        }
        let mut result = vec![Val::Tensor(seq)];
        for f in finals {
            result.push(Val::Tensor(self.op(Op::Stack { axis: 0 }, &f, span)?));
        }
        Ok(Val::Tuple(result))
    }

    /// Lowers one scan: the cell's body graph, its initial states, the node.
    fn scan_op(
        &mut self,
        cell: &Module,
        mut seqs: Vec<Tensor>,
        extras: ScanExtras,
        reverse: bool,
        suffix: String,
        span: Span,
    ) -> LResult<Vec<Tensor>> {
        let ScanExtras {
            init,
            memory,
            lengths,
        } = extras;
        let mut seq_types = Vec::new();
        for s in &seqs {
            let t = self.ty(*s).clone();
            seq_types.push(
                step_type(&t).map_err(|m| Diagnostic::error(m).with_label(span, "scanned here"))?,
            );
        }
        let memory_types: Vec<TensorTy> = memory.iter().map(|m| self.ty(*m).clone()).collect();
        let mut body = self.run_cell(cell, seq_types, memory_types, suffix, span)?;
        if let Some((lengths, ls)) = lengths {
            let mask = self.op(Op::SequenceMask, &[lengths, seqs[0]], ls)?;
            let mask = self.op(Op::Unsqueeze { axis: 2 }, &[mask], ls)?;
            mask_body(&mut body, seqs.len()).map_err(|m| {
                Diagnostic::error(m)
                    .with_label(ls, "lengths given here")
                    .with_label(span, "for this recurrence")
            })?;
            seqs.push(mask);
        }
        let inits = match init {
            Some((states, s)) => self.fit_init(states, &body.state_types, s)?,
            None => body
                .state_types
                .iter()
                .map(|t| {
                    let node = self.graph().add_node(Op::Zeros, &[], vec![t.clone()]);
                    Tensor::new(crate::graph::Value::new(node, 0))
                })
                .collect(),
        };
        let mut scan = Scan::new(reverse, seqs.len(), body.state_types.len(), body.graph);
        scan.n_memory = memory.len();
        let mut operands = seqs;
        operands.extend(inits);
        operands.extend(memory);
        self.op_n(Op::Scan(scan), &operands, span)
    }

    /// A recurrence's `init` checked against the states its cell declares. An
    /// initial state without the batch axis (a learned one, from a `param`) is the
    /// same for every example: it is broadcast over the batch, as
    /// `h0.expand(B, -1)` would be in PyTorch.
    pub(crate) fn fit_init(
        &mut self,
        states: Vec<Tensor>,
        want: &[TensorTy],
        span: Span,
    ) -> LResult<Vec<Tensor>> {
        if states.len() != want.len() {
            return Err(Diagnostic::error(format!(
                "the cell has {} state(s), but `init` gives {}",
                want.len(),
                states.len()
            ))
            .with_label(span, "initial states")
            .into());
        }
        let mut out = Vec::new();
        for (i, (st, want)) in states.into_iter().zip(want).enumerate() {
            let got = self.ty(st).clone();
            if &got == want {
                out.push(st);
            } else if got.dtype == want.dtype && got.dims[..] == want.dims[1..] {
                let node = self.graph().add_node(Op::Zeros, &[], vec![want.clone()]);
                let zeros = Tensor::new(Value::new(node, 0));
                out.push(self.op(Op::Binary(BinaryOp::Add), &[zeros, st], span)?);
            } else {
                return Err(Diagnostic::error(format!(
                    "initial state {i} is {got}, but the cell's state is {want}"
                ))
                .with_label(span, "initial states")
                .with_note(format!(
                    "give one per example ({want}) or one for all ({})",
                    crate::types::TensorTy {
                        dtype: want.dtype,
                        dims: want.dims[1..].to_vec()
                    }
                ))
                .into());
            }
        }
        Ok(out)
    }

    /// The cell module a recurrence runs, with its weights under the current prefix.
    pub(crate) fn cell_module(&mut self, v: Val, span: Span, frame: &Frame) -> LResult<Rc<Module>> {
        match v {
            Val::Module(m) if matches!(m.kind, ModuleKind::Def { .. }) => {
                if m.prefix.is_some() {
                    return Ok(m);
                }
                let mut named = (*m).clone();
                named.prefix = Some(frame.prefix.clone());
                Ok(Rc::new(named))
            }
            Val::Def(d) => Err(Diagnostic::error(format!(
                "`{}` needs its hyperparameters",
                d.name.name
            ))
            .with_label(span, format!("write `{}(…)`", d.name.name))
            .into()),
            v => Err(self.expected(
                "a cell such as `LSTMCell(input_size, hidden_size)`",
                &v,
                span,
            )),
        }
    }

    pub(crate) fn tensor_tuple(&mut self, v: Val, span: Span) -> LResult<Vec<Tensor>> {
        match v {
            Val::Tuple(items) => items.into_iter().map(|i| self.tensor_of(i, span)).collect(),
            v => Ok(vec![self.tensor_of(v, span)?]),
        }
    }

    /// Matches call arguments to a signature; the first `required` are mandatory.
    pub(crate) fn sig(
        &mut self,
        name: &str,
        args: &[Arg],
        frame: &mut Frame,
        span: Span,
        params: &[&str],
        required: usize,
    ) -> LResult<Bound> {
        let mut out: Bound = vec![None; params.len()];
        let usage = format!("{name}({})", params.join(", "));
        let mut pos = 0;
        for a in args {
            let idx = match &a.name {
                None => {
                    pos += 1;
                    if pos > params.len() {
                        let n = params.len();
                        return Err(Diagnostic::error(format!(
                            "`{name}` takes at most {n} argument{}",
                            if n == 1 { "" } else { "s" }
                        ))
                        .with_label(a.value.span, "extra argument")
                        .with_note(usage)
                        .into());
                    }
                    pos - 1
                }
                Some(n) => params.iter().position(|p| *p == n.name).ok_or_else(|| {
                    Diagnostic::error(format!("`{name}` has no argument `{}`", n.name))
                        .with_label(n.span, "unknown argument")
                        .with_note(usage.clone())
                })?,
            };
            if out[idx].is_some() {
                return Err(Diagnostic::error(format!(
                    "argument `{}` of `{name}` is given twice",
                    params[idx]
                ))
                .with_label(a.value.span, "given again")
                .into());
            }
            let v = self.eval(&a.value, frame)?;
            out[idx] = Some((v, a.value.span));
        }
        if let Some(missing) = (0..required).find(|i| out[*i].is_none()) {
            return Err(Diagnostic::error(format!(
                "`{name}` is missing its argument `{}`",
                params[missing]
            ))
            .with_label(span, "called here")
            .with_note(usage)
            .into());
        }
        Ok(out)
    }

    fn tensor_at(&mut self, a: &Bound, i: usize) -> LResult<Tensor> {
        let (v, s) = a[i].clone().expect("required argument");
        self.tensor_of(v, s)
    }

    /// A user axis (`dim`), shifted past a cell's implicit batch axis.
    fn axis_at(
        &mut self,
        a: &Bound,
        i: usize,
        t: Tensor,
        frame: &Frame,
        default: i64,
    ) -> LResult<usize> {
        self.resolve_axis(a, i, t, frame, default, 0)
    }

    /// Where a new axis goes (`unsqueeze`): like [`Self::axis_at`], over one more
    /// place, so that it may also go last.
    fn new_axis_at(&mut self, a: &Bound, i: usize, t: Tensor, frame: &Frame) -> LResult<usize> {
        self.resolve_axis(a, i, t, frame, 0, 1)
    }

    /// Resolves argument `i` as an axis of a value with `extra` more axes than `t`.
    fn resolve_axis(
        &mut self,
        a: &Bound,
        i: usize,
        t: Tensor,
        frame: &Frame,
        default: i64,
        extra: usize,
    ) -> LResult<usize> {
        let (dim, span) = match &a[i] {
            None => (default, None),
            Some((Val::Int(d), s)) => (*d, Some(*s)),
            Some((v, s)) => return Err(self.expected("an int axis", v, *s)),
        };
        let rank = self.ty(t).rank() + extra;
        let hidden = self.hidden_axes(t, frame);
        let axis = if dim < 0 {
            rank as i64 + dim
        } else {
            dim + hidden as i64
        };
        if axis < hidden as i64 || axis >= rank as i64 {
            let ty: &TensorTy = self.ty(t);
            let mut d = Diagnostic::error(if extra > 0 {
                format!("dim {dim} is out of range for a new axis of {ty}")
            } else {
                format!("dim {dim} is out of range for a value of type {ty}")
            });
            if let Some(s) = span {
                d = d.with_label(s, "this dim");
            }
            return Err(d.into());
        }
        Ok(axis as usize)
    }

    pub(crate) fn expected(&self, what: &str, v: &Val, span: Span) -> super::value::Fail {
        Diagnostic::error(format!("expected {what}, found {}", self.describe(v)))
            .with_label(span, "here")
            .into()
    }
}
