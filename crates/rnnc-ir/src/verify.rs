//! The verifier: re-derives every node's type from its operands, checks arities,
//! acyclicity, where arguments and inputs may appear, and scan signatures. It runs
//! after lowering and after every pass; backends accept only verified graphs.

use crate::graph::Graph;
use crate::infer::infer;
use crate::op::{ArgKind, Op};
use std::collections::HashSet;

/// A graph that has passed [`verify`]. Only the verifier makes one, so a stage that
/// takes a `&Verified` cannot be handed an unchecked graph.
#[derive(Debug)]
pub struct Verified<'g>(&'g Graph);

impl<'g> Verified<'g> {
    pub fn graph(&self) -> &'g Graph {
        self.0
    }
}

/// Checks the whole graph, nested scan bodies included; returns every problem found.
pub fn verify(g: &Graph) -> Result<Verified<'_>, Vec<String>> {
    let mut errors = Vec::new();
    check(g, Context::Model, &mut errors);
    let mut seen = HashSet::new();
    for (name, _, _) in g.inputs() {
        if !seen.insert(name.clone()) {
            errors.push(format!("input \"{name}\" is declared twice"));
        }
    }
    if errors.is_empty() {
        Ok(Verified(g))
    } else {
        Err(errors)
    }
}

/// Where a graph sits, which decides the arguments it may read.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    Model,
    ScanBody,
    FusedBody,
}

fn check(g: &Graph, cx: Context, errors: &mut Vec<String>) {
    let Some(order) = g.topo_order() else {
        errors.push(format!("graph {}: the dataflow has a cycle", g.name));
        return;
    };
    for (pos, id) in order.iter().enumerate() {
        let node = g.node(*id);
        let at = || format!("{}: node {pos} (`{}`)", g.name, node.op.name());
        let operands = g.operands(*id);
        let slots = g.operand_slots(*id);
        if slots.iter().enumerate().any(|(i, s)| *s as usize != i) {
            errors.push(format!(
                "{}: operand positions are not 0..{}",
                at(),
                slots.len()
            ));
            continue;
        }
        if let Some(bad) = operands.iter().find(|v| !g.contains(**v)) {
            errors.push(format!(
                "{}: operand refers to a missing result {}",
                at(),
                bad.result
            ));
            continue;
        }
        match &node.op {
            Op::Input { .. } | Op::Weight { .. } | Op::Zeros | Op::Arg { .. } => {
                if !operands.is_empty() || node.results.len() != 1 {
                    errors.push(format!("{}: takes no operands and has one result", at()));
                }
                let allowed = match &node.op {
                    Op::Input { .. } => cx == Context::Model,
                    Op::Arg {
                        kind: ArgKind::Operand,
                        ..
                    } => cx == Context::FusedBody,
                    Op::Arg { .. } => cx == Context::ScanBody,
                    _ => cx != Context::FusedBody,
                };
                if !allowed {
                    errors.push(format!("{}: `{}` cannot appear here", at(), node.op.name()));
                }
            }
            op => {
                let tys: Vec<_> = operands.iter().map(|v| g.ty(*v)).collect();
                match infer(op, &tys) {
                    Ok(want) if want == node.results => {}
                    Ok(want) => errors.push(format!(
                        "{}: result types {} do not match the inferred {}",
                        at(),
                        list(&node.results),
                        list(&want)
                    )),
                    Err(e) => errors.push(format!("{}: {e}", at())),
                }
                if let Op::Fused(fused) = op {
                    check(&fused.body, Context::FusedBody, errors);
                    if fused.body.outputs.iter().any(|(l, _)| l != "yield") {
                        errors.push(format!("{}: a fused region's outputs are `yield`s", at()));
                    }
                }
                if let Op::Decode(d) = op {
                    check_loop_body(&d.body, d.n_states, &at(), errors);
                }
                if let Op::Scan(scan) = op {
                    check_loop_body(&scan.body, scan.n_states, &at(), errors);
                    if let Some(tail) = &scan.tail {
                        check(tail, Context::ScanBody, errors);
                    }
                }
            }
        }
    }
    for (label, v) in &g.outputs {
        if !g.contains(*v) {
            errors.push(format!(
                "{}: output \"{label}\" refers to a missing value",
                g.name
            ));
        }
    }
}

/// A scan body or decoder step: its own checks, and outputs labelled `next` (one
/// per state) then `emit`.
fn check_loop_body(body: &Graph, n_states: usize, at: &str, errors: &mut Vec<String>) {
    check(body, Context::ScanBody, errors);
    let labels: Vec<&str> = body.outputs.iter().map(|(l, _)| l.as_str()).collect();
    let ok = labels.iter().take(n_states).all(|l| *l == "next")
        && labels.iter().skip(n_states).all(|l| *l == "emit");
    if !ok {
        errors.push(format!(
            "{at}: body outputs must be the next states, then the emits"
        ));
    }
}

fn list(tys: &[crate::types::TensorTy]) -> String {
    tys.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
