//! Writing a plan's kernels as source. Both GPU languages share C's expression
//! syntax, so one renderer writes every kernel and a [`Dialect`] supplies what
//! differs: declarations, loops, kernel signatures, thread indices, workgroup
//! memory and the helper functions (`rnnc_exp`, `rnnc_tanh`, …) of the prelude.
//! All index arithmetic is signed 32-bit; every constant (shape, offset, stride) is
//! written into the kernel, so each kernel is specialised to its one use.

use crate::plan::{row_major, Access, Body, GpuPlan, Kernel, RowOp, Scalar, TimeRef, TILE};
use rnnc_ir::{BinaryOp, UnaryOp};
use std::fmt::Write;

/// What differs between WGSL and CUDA C.
pub trait Dialect {
    /// Everything before the first kernel (helpers, buffer and clock declarations).
    fn prelude(&self, plan: &GpuPlan) -> String;
    /// A kernel's opening: its signature and the i32 thread indices `gid` (global
    /// x), `lx`, `ly` (in the workgroup) and `gx`, `gy`, `gz` (the workgroup).
    fn open(&self, k: &Kernel) -> String;
    /// An immutable i32 or f32 binding.
    fn let_int(&self, name: &str, expr: &str) -> String;
    fn let_float(&self, name: &str, expr: &str) -> String;
    /// A mutable f32 variable.
    fn var_float(&self, name: &str, expr: &str) -> String;
    /// A mutable i32 variable.
    fn var_int(&self, name: &str, expr: &str) -> String;
    /// `for (i = from; i < to; i += step) {`, i an i32.
    fn for_up(&self, var: &str, from: &str, to: &str, step: &str) -> String;
    /// An f32 value as an i32 (truncating).
    fn to_int(&self, x: &str) -> String;
    /// An i32 value as an f32.
    fn to_float(&self, x: &str) -> String;
    /// A non-finite f32 literal, from its bits.
    fn float_bits(&self, bits: u32) -> String;
    /// The loop's step, an i32 expression (only in kernels that use the clock).
    fn clock(&self) -> &'static str;
    /// A workgroup-shared f32 array of `len`, declared in the kernel ("" where
    /// the prelude declares it).
    fn shared(&self, name: &str, len: u32) -> String;
    fn barrier(&self) -> &'static str;
    /// A barrier after which every thread of the workgroup sees the others'
    /// writes to the arena.
    fn storage_barrier(&self) -> &'static str;
}

/// The whole source: the prelude and every kernel, in plan order.
pub fn render(plan: &GpuPlan, d: &dyn Dialect) -> String {
    let mut s = d.prelude(plan);
    for k in &plan.kernels {
        s.push('\n');
        s.push_str(&kernel(k, d));
    }
    s
}

