//! `unroll-time{factor=k}`: the time loop runs k steps per iteration; the steps left
//! over (`T mod k`) run in a one-step `tail` loop. Without a factor, or with a factor
//! at least T when T is fixed, the loop disappears: every step is written out.
//!
//! ```text
//! before:  %2, %3 = scan reverse=false seqs=1 states=1 %0, %1 : … {
//!            %4 = seq index=0 …   %5 = state index=0 …   %6 = add %4, %5 …
//!            next %6
//!            emit %6
//!          }
//! after (factor=2):
//!          %2, %3 = scan reverse=false seqs=1 states=1 step=2 %0, %1 : … {
//!            %4 = seq index=0 …   %5 = state index=0 …   %6 = add %4, %5 …
//!            %7 = seq index=1 …   %8 = add %7, %6 …
//!            next %8
//!            emit %6, %8
//!          } tail {
//!            (the original one-step body)
//!          }
//! ```
//! In the k-step body, step j reads sequence s as `seq` argument `j * seqs + s`, and
//! values known at load time (weights) are shared by all k copies. Why: a backend
//! can then keep weights in registers across k steps and schedule k steps' work
//! together; a fixed short T needs no loop at all.

use crate::rewrite::{add, dependencies, each_node, Dep};
use crate::Pass;
use rnnc_ir::{ArgKind, Dim, Graph, NodeId, Op, Scan, Value};
use std::collections::HashMap;

pub struct UnrollTime {
    factor: Option<usize>,
}

impl UnrollTime {
    pub fn from_options(options: &[(String, String)]) -> Result<Box<dyn Pass>, String> {
        let mut factor = None;
        for (k, v) in options {
            match k.as_str() {
                "factor" => match v.parse::<usize>() {
                    Ok(f) if f >= 1 => factor = Some(f),
                    _ => {
                        return Err(format!(
                            "unroll-time{{factor={v}}}: the factor is an integer ≥ 1"
                        ))
                    }
                },
                other => {
                    return Err(format!(
                        "pass `unroll-time` takes no option `{other}`; it takes `factor`"
                    ))
                }
            }
        }
        Ok(Box::new(UnrollTime { factor }))
    }
}

impl Pass for UnrollTime {
    fn name(&self) -> &'static str {
        "unroll-time"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        let pick = |op: &Op| matches!(op, Op::Scan(s) if s.step == 1);
        each_node(g, &pick, &mut |g, id| {
            let seq = g.operands(id)[0];
            match (g.ty(seq).dims[1], self.factor) {
                (Dim::Fixed(n), f) if n >= 1 && f.is_none_or(|f| f >= n) => unroll_fully(g, id, n),
                (_, Some(k)) if k >= 2 => unroll_by(g, id, k),
                _ => Ok(false),
            }
        })
    }
}

/// Copies `body` once into `into`: arguments resolve through `arg`, load-time nodes
/// through `shared` (filled by the first copy), the rest are cloned. Returns the
/// copies of the body's outputs.
fn copy_body(
    body: &Graph,
    into: &mut Graph,
    shared: &mut HashMap<NodeId, Value>,
    arg: &mut dyn FnMut(&mut Graph, ArgKind, usize) -> Result<Value, String>,
) -> Result<Vec<Value>, String> {
    let dep = dependencies(body);
    let mut map: HashMap<Value, Value> = HashMap::new();
    for id in body.topo_order().expect("verified graphs are acyclic") {
        let node = body.node(id);
        let results: Vec<Value> = match &node.op {
            Op::Arg { kind, index } => vec![arg(into, *kind, *index)?],
            _ if dep[&id] == Dep::Load && shared.contains_key(&id) => vec![shared[&id]],
            op => {
                let operands: Vec<Value> = body.operands(id).iter().map(|v| map[v]).collect();
                let new = into.add_node(op.clone(), &operands, node.results.clone());
                let vs: Vec<Value> = (0..node.results.len() as u32)
                    .map(|r| Value::new(new, r))
                    .collect();
                if dep[&id] == Dep::Load {
                    shared.insert(id, vs[0]);
                }
                vs
            }
        };
        for (r, v) in results.into_iter().enumerate() {
            map.insert(Value::new(id, r as u32), v);
        }
    }
    Ok(body.outputs.iter().map(|(_, v)| map[v]).collect())
}

