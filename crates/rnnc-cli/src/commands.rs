//! The subcommands: `check`, `ir` and `run`.

use crate::args::{Cli, Command, IrFormat, ModelArgs};
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
        Command::Ir { model, format } => {
            let g = compile(&model)?;
            match format {
                IrFormat::Text => print!("{g}"),
            }
            Ok(())
        }
        Command::Run {
            model,
            weights,
            inputs,
            backend,
            out,
        } => {
            if backend != "interp" {
                return msg(format!(
                    "--backend {backend}: not available in this build; the backends here are: interp"
                ));
            }
            let g = compile(&model)?;
            let w = weights::load(&weights, &g.weights())?;
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
            let outputs = rnnc_interp::run(&verified, &given, &w)
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
            Ok(())
        }
    }
}

/// Loads, parses and lowers a model with its hyperparameters into a verified graph.
pub fn compile(args: &ModelArgs) -> Result<Graph, CliError> {
    let mut sources = SourceMap::new();
    let program = load_program(&args.model, &mut sources)
        .map_err(|d| CliError::Rendered(render_all(&d, &sources)))?;
    let hparams = params::collect(&program.entry, &args.params, args.config.as_deref())?;
    lower::lower(&program, &hparams).map_err(|d| CliError::Rendered(render_all(&d, &sources)))
}
