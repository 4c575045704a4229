//! The product kernel for AVX-512F: 16-lane vectors, 32 registers, so blocks of 12
//! rows × 32 columns (24 accumulators).

panel_kernels! {
    feature: "avx512f,fma",
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
