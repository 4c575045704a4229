//! Lowering: AST → verified graph. Hyperparameters are bound first, so every shape
//! is concrete except the symbolic `B` and `T`; layers are inlined with their weight
//! keys prefixed (`lstm.weight_ih_l0`), and each recurrence becomes a `scan` node.

mod activations;
mod body;
mod builtins;
mod decode;
mod expr;

pub use expr::BUILTINS;
mod value;

pub use value::HValue;

use crate::graph::Graph;
use crate::types::TensorTy;
use crate::verify::verify;
use rnnc_syntax::ast::{Def, Expr, HType};
use rnnc_syntax::{Diagnostic, Program, Span};
use std::collections::HashMap;
use std::rc::Rc;
use value::{Fail, LResult, Module, Tensor, Val};

/// How deep modules may instantiate each other before we call it recursion.
const MAX_DEPTH: usize = 64;

/// Lowers the program's entry model with the given hyperparameters (by name).
pub fn lower(program: &Program, params: &[(String, HValue)]) -> Result<Graph, Vec<Diagnostic>> {
    let mut cx = Lowerer {
        defs: program
            .defs
            .iter()
            .map(|(k, d)| (k.clone(), Rc::new(d.clone())))
            .collect(),
        graphs: vec![Graph::new(program.entry.name.name.clone())],
        diags: Vec::new(),
        weights: HashMap::new(),
        depth: 0,
        superseded: Vec::new(),
    };
    let entry = Rc::new(program.entry.clone());
    match cx.entry_hparams(&entry, params) {
        Ok(hparams) => {
            let module = Module {
                kind: value::ModuleKind::Def {
                    def: entry.clone(),
                    hparams,
                },
                prefix: Some(String::new()),
                span: entry.name.span,
            };
            match cx.run_model(&module, None, entry.span) {
                Ok(outputs) => {
                    let g = cx.graphs.last_mut().expect("root graph");
                    for (name, t) in outputs {
                        g.outputs.push((name, t.value));
                    }
                }
                Err(Fail(Some(d))) => cx.diags.push(d),
                Err(Fail(None)) => {}
            }
        }
        Err(mut ds) => cx.diags.append(&mut ds),
    }
    if !cx.diags.is_empty() {
        return Err(cx.diags);
    }
    let g = cx.graphs.pop().expect("root graph");
    if let Err(errors) = verify(&g) {
        // Lowering built something the verifier rejects: a bug in rnnc, not in the model.
        let mut d = Diagnostic::error("internal error: the lowered graph does not verify")
            .with_label(program.entry.name.span, "while lowering this model");
        for e in errors {
            d = d.with_note(e);
        }
        return Err(vec![d]);
    }
    Ok(g)
}

pub(crate) struct Lowerer {
    defs: HashMap<String, Rc<Def>>,
    /// The graph being built is the last; scan bodies push their own.
    graphs: Vec<Graph>,
    diags: Vec<Diagnostic>,
    /// Every weight key declared so far, to catch one key declared with two shapes.
    weights: HashMap<String, (TensorTy, Span)>,
    depth: usize,
    /// Nodes that lowering itself replaced by another form (an index by a slice
    /// for per-example broadcasting), with the depth of the graph that holds them:
    /// removed when that body is finished if nothing came to read them.
    superseded: Vec<(usize, crate::graph::NodeId)>,
}

impl Lowerer {
    fn graph(&mut self) -> &mut Graph {
        self.graphs.last_mut().expect("a graph is always open")
    }

    fn ty(&self, t: Tensor) -> &TensorTy {
        self.graphs
            .last()
            .expect("a graph is always open")
            .ty(t.value)
    }

