//! Streaming: a model run one time step per call, its recurrent state kept between
//! calls. The state travels through the model's own inputs and outputs, paired by
//! name as PyTorch's recurrent layers name them: input `X0` ↔ output `X_n`
//! (`h0` ↔ `h_n`, `c0` ↔ `c_n`). The scans are compiled once for T = 1.

use crate::CpuBackend;
use rnnc_ir::{Op, Verified};
use rnnc_runtime::{RunError, Tensor, Weights};
use std::collections::HashMap;

pub struct Stream<'g> {
    backend: CpuBackend<'g>,
    /// (state input, final-state output).
    pairs: Vec<(String, String)>,
    state: HashMap<String, Tensor>,
}

impl<'g> Stream<'g> {
    /// A stream on the calling thread alone.
    pub fn new(graph: Verified<'g>, weights: &'g Weights) -> Result<Self, RunError> {
        Self::with_threads(graph, weights, 1)
    }

    /// A stream whose steps are split over `threads` threads.
    pub fn with_threads(
        graph: Verified<'g>,
        weights: &'g Weights,
        threads: usize,
    ) -> Result<Self, RunError> {
        let g = graph.graph();
        Self::on(g, CpuBackend::with_threads(graph, weights, threads)?)
    }

    /// A stream on the thread count the backend's cost model picks
    /// ([`CpuBackend::auto`]).
    pub fn auto(graph: Verified<'g>, weights: &'g Weights) -> Result<Self, RunError> {
        let g = graph.graph();
        Self::on(g, CpuBackend::auto(graph, weights)?)
    }

    /// A stream of `g`'s steps on `backend` (which runs `g`).
    fn on(g: &'g rnnc_ir::Graph, backend: CpuBackend<'g>) -> Result<Self, RunError> {
        let name = g.name.clone();
        let mut reverse = false;
        g.walk(&mut |sub| {
            for id in sub.node_ids() {
                if let Op::Scan(s) = &sub.node(id).op {
                    reverse |= s.reverse;
                }
            }
        });
        if reverse {
            return Err(RunError(format!(
                "`{name}` runs a scan backwards in time (a bidirectional layer): it needs the \
                 whole sequence and cannot be streamed one step at a time"
            )));
        }
        let outputs: Vec<&str> = g.outputs.iter().map(|(n, _)| n.as_str()).collect();
        let pairs: Vec<(String, String)> = g
            .inputs()
            .into_iter()
            .filter(|(_, _, zeros)| *zeros)
            .filter_map(|(input, _, _)| {
                let stem = input.strip_suffix('0')?;
                let out = format!("{stem}_n");
                outputs.contains(&out.as_str()).then_some((input, out))
            })
            .collect();
        if pairs.is_empty() {
            return Err(RunError(format!(
                "`{name}` has no state to keep: streaming pairs a `= zeros` input `X0` with an \
                 output `X_n` (h0 with h_n, c0 with c_n)"
            )));
        }
        Ok(Stream {
            backend,
            pairs,
            state: HashMap::new(),
        })
    }

    /// The (state input, output) pairs carried from step to step.
    pub fn state_names(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Runs one step: `inputs` hold the step's inputs (time axis of length 1; any
    /// batch, the same on every step until [`Stream::reset`]). Returns every output
    /// of the model for this step.
    pub fn step(
        &mut self,
        inputs: &HashMap<String, Tensor>,
    ) -> Result<Vec<(String, Tensor)>, RunError> {
        let mut all = inputs.clone();
        for (input, _) in &self.pairs {
            if all.contains_key(input) {
                return Err(RunError(format!(
                    "`{input}` is the stream's own state; pass only the step's inputs"
                )));
            }
            if let Some(s) = self.state.get(input) {
                all.insert(input.clone(), s.clone());
            }
        }
        let outputs = self.backend.run(&all)?;
        for (input, output) in &self.pairs {
            if let Some((_, t)) = outputs.iter().find(|(n, _)| n == output) {
                self.state.insert(input.clone(), t.clone());
            }
        }
        Ok(outputs)
    }

    /// Forgets the state: the next step starts from zeros, at any batch size.
    pub fn reset(&mut self) {
        self.state.clear();
    }

    pub fn backend(&self) -> &CpuBackend<'g> {
        &self.backend
    }
}
