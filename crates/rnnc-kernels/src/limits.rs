//! What this machine can do, measured cheaply (about 30 ms): one core's FMA rate
//! from register-only code at the ISA's width, and the rate the kernels' one-row
//! product streams its weights at from L2 and from beyond it.
//! `rnnc bench --json` reports each run as a fraction of these.

use crate::{pack_panels, AlignedF32, Isa};
use std::time::Instant;

/// One core's limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// GFLOP/s of the FMA units at the ISA's width (register-only code).
    pub peak_gflops: f64,
    /// GB/s of weights a one-row product streams from L2 (512 KiB of weights).
    pub l2_gbs: f64,
    /// The same from beyond L2 (32 MiB of weights: L3, or memory).
    pub l3_gbs: f64,
    /// Bytes of L2 per core, where the OS says (Linux sysfs).
    pub l2_bytes: Option<usize>,
}

/// The best time of a few repetitions of `f`, in seconds, each repeating it
/// until at least `min_s` has passed.
fn best(min_s: f64, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut n = 0u32;
        while n == 0 || t.elapsed().as_secs_f64() < min_s {
            f();
            n += 1;
        }
        best = best.min(t.elapsed().as_secs_f64() / n as f64);
    }
    best
}

/// Seconds of one `rows × k × m` product on `isa`'s kernel (the best of 3
/// repetitions, each at least `min_s` long); None without a kernel.
pub fn time_product(isa: Isa, (rows, k, m): (usize, usize, usize), min_s: f64) -> Option<f64> {
    let (kernel, nb) = (isa.kernel()?, isa.panel_width()?);
    let x: Vec<f32> = (0..rows * k).map(|i| (i % 7) as f32 * 0.125).collect();
    let b: Vec<f32> = (0..k * m).map(|i| (i % 5) as f32 * 0.125).collect();
    let w = AlignedF32::from_slice(&pack_panels(&b, (k, m), false, nb));
    let panels = m.div_ceil(nb);
    let mut out = vec![0.0f32; rows * panels * nb];
    let (xp, wp, op) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
    let null = std::ptr::null();
    // SAFETY: the buffers match the sizes; `kernel` exists only where the CPU
    // supports it.
    let stream = crate::stream_distance(k * panels * nb * 4);
    let run = || unsafe {
        kernel(
            rows,
            k,
            xp,
            k,
            wp,
            panels,
            op,
            panels * nb,
            null,
            0,
            0,
            0,
            stream,
        )
    };
    run();
    Some(best(min_s, run))
}

/// The limits of one core for `isa` (None on the portable path, which has no
/// kernel). Takes about 30 ms.
pub fn measure(isa: Isa) -> Option<Limits> {
    let peak = fma_peak(isa)?;
    let l2 = time_product(isa, (1, 256, 512), 4e-3)?;
    let l3 = time_product(isa, (1, 1024, 8192), 10e-3)?;
    Some(Limits {
        peak_gflops: peak / 1e9,
        l2_gbs: (256 * 512 * 4) as f64 / l2 / 1e9,
        l3_gbs: (1024 * 8192 * 4) as f64 / l3 / 1e9,
        l2_bytes: l2_size(),
    })
}

