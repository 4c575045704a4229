//! A whole model compiled for one (B, T): the top-level program (`whole.rs`) and
//! the scans it calls, one function of each per thread. A run binds the inputs,
//! outputs, constants, workspace and scan addresses to the program's pointer table
//! and makes one call: nothing of the model is left to the interpreter.

use crate::barrier::SpinBarrier;
use crate::jit::{self, Jitted};
use crate::plan::{Products, Slot, Unsupported};
use crate::run::{flat, run_entries};
use crate::whole::{plan_model, Dims, IntInput, WholePlan};
use crate::workers::Workers;
use rnnc_ir::{Graph, NodeId};
use rnnc_kernels::{AlignedF32, Isa};
use rnnc_runtime::{RunError, Tensor, Weights};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub struct CompiledProgram {
    whole: WholePlan,
    /// The plan's constants (weights, packed panels), each starting on a cache line.
    consts: Vec<AlignedF32>,
    pub code: Jitted,
    /// The workspace: it starts on a cache line, as every buffer the plan places
    /// in it (`Buffers::scratch`) starts at a multiple of 16 floats, so no vector
    /// of a step straddles two lines and threads writing neighbouring columns do
    /// not share one (on a 16-byte boundary, as a large `Vec` is, it cost an LSTM
    /// at B=1, T=1000, H=128 about 20 % on 2 threads and 6 % on 1, on an Intel
    /// Xeon).
    scratch: RefCell<AlignedF32>,
    barrier: SpinBarrier,
    /// How many threads the code runs on.
    pub threads: usize,
}

impl CompiledProgram {
    /// Compiles `g` for the sizes `shape`; `known` are its load-time values; the
    /// products run on `isa`'s kernels, the code on `threads` threads, or with
    /// `auto` on 1 or `threads`, as the cost model (`threads.rs`) chooses.
    pub fn new(
        g: &Graph,
        weights: &Weights,
        known: &HashMap<NodeId, Rc<Tensor>>,
        (shape, threads, auto): (Dims, usize, bool),
        isa: Isa,
    ) -> Result<Self, Unsupported> {
        let mut whole = plan_model(g, weights, known, shape, threads, Products::jit(isa))?;
        let threads = if auto {
            crate::threads::choose(&whole, threads)
        } else {
            threads
        };
        whole.top.callees = whole.scans.len() * threads;
        let code = jit::compile_program(&whole, threads).map_err(Unsupported::new)?;
        let scratch = RefCell::new(AlignedF32::zeros(whole.top.scratch_len));
        let consts = aligned(&mut whole.top.consts);
        Ok(CompiledProgram {
            whole,
            consts,
            code,
            scratch,
            barrier: SpinBarrier::new(threads),
            threads,
        })
    }

    /// Runs the model on inputs already checked against the graph
    /// ([`rnnc_interp::bind_sizes`]) with the (B, T) this was compiled for; inputs
    /// declared `= zeros` may be missing. Token ids outside their embedding table
    /// are an error, as in the interpreter. The results go to `outputs`; the
    /// buffers of f32 outputs it already holds (an earlier run's: same names,
    /// order and shapes) are zeroed and written again instead of allocated.
    pub fn run_into(
        &self,
        inputs: &HashMap<String, Tensor>,
        pool: Option<&Workers>,
        outputs: &mut Vec<(String, Tensor)>,
    ) -> Result<(), RunError> {
        let w = &self.whole;
        let mut ins: Vec<Input<'_>> = Vec::new();
        for ((name, dims), int) in w.inputs.iter().zip(&w.ints) {
            let n: usize = dims.iter().product();
            ins.push(match (inputs.get(name), int) {
                (Some(Tensor::I64(ids)), Some(int)) => {
                    match *int {
                        IntInput::Ids { rows } => crate::run::check_ids(ids, rows)?,
                        IntInput::Lengths { time } => rnnc_interp::check_lengths(ids, time)?,
                    }
                    Input::Ids(match ids.as_slice() {
                        Some(s) => Cow::Borrowed(s),
                        None => Cow::Owned(ids.iter().copied().collect()),
                    })
                }
                (Some(t @ Tensor::F32(_)), None) => Input::F32(match t.f32().as_slice() {
                    Some(s) => Cow::Borrowed(s),
                    None => Cow::Owned(flat(t)),
                }),
                (None, Some(_)) => Input::Ids(Cow::Owned(vec![0; n])),
                (None, None) => Input::F32(Cow::Owned(vec![0.0; n])),
                (Some(_), _) => unreachable!("bind_sizes checked the dtypes"),
            });
        }
        let mut outs = self.buffers(std::mem::take(outputs));
        let mut scratch = self.scratch.borrow_mut();
        let table: Vec<*mut f32> = w
            .top
            .slots()
            .into_iter()
            .map(|s| match s {
                Slot::Seq(i) => match &ins[i] {
                    Input::F32(s) => s.as_ptr() as *mut f32,
                    Input::Ids(s) => s.as_ptr() as *mut f32,
                },
                Slot::Emit(i) => outs[i].as_mut_ptr(),
                Slot::Const(i) => self.consts[i].as_ptr() as *mut f32,
                Slot::Scratch => scratch.as_mut_ptr(),
                Slot::Fn(i) => self.code.callees[i] as *mut f32,
                Slot::State(_) | Slot::NextState(_) | Slot::Memory(_) => {
                    unreachable!("the top-level program has no states or memories")
                }
            })
            .collect();
        run_entries(&self.code.entries, &table, &self.barrier, pool);
        drop(scratch);
        *outputs = w
            .outputs
            .iter()
            .zip(&w.output_ints)
            .zip(outs.drain(..))
            .map(|(((name, dims), int), out)| {
                let t = match out {
                    Buffer::Kept(a) => Tensor::F32(a),
                    Buffer::Fresh(out) if *int => Tensor::I64(ints(dims, out.as_slice())),
                    Buffer::Fresh(out) => Tensor::F32(into_array(out, dims)),
                };
                (name.clone(), t)
            })
            .collect();
        Ok(())
    }

