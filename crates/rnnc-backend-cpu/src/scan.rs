//! Running one compiled scan: binding its operands to the pointer table, calling
//! the generated code, and handing back emits and final states as tensors.

use crate::jit::{self, Jitted};
use crate::plan::{self, Plan, Slot, Unsupported};
use ndarray::{ArrayD, IxDyn};
use rnnc_interp::{Tensor, Weights};
use rnnc_ir::Scan;
use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

pub struct CompiledScan {
    pub plan: Plan,
    pub code: Jitted,
    scratch: RefCell<Vec<f32>>,
}

impl CompiledScan {
    pub fn new(
        scan: &Scan,
        operand_shapes: &[Vec<usize>],
        weights: &Weights,
    ) -> Result<Self, Unsupported> {
        let plan = plan::plan(scan, operand_shapes, weights)?;
        let code = jit::compile(&plan).map_err(Unsupported)?;
        let scratch = RefCell::new(vec![0.0; plan.scratch_len]);
        Ok(CompiledScan {
            plan,
            code,
            scratch,
        })
    }

    /// Runs the scan on operands of the shapes it was compiled for.
    pub fn run(&self, operands: &[Rc<Tensor>]) -> Vec<Tensor> {
        let p = &self.plan;
        // Sequences are read in place when they are contiguous (they usually are).
        let seqs: Vec<Cow<'_, [f32]>> = operands[..p.n_seqs]
            .iter()
            .map(|t| match t.f32().as_slice() {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(flat(t)),
            })
            .collect();
        let mut states: Vec<Vec<f32>> = operands[p.n_seqs..].iter().map(|t| flat(t)).collect();
        let mut emits: Vec<Vec<f32>> = p
            .emit_widths
            .iter()
            .map(|w| vec![0.0; p.batch * p.time * w])
            .collect();
        let mut scratch = self.scratch.borrow_mut();
        let table: Vec<*mut f32> = p
            .slots()
            .into_iter()
            .map(|s| match s {
                Slot::Seq(i) => seqs[i].as_ptr() as *mut f32,
                Slot::State(i) => states[i].as_mut_ptr(),
                Slot::Emit(i) => emits[i].as_mut_ptr(),
                Slot::Const(i) => p.consts[i].as_ptr() as *mut f32,
                Slot::Scratch => scratch.as_mut_ptr(),
            })
            .collect();
        // SAFETY: every buffer has the size the plan was made for (the caller
        // compiled this scan for these operand shapes), the generated code only
        // writes states, emits and scratch, and all of them outlive the call.
        unsafe { (self.code.entry)(table.as_ptr()) };
        drop(scratch);
        let mut out: Vec<Tensor> = emits
            .into_iter()
            .zip(&p.emit_widths)
            .map(|(e, w)| Tensor::F32(array(&[p.batch, p.time, *w], e)))
            .collect();
        for (s, shape) in states.drain(..).zip(&p.state_shapes) {
            out.push(Tensor::F32(array(shape, s)));
        }
        out
    }
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.f32().iter().copied().collect()
}

fn array(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("sizes agree")
}
