//! The CUDA backend: the GPU plan (`rnnc-gpu`) written as CUDA C (`dialect.rs`)
//! that needs no CUDA header and no libdevice, so clang, NVRTC and nvcc all take
//! it; compiled with NVRTC and run through the driver API (`run.rs`), both loaded
//! when first used (cudarc), so rnnc builds and starts on machines without CUDA.

mod dialect;
mod run;

pub use dialect::{source, Cuda};
pub use run::{nvrtc_ptx, CudaBackend};
