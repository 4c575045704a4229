//! `fold-constants`: evaluates arithmetic on scalar constants and propagates zeros.
//!
//! ```text
//! before:  %3 = zeros : f32[4, B, 16]                        after:  %5 = zeros : f32[B, 16]
//!          %4 = index axis=0 index=0 %3 : f32[B, 16]
//! ```
//! The zero initial states of `rnn` (a stacked zeros tensor, indexed per layer) fold
//! to one zeros value each. Also `1.0 - 0.5` → `0.5`, `x + 0` → `x` and `x * 1` → `x`
//! where the result has x's type (so no broadcast is lost). `x * 0` is left alone:
//! it is NaN, not 0, for an infinite x.

use crate::rewrite::each_graph;
use crate::Pass;
use rnnc_ir::{BinaryOp, Graph, NodeId, Op, UnaryOp, Value};

pub struct FoldConstants;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        each_graph(g, &mut |g| Ok(fold(g) && super::dce::sweep_changed(g)))
    }
}

fn constant(g: &Graph, v: Value) -> Option<f32> {
    match g.node(v.node).op {
        Op::Const(c) => Some(c),
        _ => None,
    }
}

fn is_zeros(g: &Graph, v: Value) -> bool {
    matches!(g.node(v.node).op, Op::Zeros) || constant(g, v) == Some(0.0)
}

fn fold(g: &mut Graph) -> bool {
    let mut changed = false;
    for id in g.topo_order().expect("verified graphs are acyclic") {
        if let Some(new) = folded(g, id) {
            g.replace_uses(Value::new(id, 0), new);
            changed = true;
        }
    }
    changed
}

/// The value that replaces node `id`, if it folds.
fn folded(g: &mut Graph, id: NodeId) -> Option<Value> {
    let ops = g.operands(id);
    let ty = g.node(id).results.first()?.clone();
    let zeros = |g: &mut Graph| Value::new(g.add_node(Op::Zeros, &[], vec![ty.clone()]), 0);
    match g.node(id).op.clone() {
        Op::Unary(UnaryOp::Neg) => {
            let c = constant(g, ops[0])?;
            Some(Value::new(g.add_node(Op::Const(-c), &[], vec![ty]), 0))
        }
        Op::Binary(b) => {
            let (x, y) = (ops[0], ops[1]);
            if let (Some(a), Some(c)) = (constant(g, x), constant(g, y)) {
                let v = match b {
                    BinaryOp::Add => a + c,
                    BinaryOp::Sub => a - c,
                    BinaryOp::Mul => a * c,
                    BinaryOp::Div => a / c,
                };
                return Some(Value::new(g.add_node(Op::Const(v), &[], vec![ty]), 0));
            }
            let keeps = |v: Value, g: &Graph| *g.ty(v) == ty;
            match b {
                BinaryOp::Add if is_zeros(g, y) && keeps(x, g) => Some(x),
                BinaryOp::Add if is_zeros(g, x) && keeps(y, g) => Some(y),
                BinaryOp::Sub if is_zeros(g, y) && keeps(x, g) => Some(x),
                BinaryOp::Mul if constant(g, y) == Some(1.0) && keeps(x, g) => Some(x),
                BinaryOp::Mul if constant(g, x) == Some(1.0) && keeps(y, g) => Some(y),
                BinaryOp::Div if constant(g, y) == Some(1.0) && keeps(x, g) => Some(x),
                _ => None,
            }
        }
        Op::Index { .. } | Op::Slice { .. } | Op::Flip { .. } | Op::Transpose { .. }
            if matches!(g.node(ops[0].node).op, Op::Zeros) =>
        {
            Some(zeros(g))
        }
        Op::Concat { .. } | Op::Stack { .. }
            if ops.iter().all(|v| matches!(g.node(v.node).op, Op::Zeros)) =>
        {
            Some(zeros(g))
        }
        _ => None,
    }
}
