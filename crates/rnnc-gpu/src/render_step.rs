//! Writing a fused step kernel: each store group is one grid-stride pass over its
//! shape, and each store's expression is written out at that element's coordinates,
//! products as loops over `k`. A value read twice at the same coordinates (the new
//! hidden state both emitted and carried) is computed once: names are remembered
//! per block, so what a loop or branch computes is not reused outside it.

use crate::plan::{Access, Coord, Expr, ExprKind, RowOp, SeqLoop, Stage};
use crate::render::{binary, coordinate, float, tau, times, unary, Writer};
use std::collections::HashMap;

/// A `Body::Sequence` kernel: each loop's iterations run its stages in order, a
/// barrier after each stage (the next reads what this one wrote).
pub(crate) fn sequence(w: &mut Writer<'_>, loops: &[SeqLoop], stride: &str) {
    for (l, lp) in loops.iter().enumerate() {
        let it = format!("it{l}");
        w.open(w.d.for_up(&it, "0", &lp.count.to_string(), "1"));
        w.line(w.d.let_int("rnnc_t", &format!("{} + {it} * {}", lp.first, lp.stride)));
        for stage in &lp.stages {
            w.open("{".to_string());
            step(w, stage, stride, "rnnc_t");
            w.close();
            w.line(w.d.storage_barrier());
        }
        w.close();
    }
}

/// The body of a `Body::Step` kernel whose threads (all groups) number `stride`;
/// `clock` names the loop's step.
pub(crate) fn step(w: &mut Writer<'_>, stage: &Stage, stride: &str, clock: &str) {
    let mut e = Emitter {
        exprs: &stage.exprs,
        scopes: vec![],
        next: 0,
        clock,
        planned: None,
        dots: vec![],
    };
    for (g, group) in stage.groups.iter().enumerate() {
        let n: usize = group.shape.iter().product();
        w.open(w.d.for_up("i", "gid", &n.to_string(), stride));
        let coords = coordinates(w, &group.shape, g);
        // A dry run finds the products the stores need, so that products sharing
        // an operand (the gates' rows against the one state) share one loop.
        let mut scratch = Writer {
            d: w.d,
            s: String::new(),
            depth: w.depth,
        };
        let next = e.next;
        e.planned = Some(vec![]);
        e.scopes.push(HashMap::new());
        for (_, x) in &group.stores {
            e.eval(&mut scratch, *x, &coords);
        }
        e.scopes.pop();
        e.dots = e.planned.take().unwrap_or_default();
        e.next = next;
        e.scopes.push(HashMap::new());
        for (access, x) in &group.stores {
            let v = e.eval(w, *x, &coords);
            w.line(format!("arena[{}] = {v};", index(access, &coords, e.clock)));
        }
        e.scopes.pop();
        w.close();
    }
}

/// `let` bindings `g{group}c{axis}` for every coordinate of element `i` of `shape`.
fn coordinates(w: &mut Writer<'_>, shape: &[usize], group: usize) -> Vec<String> {
    (0..shape.len())
        .map(|dim| {
            let name = format!("g{group}c{dim}");
            w.line(w.d.let_int(&name, &coordinate(shape, dim)));
            name
        })
        .collect()
}

/// The arena index `access` reads or writes at `coords`.
fn index(a: &Access, coords: &[String], clock: &str) -> String {
    let mut terms = vec![a.offset.to_string()];
    for (c, s) in coords.iter().zip(&a.strides) {
        if *s != 0 && c != "0" {
            terms.push(times(&paren(c), *s));
        }
    }
    if let Some(t) = a.time {
        terms.push(times(&format!("({})", tau(&t, clock)), t.stride));
    }
    terms.join(" + ")
}

fn paren(c: &str) -> String {
    match c.contains(' ') {
        true => format!("({c})"),
        false => c.to_string(),
    }
}

/// An operand's coordinates from the consumer's (`k` appended for a product).
fn map(coords: &[Coord], from: &[String]) -> Vec<String> {
    coords
        .iter()
        .map(|c| match c.from {
            None => c.base.to_string(),
            Some((axis, scale)) => {
                let x = &from[axis];
                let scaled = match scale {
                    1 => x.clone(),
                    -1 if c.base != 0 => return format!("{} - {}", c.base, paren(x)),
                    _ => format!("{} * {scale}", paren(x)),
                };
                match c.base {
                    0 => scaled,
                    b if b > 0 => format!("{scaled} + {b}"),
                    b => format!("{scaled} - {}", -b),
                }
            }
        })
        .collect()
}