fn unroll_by(g: &mut Graph, id: NodeId, k: usize) -> Result<bool, String> {
    let Op::Scan(scan) = g.node(id).op.clone() else {
        unreachable!("a scan")
    };
    let (n_seqs, n_states) = (scan.n_seqs, scan.n_states);
    let mut body = Graph::new("body");
    let mut shared = HashMap::new();
    // Memories are the same at every step: one argument node serves every copy.
    let mut memory: HashMap<usize, Value> = HashMap::new();
    let mut state: Vec<Option<Value>> = vec![None; n_states];
    let mut emits = Vec::new();
    for j in 0..k {
        let outs = copy_body(&scan.body, &mut body, &mut shared, &mut |b, kind, index| {
            let ty = scan.body.node(arg_node(&scan.body, kind, index)).results[0].clone();
            Ok(match kind {
                ArgKind::Seq => Value::new(
                    b.add_node(
                        Op::Arg {
                            kind,
                            index: j * n_seqs + index,
                        },
                        &[],
                        vec![ty],
                    ),
                    0,
                ),
                ArgKind::State => match state[index] {
                    Some(v) => v,
                    None => Value::new(b.add_node(Op::Arg { kind, index }, &[], vec![ty]), 0),
                },
                ArgKind::Memory => *memory.entry(index).or_insert_with(|| {
                    Value::new(b.add_node(Op::Arg { kind, index }, &[], vec![ty]), 0)
                }),
                ArgKind::Operand => return Err("scan bodies have no operand arguments".into()),
            })
        })?;
        for (i, v) in outs[..n_states].iter().enumerate() {
            state[i] = Some(*v);
        }
        emits.extend(outs[n_states..].iter().copied());
    }
    body.outputs = state
        .into_iter()
        .map(|v| ("next".to_string(), v.expect("every state has a next value")))
        .collect();
    body.outputs
        .extend(emits.into_iter().map(|v| ("emit".to_string(), v)));
    let unrolled = Scan {
        step: k,
        tail: Some(scan.body.clone()),
        body: Box::new(body),
        ..scan
    };
    let operands = g.operands(id);
    let results = g.add(Op::Scan(unrolled), &operands)?;
    for (r, v) in results.into_iter().enumerate() {
        g.replace_uses(Value::new(id, r as u32), v);
    }
    g.remove_node(id);
    Ok(true)
}

/// The body node of an argument (every argument the body reads has one).
fn arg_node(body: &Graph, kind: ArgKind, index: usize) -> NodeId {
    body.node_ids()
        .find(|n| body.node(*n).op == Op::Arg { kind, index })
        .expect("the argument exists")
}

fn unroll_fully(g: &mut Graph, id: NodeId, n: usize) -> Result<bool, String> {
    let Op::Scan(scan) = g.node(id).op.clone() else {
        unreachable!("a scan")
    };
    let operands = g.operands(id);
    let (seqs, rest) = operands.split_at(scan.n_seqs);
    let (inits, memory) = rest.split_at(scan.n_states);
    let mut states: Vec<Value> = inits.to_vec();
    let n_emits = scan.n_emits();
    let mut emits_at: Vec<Vec<Value>> = vec![Vec::new(); n];
    let mut shared = HashMap::new();
    for p in 0..n {
        let t = if scan.reverse { n - 1 - p } else { p };
        let current = states.clone();
        let outs = copy_body(
            &scan.body,
            g,
            &mut shared,
            &mut |g, kind, index| match kind {
                ArgKind::Seq => add(
                    g,
                    Op::Index {
                        axis: 1,
                        index: t as i64,
                    },
                    &[seqs[index]],
                ),
                ArgKind::State => Ok(current[index]),
                ArgKind::Memory => Ok(memory[index]),
                ArgKind::Operand => Err("scan bodies have no operand arguments".into()),
            },
        )?;
        states = outs[..scan.n_states].to_vec();
        emits_at[t] = outs[scan.n_states..].to_vec();
    }
    for e in 0..n_emits {
        let per_step: Vec<Value> = emits_at.iter().map(|vs| vs[e]).collect();
        let stacked = add(g, Op::Stack { axis: 1 }, &per_step)?;
        g.replace_uses(Value::new(id, e as u32), stacked);
    }
    for (i, v) in states.iter().enumerate() {
        g.replace_uses(Value::new(id, (n_emits + i) as u32), *v);
    }
    g.remove_node(id);
    Ok(true)
}
