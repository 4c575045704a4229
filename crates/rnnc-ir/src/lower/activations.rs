//! Activations beyond the IR's own (`abs`, `softplus`, `elu`, `clamp`, the ONNX RNN
//! operators' `leaky_relu`, `hard_sigmoid`, …), scalar rounding (`floor`, `ceil`)
//! and `**`, all written as compositions of the IR's elementwise ops so that every
//! backend runs them without knowing they exist.

use super::body::Frame;
use super::value::{LResult, Tensor, Val};
use super::Lowerer;
use crate::op::{BinaryOp, Op, UnaryOp};
use rnnc_syntax::ast::Arg;
use rnnc_syntax::{Diagnostic, Span};

/// The activation built-ins: name, parameters after `x` with their defaults.
pub(crate) const ACTIVATIONS: &[(&str, &[(&str, f64)])] = &[
    ("abs", &[]),
    ("step", &[]),
    ("softsign", &[]),
    ("softplus", &[("beta", 1.0)]),
    ("elu", &[("alpha", 1.0)]),
    ("leaky_relu", &[("alpha", 0.01)]),
    ("thresholded_relu", &[("alpha", 1.0)]),
    ("hard_sigmoid", &[("alpha", 0.2), ("beta", 0.5)]),
    ("scaled_tanh", &[("alpha", 1.0), ("beta", 1.0)]),
    ("affine", &[("alpha", 1.0), ("beta", 0.0)]),
    (
        "clamp",
        &[("min", f64::NEG_INFINITY), ("max", f64::INFINITY)],
    ),
];

/// Integer exponents up to this size become products (exact for negative bases,
/// as `torch.pow`); larger ones and fractions go through `exp(p · log x)`.
const MAX_PRODUCT_EXPONENT: u64 = 64;

impl Lowerer {
    fn un(&mut self, u: UnaryOp, x: Tensor, span: Span) -> LResult<Tensor> {
        self.op(Op::Unary(u), &[x], span)
    }

    fn bin(&mut self, b: BinaryOp, x: Tensor, y: Tensor, span: Span) -> LResult<Tensor> {
        self.op(Op::Binary(b), &[x, y], span)
    }

    fn konst(&mut self, c: f64, span: Span) -> LResult<Tensor> {
        self.op(Op::Const(c as f32), &[], span)
    }

    /// `c * x`, leaving `x` alone when `c` is 1.
    fn scale(&mut self, c: f64, x: Tensor, span: Span) -> LResult<Tensor> {
        if c == 1.0 {
            return Ok(x);
        }
        let k = self.konst(c, span)?;
        self.bin(BinaryOp::Mul, k, x, span)
    }

    /// |x| = relu(x) + relu(-x).
    fn abs(&mut self, x: Tensor, span: Span) -> LResult<Tensor> {
        let pos = self.un(UnaryOp::Relu, x, span)?;
        let neg = self.un(UnaryOp::Neg, x, span)?;
        let neg = self.un(UnaryOp::Relu, neg, span)?;
        self.bin(BinaryOp::Add, pos, neg, span)
    }

