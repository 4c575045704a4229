//! The rnnc CPU backend.
//!
//! The whole model is compiled, for the batch size and length it is run at, to
//! native code (Cranelift): a top-level program (the hoisted input projection,
//! bias additions, the classifier head, copies) that calls one function per scan,
//! in which the time loop, the recurrent matrix product (f32x4 FMA over packed
//! weight panels) and the fused gate arithmetic (vectorised `exp`/`sigmoid`/`tanh`)
//! are generated code. Weight-only values are computed once, at load.
//!
//! A model whose top level uses an op the program builder has no code for
//! (`transpose`, a softmax over time…) runs on the interpreter's walk of the
//! graph instead, with each scan still compiled on its own; a scan the code
//! generator cannot handle is left to the interpreter. [`CpuBackend::report`] and
//! [`CpuBackend::program_report`] say which and why.
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
mod products;
mod program;
mod scan;
mod stream;
mod threads;
mod whole;
mod workers;

pub use jit::{capture_listings, Listing};
pub use plan::Unsupported;
pub use rnnc_kernels::{measure as measure_limits, Isa, Limits};
pub use stream::Stream;

use program::CompiledProgram;
use rnnc_interp::{load_time_values, run_with, Hooks};
use rnnc_ir::{NodeId, Op, Scan, Verified};
use rnnc_runtime::{RunError, Tensor, Weights};
use scan::CompiledScan;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;
use whole::Dims;
use workers::Workers;

/// What happened to one scan at one set of operand shapes.
#[derive(Clone, Debug)]
pub struct ScanReport {
    pub node: NodeId,
    pub shapes: Vec<Vec<usize>>,
    /// Compile time and code size, or why the interpreter runs it.
    pub outcome: Outcome,
    /// The threads its code runs on (0 where it was not compiled).
    pub threads: usize,
}

type Key = (NodeId, Vec<Vec<usize>>);

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
    /// Compile time and code size, or why the model runs scan by scan.
    pub outcome: Outcome,
    /// The threads the program runs on (0 where it was not compiled).
    pub threads: usize,
}

