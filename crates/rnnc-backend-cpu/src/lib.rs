//! The rnnc CPU backend.
//!
//! The whole model is compiled, for the batch size and length it is run at, to
//! native code (Cranelift): a top-level program (the hoisted input projection,
//! bias additions, the classifier head, copies) that calls one function per scan,
//! in which the time loop, the recurrent matrix product (f32x4 FMA over packed
//! weight panels) and the fused gate arithmetic (vectorised `exp`/`sigmoid`/`tanh`)
//! are generated code. Weight-only values are computed once, at load.
//!
//! A model with an op the program builder has no code for is refused: a run
//! fails with a message naming the op (and `--backend interp`, the reference
//! interpreter, runs it); nothing falls back to the interpreter.
//! [`CpuBackend::program_report`] says what compiled, at which sizes.
//!
//! With several threads ([`CpuBackend::with_threads`]) each compiled scan splits
//! every time step between them: each thread keeps its own slice of the recurrent
//! weights and they meet at a barrier between dependent instructions.

pub mod aot;
mod barrier;
mod codegen;
mod decode;
mod gemm;
mod jit;
mod layout;
mod math;
mod pack;
mod parallel;
mod plan;
mod program;
mod run;
mod stream;
mod threads;
mod whole;
mod workers;

pub use jit::{capture_listings, Listing};
pub use plan::Unsupported;
pub use rnnc_kernels::{measure as measure_limits, Isa, Limits};
pub use stream::Stream;

use program::CompiledProgram;
use rnnc_interp::load_time_values;
use rnnc_ir::{NodeId, Verified};
use rnnc_runtime::{RunError, Tensor, Weights};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use whole::Dims;
use workers::Workers;

/// Compile time and code size of what was compiled, or why it was not.
pub type Outcome = Result<(Duration, usize), Unsupported>;

fn outcome(compiled: Result<&jit::Jitted, &Unsupported>) -> Outcome {
    compiled
        .map(|c| (c.compile_time, c.code_bytes))
        .map_err(Unsupported::clone)
}
type Program = Rc<Result<CompiledProgram, Unsupported>>;

/// What happened to the whole-model program at one (B, T, S).
#[derive(Clone, Debug)]
pub struct ProgramReport {
    pub batch: usize,
    pub time: usize,
    /// S, for a model with a source-length axis.
    pub source: Option<usize>,
    /// Compile time and code size, or why the model cannot be compiled.
    pub outcome: Outcome,
    /// The threads the program runs on (0 where it was not compiled).
    pub threads: usize,
}

/// A model loaded for the CPU: weights bound, load-time values folded, the
/// whole-model program compiled on first use at each (B, T, S) and kept.
pub struct CpuBackend<'g> {
    graph: Verified<'g>,
    weights: &'g Weights,
    load_time: HashMap<NodeId, Rc<Tensor>>,
    /// Whole-model programs by (B, T, S).
    programs: RefCell<HashMap<Dims, Program>>,
    threads: usize,
    /// Whether each program chooses between 1 and `threads` threads itself.
    auto: bool,
    /// The threads compiled code runs on; None when there is one (the caller's).
    pool: Option<Workers>,
    /// The instruction set the products' kernels use.
    isa: Isa,
    /// The checks of each run's inputs (and, once per size, the weights).
    check: rnnc_interp::RunCheck,
}

impl<'g> CpuBackend<'g> {
    /// The model on the calling thread alone.
    pub fn new(graph: Verified<'g>, weights: &'g Weights) -> Result<Self, RunError> {
        Self::with_threads(graph, weights, 1)
    }

