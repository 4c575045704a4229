//! One function per op, on owned ndarray tensors, written for clarity.

use crate::Tensor;
use crate::{err, RunError};
use ndarray::{concatenate, stack, ArrayD, ArrayView2, Axis, Ix2, IxDyn, Slice};
use rnnc_ir::infer::broadcast;
use rnnc_ir::{BinaryOp, Dim, Op, UnaryOp};
use std::rc::Rc;

/// The same array expression on a tensor of either dtype: `map_any!(t, |a| …)`
/// (a closure could not be generic over the element type).
macro_rules! map_any {
    ($t:expr, |$a:ident| $body:expr) => {
        match $t {
            $crate::Tensor::F32($a) => $crate::Tensor::F32($body),
            $crate::Tensor::I64($a) => $crate::Tensor::I64($body),
        }
    };
}
pub(crate) use map_any;

pub(crate) fn apply(op: &Op, args: &[Rc<Tensor>]) -> Result<Tensor, RunError> {
    let f = |i: usize| args[i].f32();
    Ok(match op {
        Op::Const(v) => Tensor::F32(ArrayD::from_elem(IxDyn(&[]), *v)),
        Op::Unary(u) => Tensor::F32(f(0).mapv(|x| unary(*u, x))),
        Op::Binary(b) => {
            let (x, y) = (f(0), f(1));
            Tensor::F32(match b {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
            })
        }
        Op::Linear => Tensor::F32(linear(f(0), f(1))),
        Op::MatMul => Tensor::F32(matmul(f(0), f(1))?),
        Op::Concat { axis } => match &*args[0] {
            Tensor::F32(_) => {
                let views: Vec<_> = args.iter().map(|a| a.f32().view()).collect();
                Tensor::F32(concatenate(Axis(*axis), &views).map_err(shape_err)?)
            }
            Tensor::I64(_) => {
                let views: Vec<_> = args.iter().map(|a| ids(a).view()).collect();
                Tensor::I64(concatenate(Axis(*axis), &views).map_err(shape_err)?)
            }
        },
        Op::Stack { axis } => {
            let views: Vec<_> = args.iter().map(|a| a.f32().view()).collect();
            Tensor::F32(stack(Axis(*axis), &views).map_err(shape_err)?)
        }
        Op::Slice { axis, start, end } => map_any!(&*args[0], |a| a
            .slice_axis(Axis(*axis), Slice::from(*start..*end))
            .to_owned()),
        Op::Index { axis, index } => {
            let n = args[0].shape()[*axis] as i64;
            let i = if *index < 0 { index + n } else { *index };
            if i < 0 || i >= n {
                return err(format!(
                    "index {index} is out of range for an axis of length {n}"
                ));
            }
            map_any!(&*args[0], |a| a
                .index_axis(Axis(*axis), i as usize)
                .to_owned())
        }
        Op::Flip { axis } => map_any!(&*args[0], |a| a
            .slice_axis(Axis(*axis), Slice::new(0, None, -1))
            .to_owned()),
        Op::Transpose { a: x, b: y } => map_any!(&*args[0], |a| {
            let mut v = a.view();
            v.swap_axes(*x, *y);
            v.as_standard_layout().into_owned()
        }),
        Op::Embedding => Tensor::F32(embedding(f(0), ids(&args[1]))?),
        Op::Softmax { axis } => Tensor::F32(softmax(f(0), *axis, false)),
        Op::LogSoftmax { axis } => Tensor::F32(softmax(f(0), *axis, true)),
        Op::LayerNorm { eps } => Tensor::F32(layer_norm(f(0), *eps)),
        Op::Unsqueeze { axis } => map_any!(&*args[0], |a| a.clone().insert_axis(Axis(*axis))),
        Op::Squeeze { axis } => map_any!(&*args[0], |a| a.index_axis(Axis(*axis), 0).to_owned()),
        Op::SequenceMask => Tensor::F32(sequence_mask(ids(&args[0]), args[1].shape()[1])?),
        Op::Input { .. }
        | Op::Weight { .. }
        | Op::Zeros
        | Op::Arg { .. }
        | Op::Scan(_)
        | Op::Decode(_)
        | Op::Fused(_) => {
            unreachable!("handled by the evaluator")
        }
    })
}

/// Each length must be in `1..=steps`: a sequence cannot be empty or longer than
/// the padded tensor that holds it. The compiled backends check with this too.
pub fn check_lengths(lengths: &ArrayD<i64>, steps: usize) -> Result<(), RunError> {
    for (b, &n) in lengths.iter().enumerate() {
        if n < 1 || n as u64 > steps as u64 {
            let what = if n < 1 {
                "an empty sequence has nothing to run".to_string()
            } else {
                format!("the padded sequences have only {steps} steps")
            };
            return err(format!(
                "lengths[{b}] = {n}: {what} (each length must be between 1 and {steps})"
            ));
        }
    }
    Ok(())
}

/// `[B, T]`: 1 while `t < lengths[b]`, for lengths that pass [`check_lengths`].
fn sequence_mask(lengths: &ArrayD<i64>, steps: usize) -> Result<ArrayD<f32>, RunError> {
    check_lengths(lengths, steps)?;
    let mut mask = ArrayD::zeros(IxDyn(&[lengths.len(), steps]));
    for (b, &n) in lengths.iter().enumerate() {
        for t in 0..n as usize {
            mask[[b, t]] = 1.0;
        }
    }
    Ok(mask)
}