/// A model loaded for the CPU: weights bound, load-time values folded, scans
/// compiled on first use at each shape and kept.
pub struct CpuBackend<'g> {
    graph: Verified<'g>,
    weights: &'g Weights,
    load_time: HashMap<NodeId, Rc<Tensor>>,
    /// Top-level `linear`s whose matrix is a load-time value (see [`Hooks::op`]).
    weight_products: HashSet<NodeId>,
    scans: RefCell<HashMap<Key, Rc<Result<CompiledScan, Unsupported>>>>,
    /// Whole-model programs by (B, T, S).
    programs: RefCell<HashMap<Dims, Program>>,
    threads: usize,
    /// Whether each program chooses between 1 and `threads` threads itself.
    auto: bool,
    /// The threads compiled code runs on; None when there is one (the caller's).
    pool: Option<Workers>,
    /// The instruction set the products' kernels use.
    isa: Isa,
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
        let weight_products = g
            .node_ids()
            .filter(|id| matches!(g.node(*id).op, Op::Linear))
            .filter(|id| load_time.contains_key(&g.operands(*id)[1].node))
            .collect();
        Ok(CpuBackend {
            graph,
            weights,
            load_time,
            weight_products,
            scans: RefCell::new(HashMap::new()),
            programs: RefCell::new(HashMap::new()),
            threads,
            auto: false,
            pool,
            isa,
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

    /// Runs the model; same contract as [`rnnc_interp::run`].
    pub fn run(&self, inputs: &HashMap<String, Tensor>) -> Result<Vec<(String, Tensor)>, RunError> {
        let sizes = rnnc_interp::bind_sizes(&self.graph, inputs, self.weights)?;
        if let Some(batch) = sizes.batch {
            // A model without a time axis compiles the same at any T.
            let dims = Dims {
                batch,
                time: sizes.time.unwrap_or(1),
                source: sizes.source,
            };
            if let Ok(p) = &*self.program(dims) {
                return p.run(inputs, self.pool.as_ref());
            }
        }
        run_with(&self.graph, inputs, self.weights, self)
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

    /// Every scan compiled (or declined) on its own so far (models that run as a
    /// whole-model program have none).
    pub fn report(&self) -> Vec<ScanReport> {
        let mut out: Vec<ScanReport> = self
            .scans
            .borrow()
            .iter()
            .map(|((node, shapes), c)| ScanReport {
                node: *node,
                shapes: shapes.clone(),
                outcome: outcome(c.as_ref().as_ref().map(|c| &c.code)),
                threads: c.as_ref().as_ref().map_or(0, |c| c.threads),
            })
            .collect();
        out.sort_by_key(|r| (r.node.index(), r.shapes.clone()));
        out
    }

    fn compiled(
        &self,
        node: NodeId,
        scan: &Scan,
        operands: &[Rc<Tensor>],
    ) -> Rc<Result<CompiledScan, Unsupported>> {
        let shapes: Vec<Vec<usize>> = operands.iter().map(|t| t.shape().to_vec()).collect();
        let key = (node, shapes);
        if let Some(c) = self.scans.borrow().get(&key) {
            return c.clone();
        }
        let c = Rc::new(CompiledScan::new(
            scan,
            &key.1,
            self.weights,
            (self.threads, self.auto),
            self.isa,
        ));
        self.scans.borrow_mut().insert(key, c.clone());
        c
    }
}

impl Hooks for CpuBackend<'_> {
    fn cached(&self, node: NodeId) -> Option<Rc<Tensor>> {
        self.load_time.get(&node).cloned()
    }

    /// Products with a weight matrix: see `products.rs`.
    fn op(
        &self,
        node: NodeId,
        _op: &Op,
        operands: &[Rc<Tensor>],
    ) -> Option<Result<Tensor, RunError>> {
        if !self.weight_products.contains(&node) {
            return None;
        }
        products::linear(&operands[0], &operands[1], self.pool.as_ref()).map(Ok)
    }

    fn scan(
        &self,
        node: NodeId,
        scan: &Scan,
        operands: &[Rc<Tensor>],
    ) -> Option<Result<Vec<Tensor>, RunError>> {
        // Zero-sized operands (a feature axis of 0) are left to the interpreter;
        // empty batches and sequences never get here: binding the inputs refuses them.
        if operands[..scan.n_seqs]
            .iter()
            .any(|t| t.shape().contains(&0))
        {
            return None;
        }
        match &*self.compiled(node, scan, operands) {
            Ok(c) => Some(c.run(operands, self.pool.as_ref())),
            Err(_) => None,
        }
    }
}

impl rnnc_runtime::Backend for CpuBackend<'_> {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn run(&self, inputs: &rnnc_runtime::Inputs) -> Result<rnnc_runtime::Outputs, RunError> {
        CpuBackend::run(self, inputs)
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
        let programs: f64 = self.program_report().iter().map(|r| ms(&r.outcome)).sum();
        let scans: f64 = self.report().iter().map(|r| ms(&r.outcome)).sum();
        Some(programs + scans)
    }

    fn ran_on(&self) -> (usize, Option<&'static str>) {
        // The whole-model program's threads, or the most any scan compiled alone
        // runs on (the rest of such a model runs on the calling thread).
        let program = self.program_report().iter().map(|r| r.threads).max();
        let scans = self.report().iter().map(|r| r.threads).max();
        let n = program.unwrap_or(0).max(scans.unwrap_or(0)).max(1);
        (n, Some(self.isa.name()))
    }

    fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.program_report() {
            if let Err(why) = &r.outcome {
                out.push(format!(
                    "the model runs scan by scan, its top level on the interpreter's kernels: {}",
                    why.0
                ));
            }
        }
        for r in self.report() {
            if let Err(why) = &r.outcome {
                out.push(format!(
                    "scan %{} runs on the interpreter: {}",
                    r.node.index(),
                    why.0
                ));
            }
        }
        out
    }
}