/// FLOP/s of one core's FMA units at `isa`'s width, from register-only code
/// (independent chains, no memory): the peak, whatever the clock and the number
/// of FMA ports.
#[cfg(target_arch = "x86_64")]
fn fma_peak(isa: Isa) -> Option<f64> {
    const ITERS: u64 = 20_000;
    let (run, flops): (unsafe fn(u64), f64) = match isa {
        Isa::Avx512 if isa.supported() => (fma_zmm, (24 * 16 * 2) as f64),
        Isa::Avx2 if isa.supported() => (fma_ymm, (12 * 8 * 2) as f64),
        _ => return None,
    };
    // SAFETY: the CPU supports the ISA (checked above).
    let s = best(2e-3, || unsafe { run(ITERS) });
    Some(flops * ITERS as f64 / s)
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_peak(_: Isa) -> Option<f64> {
    None
}

#[cfg(target_arch = "x86_64")]
/// `iters` rounds of 24 independent `vfmadd231ps` on zmm registers.
///
/// # Safety
/// The CPU must have `avx512f`.
#[target_feature(enable = "avx512f")]
unsafe fn fma_zmm(iters: u64) {
    // SAFETY: only registers declared clobbered are written.
    unsafe {
        std::arch::asm!(
            "vxorps zmm0, zmm0, zmm0",
            "vxorps zmm1, zmm1, zmm1",
            "vxorps zmm2, zmm2, zmm2",
            "vxorps zmm3, zmm3, zmm3",
            "vxorps zmm4, zmm4, zmm4",
            "vxorps zmm5, zmm5, zmm5",
            "vxorps zmm6, zmm6, zmm6",
            "vxorps zmm7, zmm7, zmm7",
            "vxorps zmm8, zmm8, zmm8",
            "vxorps zmm9, zmm9, zmm9",
            "vxorps zmm10, zmm10, zmm10",
            "vxorps zmm11, zmm11, zmm11",
            "vxorps zmm12, zmm12, zmm12",
            "vxorps zmm13, zmm13, zmm13",
            "vxorps zmm14, zmm14, zmm14",
            "vxorps zmm15, zmm15, zmm15",
            "vxorps zmm16, zmm16, zmm16",
            "vxorps zmm17, zmm17, zmm17",
            "vxorps zmm18, zmm18, zmm18",
            "vxorps zmm19, zmm19, zmm19",
            "vxorps zmm20, zmm20, zmm20",
            "vxorps zmm21, zmm21, zmm21",
            "vxorps zmm22, zmm22, zmm22",
            "vxorps zmm23, zmm23, zmm23",
            "vxorps zmm30, zmm30, zmm30",
            "vxorps zmm31, zmm31, zmm31",
            "2:",
            "vfmadd231ps zmm0, zmm30, zmm31",
            "vfmadd231ps zmm1, zmm30, zmm31",
            "vfmadd231ps zmm2, zmm30, zmm31",
            "vfmadd231ps zmm3, zmm30, zmm31",
            "vfmadd231ps zmm4, zmm30, zmm31",
            "vfmadd231ps zmm5, zmm30, zmm31",
            "vfmadd231ps zmm6, zmm30, zmm31",
            "vfmadd231ps zmm7, zmm30, zmm31",
            "vfmadd231ps zmm8, zmm30, zmm31",
            "vfmadd231ps zmm9, zmm30, zmm31",
            "vfmadd231ps zmm10, zmm30, zmm31",
            "vfmadd231ps zmm11, zmm30, zmm31",
            "vfmadd231ps zmm12, zmm30, zmm31",
            "vfmadd231ps zmm13, zmm30, zmm31",
            "vfmadd231ps zmm14, zmm30, zmm31",
            "vfmadd231ps zmm15, zmm30, zmm31",
            "vfmadd231ps zmm16, zmm30, zmm31",
            "vfmadd231ps zmm17, zmm30, zmm31",
            "vfmadd231ps zmm18, zmm30, zmm31",
            "vfmadd231ps zmm19, zmm30, zmm31",
            "vfmadd231ps zmm20, zmm30, zmm31",
            "vfmadd231ps zmm21, zmm30, zmm31",
            "vfmadd231ps zmm22, zmm30, zmm31",
            "vfmadd231ps zmm23, zmm30, zmm31",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) iters => _,
            out("zmm0") _,
            out("zmm1") _,
            out("zmm2") _,
            out("zmm3") _,
            out("zmm4") _,
            out("zmm5") _,
            out("zmm6") _,
            out("zmm7") _,
            out("zmm8") _,
            out("zmm9") _,
            out("zmm10") _,
            out("zmm11") _,
            out("zmm12") _,
            out("zmm13") _,
            out("zmm14") _,
            out("zmm15") _,
            out("zmm16") _,
            out("zmm17") _,
            out("zmm18") _,
            out("zmm19") _,
            out("zmm20") _,
            out("zmm21") _,
            out("zmm22") _,
            out("zmm23") _,
            out("zmm30") _,
            out("zmm31") _,
            options(nostack, nomem),
        );
    }
}

#[cfg(target_arch = "x86_64")]
/// `iters` rounds of 12 independent `vfmadd231ps` on ymm registers.
///
/// # Safety
/// The CPU must have `avx2,fma`.
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_ymm(iters: u64) {
    // SAFETY: only registers declared clobbered are written.
    unsafe {
        std::arch::asm!(
            "vxorps ymm0, ymm0, ymm0",
            "vxorps ymm1, ymm1, ymm1",
            "vxorps ymm2, ymm2, ymm2",
            "vxorps ymm3, ymm3, ymm3",
            "vxorps ymm4, ymm4, ymm4",
            "vxorps ymm5, ymm5, ymm5",
            "vxorps ymm6, ymm6, ymm6",
            "vxorps ymm7, ymm7, ymm7",
            "vxorps ymm8, ymm8, ymm8",
            "vxorps ymm9, ymm9, ymm9",
            "vxorps ymm10, ymm10, ymm10",
            "vxorps ymm11, ymm11, ymm11",
            "vxorps ymm14, ymm14, ymm14",
            "vxorps ymm15, ymm15, ymm15",
            "2:",
            "vfmadd231ps ymm0, ymm14, ymm15",
            "vfmadd231ps ymm1, ymm14, ymm15",
            "vfmadd231ps ymm2, ymm14, ymm15",
            "vfmadd231ps ymm3, ymm14, ymm15",
            "vfmadd231ps ymm4, ymm14, ymm15",
            "vfmadd231ps ymm5, ymm14, ymm15",
            "vfmadd231ps ymm6, ymm14, ymm15",
            "vfmadd231ps ymm7, ymm14, ymm15",
            "vfmadd231ps ymm8, ymm14, ymm15",
            "vfmadd231ps ymm9, ymm14, ymm15",
            "vfmadd231ps ymm10, ymm14, ymm15",
            "vfmadd231ps ymm11, ymm14, ymm15",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) iters => _,
            out("ymm0") _,
            out("ymm1") _,
            out("ymm2") _,
            out("ymm3") _,
            out("ymm4") _,
            out("ymm5") _,
            out("ymm6") _,
            out("ymm7") _,
            out("ymm8") _,
            out("ymm9") _,
            out("ymm10") _,
            out("ymm11") _,
            out("ymm14") _,
            out("ymm15") _,
            options(nostack, nomem),
        );
    }
}

/// L2 per core from Linux's sysfs (`2048K`), if it is there.
pub(crate) fn l2_size() -> Option<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index2/size").ok()?;
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = n.parse().ok()?;
    Some(match unit {
        "K" => n << 10,
        "M" => n << 20,
        "" => n,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_positive_where_there_is_a_kernel() {
        assert!(measure(Isa::Portable).is_none());
        for isa in Isa::available()
            .into_iter()
            .filter(|i| i.kernel().is_some())
        {
            let l = measure(isa).unwrap();
            assert!(
                l.peak_gflops > 0.0 && l.l2_gbs > 0.0 && l.l3_gbs > 0.0,
                "{l:?}"
            );
        }
    }
}
