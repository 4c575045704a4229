//! Expressions: compile-time arithmetic on hyperparameters, tensor ops on IR values,
//! indexing, and calls (built-ins, module instantiation, layer calls).

use super::body::{CallArgs, Frame, Mode};
use super::value::{Fail, LResult, Module, ModuleKind, Tensor, Val};
use super::Lowerer;
use crate::graph::Value;
use crate::op::{BinaryOp, Op, UnaryOp};
use crate::types::Dim;
use rnnc_syntax::ast::{Arg, BinOp, Expr, ExprKind, IndexItem, UnOp};
use rnnc_syntax::{Diagnostic, Span};
use std::rc::Rc;

/// Names that resolve to built-in functions when no local name or definition hides them.
pub const BUILTINS: &[&str] = &[
    "sigmoid",
    "tanh",
    "relu",
    "exp",
    "log",
    "abs",
    "step",
    "softsign",
    "softplus",
    "elu",
    "leaky_relu",
    "thresholded_relu",
    "hard_sigmoid",
    "scaled_tanh",
    "affine",
    "clamp",
    "floor",
    "ceil",
    "softmax",
    "log_softmax",
    "layer_norm",
    "chunk",
    "cat",
    "flip",
    "transpose",
    "embedding",
    "unsqueeze",
    "squeeze",
    "sequence_mask",
    "scan",
    "greedy_decode",
    "beam_search",
    "rnn",
    "Sequential",
];

impl Lowerer {
    pub(crate) fn eval(&mut self, e: &Expr, frame: &mut Frame) -> LResult<Val> {
        match &e.kind {
            ExprKind::Int(v) => Ok(Val::Int(*v)),
            ExprKind::Float(v) => Ok(Val::Float(*v)),
            ExprKind::Str(s) => Ok(Val::Str(s.clone())),
            ExprKind::Bool(b) => Ok(Val::Bool(*b)),
            ExprKind::Name(n) => self.lookup(n, e.span, frame),
            ExprKind::Unary(op, x) => {
                let v = self.eval(x, frame)?;
                match (op, v) {
                    (UnOp::Neg, Val::Int(i)) => {
                        Ok(Val::Int(i.checked_neg().ok_or_else(|| overflow(e.span))?))
                    }
                    (UnOp::Neg, Val::Float(f)) => Ok(Val::Float(-f)),
                    (UnOp::Not, Val::Bool(b)) => Ok(Val::Bool(!b)),
                    (_, Val::Poison) => Err(Fail(None)),
                    (UnOp::Neg, v) => {
                        let t = self.tensor_of(v, x.span)?;
                        Ok(Val::Tensor(self.op(
                            Op::Unary(UnaryOp::Neg),
                            &[t],
                            e.span,
                        )?))
                    }
                    (UnOp::Not, v) => Err(Diagnostic::error(format!(
                        "`not` needs a bool, found {}",
                        self.describe(&v)
                    ))
                    .with_label(x.span, "not a bool")
                    .into()),
                }
            }
            ExprKind::Binary(op, a, b) => {
                let va = self.eval(a, frame)?;
                // `and`/`or` short-circuit, so `x > 0 and n / x > 2` is safe.
                if let (BinOp::And, Val::Bool(false)) | (BinOp::Or, Val::Bool(true)) = (op, &va) {
                    return Ok(va);
                }
                let vb = self.eval(b, frame)?;
                let in_cell = frame.batch_axes > 0;
                self.binary(*op, va, vb, in_cell, (e.span, a.span, b.span))
            }
            ExprKind::If { cond, then, els } => match self.eval(cond, frame)? {
                Val::Bool(true) => self.eval(then, frame),
                Val::Bool(false) => self.eval(els, frame),
                Val::Poison => Err(Fail(None)),
                v => Err(Diagnostic::error(format!(
                    "an `if` condition must be a bool known from hyperparameters, found {}",
                    self.describe(&v)
                ))
                .with_label(cond.span, "not a bool")
                .into()),
            },
            ExprKind::Tuple(items) => Ok(Val::Tuple(
                items
                    .iter()
                    .map(|i| self.eval(i, frame))
                    .collect::<LResult<_>>()?,
            )),
            ExprKind::List(items) => Ok(Val::List(
                items
                    .iter()
                    .map(|i| self.eval(i, frame))
                    .collect::<LResult<_>>()?,
            )),
            ExprKind::Index { base, items } => {
                let v = self.eval(base, frame)?;
                let t = self.tensor_of(v, base.span)?;
                self.index(t, items, frame, e.span).map(Val::Tensor)
            }
            ExprKind::Call { callee, args } => {
                let f = self.eval(callee, frame)?;
                self.call(f, args, frame, e.span, callee.span)
            }
        }
    }

