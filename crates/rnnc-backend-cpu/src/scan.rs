//! Running one compiled scan: binding its operands to the pointer table, calling
//! the generated code (on every thread of the pool, each doing its part), and
//! handing back emits and final states as tensors.

use crate::barrier::SpinBarrier;
use crate::jit::{self, Jitted, ScanFn};
use crate::plan::{self, Plan, Products, Slot, Unsupported};
use crate::program::aligned;
use crate::workers::Workers;
use ndarray::{ArrayD, IxDyn};
use rnnc_ir::Scan;
use rnnc_kernels::{AlignedF32, Isa};
use rnnc_runtime::{RunError, Tensor, Weights};
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

pub struct CompiledScan {
    pub plan: Plan,
    /// How many threads the code runs on.
    pub threads: usize,
    /// The plan's constants, each starting on a cache line.
    consts: Vec<AlignedF32>,
    pub code: Jitted,
    scratch: RefCell<Vec<f32>>,
    barrier: SpinBarrier,
}

impl CompiledScan {
    /// Compiles `scan` for these operand shapes, split over `threads` threads
    /// (with `auto`, 1 or `threads` as the cost model says), its products on
    /// `isa`'s kernels.
    pub fn new(
        scan: &Scan,
        operand_shapes: &[Vec<usize>],
        weights: &Weights,
        (threads, auto): (usize, bool),
        isa: Isa,
    ) -> Result<Self, Unsupported> {
        let mut plan = plan::plan(scan, operand_shapes, None, weights, Products::jit(isa))?;
        let threads = if auto {
            crate::threads::choose_scan(&plan, threads)
        } else {
            threads
        };
        let code = jit::compile(&plan, threads).map_err(Unsupported)?;
        let scratch = RefCell::new(vec![0.0; plan.scratch_len]);
        let consts = aligned(&mut plan.consts);
        Ok(CompiledScan {
            plan,
            threads,
            consts,
            code,
            scratch,
            barrier: SpinBarrier::new(threads),
        })
    }

    /// Runs the scan on operands of the shapes it was compiled for; `pool` has
    /// exactly as many threads as the scan was compiled for (None for one).
    /// Token ids outside their embedding table are an error, as in the
    /// interpreter.
    pub fn run(
        &self,
        operands: &[Rc<Tensor>],
        pool: Option<&Workers>,
    ) -> Result<Vec<Tensor>, RunError> {
        let p = &self.plan;
        let (n_seqs, n_states) = (p.n_seqs, p.n_states);
        // Sequences and memories are read in place when they are contiguous (they
        // usually are).
        let mut seqs: Vec<Data<'_>> = Vec::new();
        for (t, rows) in operands[..n_seqs].iter().zip(&p.id_rows) {
            if let (Tensor::I64(ids), Some(rows)) = (&**t, rows) {
                check_ids(ids, *rows)?;
            }
            seqs.push(Data::of(t));
        }
        let memories: Vec<Data<'_>> = operands[n_seqs + n_states..]
            .iter()
            .map(|t| Data::of(t))
            .collect();
        let mut states: Vec<Vec<f32>> = operands[n_seqs..n_seqs + n_states]
            .iter()
            .map(|t| flat(t))
            .collect();
        let mut emits: Vec<Vec<f32>> = p
            .emit_widths
            .iter()
            .map(|w| vec![0.0; p.batch * p.time * w])
            .collect();
        let mut scratch = self.scratch.borrow_mut();
        let table: Vec<*mut f32> = p
            .slots()
            .into_iter()
            .map(|s| match s {
                Slot::Seq(i) => seqs[i].ptr(),
                Slot::Memory(i) => memories[i].ptr(),
                Slot::State(i) => states[i].as_mut_ptr(),
                Slot::Emit(i) => emits[i].as_mut_ptr(),
                Slot::Const(i) => self.consts[i].as_ptr() as *mut f32,
                Slot::Scratch => scratch.as_mut_ptr(),
                Slot::Fn(_) => unreachable!("a scan's plan calls nothing"),
                Slot::NextState(_) => unreachable!("not in the pointer table"),
            })
            .collect();
        run_entries(&self.code.entries, &table, &self.barrier, pool);
        drop(scratch);
        let mut out: Vec<Tensor> = emits
            .into_iter()
            .zip(&p.emit_widths)
            .map(|(e, w)| Tensor::F32(array(&[p.batch, p.time, *w], e)))
            .collect();
        for (s, shape) in states.drain(..).zip(&p.state_shapes) {
            out.push(Tensor::F32(array(shape, s)));
        }
        Ok(out)
    }
}

/// An operand the code reads: f32 values or i64 token ids, in place or copied
/// into one contiguous block.
enum Data<'a> {
    F32(Cow<'a, [f32]>),
    Ids(Cow<'a, [i64]>),
}

impl<'a> Data<'a> {
    fn of(t: &'a Tensor) -> Self {
        match t {
            Tensor::F32(a) => Data::F32(match a.as_slice() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(flat(t)),
            }),
            Tensor::I64(a) => Data::Ids(match a.as_slice() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(a.iter().copied().collect()),
            }),
        }
    }

    /// The start, as the pointer table holds it (the code only reads it).
    fn ptr(&self) -> *mut f32 {
        match self {
            Data::F32(s) => s.as_ptr() as *mut f32,
            Data::Ids(s) => s.as_ptr() as *mut f32,
        }
    }
}

/// The interpreter's error for the first id outside a table of `rows` rows.
pub(crate) fn check_ids(ids: &ArrayD<i64>, rows: usize) -> Result<(), RunError> {
    match ids.iter().find(|&&id| id < 0 || id as usize >= rows) {
        Some(bad) => Err(RunError(format!(
            "token id {bad} is out of range for an embedding table of {rows} rows"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn flat(t: &Tensor) -> Vec<f32> {
    t.f32().iter().copied().collect()
}

pub(crate) fn array(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("sizes agree")
}

/// The pointer table and barrier, handed to the pool's threads.
struct Shared {
    table: *const *mut f32,
    barrier: *const SpinBarrier,
}

// SAFETY: the threads only pass these pointers to the generated code, which
// partitions its writes between threads and meets at barriers (parallel.rs); the
// buffers outlive the broadcast, which returns only when every thread is done.
unsafe impl Sync for Shared {}

impl Shared {
    /// # Safety
    /// See [`CompiledScan::run`].
    unsafe fn call(&self, f: ScanFn) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { f(self.table, self.barrier) }
    }
}

/// Calls generated entry points (one per thread) on `table`: directly with one,
/// on every thread of `pool` at once (which the spinning barrier needs) with more.
pub(crate) fn run_entries(
    entries: &[ScanFn],
    table: &[*mut f32],
    barrier: &SpinBarrier,
    pool: Option<&Workers>,
) {
    let shared = Shared {
        table: table.as_ptr(),
        barrier,
    };
    // SAFETY: the caller made every pointer in the table cover the buffer its plan
    // was made for, alive until this returns; the generated code only writes
    // states, emits (outputs) and scratch.
    match pool {
        Some(pool) if entries.len() > 1 => {
            assert_eq!(pool.threads(), entries.len());
            pool.run(&|i| unsafe { shared.call(entries[i]) });
        }
        _ => {
            assert_eq!(entries.len(), 1, "code compiled for threads needs its pool");
            unsafe { shared.call(entries[0]) }
        }
    }
}
