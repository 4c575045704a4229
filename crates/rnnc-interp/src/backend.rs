//! The interpreter as a [`Backend`]: a verified graph and its weights, run op by op.

use crate::{run, Backend, RunError, Weights};
use rnnc_ir::Verified;
use rnnc_runtime::{Inputs, Outputs};

/// The reference interpreter over one model; it compiles nothing.
pub struct Interpreter<'g> {
    graph: Verified<'g>,
    weights: &'g Weights,
}

impl<'g> Interpreter<'g> {
    pub fn new(graph: Verified<'g>, weights: &'g Weights) -> Self {
        Interpreter { graph, weights }
    }
}

impl Backend for Interpreter<'_> {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn run(&self, inputs: &Inputs) -> Result<Outputs, RunError> {
        run(&self.graph, inputs, self.weights)
    }

    fn describe(&self) -> String {
        "the reference interpreter (one thread)".into()
    }
}
