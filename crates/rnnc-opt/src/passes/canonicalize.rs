//! `canonicalize`: local rewrites to simpler equivalent forms.
//!
//! ```text
//! before:  %5 = stack axis=0 %1, %2, %3 : f32[3, B, 16]      after:  (readers of %6 read %3;
//!          %6 = index axis=0 index=-1 %5 : f32[B, 16]                readers of %8 read %0)
//!          %7 = neg %0 : f32[B, 4]
//!          %8 = neg %7 : f32[B, 4]
//! ```
//! - `index(stack(x0, …, xn), i)` on the stacked axis → `xi` (`h_n[-1]` after `rnn`);
//! - `slice(concat(…, p, …))` that takes exactly the part `p` → `p`;
//! - `slice` over a whole axis, `concat` of one value, `transpose(x, a, a)` → `x`;
//! - `neg(neg(x))`, `flip(flip(x))` and `transpose(transpose(x))` on the same axes → `x`;
//! - `x + neg(y)` → `x - y`, `neg(x) + y` → `y - x`, `x - neg(y)` → `x + y`.
//!
//! Each keeps the value's type, so readers are unaffected.

use crate::rewrite::{add, each_graph};
use crate::Pass;
use rnnc_ir::{BinaryOp, Dim, Graph, NodeId, Op, UnaryOp, Value};

pub struct Canonicalize;

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| {
            let mut changed = false;
            for id in g.topo_order().expect("verified graphs are acyclic") {
                if let Some(v) = simpler(g, id)? {
                    if g.ty(v) == &g.node(id).results[0] {
                        g.replace_uses(Value::new(id, 0), v);
                        changed = true;
                    }
                }
            }
            if changed {
                super::dce::sweep(g);
            }
            Ok(changed)
        })
    }
}

fn op_of(g: &Graph, v: Value) -> &Op {
    &g.node(v.node).op
}

/// A simpler value equal to node `id`'s result, if there is one.
fn simpler(g: &mut Graph, id: NodeId) -> Result<Option<Value>, String> {
    let ops = g.operands(id);
    Ok(match g.node(id).op.clone() {
        Op::Index { axis, index } => match op_of(g, ops[0]).clone() {
            Op::Stack { axis: a } if a == axis => {
                let parts = g.operands(ops[0].node);
                let n = parts.len() as i64;
                let i = if index < 0 { index + n } else { index };
                (0..n).contains(&i).then(|| parts[i as usize])
            }
            _ => None,
        },
        Op::Slice { axis, start, end } => {
            if g.ty(ops[0]).dims[axis] == Dim::Fixed(end - start) && start == 0 {
                return Ok(Some(ops[0]));
            }
            match op_of(g, ops[0]).clone() {
                Op::Concat { axis: a } if a == axis => {
                    let mut offset = 0;
                    let mut found = None;
                    for p in g.operands(ops[0].node) {
                        let Dim::Fixed(w) = g.ty(p).dims[axis] else {
                            break;
                        };
                        if offset == start && offset + w == end {
                            found = Some(p);
                        }
                        offset += w;
                    }
                    found
                }
                _ => None,
            }
        }
        Op::Concat { .. } if ops.len() == 1 => Some(ops[0]),
        Op::Transpose { a, b } if a == b => Some(ops[0]),
        Op::Transpose { a, b } => match op_of(g, ops[0]) {
            Op::Transpose { a: c, b: d } if (a, b) == (*c, *d) || (a, b) == (*d, *c) => {
                Some(g.operands(ops[0].node)[0])
            }
            _ => None,
        },
        Op::Flip { axis } => match op_of(g, ops[0]) {
            Op::Flip { axis: a } if *a == axis => Some(g.operands(ops[0].node)[0]),
            _ => None,
        },
        Op::Unary(UnaryOp::Neg) => match op_of(g, ops[0]) {
            Op::Unary(UnaryOp::Neg) => Some(g.operands(ops[0].node)[0]),
            _ => None,
        },
        Op::Binary(b @ (BinaryOp::Add | BinaryOp::Sub)) => {
            let neg = |g: &Graph, v: Value| match op_of(g, v) {
                Op::Unary(UnaryOp::Neg) => Some(g.operands(v.node)[0]),
                _ => None,
            };
            let (x, y) = (ops[0], ops[1]);
            match (b, neg(g, x), neg(g, y)) {
                (BinaryOp::Add, _, Some(ny)) => Some(add(g, Op::Binary(BinaryOp::Sub), &[x, ny])?),
                (BinaryOp::Add, Some(nx), None) => {
                    Some(add(g, Op::Binary(BinaryOp::Sub), &[y, nx])?)
                }
                (BinaryOp::Sub, _, Some(ny)) => Some(add(g, Op::Binary(BinaryOp::Add), &[x, ny])?),
                _ => None,
            }
        }
        _ => None,
    })
}