    pub(crate) fn lookup(&mut self, name: &str, span: Span, frame: &Frame) -> LResult<Val> {
        if let Some(v) = frame.vars.get(name) {
            return match v {
                Val::Poison => Err(Fail(None)),
                v => Ok(v.clone()),
            };
        }
        if let Some(d) = self.defs.get(name) {
            return Ok(Val::Def(d.clone()));
        }
        if let Some(b) = BUILTINS.iter().find(|b| **b == name) {
            return Ok(Val::Builtin(b));
        }
        let mut d =
            Diagnostic::error(format!("unknown name `{name}`")).with_label(span, "not defined");
        let candidates = frame
            .vars
            .keys()
            .map(String::as_str)
            .chain(self.defs.keys().map(String::as_str))
            .chain(BUILTINS.iter().copied());
        if let Some(best) = closest(name, candidates) {
            d = d.with_note(format!("did you mean `{best}`?"));
        } else if matches!(frame.mode, Mode::Constants) {
            d = d.with_note("a default may only use literals and earlier hyperparameters");
        }
        Err(d.into())
    }

    /// Makes an op node; a type error becomes a diagnostic at `span`.
    pub(crate) fn op(&mut self, op: Op, args: &[Tensor], span: Span) -> LResult<Tensor> {
        Ok(self.op_n(op, args, span)?[0])
    }

    pub(crate) fn op_n(&mut self, op: Op, args: &[Tensor], span: Span) -> LResult<Vec<Tensor>> {
        let name = op.name();
        let values: Vec<Value> = args.iter().map(|t| t.value).collect();
        let g = self.graph();
        g.add(op, &values)
            .map(|vs| {
                if let Some(v) = vs.first() {
                    g.node_mut(v.node).span = Some(span);
                }
                vs.into_iter().map(Tensor::new).collect()
            })
            .map_err(|m| {
                Diagnostic::error(if m.starts_with("shape mismatch") {
                    m.clone()
                } else {
                    format!("in `{name}`: {m}")
                })
                .with_label(span, "here")
                .into()
            })
    }

    /// A value used where a tensor is needed: lists concatenate, numbers become constants.
    pub(crate) fn tensor_of(&mut self, v: Val, span: Span) -> LResult<Tensor> {
        match v {
            Val::Tensor(t) => Ok(t),
            Val::Int(i) => self.op(Op::Const(i as f32), &[], span),
            Val::Float(f) => self.op(Op::Const(f as f32), &[], span),
            Val::List(items) => {
                if items.is_empty() {
                    return Err(Diagnostic::error("cannot concatenate an empty list")
                        .with_label(span, "here")
                        .into());
                }
                let ts = items
                    .into_iter()
                    .map(|i| self.tensor_of(i, span))
                    .collect::<LResult<Vec<_>>>()?;
                let rank = self.ty(ts[0]).rank();
                if rank == 0 {
                    return Err(Diagnostic::error("cannot concatenate scalars")
                        .with_label(span, "here")
                        .into());
                }
                self.op(Op::Concat { axis: rank - 1 }, &ts, span)
            }
            Val::Poison => Err(Fail(None)),
            other => Err(Diagnostic::error(format!(
                "expected a tensor, found {}",
                self.describe(&other)
            ))
            .with_label(span, "not a tensor")
            .into()),
        }
    }

