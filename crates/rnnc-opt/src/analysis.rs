//! Numbers about a graph for `rnnc passes`: how much work is inside the time loop.

use rnnc_ir::{Dim, Graph, Op};

/// Per-graph counts. "Per step" counts what one time step of every scan does, per
/// batch row, with `B = 1`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub nodes: usize,
    pub matmuls_in_loop: usize,
    pub matmuls_outside: usize,
    pub elementwise: usize,
    pub flops_per_step: u64,
    pub weight_bytes_per_step: u64,
}

fn fixed(d: &[Dim]) -> u64 {
    d.iter()
        .map(|d| if let Dim::Fixed(n) = d { *n as u64 } else { 1 })
        .product()
}

/// Counts nodes, products inside and outside scan bodies, elementwise ops, and the
/// FLOPs and weight bytes one time step reads.
pub fn stats(g: &Graph) -> Stats {
    let mut s = Stats::default();
    visit(g, false, &mut s);
    s
}

fn visit(g: &Graph, in_loop: bool, s: &mut Stats) {
    for id in g.node_ids() {
        let node = g.node(id);
        s.nodes += 1;
        match &node.op {
            Op::Linear | Op::MatMul => {
                if in_loop {
                    s.matmuls_in_loop += 1;
                    let ops = g.operands(id);
                    let (x, w) = (g.ty(ops[0]), g.ty(ops[1]));
                    // 2·m·k per row for `linear`; for a matmul, 2·m·k·n over its rows.
                    let k = fixed(&x.dims[x.rank() - 1..]);
                    let out = fixed(&node.results[0].dims);
                    s.flops_per_step += 2 * k * out;
                    s.weight_bytes_per_step += 4 * fixed(&w.dims);
                } else {
                    s.matmuls_outside += 1;
                }
            }
            op if op.is_elementwise() => {
                s.elementwise += 1;
                if in_loop {
                    s.flops_per_step += fixed(&node.results[0].dims);
                }
            }
            // An unrolled body covers `step` steps: its work per step is its total / step.
            Op::Scan(scan) => {
                let mut inner = Stats::default();
                visit(&scan.body, true, &mut inner);
                let step = scan.step.max(1) as u64;
                s.nodes += inner.nodes;
                s.matmuls_in_loop += inner.matmuls_in_loop;
                s.matmuls_outside += inner.matmuls_outside;
                s.elementwise += inner.elementwise;
                s.flops_per_step += inner.flops_per_step / step;
                s.weight_bytes_per_step += inner.weight_bytes_per_step / step;
                if let Some(tail) = &scan.tail {
                    s.nodes += stats(tail).nodes;
                }
            }
            // One kernel, however many ops it holds: count it once, and its FLOPs.
            Op::Fused(fused) => {
                let mut inner = Stats::default();
                visit(&fused.body, in_loop, &mut inner);
                s.nodes += inner.nodes;
                s.elementwise += 1;
                s.flops_per_step += inner.flops_per_step;
            }
            _ => {}
        }
    }
}

/// Floating-point operations of the products (`linear`, `matmul`) in one run with
/// batch `batch` and `time` steps: 2·k per output element, as the peer benchmarks
/// count (elementwise work left out). A scan body counts once per step.
pub fn matmul_flops(g: &Graph, batch: usize, time: usize) -> f64 {
    let size = |dims: &[Dim]| -> f64 {
        dims.iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n as f64,
                Dim::Batch => batch as f64,
                Dim::Time | Dim::Source => time as f64,
            })
            .product()
    };
    let mut total = 0.0;
    for id in g.node_ids() {
        let node = g.node(id);
        match &node.op {
            Op::Linear | Op::MatMul => {
                let x = g.ty(g.operands(id)[0]);
                total += 2.0 * size(&x.dims[x.rank() - 1..]) * size(&node.results[0].dims);
            }
            // An unrolled body covers `step` steps per run of it.
            Op::Scan(scan) => {
                total += matmul_flops(&scan.body, batch, time) * time as f64 / scan.step as f64
            }
            _ => {}
        }
    }
    total
}
