//! The reference interpreter: evaluates a verified graph over ndarray tensors.
//!
//! It is the semantic reference for every pass and backend, so it is written to be
//! obviously right rather than fast: one op at a time, each in the plainest form
//! ndarray allows, scans stepped one time step after another.

mod bind;
mod decode;
mod eval;
mod kernels;
mod tensor;

pub use bind::Weights;
pub use eval::{bind_sizes, load_time_values, run, run_with, Hooks};
pub use kernels::check_lengths;
pub use tensor::Tensor;

/// A run-time failure, worded for the person running the model.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpError(pub String);

impl std::fmt::Display for InterpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InterpError {}

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, InterpError> {
    Err(InterpError(msg.into()))
}
