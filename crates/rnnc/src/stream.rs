//! Streaming: a model run one time step per call with its recurrent state kept
//! (the CPU backend's [`rnnc_backend_cpu::Stream`]), owning its graph and weights.

use crate::error::Error;
use rnnc_ir::Graph;
use rnnc_runtime::{Inputs, Outputs, Weights};

struct Owned {
    graph: Graph,
    weights: Weights,
}

type Steps<'a> = rnnc_backend_cpu::Stream<'a>;

self_cell::self_cell!(
    struct Bound {
        owner: Owned,
        #[not_covariant]
        dependent: Steps,
    }
);

/// One step per [`Stream::step`], the state carried from each step to the next
/// (`h0` ↔ `h_n`, `c0` ↔ `c_n`, as PyTorch's recurrent layers name them).
pub struct Stream {
    bound: Bound,
    /// The model's file (or `<source>`): messages start with it.
    origin: String,
}

impl Stream {
    pub(crate) fn new(
        graph: Graph,
        weights: Weights,
        threads: Option<usize>,
        origin: &str,
    ) -> Result<Self, Error> {
        let bound = Bound::try_new(Owned { graph, weights }, |o| {
            let verified = crate::error::verified(&o.graph)?;
            let s = match threads {
                Some(n) => rnnc_backend_cpu::Stream::with_threads(verified, &o.weights, n),
                None => rnnc_backend_cpu::Stream::auto(verified, &o.weights),
            };
            s.map_err(|e| Error::Message(format!("{origin}: {e}")))
        })?;
        Ok(Stream {
            bound,
            origin: origin.to_string(),
        })
    }

    /// Runs one step: `inputs` hold the step's inputs with a time axis of length
    /// 1 (any batch, the same until [`Stream::reset`]); returns every output.
    pub fn step(&mut self, inputs: &Inputs) -> Result<Outputs, Error> {
        let origin = &self.origin;
        self.bound.with_dependent_mut(|_, s| {
            s.step(inputs)
                .map_err(|e| Error::Message(format!("{origin}: {e}")))
        })
    }

    /// Forgets the state: the next step starts from zeros.
    pub fn reset(&mut self) {
        self.bound.with_dependent_mut(|_, s| s.reset())
    }

    /// Milliseconds spent generating code so far.
    pub fn compile_ms(&self) -> f64 {
        use rnnc_runtime::Backend;
        self.bound
            .with_dependent(|_, s| s.backend().compile_ms())
            .unwrap_or(0.0)
    }

    /// (threads, kernel ISA) the steps so far used.
    pub fn ran_on(&self) -> (usize, Option<&'static str>) {
        use rnnc_runtime::Backend;
        self.bound.with_dependent(|_, s| s.backend().ran_on())
    }

    /// The (state input, output) pairs carried from step to step.
    pub fn state_names(&self) -> Vec<(String, String)> {
        self.bound.with_dependent(|_, s| s.state_names().to_vec())
    }
}