struct Emitter<'a> {
    exprs: &'a [Expr],
    /// The name of the loop's step.
    clock: &'a str,
    /// During a dry run: the products evaluated, with their coordinates.
    planned: Option<Vec<(usize, Vec<String>)>>,
    /// The products the current group evaluates (from its dry run).
    dots: Vec<(usize, Vec<String>)>,
    /// (expression, coordinates) → the name holding it, one map per open block.
    scopes: Vec<HashMap<(usize, Vec<String>), String>>,
    next: usize,
}

impl Emitter<'_> {
    /// The product `x` at `coords`, in one loop with every other product of the
    /// group that reads the same first operand at the same coordinates over the
    /// same length (an LSTM's four gate rows of a unit against the state): the
    /// shared operand is read once per `k`.
    fn dots_with(&mut self, w: &mut Writer<'_>, x: usize, coords: &[String]) -> String {
        let key = |exprs: &[Expr], y: usize, c: &[String]| match &exprs[y].kind {
            ExprKind::Dot {
                len, a, a_coords, ..
            } => {
                let mut with_k = c.to_vec();
                with_k.push("K".into());
                Some((*len, *a, map(a_coords, &with_k)))
            }
            _ => None,
        };
        let mine = key(self.exprs, x, coords);
        let mut family: Vec<(usize, Vec<String>)> = vec![(x, coords.to_vec())];
        for (y, c) in &self.dots {
            let known = self.scopes.iter().any(|s| s.contains_key(&(*y, c.clone())));
            if !known && !family.contains(&(*y, c.clone())) && key(self.exprs, *y, c) == mine {
                family.push((*y, c.clone()));
            }
        }
        let d = w.d;
        let accs: Vec<String> = family.iter().map(|_| self.fresh("acc")).collect();
        for acc in &accs {
            w.line(d.var_float(acc, "0.0f"));
        }
        let k = self.fresh("k");
        let Some((len, a, _)) = mine else {
            unreachable!("dots_with is called on products")
        };
        w.open(d.for_up(&k, "0", &len.to_string(), "1"));
        self.scopes.push(HashMap::new());
        let mut shared = None;
        for ((y, c), acc) in family.iter().zip(&accs) {
            let ExprKind::Dot {
                a_coords,
                b,
                b_coords,
                ..
            } = &self.exprs[*y].kind
            else {
                unreachable!("the family holds products")
            };
            let mut with_k = c.clone();
            with_k.push(k.clone());
            let av = match &shared {
                Some(v) => String::clone(v),
                None => {
                    let v = self.eval(w, a, &map(a_coords, &with_k));
                    shared = Some(v.clone());
                    v
                }
            };
            let bv = self.eval(w, *b, &map(b_coords, &with_k));
            w.line(format!("{acc} = {acc} + {av} * {bv};"));
        }
        self.scopes.pop();
        w.close();
        let scope = self.scopes.last_mut().expect("a block is open");
        for ((y, c), acc) in family.iter().zip(&accs).skip(1) {
            scope.insert((*y, c.clone()), acc.clone());
        }
        accs[0].clone()
    }

    /// `acc = update(acc, src(…, j))` over `j` in `from..len` of the row of
    /// `coords`, from `init`; returns the accumulator's name.
    fn fold_row(
        &mut self,
        w: &mut Writer<'_>,
        (src, len): (usize, usize),
        coords: &[String],
        (from, init): (usize, &str),
        update: &dyn Fn(&str, &str) -> String,
    ) -> String {
        let d = w.d;
        let acc = self.fresh("acc");
        w.line(d.var_float(&acc, init));
        let j = self.fresh("j");
        w.open(d.for_up(&j, &from.to_string(), &len.to_string(), "1"));
        self.scopes.push(HashMap::new());
        let mut at = coords.to_vec();
        *at.last_mut().expect("a row has an axis") = j;
        let x = self.eval(w, src, &at);
        w.line(format!("{acc} = {};", update(&acc, &x)));
        self.scopes.pop();
        w.close();
        acc
    }

    /// Element `coords` of row reduction `op` of `src`: the row's maximum and sum
    /// of exponentials (softmax), or its mean and then the mean squared distance
    /// from it (layer norm), each element computing them itself.
    fn row(
        &mut self,
        w: &mut Writer<'_>,
        op: RowOp,
        (src, len): (usize, usize),
        coords: &[String],
    ) -> String {
        let d = w.d;
        let x = self.eval(w, src, coords);
        let v = self.fresh("v");
        match op {
            RowOp::Softmax | RowOp::LogSoftmax => {
                let mut first = coords.to_vec();
                *first.last_mut().expect("a row has an axis") = "0".into();
                let x0 = self.eval(w, src, &first);
                let mx = self.fold_row(w, (src, len), coords, (1, &x0), &|a, x| {
                    format!("rnnc_max({a}, {x})")
                });
                let sum = self.fold_row(w, (src, len), coords, (0, "0.0f"), &|a, x| {
                    format!("{a} + rnnc_exp({x} - {mx})")
                });
                let value = match op {
                    RowOp::Softmax => format!("rnnc_exp({x} - {mx}) / {sum}"),
                    _ => format!("{x} - {mx} - rnnc_log({sum})"),
                };
                w.line(d.let_float(&v, &value));
            }
            RowOp::LayerNorm(eps) => {
                let n = float(len as f32, d);
                let sum = self.fold_row(w, (src, len), coords, (0, "0.0f"), &|a, x| {
                    format!("{a} + {x}")
                });
                let mean = self.fresh("mean");
                w.line(d.let_float(&mean, &format!("{sum} / {n}")));
                let sq = self.fold_row(w, (src, len), coords, (0, "0.0f"), &|a, x| {
                    format!("{a} + ({x} - {mean}) * ({x} - {mean})")
                });
                let inv = format!("1.0f / rnnc_sqrt({sq} / {n} + {})", float(eps, d));
                w.line(d.let_float(&v, &format!("({x} - {mean}) * {inv}")));
            }
        }
        v
    }

    fn fresh(&mut self, what: &str) -> String {
        self.next += 1;
        format!("{what}{}", self.next)
    }

    /// The name of expression `x` at `coords`, writing its computation if needed.
    fn eval(&mut self, w: &mut Writer<'_>, x: usize, coords: &[String]) -> String {
        let key = (x, coords.to_vec());
        if let Some(name) = self.scopes.iter().rev().find_map(|s| s.get(&key)) {
            return name.clone();
        }
        let d = w.d;
        let name = match &self.exprs[x].kind {
            ExprKind::Load(a) => {
                let v = self.fresh("v");
                w.line(d.let_float(&v, &format!("arena[{}]", index(a, coords, self.clock))));
                v
            }
            ExprKind::Const(c) => {
                let v = self.fresh("v");
                w.line(d.let_float(&v, &float(*c, d)));
                v
            }
            ExprKind::Unary(u, a) => {
                let a = self.eval(w, *a, coords);
                let v = self.fresh("v");
                w.line(d.let_float(&v, &unary(*u, &a)));
                v
            }
            ExprKind::Binary(b, l, r) => {
                let l = self.eval(w, *l, coords);
                let r = self.eval(w, *r, coords);
                let v = self.fresh("v");
                w.line(d.let_float(&v, &binary(*b, &l, &r)));
                v
            }
            ExprKind::View { src, coords: c } => {
                let at = map(c, coords);
                self.eval(w, *src, &at)
            }
            ExprKind::Dot { .. } => {
                if let Some(found) = &mut self.planned {
                    found.push((x, coords.to_vec()));
                    self.fresh("acc")
                } else {
                    self.dots_with(w, x, coords)
                }
            }
            ExprKind::Row { op, src, len } => self.row(w, *op, (*src, *len), coords),
            ExprKind::Gather { table, vocab, ids } => {
                let (lead, e) = coords.split_at(coords.len() - 1);
                let token = self.eval(w, *ids, lead);
                let id = self.fresh("id");
                w.line(d.let_int(&id, &d.to_int(&token)));
                let v = self.fresh("v");
                w.line(d.var_float(&v, "0.0f"));
                w.open(format!("if ({id} >= 0 && {id} < {vocab}) {{"));
                let at = index(table, &[id.clone(), e[0].clone()], self.clock);
                w.line(format!("{v} = arena[{at}];"));
                w.close();
                v
            }
            ExprKind::Concat { axis, parts } => {
                let v = self.fresh("v");
                w.line(d.var_float(&v, "0.0f"));
                let mut start = 0usize;
                for (p, part) in parts.iter().enumerate() {
                    let end = start + self.exprs[*part].shape[*axis];
                    let cond = format!("{} < {end}", paren(&coords[*axis]));
                    let open = match (p, p + 1 == parts.len()) {
                        (0, true) => "{".to_string(),
                        (0, false) => format!("if ({cond}) {{"),
                        (_, true) => "} else {".to_string(),
                        (_, false) => format!("}} else if ({cond}) {{"),
                    };
                    if p > 0 {
                        w.depth -= 1;
                    }
                    w.open(open);
                    self.scopes.push(HashMap::new());
                    let mut at = coords.to_vec();
                    if start > 0 {
                        at[*axis] = format!("{} - {start}", paren(&coords[*axis]));
                    }
                    let x = self.eval(w, *part, &at);
                    w.line(format!("{v} = {x};"));
                    self.scopes.pop();
                    start = end;
                }
                w.close();
                v
            }
        };
        self.scopes
            .last_mut()
            .expect("a block is open")
            .insert(key, name.clone());
        name
    }
}
