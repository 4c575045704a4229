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

use crate::plan::{EOp, Elementwise, Instr, Program, Slot, View};
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

/// How the threads of a program share its products and where they meet.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Per instruction: whether the threads must meet before it. (They always
    /// meet at the end of a step; that is not in the list.)
    pub barriers: Vec<bool>,
    /// Per instruction: for a product, the thread that computes each panel.
    pub owners: Vec<Option<Vec<usize>>>,
}

impl Schedule {
    /// The runs of consecutive panels of product `instr` that `thread` computes.
    pub fn panel_runs(&self, instr: usize, thread: usize) -> Vec<Range<usize>> {
        let owners = self.owners[instr].as_ref().expect("a product");
        let mut runs: Vec<Range<usize>> = Vec::new();
        for (p, _) in owners.iter().enumerate().filter(|(_, o)| **o == thread) {
            match runs.last_mut() {
                Some(r) if r.end == p => r.end = p + 1,
                _ => runs.push(p..p + 1),
            }
        }
        runs
    }
}

impl Schedule {
    /// One line per instruction: a barrier before it, its kind, and for a
    /// product the thread of each panel (what `RNNC_SCHEDULE=1` prints).
    pub fn describe(&self, p: &Program, isa: rnnc_kernels::Isa) -> String {
        let mut out = format!("program of {} step(s):\n", p.steps);
        for (i, instr) in p.instrs.iter().enumerate() {
            let kind = match instr {
                Instr::MatMul { .. } => format!("product ({isa})"),
                Instr::Gemm { .. } => "product (GEMM)".into(),
                Instr::Elementwise(e) if e.code == [EOp::Input(0)] => format!(
                    "copy {} to {}",
                    views(e.inputs.iter()),
                    views(e.outputs.iter().map(|(_, v)| v))
                ),
                Instr::Elementwise(e) => format!(
                    "elementwise ({} ops) {}×{}, reads {}, writes {}",
                    e.code.len(),
                    e.rows,
                    e.cols,
                    views(e.inputs.iter()),
                    views(e.outputs.iter().map(|(_, v)| v))
                ),
                Instr::CallScan { scan, .. } => format!("call scan {scan}"),
                Instr::StepCopy { steps, .. } => format!("step copy ×{steps}"),
                Instr::Rows { op, .. } => format!("rows: {op:?}"),
                Instr::Gather { .. } => "gather".into(),
                Instr::BatchMatMul { dims, .. } => format!("batched product {dims:?}"),
                Instr::SequenceMask { .. } => "sequence mask".into(),
                Instr::DecodeStart { .. } => "decode: start".into(),
                Instr::GreedyPick { .. } => "decode: greedy choice".into(),
                Instr::BeamPick { .. } => "decode: beam choice".into(),
            };
            let wait = if self.barriers[i] { "barrier, " } else { "" };
            let owners = match &self.owners[i] {
                Some(o) => format!(
                    " panels by thread {}",
                    o.iter().map(|t| t.to_string()).collect::<String>()
                ),
                None => String::new(),
            };
            out += &format!("  {wait}{kind}{owners}\n");
        }
        out + "  barrier (end of step)\n"
    }
}

/// Where each view lies, for [`Schedule::describe`]: slot, offset, rows × cols.
fn views<'a>(vs: impl Iterator<Item = &'a View>) -> String {
    let all: Vec<String> = vs
        .map(|v| format!("{:?}+{} {}×{}", v.slot, v.offset, v.rows, v.cols))
        .collect();
    all.join(", ")
}