    /// The model on as many threads as this machine has cores where its cost
    /// model says a time step holds enough work to split (`threads.rs`), else on
    /// the calling thread; products as for [`CpuBackend::with_threads`].
    pub fn auto(graph: Verified<'g>, weights: &'g Weights) -> Result<Self, RunError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut b = Self::with_threads(graph, weights, cores)?;
        b.auto = true;
        Ok(b)
    }

    /// The model with its scans split over `threads` threads (a pool of its own),
    /// its products on the widest kernels this CPU has, or those `RNNC_ISA` names.
    pub fn with_threads(
        graph: Verified<'g>,
        weights: &'g Weights,
        threads: usize,
    ) -> Result<Self, RunError> {
        let isa = Isa::from_env().map_err(|e| RunError(e.0))?;
        Self::with_isa(graph, weights, threads, isa)
    }

    /// As [`CpuBackend::with_threads`], with the products on `isa`'s kernels
    /// ([`Isa::Portable`]: generated f32x4 code), which this CPU must support.
    pub fn with_isa(
        graph: Verified<'g>,
        weights: &'g Weights,
        threads: usize,
        isa: Isa,
    ) -> Result<Self, RunError> {
        if !isa.supported() {
            return Err(RunError(format!("this CPU does not support {isa}")));
        }
        if threads == 0 {
            return Err(RunError("the thread count must be at least 1".into()));
        }
        let pool = match threads {
            1 => None,
            n => Some(
                Workers::new(n).map_err(|e| RunError(format!("cannot start {n} threads: {e}")))?,
            ),
        };
        let g = graph.graph();
        let load_time = load_time_values(g, weights)?;
        let check = rnnc_interp::RunCheck::new(&graph);
        Ok(CpuBackend {
            graph,
            weights,
            load_time,
            programs: RefCell::new(HashMap::new()),
            threads,
            auto: false,
            pool,
            isa,
            check,
        })
    }

    /// The instruction set the products run at.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// How many threads the compiled scans run on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs the model; same contract as [`rnnc_interp::run`]. A model the
    /// program builder cannot compile is an error that says why.
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, RunError> {
        let mut outputs = Vec::new();
        self.run_into(inputs, &mut outputs)?;
        Ok(outputs)
    }

    /// As [`CpuBackend::run`], reusing the buffers of the f32 outputs `outputs`
    /// already holds where their names and shapes match (see
    /// [`rnnc_runtime::Backend::run_into`]).
    pub fn run_into(
        &self,
        inputs: &HashMap<String, Tensor>,
        outputs: &mut Vec<(String, Tensor)>,
    ) -> Result<(), RunError> {
        let sizes = self.check.sizes(inputs, self.weights)?;
        // A model without a batch or time axis compiles the same at any B or T.
        let dims = Dims {
            batch: sizes.batch.unwrap_or(1),
            time: sizes.time.unwrap_or(1),
            source: sizes.source,
        };
        match &*self.program(dims) {
            Ok(p) => p.run_into(inputs, self.pool.as_ref(), outputs),
            Err(why) => Err(RunError(match plan::as_run_error(why) {
                Some(interpreters) => interpreters.to_string(),
                None => format!(
                    "the CPU backend cannot compile this model: {}; the interpreter \
                     (`--backend interp`) runs it",
                    why.message(self.graph.graph())
                ),
            })),
        }
    }

    /// Compiles the whole-model program for (B, T) now, as a first run would
    /// (with S = T for a model with a source-length axis, as `rnnc bench` runs it).
    pub fn prepare(&self, batch: usize, time: usize) {
        let _ = self.program(Dims::at(self.graph.graph(), batch, time));
    }

    /// The whole-model program for these sizes, compiled on first use and kept.
    fn program(&self, dims: Dims) -> Program {
        if let Some(p) = self.programs.borrow().get(&dims) {
            return p.clone();
        }
        let g = self.graph.graph();
        let p = Rc::new(CompiledProgram::new(
            g,
            self.weights,
            &self.load_time,
            (dims, self.threads, self.auto),
            self.isa,
        ));
        self.programs.borrow_mut().insert(dims, p.clone());
        p
    }

    /// Every whole-model program compiled (or declined) so far.
    pub fn program_report(&self) -> Vec<ProgramReport> {
        let mut out: Vec<ProgramReport> = self
            .programs
            .borrow()
            .iter()
            .map(|(d, p)| ProgramReport {
                batch: d.batch,
                time: d.time,
                source: d.source,
                outcome: outcome(p.as_ref().as_ref().map(|p| &p.code)),
                threads: p.as_ref().as_ref().map_or(0, |p| p.threads),
            })
            .collect();
        out.sort_by_key(|r| (r.batch, r.time, r.source));
        out
    }
}

impl rnnc_runtime::Backend for CpuBackend<'_> {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn run(&self, inputs: &rnnc_runtime::Inputs) -> Result<rnnc_runtime::Outputs, RunError> {
        CpuBackend::run(self, inputs)
    }

    fn run_into(
        &self,
        inputs: &rnnc_runtime::Inputs,
        outputs: &mut rnnc_runtime::Outputs,
    ) -> Result<(), RunError> {
        CpuBackend::run_into(self, inputs, outputs)
    }

    fn describe(&self) -> String {
        let threads = match (self.auto, self.threads) {
            (true, n) => format!("1 or {n} threads, as its cost model picks per scan"),
            (false, 1) => "1 thread".into(),
            (false, n) => format!("{n} threads"),
        };
        format!("the CPU, {} kernels, {threads}", self.isa)
    }

    fn compile_ms(&self) -> Option<f64> {
        let ms = |o: &Outcome| o.as_ref().map_or(0.0, |(t, _)| t.as_secs_f64() * 1e3);
        Some(self.program_report().iter().map(|r| ms(&r.outcome)).sum())
    }

    fn ran_on(&self) -> (usize, Option<&'static str>) {
        let n = self.program_report().iter().map(|r| r.threads).max();
        (n.unwrap_or(0).max(1), Some(self.isa.name()))
    }
}