/// One kernel's source.
pub fn kernel(k: &Kernel, d: &dyn Dialect) -> String {
    let mut w = Writer {
        d,
        s: String::new(),
        depth: 1,
    };
    let _ = writeln!(w.s, "// {}: {}", k.name, k.about);
    w.s.push_str(&d.open(k));
    let stride = (k.groups[0] * k.threads[0]).to_string();
    match &k.body {
        Body::Map {
            shape,
            loads,
            scalars,
            stores,
        } => {
            w.each(shape, &stride, |w| {
                w.coords(shape, loads.iter().chain(stores.iter().map(|(a, _)| a)));
                for (i, a) in loads.iter().enumerate() {
                    let e = format!("arena[{}]", index(a, shape));
                    w.line(d.let_float(&format!("x{i}"), &e));
                }
                for (i, s) in scalars.iter().enumerate() {
                    let e = scalar(s, d);
                    w.line(d.let_float(&format!("v{i}"), &e));
                }
                for (a, v) in stores {
                    w.line(format!("arena[{}] = v{v};", index(a, shape)));
                }
            });
        }
        Body::Copy { shape, src, dst } => {
            if let Some(t) = src.time.or(dst.time) {
                w.line(d.let_int("tau", &tau(&t, d.clock())));
            }
            w.each(shape, &stride, |w| {
                w.coords(shape, [src, dst]);
                w.line(format!(
                    "arena[{}] = arena[{}];",
                    index(dst, shape),
                    index(src, shape)
                ));
            });
        }
        Body::Rows {
            op,
            outer,
            len,
            inner,
            src,
            dst,
        } => {
            w.each(&[outer * inner], &stride, |w| {
                w.line(d.let_int(
                    "base",
                    &format!("(i / {inner}) * {} + i % {inner}", len * inner),
                ));
                let at = |off: usize| format!("arena[{off} + base + j * {inner}]");
                match op {
                    RowOp::Softmax | RowOp::LogSoftmax => {
                        exp_sum(w, *len, &|j| format!("arena[{src} + base + {j} * {inner}]"));
                        w.open(d.for_up("j", "0", &len.to_string(), "1"));
                        let v = match op {
                            RowOp::Softmax => format!("rnnc_exp({} - mx) / sum", at(*src)),
                            _ => format!("{} - mx - log_sum", at(*src)),
                        };
                        w.line(format!("{} = {v};", at(*dst)));
                        w.close();
                    }
                    RowOp::LayerNorm(eps) => {
                        w.line(d.var_float("sum", "0.0f"));
                        w.open(d.for_up("j", "0", &len.to_string(), "1"));
                        w.line(format!("sum = sum + {};", at(*src)));
                        w.close();
                        w.line(d.let_float("mean", &format!("sum / {}", float(*len as f32, d))));
                        w.line(d.var_float("sq", "0.0f"));
                        w.open(d.for_up("j", "0", &len.to_string(), "1"));
                        w.line(format!("sq = sq + ({0} - mean) * ({0} - mean);", at(*src)));
                        w.close();
                        let var = format!("sq / {}", float(*len as f32, d));
                        let inv = format!("1.0f / rnnc_sqrt({var} + {})", float(*eps, d));
                        w.line(d.let_float("inv", &inv));
                        w.open(d.for_up("j", "0", &len.to_string(), "1"));
                        w.line(format!("{} = ({} - mean) * inv;", at(*dst), at(*src)));
                        w.close();
                    }
                }
            });
        }
        Body::Gather {
            rows,
            dim,
            vocab,
            table,
            ids,
            dst,
        } => {
            w.each(&[rows * dim], &stride, |w| {
                w.line(d.let_int("id", &d.to_int(&format!("arena[{ids} + i / {dim}]"))));
                w.line(d.var_float("v", "0.0f"));
                w.open(format!("if (id >= 0 && id < {vocab}) {{"));
                w.line(format!("v = arena[{table} + id * {dim} + i % {dim}];"));
                w.close();
                w.line(format!("arena[{dst} + i] = v;"));
            });
        }
        Body::MatMul {
            m,
            n,
            k: kk,
            batch_dims,
            a,
            b,
            c,
        } => matmul(&mut w, (*m, *n, *kk), batch_dims, a, b, *c),
        Body::Pick {
            rows,
            dim,
            src,
            index,
            dst,
        } => crate::render_decode::pick(&mut w, (*rows, *dim), *src, *index, *dst, &stride),
        Body::Greedy {
            rows,
            vocab,
            max_len,
            eos,
            logits,
            prev,
            hyps,
        } => {
            let sizes = (*rows, *vocab, *max_len);
            crate::render_decode::greedy(&mut w, sizes, *eos, *logits, *prev, hyps, &stride)
        }
        Body::BeamStep(b) => crate::render_decode::beam(&mut w, b, &stride),
        Body::Step(stage) => crate::render_step::step(&mut w, stage, &stride, d.clock()),
        Body::Sequence { loops } => crate::render_step::sequence(&mut w, loops, &stride),
    }
    w.s.push_str("}\n");
    w.s
}

/// Binds `mx` (the largest of the `len` values `x(j)`), `sum` (of `exp(x(j) − mx)`)
/// and `log_sum`: the parts of a softmax, as the interpreter computes them.
pub(crate) fn exp_sum(w: &mut Writer<'_>, len: usize, x: &dyn Fn(&str) -> String) {
    let d = w.d;
    w.line(d.var_float("mx", &x("0")));
    w.open(d.for_up("j", "1", &len.to_string(), "1"));
    w.line(format!("mx = rnnc_max(mx, {});", x("j")));
    w.close();
    w.line(d.var_float("sum", "0.0f"));
    w.open(d.for_up("j", "0", &len.to_string(), "1"));
    w.line(format!("sum = sum + rnnc_exp({} - mx);", x("j")));
    w.close();
    w.line(d.let_float("log_sum", "rnnc_log(sum)"));
}

