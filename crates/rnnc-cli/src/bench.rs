//! `rnnc bench`: times a model the way `../shared/peers/bench_peers.py` times its
//! peers (2 warm-up runs, then at least 10 runs and 1 s, at most 200; the median), on
//! random inputs of the given batch and length, so that the numbers compare.

use crate::args::BenchArgs;
use crate::error::{msg, CliError};
use crate::setup::{backend, load_with_weights, optimise_model};
use ndarray::{ArrayD, IxDyn};
use rnnc::BackendKind;
use rnnc::{Tensor, Weights};
use rnnc_ir::{DType, Dim, Graph};
use std::collections::HashMap;
use std::time::Instant;

/// A small deterministic generator: benchmarks must not vary with a seed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
}

fn dims(ty: &rnnc_ir::TensorTy, batch: usize, seq: usize) -> Vec<usize> {
    ty.dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n,
            Dim::Batch => batch,
            // A seq2seq model's source is as long as its target here.
            Dim::Time | Dim::Source => seq,
        })
        .collect()
}

/// Random weights for every weight `g` reads, the same for the same seed.
pub fn random_weights(g: &Graph, seed: u64) -> Weights {
    let mut rng = Lcg(seed);
    let rng = &mut rng;
    g.weights()
        .into_iter()
        .map(|(k, ty)| {
            let shape = dims(&ty, 1, 1);
            let n = shape.iter().product();
            // Small values keep the gates away from saturation, as trained weights are.
            (
                k,
                ArrayD::from_shape_vec(IxDyn(&shape), (0..n).map(|_| 0.2 * rng.next()).collect())
                    .expect("sizes agree"),
            )
        })
        .collect()
}

/// Random values for every input of `g` not declared `= zeros`, at batch `batch`
/// and length `seq`; token ids are 0, and an i64 `[B]` input (sequence lengths)
/// holds the full length.
pub fn random_inputs(g: &Graph, batch: usize, seq: usize, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Lcg(seed);
    let rng = &mut rng;
    g.inputs()
        .into_iter()
        .filter(|(_, _, zeros)| !zeros)
        .map(|(name, ty, _)| {
            let shape = dims(&ty, batch, seq);
            let n: usize = shape.iter().product();
            let t = match ty.dtype {
                DType::F32 => Tensor::F32(
                    ArrayD::from_shape_vec(
                        IxDyn(&shape),
                        (0..n).map(|_| 2.0 * rng.next()).collect(),
                    )
                    .expect("sizes agree"),
                ),
                DType::I64 if ty.dims == [Dim::Batch] => {
                    Tensor::I64(ArrayD::from_elem(IxDyn(&shape), seq as i64))
                }
                // Token 0 is in range of any embedding table.
                DType::I64 => Tensor::I64(ArrayD::zeros(IxDyn(&shape))),
            };
            (name, t)
        })
        .collect()
}

pub fn bench(a: &BenchArgs) -> Result<(), CliError> {
    let kind = backend(&a.backend, a.threads)?;
    if a.stream && !matches!(kind, BackendKind::Cpu { .. }) {
        return msg(format!(
            "--stream: the {} backend has no streaming sessions; use --backend cpu",
            a.backend
        ));
    }
    if a.batch == 0 || a.seq == 0 {
        return msg("--batch and --seq must be at least 1");
    }
    let start = Instant::now();
    let (mut m, inside) = load_with_weights(&a.model)?;
    // Checked against the model as written; an ONNX model brings its own.
    let given = match &a.weights {
        Some(p) => Some(m.load_weights(p)?),
        None => inside,
    };
    optimise_model(&mut m, &a.opt)?;
    let compile_ms = start.elapsed().as_secs_f64() * 1e3;
    let weights = given.unwrap_or_else(|| random_weights(m.graph(), 0x5eed));
    let g = m.graph();
    let isa = |(n, isa): (usize, Option<&'static str>)| (n, isa.unwrap_or("none"));
    let (mut times, compile_ms, ran) = if a.stream {
        // One step per timed run, state kept: the latency a streaming caller sees.
        let inputs = random_inputs(g, a.batch, 1, 0x5eed + 1);
        let mut s = m.stream(weights, a.threads)?;
        s.step(&inputs)?;
        let compile_ms = compile_ms + s.compile_ms();
        let ran = isa(s.ran_on());
        let times = time_runs(1000, || s.step(&inputs).map(drop))?;
        (times, compile_ms, ran)
    } else {
        let inputs = random_inputs(g, a.batch, a.seq, 0x5eed + 1);
        let c = m.compile(weights, kind)?;
        // The first run compiles for its shape: that counts as compile time
        // (all of it where the backend compiles inside the run, the GPUs).
        let first = Instant::now();
        let mut outputs = c.run(&inputs)?;
        let first_ms = first.elapsed().as_secs_f64() * 1e3;
        let compile_ms = compile_ms + c.compile_ms().unwrap_or(first_ms);
        let ran = isa(c.ran_on());
        // Into the first run's outputs, as a server calling `run_into` would: the
        // CPU backend writes them again rather than faulting in fresh pages.
        let times = time_runs(200, || c.run_into(&inputs, &mut outputs))?;
        (times, compile_ms, ran)
    };
    times.sort_by(f64::total_cmp);
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0
    };
    let steps = if a.stream { 1 } else { a.seq };
    // A decode loop stops when its sequences end, so its work is not known ahead:
    // no FLOP rate is printed for such models rather than a wrong one.
    let mut decodes = false;
    g.walk(&mut |sub| {
        decodes |= sub
            .node_ids()
            .any(|id| matches!(sub.node(id).op, rnnc_ir::Op::Decode(_)))
    });
    let rate = (!decodes).then(|| rnnc_opt::matmul_flops(g, a.batch, steps) / (median * 1e6));
    let gflops = rate.map_or("null".to_string(), |r| format!("{r:.6}"));
    let limits = machine_fractions(g, ran, rate, steps, median);
    let gflops_text = rate.map_or(
        "no GFLOP/s (a decode loop's work depends on when its sequences end)".to_string(),
        |r| format!("{r:.2} GFLOP/s in products"),
    );
    if a.json && a.stream {
        println!(
            "{{\"model\": {:?}, \"backend\": {:?}, \"batch\": {}, \"stream\": true, \"threads\": {}, \"isa\": {:?}, \"median_ms\": {median:.6}, \"median_us_per_step\": {:.3}, \"min_ms\": {:.6}, \"runs\": {}, \"gflops\": {gflops}, \"compile_ms\": {compile_ms:.6}{}}}",
            g.name, a.backend, a.batch, ran.0, ran.1, median * 1e3, times[0], times.len(), limits.json
        );
    } else if a.stream {
        println!("{} on {} streaming (B={}, one step per call, threads: {}, isa: {}): median {:.2} µs per step, min {:.2} µs over {} steps, {gflops_text}{}; compiled in {compile_ms:.1} ms", g.name, a.backend, a.batch, ran.0, ran.1, median * 1e3, times[0] * 1e3, times.len(), limits.text);
    } else if a.json {
        println!(
            "{{\"model\": {:?}, \"backend\": {:?}, \"batch\": {}, \"seq\": {}, \"threads\": {}, \"isa\": {:?}, \"median_ms\": {median:.6}, \"min_ms\": {:.6}, \"runs\": {}, \"gflops\": {gflops}, \"compile_ms\": {compile_ms:.6}{}}}",
            g.name, a.backend, a.batch, a.seq, ran.0, ran.1, times[0], times.len(), limits.json
        );
    } else {
        println!("{} on {} (B={}, T={}, threads: {}, isa: {}): median {median:.3} ms, min {:.3} ms over {} runs, {gflops_text}{}; compiled in {compile_ms:.1} ms", g.name, a.backend, a.batch, a.seq, ran.0, ran.1, times[0], times.len(), limits.text);
    }
    Ok(())
}

