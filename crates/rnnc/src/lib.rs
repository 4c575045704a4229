//! rnnc as a library: load a recurrent model written in the rnnc language, watch
//! or run its optimisation passes, bind it to a backend and run it, whole
//! sequences at a time or one step at a time. The `rnnc` command line and the
//! Python package are both layers over this crate.
//!
//! ```no_run
//! use rnnc::{BackendKind, Model, Opt, Params};
//! let model = Model::load("models/lstm.rnn", &Params::new()
//!     .set("input_size", 256)
//!     .set("hidden_size", 256))?;
//! let weights = model.load_weights("lstm.safetensors")?;
//! let compiled = model.optimise(&Opt::Level(2))?
//!     .compile(weights, BackendKind::Cpu { threads: Some(2) })?;
//! let x = ndarray::ArrayD::<f32>::zeros(vec![1, 100, 256]);
//! let inputs = [("input".to_string(), rnnc::Tensor::F32(x))].into();
//! for (name, t) in compiled.run(&inputs)? {
//!     println!("{name}: {:?}", t.shape());
//! }
//! # Ok::<(), rnnc::Error>(())
//! ```

mod ahead;
mod backend;
mod compiled;
mod error;
pub mod explore;
pub mod explore_html;
pub mod generated;
mod model;
pub mod onnx;
pub mod params;
pub mod passes_table;
mod stream;
pub mod weights;

pub use ahead::{GpuKernels, GpuTarget, ObjectFile};
pub use backend::{BackendKind, BACKENDS};
pub use compiled::Compiled;
pub use error::Error;
pub use model::Model;
pub use params::Params;
pub use rnnc_ir::{DType, Dim, Graph, TensorTy};
pub use rnnc_opt::{Instrumentation, Opt};
pub use rnnc_runtime::{Backend, Inputs, Outputs, RunError, Tensor, Weights};
pub use stream::Stream;

/// This machine's measured limits for the CPU kernels (FMA peak, cache bandwidth),
/// what `rnnc bench` compares a run with.
pub use rnnc_backend_cpu::{measure_limits, Isa, Limits};
/// Where Mesa's Vulkan driver would complain (no runtime directory), quiet it; call
/// before any thread starts.
pub use rnnc_backend_wgsl::quiet_mesa_without_runtime_dir;
