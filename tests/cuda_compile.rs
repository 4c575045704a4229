//! The CUDA backend's source compiles everywhere it must: for every model the
//! fixtures name, the equations LSTM and the test models, at -O0 and -O2, clang
//! (`-x cuda --cuda-device-only`, no CUDA SDK) and NVRTC each turn it into PTX for
//! sm_80 and sm_90, and `ptxas` assembles every PTX to a cubin.
//!
//! The tools: `clang-16` (Debian), NVRTC and `ptxas` from NVIDIA's PyPI wheels
//! (`scripts/test.sh` installs all three and puts NVRTC on LD_LIBRARY_PATH and
//! ptxas on PATH). Without them the test says what is missing and passes, except
//! under CI (`CI` set), where it fails.
//!
//! Running the kernels needs a GPU: see `rnnc run --backend cuda`.

mod common;

use rnnc_cli::args::ModelArgs;
use rnnc_gpu::Steps;
use rnnc_opt::Opt;
use std::path::Path;
use std::process::Command;

const ARCHS: [(&str, &str); 2] = [("sm_80", "compute_80"), ("sm_90", "compute_90")];

fn tool_present(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the tools are here; under CI their absence is a failure.
fn tools() -> bool {
    let clang = tool_present("clang-16");
    let ptxas = tool_present("ptxas");
    let nvrtc =
        rnnc_backend_cuda::nvrtc_ptx("extern \"C\" __global__ void k() {}", "compute_80").is_ok();
    if clang && ptxas && nvrtc {
        return true;
    }
    let missing = format!("clang-16: {clang}, ptxas: {ptxas}, NVRTC: {nvrtc}");
    assert!(
        std::env::var_os("CI").is_none(),
        "CUDA tools missing under CI ({missing}); scripts/test.sh installs them"
    );
    eprintln!("skipped: CUDA tools missing ({missing}); scripts/test.sh installs them");
    false
}

fn optimised(g: &rnnc_ir::Graph, level: u8) -> rnnc_ir::Graph {
    let mut g = g.clone();
    let passes = Opt::Level(level).build().unwrap();
    rnnc_opt::run_pipeline(&mut g, &passes, &Default::default(), &mut String::new()).unwrap();
    g
}

fn run(cmd: &mut Command, what: &str) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn ptxas(ptx: &Path, arch: &str) {
    let cubin = ptx.with_extension(format!("{arch}.cubin"));
    run(
        Command::new("ptxas")
            .arg(format!("-arch={arch}"))
            .arg(ptx)
            .arg("-o")
            .arg(&cubin),
        &format!("ptxas {}", ptx.display()),
    );
    assert!(std::fs::metadata(&cubin).unwrap().len() > 0);
}

#[test]
fn every_model_compiles_with_clang_and_nvrtc_and_assembles_with_ptxas() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = common::gpu_cases();
    let mut files = 0;
    for (i, (model, params)) in cases.iter().enumerate() {
        let args = ModelArgs {
            model: model.clone(),
            params: params.clone(),
            config: None,
        };
        let lowered = rnnc_cli::compile(&args).unwrap();
        // -O0 as planned by default (whole-sequence kernels at this size), -O2 also
        // launched per step.
        for (level, steps) in [(0u8, Steps::Auto), (2, Steps::Auto), (2, Steps::PerStep)] {
            let g = optimised(&lowered, level);
            let v = rnnc_ir::verify(&g).unwrap();
            let plan = rnnc_gpu::plan_with(&v, &g.name, common::dims(3, 5), steps).unwrap();
            let src = rnnc_backend_cuda::source(&plan);
            let cu = dir.path().join(format!("m{i}_O{level}_{steps:?}.cu"));
            std::fs::write(&cu, &src).unwrap();
            for (sm, compute) in ARCHS {
                let ptx = cu.with_extension(format!("clang.{sm}.ptx"));
                run(
                    Command::new("clang-16")
                        .args([
                            "-x",
                            "cuda",
                            "--cuda-device-only",
                            "-nocudainc",
                            "-nocudalib",
                            "-O2",
                            "-S",
                        ])
                        .arg(format!("--cuda-gpu-arch={sm}"))
                        .arg(&cu)
                        .arg("-o")
                        .arg(&ptx),
                    &format!("clang-16 on {} -O{level}", model.display()),
                );
                ptxas(&ptx, sm);
                let nv = rnnc_backend_cuda::nvrtc_ptx(&src, compute)
                    .unwrap_or_else(|e| panic!("NVRTC on {} -O{level}: {e}", model.display()));
                let ptx = cu.with_extension(format!("nvrtc.{sm}.ptx"));
                std::fs::write(&ptx, nv).unwrap();
                ptxas(&ptx, sm);
            }
            files += 1;
        }
    }
    assert!(files >= 30, "only {files} files");
}

/// ptxas is a real check: PTX with an undefined register is refused.
#[test]
fn ptxas_refuses_broken_ptx() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ptx = dir.path().join("bad.ptx");
    std::fs::write(&ptx, ".version 7.8\n.target sm_80\n.address_size 64\n.visible .entry k() { mov.u32 %r1, 1; ret; }\n").unwrap();
    let o = Command::new("ptxas")
        .arg("-arch=sm_80")
        .arg(&ptx)
        .arg("-o")
        .arg(dir.path().join("bad.cubin"))
        .output()
        .unwrap();
    assert!(!o.status.success());
}

