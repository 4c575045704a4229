//! Decode loops (greedy decoding, beam search) with a compiled decoder step: the
//! step's body is compiled as a one-step scan over the previous tokens (at B rows,
//! or B·width for a beam), and the loop itself, its selection, stopping and
//! reordering of states are the interpreter's (`rnnc_interp::run_decode`), so
//! both choose the same tokens.

use crate::scan::CompiledScan;
use crate::CpuBackend;
use ndarray::{ArrayD, IxDyn};
use rnnc_ir::op::Decode;
use rnnc_ir::{NodeId, Scan};
use rnnc_runtime::{RunError, Tensor};
use std::rc::Rc;

/// The decoder step of `d` as a one-step scan: sequence 0 is the previous
/// tokens, then its states and memories, as the loop feeds them.
fn step_scan(d: &Decode) -> Scan {
    Scan {
        reverse: false,
        n_seqs: 1,
        n_states: d.n_states,
        n_memory: d.n_memory,
        step: 1,
        body: d.body.clone(),
        tail: None,
    }
}

impl CpuBackend<'_> {
    /// Decode loop `node`'s step as a scan, made once.
    fn step_scan(&self, node: NodeId, d: &Decode) -> Rc<Scan> {
        self.step_scans
            .borrow_mut()
            .entry(node)
            .or_insert_with(|| Rc::new(step_scan(d)))
            .clone()
    }

    /// Runs decode loop `d` (node `node`) with its step compiled; None where the
    /// step cannot be (the interpreter then runs the loop; [`CpuBackend::report`]
    /// says why).
    pub(crate) fn decode_loop(
        &self,
        node: NodeId,
        d: &Decode,
        operands: &[Rc<Tensor>],
    ) -> Option<Result<Vec<Tensor>, RunError>> {
        let rows = operands[0].shape()[0] * d.beam.unwrap_or(1);
        let with_rows = |t: &Rc<Tensor>| {
            let mut s = t.shape().to_vec();
            s[0] = rows;
            s
        };
        let mut shapes = vec![vec![rows, 1]];
        shapes.extend(operands.iter().map(with_rows));
        let scan = self.step_scan(node, d);
        let compiled = self.compiled_at(node, &scan, shapes);
        let step: &CompiledScan = compiled.as_ref().as_ref().ok()?;
        let pool = self.pool.as_ref();
        Some(rnnc_interp::run_decode(
            d,
            operands,
            &mut |prev, states, memory| {
                let tokens = ArrayD::from_shape_vec(IxDyn(&[prev.len(), 1]), prev.to_vec())
                    .expect("one token per row");
                let mut args = vec![Rc::new(Tensor::I64(tokens))];
                args.extend(states.iter().cloned());
                args.extend(memory.iter().cloned());
                let mut out = step.run(&args, pool)?;
                // Emits ([rows, 1, width] each, the logits first), then the states.
                let next = out.split_off(step.plan.n_emits);
                let logits = out.swap_remove(0).f32().clone();
                let v = logits.shape()[2];
                let logits = logits
                    .into_shape_with_order(IxDyn(&[prev.len(), v]))
                    .expect("one step");
                Ok((next.into_iter().map(Rc::new).collect(), logits))
            },
        ))
    }
}
