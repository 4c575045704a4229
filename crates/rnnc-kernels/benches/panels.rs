//! GFLOP/s of each kernel this CPU supports on the products of the performance
//! table's LSTM step (K = H, M = 4H) and its input projection over all T:
//! `cargo bench -p rnnc-kernels`.

use rnnc_kernels::{pack_panels, time_product, AlignedF32, Isa};
use std::time::Instant;

fn main() {
    for isa in Isa::available() {
        halves(isa, 256, 1024);
        halves(isa, 128, 512);
    }
    let shapes = [
        (1, 256, 1024),
        (1, 128, 512),
        (16, 1024, 4096),
        (64, 256, 1024),
        (6400, 256, 1024),
    ];
    for isa in Isa::available() {
        for (rows, k, m) in shapes {
            let Some(best) = time_product(isa, (rows, k, m), 0.2) else {
                continue;
            };
            let flops = 2.0 * (rows * k * m) as f64;
            println!(
                "{isa:>7} rows={rows:<5} k={k:<5} m={m:<5} {:>9.2} µs {:>7.1} GFLOP/s",
                best * 1e6,
                flops / best / 1e9
            );
        }
    }
}

/// Two threads, each computing half the panels of one matrix-vector product and
/// meeting after every call, as the weight-stationary recurrence does.
fn halves(isa: Isa, k: usize, m: usize) {
    let (Some(kernel), Some(nb)) = (isa.kernel(), isa.panel_width()) else {
        return;
    };
    let x: Vec<f32> = (0..k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * m).map(|i| (i % 5) as f32 * 0.1).collect();
    let w = AlignedF32::from_slice(&pack_panels(&b, (k, m), false, nb));
    let panels = m.div_ceil(nb);
    let out = vec![0.0f32; panels * nb];
    // A spinning meeting point, as the backend's barrier.
    let arrived = std::sync::atomic::AtomicUsize::new(0);
    let reps = 20_000;
    let (xp, wp, op) = (
        x.as_ptr() as usize,
        w.as_ptr() as usize,
        out.as_ptr() as usize,
    );
    let t = Instant::now();
    std::thread::scope(|s| {
        for half in 0..2 {
            let arrived = &arrived;
            s.spawn(move || {
                let p0 = half * panels / 2;
                let n = (half + 1) * panels / 2 - p0;
                for rep in 0..reps {
                    // SAFETY: each thread writes its own panels of `out`.
                    unsafe {
                        kernel(
                            1,
                            k,
                            xp as *const f32,
                            k,
                            (wp as *const f32).add(p0 * k * nb),
                            n,
                            (op as *mut f32).add(p0 * nb),
                            panels * nb,
                            std::ptr::null(),
                            0,
                            0,
                            0,
                            0,
                        )
                    };
                    arrived.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                    while arrived.load(std::sync::atomic::Ordering::Acquire) < 2 * (rep + 1) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
    });
    let per = t.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{isa:>7} 2 threads, rows=1 k={k:<5} m={m:<5} {:>9.2} µs per call and barrier",
        per * 1e6
    );
}
