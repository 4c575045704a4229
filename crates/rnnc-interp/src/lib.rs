//! The reference interpreter: evaluates a verified graph over ndarray tensors.
//!
//! It is the semantic reference for every pass and backend, so it is written to be
//! obviously right rather than fast: one op at a time, each in the plainest form
//! ndarray allows, scans stepped one time step after another.

mod backend;
mod bind;
mod decode;
mod eval;
mod kernels;

pub use backend::Interpreter;
pub use eval::{bind_sizes, load_time_values, run, run_with, Hooks, RunCheck, Sizes};
pub use kernels::check_lengths;
pub use rnnc_runtime::{Backend, RunError, Tensor, Weights};

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, RunError> {
    Err(RunError(msg.into()))
}
