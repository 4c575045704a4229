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
/// prefetched, or 0. `out` has room for whole panels.
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
);

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
