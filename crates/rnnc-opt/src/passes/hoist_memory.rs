//! `hoist-memory`: work in a loop body (a scan or a decoder step) that depends only
//! on its memories and on weights is the same at every step, so it moves out of the
//! loop, runs once, and the body reads the result as a new memory. In an attention
//! decoder this is the key projection `Ua(keys)`, the largest product of each step.
//!
//! ```text
//! before:  … = greedy_decode … %keys … {           after:  %9 = linear %keys, %ua : f32[B, S, 16]
//!            %4 = memory index=0 : f32[B, S, 16]            … = greedy_decode … %keys, %9 … {
//!            %5 = weight key="ua" : f32[16, 16]               %4 = memory index=0 : f32[B, S, 16]
//!            %6 = linear %4, %5 : f32[B, S, 16]               %6 = memory index=1 : f32[B, S, 16]
//! ```
//! Memories nothing reads any more are dropped. Unrolled scans are left alone.

use super::dce;
use crate::rewrite::drop_unread_args;
use crate::Pass;
use rnnc_ir::{ArgKind, Graph, NodeId, Op, Value};
use std::collections::{HashMap, HashSet};

pub struct HoistMemory;

impl Pass for HoistMemory {
    fn name(&self) -> &'static str {
        "hoist-memory"
    }

    fn run(&self, g: &mut Graph) -> Result<bool, String> {
        let pick = |op: &Op| match op {
            Op::Scan(s) => s.step == 1 && s.n_memory > 0,
            Op::Decode(d) => d.n_memory > 0,
            _ => false,
        };
        crate::rewrite::each_node(g, &pick, &mut hoist)
    }
}

/// Where a loop's memories start among its operands, how many it has, and its body.
fn parts(op: &mut Op) -> (usize, &mut usize, &mut Graph) {
    match op {
        Op::Scan(s) => (s.n_seqs + s.n_states, &mut s.n_memory, &mut s.body),
        Op::Decode(d) => (d.n_states, &mut d.n_memory, &mut d.body),
        _ => unreachable!("only loops are hoisted from"),
    }
}

fn hoist(g: &mut Graph, id: NodeId) -> Result<bool, String> {
    let mut op = g.node(id).op.clone();
    let operands = g.operands(id);
    let (first, n_memory, body) = parts(&mut op);
    dce::sweep(body);

    // Invariant: reads only memories, weights and constants; hoisted: invariant
    // and reads at least one memory (pure weight work is folded at load time).
    let order = body.topo_order().expect("verified graphs are acyclic");
    let mut invariant: HashSet<NodeId> = HashSet::new();
    let mut reads_memory: HashSet<NodeId> = HashSet::new();
    for &n in &order {
        let node = body.node(n);
        let ins = body.operands(n);
        let ok = match &node.op {
            Op::Arg {
                kind: ArgKind::Memory,
                ..
            } => {
                reads_memory.insert(n);
                true
            }
            Op::Weight { .. } | Op::Const(_) => true,
            Op::Arg { .. } | Op::Input { .. } | Op::Zeros | Op::Scan(_) | Op::Decode(_) => false,
            _ => node.results.len() == 1 && ins.iter().all(|v| invariant.contains(&v.node)),
        };
        if ok {
            invariant.insert(n);
            if ins.iter().any(|v| reads_memory.contains(&v.node)) {
                reads_memory.insert(n);
            }
        }
    }
    // (Everything that reads a memory here is invariant: it is only recorded then.)
    let hoisted =
        |n: &NodeId| reads_memory.contains(n) && !matches!(body.node(*n).op, Op::Arg { .. });
    // The frontier: hoisted values read by the loop's per-step work or yielded.
    let outputs: HashSet<NodeId> = body.outputs.iter().map(|(_, v)| v.node).collect();
    let frontier: Vec<NodeId> = order
        .iter()
        .copied()
        .filter(|n| hoisted(n))
        .filter(|n| {
            outputs.contains(n)
                || body
                    .users(Value::new(*n, 0))
                    .iter()
                    .any(|(u, _)| !hoisted(u))
        })
        .collect();
    if frontier.is_empty() {
        return Ok(false);
    }

    // Copy what the frontier needs out of the loop, memories read as the operands.
    let mut outer: HashMap<NodeId, Value> = HashMap::new();
    let mut needed: HashSet<NodeId> = HashSet::new();
    let mut stack = frontier.clone();
    while let Some(n) = stack.pop() {
        if needed.insert(n) {
            stack.extend(body.operands(n).iter().map(|v| v.node));
        }
    }
    for &n in order.iter().filter(|n| needed.contains(*n)) {
        let node = body.node(n);
        let v = match &node.op {
            Op::Arg {
                kind: ArgKind::Memory,
                index,
            } => operands[first + index],
            op => {
                let ins: Vec<Value> = body.operands(n).iter().map(|v| outer[&v.node]).collect();
                Value::new(g.add_node(op.clone(), &ins, node.results.clone()), 0)
            }
        };
        outer.insert(n, v);
    }

    // The body reads each frontier value as a new memory.
    let mut memories: Vec<Value> = operands[first..].to_vec();
    for f in &frontier {
        let ty = body.node(*f).results[0].clone();
        let arg = body.add_node(
            Op::Arg {
                kind: ArgKind::Memory,
                index: memories.len(),
            },
            &[],
            vec![ty],
        );
        body.replace_uses(Value::new(*f, 0), Value::new(arg, 0));
        memories.push(outer[f]);
    }
    dce::sweep(body);
    let memories = drop_unread_args(body, ArgKind::Memory, memories, false);
    *n_memory = memories.len();
    let mut all = operands[..first].to_vec();
    all.extend(memories);
    let results = g.add(op, &all)?;
    for (r, v) in results.into_iter().enumerate() {
        g.replace_uses(Value::new(id, r as u32), v);
    }
    g.remove_node(id);
    Ok(true)
}