    /// Binds the entry model's hyperparameters from `--param`/config values.
    fn entry_hparams(
        &mut self,
        def: &Rc<Def>,
        params: &[(String, HValue)],
    ) -> Result<Vec<(String, Val)>, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        for (k, _) in params {
            if !def.hparams.iter().any(|h| h.name.name == *k) {
                let known: Vec<String> = def.hparams.iter().map(|h| h.name.name.clone()).collect();
                let mut d = Diagnostic::error(format!(
                    "model `{}` has no hyperparameter `{k}`",
                    def.name.name
                ))
                .with_label(
                    def.name.span,
                    "this model's hyperparameters are declared here",
                );
                d = d.with_note(if known.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("it takes: {}", known.join(", "))
                });
                diags.push(d);
            }
        }
        let named: Vec<(String, Val, Span)> = params
            .iter()
            .filter(|(k, _)| def.hparams.iter().any(|h| h.name.name == *k))
            .map(|(k, v)| (k.clone(), Val::from_h(v), def.name.span))
            .collect();
        match self.bind_hparams(def, Vec::new(), named, def.name.span, true) {
            Ok(h) if diags.is_empty() => Ok(h),
            Ok(_) => Err(diags),
            Err(Fail(d)) => {
                diags.extend(d);
                Err(diags)
            }
        }
    }

    /// Binds positional and named arguments to a definition's hyperparameters,
    /// filling defaults (which may use earlier hyperparameters) and checking types.
    fn bind_hparams(
        &mut self,
        def: &Rc<Def>,
        positional: Vec<(Val, Span)>,
        named: Vec<(String, Val, Span)>,
        call: Span,
        from_cli: bool,
    ) -> LResult<Vec<(String, Val)>> {
        for h in &def.hparams {
            body::refuse_axis_name(&h.name, "hyperparameter")?;
        }
        if positional.len() > def.hparams.len() {
            return Err(Diagnostic::error(format!(
                "`{}` takes {} hyperparameter(s), but {} were given",
                def.name.name,
                def.hparams.len(),
                positional.len()
            ))
            .with_label(positional[def.hparams.len()].1, "unexpected argument")
            .with_label(def.name.span, "defined here")
            .into());
        }
        let mut given: HashMap<String, (Val, Span)> = HashMap::new();
        for (h, (v, s)) in def.hparams.iter().zip(positional) {
            given.insert(h.name.name.clone(), (v, s));
        }
        for (k, v, s) in named {
            if !def.hparams.iter().any(|h| h.name.name == k) {
                let known: Vec<&str> = def.hparams.iter().map(|h| h.name.name.as_str()).collect();
                return Err(Diagnostic::error(format!(
                    "`{}` has no hyperparameter `{k}`",
                    def.name.name
                ))
                .with_label(s, "unknown name")
                .with_note(format!("it takes: {}", known.join(", ")))
                .into());
            }
            if given.insert(k.clone(), (v, s)).is_some() {
                return Err(
                    Diagnostic::error(format!("hyperparameter `{k}` is given twice"))
                        .with_label(s, "given again here")
                        .into(),
                );
            }
        }
        let mut bound: Vec<(String, Val)> = Vec::new();
        for h in &def.hparams {
            let (v, span) = match given.remove(&h.name.name) {
                Some(v) => v,
                None => match &h.default {
                    Some(e) => {
                        let scope: HashMap<String, Val> = bound.iter().cloned().collect();
                        (self.const_eval(e, &scope)?, e.span)
                    }
                    None => {
                        let how = if from_cli {
                            format!(
                                "pass it with `--param {}=…` or in a `--config` file",
                                h.name.name
                            )
                        } else {
                            format!("pass `{} = …` here", h.name.name)
                        };
                        return Err(Diagnostic::error(format!(
                            "missing hyperparameter `{}` of `{}`",
                            h.name.name, def.name.name
                        ))
                        .with_label(call, "needed here")
                        .with_label(h.span, "declared here without a default")
                        .with_note(how)
                        .into());
                    }
                },
            };
            let v = match (h.ty, v) {
                (HType::Int, Val::Int(i)) => Val::Int(i),
                (HType::Float, Val::Int(i)) => Val::Float(i as f64),
                (HType::Float, Val::Float(f)) => Val::Float(f),
                (HType::Bool, Val::Bool(b)) => Val::Bool(b),
                (HType::Str, Val::Str(s)) => Val::Str(s),
                (_, Val::Poison) => return Err(Fail(None)),
                (ty, other) => {
                    let desc = other.describe(|_| String::new());
                    return Err(Diagnostic::error(format!(
                        "hyperparameter `{}` of `{}` is {} {}, not {desc}",
                        h.name.name,
                        def.name.name,
                        if ty == HType::Int { "an" } else { "a" },
                        ty.as_str()
                    ))
                    .with_label(span, "given here")
                    .with_label(h.span, "declared here")
                    .into());
                }
            };
            bound.push((h.name.name.clone(), v));
        }
        Ok(bound)
    }

    /// Evaluates a hyperparameter default: only constants and earlier hyperparameters.
    fn const_eval(&mut self, e: &Expr, scope: &HashMap<String, Val>) -> LResult<Val> {
        let mut frame = body::Frame::constants(scope.clone());
        let v = self.eval(e, &mut frame)?;
        match v {
            Val::Int(_) | Val::Float(_) | Val::Bool(_) | Val::Str(_) => Ok(v),
            other => Err(Diagnostic::error(format!(
                "a default must be a number, flag or string, not {}",
                other.describe(|_| String::new())
            ))
            .with_label(e.span, "here")
            .into()),
        }
    }

    fn enter(&mut self, span: Span) -> LResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                Diagnostic::error("modules instantiate each other without end")
                    .with_label(span, "this instantiation recurses")
                    .with_note(format!(
                        "more than {MAX_DEPTH} nested layers; a model cannot contain itself"
                    ))
                    .into(),
            );
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }
}