    /// `a op b`; `in_cell` when per-example values broadcast per example (see
    /// [`Lowerer::per_example_broadcast`]). Spans: the whole, then each operand.
    fn binary(
        &mut self,
        op: BinOp,
        a: Val,
        b: Val,
        in_cell: bool,
        (span, sa, sb): (Span, Span, Span),
    ) -> LResult<Val> {
        use Val::*;
        if matches!(a, Poison) || matches!(b, Poison) {
            return Err(Fail(None));
        }
        // Compile-time arithmetic and logic on hyperparameters.
        let num = |v: &Val| match v {
            Int(i) => Some(*i as f64),
            Float(f) => Some(*f),
            _ => None,
        };
        match (&a, &b) {
            (Int(x), Int(y)) => {
                let (x, y) = (*x, *y);
                return match op {
                    BinOp::Add => x
                        .checked_add(y)
                        .map(Int)
                        .ok_or_else(|| overflow(span).into()),
                    BinOp::Sub => x
                        .checked_sub(y)
                        .map(Int)
                        .ok_or_else(|| overflow(span).into()),
                    BinOp::Mul => x
                        .checked_mul(y)
                        .map(Int)
                        .ok_or_else(|| overflow(span).into()),
                    // Exact division stays an int, so `hidden_size / 2` can size a tensor.
                    BinOp::Div if y == 0 => Err(Diagnostic::error("division by zero")
                        .with_label(sb, "this is 0")
                        .into()),
                    BinOp::Div if x % y == 0 => Ok(Int(x / y)),
                    BinOp::Div => Ok(Float(x as f64 / y as f64)),
                    // Python's `%`: the sign of the divisor, so `n % k` is in 0..k.
                    BinOp::Rem if y == 0 => Err(Diagnostic::error("`%` by zero")
                        .with_label(sb, "this is 0")
                        .into()),
                    BinOp::Rem => x
                        .checked_rem_euclid(y)
                        .map(|r| Int(if y < 0 && r != 0 { r + y } else { r }))
                        .ok_or_else(|| overflow(span).into()),
                    BinOp::Pow if y >= 0 => u32::try_from(y)
                        .ok()
                        .and_then(|y| x.checked_pow(y))
                        .map(Int)
                        .ok_or_else(|| overflow(span).into()),
                    BinOp::Pow => Ok(Float((x as f64).powf(y as f64))),
                    _ => compare(op, &x, &y)
                        .map(Bool)
                        .ok_or_else(|| self.bad_operands(op, &a, &b, span)),
                };
            }
            (Int(_) | Float(_), Int(_) | Float(_)) => {
                let (x, y) = (num(&a).expect("number"), num(&b).expect("number"));
                return match op {
                    BinOp::Add => Ok(Float(x + y)),
                    BinOp::Sub => Ok(Float(x - y)),
                    BinOp::Mul => Ok(Float(x * y)),
                    BinOp::Div => Ok(Float(x / y)),
                    BinOp::Rem if y == 0.0 => Err(Diagnostic::error("`%` by zero")
                        .with_label(sb, "this is 0")
                        .into()),
                    BinOp::Rem => Ok(Float(x - y * (x / y).floor())),
                    BinOp::Pow => Ok(Float(x.powf(y))),
                    _ => compare(op, &x, &y)
                        .map(Bool)
                        .ok_or_else(|| self.bad_operands(op, &a, &b, span)),
                };
            }
            (Bool(x), Bool(y)) => {
                return match op {
                    BinOp::And => Ok(Bool(*x && *y)),
                    BinOp::Or => Ok(Bool(*x || *y)),
                    BinOp::Eq => Ok(Bool(x == y)),
                    BinOp::Ne => Ok(Bool(x != y)),
                    _ => Err(self.bad_operands(op, &a, &b, span)),
                }
            }
            (Str(x), Str(y)) => {
                return match op {
                    BinOp::Eq => Ok(Bool(x == y)),
                    BinOp::Ne => Ok(Bool(x != y)),
                    _ => Err(self.bad_operands(op, &a, &b, span)),
                }
            }
            _ => {}
        }
        let tensorish = |v: &Val| matches!(v, Tensor(_) | List(_) | Int(_) | Float(_));
        if !tensorish(&a) || !tensorish(&b) {
            return Err(self.bad_operands(op, &a, &b, span));
        }
        let bop = match op {
            BinOp::Add => BinaryOp::Add,
            BinOp::Sub => BinaryOp::Sub,
            BinOp::Mul => BinaryOp::Mul,
            BinOp::Div => BinaryOp::Div,
            BinOp::Pow => return self.power(a, b, span, sa, sb).map(Val::Tensor),
            BinOp::Rem => {
                return Err(Diagnostic::error(
                    "`%` takes numbers known when the model is compiled, not tensors",
                )
                .with_label(span, "here")
                .into())
            }
            BinOp::MatMul => {
                let ta = self.tensor_of(a, sa)?;
                let tb = self.tensor_of(b, sb)?;
                // A 2-D parameter on the left applies to the feature axis: `W @ x` is x W^T.
                if ta.is_param && self.ty(ta).rank() == 2 {
                    return Ok(Val::Tensor(self.op(Op::Linear, &[tb, ta], span)?));
                }
                return Ok(Val::Tensor(self.op(Op::MatMul, &[ta, tb], span)?));
            }
            _ => return Err(self.bad_operands(op, &a, &b, span)),
        };
        let mut ta = self.tensor_of(a, sa)?;
        let mut tb = self.tensor_of(b, sb)?;
        if in_cell {
            (ta, tb) = self.per_example_broadcast(ta, tb, span)?;
        }
        Ok(Val::Tensor(self.op(Op::Binary(bop), &[ta, tb], span)?))
    }

