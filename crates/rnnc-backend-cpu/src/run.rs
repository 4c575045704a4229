//! Calling generated code: its entry points on the pointer table (on every thread
//! of the pool at once, each doing its part), and the helpers a run's binding
//! needs (tensors to and from flat buffers, the token-id check).

use crate::barrier::SpinBarrier;
use crate::jit::ScanFn;
use crate::workers::Workers;
use ndarray::ArrayD;
use rnnc_runtime::{RunError, Tensor};

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
