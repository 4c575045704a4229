//! Weight packing for the generated matrix products: the right operand is stored in
//! panels of `nb` columns, each panel `K × nb` contiguous, so the inner loop of the
//! product streams one panel front to back while `nb / 4` vector accumulators per
//! row stay in registers.

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
/// stores it) into panels of `nb` columns, zero-padded to whole panels.
pub fn pack_panels(w: &ArrayD<f32>, transposed: bool, nb: usize) -> Vec<f32> {
    let (k, m) = if transposed {
        (w.shape()[1], w.shape()[0])
    } else {
        (w.shape()[0], w.shape()[1])
    };
    let w = w.as_standard_layout();
    let data = w.as_slice().expect("standard layout");
    let panels = m.div_ceil(nb);
    let mut out = vec![0.0; panels * k * nb];
    for p in 0..panels {
        for kk in 0..k {
            for j in 0..nb {
                let col = p * nb + j;
                if col < m {
                    out[(p * k + kk) * nb + j] = if transposed {
                        data[col * k + kk]
                    } else {
                        data[kk * m + col]
                    };
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn panels_hold_columns_of_b_zero_padded() {
        // B = [[0, 1, 2], [3, 4, 5]] (K = 2, M = 3), given as linear's [M, K].
        let w = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![0., 3., 1., 4., 2., 5.]).unwrap();
        let p = pack_panels(&w, true, 2);
        assert_eq!(p, vec![0., 1., 3., 4., 2., 0., 5., 0.]);
        let b = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0., 1., 2., 3., 4., 5.]).unwrap();
        assert_eq!(pack_panels(&b, false, 2), p);
    }
}
