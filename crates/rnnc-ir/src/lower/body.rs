//! Statements: the bodies of models (inlined where they are called) and of cells
//! (lowered into the body graph of a scan).

use super::value::{Fail, LResult, Module, ModuleKind, Tensor, Val};
use super::Lowerer;
use crate::graph::Graph;
use crate::op::{ArgKind, Op};
use crate::types::{dims_str, DType, Dim, TensorTy};
use rnnc_syntax::ast::{self, DefKind, DimExpr, Stmt, StmtKind, TensorType};
use rnnc_syntax::{Diagnostic, Span};
use std::collections::HashMap;

/// The scope of one body being lowered.
pub(crate) struct Frame {
    pub vars: HashMap<String, Val>,
    /// Weight keys are `prefix + name + suffix`: `lstm.` + `weight_ih` + `_l0`.
    pub prefix: String,
    pub suffix: String,
    /// Axes the user does not write: 1 in a cell (the batch axis), 0 in a model.
    pub batch_axes: usize,
    pub mode: Mode,
    /// "`LSTMCell` with hidden_size=16, …", for assertion messages.
    pub context: String,
    pub had_error: bool,
}

pub(crate) enum Mode {
    /// Hyperparameter defaults: no tensors may be made.
    Constants,
    Model {
        /// `None` for the entry model, whose inputs become graph inputs.
        args: Option<CallArgs>,
        next_input: usize,
        outputs: Vec<(String, Tensor)>,
    },
    Cell {
        seq_types: Vec<TensorTy>,
        next_seq: usize,
        memory_types: Vec<TensorTy>,
        next_memory: usize,
        states: Vec<StateSlot>,
        emits: Vec<Tensor>,
        call: Span,
        /// A cell called as a function (`gru(x, h)`) runs one step inline: its
        /// `input`, `state` and `memory` declarations take these, in order.
        inline: Option<InlineArgs>,
    },
}

/// The tensors of a one-step cell call, consumed by the cell's declarations.
pub(crate) struct InlineArgs {
    pub args: Vec<(Tensor, Span)>,
    pub next: usize,
}

/// Tensors passed to a model called as a layer.
pub(crate) struct CallArgs {
    pub positional: Vec<(Tensor, Span)>,
    pub named: Vec<(String, Tensor, Span)>,
    pub call: Span,
}

pub(crate) struct StateSlot {
    pub name: String,
    pub ty: TensorTy,
    pub next: Option<Tensor>,
    pub span: Span,
}

/// A lowered cell: the scan body plus what the scan needs to know about it.
pub(crate) struct CellBody {
    pub graph: Graph,
    pub state_types: Vec<TensorTy>,
}

impl Frame {
    /// The frame a cell's statements run in: per-example shapes (one hidden batch
    /// axis), fed by a scan (`inline: None`) or by a one-step call.
    fn cell(
        module: &Module,
        suffix: String,
        call: Span,
        seq_types: Vec<TensorTy>,
        memory_types: Vec<TensorTy>,
        inline: Option<InlineArgs>,
    ) -> Self {
        let ModuleKind::Def { hparams, .. } = &module.kind else {
            unreachable!("callers check for a cell definition")
        };
        Frame {
            vars: hparams.iter().cloned().collect(),
            prefix: module.prefix.clone().unwrap_or_default(),
            suffix,
            batch_axes: 1,
            mode: Mode::Cell {
                seq_types,
                next_seq: 0,
                memory_types,
                next_memory: 0,
                states: Vec::new(),
                emits: Vec::new(),
                call,
                inline,
            },
            context: context_of(module),
            had_error: false,
        }
    }

    /// Whether this is a cell running one step inline (`gru(x, h)`).
    fn is_inline(&self) -> bool {
        matches!(
            self.mode,
            Mode::Cell {
                inline: Some(_),
                ..
            }
        )
    }

    pub fn constants(vars: HashMap<String, Val>) -> Self {
        Frame {
            vars,
            prefix: String::new(),
            suffix: String::new(),
            batch_axes: 0,
            mode: Mode::Constants,
            context: String::new(),
            had_error: false,
        }
    }
}

fn context_of(module: &Module) -> String {
    match &module.kind {
        ModuleKind::Def { def, hparams } => {
            let hp: Vec<String> = hparams
                .iter()
                .map(|(k, v)| match v {
                    Val::Int(i) => format!("{k}={i}"),
                    Val::Float(f) => format!("{k}={f}"),
                    Val::Bool(b) => format!("{k}={b}"),
                    Val::Str(s) => format!("{k}={s:?}"),
                    _ => format!("{k}=…"),
                })
                .collect();
            format!("in `{}` with {}", def.name.name, hp.join(", "))
        }
        ModuleKind::Sequential(_) => "in `Sequential`".into(),
    }
}