/// Without a driver the backend says so and nothing panics (on a machine with
/// an NVIDIA GPU this runs the model instead and checks it against the interpreter).
#[test]
fn the_cuda_backend_runs_or_says_why_not() {
    let args = ModelArgs {
        model: common::root().join("models/gru.rnn"),
        params: vec!["input_size=3".into(), "hidden_size=5".into()],
        config: None,
    };
    let g = rnnc_cli::compile(&args).unwrap();
    let w = rnnc_cli::bench::random_weights(&g, 2);
    let inputs = rnnc_cli::bench::random_inputs(&g, 2, 4, 3);
    match rnnc_backend_cuda::CudaBackend::new(rnnc_ir::verify(&g).unwrap(), &w) {
        Err(e) => assert!(e.0.contains("cuda backend needs"), "{e}"),
        Ok(b) => {
            let got = b.run(&inputs).unwrap();
            let want = rnnc_interp::run(&rnnc_ir::verify(&g).unwrap(), &inputs, &w).unwrap();
            for ((n, a), (_, b)) in got.iter().zip(&want) {
                let (rnnc_interp::Tensor::F32(a), rnnc_interp::Tensor::F32(b)) = (a, b) else {
                    panic!()
                };
                let d = a
                    .iter()
                    .zip(b.iter())
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
                assert!(d <= 1e-4, "{n}: {d}");
            }
        }
    }
}

/// On a machine with an NVIDIA GPU: every model the fixtures name and the test
/// models, at -O0 and -O2, each scan strategy, against the interpreter (elsewhere
/// it says why it ran nothing; `benches/gpu_device.sh` runs it on a GPU).
#[test]
fn every_model_runs_on_cuda_like_the_interpreter() {
    let mut failures = vec![];
    let mut runs = 0;
    for (model, params) in common::gpu_cases() {
        let args = ModelArgs {
            model: model.clone(),
            params: params.clone(),
            config: None,
        };
        let lowered = rnnc_cli::compile(&args).unwrap();
        let w = rnnc_cli::bench::random_weights(&lowered, 7);
        for level in [0, 2] {
            let g = optimised(&lowered, level);
            for steps in [Steps::Auto, Steps::PerStep, Steps::PerOp] {
                let v = rnnc_ir::verify(&g).unwrap();
                let gpu = match rnnc_backend_cuda::CudaBackend::with_steps(v, &w, steps) {
                    Ok(gpu) => gpu,
                    // No GPU here: the backend must say what is missing.
                    Err(e) => {
                        assert!(e.0.contains("cuda backend needs"), "{e}");
                        eprintln!("skipped: {e}");
                        return;
                    }
                };
                for (batch, seq) in [(1, 6), (5, 7), (64, 9)] {
                    let label = format!(
                        "{} {} -O{level} {steps:?} B={batch} T={seq}",
                        common::rel(&model),
                        params.join(" ")
                    );
                    let inputs = rnnc_cli::bench::random_inputs(&g, batch, seq, 11);
                    let want: std::collections::HashMap<_, _> =
                        rnnc_interp::run(&rnnc_ir::verify(&g).unwrap(), &inputs, &w)
                            .unwrap()
                            .into_iter()
                            .collect();
                    let got = gpu.run(&inputs);
                    runs += usize::from(common::check_outputs(
                        &label,
                        got,
                        &want,
                        1e-4,
                        &mut failures,
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{runs} runs on the GPU matched the interpreter");
}

/// Every ONNX import of `tests/onnx/fixtures/` (time-major layouts, sequence
/// lengths, the ONNX activations): its CUDA at -O2 through clang and NVRTC for
/// sm_80, each assembled by ptxas.
#[test]
fn every_onnx_import_compiles_with_clang_and_nvrtc_and_assembles_with_ptxas() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = common::root().join("tests/onnx/fixtures");
    let mut cases: Vec<_> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.onnx").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 50, "{} ONNX fixtures", cases.len());
    let (sm, compute) = ARCHS[0];
    for (i, case) in cases.iter().enumerate() {
        let what = case.file_name().unwrap().to_string_lossy().to_string();
        let m = rnnc::onnx::load(case.join("model.onnx"))
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .model
            .optimise(&Opt::Level(2))
            .unwrap();
        let g = m.graph();
        let plan = rnnc_gpu::plan(&rnnc_ir::verify(g).unwrap(), &g.name, 3, 5)
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let src = rnnc_backend_cuda::source(&plan);
        let cu = dir.path().join(format!("onnx{i}.cu"));
        std::fs::write(&cu, &src).unwrap();
        let ptx = cu.with_extension("clang.ptx");
        run(
            Command::new("clang-16")
                .args([
                    "-x",
                    "cuda",
                    "--cuda-device-only",
                    "-nocudainc",
                    "-nocudalib",
                    "-O2",
                    "-S",
                ])
                .arg(format!("--cuda-gpu-arch={sm}"))
                .arg(&cu)
                .arg("-o")
                .arg(&ptx),
            &format!("clang-16 on {what}"),
        );
        ptxas(&ptx, sm);
        let nv = rnnc_backend_cuda::nvrtc_ptx(&src, compute)
            .unwrap_or_else(|e| panic!("NVRTC on {what}: {e}"));
        let ptx = cu.with_extension("nvrtc.ptx");
        std::fs::write(&ptx, nv).unwrap();
        ptxas(&ptx, sm);
    }
}
