//! The product kernel for AVX-512F: 16-lane vectors, 32 registers, so blocks of 12
//! rows × 32 columns (24 accumulators).

panel_kernels! {
    feature: "avx512f",
    vector: __m512,
    lanes: 16,
    rows_per_block: 12,
    panels_for_rows: [8, 3, 2],
    zero: _mm512_setzero_ps,
    load: _mm512_loadu_ps,
    splat: _mm512_set1_ps,
    fma: _mm512_fmadd_ps,
    store: _mm512_storeu_ps,
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

#[target_feature(enable = "avx512f,fma")]
unsafe fn elementwise_here(
    prog: &crate::ElementwiseProgram,
    ptrs: *const *mut f32,
    rows: (usize, usize),
    cols: (usize, usize),
) {
    // SAFETY: forwarded; inlined here, the loops compile for this ISA.
    unsafe { crate::elementwise::run(prog, ptrs, rows, cols) }
}
