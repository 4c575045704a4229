//! Elementwise arithmetic, activations and the softmaxes.

use crate::constant::Const;
use crate::error::{ImportError, Result};
use crate::importer::Importer;
use crate::node::Node;
use crate::value::{axis, broadcast, literal, Val};

/// Add, Sub, Mul, Div with NumPy broadcasting; constants fold, scalars become
/// literals and other constants params.
pub fn binary(imp: &mut Importer, node: &Node) -> Result<()> {
    let a = imp.req(node, 0)?;
    let b = imp.req(node, 1)?;
    let sym = match node.op() {
        "Add" => "+",
        "Sub" => "-",
        "Mul" => "*",
        _ => "/",
    };
    if let (Val::Const(x), Val::Const(y)) = (&a, &b) {
        let folded = fold(node.op(), x, y).ok_or_else(|| {
            ImportError::new(format!(
                "constant operands of shapes {:?} and {:?} do not broadcast",
                x.shape(),
                y.shape()
            ))
        })?;
        imp.set_out(node, Val::Const(folded));
        return Ok(());
    }
    let operand =
        |imp: &mut Importer, i: usize, v: &Val| -> Result<(String, Vec<crate::value::Dim>)> {
            match v {
                Val::Const(c) if c.len() == 1 && c.shape().len() <= 1 => Ok((
                    literal(c.scalar().expect("one element"))?,
                    c.shape()
                        .iter()
                        .map(|&n| crate::value::Dim::Fixed(n))
                        .collect(),
                )),
                _ => {
                    let d = imp.operand(node, i)?;
                    if d.int {
                        return Err(ImportError::new(format!(
                            "input {i} is an integer tensor; rnnc computes arithmetic on floats"
                        )));
                    }
                    Ok((d.name, d.shape))
                }
            }
        };
    let (ea, sa) = operand(imp, 0, &a)?;
    let (eb, sb) = operand(imp, 1, &b)?;
    let shape = broadcast(&sa, &sb)?;
    let out = node.output(0).unwrap_or("v");
    imp.emit(out, format!("{ea} {sym} {eb}"), shape, false);
    Ok(())
}

fn fold(op: &str, x: &Const, y: &Const) -> Option<Const> {
    if let (Const::I64(a), Const::I64(b)) = (x, y) {
        let r = match op {
            "Add" => a + b,
            "Sub" => a - b,
            "Mul" => a * b,
            _ => {
                if b.iter().any(|&v| v == 0) {
                    return None;
                }
                a / b
            }
        };
        return Some(Const::I64(r));
    }
    let (a, b) = (x.floats(), y.floats());
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    // ndarray broadcasts both operands and panics on a mismatch: check first.
    let n = sa.len().max(sb.len());
    for i in 0..n {
        let p = (i + sa.len()).checked_sub(n).map_or(1, |k| sa[k]);
        let q = (i + sb.len()).checked_sub(n).map_or(1, |k| sb[k]);
        if p != q && p != 1 && q != 1 {
            return None;
        }
    }
    Some(Const::F32(match op {
        "Add" => &a + &b,
        "Sub" => &a - &b,
        "Mul" => &a * &b,
        _ => &a / &b,
    }))
}

/// Activations: each one the language's own function of the same definition.
pub fn unary(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.operand(node, 0)?;
    if x.int {
        return Err(ImportError::new(
            "its input is an integer tensor; rnnc computes activations on floats",
        ));
    }
    let n = &x.name;
    let alpha = |d: f32| literal(node.float("alpha").unwrap_or(d) as f64);
    let beta = |d: f32| literal(node.float("beta").unwrap_or(d) as f64);
    let expr = match node.op() {
        "Neg" => format!("-{n}"),
        "Abs" => format!("abs({n})"),
        "Relu" => format!("relu({n})"),
        "Tanh" => format!("tanh({n})"),
        "Sigmoid" => format!("sigmoid({n})"),
        "Exp" => format!("exp({n})"),
        "Log" => format!("log({n})"),
        "Softsign" => format!("softsign({n})"),
        "Softplus" => format!("softplus({n})"),
        "Elu" => format!("elu({n}, alpha = {})", alpha(1.0)?),
        "LeakyRelu" => format!("leaky_relu({n}, alpha = {})", alpha(0.01)?),
        "ThresholdedRelu" => format!("thresholded_relu({n}, alpha = {})", alpha(1.0)?),
        _ => format!(
            "hard_sigmoid({n}, alpha = {}, beta = {})",
            alpha(0.2)?,
            beta(0.5)?
        ),
    };
    let out = node.output(0).unwrap_or("v");
    imp.emit(out, expr, x.shape, false);
    Ok(())
}

/// Softmax and LogSoftmax. Before opset 13 they normalise over all axes from
/// `axis` on, which is one axis only when `axis` is the last.
pub fn softmax(imp: &mut Importer, node: &Node) -> Result<()> {
    let x = imp.operand(node, 0)?;
    let rank = x.rank();
    let default = if imp.opset >= 13 { -1 } else { 1 };
    let k = axis(node.int("axis", default), rank)?;
    if imp.opset < 13 && k + 1 != rank {
        return Err(ImportError::new(format!(
            "before opset 13 {} normalises over every axis from {k} on of a rank-{rank} value; \
             rnnc normalises over one axis",
            node.op()
        ))
        .help("export at opset 13 or later, or with axis = -1"));
    }
    let f = if node.op() == "Softmax" {
        "softmax"
    } else {
        "log_softmax"
    };
    let out = node.output(0).unwrap_or("v");
    imp.emit(out, format!("{f}({}, dim = {k})", x.name), x.shape, false);
    Ok(())
}
