//! The launch manifest: what a host program needs to run emitted kernels without
//! rnnc. It is the plan without the kernel bodies (those are the source file), as
//! JSON: the arena's size, where each input, output, weight and constant lives in
//! it, each kernel's launch shape, and the dispatch order with its loops.

use crate::plan::GpuPlan;
use serde::Serialize;

/// Bumped when the manifest's meaning changes.
pub const VERSION: u32 = 2;

#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    version: u32,
    /// "wgsl" or "cuda".
    target: &'a str,
    /// The kernel source file, beside the manifest.
    source: &'a str,
    /// How to run the plan, in words (the same rules as below, for a reader).
    rules: [&'static str; 5],
    #[serde(flatten)]
    plan: &'a GpuPlan,
}

/// The manifest of `plan` for `target`, whose kernels are in `source`.
pub fn to_json(plan: &GpuPlan, target: &str, source: &str) -> String {
    let m = Manifest {
        format: "rnnc-gpu-manifest",
        version: VERSION,
        target,
        source,
        rules: [
            "allocate one buffer of arena_words 32-bit words, zeroed",
            "write each weight (state_dict key = name, f32, row-major) and constant at its \
             offset, then launch the prologue once",
            "per run: write each input at its offset (f32; `id` inputs as f32 values of the \
             token ids, which must be in 0..vocab of their entry in ids_inputs, or of the sequence lengths of the \
             inputs named in lengths_inputs, which must be in 1..=max), zeros for a missing \
             optional input, \
             then launch the schedule",
            "a launch runs `kernel` with `groups` workgroups of `threads`; a loop runs its body \
             `count` times, iteration i with clock = first + i * stride (WGSL: the uniform at \
             binding 1, 256 bytes per clock value, read with a dynamic offset; CUDA: the \
             kernel's `clock` argument)",
            "launches run in order, each seeing all writes of the ones before; outputs are \
             read at their offsets after the last",
        ],
        plan,
    };
    serde_json::to_string_pretty(&m).expect("plain data serialises")
}