    /// In a cell, shapes are per example, and so is broadcasting: a per-example
    /// scalar `x[0]` (`[B]`) times a per-example vector `h` (`[B, n]`) scales each
    /// example's `h` by its own `x[0]`. NumPy's rule aligns the last axes instead
    /// (`B` against `n`), so the per-example value of lower rank gets unit axes
    /// right after the batch axis first. A parameter (no batch axis) keeps NumPy's
    /// rule, which already aligns it with the per-example axes.
    fn per_example_broadcast(
        &mut self,
        a: Tensor,
        b: Tensor,
        span: Span,
    ) -> LResult<(Tensor, Tensor)> {
        let per_example = |t: &crate::types::TensorTy| {
            (t.dims.first() == Some(&Dim::Batch)).then(|| t.rank() - 1)
        };
        let (ra, rb) = (per_example(self.ty(a)), per_example(self.ty(b)));
        let rank_of = |t: &crate::types::TensorTy, r: Option<usize>| r.unwrap_or(t.rank());
        let (fa, fb) = (rank_of(self.ty(a), ra), rank_of(self.ty(b), rb));
        let lift = |me: &mut Self, t: Tensor, by: usize| -> LResult<Tensor> {
            let mut t = t;
            for _ in 0..by {
                t = me.unit_axis_after_batch(t, span)?;
            }
            Ok(t)
        };
        Ok(match (ra, rb) {
            (Some(_), _) if fa < fb => (lift(self, a, fb - fa)?, b),
            (_, Some(_)) if fb < fa => (a, lift(self, b, fa - fb)?),
            _ => (a, b),
        })
    }

    /// `t` with a new axis of length 1 after its batch axis. An index of that very
    /// axis (`x[0]` in a cell) becomes the slice `x[0:1]` instead, which every
    /// backend reads as a view.
    fn unit_axis_after_batch(&mut self, t: Tensor, span: Span) -> LResult<Tensor> {
        let g = self.graphs.last().expect("a graph is always open");
        if let Op::Index { axis: 1, index } = g.node(t.value.node).op {
            let source = g.operands(t.value.node)[0];
            if let Some(Dim::Fixed(n)) = g.ty(source).dims.get(1).copied() {
                let i = if index < 0 { index + n as i64 } else { index } as usize;
                let slice = Op::Slice {
                    axis: 1,
                    start: i,
                    end: i + 1,
                };
                let index_node = t.value.node;
                self.superseded.push((self.graphs.len(), index_node));
                return self.op(slice, &[Tensor::new(source)], span);
            }
        }
        self.op(Op::Unsqueeze { axis: 1 }, &[t], span)
    }

