//! A model bound to a backend: it owns its (optimised) graph and weights, and the
//! backend that borrows them, so it can be kept, passed around and called from
//! Python like any value.

use crate::backend::BackendKind;
use crate::error::Error;
use rnnc_ir::Graph;
use rnnc_runtime::{Backend, Inputs, Outputs, Weights};

/// What a compiled model owns.
struct Owned {
    graph: Graph,
    weights: Weights,
}

type Opened<'a> = Box<dyn Backend + 'a>;

self_cell::self_cell!(
    struct Bound {
        owner: Owned,
        #[covariant]
        dependent: Opened,
    }
);

/// A model ready to run on one backend. Code is compiled on the first run at
/// each batch size and length, and kept.
pub struct Compiled {
    bound: Bound,
    kind: BackendKind,
    /// The model's file (or `<source>`): messages start with it.
    origin: String,
}

impl Compiled {
    pub(crate) fn new(
        graph: Graph,
        weights: Weights,
        kind: BackendKind,
        origin: &str,
    ) -> Result<Self, Error> {
        let bound = Bound::try_new(Owned { graph, weights }, |o| {
            let verified = crate::error::verified(&o.graph)?;
            kind.open(verified, &o.weights)
                .map_err(|e| Error::Message(format!("{origin}: {e}")))
        })?;
        Ok(Compiled {
            bound,
            kind,
            origin: origin.to_string(),
        })
    }

    /// Runs the model on `inputs` (by name); returns every output in the model's
    /// order. Wrong names, shapes or dtypes are errors that say which input.
    pub fn run(&self, inputs: &Inputs) -> Result<Outputs, Error> {
        self.bound
            .borrow_dependent()
            .run(inputs)
            .map_err(|e| Error::Message(format!("{}: {e}", self.origin)))
    }

    /// As [`Compiled::run`], into `outputs`: outputs of an earlier run at the same
    /// sizes have their buffers reused where the backend can (the CPU's), which
    /// spares a run the page faults of fresh memory. Afterwards `outputs` holds
    /// what `run` would have returned.
    pub fn run_into(&self, inputs: &Inputs, outputs: &mut Outputs) -> Result<(), Error> {
        self.bound
            .borrow_dependent()
            .run_into(inputs, outputs)
            .map_err(|e| Error::Message(format!("{}: {e}", self.origin)))
    }

    /// The graph it runs (after the pipeline).
    pub fn graph(&self) -> &Graph {
        &self.bound.borrow_owner().graph
    }

    pub fn backend(&self) -> BackendKind {
        self.kind
    }

    /// Where it runs, for people.
    pub fn describe(&self) -> String {
        self.bound.borrow_dependent().describe()
    }

    /// Milliseconds spent generating code so far (None: the backend compiles
    /// inside its first run at each shape, the GPUs).
    pub fn compile_ms(&self) -> Option<f64> {
        self.bound.borrow_dependent().compile_ms()
    }

    /// (threads, kernel ISA) the runs so far used.
    pub fn ran_on(&self) -> (usize, Option<&'static str>) {
        self.bound.borrow_dependent().ran_on()
    }

    /// What the runs so far did not compile, one line each (none from the CPU
    /// backend, which refuses what it cannot compile).
    pub fn notes(&self) -> Vec<String> {
        self.bound.borrow_dependent().notes()
    }
}
