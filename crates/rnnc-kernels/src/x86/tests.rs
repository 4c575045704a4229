//! Every kernel this CPU supports against the one-element-at-a-time reference, on
//! awkward shapes: 1 to 3 rows (the several-panels tiles), every remainder of a
//! row block, chunks of rows with 1 to 3 rows left over, and K of 1, 3, 17, 255,
//! 257. Strided operands leave gaps that the kernel must neither read as data nor
//! write.

use crate::{pack_panels, reference_panels, AlignedF32, Isa};

/// A deterministic value in [-1, 1).
pub(super) fn value(i: usize, salt: usize) -> f32 {
    let h = (i as u64 ^ (salt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((h >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn check(isa: Isa, rows: usize, k: usize, m: usize) {
    check_init(isa, rows, k, m, None);
}

/// With `init` ((row stride, columns) of the accumulators' start), or zeros.
fn check_init(isa: Isa, rows: usize, k: usize, m: usize, init: Option<(usize, usize)>) {
    let nb = isa.panel_width().unwrap();
    let kernel = isa.kernel().unwrap();
    let (ldx, panels) = (k + 3, m.div_ceil(nb));
    let ldo = panels * nb + 5;
    let x: Vec<f32> = (0..rows * ldx).map(|i| value(i, 1)).collect();
    let b: Vec<f32> = (0..k * m).map(|i| value(i, 2)).collect();
    let w = AlignedF32::from_slice(&pack_panels(&b, (k, m), false, nb));
    let mut want = vec![f32::NAN; rows * ldo];
    let (ldi, cols) = init.unwrap_or((0, 0));
    let start: Vec<f32> = (0..rows.max(1) * ldi.max(cols))
        .map(|i| value(i, 6))
        .collect();
    let ip = if init.is_some() {
        start.as_ptr()
    } else {
        std::ptr::null()
    };
    // `next` (prefetching init's next rows) and `stream` (the weights ahead) change
    // nothing but speed.
    let run = |next: isize, stream: usize| {
        let mut out = vec![f32::NAN; rows * ldo];
        // SAFETY: the buffers are exactly as large as the sizes and strides say.
        unsafe {
            kernel(
                rows,
                k,
                x.as_ptr(),
                ldx,
                w.as_ptr(),
                panels,
                out.as_mut_ptr(),
                ldo,
                ip,
                ldi,
                cols,
                next,
                stream,
            )
        };
        out
    };
    let (got, streamed) = (run(1 << 20, 0), run(0, 512));
    // SAFETY: as above.
    unsafe {
        reference_panels(
            nb,
            (rows, k),
            (x.as_ptr(), ldx),
            (w.as_ptr(), panels),
            (want.as_mut_ptr(), ldo),
            (ip, ldi, cols),
        )
    };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&streamed),
        bits(&got),
        "{isa} rows={rows} k={k} m={m}: streamed"
    );
    for r in 0..rows {
        for c in 0..ldo {
            let (g, e) = (got[r * ldo + c], want[r * ldo + c]);
            if c >= panels * nb {
                assert!(
                    g.is_nan(),
                    "{isa} rows={rows} k={k} m={m}: wrote the gap at ({r}, {c})"
                );
                continue;
            }
            // Fused multiply-adds round once per term, the reference twice.
            let tol = 1e-6 * (k as f32 + 1.0);
            assert!(
                (g - e).abs() <= tol,
                "{isa} rows={rows} k={k} m={m} at ({r}, {c}): {g} vs {e}"
            );
        }
    }
}

fn kernels() -> Vec<Isa> {
    Isa::available()
        .into_iter()
        .filter(|i| i.kernel().is_some())
        .collect()
}

#[test]
fn kernels_match_the_reference_on_awkward_shapes() {
    for isa in kernels() {
        for rows in [1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 16, 17, 24, 25, 64, 65] {
            for k in [1, 3, 17, 255, 257] {
                for m in [1, 3, 17, 33, 100, 300] {
                    check(isa, rows, k, m);
                }
            }
        }
    }
}

/// Panels that do not fit in half of L2, and more rows than a chunk: the kernel
/// runs the panels in groups, each group's columns of `init` from their own start
/// (a group past `init`'s columns starts from zeros).
#[test]
fn panels_beyond_l2_run_in_groups() {
    let k = 1024;
    for isa in kernels() {
        let nb = isa.panel_width().unwrap();
        let group = crate::l2_bytes() / 2 / (k * nb * 4);
        let panels = group + 3;
        let m = panels * nb - 5;
        check_init(isa, 61, k, m, Some((m + 3, group * nb - 3)));
        check_init(isa, 61, k, m, Some((m + 3, (group + 1) * nb + 5)));
        check(isa, 50, k, m);
    }
}

/// The one-column product against a plain sum, on every tail of the vector
/// width and row strides wider than K.
#[test]
fn dot_matches_the_reference() {
    for isa in kernels() {
        let dot = isa.dot().unwrap();
        for rows in [1, 2, 3, 17, 65] {
            for k in [1, 3, 15, 16, 17, 63, 64, 65, 255, 256, 257] {
                let ldx = k + 3;
                let x: Vec<f32> = (0..rows * ldx).map(|i| value(i, 1)).collect();
                let w: Vec<f32> = (0..k).map(|i| value(i, 2)).collect();
                let ldo = 2;
                let mut got = vec![f32::NAN; rows * ldo];
                // SAFETY: the buffers are as large as the sizes and strides say.
                unsafe { dot(rows, k, x.as_ptr(), ldx, w.as_ptr(), got.as_mut_ptr(), ldo) };
                for r in 0..rows {
                    let want: f32 = (0..k).map(|c| x[r * ldx + c] * w[c]).sum();
                    let tol = 1e-6 * (k as f32 + 1.0);
                    let g = got[r * ldo];
                    assert!(
                        (g - want).abs() <= tol,
                        "{isa} rows={rows} k={k} row {r}: {g} vs {want}"
                    );
                    assert!(got[r * ldo + 1].is_nan(), "{isa}: wrote past a result");
                }
            }
        }
    }
}

#[test]
fn accumulators_start_from_init() {
    for isa in kernels() {
        for (rows, m) in [(1, 17), (2, 100), (3, 33), (13, 40), (64, 64)] {
            // Its own rows, one row for all (a bias), and a matrix wider than m.
            check_init(isa, rows, 19, m, Some((m, m)));
            check_init(isa, rows, 19, m, Some((0, m)));
            check_init(isa, rows, 19, m, Some((m + 7, m)));
        }
    }
}

#[test]
fn rows_in_several_chunks() {
    // K = 257 makes chunks of 252 rows (AVX-512) or 252 (AVX2): 253 leaves one row,
    // 255 three, 300 a block and a remainder.
    for isa in kernels() {
        for rows in [253, 255, 300] {
            check(isa, rows, 257, 40);
        }
    }
}

#[test]
fn the_environment_can_only_name_supported_paths() {
    assert_eq!(Isa::named("portable"), Ok(Isa::Portable));
    assert!(Isa::named("sse9")
        .unwrap_err()
        .0
        .contains("names no instruction set"));
    for isa in Isa::ALL {
        assert_eq!(Isa::named(isa.name()).is_ok(), isa.supported());
    }
    assert!(Isa::best().supported());
}

mod elementwise {
    use super::value;
    use crate::{math, Binary, Code, ElementwiseProgram, Isa, Operand, Unary, MAX_SLOTS};

    /// `code` evaluated one element at a time.
    fn reference(code: &[Code], inputs: &[f32]) -> Vec<f32> {
        let mut v: Vec<f32> = Vec::new();
        for c in code {
            v.push(match *c {
                Code::Input(k) => inputs[k],
                Code::Const(x) => x,
                Code::Unary(u, a) => {
                    let x = v[a];
                    match u {
                        Unary::Neg => -x,
                        Unary::Relu => {
                            if x > 0.0 || x.is_nan() {
                                x
                            } else {
                                0.0
                            }
                        }
                        Unary::Sigmoid => math::sigmoid(x),
                        Unary::Tanh => math::tanh(x),
                        Unary::Exp => math::exp(x),
                        Unary::Log => math::log(x),
                        Unary::Step => {
                            if x > 0.0 {
                                1.0
                            } else {
                                0.0
                            }
                        }
                    }
                }
                Code::Binary(b, p, q) => {
                    let (x, y) = (v[p], v[q]);
                    match b {
                        Binary::Add => x + y,
                        Binary::Sub => x - y,
                        Binary::Mul => x * y,
                        Binary::Div => x / y,
                    }
                }
            });
        }
        v
    }

    /// Every op, a row-broadcast scalar input and a repeated row, two outputs.
    fn code() -> Vec<Code> {
        use Code::*;
        vec![
            Input(0),
            Input(1),
            Input(2),
            Binary(crate::Binary::Mul, 0, 1),
            Unary(crate::Unary::Sigmoid, 3),
            Unary(crate::Unary::Tanh, 0),
            Binary(crate::Binary::Add, 4, 5),
            Const(2.5),
            Binary(crate::Binary::Sub, 6, 7),
            Unary(crate::Unary::Exp, 8),
            Binary(crate::Binary::Add, 9, 2),
            Unary(crate::Unary::Log, 10),
            Unary(crate::Unary::Relu, 0),
            Binary(crate::Binary::Div, 11, 9),
            Unary(crate::Unary::Neg, 12),
            Binary(crate::Binary::Add, 13, 14),
            Unary(crate::Unary::Step, 0),
            Binary(crate::Binary::Mul, 15, 16),
        ]
    }

    #[test]
    fn elementwise_kernels_equal_the_scalar_code_bit_for_bit() {
        let code = code();
        for isa in Isa::available() {
            let Some(kernel) = isa.elementwise() else {
                continue;
            };
            for (rows, cols) in [(1, 1), (1, 3), (2, 63), (3, 64), (2, 65), (3, 130)] {
                let ld = cols + 2;
                // Input 0: full rows; 1: one scalar per row; 2: one row for all.
                let a: Vec<f32> = (0..rows * ld).map(|i| value(i, 3) * 4.0).collect();
                let s: Vec<f32> = (0..rows).map(|i| value(i, 4)).collect();
                let one: Vec<f32> = (0..cols).map(|i| value(i, 5).abs() + 0.5).collect();
                let inputs = [
                    // Prefetching a step ahead changes nothing.
                    Operand {
                        row_stride: ld,
                        scalar: false,
                        next: 7,
                    },
                    Operand {
                        row_stride: 1,
                        scalar: true,
                        next: 0,
                    },
                    Operand {
                        row_stride: 0,
                        scalar: false,
                        next: -3,
                    },
                ];
                let prog = ElementwiseProgram::new(&code, &inputs, &[(17, ld), (4, cols)]).unwrap();
                let mut out0 = vec![f32::NAN; rows * ld];
                let mut out1 = vec![f32::NAN; rows * cols];
                // A part of the space, as one thread of two would get.
                let (r0, c0) = (rows / 2, cols / 3);
                let ptrs = [
                    a.as_ptr() as *mut f32,
                    s.as_ptr() as *mut f32,
                    one.as_ptr() as *mut f32,
                    out0.as_mut_ptr(),
                    out1.as_mut_ptr(),
                ];
                // SAFETY: every buffer covers the rows and columns at its stride.
                unsafe { kernel(&prog, ptrs.as_ptr(), r0, rows, c0, cols) };
                for r in 0..rows {
                    for c in 0..cols {
                        let (g0, g1) = (out0[r * ld + c], out1[r * cols + c]);
                        if r < r0 || c < c0 {
                            assert!(g0.is_nan() && g1.is_nan(), "{isa}: wrote ({r}, {c})");
                            continue;
                        }
                        let want = reference(&code, &[a[r * ld + c], s[r], one[c]]);
                        assert_eq!(g0.to_bits(), want[17].to_bits(), "{isa} ({r}, {c})");
                        assert_eq!(g1.to_bits(), want[4].to_bits(), "{isa} ({r}, {c})");
                    }
                }
            }
        }
    }

    #[test]
    fn slots_are_reused_and_limited() {
        use Code::*;
        // A chain of 100 ops keeps two values live at a time.
        let mut chain = vec![Input(0)];
        for i in 0..100 {
            chain.push(Unary(crate::Unary::Tanh, i));
        }
        let one = [Operand {
            row_stride: 1,
            scalar: false,
            next: 0,
        }];
        assert!(ElementwiseProgram::new(&chain, &one, &[(100, 1)]).is_some());
        // MAX_SLOTS + 1 values all read at the end do not fit.
        let mut wide: Vec<Code> = (0..=MAX_SLOTS).map(|i| Const(i as f32)).collect();
        let mut acc = 0;
        for i in 1..=MAX_SLOTS {
            wide.push(Binary(crate::Binary::Add, acc, i));
            acc = wide.len() - 1;
        }
        let outputs: Vec<(usize, usize)> = (0..=MAX_SLOTS).map(|i| (i, 1)).collect();
        assert!(ElementwiseProgram::new(&wide, &[], &outputs).is_none());
    }
}
