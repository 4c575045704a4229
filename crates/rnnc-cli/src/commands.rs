//! The subcommands `check`, `ir`, `passes` and `run`, over the `rnnc` library;
//! `bench` and `compile` are `bench.rs` and `aot.rs`.

use crate::args::{Cli, Command, IrFormat};
use crate::error::{msg, CliError};
use crate::npy;
use crate::setup::{
    backend, choice, instrumentation, is_onnx, load, load_with_weights, optimise_model, pipeline,
};
use rnnc::BackendKind;
use std::collections::HashMap;
use std::path::PathBuf;

pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Import { model, out } => {
            let imported = rnnc::onnx::import(&model)?;
            let written = imported.write(&out).map_err(|e| {
                CliError::Message(format!("cannot write into `{}`: {e}", out.display()))
            })?;
            // Loaded back as `rnnc run` will, so a source that does not compile never stands.
            let m =
                rnnc::Model::load(&written[0], &rnnc::Params::new().config(written[1].clone()))?;
            m.load_weights(&written[2])?;
            for p in &written {
                println!("wrote {}", p.display());
            }
            let names = |v: &[(String, String)]| {
                v.iter()
                    .map(|(onnx, n)| {
                        if onnx == n {
                            n.clone()
                        } else {
                            format!("{n} (\"{onnx}\")")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "model {}: inputs {}; outputs {}; {} weights",
                imported.name,
                names(&imported.inputs),
                names(&imported.outputs),
                imported.weights.len()
            );
            println!(
                "run it: rnnc run {} --config {} --weights {} --input NAME=FILE.npy --out DIR",
                written[0].display(),
                written[1].display(),
                written[2].display()
            );
            Ok(())
        }
        Command::Explore {
            model,
            opt,
            out,
            backend: backend_name,
            batch,
            seq,
        } => {
            // The CPU's code on one thread: the listing of each function once.
            let kind = match backend(&backend_name, None)? {
                BackendKind::Cpu { .. } => BackendKind::Cpu { threads: Some(1) },
                BackendKind::Interp => return msg(
                    "--backend interp: the interpreter generates no code; pick cpu, wgsl or cuda",
                ),
                k => k,
            };
            let m = load(&model)?;
            // The source beside the passes: the file, or what import makes of an .onnx.
            let source = if is_onnx(&model.model) {
                Some(rnnc::onnx::import(&model.model)?.source)
            } else {
                std::fs::read_to_string(&model.model).ok()
            };
            let mut report = m.explore(&choice(&opt), source)?;
            report.generated = Some(
                m.optimise(&choice(&opt))?
                    .generated_code(kind, batch, seq)?,
            );
            std::fs::write(&out, rnnc::explore_html::html(&report))
                .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", out.display())))?;
            println!(
                "wrote {}: {} passes over model {}",
                out.display(),
                report.steps.len() - 1,
                report.model
            );
            Ok(())
        }
        Command::Check { model } => {
            let m = load(&model)?;
            println!(
                "ok: model {} ({} inputs, {} outputs, {} weights)",
                m.name(),
                m.inputs().len(),
                m.outputs().len(),
                m.weights().len()
            );
            Ok(())
        }
        Command::Ir { model, opt, format } => {
            let mut m = load(&model)?;
            optimise_model(&mut m, &opt)?;
            match format {
                IrFormat::Text => print!("{}", m.ir()),
                IrFormat::Dot => print!("{}", m.dot()),
                IrFormat::Svg => {
                    let source = if is_onnx(&model.model) {
                        None
                    } else {
                        std::fs::read_to_string(&model.model).ok()
                    };
                    println!("{}", m.svg(source.as_deref()))
                }
            }
            Ok(())
        }
        Command::Bench(args) => crate::bench::bench(&args),
        Command::Compile(args) => crate::aot::compile(&args),
        Command::Passes { model, opt } => {
            let m = load(&model)?;
            let mut log = String::new();
            let table = rnnc::passes_table::table(
                m.graph().clone(),
                pipeline(&opt)?,
                &instrumentation(&opt),
                &mut log,
            );
            eprint!("{log}");
            print!("{}", table?);
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
            let kind = self::backend(&backend, threads)?;
            let (mut m, inside) = load_with_weights(&model)?;
            // The file must fit the model as written, before passes drop or duplicate anything.
            let w = match (&weights, inside) {
                (Some(file), _) => m.load_weights(file)?,
                (None, Some(w)) => w,
                (None, None) => m.no_weights()?,
            };
            optimise_model(&mut m, &opt)?;
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
            let compiled = m.compile(w, kind)?;
            if kind == BackendKind::Wgsl {
                eprintln!("{}", compiled.describe());
            }
            let outputs = compiled.run(&given);
            for note in compiled.notes() {
                eprintln!("note: {note}");
            }
            let outputs = outputs?;
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