impl Lowerer {
    /// Inlines a model's body. `args` is `None` for the entry model.
    pub(crate) fn run_model(
        &mut self,
        module: &Module,
        args: Option<CallArgs>,
        span: Span,
    ) -> LResult<Vec<(String, Tensor)>> {
        self.run_model_with_suffix(module, args, span, String::new())
    }

    pub(crate) fn run_model_with_suffix(
        &mut self,
        module: &Module,
        args: Option<CallArgs>,
        span: Span,
        suffix: String,
    ) -> LResult<Vec<(String, Tensor)>> {
        let ModuleKind::Def { def, hparams } = &module.kind else {
            unreachable!("Sequential is chained by the caller")
        };
        // The entry is always a model, and a called cell runs one step (`step_cell`).
        debug_assert_eq!(def.kind, DefKind::Model, "only models are inlined");
        self.enter(span)?;
        let mut frame = Frame {
            vars: hparams.iter().cloned().collect(),
            prefix: module.prefix.clone().unwrap_or_default(),
            suffix,
            batch_axes: 0,
            mode: Mode::Model {
                args,
                next_input: 0,
                outputs: Vec::new(),
            },
            context: context_of(module),
            had_error: false,
        };
        let result = self.block(&def.body, &mut frame);
        self.leave();
        result?;
        let Mode::Model {
            args,
            outputs,
            next_input,
        } = frame.mode
        else {
            unreachable!()
        };
        if frame.had_error {
            return Err(Fail(None));
        }
        if let Some(args) = args {
            if args.positional.len() > next_input {
                return Err(Diagnostic::error(format!(
                    "`{}` takes {next_input} input(s), but {} were given",
                    def.name.name,
                    args.positional.len()
                ))
                .with_label(args.positional[next_input].1, "unexpected input")
                .into());
            }
        }
        if outputs.is_empty() {
            return Err(
                Diagnostic::error(format!("model `{}` has no output", def.name.name))
                    .with_label(def.name.span, "declare one with `output NAME = …`")
                    .into(),
            );
        }
        Ok(outputs)
    }

    /// Runs one step of a cell inline, in the graph being built: `gru(x, h)` binds
    /// the cell's `input`, `state` and `memory` declarations in order and returns
    /// the next states (as torch.nn.GRUCell/LSTMCell return `h'` or `(h', c')`).
    pub(crate) fn step_cell(
        &mut self,
        module: &Module,
        args: Vec<(Tensor, Span)>,
        suffix: String,
        call: Span,
    ) -> LResult<Vec<Tensor>> {
        let ModuleKind::Def { def, .. } = &module.kind else {
            unreachable!("only cells are stepped")
        };
        let n_given = args.len();
        let n_decls = def
            .body
            .iter()
            .filter(|s| {
                matches!(
                    s.kind,
                    StmtKind::Input { .. } | StmtKind::State { .. } | StmtKind::Memory { .. }
                )
            })
            .count();
        if n_decls != n_given {
            return Err(Diagnostic::error(format!(
                "`{}` is a cell: one step of it takes {n_decls} tensor(s) (its inputs, states and memories, in order), but {n_given} were given",
                def.name.name
            ))
            .with_label(call, "called here")
            .with_note(format!(
                "to run it over a sequence, use `scan({}(…), x)` or `rnn({}(…), x, num_layers = …)`",
                def.name.name, def.name.name
            ))
            .into());
        }
        self.enter(call)?;
        let inline = InlineArgs { args, next: 0 };
        let mut frame = Frame::cell(module, suffix, call, vec![], vec![], Some(inline));
        let result = self.block(&def.body, &mut frame);
        self.leave();
        result?;
        if frame.had_error {
            return Err(Fail(None));
        }
        let Mode::Cell {
            states,
            inline: Some(inline),
            ..
        } = frame.mode
        else {
            unreachable!()
        };
        if inline.next != n_given {
            return Err(Diagnostic::error(format!(
                "`{}` takes {} tensor(s) for one step (its inputs, states and memories, in the order it declares them), but {n_given} were given",
                def.name.name, inline.next
            ))
            .with_label(call, "called here")
            .with_label(def.name.span, "cell defined here")
            .into());
        }
        let next = next_states(&states, def)?;
        if next.is_empty() {
            return Err(Diagnostic::error(format!(
                "cell `{}` has no state, so one step of it returns nothing",
                def.name.name
            ))
            .with_label(call, "called here")
            .into());
        }
        Ok(next)
    }

