//! `rnnc compile`: ahead-of-time output. `--target cpu` writes an object file with
//! the weights inside and a C header (see `rnnc_backend_cpu::aot`); the GPU
//! targets are not built yet and say so.

use crate::args::CompileArgs;
use crate::commands::{compile as front_end, optimise};
use crate::error::{msg, CliError};

pub fn compile(a: &CompileArgs) -> Result<(), CliError> {
    match a.target.as_str() {
        "cpu" => {}
        "wgsl" | "cuda" => {
            return msg(format!(
                "--target {}: the GPU backends are not built yet; --target cpu writes an \
                 object file",
                a.target
            ))
        }
        other => {
            return msg(format!(
                "--target {other}: no such target; the targets are: cpu, wgsl, cuda"
            ))
        }
    }
    let Some(weights_path) = &a.weights else {
        return msg(
            "--target cpu needs --weights FILE.safetensors: the weights go into the object file",
        );
    };
    if a.batch == 0 || a.seq == 0 {
        return msg("--batch and --seq must be at least 1");
    }
    let mut g = front_end(&a.model)?;
    let weights = crate::weights::load(weights_path, &g.weights())?;
    optimise(&mut g, &a.opt)?;
    let verified = rnnc_ir::verify(&g)
        .map_err(|e| CliError::Message(format!("internal error: {}", e.join("; "))))?;
    let source = a.model.model.display().to_string();
    let out = rnnc_backend_cpu::aot::compile_object(&verified, &weights, a.batch, a.seq, &source)
        .map_err(|e| {
        CliError::Message(format!(
            "{source}: cannot be compiled ahead of time: {}",
            e.0
        ))
    })?;
    std::fs::create_dir_all(&a.out).map_err(|e| {
        CliError::Message(format!(
            "cannot create output directory `{}`: {e}",
            a.out.display()
        ))
    })?;
    let write = |name: String, bytes: &[u8]| -> Result<(), CliError> {
        let path = a.out.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", path.display())))?;
        println!("wrote {}", path.display());
        Ok(())
    };
    write(format!("{}.o", out.prefix), &out.object)?;
    write(format!("{}.h", out.prefix), out.header.as_bytes())?;
    println!(
        "{}_run: {} inputs, {} outputs, workspace {} floats; batch {}, length {}",
        out.prefix,
        out.inputs.len(),
        out.outputs.len(),
        out.workspace_floats,
        a.batch,
        a.seq
    );
    Ok(())
}
