//! Matrix-product kernels that rnnc's generated code calls by address: the
//! products of a scan's time step and of the top-level program (the hoisted input
//! projection, classifier heads) at the machine's widest vectors.
//!
//! Cranelift emits 128-bit vectors only, so on x86-64 the products run here, in
//! Rust with `std::arch` intrinsics, compiled for AVX-512F and for AVX2+FMA and
//! chosen at run time from the CPU's features ([`Isa::detect`]); where neither is
//! present the backend keeps its own generated f32x4 code (the portable path).
//!
//! Every kernel streams the right-hand matrix in the layout [`pack_panels`]
//! writes once, when a model is planned: panels of [`Isa::panel_width`] columns,
//! each `K × nb` contiguous, so nothing is repacked per call or per step.

mod align;
mod elementwise;
mod isa;
mod limits;
pub mod math;
mod panels;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use align::AlignedF32;
pub use elementwise::{
    Binary, Code, ElementwiseKernel, ElementwiseProgram, Operand, Unary, BLOCK, MAX_SLOTS,
};
pub use isa::{Isa, IsaError};
pub use limits::{measure, time_product, Limits};
pub use panels::pack_panels;

/// `out[r, c] = init[r, c] + Σ_k x[r, k] · W[k, c]` for `r < rows` and the columns
/// `c` of `panels` panels of `nb` (`w` points at the first panel to compute), with
/// row strides `ldx`, `ldo`, `ldi` in elements (`ldi` 0: one row for all). `init`
/// has `cols` columns from the first one computed (the rest count as 0), or is
/// null for zeros; `next` is the distance in elements from each element of
/// `init` to the one the next call will read (a sequence's next time step),
/// prefetched, or 0. `stream` is how many bytes ahead in a panel the kernel
/// prefetches the weights, or 0: for weights that do not stay in L2 from one
/// call to the next (see [`stream_distance`]). `out` has room for whole panels.
///
/// # Safety
/// The pointers must cover what the sizes and strides describe; the kernel must
/// be one the running CPU supports (see [`Isa::kernel`]).
pub type PanelKernel = unsafe extern "C" fn(
    rows: usize,
    k: usize,
    x: *const f32,
    ldx: usize,
    w: *const f32,
    panels: usize,
    out: *mut f32,
    ldo: usize,
    init: *const f32,
    ldi: usize,
    cols: usize,
    next: isize,
    stream: usize,
);

/// `out[r] = Σ_k x[r, k] · w[k]` for `r < rows`, with row strides `ldx`, `ldo` in
/// elements: a product with one result column (attention's `v · tanh(…)`, a
/// regression head) at a vector's width, which a panel of [`PanelKernel`] would
/// spend a whole panel's columns on.
///
/// # Safety
/// The pointers must cover what the sizes and strides describe; the kernel must
/// be one the running CPU supports (see [`Isa::dot`]).
pub type DotKernel = unsafe extern "C" fn(
    rows: usize,
    k: usize,
    x: *const f32,
    ldx: usize,
    w: *const f32,
    out: *mut f32,
    ldo: usize,
);

/// The `stream` argument of a [`PanelKernel`] for a caller that streams
/// `bytes` of weight panels between two reads of the same panel (a thread's
/// share of a time step's products): a prefetch distance where they cannot stay
/// in L2 beside the rest, else 0. Measured on a 2 MiB-L2 Xeon (LSTM, B=16,
/// H=1024, 16 MiB of recurrent weights a step): 105–108 ms without, 88–89 ms at
/// 512 to 2048 bytes ahead, 93–95 at 4096; for weights in L2 (H=256 at B=1)
/// prefetching made the run 12 % slower, so it is off there.
pub fn stream_distance(bytes: usize) -> usize {
    if bytes > l2_bytes() * 3 / 4 {
        1024
    } else {
        0
    }
}

/// Bytes of L2 per core: what Linux's sysfs says, else 1 MiB (the smallest of
/// the machines this runs on).
pub fn l2_bytes() -> usize {
    static L2: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *L2.get_or_init(|| limits::l2_size().unwrap_or(1 << 20))
}

/// The product [`PanelKernel`] computes, one element at a time: the reference the
/// kernels are tested against.
///
/// # Safety
/// As for [`PanelKernel`].
pub unsafe fn reference_panels(
    nb: usize,
    (rows, k): (usize, usize),
    (x, ldx): (*const f32, usize),
    (w, panels): (*const f32, usize),
    (out, ldo): (*mut f32, usize),
    (init, ldi, cols): (*const f32, usize, usize),
) {
    for r in 0..rows {
        for p in 0..panels {
            for j in 0..nb {
                let c = p * nb + j;
                let mut s = if init.is_null() || c >= cols {
                    0.0f32
                } else {
                    // SAFETY: inside what the caller's sizes describe.
                    unsafe { *init.add(r * ldi + c) }
                };
                for kk in 0..k {
                    // SAFETY: inside what the caller's sizes describe.
                    unsafe { s += *x.add(r * ldx + kk) * *w.add((p * k + kk) * nb + j) };
                }
                // SAFETY: as above.
                unsafe { *out.add(r * ldo + p * nb + j) = s };
            }
        }
    }
}