/// Times `run` like bench_peers.py: 2 warm-up runs, then at least 10 runs and 1 s
/// (at most `max` runs), in ms; progress on stderr when it takes long.
fn time_runs(
    max: usize,
    mut run: impl FnMut() -> Result<(), CliError>,
) -> Result<Vec<f64>, CliError> {
    for _ in 0..2 {
        run()?;
    }
    let mut times = Vec::new();
    let t0 = Instant::now();
    let mut last_report = 0;
    while times.len() < 10 || (t0.elapsed().as_secs_f64() < 1.0 && times.len() < max) {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let secs = t0.elapsed().as_secs();
        if secs >= 2 && secs > last_report {
            last_report = secs;
            eprintln!("bench: {} runs, {secs} s", times.len());
        }
    }
    Ok(times)
}

/// A run against the machine's limits, as JSON fields (each after a comma) and
/// as a phrase for the text line; empty where there are none to compare with.
struct Fractions {
    json: String,
    text: String,
}

/// The run's share of the FMA peak of its cores, and of the bandwidth of the
/// cache level the recurrent weights fit in (per thread), each measured with the
/// kernels at start-up (`rnnc_kernels::measure`, about 30 ms). Only for the CPU
/// backend's kernel paths.
fn machine_fractions(
    g: &rnnc_ir::Graph,
    (threads, isa): (usize, &str),
    gflops: Option<f64>,
    steps: usize,
    median_ms: f64,
) -> Fractions {
    let none = Fractions {
        json: String::new(),
        text: String::new(),
    };
    let Some(limits) = rnnc::Isa::parse(isa).and_then(rnnc::measure_limits) else {
        return none;
    };
    let weights = rnnc_opt::stats(g).weight_bytes_per_step as f64;
    let per_thread = weights / threads as f64;
    let in_l2 = limits.l2_bytes.is_some_and(|l2| per_thread <= l2 as f64);
    let (level, bw) = if in_l2 {
        ("L2", limits.l2_gbs)
    } else {
        ("L3", limits.l3_gbs)
    };
    let peak = limits.peak_gflops * threads as f64;
    let of_peak = gflops.map(|r| r / peak);
    let streamed = weights * steps as f64 / (median_ms * 1e-3) / 1e9;
    let of_bw = streamed / (bw * threads as f64);
    let of_peak_json = of_peak.map_or("null".to_string(), |f| format!("{f:.4}"));
    Fractions {
        json: format!(
            ", \"peak_gflops_per_core\": {:.2}, \"fraction_of_peak\": {of_peak_json}, \
             \"weights_per_step_mib\": {:.3}, \"weights_in\": \"{level}\", \
             \"weights_gbs_per_core\": {bw:.2}, \"fraction_of_bandwidth\": {of_bw:.4}",
            limits.peak_gflops,
            weights / (1 << 20) as f64
        ),
        text: format!(
            " ({}of {peak:.0} GFLOP/s peak; weights {:.2} MiB a step from {level}, {:.0} % \
             of its {:.0} GB/s)",
            of_peak.map_or(String::new(), |f| format!("{:.0} % ", f * 100.0)),
            weights / (1 << 20) as f64,
            of_bw * 100.0,
            bw * threads as f64
        ),
    }
}
