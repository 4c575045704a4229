//! Weight packing for the matrix products: the right operand is stored in panels
//! of `nb` columns, each panel `K × nb` contiguous, so the inner loop of the
//! product streams one panel front to back while its accumulators stay in
//! registers. The kernels' ISAs fix their own `nb`; the portable path's generated
//! code uses the widths below.

use ndarray::ArrayD;

/// Panel width for a product with `rows` left-hand rows. Row blocks keep 8
/// accumulators (4 rows × 2 vectors, 2 × 4), enough independent FMA chains to hide
/// the FMA latency; a single row keeps 4, since with 8 Cranelift's register
/// allocation spills (measured at B=1 H=256: 16 columns 3.3–3.5 ms, 32 columns
/// 3.6–3.9 ms, 8 columns 5.1–5.4 ms).
pub fn panel_width(rows: usize) -> usize {
    match rows {
        0 | 1 => 16,
        2 | 3 => 16,
        _ => 8,
    }
}

/// Rows of the left operand handled together for panel width `nb`.
pub fn row_block(nb: usize) -> usize {
    match nb {
        8 => 4,
        16 => 2,
        _ => 1,
    }
}

/// Packs `B[k, m]` (`w` is `[K, M]`, or `[M, K]` with `transposed`, as `linear`
/// stores it) into panels of `nb` columns, zero-padded to whole panels: the
/// layout of `rnnc-kernels`, which the generated products stream too.
pub fn pack_panels(w: &ArrayD<f32>, transposed: bool, nb: usize) -> Vec<f32> {
    let (k, m) = if transposed {
        (w.shape()[1], w.shape()[0])
    } else {
        (w.shape()[0], w.shape()[1])
    };
    let w = w.as_standard_layout();
    let data = w.as_slice().expect("standard layout");
    rnnc_kernels::pack_panels(data, (k, m), transposed, nb)
}
