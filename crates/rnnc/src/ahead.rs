//! Ahead-of-time output through the library, for one batch size and length: an
//! object file with the weights inside and its C header (the CPU), or the GPU
//! kernels as one source file and their launch manifest (WGSL, CUDA C).

use crate::error::Error;
use crate::model::Model;
use rnnc_runtime::Weights;

pub use rnnc_backend_cpu::aot::CompiledObject as ObjectFile;

/// Which GPU source to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuTarget {
    Wgsl,
    Cuda,
}

impl GpuTarget {
    /// The GPU target called `name`; else why not.
    pub fn from_name(name: &str) -> Result<Self, String> {
        match name {
            "wgsl" => Ok(GpuTarget::Wgsl),
            "cuda" => Ok(GpuTarget::Cuda),
            _ => Err("no such GPU target; the targets are: wgsl, cuda".into()),
        }
    }

    /// The target's name, as `--target` takes it.
    pub fn name(self) -> &'static str {
        match self {
            GpuTarget::Wgsl => "wgsl",
            GpuTarget::Cuda => "cuda",
        }
    }
}

/// A model's GPU kernels and how to launch them.
#[derive(Clone, Debug)]
pub struct GpuKernels {
    /// The source file's name: `<model>.wgsl` or `<model>.cu`.
    pub file: String,
    pub source: String,
    /// The launch manifest (JSON): buffers, kernels and their order.
    pub manifest: String,
    pub kernels: usize,
    pub launches_per_run: usize,
    /// Floats in the one buffer every kernel reads and writes.
    pub arena_floats: usize,
    /// How each scan's time step runs: one line per scan, such as
    /// `scan0: fused step, 1 launch per step`.
    pub scans: Vec<String>,
}

impl Model {
    /// An object file and C header running this model on inputs of batch `batch`
    /// and length `seq`, `weights` built in (checked: see [`Model::load_weights`]).
    pub fn object_file(
        &self,
        weights: &Weights,
        batch: usize,
        seq: usize,
    ) -> Result<ObjectFile, Error> {
        at_least_one(batch, seq)?;
        let g = self.graph();
        let verified = crate::error::verified(g)?;
        rnnc_backend_cpu::aot::compile_object(&verified, weights, batch, seq, self.origin())
            .map_err(|e| {
                Error::Message(format!(
                    "{}: cannot be compiled ahead of time: {}",
                    self.origin(),
                    e.message(g)
                ))
            })
    }

    /// The GPU kernels for inputs of batch `batch` and length `seq`; the weights
    /// are not built in (the host uploads them by key).
    pub fn gpu_kernels(
        &self,
        target: GpuTarget,
        batch: usize,
        seq: usize,
    ) -> Result<GpuKernels, Error> {
        at_least_one(batch, seq)?;
        let g = self.graph();
        let verified = crate::error::verified(g)?;
        let plan = rnnc_gpu::plan(&verified, &g.name, batch, seq).map_err(|e| {
            Error::Message(format!(
                "{}: cannot be compiled for the GPU: {}",
                self.origin(),
                e.message(g)
            ))
        })?;
        let (ext, source) = match target {
            GpuTarget::Wgsl => ("wgsl", rnnc_backend_wgsl::source(&plan)),
            GpuTarget::Cuda => ("cu", rnnc_backend_cuda::source(&plan)),
        };
        let file = format!("{}.{ext}", plan.model);
        let manifest = rnnc_gpu::manifest::to_json(&plan, target.name(), &file);
        Ok(GpuKernels {
            file,
            source,
            manifest,
            kernels: plan.kernels.len(),
            launches_per_run: plan.launches_per_run(),
            arena_floats: plan.arena_words,
            scans: plan.scans.iter().map(describe_scan).collect(),
        })
    }
}

/// One scan's strategy in words, launches counted per time step.
fn describe_scan(s: &rnnc_gpu::plan::ScanPlan) -> String {
    let per = match s.steps_per_body {
        _ if s.strategy == "whole sequence" => "one launch for every step".to_string(),
        1 => format!(
            "{} launch{} per step",
            s.launches_per_body,
            if s.launches_per_body == 1 { "" } else { "es" }
        ),
        k => format!("{} launches per {k} steps", s.launches_per_body),
    };
    match &s.why {
        Some(why) => format!("{}: {}, {per} (no fused step: {why})", s.scan, s.strategy),
        None => format!("{}: {}, {per}", s.scan, s.strategy),
    }
}

fn at_least_one(batch: usize, seq: usize) -> Result<(), Error> {
    if batch == 0 || seq == 0 {
        return crate::error::msg(format!(
            "batch {batch}, length {seq}: the batch size and the length must be at least 1"
        ));
    }
    Ok(())
}