/// Tiled product: each workgroup computes a TILE × TILE block of c, stepping
/// through k a tile at a time with both operands' tiles in workgroup memory.
fn matmul(
    w: &mut Writer<'_>,
    (m, n, k): (usize, usize, usize),
    batch: &[usize],
    a: &Access,
    b: &Access,
    c: usize,
) {
    let d = w.d;
    let t = TILE;
    w.line(d.shared("tile_a", t * t));
    w.line(d.shared("tile_b", t * t));
    w.line(d.let_int("row", &format!("gy * {t} + ly")));
    w.line(d.let_int("col", &format!("gx * {t} + lx")));
    let nb = batch.len();
    let batch_offset = |acc: &Access| {
        let mut terms = vec![acc.offset.to_string()];
        let mut after = 1usize;
        for ax in (0..nb).rev() {
            if acc.strides[ax] != 0 {
                terms.push(format!(
                    "((gz / {after}) % {}) * {}",
                    batch[ax], acc.strides[ax]
                ));
            }
            after *= batch[ax];
        }
        terms.join(" + ")
    };
    w.line(d.let_int("a0", &batch_offset(a)));
    w.line(d.let_int("b0", &batch_offset(b)));
    let (ar, ak) = (a.strides[nb], a.strides[nb + 1]);
    let (bk, bc) = (b.strides[nb], b.strides[nb + 1]);
    w.line(d.var_float("acc", "0.0f"));
    w.open(d.for_up("k0", "0", &k.to_string(), &t.to_string()));
    w.line(d.var_float("ta", "0.0f"));
    w.open(format!("if (row < {m} && k0 + lx < {k}) {{"));
    let ka = times("(k0 + lx)", ak);
    w.line(format!("ta = arena[a0 + {} + {ka}];", times("row", ar)));
    w.close();
    w.line(format!("tile_a[ly * {t} + lx] = ta;"));
    w.line(d.var_float("tb", "0.0f"));
    w.open(format!("if (k0 + ly < {k} && col < {n}) {{"));
    let kb = times("(k0 + ly)", bk);
    w.line(format!("tb = arena[b0 + {kb} + {}];", times("col", bc)));
    w.close();
    w.line(format!("tile_b[ly * {t} + lx] = tb;"));
    w.line(d.barrier());
    w.open(d.for_up("kk", "0", &t.to_string(), "1"));
    w.line(format!(
        "acc = acc + tile_a[ly * {t} + kk] * tile_b[kk * {t} + lx];"
    ));
    w.close();
    w.line(d.barrier());
    w.close();
    w.open(format!("if (row < {m} && col < {n}) {{"));
    w.line(format!(
        "arena[{c} + gz * {} + row * {n} + col] = acc;",
        m * n
    ));
    w.close();
}

pub(crate) struct Writer<'a> {
    pub(crate) d: &'a dyn Dialect,
    pub(crate) s: String,
    pub(crate) depth: usize,
}

impl Writer<'_> {
    pub(crate) fn line(&mut self, l: impl AsRef<str>) {
        let l = l.as_ref();
        if !l.is_empty() {
            let _ = writeln!(self.s, "{}{l}", "    ".repeat(self.depth));
        }
    }

    pub(crate) fn open(&mut self, l: String) {
        self.line(l);
        self.depth += 1;
    }

    pub(crate) fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }

    /// The grid-stride loop over every element `i` of `shape`.
    pub(crate) fn each(&mut self, shape: &[usize], stride: &str, body: impl FnOnce(&mut Self)) {
        let n: usize = shape.iter().product();
        self.open(self.d.for_up("i", "gid", &n.to_string(), stride));
        body(self);
        self.close();
    }

    /// The coordinates `c0, c1, …` of element `i`, where some access needs them.
    fn coords<'x>(&mut self, shape: &[usize], accesses: impl IntoIterator<Item = &'x Access>) {
        let dense = row_major(shape);
        let needed: Vec<bool> = {
            let mut need = vec![false; shape.len()];
            for a in accesses {
                if !is_dense(a, shape, &dense) {
                    for (d, s) in a.strides.iter().enumerate() {
                        need[d] |= *s != 0 && shape[d] > 1;
                    }
                }
            }
            need
        };
        for (dim, used) in needed.iter().enumerate() {
            if *used {
                let e = coordinate(shape, dim);
                self.line(self.d.let_int(&format!("c{dim}"), &e));
            }
        }
    }
}

