//! What exporters write around dynamic dimensions and constants: Shape,
//! ConstantOfShape, Expand, Cast, Constant, Identity and Dropout. All of it folds
//! at import; none of it reaches the generated model.

use crate::constant::{dtype, Const};
use crate::error::{ImportError, Result};
use crate::importer::Importer;
use crate::node::Node;
use crate::value::{Dim, Val};
use ndarray::{ArrayD, IxDyn};

pub fn identity(imp: &mut Importer, node: &Node) -> Result<()> {
    // Dropout is the identity in inference; its mask may be there, not used.
    if node.op() == "Dropout" {
        if let Some(mask) = node.output(1) {
            imp.unusable(
                mask,
                "it is Dropout's mask, which inference does not make; rnnc runs inference",
            );
        }
        if let Some(c) = imp.const_arg(node, 2, "training_mode")? {
            if c.ints().is_some_and(|v| v.iter().any(|&t| t != 0)) {
                return Err(ImportError::new(
                    "Dropout in training mode; rnnc runs inference",
                ));
            }
        }
    }
    let x = imp.req(node, 0)?;
    imp.set_out(node, x);
    Ok(())
}

pub fn constant(imp: &mut Importer, node: &Node) -> Result<()> {
    let c = if let Some(t) = node.tensor("value")? {
        t
    } else if let Some(f) = node.float("value_float") {
        Const::F32(ArrayD::from_elem(IxDyn(&[]), f))
    } else if node.has("value_floats") {
        let v = node.floats("value_floats");
        Const::F32(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D"))
    } else if node.has("value_int") {
        Const::I64(ArrayD::from_elem(IxDyn(&[]), node.int("value_int", 0)))
    } else if let Some(v) = node.ints("value_ints") {
        Const::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D"))
    } else {
        return Err(ImportError::new(
            "a Constant without a value rnnc reads (value, value_float(s), value_int(s))",
        ));
    };
    imp.set_out(node, Val::Const(c));
    Ok(())
}

pub fn shape(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.req(node, 0)?;
    let dims = x.dims();
    let n = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + n } else { v }).clamp(0, n) as usize;
    let start = clamp(node.int("start", 0));
    let end = clamp(node.int("end", n));
    let dims = dims[start..end.max(start)].to_vec();
    let v = match dims.iter().map(Dim::fixed).collect::<Option<Vec<usize>>>() {
        Some(sizes) => Const::I64(
            ArrayD::from_shape_vec(
                IxDyn(&[sizes.len()]),
                sizes.iter().map(|&s| s as i64).collect(),
            )
            .expect("1-D"),
        )
        .into(),
        None => Val::Shape {
            elems: dims,
            scalar: false,
        },
    };
    imp.set_out(node, v);
    Ok(())
}

impl From<Const> for Val {
    fn from(c: Const) -> Val {
        Val::Const(c)
    }
}

/// The dims a shape operand names.
fn shape_operand(imp: &Importer, node: &Node, i: usize) -> Result<Vec<Dim>> {
    match imp.req(node, i)? {
        Val::Shape { elems, .. } => Ok(elems),
        Val::Const(c) => Ok(c
            .ints()
            .ok_or_else(|| ImportError::new("the shape is not integers"))?
            .into_iter()
            .map(|v| Dim::Fixed(v.max(0) as usize))
            .collect()),
        v => Err(ImportError::new(format!("its shape input is {}", v.kind()))),
    }
}

pub fn constant_of_shape(imp: &mut Importer, node: &Node) -> Result<()> {
    let dims = shape_operand(imp, node, 0)?;
    let value = match node.tensor("value")? {
        None => 0.0,
        Some(c) => c
            .scalar()
            .ok_or_else(|| ImportError::new("its value holds more than one element"))?,
    };
    let v = match dims.iter().map(Dim::fixed).collect::<Option<Vec<usize>>>() {
        Some(s) => {
            crate::constant::elements(&s)?;
            Val::Const(Const::F32(ArrayD::from_elem(IxDyn(&s), value as f32)))
        }
        None if value == 0.0 => Val::Zeros(dims),
        None => {
            return Err(ImportError::new(format!(
                "a run-time shape filled with {value}; rnnc folds only zeros of a run-time shape (initial states)"
            )))
        }
    };
    imp.set_out(node, v);
    Ok(())
}

/// Expand of a constant zero (exporters' zero initial states) is zeros.
pub fn expand(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.req(node, 0)?;
    let dims = shape_operand(imp, node, 1)?;
    let zero = match &x {
        Val::Const(c) => c.floats().iter().all(|&v| v == 0.0),
        Val::Zeros(_) => true,
        _ => false,
    };
    if !zero {
        return Err(ImportError::new(format!(
            "Expand of {}; rnnc folds Expand of zeros (initial states) only",
            x.kind()
        ))
        .help("write the broadcast as arithmetic, which broadcasts by itself"));
    }
    let out = crate::value::broadcast(&x.dims(), &dims)?;
    let v = match out.iter().map(Dim::fixed).collect::<Option<Vec<usize>>>() {
        Some(s) => {
            crate::constant::elements(&s)?;
            Val::Const(Const::F32(ArrayD::zeros(IxDyn(&s))))
        }
        None => Val::Zeros(out),
    };
    imp.set_out(node, v);
    Ok(())
}

pub fn cast(imp: &mut Importer, node: &Node) -> Result<()> {
    let to = node.int("to", 0) as i32;
    let x = imp.req(node, 0)?;
    let v = match x {
        Val::Const(c) if dtype::is_float(to) => Val::Const(Const::F32(c.floats())),
        Val::Const(c) if dtype::is_integer(to) => match c {
            Const::I64(_) => Val::Const(c),
            Const::F32(a) => Val::Const(Const::I64(a.mapv(|v| v as i64))),
        },
        Val::Dyn(d) if (dtype::is_float(to) && !d.int) || (dtype::is_integer(to) && d.int) => {
            Val::Dyn(d)
        }
        v @ (Val::Shape { .. } | Val::Zeros(_)) => v,
        Val::Dyn(d) => {
            return Err(ImportError::new(format!(
                "Cast of a run-time {} value to {}; rnnc keeps floats and integers apart",
                if d.int { "integer" } else { "float" },
                dtype::name(to)
            )))
        }
        Val::Const(_) => return Err(ImportError::new(format!("Cast to {}", dtype::name(to)))),
    };
    imp.set_out(node, v);
    Ok(())
}