fn ids(t: &Tensor) -> &ArrayD<i64> {
    match t {
        Tensor::I64(a) => a,
        Tensor::F32(_) => panic!("verified graphs feed i64 ids here"),
    }
}

fn shape_err(e: ndarray::ShapeError) -> RunError {
    RunError(format!("shape error: {e}"))
}

fn unary(u: UnaryOp, x: f32) -> f32 {
    match u {
        UnaryOp::Neg => -x,
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Step => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
    }
}

/// Rows of `x` (all leading axes flattened) times `w^T`.
fn linear(x: &ArrayD<f32>, w: &ArrayD<f32>) -> ArrayD<f32> {
    let k = *x.shape().last().expect("rank ≥ 1");
    let rows = x.len() / k.max(1);
    let x2 = x.as_standard_layout();
    let x2: ArrayView2<f32> = x2
        .view()
        .into_shape_with_order((rows, k))
        .expect("contiguous");
    let w2 = w.view().into_dimensionality::<Ix2>().expect("rank 2");
    // `dot` may hand back a column-major result (a single row, a single column);
    // reshape a row-major copy.
    let y = x2.dot(&w2.t()).as_standard_layout().into_owned();
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("rank ≥ 1") = w.shape()[0];
    y.into_shape_with_order(IxDyn(&shape))
        .expect("same element count")
}

/// NumPy matmul for rank ≥ 2, broadcasting the leading (batch) axes.
fn matmul(a: &ArrayD<f32>, b: &ArrayD<f32>) -> Result<ArrayD<f32>, RunError> {
    let (ra, rb) = (a.ndim(), b.ndim());
    let (m, k, n) = (a.shape()[ra - 2], a.shape()[ra - 1], b.shape()[rb - 1]);
    // The batch axes broadcast as the type checker says they do.
    let fixed = |s: &[usize]| s.iter().map(|n| Dim::Fixed(*n)).collect::<Vec<_>>();
    let batch: Vec<usize> = broadcast(&fixed(&a.shape()[..ra - 2]), &fixed(&b.shape()[..rb - 2]))
        .map_err(|e| RunError(format!("matmul: {e}")))?
        .into_iter()
        .map(|d| match d {
            Dim::Fixed(n) => n,
            _ => unreachable!("fixed in, fixed out"),
        })
        .collect();
    let mut full_a = batch.clone();
    full_a.extend([m, k]);
    let mut full_b = batch.clone();
    full_b.extend([k, n]);
    let a = a
        .broadcast(IxDyn(&full_a))
        .ok_or_else(|| RunError("matmul: batch axes do not broadcast".into()))?;
    let b = b
        .broadcast(IxDyn(&full_b))
        .ok_or_else(|| RunError("matmul: batch axes do not broadcast".into()))?;
    let count: usize = batch.iter().product();
    let a3 = a
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((count, m, k))
        .expect("contiguous");
    let b3 = b
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((count, k, n))
        .expect("contiguous");
    let mut out = ndarray::Array3::<f32>::zeros((count, m, n));
    for i in 0..count {
        out.index_axis_mut(Axis(0), i)
            .assign(&a3.index_axis(Axis(0), i).dot(&b3.index_axis(Axis(0), i)));
    }
    let mut shape = batch;
    shape.extend([m, n]);
    Ok(out
        .into_shape_with_order(IxDyn(&shape))
        .expect("same element count"))
}

fn embedding(table: &ArrayD<f32>, ids: &ArrayD<i64>) -> Result<ArrayD<f32>, RunError> {
    let (n, d) = (table.shape()[0], table.shape()[1]);
    let mut shape = ids.shape().to_vec();
    shape.push(d);
    let mut out = Vec::with_capacity(ids.len() * d);
    for &id in ids.iter() {
        if id < 0 || id as usize >= n {
            return err(format!(
                "token id {id} is out of range for an embedding table of {n} rows"
            ));
        }
        out.extend(table.index_axis(Axis(0), id as usize).iter());
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("sizes agree"))
}

/// Softmax (or its log) along one axis, shifted by the maximum for stability.
pub(crate) fn softmax(x: &ArrayD<f32>, axis: usize, log: bool) -> ArrayD<f32> {
    let mut out = x.clone();
    for mut lane in out.lanes_mut(Axis(axis)) {
        let max = lane.fold(f32::NEG_INFINITY, |m, v| m.max(*v));
        let sum: f32 = lane.iter().map(|v| (v - max).exp()).sum();
        let log_sum = sum.ln();
        lane.mapv_inplace(|v| {
            if log {
                v - max - log_sum
            } else {
                (v - max).exp() / sum
            }
        });
    }
    out
}

fn layer_norm(x: &ArrayD<f32>, eps: f32) -> ArrayD<f32> {
    let last = x.ndim() - 1;
    let mut out = x.clone();
    for mut lane in out.lanes_mut(Axis(last)) {
        let n = lane.len() as f32;
        let mean = lane.sum() / n;
        let var = lane.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        lane.mapv_inplace(|v| (v - mean) * inv);
    }
    out
}