    /// Lowers a cell's body into a new scan-body graph fed with `seq_types` per step
    /// and `memory_types` whole.
    pub(crate) fn run_cell(
        &mut self,
        module: &Module,
        seq_types: Vec<TensorTy>,
        memory_types: Vec<TensorTy>,
        suffix: String,
        call: Span,
    ) -> LResult<CellBody> {
        let ModuleKind::Def { def, .. } = &module.kind else {
            return Err(Diagnostic::error("`Sequential` is not a cell")
                .with_label(call, "expected a cell here")
                .into());
        };
        if def.kind != DefKind::Cell {
            return Err(Diagnostic::error(format!(
                "`{}` is a model, but a recurrence needs a cell",
                def.name.name
            ))
            .with_label(call, "used as the recurrence's cell here")
            .with_label(def.name.span, "defined as a model here")
            .into());
        }
        self.enter(call)?;
        self.graphs.push(Graph::new("body"));
        let mut frame = Frame::cell(module, suffix, call, seq_types, memory_types, None);
        let result = self.block(&def.body, &mut frame);
        self.leave();
        let depth = self.graphs.len();
        let mut graph = self.graphs.pop().expect("the body graph");
        for (_, id) in self.superseded.extract_if(.., |(d, _)| *d == depth) {
            let unread = (0..graph.node(id).results.len() as u32).all(|r| {
                let v = crate::graph::Value::new(id, r);
                graph.users(v).is_empty() && !graph.outputs.iter().any(|(_, o)| *o == v)
            });
            if unread {
                graph.remove_node(id);
            }
        }
        result?;
        if frame.had_error {
            return Err(Fail(None));
        }
        let Mode::Cell {
            seq_types,
            next_seq,
            memory_types,
            next_memory,
            states,
            emits,
            ..
        } = frame.mode
        else {
            unreachable!()
        };
        if next_memory != memory_types.len() {
            return Err(Diagnostic::error(format!(
                "cell `{}` declares {next_memory} memory tensor(s), but {} are given",
                def.name.name,
                memory_types.len()
            ))
            .with_label(call, "run here with `memory = (…)`")
            .with_label(def.name.span, "cell defined here")
            .into());
        }
        if next_seq != seq_types.len() {
            return Err(Diagnostic::error(format!(
                "cell `{}` reads {next_seq} input(s) per step, but {} sequence(s) are given",
                def.name.name,
                seq_types.len()
            ))
            .with_label(call, "run here")
            .with_label(def.name.span, "cell defined here")
            .into());
        }
        for next in next_states(&states, def)? {
            graph.outputs.push(("next".into(), next.value));
        }
        let state_types = states.iter().map(|s| s.ty.clone()).collect();
        for e in &emits {
            graph.outputs.push(("emit".into(), e.value));
        }
        Ok(CellBody { graph, state_types })
    }

