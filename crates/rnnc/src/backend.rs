//! Which backend runs a model, named in one place: `--backend`, the Python
//! `backend=` argument and [`crate::Model::compile`] all go through here.

use rnnc_ir::Verified;
use rnnc_runtime::{Backend, RunError, Weights};

/// A backend and its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// The reference interpreter, one thread.
    Interp,
    /// Compiled for this CPU; `threads` None lets its cost model pick one thread
    /// or all cores per scan.
    Cpu { threads: Option<usize> },
    /// WebGPU compute shaders through wgpu (Vulkan; Mesa's llvmpipe without a GPU).
    Wgsl,
    /// CUDA C through NVRTC on NVIDIA GPU 0.
    Cuda,
}

/// The backends' names, in the order messages list them.
pub const BACKENDS: &[&str] = &["cpu", "interp", "wgsl", "cuda"];

impl Default for BackendKind {
    fn default() -> Self {
        BackendKind::Cpu { threads: None }
    }
}

impl BackendKind {
    /// The backend called `name`, with its default settings; else why not (the
    /// caller names the flag or argument).
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "cpu" => Ok(BackendKind::Cpu { threads: None }),
            "interp" => Ok(BackendKind::Interp),
            "wgsl" => Ok(BackendKind::Wgsl),
            "cuda" => Ok(BackendKind::Cuda),
            _ => Err(format!(
                "no such backend; the backends here are: {}",
                BACKENDS.join(", ")
            )),
        }
    }

    /// The same backend on `threads` threads, where it can take them; else why not.
    pub fn with_threads(self, threads: usize) -> Result<Self, String> {
        match (self, threads) {
            (_, 0) => Err("at least one thread is needed".into()),
            (BackendKind::Cpu { .. }, n) => Ok(BackendKind::Cpu { threads: Some(n) }),
            (_, 1) => Ok(self),
            (BackendKind::Interp, _) => Err(
                "the interp backend (the reference) runs on one thread; the cpu backend runs on more"
                    .into(),
            ),
            (_, _) => Err(format!(
                "the {} backend runs on the GPU; threads are for the cpu backend",
                self.name()
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            BackendKind::Interp => "interp",
            BackendKind::Cpu { .. } => "cpu",
            BackendKind::Wgsl => "wgsl",
            BackendKind::Cuda => "cuda",
        }
    }

    /// The backend over `graph` and `weights`, opened (a GPU adapter found, threads
    /// started); code is compiled on first use at each shape.
    pub(crate) fn open<'g>(
        self,
        graph: Verified<'g>,
        weights: &'g Weights,
    ) -> Result<Box<dyn Backend + 'g>, RunError> {
        Ok(match self {
            BackendKind::Interp => Box::new(rnnc_interp::Interpreter::new(graph, weights)),
            BackendKind::Cpu { threads: None } => {
                Box::new(rnnc_backend_cpu::CpuBackend::auto(graph, weights)?)
            }
            BackendKind::Cpu { threads: Some(n) } => Box::new(
                rnnc_backend_cpu::CpuBackend::with_threads(graph, weights, n)?,
            ),
            BackendKind::Wgsl => Box::new(rnnc_backend_wgsl::WgslBackend::new(graph, weights)?),
            BackendKind::Cuda => Box::new(rnnc_backend_cuda::CudaBackend::new(graph, weights)?),
        })
    }
}
