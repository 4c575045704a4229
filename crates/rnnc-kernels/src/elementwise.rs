//! Elementwise loops (a scan's gate arithmetic, bias additions, copies) at the
//! ISA's vector width. Cranelift's own vectors are 128 bits wide, so the backend
//! hands each elementwise loop to [`ElementwiseProgram`]: straight-line code over
//! a few slots of [`BLOCK`] lanes, run block by block along each row. Every slot
//! op is a fixed-length loop over one block, which the compiler vectorises for
//! the ISA of the function it is inlined into (`#[target_feature]`), the
//! transcendental functions included (`math.rs`, branch-free).
//!
//! Each element's value is computed by the same code whatever block, lane or
//! thread it falls in (there are no cross-lane operations), so results do not
//! depend on how the loop is split between threads.

use crate::math;

/// Lanes of one slot.
pub const BLOCK: usize = 64;
/// Prefetch hints (x86's; elsewhere there is no prefetch).
#[cfg(target_arch = "x86_64")]
const READ: i32 = std::arch::x86_64::_MM_HINT_T0;
#[cfg(target_arch = "x86_64")]
const WRITE: i32 = std::arch::x86_64::_MM_HINT_ET0;
#[cfg(not(target_arch = "x86_64"))]
const READ: i32 = 0;
#[cfg(not(target_arch = "x86_64"))]
const WRITE: i32 = 0;
/// Slots a program may use at once (4 KiB of stack, zeroed per call).
pub const MAX_SLOTS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    Neg,
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    /// 1 where x > 0, else 0 (NaN included).
    Step,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

/// Straight-line code in SSA form: each op's operands are indices of earlier ops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Code {
    Input(usize),
    Const(f32),
    Unary(Unary, usize),
    Binary(Binary, usize, usize),
}

/// How an input is read along a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operand {
    /// Elements from one row to the next (0: every row reads the same one).
    pub row_stride: usize,
    /// One element stands for the whole row (broadcast across columns).
    pub scalar: bool,
    /// Elements from each element to the one the next call will read (the next
    /// time step of a sequence), fetched towards the cache ahead of it; 0: none.
    /// A step's rows of a `[B, T, F]` sequence lie a whole sequence apart, which
    /// the hardware's prefetchers do not follow.
    pub next: isize,
}

/// One step of a program, on slots.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    Input(usize),
    Const(f32),
    Unary(Unary, usize),
    Binary(Binary, usize, usize),
}

/// A loop body ready to run: slots assigned, inputs and outputs described.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementwiseProgram {
    /// (step, the slot it writes).
    steps: Vec<(Step, usize)>,
    inputs: Vec<Operand>,
    /// (slot, row stride) of each output.
    outputs: Vec<(usize, usize)>,
    /// Per output: elements from each element to the one the next call writes
    /// (an emit's next time step), fetched for writing ahead of it; 0: none.
    outputs_next: Vec<isize>,
    slots: usize,
}

