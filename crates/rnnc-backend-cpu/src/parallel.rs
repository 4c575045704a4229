//! How the threads of a compiled scan share one step's work, and where they must
//! wait for each other.
//!
//! Each thread always gets the same part of each instruction: the same panels of
//! the recurrent weights (so its slice stays in its own core's cache), the same
//! columns of a GEMM, the same rows or columns of an elementwise loop. A thread
//! then only waits (a barrier) before an instruction that reads or overwrites
//! what another thread's part of an earlier instruction wrote or read since the
//! last barrier. Every element is computed by the same code whatever the thread
//! count, so results do not depend on it.

use crate::plan::{Elementwise, Instr, Program, Slot, View};
use std::ops::Range;

/// Loops with fewer elements than this run on thread 0 alone: splitting them
/// would cost more in synchronisation than it saves.
const MIN_SPLIT_ELEMENTS: usize = 64;

/// Which part of the work is this thread's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub thread: usize,
    pub threads: usize,
}

impl Part {
    /// This thread's share of `0..n`, in whole units of `unit` (the last thread
    /// takes what is left over).
    fn share(&self, n: usize, unit: usize) -> Range<usize> {
        let units = n / unit;
        let per = units.div_ceil(self.threads);
        let start = (self.thread * per).min(units) * unit;
        let end = if self.thread + 1 == self.threads {
            n
        } else {
            ((self.thread + 1) * per).min(units) * unit
        };
        start..end.max(start)
    }

    /// Rows of a loop that must see whole rows (softmax).
    pub fn rows(&self, rows: usize) -> Range<usize> {
        self.share(rows, 1)
    }

    /// Panels of a generated matrix product.
    pub fn panels(&self, panels: usize) -> Range<usize> {
        self.share(panels, 1)
    }

    /// Columns of a GEMM's result, in whole cache lines.
    pub fn gemm_columns(&self, m: usize) -> Range<usize> {
        self.share(m, 16)
    }

    /// (rows, columns) of an elementwise loop over `rows × cols` (already
    /// flattened, see [`Elementwise::flattened`]): columns in whole vectors when
    /// there are enough, else rows, else all on thread 0.
    pub fn elementwise(&self, rows: usize, cols: usize) -> (Range<usize>, Range<usize>) {
        let whole = (0..rows, 0..cols);
        if self.threads == 1 {
            return whole;
        }
        if rows * cols < MIN_SPLIT_ELEMENTS {
            return if self.thread == 0 {
                whole
            } else {
                (0..0, 0..0)
            };
        }
        if cols >= 4 * self.threads {
            (0..rows, self.share(cols, 4))
        } else if rows >= self.threads {
            (self.share(rows, 1), 0..cols)
        } else if self.thread == 0 {
            whole
        } else {
            (0..0, 0..0)
        }
    }
}

/// For each instruction of `p`: whether the threads must meet before it. (They
/// always meet at the end of a step; that is not in the list.)
pub fn barriers(p: &Program) -> Vec<bool> {
    let mut out = Vec::with_capacity(p.instrs.len());
    // What instructions since the last barrier read and wrote.
    let mut reads: Vec<Access> = Vec::new();
    let mut writes: Vec<Access> = Vec::new();
    for instr in &p.instrs {
        let (r, w) = accesses(instr);
        let clash = r.iter().any(|a| writes.iter().any(|b| a.clashes(b)))
            || w.iter()
                .any(|a| reads.iter().chain(&writes).any(|b| a.clashes(b)));
        out.push(clash);
        if clash {
            reads.clear();
            writes.clear();
        }
        reads.extend(r);
        writes.extend(w);
    }
    out
}

/// One view read or written by one instruction.
#[derive(Clone, Copy, Debug)]
struct Access {
    view: View,
    /// The elementwise iteration space, which decides the split; None for products.
    space: Option<(usize, usize)>,
}

impl Access {
    /// Whether two accesses may touch the same element from different threads.
    /// Within one elementwise space, equal views touch each element from the
    /// thread that owns it in both, so they never clash.
    fn clashes(&self, other: &Access) -> bool {
        if self.space.is_some() && self.space == other.space && self.view == other.view {
            return false;
        }
        match (extent(&self.view), extent(&other.view)) {
            (Some((s, a)), Some((t, b))) => s == t && a.start < b.end && b.start < a.end,
            _ => false,
        }
    }
}

/// The elements a view may touch; None for buffers that are only read (sequences,
/// constants) or only written once per step at distinct places (emits).
fn extent(v: &View) -> Option<(Slot, Range<usize>)> {
    match v.slot {
        Slot::Seq(_) | Slot::Const(_) | Slot::Emit(_) | Slot::Fn(_) => None,
        Slot::State(_) | Slot::Scratch => {
            let len = v.rows.saturating_sub(1) * v.row_stride + v.cols;
            Some((v.slot, v.offset..v.offset + len))
        }
    }
}

fn accesses(instr: &Instr) -> (Vec<Access>, Vec<Access>) {
    let product = |v: &View| Access {
        view: *v,
        space: None,
    };
    match instr {
        Instr::MatMul { x, out, .. }
        | Instr::Gemm { x, out, .. }
        | Instr::RowSoftmax { x, out, .. } => (vec![product(x)], vec![product(out)]),
        // A call may read and write all it is given.
        Instr::CallScan { args, .. } => {
            let all: Vec<Access> = args.iter().map(product).collect();
            (all.clone(), all)
        }
        Instr::Gather { out, .. } => (
            Vec::new(),
            vec![Access {
                view: *out,
                space: None,
            }],
        ),
        // Every step of both, as for products: a barrier before and after.
        Instr::FlipTime { src, dst, .. } => {
            let whole = |v: &View| Access {
                view: View {
                    cols: v.row_stride.max(v.cols),
                    ..*v
                },
                space: None,
            };
            (vec![whole(src)], vec![whole(dst)])
        }
        Instr::Elementwise(e) => {
            let f: Elementwise = e.flattened();
            let space = Some((f.rows, f.cols));
            let at = |v: &View| Access { view: *v, space };
            (
                f.inputs.iter().map(at).collect(),
                f.outputs.iter().map(|(_, v)| at(v)).collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_range_once() {
        for threads in 1..=5 {
            for n in [0, 1, 3, 4, 17, 64, 1000, 1023] {
                for unit in [1, 4, 16] {
                    let mut next = 0;
                    for thread in 0..threads {
                        let r = Part { thread, threads }.share(n, unit);
                        assert_eq!(r.start, next, "n={n} unit={unit} threads={threads}");
                        if r.end > r.start && thread + 1 < threads {
                            assert_eq!(r.end % unit, 0);
                        }
                        next = r.end;
                    }
                    assert_eq!(next, n);
                }
            }
        }
    }
}
