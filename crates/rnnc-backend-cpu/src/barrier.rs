//! The barrier the threads of one compiled scan meet at between dependent
//! instructions of a time step. It spins, because a step lasts microseconds and a
//! sleep and wake-up costs tens of them; after a while it yields, so that a
//! machine running more threads than it has cores still makes progress.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Spins this many times before yielding the core (about 10 µs on this machine).
const SPINS: u32 = 1 << 12;

/// A value alone on its cache line.
#[derive(Debug)]
#[repr(align(64))]
struct Line<T>(T);

/// A reusable barrier for a fixed number of threads. The two counters sit on
/// lines of their own, so that arriving threads do not steal the line the waiting
/// ones read.
#[derive(Debug)]
pub struct SpinBarrier {
    threads: usize,
    arrived: Line<AtomicUsize>,
    /// Counts the times every thread has arrived; waiters watch it change.
    generation: Line<AtomicUsize>,
}

impl SpinBarrier {
    pub fn new(threads: usize) -> Self {
        SpinBarrier {
            threads,
            arrived: Line(AtomicUsize::new(0)),
            generation: Line(AtomicUsize::new(0)),
        }
    }

    /// Returns once all `threads` threads have called it; every write made before
    /// the call, by any of them, is visible to all after it.
    pub fn wait(&self) {
        let generation = self.generation.0.load(Ordering::Acquire);
        if self.arrived.0.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            // Reset before releasing: a thread released below may arrive at the
            // next barrier at once, and must count from zero.
            self.arrived.0.store(0, Ordering::Relaxed);
            self.generation.0.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0;
        while self.generation.0.load(Ordering::Acquire) == generation {
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// What generated code calls at a barrier.
/// # Safety
/// `b` points to a live barrier shared by exactly its number of threads.
pub unsafe extern "C" fn rnnc_barrier_wait(b: *const SpinBarrier) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { (*b).wait() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Every thread adds to a counter between barriers; after each barrier all of
    /// them must see every addition of the round before.
    #[test]
    fn rounds_do_not_overlap() {
        let threads = 3;
        let barrier = SpinBarrier::new(threads);
        let sum = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for round in 1..=200u64 {
                        sum.fetch_add(1, Ordering::Relaxed);
                        barrier.wait();
                        assert_eq!(sum.load(Ordering::Relaxed), round * threads as u64);
                        barrier.wait();
                    }
                });
            }
        });
    }
}
