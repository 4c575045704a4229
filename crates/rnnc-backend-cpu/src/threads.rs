//! How many threads a whole-model program runs on when the caller leaves it to
//! the backend: a cost model of the work a time step holds against what the
//! threads' meetings cost, so that small recurrences stay on one thread, where
//! splitting them would only add waiting.

use crate::plan::{Instr, Plan};
use crate::whole::WholePlan;

/// Work done per second on one thread, in the units of [`work`]: about what the
/// product kernels reach on a matrix-vector product streamed from L2 (50–65
/// GFLOP/s measured on an AVX-512 Xeon; docs/performance.md).
const RATE: f64 = 50e9;
/// What the threads' meetings cost per time step: about two barriers of 0.3–0.5 µs
/// (docs/performance.md), and the imbalance between two threads' halves.
const MEETING_S: f64 = 1.0e-6;

/// Products count 2 FLOPs per multiply-add; elementwise loops one unit per op
/// and element (a transcendental is several, but they are a small share).
fn work(instrs: &[Instr]) -> f64 {
    instrs
        .iter()
        .map(|i| match i {
            Instr::MatMul { x, k, m, .. } | Instr::Gemm { x, k, m, .. } => {
                2.0 * (x.rows * k * m) as f64
            }
            Instr::Elementwise(e) => (e.rows * e.cols * e.code.len()) as f64,
            Instr::RowSoftmax { x, .. } => 10.0 * (x.rows * x.cols) as f64,
            _ => 0.0,
        })
        .sum()
}

/// Work of one run of a scan's plan, and how many steps it takes (its barriers).
fn scan_work(p: &Plan) -> (f64, usize) {
    let k = p.body.steps.max(1);
    let runs = p.time / k;
    let mut w = work(&p.body.instrs) * runs as f64;
    let mut steps = runs;
    if let Some(tail) = &p.tail {
        let left = p.time - runs * k;
        w += work(&tail.instrs) * left as f64;
        steps += left;
    }
    (w, steps)
}

/// The thread count for `whole`: `max` when splitting saves more time than the
/// meetings cost (by the model above), else 1.
pub fn choose(whole: &WholePlan, max: usize) -> usize {
    if max <= 1 {
        return 1;
    }
    let mut total = work(&whole.top.body.instrs);
    let mut meetings = 1usize;
    for s in &whole.scans {
        let (w, steps) = scan_work(s);
        total += w;
        meetings += steps;
    }
    let saved = total / RATE * (1.0 - 1.0 / max as f64);
    if saved > meetings as f64 * MEETING_S {
        max
    } else {
        1
    }
}
