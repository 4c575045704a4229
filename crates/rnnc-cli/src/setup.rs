//! What every subcommand does first, from its flags: load the model (through the
//! `rnnc` library), run the pipeline with its instrumentation, check `--backend`
//! and `--threads`. `commands.rs`, `bench.rs` and `aot.rs` all use it; none of
//! them uses another.

use crate::args::{ModelArgs, OptArgs};
use crate::error::{msg, CliError};
use rnnc::{BackendKind, Model, Params, Weights};
use rnnc_ir::Graph;

/// The pipeline `-O`/`--passes` name.
pub fn choice(opt: &OptArgs) -> rnnc_opt::Opt {
    match (&opt.passes, opt.level) {
        (Some(p), _) => rnnc_opt::Opt::Passes(p.clone()),
        (None, Some(l)) => rnnc_opt::Opt::Level(l),
        (None, None) => rnnc_opt::Opt::default(),
    }
}

/// The passes `-O`/`--passes` ask for.
pub fn pipeline(opt: &OptArgs) -> Result<Vec<Box<dyn rnnc_opt::Pass>>, CliError> {
    choice(opt).build().map_err(CliError::Message)
}

pub fn instrumentation(opt: &OptArgs) -> rnnc_opt::Instrumentation {
    rnnc_opt::Instrumentation {
        print_after_all: opt.print_ir_after_all,
        print_after: opt.print_ir_after.clone(),
        print_after_change: opt.print_ir_after_change,
        time_passes: opt.time_passes,
        dump_dir: opt.dump_dir.clone(),
    }
}

/// Runs the pipeline over `m`; instrumentation output goes to stderr.
pub fn optimise_model(m: &mut Model, opt: &OptArgs) -> Result<(), CliError> {
    let passes = pipeline(opt)?;
    for p in &opt.print_ir_after {
        if !rnnc_opt::passes::ALL.iter().any(|(n, _, _)| n == p) {
            return msg(format!("--print-ir-after={p}: there is no pass `{p}`"));
        }
    }
    let mut log = String::new();
    let result = m.optimise_with(passes, &instrumentation(opt), &mut log);
    eprint!("{log}");
    result
}

/// Loads, parses and lowers a model with its hyperparameters.
pub fn load(args: &ModelArgs) -> Result<Model, CliError> {
    load_with_weights(args).map(|(m, _)| m)
}

/// Whether `path` names an ONNX model rather than `.rnn` source.
pub fn is_onnx(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// [`load`], and for an ONNX model the weights inside it (imported in memory, as
/// `rnnc import` would write them).
pub fn load_with_weights(args: &ModelArgs) -> Result<(Model, Option<Weights>), CliError> {
    if is_onnx(&args.model) {
        if !args.params.is_empty() || args.config.is_some() {
            return msg(format!(
                "{}: an ONNX model's sizes are fixed by its weights; --param and --config apply \
                 to .rnn models (`rnnc import` writes one to edit)",
                args.model.display()
            ));
        }
        let o = rnnc::onnx::load(&args.model)?;
        return Ok((o.model, Some(o.weights)));
    }
    let m = Model::load(
        &args.model,
        &Params::from_flags(&args.params, args.config.as_deref()),
    )?;
    Ok((m, None))
}

/// [`load`]'s graph.
pub fn compile(args: &ModelArgs) -> Result<Graph, CliError> {
    load(args).map(Model::into_graph)
}

/// The backend `--backend` names, on `--threads` threads where given, both
/// checked by the library; the message names the flag that does not fit.
pub(crate) fn backend(name: &str, threads: Option<usize>) -> Result<BackendKind, CliError> {
    let kind =
        BackendKind::from_name(name).or_else(|why| msg(format!("--backend {name}: {why}")))?;
    match threads {
        Some(n) => kind
            .with_threads(n)
            .or_else(|why| msg(format!("--threads {n}: {why}"))),
        None => Ok(kind),
    }
}
