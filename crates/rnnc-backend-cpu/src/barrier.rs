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

/// A reusable barrier for a fixed number of threads, each of which knows its
/// index. Every thread counts its own arrivals on a line of its own and waits
/// until every other thread's count has caught up: the last thread to arrive
/// writes only its own line, and a waiter sees that one write, so the critical
/// path is one cache line's trip between cores. A shared arrival counter and a
/// generation (what this replaced) took three trips: 300 ns a barrier between the
/// two cores of an Intel Xeon (KVM) against 150 ns with a line per thread.
#[derive(Debug)]
pub struct SpinBarrier {
    /// Per thread, the number of times it has arrived.
    arrivals: Box<[Line<AtomicUsize>]>,
}

impl SpinBarrier {
    pub fn new(threads: usize) -> Self {
        SpinBarrier {
            arrivals: (0..threads).map(|_| Line(AtomicUsize::new(0))).collect(),
        }
    }

    /// Returns once all the threads have called it, thread `me` being this one;
    /// every write made before the call, by any of them, is visible to all after
    /// it. Each thread must call it with its own index, the same number of times.
    pub fn wait(&self, me: usize) {
        let mine = &self.arrivals[me].0;
        // Only this thread writes its line, so a relaxed read of it is its own.
        let round = mine.load(Ordering::Relaxed).wrapping_add(1);
        mine.store(round, Ordering::Release);
        // Another thread is at most one round behind (it cannot pass this round
        // without this thread) or one ahead (waiting for this thread's next one):
        // it has arrived unless its count is still the round before.
        let before = round.wrapping_sub(1);
        for (i, other) in self.arrivals.iter().enumerate() {
            if i == me {
                continue;
            }
            let mut spins = 0;
            while other.0.load(Ordering::Acquire) == before {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// What generated code calls at a barrier, `thread` being the caller's index.
/// # Safety
/// `b` points to a live barrier shared by exactly its number of threads, and
/// `thread` is below that number and no other thread's.
pub unsafe extern "C" fn rnnc_barrier_wait(b: *const SpinBarrier, thread: usize) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { (*b).wait(thread) }
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
            for me in 0..threads {
                let (barrier, sum) = (&barrier, &sum);
                s.spawn(move || {
                    for round in 1..=200u64 {
                        sum.fetch_add(1, Ordering::Relaxed);
                        barrier.wait(me);
                        assert_eq!(sum.load(Ordering::Relaxed), round * threads as u64);
                        barrier.wait(me);
                    }
                });
            }
        });
    }
}
