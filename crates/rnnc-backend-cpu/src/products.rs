//! Top-level products with a weight matrix (`x · Wᵀ`, e.g. the hoisted input
//! projection), where the interpreter's single GEMM call is not the best choice:
//! few rows (one streaming step) run as matrix-vector products, because the GEMM
//! would repack the whole weight matrix on every call (measured: 64% of a B=1
//! H=256 LSTM step); many rows on several threads are split by rows, one GEMM per
//! thread. Everything else is left to the interpreter (None).

use crate::plan::GEMM_MIN_ROWS;
use crate::workers::Workers;
use ndarray::{linalg::general_mat_mul, Array2, ArrayD, Ix2, IxDyn};
use rnnc_runtime::Tensor;

/// `x · wᵀ` for `x` of shape `[..., K]` and `w` of shape `[M, K]`.
pub fn linear(x: &Tensor, w: &Tensor, pool: Option<&Workers>) -> Option<Tensor> {
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
        let mut out = Array2::<f32>::zeros((rows, w.nrows()));
        let chunk = rows.div_ceil(pool.threads());
        let (m, at) = (w.nrows(), Addr(out.as_mut_ptr()));
        pool.run(&|t| {
            let r0 = (t * chunk).min(rows);
            let r1 = ((t + 1) * chunk).min(rows);
            let xs = x.slice(ndarray::s![r0..r1, ..]);
            // SAFETY: each thread writes its own rows r0..r1 of `out`, which
            // outlives the call.
            let mut os = unsafe {
                ndarray::ArrayViewMut2::from_shape_ptr((r1 - r0, m), at.get().add(r0 * m))
            };
            general_mat_mul(1.0, &xs, &w.t(), 0.0, &mut os);
        });
        out.into_raw_vec_and_offset().0
    };
    Some(Tensor::F32(
        ArrayD::from_shape_vec(IxDyn(&shape), out).ok()?,
    ))
}

/// The output's address, handed to the threads (each writes its own rows).
#[derive(Clone, Copy)]
struct Addr(*mut f32);
// SAFETY: see the call above: the rows written are disjoint.
unsafe impl Sync for Addr {}
unsafe impl Send for Addr {}

impl Addr {
    /// (A method, so that closures capture the whole `Addr`, not its field.)
    fn get(self) -> *mut f32 {
        self.0
    }
}