    fn bad_operands(&self, op: BinOp, a: &Val, b: &Val, span: Span) -> Fail {
        Diagnostic::error(format!(
            "`{}` cannot combine {} and {}",
            op.as_str(),
            self.describe(a),
            self.describe(b)
        ))
        .with_label(span, "here")
        .into()
    }

    /// `x[i]`, `x[a:b]`, `x[:, -1, :]`: user axes, shifted past a cell's batch axis.
    fn index(
        &mut self,
        mut t: Tensor,
        items: &[IndexItem],
        frame: &mut Frame,
        span: Span,
    ) -> LResult<Tensor> {
        let rank = self.ty(t).rank();
        let hidden = self.hidden_axes(t, frame);
        let visible = rank - hidden;
        if items.len() > visible {
            return Err(Diagnostic::error(format!(
                "{} indices given, but the value has {visible} axes",
                items.len()
            ))
            .with_label(span, format!("this is {}", self.ty(t)))
            .into());
        }
        let mut axis = hidden;
        for item in items {
            let len = self.ty(t).dims[axis];
            match item {
                IndexItem::Expr(e) => {
                    let i = self.int_arg(e, frame, "an index")?;
                    t = self.op(Op::Index { axis, index: i }, &[t], e.span)?;
                }
                IndexItem::Range {
                    start,
                    end,
                    span: rs,
                } => {
                    if start.is_none() && end.is_none() {
                        axis += 1;
                        continue;
                    }
                    let Dim::Fixed(n) = len else {
                        return Err(Diagnostic::error(format!(
                            "cannot slice the symbolic axis {len} with bounds"
                        ))
                        .with_label(*rs, "here")
                        .into());
                    };
                    let resolve = |i: i64| if i < 0 { i + n as i64 } else { i };
                    let s = match start {
                        Some(e) => resolve(self.int_arg(e, frame, "a slice bound")?),
                        None => 0,
                    };
                    let en = match end {
                        Some(e) => resolve(self.int_arg(e, frame, "a slice bound")?),
                        None => n as i64,
                    };
                    if s < 0 || en > n as i64 || s >= en {
                        return Err(Diagnostic::error(format!(
                            "slice is empty or out of range for an axis of length {n}"
                        ))
                        .with_label(*rs, "here")
                        .into());
                    }
                    t = self.op(
                        Op::Slice {
                            axis,
                            start: s as usize,
                            end: en as usize,
                        },
                        &[t],
                        *rs,
                    )?;
                    axis += 1;
                }
            }
        }
        Ok(t)
    }

    /// Leading axes the user does not write: the batch axis of a per-example value in
    /// a cell (a parameter, which has none, shows all its axes).
    pub(crate) fn hidden_axes(&self, t: Tensor, frame: &Frame) -> usize {
        let first = self.ty(t).dims.first().copied();
        usize::from(frame.batch_axes > 0 && first == Some(Dim::Batch))
    }

    pub(crate) fn int_arg(&mut self, e: &Expr, frame: &mut Frame, what: &str) -> LResult<i64> {
        match self.eval(e, frame)? {
            Val::Int(i) => Ok(i),
            v => Err(Diagnostic::error(format!(
                "{what} must be an int known from hyperparameters, found {}",
                self.describe(&v)
            ))
            .with_label(e.span, "here")
            .into()),
        }
    }

