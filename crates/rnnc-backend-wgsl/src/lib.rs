//! The WGSL backend: the GPU plan (`rnnc-gpu`) written as one WGSL module of
//! compute shaders (`dialect.rs`), checked by naga's validator (`validate.rs`) and
//! run through wgpu on whatever adapter it finds, Mesa's software Vulkan included
//! (`run.rs`).

mod dialect;
mod quiet;
mod run;
mod validate;

pub use dialect::{source, Wgsl};
pub use quiet::quiet_mesa_without_runtime_dir;
pub use run::{WgslBackend, WgslError};
pub use validate::validate;
