//! The layout the kernels stream: the right operand `B[k, m]` in panels of `nb`
//! columns, each panel `K × nb` contiguous (row k of the panel holds columns
//! `p·nb .. p·nb + nb` of row k of B), zero-padded to whole panels. A kernel keeps
//! one panel's columns of a block of rows in vector accumulators and reads the
//! panel front to back.

/// Packs `B[k, m]` given as row-major `data`: `[K, M]`, or `[M, K]` with
/// `transposed` (as a `linear` layer stores its weight).
pub fn pack_panels(data: &[f32], (k, m): (usize, usize), transposed: bool, nb: usize) -> Vec<f32> {
    assert_eq!(data.len(), k * m, "a {k} × {m} matrix");
    let panels = m.div_ceil(nb);
    let mut out = vec![0.0; panels * k * nb];
    for p in 0..panels {
        for kk in 0..k {
            let row = &mut out[(p * k + kk) * nb..][..nb];
            for (j, o) in row.iter_mut().enumerate() {
                let col = p * nb + j;
                if col < m {
                    *o = if transposed {
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

    #[test]
    fn panels_hold_columns_of_b_zero_padded() {
        // B = [[0, 1, 2], [3, 4, 5]] (K = 2, M = 3), given as linear's [M, K].
        let p = pack_panels(&[0., 3., 1., 4., 2., 5.], (2, 3), true, 2);
        assert_eq!(p, vec![0., 1., 3., 4., 2., 0., 5., 0.]);
        assert_eq!(pack_panels(&[0., 1., 2., 3., 4., 5.], (2, 3), false, 2), p);
    }
}