/// The schedule of `p` on `threads` threads.
///
/// Each panel of a product goes to the thread whose later elementwise loops read
/// most of its columns (weight-stationary, DeepCPU's way): a thread that computes
/// the gate pre-activations of the hidden units it then updates needs no other
/// thread's result in between, so the threads meet only where one really reads
/// or overwrites what another wrote or read (compared element range by element
/// range, thread by thread), typically once before the next state is written and
/// once at the end of the step.
pub fn schedule(p: &Program, threads: usize) -> Schedule {
    let owners: Vec<Option<Vec<usize>>> = (0..p.instrs.len())
        .map(|i| panel_owners(p, i, threads))
        .collect();
    let n = p.instrs.len();
    if threads == 1 {
        return Schedule {
            barriers: vec![false; n],
            owners,
        };
    }
    let mut barriers = Vec::with_capacity(n);
    // What each thread's parts of the instructions since the last barrier read
    // and wrote.
    let mut reads: Vec<Vec<Extent>> = vec![Vec::new(); threads];
    let mut writes: Vec<Vec<Extent>> = vec![Vec::new(); threads];
    for (i, instr) in p.instrs.iter().enumerate() {
        let mine: Vec<(Vec<Extent>, Vec<Extent>)> = (0..threads)
            .map(|t| accesses(instr, Part { thread: t, threads }, owners[i].as_deref()))
            .collect();
        let clash = (0..threads).any(|a| {
            (0..threads).filter(|b| *b != a).any(|b| {
                let (r, w) = &mine[a];
                overlap(r, &writes[b]) || overlap(w, &writes[b]) || overlap(w, &reads[b])
            })
        });
        barriers.push(clash);
        if clash {
            reads.iter_mut().for_each(Vec::clear);
            writes.iter_mut().for_each(Vec::clear);
        }
        for (t, (r, w)) in mine.into_iter().enumerate() {
            reads[t].extend(r);
            writes[t].extend(w);
        }
    }
    Schedule { barriers, owners }
}

/// Which thread computes each panel of product `i` (None: not a panel product).
fn panel_owners(p: &Program, i: usize, threads: usize) -> Option<Vec<usize>> {
    let (out, n, nb) = match &p.instrs[i] {
        Instr::MatMul { out, m, nb, .. } => (*out, m.div_ceil(*nb), *nb),
        _ => return None,
    };
    if threads == 1 {
        return Some(vec![0; n]);
    }
    // Elements of `out` each thread's later elementwise loops read, per panel.
    let mut wanted = vec![vec![0usize; threads]; n];
    let end = out.span().end;
    let stride = out.row_stride.max(1);
    for later in &p.instrs[i + 1..] {
        let Instr::Elementwise(e) = later else {
            continue;
        };
        for t in 0..threads {
            let (r, _) = accesses(later, Part { thread: t, threads }, None);
            for x in r.iter().filter(|x| x.slot == out.slot) {
                // Row by row, the columns of `out` the extent covers.
                let mut a = x.range.start.max(out.offset);
                let b = x.range.end.min(end);
                while a < b {
                    let row_start = out.offset + (a - out.offset) / stride * stride;
                    let c0 = a - row_start;
                    let c1 = (c0 + (b - a)).min(stride).min(out.cols);
                    for (panel, w) in wanted
                        .iter_mut()
                        .enumerate()
                        .take(c1.div_ceil(nb))
                        .skip(c0 / nb)
                    {
                        let (lo, hi) = ((panel * nb).max(c0), ((panel + 1) * nb).min(c1));
                        w[t] += hi.saturating_sub(lo);
                    }
                    a = row_start + stride;
                }
            }
        }
        // Stop at the next write of the same buffer: later reads may see other values.
        if e.outputs.iter().any(|(_, v)| crate::plan::overlap(v, &out)) {
            break;
        }
    }
    // The thread that reads most of a panel computes it; panels nobody reads go
    // to the least loaded thread.
    let mut owners = vec![usize::MAX; n];
    let mut load = vec![0usize; threads];
    for (panel, counts) in wanted.iter().enumerate() {
        let (best, most) =
            counts
                .iter()
                .enumerate()
                .fold((0, 0), |acc, (t, c)| if *c > acc.1 { (t, *c) } else { acc });
        if most > 0 {
            owners[panel] = best;
            load[best] += 1;
        }
    }
    if owners.iter().all(|o| *o == usize::MAX) {
        // Nothing reads it through a loop: contiguous shares, as before.
        for thread in 0..threads {
            for p in (Part { thread, threads }).panels(n) {
                owners[p] = thread;
            }
        }
        return Some(owners);
    }
    for o in owners.iter_mut().filter(|o| **o == usize::MAX) {
        let t = (0..threads).min_by_key(|t| load[*t]).unwrap_or(0);
        *o = t;
        load[t] += 1;
    }
    Some(owners)
}

/// A range of elements of one buffer.
#[derive(Clone, Debug)]
struct Extent {
    slot: Slot,
    range: Range<usize>,
}

fn overlap(a: &[Extent], b: &[Extent]) -> bool {
    a.iter().any(|x| {
        b.iter()
            .any(|y| x.slot == y.slot && x.range.start < y.range.end && y.range.start < x.range.end)
    })
}