    /// One of [`ACTIVATIONS`], its arguments matched to its signature.
    pub(crate) fn activation(
        &mut self,
        name: &'static str,
        args: &[Arg],
        frame: &mut Frame,
        span: Span,
    ) -> LResult<Val> {
        let (_, params) = ACTIVATIONS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("an activation");
        let mut names = vec!["x"];
        names.extend(params.iter().map(|(p, _)| *p));
        let a = self.sig(name, args, frame, span, &names, 1)?;
        let mut nums = Vec::new();
        for (i, (_, default)) in params.iter().enumerate() {
            nums.push(match &a[i + 1] {
                None => *default,
                Some((Val::Int(v), _)) => *v as f64,
                Some((Val::Float(v), _)) => *v,
                Some((v, s)) => return Err(self.expected("a number", v, *s)),
            });
        }
        let (v, s) = a[0].clone().expect("required");
        let x = self.tensor_of(v, s)?;
        use BinaryOp::{Add, Div, Mul, Sub};
        use UnaryOp::{Exp, Log, Neg, Relu, Step, Tanh};
        let y = match name {
            "abs" => self.abs(x, span)?,
            "step" => self.un(Step, x, span)?,
            // x / (1 + |x|)
            "softsign" => {
                let m = self.abs(x, span)?;
                let one = self.konst(1.0, span)?;
                let d = self.bin(Add, one, m, span)?;
                self.bin(Div, x, d, span)?
            }
            // (1/β) log(1 + exp(βx)) as relu(βx) + log(1 + exp(-|βx|)) over β: the
            // exponential never overflows.
            "softplus" => {
                let bx = self.scale(nums[0], x, span)?;
                let m = self.abs(bx, span)?;
                let m = self.un(Neg, m, span)?;
                let e = self.un(Exp, m, span)?;
                let one = self.konst(1.0, span)?;
                let l = self.bin(Add, one, e, span)?;
                let l = self.un(Log, l, span)?;
                let r = self.un(Relu, bx, span)?;
                let y = self.bin(Add, r, l, span)?;
                self.scale(1.0 / nums[0], y, span)?
            }
            // relu(x) + α (exp(-relu(-x)) - 1): x above 0, α (eˣ - 1) below.
            "elu" => {
                let r = self.un(Relu, x, span)?;
                let n = self.un(Neg, x, span)?;
                let n = self.un(Relu, n, span)?;
                let n = self.un(Neg, n, span)?;
                let e = self.un(Exp, n, span)?;
                let one = self.konst(1.0, span)?;
                let e = self.bin(Sub, e, one, span)?;
                let e = self.scale(nums[0], e, span)?;
                self.bin(Add, r, e, span)?
            }
            // relu(x) - α relu(-x)
            "leaky_relu" => {
                let r = self.un(Relu, x, span)?;
                let n = self.un(Neg, x, span)?;
                let n = self.un(Relu, n, span)?;
                let n = self.scale(nums[0], n, span)?;
                self.bin(Sub, r, n, span)?
            }
            // x where x > α, else 0
            "thresholded_relu" => {
                let a = self.konst(nums[0], span)?;
                let d = self.bin(Sub, x, a, span)?;
                let s = self.un(Step, d, span)?;
                self.bin(Mul, x, s, span)?
            }
            // clamp(αx + β, 0, 1) = relu(y) - relu(y - 1)
            "hard_sigmoid" => {
                let y = self.scale(nums[0], x, span)?;
                let b = self.konst(nums[1], span)?;
                let y = self.bin(Add, y, b, span)?;
                let one = self.konst(1.0, span)?;
                let over = self.bin(Sub, y, one, span)?;
                let over = self.un(Relu, over, span)?;
                let y = self.un(Relu, y, span)?;
                self.bin(Sub, y, over, span)?
            }
            // α tanh(βx)
            "scaled_tanh" => {
                let y = self.scale(nums[1], x, span)?;
                let y = self.un(Tanh, y, span)?;
                self.scale(nums[0], y, span)?
            }
            // αx + β
            "affine" => {
                let y = self.scale(nums[0], x, span)?;
                let b = self.konst(nums[1], span)?;
                self.bin(Add, y, b, span)?
            }
            // torch.clamp: lo + relu(x - lo) - relu(x - hi); a bound left out is not applied.
            "clamp" => {
                let (lo, hi) = (nums[0], nums[1]);
                if lo > hi {
                    return Err(
                        Diagnostic::error(format!("`clamp` with min {lo} above max {hi}"))
                            .with_label(span, "here")
                            .into(),
                    );
                }
                let mut y = x;
                if lo.is_finite() {
                    let l = self.konst(lo, span)?;
                    let d = self.bin(Sub, x, l, span)?;
                    let r = self.un(Relu, d, span)?;
                    y = self.bin(Add, l, r, span)?;
                }
                if hi.is_finite() {
                    let h = self.konst(hi, span)?;
                    y = if lo.is_finite() {
                        let d = self.bin(Sub, x, h, span)?;
                        let r = self.un(Relu, d, span)?;
                        self.bin(Sub, y, r, span)?
                    } else {
                        // hi - relu(hi - x)
                        let d = self.bin(Sub, h, x, span)?;
                        let r = self.un(Relu, d, span)?;
                        self.bin(Sub, h, r, span)?
                    };
                }
                y
            }
            _ => unreachable!("every activation is handled"),
        };
        Ok(Val::Tensor(y))
    }