impl ElementwiseProgram {
    /// `code` with its `inputs` and `outputs` ((index into `code`, row stride)).
    /// None when the code needs more than [`MAX_SLOTS`] values at once.
    pub fn new(code: &[Code], inputs: &[Operand], outputs: &[(usize, usize)]) -> Option<Self> {
        // The last step that reads each value; outputs are read at the end.
        let mut last = vec![0usize; code.len()];
        for (i, c) in code.iter().enumerate() {
            match *c {
                Code::Unary(_, a) => last[a] = i,
                Code::Binary(_, a, b) => {
                    last[a] = i;
                    last[b] = i;
                }
                Code::Input(_) | Code::Const(_) => {}
            }
        }
        for (v, _) in outputs {
            last[*v] = usize::MAX;
        }
        let mut slot_of = vec![usize::MAX; code.len()];
        let mut free: Vec<usize> = Vec::new();
        let mut slots = 0;
        let mut steps = Vec::with_capacity(code.len());
        for (i, c) in code.iter().enumerate() {
            let step = match *c {
                Code::Input(k) => Step::Input(k),
                Code::Const(x) => Step::Const(x),
                Code::Unary(u, a) => Step::Unary(u, slot_of[a]),
                Code::Binary(b, x, y) => Step::Binary(b, slot_of[x], slot_of[y]),
            };
            // Operands read for the last time here free their slots first: an
            // op may write in place, lane by lane.
            let operands: &[usize] = match c {
                Code::Unary(_, a) => &[*a],
                Code::Binary(_, a, b) => &[*a, *b],
                _ => &[],
            };
            for &a in operands {
                if last[a] == i && !free.contains(&slot_of[a]) {
                    free.push(slot_of[a]);
                }
            }
            let s = free.pop().unwrap_or_else(|| {
                slots += 1;
                slots - 1
            });
            if s >= MAX_SLOTS {
                return None;
            }
            slot_of[i] = s;
            // A value nobody reads frees its slot at once.
            if last[i] == 0 && !outputs.iter().any(|(v, _)| *v == i) {
                free.push(s);
            }
            steps.push((step, s));
        }
        Some(ElementwiseProgram {
            steps,
            inputs: inputs.to_vec(),
            outputs: outputs.iter().map(|(v, st)| (slot_of[*v], *st)).collect(),
            outputs_next: vec![0; outputs.len()],
            slots,
        })
    }

    /// The outputs' distances to what the next call writes (see `outputs_next`).
    pub fn with_outputs_next(mut self, next: Vec<isize>) -> Self {
        assert_eq!(next.len(), self.outputs.len(), "one distance per output");
        self.outputs_next = next;
        self
    }

    /// Inputs, then outputs: how many pointers a call passes.
    pub fn pointers(&self) -> usize {
        self.inputs.len() + self.outputs.len()
    }
}

/// Runs `prog` over rows `r0..r1`, columns `c0..c1`; `ptrs` holds each input's and
/// then each output's element (0, 0).
///
/// # Safety
/// The pointers must cover those rows and columns at the program's strides; the
/// CPU must support the ISA of the kernel (see [`crate::Isa::elementwise`]).
pub type ElementwiseKernel = unsafe extern "C" fn(
    prog: *const ElementwiseProgram,
    ptrs: *const *mut f32,
    r0: usize,
    r1: usize,
    c0: usize,
    c1: usize,
);

type Block = [f32; BLOCK];

/// The slots of one call.
#[repr(align(64))]
struct Slots([Block; MAX_SLOTS]);

#[inline(always)]
fn map(x: &Block, f: impl Fn(f32) -> f32) -> Block {
    let mut y = [0.0; BLOCK];
    for i in 0..BLOCK {
        y[i] = f(x[i]);
    }
    y
}

#[inline(always)]
fn zip(x: &Block, z: &Block, f: impl Fn(f32, f32) -> f32) -> Block {
    let mut y = [0.0; BLOCK];
    for i in 0..BLOCK {
        y[i] = f(x[i], z[i]);
    }
    y
}

/// Asks for the block at `p` (4 cache lines) to be brought towards L1, for
/// reading (`_MM_HINT_T0`) or writing (`_MM_HINT_ET0`); never faults, wherever `p`
/// points.
#[inline(always)]
fn prefetch<const HINT: i32>(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    for line in 0..BLOCK / 16 {
        // SAFETY: a prefetch reads nothing and cannot fault.
        unsafe { std::arch::x86_64::_mm_prefetch::<HINT>(p.wrapping_add(line * 16) as *const i8) };
    }
}

