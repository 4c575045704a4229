//! What an ONNX value is while import walks the graph: a constant, a value of the
//! generated model (its name there and its shape, whose run-time axes are still
//! ONNX's symbolic dimensions), a shape computed by exporter glue, or zeros.

use crate::constant::Const;
use crate::error::{ImportError, Result};
use std::fmt;

/// One axis: a symbolic ONNX dimension (`dim_param`, bound to B, T or S at the end)
/// or a size known at import.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Sym(String),
    Fixed(usize),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Sym(s) => write!(f, "{s}"),
            Dim::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl Dim {
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }
}

pub fn shape_text(dims: &[Dim]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// A value of the generated model.
#[derive(Clone, Debug, PartialEq)]
pub struct Dyn {
    /// Its name in the generated source.
    pub name: String,
    pub shape: Vec<Dim>,
    /// i64 (token ids, lengths) rather than f32.
    pub int: bool,
}

impl Dyn {
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

/// An element of a shape computed by glue (`Shape`, `Gather`, `Concat`, …).
pub type ShapeElem = Dim;

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Const(Const),
    Dyn(Dyn),
    /// A 1-D i64 tensor of dimensions, some of them symbolic (what `Shape` of a
    /// run-time value gives); `scalar` when a `Gather` took one element out.
    Shape {
        elems: Vec<ShapeElem>,
        scalar: bool,
    },
    /// `ConstantOfShape` with value 0 (or `Expand` of a zero): zeros of this shape.
    Zeros(Vec<Dim>),
}

impl Val {
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Const(_) => "a constant",
            Val::Dyn(_) => "a run-time value",
            Val::Shape { .. } => "a shape computed from a run-time value",
            Val::Zeros(_) => "zeros of a run-time shape",
        }
    }

    /// Its shape, as far as import knows it.
    pub fn dims(&self) -> Vec<Dim> {
        match self {
            Val::Const(c) => c.shape().iter().map(|&n| Dim::Fixed(n)).collect(),
            Val::Dyn(d) => d.shape.clone(),
            Val::Shape { elems, scalar } => {
                if *scalar {
                    vec![]
                } else {
                    vec![Dim::Fixed(elems.len())]
                }
            }
            Val::Zeros(d) => d.clone(),
        }
    }
}

/// NumPy broadcasting of two shapes.
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let x = (i + a.len()).checked_sub(n).map(|k| &a[k]);
        let y = (i + b.len()).checked_sub(n).map(|k| &b[k]);
        out.push(match (x, y) {
            (Some(x), None) => x.clone(),
            (None, Some(y)) => y.clone(),
            (Some(x), Some(y)) if x == y => x.clone(),
            (Some(Dim::Fixed(1)), Some(y)) => y.clone(),
            (Some(x), Some(Dim::Fixed(1))) => x.clone(),
            (Some(x), Some(y)) => {
                return Err(ImportError::new(format!(
                    "shapes {} and {} do not broadcast (axis {x} against {y})",
                    shape_text(a),
                    shape_text(b)
                )))
            }
            (None, None) => unreachable!(),
        });
    }
    Ok(out)
}

/// An ONNX axis (negative counts from the end) as an index into `rank` axes.
pub fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let k = if a < 0 { a + r } else { a };
    if k < 0 || k >= r {
        return Err(ImportError::new(format!(
            "axis {a} is outside a value of rank {rank}"
        )));
    }
    Ok(k as usize)
}

/// A float as the language writes it: `0.5`, `1e-5`, `-2.0` (the grammar takes a
/// unary minus after any operator, so no parentheses are needed).
pub fn literal(v: f64) -> Result<String> {
    let f = v as f32;
    if !f.is_finite() {
        return Err(ImportError::new(format!(
            "the constant {v} is not finite; the language has no literal for it"
        )));
    }
    Ok(format!("{f:?}"))
}
