//! `rnnc compile`: ahead-of-time output. `--target cpu` writes an object file with
//! the weights inside and a C header (`Model::object_file`); `--target wgsl`
//! and `--target cuda` the GPU kernels and their launch manifest (`Model::gpu_kernels`).

use crate::args::CompileArgs;
use crate::error::{msg, CliError};
use crate::setup::{load_with_weights, optimise_model};
use rnnc::GpuTarget;
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
    let (mut m, inside) = load_with_weights(&a.model)?;
    // Checked against the model as written, before passes drop or merge any; an
    // ONNX model brings its own.
    let weights = match &a.weights {
        Some(path) => Some(m.load_weights(path)?),
        None => inside,
    };
    optimise_model(&mut m, &a.opt)?;
    let target = match a.target.as_str() {
        "cpu" => None,
        gpu => Some(GpuTarget::from_name(gpu).expect("checked above")),
    };
    let Some(target) = target else {
        let weights = match weights {
            Some(w) => w,
            None if m.weights().is_empty() => Default::default(),
            None => {
                return msg(format!(
                    "{}: --target cpu needs --weights FILE.safetensors: the model's {} weights go into the object file",
                    a.model.model.display(),
                    m.weights().len()
                ))
            }
        };
        let out = m.object_file(&weights, a.batch, a.seq)?;
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
        return Ok(());
    };
    // The GPU's weights are uploaded by key at run time: none are built in.
    let k = m.gpu_kernels(target, a.batch, a.seq)?;
    write(&a.out, &k.file, k.source.as_bytes())?;
    write(&a.out, &format!("{}.json", k.file), k.manifest.as_bytes())?;
    println!(
        "{}: {} kernels, {} launches per run, arena {} floats; batch {}, length {}",
        m.name(),
        k.kernels,
        k.launches_per_run,
        k.arena_floats,
        a.batch,
        a.seq
    );
    for scan in &k.scans {
        println!("  {scan}");
    }
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
