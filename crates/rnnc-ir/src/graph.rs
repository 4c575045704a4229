//! The graph: a `petgraph::StableDiGraph` of ops behind the IR's own types.
//! Edges run from producer to consumer and carry which result feeds which operand.

use crate::infer::infer;
use crate::op::Op;
use crate::types::TensorTy;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::BinaryHeap;

/// A node handle. Never printed: the text form numbers values in topological order.
pub type NodeId = NodeIndex<u32>;

/// One result of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value {
    pub node: NodeId,
    pub result: u32,
}

impl Value {
    pub fn new(node: NodeId, result: u32) -> Self {
        Value { node, result }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub op: Op,
    pub results: Vec<TensorTy>,
    /// Where in the source lowering made it; None for nodes a pass made, or a
    /// graph read from its text form. Not printed, not part of equality of graphs.
    pub span: Option<rnnc_syntax::Span>,
}

/// Edge payload: result `result` of the source feeds operand `operand` of the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use {
    pub result: u32,
    pub operand: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    nodes: StableDiGraph<Node, Use>,
    /// Named results. In a scan body: the next states, then the emits.
    pub outputs: Vec<(String, Value)>,
    /// The source files the nodes' spans point into (a lowered model's top-level
    /// graph), for messages that name a place; not part of equality.
    pub sources: Option<std::sync::Arc<rnnc_syntax::SourceMap>>,
}

impl PartialEq for Graph {
    /// Structural equality through the printed form, which is canonical.
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Self {
        Graph {
            name: name.into(),
            ..Default::default()
        }
    }

    /// `file:line:column` of `span` in [`Graph::sources`], if the graph has them.
    pub fn place(&self, span: rnnc_syntax::Span) -> Option<String> {
        let file = self.sources.as_ref()?.files().nth(span.file.0)?.1;
        let before = file.text.get(..span.start)?;
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Some(format!("{}:{line}:{column}", file.name))
    }

    /// `why`, followed by ` (at file:line:column)` where `at` is a place this
    /// graph's sources know: how the backends word a refusal.
    pub fn with_place(&self, why: &str, at: Option<rnnc_syntax::Span>) -> String {
        match at.and_then(|s| self.place(s)) {
            Some(place) => format!("{why} (at {place})"),
            None => why.to_string(),
        }
    }

    /// Adds a node with the result types given (the verifier checks them).
    pub fn add_node(&mut self, op: Op, operands: &[Value], results: Vec<TensorTy>) -> NodeId {
        let id = self.nodes.add_node(Node {
            op,
            results,
            span: None,
        });
        for (i, v) in operands.iter().enumerate() {
            self.nodes.add_edge(
                v.node,
                id,
                Use {
                    result: v.result,
                    operand: i as u32,
                },
            );
        }
        id
    }

    /// Adds a node whose result types are inferred from its operands.
    pub fn add(&mut self, op: Op, operands: &[Value]) -> Result<Vec<Value>, String> {
        let tys: Vec<&TensorTy> = operands.iter().map(|v| self.ty(*v)).collect();
        let results = infer(&op, &tys)?;
        let n = results.len();
        let id = self.add_node(op, operands, results);
        Ok((0..n as u32).map(|r| Value::new(id, r)).collect())
    }