/// The loop nest; inlined into each ISA's entry point, which compiles it for
/// that ISA.
///
/// # Safety
/// As for [`ElementwiseKernel`].
#[inline(always)]
pub(crate) unsafe fn run(
    prog: &ElementwiseProgram,
    ptrs: *const *mut f32,
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
) {
    // The slots are not cleared: every step writes its slot before a later one
    // reads it, whole blocks included (a short block's lanes past the row's end
    // are zeros), and 4 KiB of stores per call would cost more than a small loop.
    // On a cache line: the stack gives only 16 bytes, and where a thread's stack
    // left the slots off a line, every vector store split in two (a main thread's
    // elementwise loop took 1.8 times its worker's for the same half of an LSTM
    // step).
    let mut storage = std::mem::MaybeUninit::<Slots>::uninit();
    // SAFETY: a place inside the storage; no reference to it is made.
    let slots = unsafe { &raw mut (*storage.as_mut_ptr()).0 } as *mut Block;
    let n_in = prog.inputs.len();
    for r in r0..r1 {
        let mut c = c0;
        while c < c1 {
            let n = BLOCK.min(c1 - c);
            for &(step, dst) in &prog.steps {
                let value = match step {
                    Step::Input(k) => {
                        let d = prog.inputs[k];
                        // SAFETY: row r, columns c .. c + n of input k exist.
                        let row = unsafe { (*ptrs.add(k)).add(r * d.row_stride) };
                        if d.scalar {
                            [unsafe { *row }; BLOCK]
                        } else if n == BLOCK {
                            if d.next != 0 {
                                prefetch::<READ>(unsafe { row.add(c) }.wrapping_offset(d.next));
                            }
                            // A whole block: plain vector loads, no call to memcpy.
                            unsafe { std::ptr::read_unaligned(row.add(c) as *const Block) }
                        } else {
                            let mut v = [0.0; BLOCK];
                            let src = unsafe { std::slice::from_raw_parts(row.add(c), n) };
                            v[..n].copy_from_slice(src);
                            v
                        }
                    }
                    Step::Const(x) => [x; BLOCK],
                    Step::Unary(u, a) => {
                        // SAFETY: slot a was written by an earlier step of this block.
                        let x = unsafe { &*slots.add(a) };
                        match u {
                            Unary::Neg => map(x, |v| -v),
                            // max(x, 0) that keeps NaN, as the generated code's `fmax`.
                            Unary::Relu => map(x, |v| if v > 0.0 || v.is_nan() { v } else { 0.0 }),
                            Unary::Sigmoid => map(x, math::sigmoid),
                            Unary::Tanh => map(x, math::tanh),
                            Unary::Exp => map(x, math::exp),
                            Unary::Log => map(x, math::log),
                            Unary::Step => map(x, |v| if v > 0.0 { 1.0 } else { 0.0 }),
                        }
                    }
                    Step::Binary(b, a, z) => {
                        // SAFETY: as above, for both operands.
                        let (x, y) = unsafe { (&*slots.add(a), &*slots.add(z)) };
                        match b {
                            Binary::Add => zip(x, y, |p, q| p + q),
                            Binary::Sub => zip(x, y, |p, q| p - q),
                            Binary::Mul => zip(x, y, |p, q| p * q),
                            Binary::Div => zip(x, y, |p, q| p / q),
                        }
                    }
                };
                // SAFETY: dst < MAX_SLOTS (checked when the program was made).
                unsafe { slots.add(dst).write(value) };
            }
            for (o, &(s, stride)) in prog.outputs.iter().enumerate() {
                // SAFETY: row r, columns c .. c + n of output o exist.
                let row = unsafe { (*ptrs.add(n_in + o)).add(r * stride + c) };
                // SAFETY: slot s was written by a step of this block.
                let v = unsafe { &*slots.add(s) };
                if n == BLOCK {
                    let next = prog.outputs_next[o];
                    if next != 0 {
                        // A step's rows of an emitted `[B, T, F]` sequence lie a
                        // whole sequence apart: each row's stores would miss.
                        prefetch::<WRITE>(row.wrapping_offset(next));
                    }
                    unsafe { std::ptr::write_unaligned(row as *mut Block, *v) };
                } else {
                    let dst = unsafe { std::slice::from_raw_parts_mut(row, n) };
                    dst.copy_from_slice(&v[..n]);
                }
            }
            c += n;
        }
    }
}