    /// A buffer per output: `old`'s array where it is this output's (name, f32,
    /// shape, one contiguous block), zeroed as a new one would be; else a new one.
    /// (The tests find no output the code leaves partly unwritten, packed
    /// sequences included, but nothing promises it; the zeroing is about 1 % of
    /// an LSTM's run at B=64.)
    fn buffers(&self, old: Vec<(String, Tensor)>) -> Vec<Buffer> {
        let w = &self.whole;
        let mut old: Vec<Option<ndarray::ArrayD<f32>>> = if old.len() == w.outputs.len() {
            old.into_iter()
                .zip(&w.outputs)
                .zip(&w.output_ints)
                .map(|(((name, t), (want, dims)), int)| match t {
                    Tensor::F32(mut a)
                        if name == *want
                            && !int
                            && a.shape() == dims.as_slice()
                            && a.is_standard_layout() =>
                    {
                        a.fill(0.0);
                        Some(a)
                    }
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        old.resize(w.outputs.len(), None);
        old.into_iter()
            .zip(&w.top.emit_widths)
            .map(|(kept, n)| match kept {
                Some(a) => Buffer::Kept(a),
                None => Buffer::Fresh(AlignedF32::zeros(*n)),
            })
            .collect()
    }
}

/// Where an output's values go.
enum Buffer {
    /// The array of an earlier run, written again.
    Kept(ndarray::ArrayD<f32>),
    Fresh(AlignedF32),
}

impl Buffer {
    fn as_mut_ptr(&mut self) -> *mut f32 {
        match self {
            Buffer::Kept(a) => a
                .as_slice_mut()
                .expect("kept only when contiguous")
                .as_mut_ptr(),
            Buffer::Fresh(o) => o.as_mut_ptr(),
        }
    }
}

/// The i64 values of an output buffer, each two f32 units (little-endian words).
fn ints(dims: &[usize], data: &[f32]) -> ndarray::ArrayD<i64> {
    let v = data
        .chunks_exact(2)
        .map(|w| (u64::from(w[0].to_bits()) | u64::from(w[1].to_bits()) << 32) as i64)
        .collect();
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(dims), v).expect("sizes agree")
}

/// An output's values as an array of `dims`, in the same allocation (its first
/// value on a cache line, as the workspace's, so that the threads writing
/// neighbouring columns of a step's output row do not share a line).
fn into_array(out: AlignedF32, dims: &[usize]) -> ndarray::ArrayD<f32> {
    let len = out.len();
    let (data, start) = out.into_parts();
    ndarray::Array1::from_vec(data)
        .slice_move(ndarray::s![start..start + len])
        .into_shape_with_order(ndarray::IxDyn(dims))
        .expect("sizes agree")
        .into_dyn()
}

/// One input's data: f32 values, or i64 token ids.
enum Input<'a> {
    F32(Cow<'a, [f32]>),
    Ids(Cow<'a, [i64]>),
}

/// The plan's constants moved to buffers that start on a cache line (the plan
/// keeps empty ones: its slots still count them).
pub(crate) fn aligned(consts: &mut [Vec<f32>]) -> Vec<AlignedF32> {
    consts
        .iter_mut()
        .map(|c| AlignedF32::from_slice(&std::mem::take(c)))
        .collect()
}
