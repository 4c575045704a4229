//! Top-level products with a weight matrix (`x · Wᵀ`, e.g. the hoisted input
//! projection), where the interpreter's single GEMM call is not the best choice:
//! few rows (one streaming step) run as matrix-vector products, because the GEMM
//! would repack the whole weight matrix on every call (measured: 64% of a B=1
//! H=256 LSTM step); many rows on several threads are split by rows, one GEMM per
//! thread. Everything else is left to the interpreter (None).

use crate::plan::GEMM_MIN_ROWS;
use ndarray::{linalg::general_mat_mul, Array2, ArrayD, Axis, Ix2, IxDyn};
use rayon_core::ThreadPool;
use rnnc_interp::Tensor;

/// `x · wᵀ` for `x` of shape `[..., K]` and `w` of shape `[M, K]`.
pub fn linear(x: &Tensor, w: &Tensor, pool: Option<&ThreadPool>) -> Option<Tensor> {
    let (x, w) = (x.f32(), w.f32());
    let k = *x.shape().last()?;
    let rows = x.len() / k.max(1);
    let w = w.view().into_dimensionality::<Ix2>().ok()?;
    if k == 0 || w.ncols() != k {
        return None;
    }
    let mut shape = x.shape().to_vec();
    *shape.last_mut()? = w.nrows();
    let x = x.as_standard_layout();
    let x = x.view().into_shape_with_order((rows, k)).ok()?;
    let out = if rows < GEMM_MIN_ROWS {
        let mut out = Vec::with_capacity(rows * w.nrows());
        for r in x.rows() {
            out.extend(w.dot(&r));
        }
        out
    } else {
        let pool = pool?;
        let mut out = Array2::zeros((rows, w.nrows()));
        let chunk = rows.div_ceil(pool.current_num_threads());
        pool.scope(|s| {
            let parts = x
                .axis_chunks_iter(Axis(0), chunk)
                .zip(out.axis_chunks_iter_mut(Axis(0), chunk));
            for (xs, mut os) in parts {
                s.spawn(move |_| general_mat_mul(1.0, &xs, &w.t(), 0.0, &mut os));
            }
        });
        out.into_raw_vec_and_offset().0
    };
    Some(Tensor::F32(
        ArrayD::from_shape_vec(IxDyn(&shape), out).ok()?,
    ))
}