    /// Like [`Graph::add`] for single-result ops.
    pub fn add1(&mut self, op: Op, operands: &[Value]) -> Result<Value, String> {
        Ok(self.add(op, operands)?[0])
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    pub fn ty(&self, v: Value) -> &TensorTy {
        &self.nodes[v.node].results[v.result as usize]
    }

    pub fn contains(&self, v: Value) -> bool {
        self.nodes
            .node_weight(v.node)
            .is_some_and(|n| (v.result as usize) < n.results.len())
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.node_indices()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.node_count()
    }

    /// Operands of a node in operand order.
    pub fn operands(&self, id: NodeId) -> Vec<Value> {
        let mut ops: Vec<(u32, Value)> = self
            .nodes
            .edges_directed(id, Direction::Incoming)
            .map(|e| {
                (
                    e.weight().operand,
                    Value::new(e.source(), e.weight().result),
                )
            })
            .collect();
        ops.sort_by_key(|(i, _)| *i);
        ops.into_iter().map(|(_, v)| v).collect()
    }

    /// Every (consumer, operand position) that reads `v`, in a stable order.
    pub fn users(&self, v: Value) -> Vec<(NodeId, u32)> {
        let mut out: Vec<(NodeId, u32)> = self
            .nodes
            .edges_directed(v.node, Direction::Outgoing)
            .filter(|e| e.weight().result == v.result)
            .map(|e| (e.target(), e.weight().operand))
            .collect();
        out.sort();
        out
    }

    /// Makes every reader of `old` (nodes and graph outputs) read `new` instead.
    pub fn replace_uses(&mut self, old: Value, new: Value) {
        if old == new {
            return;
        }
        let edges: Vec<_> = self
            .nodes
            .edges_directed(old.node, Direction::Outgoing)
            .filter(|e| e.weight().result == old.result)
            .map(|e| (e.id(), e.target(), e.weight().operand))
            .collect();
        for (edge, target, operand) in edges {
            self.nodes.remove_edge(edge);
            self.nodes.add_edge(
                new.node,
                target,
                Use {
                    result: new.result,
                    operand,
                },
            );
        }
        for (_, v) in &mut self.outputs {
            if *v == old {
                *v = new;
            }
        }
    }

    /// Removes a node and its edges; its readers must have been rewired first.
    pub fn remove_node(&mut self, id: NodeId) {
        self.nodes.remove_node(id);
    }

    /// Operand positions as stored on the edges, for the verifier.
    pub(crate) fn operand_slots(&self, id: NodeId) -> Vec<u32> {
        let mut s: Vec<u32> = self
            .nodes
            .edges_directed(id, Direction::Incoming)
            .map(|e| e.weight().operand)
            .collect();
        s.sort_unstable();
        s
    }

    /// Nodes in topological order; ties go to the earlier-created node, so the
    /// order (and so the printed numbering) is deterministic. `None` on a cycle.
    pub fn topo_order(&self) -> Option<Vec<NodeId>> {
        let mut indeg: std::collections::HashMap<NodeId, usize> = self
            .nodes
            .node_indices()
            .map(|n| (n, self.nodes.edges_directed(n, Direction::Incoming).count()))
            .collect();
        let mut ready: BinaryHeap<std::cmp::Reverse<NodeId>> = indeg
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| std::cmp::Reverse(*n))
            .collect();
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(std::cmp::Reverse(n)) = ready.pop() {
            order.push(n);
            for e in self.nodes.edges_directed(n, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("edge target is a node");
                *d -= 1;
                if *d == 0 {
                    ready.push(std::cmp::Reverse(e.target()));
                }
            }
        }
        (order.len() == self.nodes.node_count()).then_some(order)
    }

    /// Visits this graph and every nested scan body, outermost first.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Graph)) {
        f(self);
        for id in self.nodes.node_indices() {
            match &self.nodes[id].op {
                Op::Scan(s) => {
                    s.body.walk(f);
                    if let Some(t) = &s.tail {
                        t.walk(f);
                    }
                }
                Op::Fused(x) => x.body.walk(f),
                Op::Decode(d) => d.body.walk(f),
                _ => {}
            }
        }
    }

    /// Every weight key used anywhere in the graph, with its type, sorted by key.
    pub fn weights(&self) -> Vec<(String, TensorTy)> {
        let mut out: Vec<(String, TensorTy)> = Vec::new();
        self.walk(&mut |g| {
            for id in g.node_ids() {
                if let Op::Weight { key } = &g.node(id).op {
                    if !out.iter().any(|(k, _)| k == key) {
                        out.push((key.clone(), g.node(id).results[0].clone()));
                    }
                }
            }
        });
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The model inputs in creation order: name, type, and whether zeros may stand in.
    pub fn inputs(&self) -> Vec<(String, TensorTy, bool)> {
        self.nodes
            .node_indices()
            .filter_map(|id| match &self.nodes[id].op {
                Op::Input { name, zeros } => {
                    Some((name.clone(), self.nodes[id].results[0].clone(), *zeros))
                }
                _ => None,
            })
            .collect()
    }
}
