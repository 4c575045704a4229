//! A model: its source loaded with its imports, hyperparameters bound, lowered to
//! the graph IR and verified; optimised copies of it; weights checked against it.

use crate::backend::BackendKind;
use crate::compiled::Compiled;
use crate::error::{msg, Error};
use crate::params::{self, Params};
use crate::stream::Stream;
use rnnc_ir::{lower, Graph, TensorTy};
use rnnc_opt::{Instrumentation, Opt, Pass};
use rnnc_runtime::Weights;
use rnnc_syntax::diagnostic::render_all;
use rnnc_syntax::{load_program, load_root, Program, SourceMap};
use std::path::Path;

/// Parsing and lowering recurse as deep as the model nests; they run on a thread
/// with this much stack, whatever the caller's thread has (a Python thread's is
/// small), within the parser's own limits on nesting.
const FRONT_END_STACK: usize = 256 << 20;

/// A lowered, verified model and the weights it declares.
#[derive(Clone, Debug)]
pub struct Model {
    graph: Graph,
    /// The weights the model as written declares: weights must fit these,
    /// whatever passes dropped or merged since.
    declared: Vec<(String, TensorTy)>,
    /// The file it came from (or `<source>`), for messages.
    origin: String,
}

impl Model {
    /// Loads the `.rnn` file at `path` (its imports relative to it, `std/…` built
    /// in) and lowers its last `model` with `params`.
    pub fn load(path: impl AsRef<Path>, params: &Params) -> Result<Model, Error> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        front_end(origin, params, |sources| load_program(path, sources))
    }

    /// As [`Model::load`], from source text (imports: `std/…` only, or relative
    /// to the working directory).
    pub fn from_source(text: &str, params: &Params) -> Result<Model, Error> {
        Model::from_named_source("<source>", text, params)
    }

    /// As [`Model::from_source`], with `name` standing for the file in messages.
    pub fn from_named_source(name: &str, text: &str, params: &Params) -> Result<Model, Error> {
        front_end(name.into(), params, |sources| {
            let root = sources.add(name, None, text.to_string());
            load_root(root, sources)
        })
    }

    /// A model of an already lowered graph (its weights as declared now).
    pub fn from_graph(graph: Graph) -> Model {
        Model {
            declared: graph.weights(),
            origin: graph.name.clone(),
            graph,
        }
    }

    pub fn into_graph(self) -> Graph {
        self.graph
    }

    pub fn name(&self) -> &str {
        &self.graph.name
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// (name, type, whether it defaults to zeros) of each input.
    pub fn inputs(&self) -> Vec<(String, TensorTy, bool)> {
        self.graph.inputs()
    }

    /// (name, type) of each output, in order.
    pub fn outputs(&self) -> Vec<(String, TensorTy)> {
        let g = &self.graph;
        g.outputs
            .iter()
            .map(|(n, v)| (n.clone(), g.ty(*v).clone()))
            .collect()
    }

    /// (`state_dict` key, type) of each weight the model as written declares.
    pub fn weights(&self) -> &[(String, TensorTy)] {
        &self.declared
    }

    /// A copy optimised by `pipeline` (`Opt::Level(2)` is `-O2`).
    pub fn optimise(&self, pipeline: &Opt) -> Result<Model, Error> {
        let mut m = self.clone();
        let mut log = String::new();
        m.optimise_with(build(pipeline)?, &Instrumentation::default(), &mut log)?;
        Ok(m)
    }

    /// Runs `passes` over this model in place, printing into `log` what `instr`
    /// asks for (the command line's `--print-ir-after-all` and the like).
    pub fn optimise_with(
        &mut self,
        passes: Vec<Box<dyn Pass>>,
        instr: &Instrumentation,
        log: &mut String,
    ) -> Result<(), Error> {
        rnnc_opt::run_pipeline(&mut self.graph, &passes, instr, log)
            .map(|_| ())
            .map_err(|e| Error::Message(e.to_string()))
    }

    /// The IR in its text form.
    pub fn ir(&self) -> String {
        self.graph.to_string()
    }

    /// The IR for Graphviz.
    pub fn dot(&self) -> String {
        rnnc_ir::to_dot(&self.graph)
    }

    /// The pass table: one row per pass of `pipeline` with what it did.
    pub fn passes(&self, pipeline: &Opt) -> Result<String, Error> {
        let mut log = String::new();
        crate::passes_table::table(
            self.graph.clone(),
            build(pipeline)?,
            &Instrumentation::default(),
            &mut log,
        )
    }

    /// Weights from a safetensors file (a PyTorch `state_dict`), every tensor
    /// checked against what the model declares.
    pub fn load_weights(&self, path: impl AsRef<Path>) -> Result<Weights, Error> {
        crate::weights::load(path.as_ref(), &self.declared)
    }

    /// Weights given in memory, checked as a file's are; `label` names them in
    /// messages.
    pub fn check_weights(&self, weights: Weights, label: &str) -> Result<Weights, Error> {
        crate::weights::check(weights, &self.declared, label)
    }

    /// No weights: for models that declare none; else an error naming one.
    pub fn no_weights(&self) -> Result<Weights, Error> {
        match self.declared.first() {
            None => Ok(Weights::new()),
            Some((key, _)) => msg(format!(
                "{}: the model has {} weights (such as `{key}`): pass them with --weights FILE.safetensors",
                self.origin,
                self.declared.len(),
            )),
        }
    }

    /// This model on `backend`, with `weights` (checked: use
    /// [`Model::load_weights`] or [`Model::check_weights`]).
    pub fn compile(&self, weights: Weights, backend: BackendKind) -> Result<Compiled, Error> {
        Compiled::new(self.graph.clone(), weights, backend, &self.origin)
    }

    /// This model one time step per call on the CPU backend (`threads` None:
    /// its cost model picks).
    pub fn stream(&self, weights: Weights, threads: Option<usize>) -> Result<Stream, Error> {
        Stream::new(self.graph.clone(), weights, threads, &self.origin)
    }

    /// Where the model came from, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The passes of `pipeline`.
pub(crate) fn build(pipeline: &Opt) -> Result<Vec<Box<dyn Pass>>, Error> {
    pipeline.build().map_err(Error::Message)
}

/// Loads a program with `load`, types `params` by its entry model and lowers it,
/// on a thread with room for deep recursion.
fn front_end(
    origin: String,
    params: &Params,
    load: impl FnOnce(&mut SourceMap) -> Result<Program, Vec<rnnc_syntax::diagnostic::Diagnostic>>
        + Send,
) -> Result<Model, Error> {
    std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .stack_size(FRONT_END_STACK)
            .spawn_scoped(s, || {
                let mut sources = SourceMap::new();
                let program =
                    load(&mut sources).map_err(|d| Error::Rendered(render_all(&d, &sources)))?;
                let hparams = params::collect(&program.entry, params)?;
                let mut graph = lower::lower(&program, &hparams)
                    .map_err(|d| Error::Rendered(render_all(&d, &sources)))?;
                // Kept so that a backend's refusal can name the place in the source.
                graph.sources = Some(std::sync::Arc::new(sources));
                let declared = graph.weights();
                Ok(Model {
                    graph,
                    declared,
                    origin,
                })
            })
            .map_err(|e| Error::Message(format!("cannot start the front end's thread: {e}")))?;
        worker.join().unwrap_or_else(|_| {
            msg("internal compiler error (a panic); please report it with the model file")
        })
    })
}
