//! Optimisation: named passes over the graph IR, one per file in `passes/`, run by
//! a pass manager that verifies after every pass and can show each step
//! (`--print-ir-after-all`, `--time-passes`, …), MLIR-style.

mod analysis;
mod manager;
pub mod passes;
mod pipeline;
mod rewrite;

pub use analysis::{matmul_flops, stats, Stats};
pub use manager::{run_pipeline, Instrumentation, PassRecord, PipelineError};
pub use pipeline::{parse_pipeline, Opt, PassSpec};

use rnnc_ir::Graph;

/// A transformation that keeps the interpreter's results.
pub trait Pass {
    /// The kebab-case name used in pipelines (`fuse-gates`).
    fn name(&self) -> &'static str;
    /// Rewrites `g` (and its scan bodies); returns whether anything changed.
    fn run(&self, g: &mut Graph) -> Result<bool, String>;
}
