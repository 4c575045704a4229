//! `rnnc compile`: ahead-of-time output. `--target cpu` writes an object file with
//! the weights inside and a C header (see `rnnc_backend_cpu::aot`); `--target wgsl`
//! and `--target cuda` the GPU kernels and their launch manifest (see `rnnc_gpu`).

use crate::args::CompileArgs;
use crate::error::{msg, CliError};
use crate::setup::{compile as front_end, optimise};
use std::path::Path;

pub fn compile(a: &CompileArgs) -> Result<(), CliError> {
    if !["cpu", "wgsl", "cuda"].contains(&a.target.as_str()) {
        return msg(format!(
            "--target {}: no such target; the targets are: cpu, wgsl, cuda",
            a.target
        ));
    }
    if a.batch == 0 || a.seq == 0 {
        return msg("--batch and --seq must be at least 1");
    }
    if a.target != "cpu" {
        return compile_gpu(a);
    }
    let mut g = front_end(&a.model)?;
    let weights = match &a.weights {
        Some(path) => crate::weights::load(path, &g.weights())?,
        None if g.weights().is_empty() => Default::default(),
        None => {
            return msg(format!(
                "{}: --target cpu needs --weights FILE.safetensors: the model's {} weights go into the object file",
                a.model.model.display(),
                g.weights().len()
            ))
        }
    };
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
    write(&a.out, &format!("{}.o", out.prefix), &out.object)?;
    write(&a.out, &format!("{}.h", out.prefix), out.header.as_bytes())?;
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

/// `--target wgsl|cuda`: the kernels as one source file plus the launch manifest. The
/// weights are not built in (the host uploads them by key), so none are needed.
fn compile_gpu(a: &CompileArgs) -> Result<(), CliError> {
    let mut g = front_end(&a.model)?;
    if let Some(path) = &a.weights {
        // Checked against the model all the same, so a wrong file is caught here.
        crate::weights::load(path, &g.weights())?;
    }
    optimise(&mut g, &a.opt)?;
    let verified = rnnc_ir::verify(&g)
        .map_err(|e| CliError::Message(format!("internal error: {}", e.join("; "))))?;
    let source = a.model.model.display().to_string();
    let plan = rnnc_gpu::plan(&verified, &g.name, a.batch, a.seq).map_err(|e| {
        CliError::Message(format!("{source}: cannot be compiled for the GPU: {}", e.0))
    })?;
    let (ext, text) = match a.target.as_str() {
        "wgsl" => ("wgsl", rnnc_backend_wgsl::source(&plan)),
        _ => ("cu", rnnc_backend_cuda::source(&plan)),
    };
    let file = format!("{}.{ext}", plan.model);
    write(&a.out, &file, text.as_bytes())?;
    let manifest = rnnc_gpu::manifest::to_json(&plan, &a.target, &file);
    write(&a.out, &format!("{file}.json"), manifest.as_bytes())?;
    println!(
        "{}: {} kernels, {} launches per run, arena {} floats; batch {}, length {}",
        plan.model,
        plan.kernels.len(),
        plan.launches_per_run(),
        plan.arena_words,
        a.batch,
        a.seq
    );
    Ok(())
}

/// Writes `bytes` to `dir/name`, creating `dir`, and says so.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::Message(format!(
            "cannot create output directory `{}`: {e}",
            dir.display()
        ))
    })?;
    let path = dir.join(name);
    std::fs::write(&path, bytes)
        .map_err(|e| CliError::Message(format!("cannot write `{}`: {e}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(())
}
