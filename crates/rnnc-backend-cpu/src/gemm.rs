//! The tuned GEMM that generated code calls for products with many rows (the
//! recurrent product at large batch): `matrixmultiply`, which ndarray already uses,
//! with AVX2/FMA kernels chosen at run time and cache blocking. Cranelift's own
//! vectors are 128 bits wide, so past a few rows this is faster (docs/performance.md).

/// `c[r, j] = Σ_k a[r, k] · b[k, j]` for r < m, j < n; row strides in elements.
/// # Safety
/// The pointers must cover the matrices their sizes and strides describe.
pub unsafe extern "C" fn rnnc_sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a,
            lda as isize,
            1,
            b,
            ldb as isize,
            1,
            0.0,
            c,
            ldc as isize,
            1,
        );
    }
}
