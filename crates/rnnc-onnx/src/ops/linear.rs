//! MatMul and Gemm. A constant right-hand matrix becomes a weight in torch's
//! `Linear` layout (`[out, in]`), so `w @ x` reads as it does in PyTorch code.

use crate::constant::Const;
use crate::error::{ImportError, Result};
use crate::importer::Importer;
use crate::node::Node;
use crate::value::{broadcast, literal, Dim, Dyn, Val};
use ndarray::Ix2;

/// `[out, in]` from ONNX's `[in, out]` right operand.
fn linear_weight(imp: &mut Importer, hint: &str, b: &Const, transposed: bool) -> Result<Dyn> {
    let a = b.floats();
    let m = a
        .into_dimensionality::<Ix2>()
        .map_err(|_| ImportError::new("the constant matrix is not 2-D"))?;
    let w = if transposed {
        m
    } else {
        m.t().as_standard_layout().into_owned()
    };
    // One param per initializer and layout, however many nodes read it.
    let key = format!("{hint}\u{0}{transposed}");
    let name = match imp.param_for(&key) {
        Some(n) => n,
        None => {
            let n = imp.param(hint, w.clone().into_dyn());
            imp.remember_param(&key, &n);
            n
        }
    };
    Ok(Dyn {
        name,
        shape: w.shape().iter().map(|&n| Dim::Fixed(n)).collect(),
        int: false,
    })
}

pub fn matmul(imp: &mut Importer, node: &Node) -> Result<()> {
    let a = imp.req(node, 0)?;
    let b = imp.req(node, 1)?;
    let out = node.output(0).unwrap_or("v");
    match (&a, &b) {
        (Val::Const(x), Val::Const(y)) if x.shape().len() == 2 && y.shape().len() == 2 => {
            let x = x.floats().into_dimensionality::<Ix2>().expect("2-D");
            let y = y.floats().into_dimensionality::<Ix2>().expect("2-D");
            if x.shape()[1] != y.shape()[0] {
                return Err(ImportError::new("the constant matrices do not multiply"));
            }
            imp.set_out(node, Val::Const(Const::F32(x.dot(&y).into_dyn())));
        }
        (Val::Dyn(x), Val::Const(w)) if w.shape().len() == 2 => {
            let k = w.shape()[0];
            if x.shape.last() != Some(&Dim::Fixed(k)) {
                return Err(ImportError::new(format!(
                    "the value's last axis is {}, the matrix has {k} rows",
                    x.shape.last().map_or("missing".into(), |d| d.to_string())
                )));
            }
            let hint = node.input(1).unwrap_or("weight");
            let w = linear_weight(imp, hint, w, false)?;
            let mut shape = x.shape.clone();
            *shape.last_mut().expect("rank ≥ 1") = w.shape[0].clone();
            imp.emit(out, format!("{} @ {}", w.name, x.name), shape, false);
        }
        (Val::Dyn(_), Val::Dyn(_)) => {
            let x = imp.operand(node, 0)?;
            let y = imp.operand(node, 1)?;
            if x.rank() < 2 || y.rank() < 2 {
                return Err(ImportError::new(
                    "a product of two run-time values needs both of rank 2 or more",
                ));
            }
            let (xr, yr) = (x.rank(), y.rank());
            let batch = broadcast(&x.shape[..xr - 2], &y.shape[..yr - 2])?;
            let mut shape = batch;
            shape.push(x.shape[xr - 2].clone());
            shape.push(y.shape[yr - 1].clone());
            imp.emit(out, format!("{} @ {}", x.name, y.name), shape, false);
        }
        _ => {
            return Err(ImportError::new(format!(
                "MatMul of {} by {} (shapes {:?} and {:?}); rnnc imports a value times a \
                 constant matrix and products of run-time values",
                a.kind(),
                b.kind(),
                a.dims(),
                b.dims()
            )))
        }
    }
    Ok(())
}

/// Y = alpha · A' B' + beta · C, A' and B' transposed where transA/transB say.
pub fn gemm(imp: &mut Importer, node: &Node) -> Result<()> {
    let alpha = node.float("alpha").unwrap_or(1.0) as f64;
    let beta = node.float("beta").unwrap_or(1.0) as f64;
    let trans_a = node.int("transA", 0) != 0;
    let trans_b = node.int("transB", 0) != 0;
    let a = imp.operand(node, 0)?;
    if a.rank() != 2 {
        return Err(ImportError::new(format!(
            "A has rank {}; Gemm takes matrices",
            a.rank()
        )));
    }
    let a_expr = if trans_a {
        format!("transpose({}, 0, 1)", a.name)
    } else {
        a.name.clone()
    };
    let m = if trans_a {
        a.shape[1].clone()
    } else {
        a.shape[0].clone()
    };
    let (mut expr, n) = match imp.req(node, 1)? {
        Val::Const(b) => {
            if b.shape().len() != 2 {
                return Err(ImportError::new("B is not a matrix"));
            }
            let hint = node.input(1).unwrap_or("weight");
            let w = linear_weight(imp, hint, &b, trans_b)?;
            (format!("{} @ {a_expr}", w.name), w.shape[0].clone())
        }
        _ => {
            let b = imp.operand(node, 1)?;
            let b_expr = if trans_b {
                format!("transpose({}, 0, 1)", b.name)
            } else {
                b.name.clone()
            };
            let n = if trans_b {
                b.shape[0].clone()
            } else {
                b.shape[1].clone()
            };
            (format!("{a_expr} @ {b_expr}"), n)
        }
    };
    if alpha != 1.0 {
        expr = format!("{} * ({expr})", literal(alpha)?);
    }
    let shape = vec![m, n];
    if let Some(c) = imp.arg(node, 2)? {
        if beta != 0.0 {
            let term = match c {
                Val::Const(c) if c.len() == 1 => literal(beta * c.scalar().expect("one"))?,
                Val::Const(c) => {
                    let scaled = Const::F32(c.floats().mapv(|v| (beta as f32) * v));
                    let hint = node.input(2).unwrap_or("bias");
                    let p = if beta == 1.0 {
                        imp.const_param(Some(hint), &c)?
                    } else {
                        // beta folded into the bias, under the bias's name.
                        let name = imp.param(&format!("{hint}_times_beta"), scaled.floats());
                        Dyn {
                            name,
                            shape: c.shape().iter().map(|&n| Dim::Fixed(n)).collect(),
                            int: false,
                        }
                    };
                    broadcast(&shape, &p.shape)?;
                    p.name
                }
                _ => {
                    let c = imp.operand(node, 2)?;
                    broadcast(&shape, &c.shape)?;
                    if beta == 1.0 {
                        c.name
                    } else {
                        format!("{} * {}", literal(beta)?, c.name)
                    }
                }
            };
            expr = format!("{expr} + {term}");
        }
    }
    let out = node.output(0).unwrap_or("v");
    imp.emit(out, expr, shape, false);
    Ok(())
}
