//! Vectorised `exp`, `log`, `sigmoid` and `tanh` as Cranelift IR, for f32 and f32x4
//! alike.
//!
//! `exp` is Cephes' `expf`: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial
//! for e^r, and 2^n built in the exponent bits. `tanh` uses its odd Taylor series
//! below |x| = 0.3 (where 1 − 2/(e^{2x}+1) would cancel) and that form above.
//! `log` is Cephes' `logf`: x = m·2^e with m in [√½, √2), a degree-8 polynomial in
//! m − 1, e·ln2 added in two parts; subnormal inputs are scaled by 2^23 first.
//! Saturation is exact (sigmoid(±∞) = 1/0, tanh(±∞) = ±1, exp(∞) = ∞, exp(−∞) = 0,
//! log(0) = −∞, log(∞) = ∞, log(x < 0) = NaN)
//! and NaN propagates: Cranelift's `fmin`/`fmax` return NaN for a NaN operand.
//! The measured maximum errors against f64 are in `tests/math.rs`. The constants
//! are `rnnc-kernels`' (its vector kernels compute the same functions).

use cranelift_codegen::ir::{condcodes::FloatCC, types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// A constant of type `ty` (f32, or f32x4 with every lane equal).
pub fn constant(b: &mut FunctionBuilder, ty: Type, x: f32) -> Value {
    let s = b.ins().f32const(x);
    if ty == types::F32 {
        s
    } else {
        b.ins().splat(ty, s)
    }
}

fn int_type(ty: Type) -> Type {
    if ty == types::F32 {
        types::I32
    } else {
        types::I32X4
    }
}

/// Reinterprets bits between f32 and i32 lanes.
fn bits(b: &mut FunctionBuilder, to: Type, x: Value) -> Value {
    let flags = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
    b.ins().bitcast(to, flags, x)
}

use rnnc_kernels::math::{EXP_HI, EXP_LO, EXP_POLY, LOG_POLY};

pub fn exp(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let hi = constant(b, ty, EXP_HI);
    let lo = constant(b, ty, EXP_LO);
    let xc = b.ins().fmin(x, hi);
    let xc = b.ins().fmax(xc, lo);
    let log2e = constant(b, ty, std::f32::consts::LOG2_E);
    let n = b.ins().fmul(xc, log2e);
    let n = b.ins().nearest(n);
    // r = x − n·ln2, with ln2 split in two so that n·C1 is exact.
    let c1 = constant(b, ty, -0.693_359_4);
    let c2 = constant(b, ty, 2.121_944_4e-4);
    let r = b.ins().fma(n, c1, xc);
    let r = b.ins().fma(n, c2, r);
    let mut p = constant(b, ty, EXP_POLY[0]);
    for c in &EXP_POLY[1..] {
        let c = constant(b, ty, *c);
        p = b.ins().fma(p, r, c);
    }
    let r2 = b.ins().fmul(r, r);
    let one = constant(b, ty, 1.0);
    let y = b.ins().fma(p, r2, r);
    let y = b.ins().fadd(y, one);
    // 2^n as (n + 126) in the exponent field, times 2: covers n = 128 at the top.
    let ity = int_type(ty);
    let ni = b.ins().fcvt_to_sint_sat(ity, n);
    let bias = if ty == types::F32 {
        b.ins().iconst(types::I32, 126)
    } else {
        let c = b.ins().iconst(types::I32, 126);
        b.ins().splat(types::I32X4, c)
    };
    let e = b.ins().iadd(ni, bias);
    let e = b.ins().ishl_imm_u(e, 23);
    let scale = bits(b, ty, e);
    let two = constant(b, ty, 2.0);
    let y = b.ins().fmul(y, scale);
    let y = b.ins().fmul(y, two);
    // Beyond the clamp: overflow to ∞, underflow to 0 (NaN compares false: kept).
    let inf = constant(b, ty, f32::INFINITY);
    let zero = constant(b, ty, 0.0);
    let over = b.ins().fcmp(FloatCC::GreaterThan, x, hi);
    let y = select(b, ty, over, inf, y);
    let under = b.ins().fcmp(FloatCC::LessThan, x, lo);
    select(b, ty, under, zero, y)
}

/// An i32 constant of `ty`'s integer type (i32, or i32x4 with every lane equal).
fn int_constant(b: &mut FunctionBuilder, ty: Type, v: i32) -> Value {
    let c = b.ins().iconst(types::I32, i64::from(v));
    if ty == types::F32 {
        c
    } else {
        b.ins().splat(types::I32X4, c)
    }
}

pub fn log(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    // Subnormals: scale into the normal range and take 23 off the exponent.
    let min_normal = constant(b, ty, f32::MIN_POSITIVE);
    let tiny = b.ins().fcmp(FloatCC::LessThan, x, min_normal);
    let two23 = constant(b, ty, 8_388_608.0);
    let scaled = b.ins().fmul(x, two23);
    let xn = select(b, ty, tiny, scaled, x);
    let minus23 = constant(b, ty, -23.0);
    let zero = constant(b, ty, 0.0);
    let adjust = select(b, ty, tiny, minus23, zero);
    // x = m · 2^e, m in [0.5, 1).
    let ity = int_type(ty);
    let xi = bits(b, ity, xn);
    let e = b.ins().ushr_imm_u(xi, 23);
    let ff = int_constant(b, ty, 0xff);
    let e = b.ins().band(e, ff);
    let bias = int_constant(b, ty, 126);
    let e = b.ins().isub(e, bias);
    let e = b.ins().fcvt_from_sint(ty, e);
    let e = b.ins().fadd(e, adjust);
    let keep = int_constant(b, ty, 0x807f_ffff_u32 as i32);
    let half = int_constant(b, ty, 0x3f00_0000);
    let mi = b.ins().band(xi, keep);
    let mi = b.ins().bor(mi, half);
    let m = bits(b, ty, mi);
    // m < √½: use 2m and e − 1, so that r = m − 1 lies in [√½ − 1, √2 − 1).
    let sqrt_half = constant(b, ty, std::f32::consts::FRAC_1_SQRT_2);
    let low = b.ins().fcmp(FloatCC::LessThan, m, sqrt_half);
    let one = constant(b, ty, 1.0);
    let e_low = b.ins().fsub(e, one);
    let e = select(b, ty, low, e_low, e);
    let m2 = b.ins().fadd(m, m);
    let m = select(b, ty, low, m2, m);
    let r = b.ins().fsub(m, one);
    let z = b.ins().fmul(r, r);
    let mut p = constant(b, ty, LOG_POLY[0]);
    for c in &LOG_POLY[1..] {
        let c = constant(b, ty, *c);
        p = b.ins().fma(p, r, c);
    }
    let pr = b.ins().fmul(p, r);
    let y = b.ins().fmul(pr, z);
    let c2 = constant(b, ty, -2.121_944_4e-4);
    let y = b.ins().fma(e, c2, y);
    let minus_half = constant(b, ty, -0.5);
    let y = b.ins().fma(z, minus_half, y);
    let y = b.ins().fadd(r, y);
    let c1 = constant(b, ty, 0.693_359_4);
    let y = b.ins().fma(e, c1, y);
    // log(0) = −∞, log(x < 0) = NaN, log(∞) = ∞, NaN stays NaN.
    let neg_inf = constant(b, ty, f32::NEG_INFINITY);
    let is_zero = b.ins().fcmp(FloatCC::Equal, x, zero);
    let y = select(b, ty, is_zero, neg_inf, y);
    let nan = constant(b, ty, f32::NAN);
    let negative = b.ins().fcmp(FloatCC::LessThan, x, zero);
    let y = select(b, ty, negative, nan, y);
    let inf = constant(b, ty, f32::INFINITY);
    let is_inf = b.ins().fcmp(FloatCC::Equal, x, inf);
    let y = select(b, ty, is_inf, inf, y);
    let is_nan = b.ins().fcmp(FloatCC::Unordered, x, x);
    select(b, ty, is_nan, x, y)
}

/// 1 where x > 0, else 0 (NaN included: an unordered compare is false).
pub fn step(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let zero = constant(b, ty, 0.0);
    let one = constant(b, ty, 1.0);
    let positive = b.ins().fcmp(FloatCC::GreaterThan, x, zero);
    select(b, ty, positive, one, zero)
}

/// `c ? a : b` lane by lane, for a mask from `fcmp` of the same type.
fn select(b: &mut FunctionBuilder, ty: Type, c: Value, a: Value, other: Value) -> Value {
    if ty == types::F32 {
        b.ins().select(c, a, other)
    } else {
        let mask = bits(b, ty, c);
        b.ins().bitselect(mask, a, other)
    }
}

pub fn sigmoid(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let nx = b.ins().fneg(x);
    let e = exp(b, ty, nx);
    let one = constant(b, ty, 1.0);
    let d = b.ins().fadd(one, e);
    b.ins().fdiv(one, d)
}

pub fn tanh(b: &mut FunctionBuilder, ty: Type, x: Value) -> Value {
    let ax = b.ins().fabs(x);
    // Large |x|: 1 − 2/(e^{2|x|} + 1), exactly 1 once e^{2|x|} dwarfs 2.
    let two = constant(b, ty, 2.0);
    let one = constant(b, ty, 1.0);
    let x2 = b.ins().fmul(ax, two);
    let e = exp(b, ty, x2);
    let d = b.ins().fadd(e, one);
    let q = b.ins().fdiv(two, d);
    let big = b.ins().fsub(one, q);
    // Small |x|: x + x³·(−1/3 + x²·(2/15 + x²·(−17/315 + x²·62/2835))).
    let s = b.ins().fmul(ax, ax);
    let coeffs = [62.0 / 2835.0, -17.0 / 315.0, 2.0 / 15.0, -1.0 / 3.0];
    let mut p = constant(b, ty, coeffs[0]);
    for c in &coeffs[1..] {
        let c = constant(b, ty, *c);
        p = b.ins().fma(p, s, c);
    }
    let x3 = b.ins().fmul(s, ax);
    let small = b.ins().fma(x3, p, ax);
    let limit = constant(b, ty, 0.3);
    let is_small = b.ins().fcmp(FloatCC::LessThan, ax, limit);
    // Both branches are for |x|; tanh is odd, so x's sign goes on last (-0 → -0).
    let t = select(b, ty, is_small, small, big);
    copysign(b, ty, t, x)
}

/// `mag` (never negative here) with the sign of `sign`, by bits: x64 Cranelift
/// has no vector `fcopysign`.
fn copysign(b: &mut FunctionBuilder, ty: Type, mag: Value, sign: Value) -> Value {
    let ity = int_type(ty);
    let m = bits(b, ity, mag);
    let s = bits(b, ity, sign);
    let top = if ty == types::F32 {
        b.ins().iconst(types::I32, i64::from(i32::MIN))
    } else {
        let c = b.ins().iconst(types::I32, i64::from(i32::MIN));
        b.ins().splat(types::I32X4, c)
    };
    let s = b.ins().band(s, top);
    let r = b.ins().bor(m, s);
    bits(b, ty, r)
}
