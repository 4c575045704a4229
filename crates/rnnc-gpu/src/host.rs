//! What every host of a plan does, whatever runs the kernels: which words to
//! upload where (weights and constants once; inputs every run, token ids checked
//! against the vocabulary first), the launches in order with their clock, and the
//! outputs as tensors.

use crate::plan::{GpuPlan, Region, Step};
use ndarray::{ArrayD, IxDyn};
use rnnc_runtime::{RunError, Tensor, Weights};
use std::collections::HashMap;

/// (arena offset, words) to write.
pub type Upload = (usize, Vec<f32>);

/// Calls `f(kernel, clock)` for every launch of `steps`, loops expanded, in order.
pub fn launches(steps: &[Step], f: &mut dyn FnMut(usize, usize)) {
    fn walk(steps: &[Step], clock: usize, f: &mut dyn FnMut(usize, usize)) {
        for s in steps {
            match s {
                Step::Launch { kernel } => f(*kernel, clock),
                Step::Loop {
                    count,
                    first,
                    stride,
                    body,
                } => (0..*count).for_each(|i| walk(body, first + i * stride, f)),
            }
        }
    }
    walk(steps, 0, f)
}

/// The weights (by `state_dict` key) and constants, written once before the prologue.
pub fn weight_uploads(plan: &GpuPlan, weights: &Weights) -> Result<Vec<Upload>, RunError> {
    let mut out = vec![];
    for w in &plan.weights {
        let Some(t) = weights.get(&w.name) else {
            return Err(RunError(format!("missing weight `{}`", w.name)));
        };
        out.push((w.offset, t.iter().copied().collect()));
    }
    out.extend(plan.constants.iter().map(|c| (c.offset, vec![c.value])));
    Ok(out)
}

/// The sizes a run's inputs give a plan (checked against the model by
/// `rnnc_interp::bind_sizes`): 1 for an axis no input has, S as T where no input
/// has a source axis.
pub fn dims(
    graph: &rnnc_ir::Verified<'_>,
    inputs: &HashMap<String, Tensor>,
    weights: &Weights,
) -> Result<crate::Dims, RunError> {
    let sizes = rnnc_interp::bind_sizes(graph, inputs, weights)?;
    let time = sizes.time.unwrap_or(1);
    Ok(crate::Dims {
        batch: sizes.batch.unwrap_or(1),
        time,
        source: sizes.source.unwrap_or(time),
    })
}

/// The inputs of one run (already checked against the model by
/// `rnnc_interp::bind_sizes`); zeros for optional ones left out. Token ids outside
/// the vocabulary fail with the interpreter's message.
pub fn input_uploads(
    plan: &GpuPlan,
    inputs: &HashMap<String, Tensor>,
) -> Result<Vec<Upload>, RunError> {
    let mut out = vec![];
    for r in &plan.inputs {
        let vocab = plan
            .ids_inputs
            .iter()
            .find(|i| i.name == r.name)
            .map(|i| i.vocab);
        let longest = plan.lengths_inputs.iter().find(|l| l.name == r.name);
        let words = match (inputs.get(&r.name), longest) {
            (Some(Tensor::F32(a)), _) => a.iter().copied().collect(),
            (Some(Tensor::I64(lengths)), Some(l)) => {
                rnnc_interp::check_lengths(lengths, l.max)?;
                lengths.iter().map(|&n| n as f32).collect()
            }
            (Some(Tensor::I64(ids)), None) => {
                if let Some(n) = vocab {
                    if let Some(bad) = ids.iter().find(|&&i| i < 0 || i as u64 >= n as u64) {
                        return Err(RunError(format!(
                            "token id {bad} is out of range for an embedding table of {n} rows"
                        )));
                    }
                }
                ids.iter().map(|&i| i as f32).collect()
            }
            (None, _) => vec![0.0; r.len()],
        };
        out.push((r.offset, words));
    }
    Ok(out)
}

/// The outputs as tensors, from `read`, which gives a region's words.
pub fn outputs(plan: &GpuPlan, mut read: impl FnMut(&Region) -> Vec<f32>) -> Vec<(String, Tensor)> {
    plan.outputs
        .iter()
        .map(|r| {
            let words = read(r);
            let shape = IxDyn(&r.shape);
            let t = match r.dtype {
                "id" => Tensor::I64(
                    ArrayD::from_shape_vec(shape, words.iter().map(|&v| v as i64).collect())
                        .expect("region length matches its shape"),
                ),
                _ => Tensor::F32(
                    ArrayD::from_shape_vec(shape, words).expect("region length matches its shape"),
                ),
            };
            (r.name.clone(), t)
        })
        .collect()
}
