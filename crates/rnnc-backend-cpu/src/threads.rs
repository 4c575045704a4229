//! How many threads a whole-model program runs on when the caller leaves it to
//! the backend: a cost model of the work a time step holds against what the
//! threads' meetings cost, so that small recurrences stay on one thread, where
//! splitting them would only add waiting.

use crate::plan::{Instr, Plan};
use crate::whole::WholePlan;

/// Seconds one thread takes for the instructions: products at about what the
/// kernels reach here (a matrix-vector product streamed from L2: 40–65 GFLOP/s;
/// 16 rows and more: 100–160), elementwise loops at 0.1 ns per op and element
/// (docs/performance.md, session 6).
fn seconds(instrs: &[Instr]) -> f64 {
    instrs
        .iter()
        .map(|i| match i {
            Instr::MatMul { x, k, m, .. } | Instr::Gemm { x, k, m, .. } => {
                let rate = if x.rows < 16 { 50e9 } else { 150e9 };
                2.0 * (x.rows * k * m) as f64 / rate
            }
            Instr::Elementwise(e) => (e.rows * e.cols * e.code.len()) as f64 * 1e-10,
            Instr::Rows { x, .. } => (x.rows * x.cols) as f64 * 1e-9,
            _ => 0.0,
        })
        .sum()
}

/// What one meeting of the threads costs: 1–2 µs measured between the two
/// vCPUs of the development machine, with the imbalance of their halves.
const MEETING_S: f64 = 2.0e-6;
/// Meetings of a top-level program around its scans (before and after each
/// call, at its end).
const TOP_MEETINGS: usize = 4;

/// Seconds of one run of a scan's plan, and how many steps it takes (its barriers).
fn scan_work(p: &Plan) -> (f64, usize) {
    let k = p.body.steps.max(1);
    let runs = p.time / k;
    let mut w = seconds(&p.body.instrs) * runs as f64;
    let mut steps = runs;
    if let Some(tail) = &p.tail {
        let left = p.time - runs * k;
        w += seconds(&tail.instrs) * left as f64;
        steps += left;
    }
    (w, steps)
}

/// The thread count for `whole`: `max` when splitting saves more time than the
/// meetings cost (by the model above), else 1.
pub fn choose(whole: &WholePlan, max: usize) -> usize {
    let mut total = seconds(&whole.top.body.instrs);
    let mut meetings = TOP_MEETINGS;
    for s in &whole.scans {
        let (w, steps) = scan_work(s);
        total += w;
        meetings += steps;
    }
    split_pays(total, meetings, max)
}

fn split_pays(total: f64, meetings: usize, max: usize) -> usize {
    if max <= 1 {
        return 1;
    }
    let saved = total * (1.0 - 1.0 / max as f64);
    if saved > meetings as f64 * MEETING_S {
        max
    } else {
        1
    }
}
