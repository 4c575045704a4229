//! `hoist-input-projection`: everything in a scan body that depends only on the
//! step's input (and on weights) moves out of the loop and runs once over all T
//! steps, so the input projection becomes one large GEMM; the body reads its
//! result as a new sequence.
//!
//! ```text
//! before:  %2, %3 = scan reverse=false seqs=1 states=1 %0, %1 … {     after:  %4 = linear %0, %w_ih : f32[B, T, 16]
//!            %4 = seq index=0 : f32[B, 12]                                   %2, %3 = scan reverse=false seqs=2 states=1 %0, %4, %1 … {
//!            %5 = state index=0 : f32[B, 16]                                   %5 = seq index=0 : f32[B, 12]
//!            %6 = linear %4, %w_ih : f32[B, 16]                                %6 = state index=0 : f32[B, 16]
//!            %7 = linear %5, %w_hh : f32[B, 16]                                %7 = seq index=1 : f32[B, 16]
//!            %8 = add %6, %7 : f32[B, 16]                                      %8 = linear %6, %w_hh : f32[B, 16]
//!            …                                                                 %9 = add %7, %8 : f32[B, 16]
//! ```
//! A step op on `[B, …]` runs unchanged on `[B, T, …]` once its axes past the
//! batch axis shift by one; ops that touch the batch axis, batched matmuls, and
//! operands whose broadcast would change stay in the loop.

use super::dce;
use crate::rewrite::{add, dependencies, drop_unread_args, Dep};
use crate::Pass;
use rnnc_ir::{ArgKind, Graph, NodeId, Op, Scan, Value};
use std::collections::{HashMap, HashSet};

pub struct HoistInputProjection;

impl Pass for HoistInputProjection {
    fn name(&self) -> &'static str {
        "hoist-input-projection"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        crate::rewrite::each_node(g, &|op| matches!(op, Op::Scan(_)), &mut hoist)
    }
}

/// The op with its axes moved past a new time axis at position 1, if it can run
/// over the whole sequence at once.
fn over_time(op: &Op) -> Option<Op> {
    let shift = |a: usize| if a >= 1 { Some(a + 1) } else { None };
    Some(match op {
        Op::Unary(_) | Op::Binary(_) | Op::Linear | Op::LayerNorm { .. } | Op::Embedding => {
            op.clone()
        }
        Op::Concat { axis } => Op::Concat {
            axis: shift(*axis)?,
        },
        Op::Slice { axis, start, end } => Op::Slice {
            axis: shift(*axis)?,
            start: *start,
            end: *end,
        },
        Op::Index { axis, index } => Op::Index {
            axis: shift(*axis)?,
            index: *index,
        },
        Op::Softmax { axis } => Op::Softmax {
            axis: shift(*axis)?,
        },
        Op::LogSoftmax { axis } => Op::LogSoftmax {
            axis: shift(*axis)?,
        },
        Op::Flip { axis } => Op::Flip {
            axis: shift(*axis)?,
        },
        Op::Transpose { a, b } => Op::Transpose {
            a: shift(*a)?,
            b: shift(*b)?,
        },
        _ => return None,
    })
}

