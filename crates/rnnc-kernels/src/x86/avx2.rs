//! The product kernel for AVX2 with FMA: 8-lane vectors, 16 registers, so blocks
//! of 6 rows × 16 columns (12 accumulators).

panel_kernels! {
    feature: "avx2,fma",
    vector: __m256,
    lanes: 8,
    rows_per_block: 6,
    panels_for_rows: [6, 3, 2],
    zero: _mm256_setzero_ps,
    load: _mm256_loadu_ps,
    splat: _mm256_set1_ps,
    fma: _mm256_fmadd_ps,
    store: _mm256_storeu_ps,
}

/// The [`crate::ElementwiseKernel`] of this ISA.
///
/// # Safety
/// As for [`crate::ElementwiseKernel`]; the CPU must have the ISA's features.
pub unsafe extern "C" fn elementwise(
    prog: *const crate::ElementwiseProgram,
    ptrs: *const *mut f32,
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { elementwise_here(&*prog, ptrs, (r0, r1), (c0, c1)) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn elementwise_here(
    prog: &crate::ElementwiseProgram,
    ptrs: *const *mut f32,
    rows: (usize, usize),
    cols: (usize, usize),
) {
    // SAFETY: forwarded; inlined here, the loops compile for this ISA.
    unsafe { crate::elementwise::run(prog, ptrs, rows, cols) }
}
