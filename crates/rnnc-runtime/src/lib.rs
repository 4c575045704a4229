//! What every rnnc backend shares, so that none needs another for its types:
//! run-time tensors, weights by `state_dict` key, the run error, and the
//! [`Backend`] trait the interpreter, CPU, WGSL and CUDA backends implement.

mod tensor;

pub use tensor::Tensor;

use ndarray::ArrayD;
use std::collections::HashMap;

/// Weight tensors by PyTorch `state_dict` key.
pub type Weights = HashMap<String, ArrayD<f32>>;

/// Named tensors: a run's inputs.
pub type Inputs = HashMap<String, Tensor>;

/// A run's outputs, in the model's output order.
pub type Outputs = Vec<(String, Tensor)>;

/// A run-time failure, worded for the person running the model.
#[derive(Debug, Clone, PartialEq)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// A model made ready to run by one backend: its graph and weights bound, code
/// compiled (on first use at each batch size and length, where the backend
/// compiles per shape).
pub trait Backend {
    /// The backend's name as `--backend` takes it (`interp`, `cpu`, `wgsl`, `cuda`).
    fn name(&self) -> &'static str;

    /// Runs the model on `inputs` (every input the model declares without a
    /// default, by name); returns every output in the model's order. Inputs of
    /// the wrong shape or dtype are errors, never panics.
    fn run(&self, inputs: &Inputs) -> Result<Outputs, RunError>;

    /// As [`Backend::run`], into `outputs`: where it holds the outputs of an
    /// earlier run at the same sizes, a backend may write into their buffers
    /// instead of allocating new ones (the CPU backend does: the pages of a new
    /// buffer are faulted in one by one, about 2 % of an LSTM's run at B=64,
    /// T=100, H=256). Afterwards it holds exactly what `run` would have returned.
    fn run_into(&self, inputs: &Inputs, outputs: &mut Outputs) -> Result<(), RunError> {
        *outputs = self.run(inputs)?;
        Ok(())
    }

    /// Where it runs, for people: the CPU's instruction set and threads, the GPU
    /// adapter.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// What the runs so far did not compile, and why: one line each, none when
    /// everything compiled (a backend that cannot compile a model refuses it).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Milliseconds spent generating code so far, where the backend measures it
    /// (the CPU backend's JIT); None where compiling happens inside the first run
    /// (the GPU backends) and cannot be told apart from it.
    fn compile_ms(&self) -> Option<f64> {
        Some(0.0)
    }

    /// The threads its runs so far used, and its kernels' instruction set where
    /// it has CPU kernels (`avx512`, `avx2`, `portable`).
    fn ran_on(&self) -> (usize, Option<&'static str>) {
        (1, None)
    }
}
