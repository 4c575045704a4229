//! The abstract syntax tree of a `.rnn` file. Every node keeps its [`Span`].

use crate::source::Span;

/// A parsed source file.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import(Import),
    Def(Def),
}

/// `import "std/lstm.rnn"`: makes every cell and model of that file visible.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub path: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    /// One time step, written as equations; run over time by `scan` or `rnn`.
    Cell,
    /// A whole network over tensors with batch (and time) axes.
    Model,
}

/// A `cell` or `model` definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Def {
    pub kind: DefKind,
    pub name: Ident,
    pub hparams: Vec<HParam>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HType {
    Int,
    Float,
    Bool,
    Str,
}

impl HType {
    pub fn as_str(self) -> &'static str {
        match self {
            HType::Int => "int",
            HType::Float => "float",
            HType::Bool => "bool",
            HType::Str => "str",
        }
    }
}

/// A hyperparameter: `hidden_size: int` or `num_layers: int = 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct HParam {
    pub name: Ident,
    pub ty: HType,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `input x: [B, T, n]`, optionally `= zeros` when the caller may leave it out.
    Input {
        name: Ident,
        ty: TensorType,
        default_zeros: bool,
    },
    /// `state h: [n]` (cells only): a value carried from one time step to the next.
    State { name: Ident, ty: TensorType },
    /// `memory m: [S, n]` (cells only): a tensor every step reads whole, such as the
    /// encoder states an attention looks at.
    Memory { name: Ident, ty: TensorType },
    /// `param weight: [m, n]`: a weight tensor loaded by key.
    Param { name: Ident, ty: TensorType },
    /// `layer fc = Linear(a, b)`: a sub-model whose weights live under `fc.`.
    Layer { name: Ident, value: Expr },
    /// `output y = expr` (models), or `output y` for a value already named `y`.
    Output { name: Ident, value: Option<Expr> },
    /// `emit h'` (cells): the per-step output collected over time.
    Emit(Expr),
    /// `assert cond, "message"`: checked when hyperparameters are bound.
    Assert { cond: Expr, message: Option<String> },
    /// `if cond { … } else { … }`, decided when hyperparameters are bound.
    If {
        cond: Expr,
        then: Vec<Stmt>,
        els: Vec<Stmt>,
    },
    /// `a = expr` or `i, f, g, o = chunk(gates, 4)`.
    Assign { targets: Vec<Ident>, value: Expr },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    I64,
}

/// `f32[B, T, n]`; the dtype defaults to f32.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorType {
    pub dtype: Option<DType>,
    pub dims: Vec<DimExpr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    /// `...`: any number of leading axes (only in inputs of layers).
    Ellipsis(Span),
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    /// `%`: the remainder of floor division, as in Python (numbers only).
    Rem,
    /// `**`: power, right-associative and tighter than unary minus, as in Python.
    Pow,
    MatMul,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Pow => "**",
            BinOp::MatMul => "@",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Name(String),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Index {
        base: Box<Expr>,
        items: Vec<IndexItem>,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
    },
    Tuple(Vec<Expr>),
    /// `[h, x]`: concatenation along the last (feature) axis.
    List(Vec<Expr>),
}

/// A call argument, positional or `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    Expr(Expr),
    Range {
        start: Option<Expr>,
        end: Option<Expr>,
        span: Span,
    },
}
