//! The subcommands: `check`, `ir` and `run`.

use crate::args::{Cli, Command, IrFormat, ModelArgs, OptArgs};
use crate::error::{msg, CliError};
use crate::{npy, params, weights};
use rnnc_ir::{lower, verify, Graph};
use rnnc_syntax::diagnostic::render_all;
use rnnc_syntax::{load_program, SourceMap};
use std::collections::HashMap;
use std::path::PathBuf;

pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Check { model } => {
            let g = compile(&model)?;
            println!(
                "ok: model {} ({} inputs, {} outputs, {} weights)",
                g.name,
                g.inputs().len(),
                g.outputs.len(),
                g.weights().len()
            );
            Ok(())
        }
        Command::Ir { model, opt, format } => {
            let mut g = compile(&model)?;
            optimise(&mut g, &opt)?;
            match format {
                IrFormat::Text => print!("{g}"),
                IrFormat::Dot => print!("{}", rnnc_ir::to_dot(&g)),
            }
            Ok(())
        }
        Command::Bench(args) => crate::bench::bench(&args),
        Command::Compile(args) => crate::aot::compile(&args),
        Command::Passes { model, opt } => {
            let g = compile(&model)?;
            print!("{}", crate::passes_table::table(g, &opt)?);
            Ok(())
        }
        Command::Run {
            model,
            opt,
            weights,
            inputs,
            backend,
            threads,
            out,
            decode,
            beam_width,
            blank,
        } => {
            check_backend(&backend)?;
            let threads = thread_count(&backend, threads)?;
            let mut g = compile(&model)?;
            // The file must fit the model as written, before passes drop or duplicate anything.
            let w = match &weights {
                Some(file) => weights::load(file, &g.weights())?,
                None if g.weights().is_empty() => Default::default(),
                None => {
                    return msg(format!(
                        "{}: the model has {} weights (such as `{}`): pass them with --weights FILE.safetensors",
                        model.model.display(),
                        g.weights().len(),
                        g.weights()[0].0
                    ))
                }
            };
            optimise(&mut g, &opt)?;
            let mut given = HashMap::new();
            for spec in &inputs {
                let Some((name, file)) = spec.split_once('=') else {
                    return msg(format!(
                        "--input {spec}: expected NAME=FILE.npy, e.g. --input input=x.npy"
                    ));
                };
                if given
                    .insert(name.to_string(), npy::read(&PathBuf::from(file))?)
                    .is_some()
                {
                    return msg(format!("--input {name} is given twice"));
                }
            }
            let verified = verify(&g)
                .map_err(|e| CliError::Message(format!("internal error: {}", e.join("; "))))?;
            let outputs = match backend.as_str() {
                "interp" => rnnc_interp::run(&verified, &given, &w),
                "wgsl" => rnnc_backend_wgsl::WgslBackend::new(verified, &w).and_then(|b| {
                    eprintln!("wgsl backend on {}", b.adapter());
                    b.run(&given)
                }),
                "cuda" => {
                    rnnc_backend_cuda::CudaBackend::new(verified, &w).and_then(|b| b.run(&given))
                }
                _ => cpu_backend(verified, &w, threads).and_then(|b| {
                    let out = b.run(&given);
                    report_fallbacks(&b);
                    out
                }),
            }
            .map_err(|e| CliError::Message(format!("{}: {e}", model.model.display())))?;
            std::fs::create_dir_all(&out).map_err(|e| {
                CliError::Message(format!(
                    "cannot create output directory `{}`: {e}",
                    out.display()
                ))
            })?;
            for (name, t) in &outputs {
                let path = out.join(format!("{name}.npy"));
                npy::write(&path, t)?;
                println!("wrote {} {:?}", path.display(), t.shape());
            }
            if let Some(how) = decode {
                let text = crate::decode::decode(&outputs, how, beam_width, blank)
                    .map_err(|e| CliError::Message(format!("--decode: {e}")))?;
                let path = out.join("decoded.txt");
                std::fs::write(&path, &text).map_err(|e| {
                    CliError::Message(format!("cannot write `{}`: {e}", path.display()))
                })?;
                print!("{text}");
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

/// The passes `-O`/`--passes` ask for.
pub fn pipeline(opt: &OptArgs) -> Result<Vec<Box<dyn rnnc_opt::Pass>>, CliError> {
    let choice = match (&opt.passes, opt.level) {
        (Some(p), _) => rnnc_opt::Opt::Passes(p.clone()),
        (None, Some(l)) => rnnc_opt::Opt::Level(l),
        (None, None) => rnnc_opt::Opt::default(),
    };
    choice.build().map_err(CliError::Message)
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

/// Runs the pipeline over `g`; instrumentation output goes to stderr.
pub fn optimise(g: &mut Graph, opt: &OptArgs) -> Result<(), CliError> {
    let passes = pipeline(opt)?;
    for p in &opt.print_ir_after {
        if !rnnc_opt::passes::ALL.iter().any(|(n, _, _)| n == p) {
            return msg(format!("--print-ir-after={p}: there is no pass `{p}`"));
        }
    }
    let mut log = String::new();
    let result = rnnc_opt::run_pipeline(g, &passes, &instrumentation(opt), &mut log);
    eprint!("{log}");
    result
        .map(|_| ())
        .map_err(|e| CliError::Message(e.to_string()))
}

/// Loads, parses and lowers a model with its hyperparameters into a verified graph.
pub fn compile(args: &ModelArgs) -> Result<Graph, CliError> {
    let mut sources = SourceMap::new();
    let program = load_program(&args.model, &mut sources)
        .map_err(|d| CliError::Rendered(render_all(&d, &sources)))?;
    let hparams = params::collect(&program.entry, &args.params, args.config.as_deref())?;
    lower::lower(&program, &hparams).map_err(|d| CliError::Rendered(render_all(&d, &sources)))
}

/// The backends `run` and `bench` know.
pub(crate) const BACKENDS: &[&str] = &["cpu", "interp", "wgsl", "cuda"];

pub(crate) fn check_backend(name: &str) -> Result<(), CliError> {
    if BACKENDS.contains(&name) {
        Ok(())
    } else {
        msg(format!(
            "--backend {name}: no such backend; the backends here are: {}",
            BACKENDS.join(", ")
        ))
    }
}

/// The CPU backend for `--threads`: that many threads, or without the flag the
/// count its cost model picks (one, or this machine's cores).
pub(crate) fn cpu_backend<'g>(
    verified: rnnc_ir::Verified<'g>,
    w: &'g rnnc_interp::Weights,
    threads: Option<usize>,
) -> Result<rnnc_backend_cpu::CpuBackend<'g>, rnnc_interp::InterpError> {
    match threads {
        Some(n) => rnnc_backend_cpu::CpuBackend::with_threads(verified, w, n),
        None => rnnc_backend_cpu::CpuBackend::auto(verified, w),
    }
}

/// The thread count for `backend`: `--threads` if given; None (the CPU
/// backend's own choice) without it; the interpreter and the GPUs take one.
pub(crate) fn thread_count(
    backend: &str,
    threads: Option<usize>,
) -> Result<Option<usize>, CliError> {
    match (backend, threads) {
        (_, Some(0)) => msg("--threads 0: at least one thread is needed"),
        ("interp", Some(n)) if n > 1 => msg(format!(
            "--threads {n}: the interp backend (the reference) runs on one thread; \
             use --backend cpu for more"
        )),
        ("interp", _) => Ok(Some(1)),
        ("wgsl" | "cuda", Some(n)) => msg(format!(
            "--threads {n}: the {backend} backend runs on the GPU; --threads is for --backend cpu"
        )),
        ("wgsl" | "cuda", None) => Ok(Some(1)),
        (_, threads) => Ok(threads),
    }
}

/// Says which scans the CPU backend left to the interpreter, and why.
fn report_fallbacks(b: &rnnc_backend_cpu::CpuBackend<'_>) {
    for r in b.program_report() {
        if let Err(why) = &r.outcome {
            eprintln!(
                "note: the model runs scan by scan, its top level on the interpreter's \
                 kernels: {}",
                why.0
            );
        }
    }
    for r in b.report() {
        if let Err(why) = &r.outcome {
            eprintln!(
                "note: scan %{} runs on the interpreter: {}",
                r.node.index(),
                why.0
            );
        }
    }
}
