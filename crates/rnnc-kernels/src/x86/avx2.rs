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