    fn call(
        &mut self,
        f: Val,
        args: &[Arg],
        frame: &mut Frame,
        span: Span,
        callee_span: Span,
    ) -> LResult<Val> {
        match f {
            Val::Builtin(name) => self.builtin(name, args, frame, span),
            Val::Def(def) => {
                // Instantiation: bind hyperparameters, make a module (named later by `layer`).
                let mut positional = Vec::new();
                let mut named = Vec::new();
                for a in args {
                    let v = self.eval(&a.value, frame)?;
                    match &a.name {
                        Some(n) => named.push((n.name.clone(), v, a.value.span)),
                        None => positional.push((v, a.value.span)),
                    }
                }
                let hparams = self.bind_hparams(&def, positional, named, span, false)?;
                Ok(Val::Module(Rc::new(Module {
                    kind: ModuleKind::Def { def, hparams },
                    prefix: None,
                    span,
                })))
            }
            Val::Module(m) => {
                let Some(prefix) = m.prefix.clone() else {
                    return Err(Diagnostic::error(format!(
                        "`{}` is called without a name for its weights",
                        m.display_name()
                    ))
                    .with_label(callee_span, "an unnamed module")
                    .with_note("declare it first, `layer fc = Linear(…)`, then call `fc(x)`")
                    .into());
                };
                let mut positional = Vec::new();
                let mut named = Vec::new();
                for a in args {
                    let v = self.eval(&a.value, frame)?;
                    let t = self.tensor_of(v, a.value.span)?;
                    match &a.name {
                        Some(n) => named.push((n.name.clone(), t, a.value.span)),
                        None => positional.push((t, a.value.span)),
                    }
                }
                let outs =
                    self.call_module(&m, &prefix, positional, named, span, frame.suffix.clone())?;
                Ok(if outs.len() == 1 {
                    Val::Tensor(outs[0])
                } else {
                    Val::Tuple(outs.into_iter().map(Val::Tensor).collect())
                })
            }
            Val::Poison => Err(Fail(None)),
            other => Err(
                Diagnostic::error(format!("{} cannot be called", self.describe(&other)))
                    .with_label(callee_span, "not callable")
                    .into(),
            ),
        }
    }

    /// Runs a named module on tensors: inlines a model, or chains a `Sequential`.
    fn call_module(
        &mut self,
        m: &Module,
        prefix: &str,
        positional: Vec<(Tensor, Span)>,
        named: Vec<(String, Tensor, Span)>,
        span: Span,
        suffix: String,
    ) -> LResult<Vec<Tensor>> {
        match &m.kind {
            ModuleKind::Def { def, .. } if def.kind == rnnc_syntax::ast::DefKind::Cell => {
                if let Some((n, _, s)) = named.first() {
                    return Err(Diagnostic::error(format!(
                        "one step of a cell takes its tensors in order, not by name (`{n}`)"
                    ))
                    .with_label(*s, "named argument")
                    .into());
                }
                let mut named_m = m.clone();
                named_m.prefix = Some(prefix.to_string());
                self.step_cell(&named_m, positional, suffix, span)
            }
            ModuleKind::Def { .. } => {
                let mut named_m = m.clone();
                named_m.prefix = Some(prefix.to_string());
                let outs = self.run_model_with_suffix(
                    &named_m,
                    Some(CallArgs {
                        positional,
                        named,
                        call: span,
                    }),
                    span,
                    suffix,
                )?;
                Ok(outs.into_iter().map(|(_, t)| t).collect())
            }
            ModuleKind::Sequential(children) => {
                if positional.len() != 1 || !named.is_empty() {
                    return Err(Diagnostic::error("a `Sequential` takes exactly one input")
                        .with_label(span, "called here")
                        .into());
                }
                let mut x = positional[0];
                for (i, child) in children.iter().enumerate() {
                    let outs = self.call_module(
                        child,
                        &format!("{prefix}{i}."),
                        vec![x],
                        vec![],
                        span,
                        suffix.clone(),
                    )?;
                    if outs.len() != 1 {
                        return Err(Diagnostic::error(format!(
                            "`{}` inside a `Sequential` must have one output, it has {}",
                            child.display_name(),
                            outs.len()
                        ))
                        .with_label(child.span, "this module")
                        .into());
                    }
                    x = (outs[0], span);
                }
                Ok(vec![x.0])
            }
        }
    }
}

/// A comparison operator applied to two values of one ordered type.
fn compare<T: PartialOrd>(op: BinOp, x: &T, y: &T) -> Option<bool> {
    Some(match op {
        BinOp::Eq => x == y,
        BinOp::Ne => x != y,
        BinOp::Lt => x < y,
        BinOp::Le => x <= y,
        BinOp::Gt => x > y,
        BinOp::Ge => x >= y,
        _ => return None,
    })
}

fn overflow(span: Span) -> Diagnostic {
    Diagnostic::error("integer overflow").with_label(span, "this does not fit in 64 bits")
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(name, c), c))
        // A suggestion must keep something of the name: `q` is no typo of `M`.
        .filter(|(d, c)| *d <= limit && *d < name.chars().count().max(c.chars().count()))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
