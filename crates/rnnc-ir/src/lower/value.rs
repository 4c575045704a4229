//! Values during lowering: compile-time numbers, strings and flags (hyperparameters),
//! IR tensors, tuples, and modules (cells and models bound to hyperparameters).

use crate::graph::Value;
use rnnc_syntax::ast::Def;
use rnnc_syntax::{Diagnostic, Span};
use std::fmt;
use std::rc::Rc;

/// A hyperparameter value as given on the command line or in a config file.
#[derive(Clone, Debug, PartialEq)]
pub enum HValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl fmt::Display for HValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HValue::Int(v) => write!(f, "{v}"),
            HValue::Float(v) => write!(f, "{v:?}"),
            HValue::Bool(v) => write!(f, "{v}"),
            HValue::Str(v) => write!(f, "{v:?}"),
        }
    }
}

/// An IR value plus whether it is a parameter read directly: `W @ x` with a 2-D
/// parameter `W` applies `W` to the feature axis of `x`, as papers write it.
#[derive(Clone, Copy, Debug)]
pub struct Tensor {
    pub value: Value,
    pub is_param: bool,
}

impl Tensor {
    pub fn new(value: Value) -> Self {
        Tensor {
            value,
            is_param: false,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Val {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Tensor(Tensor),
    Tuple(Vec<Val>),
    /// `[a, b]`: becomes a concatenation along the last axis when used as a tensor.
    List(Vec<Val>),
    /// A cell or model definition, not yet given its hyperparameters.
    Def(Rc<Def>),
    Builtin(&'static str),
    Module(Rc<Module>),
    /// Stands for a value whose definition failed; its error is already reported.
    Poison,
}

impl Val {
    /// A short description for messages: "an int", "a tensor f32[B, 16]"…
    pub fn describe(&self, ty: impl Fn(Value) -> String) -> String {
        match self {
            Val::Int(v) => format!("the int {v}"),
            Val::Float(v) => format!("the float {v}"),
            Val::Bool(v) => format!("the bool {v}"),
            Val::Str(s) => format!("the string {s:?}"),
            Val::Tensor(t) => format!("a tensor {}", ty(t.value)),
            Val::Tuple(v) => format!("a tuple of {} values", v.len()),
            Val::List(v) => format!("a list of {} values", v.len()),
            Val::Def(d) => format!("the definition `{}`", d.name.name),
            Val::Builtin(b) => format!("the built-in function `{b}`"),
            Val::Module(m) => format!("the module `{}`", m.display_name()),
            Val::Poison => "an invalid value".into(),
        }
    }

    pub fn from_h(h: &HValue) -> Val {
        match h {
            HValue::Int(v) => Val::Int(*v),
            HValue::Float(v) => Val::Float(*v),
            HValue::Bool(v) => Val::Bool(*v),
            HValue::Str(v) => Val::Str(v.clone()),
        }
    }
}

/// A cell or model with bound hyperparameters, or a `Sequential` of modules.
/// `prefix` is set by `layer NAME = …`: the module's weights live under `NAME.`.
#[derive(Clone, Debug)]
pub struct Module {
    pub kind: ModuleKind,
    pub prefix: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ModuleKind {
    Def {
        def: Rc<Def>,
        hparams: Vec<(String, Val)>,
    },
    Sequential(Vec<Rc<Module>>),
}

impl Module {
    pub fn display_name(&self) -> String {
        match &self.kind {
            ModuleKind::Def { def, .. } => def.name.name.clone(),
            ModuleKind::Sequential(_) => "Sequential".into(),
        }
    }
}

/// A lowering failure: a diagnostic, or `None` when the cause was already reported.
#[derive(Debug)]
pub struct Fail(pub Option<Diagnostic>);

impl From<Diagnostic> for Fail {
    fn from(d: Diagnostic) -> Self {
        Fail(Some(d))
    }
}

pub type LResult<T> = Result<T, Fail>;
