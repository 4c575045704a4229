//! The GPU plan shared by the WGSL and CUDA backends: a model at one (B, T) as
//! kernels over one buffer and the order to launch them (`plan.rs`), built from the
//! optimised IR (`lower.rs`), written out by either backend through a dialect
//! (`render.rs`), described for host programs by a JSON manifest (`manifest.rs`)
//! and fed by the host steps every runner shares (`host.rs`).

mod decode;
pub mod host;
pub mod lower;
pub mod manifest;
pub mod plan;
pub mod render;
mod render_decode;
mod render_step;
mod step;

pub use lower::{identifier, plan, plan_with, Dims, Steps, Unsupported};
pub use plan::{Body, GpuPlan, Kernel, Step};
pub use render::{render, Dialect};