/// The time index `t` reads at, from the loop's step `clock`.
pub(crate) fn tau(t: &TimeRef, clock: &str) -> String {
    let step = format!("{clock} + {}", t.lag);
    match t.reverse {
        true => format!("{} - ({step})", t.steps - 1),
        false => step,
    }
}

/// Coordinate `dim` of row-major element `i` of `shape`, as an i32 expression.
pub(crate) fn coordinate(shape: &[usize], dim: usize) -> String {
    let after: usize = shape[dim + 1..].iter().product();
    match (dim, after) {
        (0, 1) => "i".to_string(),
        (0, _) => format!("i / {after}"),
        (_, 1) => format!("i % {}", shape[dim]),
        _ => format!("(i / {after}) % {}", shape[dim]),
    }
}

/// Whether `a` reads `shape`'s elements in order (then its index is `offset + i`).
fn is_dense(a: &Access, shape: &[usize], dense: &[isize]) -> bool {
    a.strides
        .iter()
        .zip(dense)
        .zip(shape)
        .all(|((s, d), n)| *n == 1 || s == d)
}

/// The arena index of element `i` (coordinates `c…`) of `shape` through `a`.
fn index(a: &Access, shape: &[usize]) -> String {
    let mut terms = vec![a.offset.to_string()];
    if is_dense(a, shape, &row_major(shape)) {
        terms.push("i".into());
    } else {
        for (dim, s) in a.strides.iter().enumerate() {
            if *s != 0 && shape[dim] > 1 {
                terms.push(times(&format!("c{dim}"), *s));
            }
        }
    }
    if let Some(t) = a.time {
        terms.push(times("tau", t.stride));
    }
    terms.join(" + ")
}

/// `x * s`, or `x` where s is 1.
pub(crate) fn times(x: &str, s: isize) -> String {
    match s {
        1 => x.to_string(),
        _ => format!("{x} * {s}"),
    }
}

pub(crate) fn float(v: f32, d: &dyn Dialect) -> String {
    if v.is_finite() {
        let s = format!("{v:?}");
        match s.contains(['.', 'e']) {
            true => format!("{s}f"),
            false => format!("{s}.0f"),
        }
    } else {
        d.float_bits(v.to_bits())
    }
}

fn scalar(s: &Scalar, d: &dyn Dialect) -> String {
    match s {
        Scalar::Load(i) => format!("x{i}"),
        Scalar::Const(c) => float(*c, d),
        Scalar::Unary(u, a) => unary(*u, &format!("v{a}")),
        Scalar::Binary(b, x, y) => binary(*b, &format!("v{x}"), &format!("v{y}")),
    }
}

/// `u` applied to the f32 expression `x` (a name or a literal).
pub(crate) fn unary(u: UnaryOp, x: &str) -> String {
    match u {
        UnaryOp::Neg => format!("-{x}"),
        UnaryOp::Sigmoid => format!("rnnc_sigmoid({x})"),
        UnaryOp::Tanh => format!("rnnc_tanh({x})"),
        UnaryOp::Relu => format!("rnnc_relu({x})"),
        UnaryOp::Exp => format!("rnnc_exp({x})"),
        UnaryOp::Log => format!("rnnc_log({x})"),
        UnaryOp::Step => format!("rnnc_step({x})"),
    }
}

pub(crate) fn binary(b: BinaryOp, x: &str, y: &str) -> String {
    let op = match b {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
    };
    format!("{x} {op} {y}")
}
