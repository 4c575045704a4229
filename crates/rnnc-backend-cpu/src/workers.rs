//! The threads a compiled model runs on. The calling thread is thread 0 and does
//! its own part; the others wait for the next call spinning, because a call can
//! last a few microseconds (one streaming step) while waking a sleeping thread
//! costs about ten (measured: a 16-unit LSTM step took 3.5 µs on one thread and
//! 13.5 µs on two through rayon's broadcast, which parks its threads). A thread
//! left without work yields after a while and then sleeps, so an idle model
//! costs no CPU.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a thread without work spins, then yields, before it sleeps.
const SPIN_FOR: Duration = Duration::from_micros(200);
const YIELD_FOR: Duration = Duration::from_millis(2);

/// A job as the threads see it: `f(thread)`, its lifetime erased (see `run`).
type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    threads: usize,
    /// Bumped once per call; the waiting threads watch it.
    generation: AtomicUsize,
    /// Threads other than the caller that finished the current call.
    done: AtomicUsize,
    /// Whether one of them panicked in it (the caller then panics too).
    panicked: AtomicBool,
    /// The current call's job: written by `run` only while no thread reads it.
    job: UnsafeCell<Option<Job>>,
    stop: AtomicBool,
    /// Threads asleep, and the condition that wakes them.
    sleepers: Mutex<usize>,
    wake: Condvar,
}

// SAFETY: `job` is written by `run` before it bumps `generation` (release) and
// after every thread has reported `done` for the previous call (acquire); the
// threads read it only between seeing a new generation and reporting done.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// A fixed set of threads that run one job at a time, each doing its part.
pub struct Workers {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// One call at a time.
    busy: Mutex<()>,
}

impl Workers {
    /// `threads` threads in all: the caller's and `threads − 1` started here.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            threads,
            generation: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            job: UnsafeCell::new(None),
            stop: AtomicBool::new(false),
            sleepers: Mutex::new(0),
            wake: Condvar::new(),
        });
        let mut handles = Vec::new();
        for index in 1..threads {
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name(format!("rnnc-cpu-{index}"))
                .spawn(move || work(&s, index));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop(&shared, handles);
                    return Err(e);
                }
            }
        }
        Ok(Workers {
            shared,
            handles,
            busy: Mutex::new(()),
        })
    }

    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// Runs `f(i)` on thread i for every i (`f(0)` on the caller) and returns
    /// when all have returned.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        let _one = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        if s.threads == 1 {
            return f(0);
        }
        // SAFETY: the threads read the job only while this call lasts: `Wait`
        // below (also on unwinding) returns only once every one reported done.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        unsafe { *s.job.get() = Some(job) };
        s.done.store(0, Ordering::Relaxed);
        s.generation.fetch_add(1, Ordering::Release);
        if *s.sleepers.lock().unwrap_or_else(|e| e.into_inner()) > 0 {
            s.wake.notify_all();
        }
        let wait = Wait(s);
        f(0);
        drop(wait);
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a thread of the CPU backend panicked");
        }
    }
}

/// Waits for the other threads to finish the current call (on drop, so that a
/// panicking caller still does not free what they read).
struct Wait<'a>(&'a Shared);

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let s = self.0;
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < s.threads - 1 {
            if spins < 1 << 16 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: no thread reads the job any more.
        unsafe { *s.job.get() = None };
    }
}

fn work(s: &Shared, index: usize) {
    let mut seen = 0;
    loop {
        let idle = Instant::now();
        let mut spins = 0u32;
        loop {
            let g = s.generation.load(Ordering::Acquire);
            if g != seen {
                seen = g;
                break;
            }
            if s.stop.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            let waited = idle.elapsed();
            if waited < SPIN_FOR {
                std::hint::spin_loop();
            } else if waited < SPIN_FOR + YIELD_FOR {
                std::thread::yield_now();
            } else {
                let mut n = s.sleepers.lock().unwrap_or_else(|e| e.into_inner());
                *n += 1;
                while s.generation.load(Ordering::Acquire) == seen
                    && !s.stop.load(Ordering::Acquire)
                {
                    n = s.wake.wait(n).unwrap_or_else(|e| e.into_inner());
                }
                *n -= 1;
            }
        }
        // SAFETY: set by `run` before the generation this thread just saw.
        let job = unsafe { (*s.job.get()).expect("a job for this generation") };
        // SAFETY: alive until every thread reports done (see `run`). A panic is
        // caught so that the caller, waiting for this thread, does not hang.
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)(index) }));
        if ran.is_err() {
            s.panicked.store(true, Ordering::Relaxed);
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

fn stop(s: &Shared, handles: Vec<JoinHandle<()>>) {
    s.stop.store(true, Ordering::Release);
    {
        let _n = s.sleepers.lock().unwrap_or_else(|e| e.into_inner());
        s.wake.notify_all();
    }
    for h in handles {
        let _ = h.join();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        stop(&self.shared, std::mem::take(&mut self.handles));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_its_part_of_every_call() {
        for threads in 1..=3 {
            let w = Workers::new(threads).unwrap();
            let counts: Vec<AtomicUsize> = (0..threads).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..1000 {
                w.run(&|i| {
                    counts[i].fetch_add(1, Ordering::Relaxed);
                });
            }
            // After a pause long enough for the threads to fall asleep.
            std::thread::sleep(SPIN_FOR + YIELD_FOR + Duration::from_millis(5));
            w.run(&|i| {
                counts[i].fetch_add(1, Ordering::Relaxed);
            });
            for c in &counts {
                assert_eq!(c.load(Ordering::Relaxed), 1001);
            }
            assert_eq!(w.threads(), threads);
        }
    }

    #[test]
    fn a_panicking_thread_is_reported_not_waited_for_forever() {
        let w = Workers::new(2).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            w.run(&|i| assert!(i == 0, "thread {i} fails"));
        }));
        assert!(r.is_err());
        // The pool still works afterwards.
        let n = AtomicUsize::new(0);
        w.run(&|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }
}
