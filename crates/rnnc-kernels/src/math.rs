//! `exp`, `log`, `sigmoid` and `tanh` for one f32, written without branches so
//! that the block loops of `elementwise.rs` vectorise them at the ISA's width.
//! They follow the backend's Cranelift versions step for step (Cephes' `expf` and
//! `logf`, tanh's odd series below |x| = 0.3), with the same saturation and NaN
//! behaviour; `tests/math.rs` measures both against f64.

/// Where `exp` saturates to ∞ above and to 0 below.
pub const EXP_HI: f32 = 88.722_83;
pub const EXP_LO: f32 = -87.336_55;
/// Cephes' `expf` polynomial for e^r − 1 − r over r², highest degree first.
pub const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];
/// Cephes' `logf` polynomial in r = m − 1, highest degree first.
pub const LOG_POLY: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_5e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];

/// `c ? a : b` without a branch.
#[inline(always)]
fn pick(c: bool, a: f32, b: f32) -> f32 {
    if c {
        a
    } else {
        b
    }
}

/// max/min as x86's `maxps`/`minps` would, except that NaN `x` stays NaN.
#[inline(always)]
fn clamp(x: f32, lo: f32, hi: f32) -> f32 {
    let x = pick(x > hi, hi, x);
    pick(x < lo, lo, x)
}

#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = clamp(x, EXP_LO, EXP_HI);
    let n = (xc * std::f32::consts::LOG2_E).round_ties_even();
    // r = x − n·ln2, with ln2 split in two so that n·C1 is exact.
    let r = n.mul_add(-0.693_359_4, xc);
    let r = n.mul_add(2.121_944_4e-4, r);
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p.mul_add(r, *c);
    }
    let y = p.mul_add(r * r, r) + 1.0;
    // 2^n as (n + 126) in the exponent field, times 2: covers n = 128 at the top.
    // n is a whole number in [−127, 128]: adding 1.5·2^23 puts it in the low bits.
    let ni = ((n + 12_582_912.0).to_bits() as i32).wrapping_sub(0x4B40_0000);
    let scale = f32::from_bits((ni.wrapping_add(126) as u32) << 23);
    let y = y * scale * 2.0;
    // Beyond the clamp: overflow to ∞, underflow to 0 (NaN compares false: kept).
    let y = pick(x > EXP_HI, f32::INFINITY, y);
    pick(x < EXP_LO, 0.0, y)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let ax = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    // Large |x|: 1 − 2/(e^{2|x|} + 1), exactly 1 once e^{2|x|} dwarfs 2.
    let big = 1.0 - 2.0 / (exp(ax * 2.0) + 1.0);
    // Small |x|: x + x³·(−1/3 + x²·(2/15 + x²·(−17/315 + x²·62/2835))).
    let s = ax * ax;
    let mut p = 62.0f32 / 2835.0;
    for c in [-17.0f32 / 315.0, 2.0 / 15.0, -1.0 / 3.0] {
        p = p.mul_add(s, c);
    }
    let small = (s * ax).mul_add(p, ax);
    let t = pick(ax < 0.3, small, big);
    // tanh is odd: x's sign goes on last (−0 → −0).
    f32::from_bits(t.to_bits() | (x.to_bits() & 0x8000_0000))
}

#[inline(always)]
pub fn log(x: f32) -> f32 {
    // Subnormals: scale into the normal range and take 23 off the exponent.
    let tiny = x < f32::MIN_POSITIVE;
    let xn = pick(tiny, x * 8_388_608.0, x);
    let adjust = pick(tiny, -23.0, 0.0);
    // x = m · 2^e, m in [0.5, 1).
    let xi = xn.to_bits();
    let e = (((xi >> 23) & 0xff) as i32 - 126) as f32 + adjust;
    let m = f32::from_bits((xi & 0x807f_ffff) | 0x3f00_0000);
    // m < √½: use 2m and e − 1, so that r = m − 1 lies in [√½ − 1, √2 − 1).
    let low = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = pick(low, e - 1.0, e);
    let m = pick(low, m + m, m);
    let r = m - 1.0;
    let z = r * r;
    let mut p = LOG_POLY[0];
    for c in &LOG_POLY[1..] {
        p = p.mul_add(r, *c);
    }
    let y = p * r * z;
    let y = e.mul_add(-2.121_944_4e-4, y);
    let y = z.mul_add(-0.5, y);
    let y = r + y;
    let y = e.mul_add(0.693_359_4, y);
    // log(0) = −∞, log(x < 0) = NaN, log(∞) = ∞, NaN stays NaN.
    let y = pick(x == 0.0, f32::NEG_INFINITY, y);
    let y = pick(x < 0.0, f32::NAN, y);
    let y = pick(x == f32::INFINITY, f32::INFINITY, y);
    pick(x.is_nan(), x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_f64_and_exact_at_the_ends() {
        for i in -2000i32..=2000 {
            let x = i as f32 * 0.01;
            let e = (x as f64).exp();
            assert!(((exp(x) as f64 - e) / e).abs() < 3e-7, "exp({x})");
            let t = (x as f64).tanh();
            assert!((tanh(x) as f64 - t).abs() < 3e-7, "tanh({x})");
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid(x) as f64 - s).abs() < 3e-7, "sigmoid({x})");
            let y = (i.abs() + 1) as f32 * 0.37;
            assert!((log(y) as f64 - (y as f64).ln()).abs() < 4e-7, "log({y})");
        }
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert_eq!(log(0.0), f32::NEG_INFINITY);
        assert!(log(-1.0).is_nan() && exp(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert!((log(1e-40) as f64 - (1e-40f64).ln()).abs() < 1e-5);
    }
}