    /// `floor(x)` / `ceil(x)` of a number known at compile time: an int.
    pub(crate) fn rounding(
        &mut self,
        name: &'static str,
        args: &[Arg],
        frame: &mut Frame,
        span: Span,
    ) -> LResult<Val> {
        let a = self.sig(name, args, frame, span, &["x"], 1)?;
        let (v, s) = a[0].clone().expect("required");
        let x = match v {
            Val::Int(i) => return Ok(Val::Int(i)),
            Val::Float(f) => f,
            Val::Tensor(_) => {
                return Err(Diagnostic::error(format!(
                    "`{name}` takes a number known when the model is compiled, not a tensor"
                ))
                .with_label(s, "a tensor")
                .into())
            }
            v => return Err(self.expected("a number", &v, s)),
        };
        let r = if name == "floor" { x.floor() } else { x.ceil() };
        if !r.is_finite() || r.abs() > i64::MAX as f64 {
            return Err(Diagnostic::error(format!("`{name}` of {x} is not an int"))
                .with_label(s, "here")
                .into());
        }
        Ok(Val::Int(r as i64))
    }

    /// `a ** b` where a tensor takes part: a tensor to a number's power, or a
    /// positive number to a tensor's.
    pub(crate) fn power(
        &mut self,
        a: Val,
        b: Val,
        span: Span,
        sa: Span,
        sb: Span,
    ) -> LResult<Tensor> {
        let number = |v: &Val| match v {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        };
        if let Some(base) = number(&a) {
            // bˣ = exp(x ln b)
            if base <= 0.0 {
                return Err(Diagnostic::error(format!(
                    "`**` with a tensor exponent needs a positive base, not {base}"
                ))
                .with_label(sa, "this base")
                .into());
            }
            let x = self.tensor_of(b, sb)?;
            let y = self.scale(base.ln(), x, span)?;
            return self.un(UnaryOp::Exp, y, span);
        }
        let Some(p) = number(&b) else {
            return Err(Diagnostic::error(
                "`**` needs an exponent known when the model is compiled (a number)",
            )
            .with_label(sb, "a tensor")
            .with_note("for a positive x, x to a tensor's power is `exp(y * log(x))`")
            .into());
        };
        let x = self.tensor_of(a, sa)?;
        if p.fract() == 0.0 && p.abs() as u64 <= MAX_PRODUCT_EXPONENT {
            let n = p.abs() as u64;
            if n == 0 {
                // x ** 0 is 1 everywhere, with x's shape.
                let zero = self.konst(0.0, span)?;
                let z = self.bin(BinaryOp::Mul, x, zero, span)?;
                let one = self.konst(1.0, span)?;
                return self.bin(BinaryOp::Add, z, one, span);
            }
            // Square-and-multiply over the exponent's bits.
            let (mut acc, mut sq, mut rest) = (None::<Tensor>, x, n);
            loop {
                if rest & 1 == 1 {
                    acc = Some(match acc {
                        None => sq,
                        Some(t) => self.bin(BinaryOp::Mul, t, sq, span)?,
                    });
                }
                rest >>= 1;
                if rest == 0 {
                    break;
                }
                sq = self.bin(BinaryOp::Mul, sq, sq, span)?;
            }
            let y = acc.expect("n ≥ 1");
            if p > 0.0 {
                return Ok(y);
            }
            let one = self.konst(1.0, span)?;
            return self.bin(BinaryOp::Div, one, y, span);
        }
        // xᵖ = exp(p log x): NaN below 0, as torch.pow for a fractional p.
        let l = self.un(UnaryOp::Log, x, span)?;
        let y = self.scale(p, l, span)?;
        self.un(UnaryOp::Exp, y, span)
    }
}

/// Whether `name` is one of the built-ins this file lowers.
pub(crate) fn is_activation(name: &str) -> bool {
    ACTIVATIONS.iter().any(|(n, _)| *n == name)
}