/// The elements a view may touch; None for buffers that are only read (sequences,
/// constants) or only written once per step at distinct places (emits).
fn extent(v: &View) -> Option<(Slot, Range<usize>)> {
    match v.slot {
        Slot::Seq(_) | Slot::Memory(_) | Slot::Const(_) | Slot::Emit(_) | Slot::Fn(_) => None,
        Slot::State(_) | Slot::NextState(_) | Slot::Scratch => Some((v.slot, v.span())),
    }
}

/// The whole of a view.
fn whole(v: &View) -> Vec<Extent> {
    extent(v)
        .map(|(slot, range)| Extent { slot, range })
        .into_iter()
        .collect()
}

/// Rows `rows`, columns `cols` of a view (column 0 only where one element
/// stands for its row), one extent per row.
fn window(v: &View, rows: Range<usize>, cols: Range<usize>, scalar: bool) -> Vec<Extent> {
    let Some((slot, _)) = extent(v) else {
        return Vec::new();
    };
    let cols = if scalar { 0..1 } else { cols };
    if rows.is_empty() || cols.is_empty() {
        return Vec::new();
    }
    let rows = if v.rows == 1 { 0..1 } else { rows };
    rows.map(|r| {
        let at = v.offset + r * v.row_stride;
        Extent {
            slot,
            range: at + cols.start..at + cols.end,
        }
    })
    .collect()
}

/// What `part` of `instr` reads and writes, given the product's panel owners.
fn accesses(instr: &Instr, part: Part, owners: Option<&[usize]>) -> (Vec<Extent>, Vec<Extent>) {
    match instr {
        Instr::MatMul {
            x,
            out,
            init,
            nb,
            m,
            ..
        } => {
            let mine: Vec<usize> = match owners {
                Some(o) => (0..o.len()).filter(|p| o[*p] == part.thread).collect(),
                None => part.panels(m.div_ceil(*nb)).collect(),
            };
            if mine.is_empty() {
                return (Vec::new(), Vec::new());
            }
            let mut reads = whole(x);
            let mut writes = Vec::new();
            for p in mine {
                let cols = p * nb..(p + 1) * nb;
                writes.extend(window(out, 0..out.rows, cols.clone(), false));
                if let Some(i) = init {
                    let cols = cols.start.min(i.cols)..cols.end.min(i.cols);
                    reads.extend(window(i, 0..i.rows, cols, false));
                }
            }
            (reads, writes)
        }
        Instr::Gemm { x, out, m, .. } => {
            let cols = part.gemm_columns(*m);
            (whole(x), window(out, 0..out.rows, cols, false))
        }
        Instr::Rows { x, out, .. } => {
            let rows = part.rows(x.rows);
            (
                window(x, rows.clone(), 0..x.cols, false),
                window(out, rows, 0..out.cols, false),
            )
        }
        Instr::Gather { out, ids, .. } => {
            let rows = part.rows(out.rows);
            (
                window(ids, rows.clone(), 0..ids.cols, false),
                window(out, rows, 0..out.cols, false),
            )
        }
        Instr::SequenceMask { out, .. } => (
            Vec::new(),
            window(out, part.rows(out.rows), 0..out.cols, false),
        ),
        // A decode loop's bookkeeping runs on thread 0, over everything it names.
        Instr::DecodeStart { .. } | Instr::GreedyPick { .. } | Instr::BeamPick { .. } => {
            if part.thread != 0 {
                return (Vec::new(), Vec::new());
            }
            let (w, r) = crate::plan::views(instr);
            (
                r.iter().flat_map(whole).collect(),
                w.iter().flat_map(whole).collect(),
            )
        }
        // A stepped copy and a batched product: every step or batch entry of their
        // operands read and written whole, as for products (what `plan::views` says).
        Instr::StepCopy { .. } | Instr::BatchMatMul { .. } => {
            let (w, r) = crate::plan::views(instr);
            (
                r.iter().flat_map(whole).collect(),
                w.iter().flat_map(whole).collect(),
            )
        }
        // A call may read and write all it is given.
        Instr::CallScan { args, .. } => {
            let all: Vec<Extent> = args.iter().flat_map(whole).collect();
            (all.clone(), all)
        }
        Instr::Elementwise(e) => {
            let f: Elementwise = e.flattened();
            let (rows, cols) = part.elementwise(f.rows, f.cols);
            let read = |v: &View| {
                let scalar = v.cols == 1 && (f.cols > 1 || v.rows == 1);
                window(v, rows.clone(), cols.clone(), scalar)
            };
            (
                f.inputs.iter().flat_map(read).collect(),
                f.outputs
                    .iter()
                    .flat_map(|(_, v)| window(v, rows.clone(), cols.clone(), false))
                    .collect(),
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