    pub(crate) fn block(&mut self, stmts: &[Stmt], frame: &mut Frame) -> LResult<()> {
        for s in stmts {
            if let Err(Fail(d)) = self.stmt(s, frame) {
                if let Some(d) = d {
                    self.diags.push(d);
                }
                frame.had_error = true;
                // Names this statement would have bound stand for "already reported".
                for name in bound_names(s) {
                    frame.vars.insert(name, Val::Poison);
                }
            }
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt, frame: &mut Frame) -> LResult<()> {
        for name in bound_idents(s) {
            refuse_axis_name(name, "value")?;
        }
        match &s.kind {
            StmtKind::Input {
                name,
                ty,
                default_zeros,
            } => self.input_decl(name, ty, *default_zeros, frame),
            StmtKind::State { name, ty } => self.state_decl(name, ty, frame),
            StmtKind::Memory { name, ty } => self.memory_decl(name, ty, frame),
            StmtKind::Param { name, ty } => {
                let dims = self.concrete_dims(ty, frame, &[])?;
                let key = format!("{}{}{}", frame.prefix, name.name, frame.suffix);
                let t = TensorTy::f32(dims);
                if let Some((prev, prev_span)) = self.weights.get(&key) {
                    if *prev != t {
                        return Err(Diagnostic::error(format!(
                            "weight `{key}` is declared as {} here but as {} elsewhere",
                            dims_str(&t.dims),
                            dims_str(&prev.dims)
                        ))
                        .with_label(ty.span, "declared here")
                        .with_label(*prev_span, "and here")
                        .into());
                    }
                } else {
                    self.weights.insert(key.clone(), (t.clone(), ty.span));
                }
                let node = self.graph().add_node(Op::Weight { key }, &[], vec![t]);
                self.graph().node_mut(node).span = Some(name.span);
                let value = crate::graph::Value::new(node, 0);
                frame.vars.insert(
                    name.name.clone(),
                    Val::Tensor(Tensor {
                        value,
                        is_param: true,
                    }),
                );
                Ok(())
            }
            StmtKind::Layer { name, value } => {
                let v = self.eval(value, frame)?;
                let Val::Module(m) = v else {
                    let hint = match &v {
                        Val::Def(d) => format!("call it to give its hyperparameters: `{}(…)`", d.name.name),
                        _ => "a layer is a model or cell called with its hyperparameters, e.g. `Linear(16, 4)`".into(),
                    };
                    return Err(Diagnostic::error(format!(
                        "`layer {}` needs a module, found {}",
                        name.name,
                        self.describe(&v)
                    ))
                    .with_label(value.span, "not a module")
                    .with_note(hint)
                    .into());
                };
                let mut named = (*m).clone();
                named.prefix = Some(format!("{}{}.", frame.prefix, name.name));
                frame
                    .vars
                    .insert(name.name.clone(), Val::Module(std::rc::Rc::new(named)));
                Ok(())
            }
            StmtKind::Output { name, value } => {
                let v = match value {
                    Some(e) => self.eval(e, frame)?,
                    None => self.lookup(&name.name, name.span, frame)?,
                };
                let span = value.as_ref().map(|e| e.span).unwrap_or(name.span);
                let t = self.tensor_of(v, span)?;
                let Mode::Model { outputs, .. } = &mut frame.mode else {
                    return Err(Diagnostic::error(
                        "`output` belongs in a model; a cell uses `emit`",
                    )
                    .with_label(name.span, "in a cell")
                    .into());
                };
                if outputs.iter().any(|(n, _)| *n == name.name) {
                    return Err(Diagnostic::error(format!(
                        "output `{}` is declared twice",
                        name.name
                    ))
                    .with_label(name.span, "declared again here")
                    .into());
                }
                outputs.push((name.name.clone(), t));
                Ok(())
            }
            StmtKind::Emit(e) => {
                let v = self.eval(e, frame)?;
                let t = self.tensor_of(v, e.span)?;
                let Mode::Cell { emits, .. } = &mut frame.mode else {
                    return Err(Diagnostic::error(
                        "`emit` belongs in a cell; a model uses `output`",
                    )
                    .with_label(e.span, "in a model")
                    .into());
                };
                let ty = self.ty(t);
                // A scan stacks what each step emits for every example; a value
                // without the (implicit) batch axis has no per-example rows to stack.
                if ty.dims.first() != Some(&Dim::Batch) {
                    return Err(Diagnostic::error(format!(
                        "`emit` takes a per-example value, but this one is the same for every example ({ty} per step: it reads neither an input nor a state)"
                    ))
                    .with_label(e.span, format!("this is {ty}"))
                    .with_note("a step emits one value per example; to emit a parameter for each of them, combine it with a per-example value, as in `emit u + 0 * h`")
                    .into());
                }
                emits.push(t);
                Ok(())
            }
            StmtKind::Assert { cond, message } => match self.eval(cond, frame)? {
                Val::Bool(true) => Ok(()),
                Val::Bool(false) => Err(Diagnostic::error(
                    message.clone().unwrap_or_else(|| "assertion failed".into()),
                )
                .with_label(cond.span, "this is false")
                .with_note(frame.context.clone())
                .into()),
                v => Err(Diagnostic::error(format!(
                    "`assert` needs a bool, found {}",
                    self.describe(&v)
                ))
                .with_label(cond.span, "not a bool")
                .into()),
            },
            StmtKind::If { cond, then, els } => {
                let branch = match self.eval(cond, frame)? {
                    Val::Bool(b) => b,
                    v => {
                        return Err(Diagnostic::error(format!(
                            "an `if` condition must be a bool known from hyperparameters, found {}",
                            self.describe(&v)
                        ))
                        .with_label(cond.span, "not a bool")
                        .into())
                    }
                };
                self.block(if branch { then } else { els }, frame)
            }
            StmtKind::Assign { targets, value } => {
                let v = self.eval(value, frame)?;
                let values = if targets.len() == 1 {
                    vec![v]
                } else {
                    match v {
                        Val::Tuple(items) if items.len() == targets.len() => items,
                        Val::Poison => return Err(Fail(None)),
                        other => {
                            let n = if let Val::Tuple(items) = &other {
                                items.len()
                            } else {
                                1
                            };
                            let d = Diagnostic::error(format!(
                                "{} names are assigned, but the value has {n}",
                                targets.len()
                            ))
                            .with_label(value.span, format!("this is {}", self.describe(&other)));
                            return Err(if is_scan_call(value) {
                                d.with_note(
                                    "`scan` returns what the cell emits (each stacked over time), then its final states; a cell without `emit` returns only its states: did the cell forget `emit`?",
                                )
                            } else {
                                d
                            }
                            .into());
                        }
                    }
                };
                for (t, v) in targets.iter().zip(values) {
                    self.bind_target(t, v, frame)?;
                }
                Ok(())
            }
        }
    }

    fn bind_target(&mut self, t: &ast::Ident, v: Val, frame: &mut Frame) -> LResult<()> {
        if let Some(base) = t.name.strip_suffix('\'') {
            let tensor = self.tensor_of(v.clone(), t.span)?;
            let ty = self.ty(tensor).clone();
            let Mode::Cell { states, .. } = &mut frame.mode else {
                return Err(Diagnostic::error(format!(
                    "`{}` names the next value of a state, but models have no states",
                    t.name
                ))
                .with_label(t.span, "in a model")
                .into());
            };
            let Some(slot) = states.iter_mut().find(|s| s.name == base) else {
                return Err(Diagnostic::error(format!(
                    "`{}` is assigned, but there is no state `{base}`",
                    t.name
                ))
                .with_label(t.span, "no such state")
                .with_note(format!("declare it with `state {base}: [n]`"))
                .into());
            };
            if slot.next.is_some() {
                return Err(Diagnostic::error(format!(
                    "the next value of state `{base}` is assigned twice"
                ))
                .with_label(t.span, "assigned again here")
                .into());
            }
            if ty != slot.ty {
                return Err(Diagnostic::error(format!(
                    "the next value of state `{base}` is {} but the state is declared {}",
                    ty, slot.ty
                ))
                .with_label(t.span, format!("this is {ty}"))
                .with_label(slot.span, "state declared here")
                .into());
            }
            slot.next = Some(tensor);
        }
        frame.vars.insert(t.name.clone(), v);
        Ok(())
    }

    fn input_decl(
        &mut self,
        name: &ast::Ident,
        ty: &TensorType,
        zeros: bool,
        frame: &mut Frame,
    ) -> LResult<()> {
        let dtype = dtype_of(ty);
        let inline = frame.is_inline();
        match &mut frame.mode {
            Mode::Constants => unreachable!("no statements in constant frames"),
            Mode::Cell { .. } if inline => {
                let dims = self.cell_dims(ty, frame)?;
                let t = self.inline_arg(name, TensorTy { dtype, dims }, ty.span, frame)?;
                frame.vars.insert(name.name.clone(), Val::Tensor(t));
                Ok(())
            }
            Mode::Cell { .. } => {
                let dims = self.cell_dims(ty, frame)?;
                let want = TensorTy { dtype, dims };
                let Mode::Cell {
                    seq_types,
                    next_seq,
                    call,
                    ..
                } = &mut frame.mode
                else {
                    unreachable!()
                };
                let idx = *next_seq;
                *next_seq += 1;
                let Some(got) = seq_types.get(idx) else {
                    return Err(Diagnostic::error(format!(
                        "the cell reads input `{}`, but no sequence is given for it",
                        name.name
                    ))
                    .with_label(*call, "the cell runs here")
                    .with_label(name.span, "input declared here")
                    .into());
                };
                if *got != want {
                    return Err(Diagnostic::error(format!(
                        "cell input `{}` is declared {want}, but each step of the sequence is {got}",
                        name.name
                    ))
                    .with_label(*call, format!("the sequence gives {got} per step"))
                    .with_label(ty.span, "declared here")
                    .into());
                }
                let node = self.graph().add_node(
                    Op::Arg {
                        kind: ArgKind::Seq,
                        index: idx,
                    },
                    &[],
                    vec![want],
                );
                self.graph().node_mut(node).span = Some(name.span);
                frame.vars.insert(
                    name.name.clone(),
                    Val::Tensor(Tensor::new(crate::graph::Value::new(node, 0))),
                );
                Ok(())
            }
            Mode::Model { args: None, .. } => {
                let dims = self.concrete_dims(ty, frame, &MODEL_DIMS)?;
                let node = self.graph().add_node(
                    Op::Input {
                        name: name.name.clone(),
                        zeros,
                    },
                    &[],
                    vec![TensorTy { dtype, dims }],
                );
                self.graph().node_mut(node).span = Some(name.span);
                frame.vars.insert(
                    name.name.clone(),
                    Val::Tensor(Tensor::new(crate::graph::Value::new(node, 0))),
                );
                Ok(())
            }
            Mode::Model { args: Some(_), .. } => {
                let pattern = self.pattern_dims(ty, frame)?;
                let Mode::Model {
                    args: Some(args),
                    next_input,
                    ..
                } = &mut frame.mode
                else {
                    unreachable!()
                };
                let idx = *next_input;
                *next_input += 1;
                let call = args.call;
                let given = if idx < args.positional.len() {
                    Some(args.positional[idx])
                } else {
                    args.named
                        .iter()
                        .position(|(n, _, _)| *n == name.name)
                        .map(|i| {
                            let (_, t, s) = args.named.remove(i);
                            (t, s)
                        })
                };
                let t = match given {
                    Some((t, span)) => {
                        let got = self.ty(t).clone();
                        if got.dtype != dtype || !matches_pattern(&pattern, &got.dims) {
                            return Err(Diagnostic::error(format!(
                                "input `{}` must be {}, but {got} is given",
                                name.name,
                                pattern_str(dtype, &pattern)
                            ))
                            .with_label(span, format!("this is {got}"))
                            .with_label(ty.span, "declared here")
                            .into());
                        }
                        t
                    }
                    None if zeros => {
                        let dims = self.concrete_dims(ty, frame, &MODEL_DIMS)?;
                        let node =
                            self.graph()
                                .add_node(Op::Zeros, &[], vec![TensorTy { dtype, dims }]);
                        Tensor::new(crate::graph::Value::new(node, 0))
                    }
                    None => {
                        return Err(Diagnostic::error(format!("missing input `{}`", name.name))
                            .with_label(call, "called here")
                            .with_label(name.span, "declared here without `= zeros`")
                            .into())
                    }
                };
                frame.vars.insert(
                    name.name.clone(),
                    Val::Tensor(Tensor {
                        value: t.value,
                        is_param: false,
                    }),
                );
                Ok(())
            }
        }
    }

    fn state_decl(&mut self, name: &ast::Ident, ty: &TensorType, frame: &mut Frame) -> LResult<()> {
        if !matches!(frame.mode, Mode::Cell { .. }) {
            return Err(Diagnostic::error(
                "`state` belongs in a cell; a model passes states as inputs",
            )
            .with_label(name.span, "in a model")
            .into());
        }
        let dims = self.cell_dims(ty, frame)?;
        let t = TensorTy::f32(dims);
        let value = if frame.is_inline() {
            self.inline_arg(name, t.clone(), ty.span, frame)?
        } else {
            let Mode::Cell { states, .. } = &frame.mode else {
                unreachable!()
            };
            let index = states.len();
            let node = self.graph().add_node(
                Op::Arg {
                    kind: ArgKind::State,
                    index,
                },
                &[],
                vec![t.clone()],
            );
            self.graph().node_mut(node).span = Some(name.span);
            Tensor::new(crate::graph::Value::new(node, 0))
        };
        let Mode::Cell { states, .. } = &mut frame.mode else {
            unreachable!()
        };
        states.push(StateSlot {
            name: name.name.clone(),
            ty: t,
            next: None,
            span: name.span,
        });
        frame.vars.insert(name.name.clone(), Val::Tensor(value));
        Ok(())
    }

    /// `memory m: [S, n]`: in a recurrence, the next of the tensors given with
    /// `memory = (…)`, read whole at every step.
    fn memory_decl(
        &mut self,
        name: &ast::Ident,
        ty: &TensorType,
        frame: &mut Frame,
    ) -> LResult<()> {
        if !matches!(frame.mode, Mode::Cell { .. }) {
            return Err(Diagnostic::error(
                "`memory` belongs in a cell; a model passes such tensors as inputs",
            )
            .with_label(name.span, "in a model")
            .into());
        }
        let mut dims = vec![Dim::Batch];
        dims.extend(self.concrete_dims(ty, frame, &[Dim::Source])?);
        let want = TensorTy {
            dtype: dtype_of(ty),
            dims,
        };
        if frame.is_inline() {
            let t = self.inline_arg(name, want, ty.span, frame)?;
            frame.vars.insert(name.name.clone(), Val::Tensor(t));
            return Ok(());
        }
        let Mode::Cell {
            memory_types,
            next_memory,
            call,
            ..
        } = &mut frame.mode
        else {
            unreachable!()
        };
        let index = *next_memory;
        *next_memory += 1;
        let call = *call;
        let Some(got) = memory_types.get(index).cloned() else {
            return Err(Diagnostic::error(format!(
                "the cell reads memory `{}`, but no memory is given for it",
                name.name
            ))
            .with_label(call, "pass it here with `memory = (…)`")
            .with_label(name.span, "memory declared here")
            .into());
        };
        if got != want {
            return Err(Diagnostic::error(format!(
                "cell memory `{}` is declared {want}, but {got} is given",
                name.name
            ))
            .with_label(call, format!("the memory given is {got}"))
            .with_label(ty.span, "declared here")
            .into());
        }
        let node = self.graph().add_node(
            Op::Arg {
                kind: ArgKind::Memory,
                index,
            },
            &[],
            vec![want],
        );
        self.graph().node_mut(node).span = Some(name.span);
        frame.vars.insert(
            name.name.clone(),
            Val::Tensor(Tensor::new(crate::graph::Value::new(node, 0))),
        );
        Ok(())
    }

    /// The next tensor of a one-step cell call, checked against its declaration.
    fn inline_arg(
        &mut self,
        name: &ast::Ident,
        want: TensorTy,
        decl: Span,
        frame: &mut Frame,
    ) -> LResult<Tensor> {
        let Mode::Cell {
            inline: Some(inline),
            call,
            ..
        } = &mut frame.mode
        else {
            unreachable!("only for inline cells")
        };
        let call = *call;
        let index = inline.next;
        inline.next += 1;
        let Some((t, span)) = inline.args.get(index).copied() else {
            return Err(Diagnostic::error(format!(
                "one step of this cell needs a tensor for `{}` (argument {})",
                name.name,
                index + 1
            ))
            .with_label(call, "called here")
            .with_label(name.span, "declared here")
            .into());
        };
        let got = self.ty(t).clone();
        if got != want {
            return Err(Diagnostic::error(format!(
                "`{}` is declared {want}, but {got} is given",
                name.name
            ))
            .with_label(span, format!("this is {got}"))
            .with_label(decl, "declared here")
            .into());
        }
        Ok(t)
    }

    /// A cell's per-example shape with the implicit batch axis put in front.
    fn cell_dims(&mut self, ty: &TensorType, frame: &mut Frame) -> LResult<Vec<Dim>> {
        let mut dims = vec![Dim::Batch];
        dims.extend(self.concrete_dims(ty, frame, &[])?);
        Ok(dims)
    }

    /// Dims of a declared type with no `...`; of the symbolic dims only those in
    /// `symbolic` (a model input takes `B`, `T`, `S`; a memory `S`; parameters and
    /// cell inputs and states none).
    pub(crate) fn concrete_dims(
        &mut self,
        ty: &TensorType,
        frame: &mut Frame,
        symbolic: &[Dim],
    ) -> LResult<Vec<Dim>> {
        let mut out = Vec::new();
        for d in &ty.dims {
            match d {
                DimExpr::Ellipsis(s) => {
                    return Err(Diagnostic::error(
                        "`...` is only allowed in the inputs of a model used as a layer",
                    )
                    .with_label(*s, "here")
                    .with_note(
                        "the model rnnc runs needs every input's full shape, e.g. [B, T, 16]",
                    )
                    .into())
                }
                DimExpr::Expr(e) => {
                    let dim = self.dim(e, frame)?;
                    if !matches!(dim, Dim::Fixed(_)) && !symbolic.contains(&dim) {
                        return Err(Diagnostic::error(format!("`{dim}` cannot appear here"))
                            .with_label(e.span, "a symbolic dim")
                            .with_note(if symbolic.contains(&Dim::Source) {
                                "a memory's shape is per example and fixed over time: use `S` or sizes"
                            } else if frame.batch_axes > 0 {
                                "a cell's shapes are per example: the batch axis is implicit"
                            } else {
                                "parameters have fixed shapes"
                            })
                            .into());
                    }
                    out.push(dim);
                }
            }
        }
        Ok(out)
    }

    fn pattern_dims(&mut self, ty: &TensorType, frame: &mut Frame) -> LResult<Vec<Option<Dim>>> {
        let mut out = Vec::new();
        for (i, d) in ty.dims.iter().enumerate() {
            match d {
                DimExpr::Ellipsis(_) if i == 0 => out.push(None),
                DimExpr::Ellipsis(s) => {
                    return Err(Diagnostic::error("`...` must come first in a shape")
                        .with_label(*s, "here")
                        .into())
                }
                DimExpr::Expr(e) => out.push(Some(self.dim(e, frame)?)),
            }
        }
        Ok(out)
    }

    /// One dim: `B`, `T`, or an expression that evaluates to a positive int.
    fn dim(&mut self, e: &ast::Expr, frame: &mut Frame) -> LResult<Dim> {
        if let ast::ExprKind::Name(n) = &e.kind {
            if !frame.vars.contains_key(n) {
                match n.as_str() {
                    "B" => return Ok(Dim::Batch),
                    "T" => return Ok(Dim::Time),
                    "S" => return Ok(Dim::Source),
                    _ => {}
                }
            }
        }
        match self.eval(e, frame)? {
            Val::Int(n) if n > 0 => Ok(Dim::Fixed(n as usize)),
            Val::Float(f) if f.fract() == 0.0 && f > 0.0 && f < 1e12 => Ok(Dim::Fixed(f as usize)),
            v => Err(Diagnostic::error(format!(
                "a dimension must be a positive int, found {}",
                self.describe(&v)
            ))
            .with_label(e.span, "this dimension")
            .with_note(frame.context.clone())
            .into()),
        }
    }

    pub(crate) fn describe(&self, v: &Val) -> String {
        let g = self.graphs.last().expect("graph");
        v.describe(|val| g.ty(val).to_string())
    }
}

fn matches_pattern(pattern: &[Option<Dim>], dims: &[Dim]) -> bool {
    match pattern.first() {
        Some(None) => {
            let rest = &pattern[1..];
            dims.len() >= rest.len()
                && rest
                    .iter()
                    .zip(&dims[dims.len() - rest.len()..])
                    .all(|(p, d)| *p == Some(*d))
        }
        _ => pattern.len() == dims.len() && pattern.iter().zip(dims).all(|(p, d)| *p == Some(*d)),
    }
}

fn pattern_str(dtype: DType, pattern: &[Option<Dim>]) -> String {
    let parts: Vec<String> = pattern
        .iter()
        .map(|p| p.map(|d| d.to_string()).unwrap_or_else(|| "...".into()))
        .collect();
    format!("{dtype}[{}]", parts.join(", "))
}

/// The names a statement binds, poisoned when it fails so that later uses stay quiet.
fn bound_names(s: &Stmt) -> Vec<String> {
    bound_idents(s)
        .into_iter()
        .map(|i| i.name.clone())
        .collect()
}

fn bound_idents(s: &Stmt) -> Vec<&ast::Ident> {
    match &s.kind {
        StmtKind::Input { name, .. }
        | StmtKind::State { name, .. }
        | StmtKind::Memory { name, .. }
        | StmtKind::Param { name, .. }
        | StmtKind::Layer { name, .. } => vec![name],
        StmtKind::Assign { targets, .. } => targets.iter().collect(),
        _ => Vec::new(),
    }
}

/// `B`, `T` and `S` name the batch, time and source axes in every shape; a
/// hyperparameter or a value of that name would silently take the axis's place.
pub(crate) fn refuse_axis_name(name: &ast::Ident, what: &str) -> LResult<()> {
    let axis = match name.name.as_str() {
        "B" => "batch",
        "T" => "time",
        "S" => "source-length",
        _ => return Ok(()),
    };
    Err(Diagnostic::error(format!(
        "`{}` cannot name a {what}: it names the {axis} axis in shapes",
        name.name
    ))
    .with_label(name.span, "reserved name")
    .with_note(
        "`B`, `T` and `S` are reserved for the batch, time and source axes; choose another name",
    )
    .into())
}

/// The symbolic dims a model's inputs may use.
const MODEL_DIMS: [Dim; 3] = [Dim::Batch, Dim::Time, Dim::Source];

/// A declared type's dtype: f32 unless it says `i64`.
fn dtype_of(ty: &TensorType) -> DType {
    match ty.dtype {
        Some(ast::DType::I64) => DType::I64,
        _ => DType::F32,
    }
}

/// The next value of every state, in order; an error names a state never assigned.
fn next_states(states: &[StateSlot], def: &ast::Def) -> LResult<Vec<Tensor>> {
    states
        .iter()
        .map(|s| {
            s.next.ok_or_else(|| {
                Diagnostic::error(format!(
                    "state `{}` of cell `{}` is never updated",
                    s.name, def.name.name
                ))
                .with_label(s.span, "declared here")
                .with_note(format!("assign its next value with `{}' = …`", s.name))
                .into()
            })
        })
        .collect()
}

/// Whether `value` is a call of the `scan` builtin.
fn is_scan_call(value: &ast::Expr) -> bool {
    matches!(&value.kind, ast::ExprKind::Call { callee, .. }
        if matches!(&callee.kind, ast::ExprKind::Name(n) if n == "scan"))
}