fn hoist(g: &mut Graph, scan_id: NodeId) -> Result<bool, String> {
    if let Op::Scan(scan) = &mut g.node_mut(scan_id).op {
        dce::sweep(&mut scan.body);
    }
    let Op::Scan(scan) = g.node(scan_id).op.clone() else {
        unreachable!("a scan")
    };
    if scan.step != 1 {
        return Ok(false); // hoisting comes before unrolling; an unrolled body is left alone
    }
    let body = &scan.body;
    let dep = dependencies(body);
    let order = body.topo_order().expect("verified graphs are acyclic");

    // Which body nodes can run over all steps at once.
    let mut movable: HashMap<NodeId, bool> = HashMap::new();
    for &id in &order {
        let node = body.node(id);
        let ok = match &node.op {
            Op::Arg {
                kind: ArgKind::Seq, ..
            } => true,
            op if dep[&id] == Dep::Seq && over_time(op).is_some() => {
                let rank = node.results[0].rank();
                body.operands(id)
                    .iter()
                    .enumerate()
                    .all(|(i, v)| match dep[&v.node] {
                        // A weight operand of a product or lookup is not broadcast; any other
                        // load-time operand must not reach the batch axis.
                        Dep::Load => {
                            matches!((&node.op, i), (Op::Linear, 1) | (Op::Embedding, 0))
                                || body.ty(*v).rank() < rank
                        }
                        _ => {
                            movable.get(&v.node).copied().unwrap_or(false)
                                && body.ty(*v).rank() == rank
                        }
                    })
            }
            _ => false,
        };
        movable.insert(id, ok);
    }
    // The moved values the loop still reads: they become new sequences.
    let is_output = |v: Value| body.outputs.iter().any(|(_, o)| *o == v);
    let frontier: Vec<Value> = order
        .iter()
        .filter(|id| movable[id] && !matches!(body.node(**id).op, Op::Arg { .. }))
        .flat_map(|id| (0..body.node(*id).results.len() as u32).map(move |r| Value::new(*id, r)))
        .filter(|v| is_output(*v) || body.users(*v).iter().any(|(u, _)| !movable[u]))
        .collect();
    if frontier.is_empty() {
        return Ok(false);
    }

    // Copy the moved nodes (and the load-time values they read) out of the loop.
    let operands = g.operands(scan_id);
    let (seqs, inits) = operands.split_at(scan.n_seqs);
    let mut needed: HashSet<NodeId> = order.iter().filter(|id| movable[*id]).copied().collect();
    for &id in order.iter().rev() {
        if dep[&id] == Dep::Load
            && body
                .users(Value::new(id, 0))
                .iter()
                .any(|(u, _)| needed.contains(u))
        {
            needed.insert(id);
        }
    }
    let mut outer: HashMap<NodeId, Value> = HashMap::new();
    for &id in order.iter().filter(|id| needed.contains(*id)) {
        let node = body.node(id);
        let v = match &node.op {
            Op::Arg {
                kind: ArgKind::Seq,
                index,
            } => seqs[*index],
            Op::Weight { .. } | Op::Const(_) => {
                Value::new(g.add_node(node.op.clone(), &[], node.results.clone()), 0)
            }
            op => {
                let args: Vec<Value> = body.operands(id).iter().map(|v| outer[&v.node]).collect();
                let op = if dep[&id] == Dep::Load {
                    op.clone()
                } else {
                    over_time(op).expect("checked movable")
                };
                add(g, op, &args)?
            }
        };
        outer.insert(id, v);
    }

    // The loop reads each frontier value as step t of a new sequence.
    let mut new_body = (*scan.body).clone();
    let mut new_seqs: Vec<Value> = seqs.to_vec();
    for (j, f) in frontier.iter().enumerate() {
        let ty = body.ty(*f).clone();
        let arg = new_body.add_node(
            Op::Arg {
                kind: ArgKind::Seq,
                index: scan.n_seqs + j,
            },
            &[],
            vec![ty],
        );
        new_body.replace_uses(*f, Value::new(arg, 0));
        new_seqs.push(outer[&f.node]);
    }
    dce::sweep(&mut new_body);
    // One sequence stays even if unread: it gives the scan its length.
    let new_seqs = drop_unread_args(&mut new_body, ArgKind::Seq, new_seqs, true);
    let mut new_scan = Scan::new(scan.reverse, new_seqs.len(), scan.n_states, new_body);
    new_scan.n_memory = scan.n_memory;
    let mut all = new_seqs;
    all.extend_from_slice(inits);
    let results = g.add(Op::Scan(new_scan), &all)?;
    for (r, v) in results.into_iter().enumerate() {
        g.replace_uses(Value::new(scan_id, r as u32), v);
    }
    g.remove_node(scan_id);
    Ok(true)
}
