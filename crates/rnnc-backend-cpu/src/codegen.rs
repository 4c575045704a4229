//! A [`Plan`] as one Cranelift function per thread, `fn(table: *const *mut f32,
//! barrier: *const SpinBarrier)`: the table holds a pointer per slot (see
//! [`Plan::slots`]); the function runs the whole time loop, then the left-over steps
//! of an unrolled scan with its tail program, doing its thread's [`Part`] of each
//! instruction and meeting the other threads where [`parallel::schedule`] says.

mod decode;

use crate::math;
use crate::pack::row_block;
use crate::parallel::{self, Part};
use crate::plan::{EOp, Elementwise, Instr, Plan, Program, RowOp, Slot, View};
use cranelift_codegen::ir::{
    condcodes::FloatCC, condcodes::IntCC, types, AbiParam, BlockArg, Function, InstBuilder,
    MemFlagsData, Signature, StackSlotData, StackSlotKind, Type, UserFuncName, Value,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use rnnc_ir::{BinaryOp, UnaryOp};
use rnnc_kernels::{Binary, Code, ElementwiseProgram, Isa, Operand, Unary};
use std::collections::HashMap;
use std::ops::Range;

const F4: Type = types::F32X4;

/// The signature every compiled scan has: (pointer table, barrier).
pub fn signature(call_conv: CallConv, ptr: Type) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig
}

/// Elementwise programs that generated code points to: boxed, because the code
/// holds their addresses, which must not move when the list grows.
#[allow(clippy::vec_box)]
pub type Programs = Vec<Box<ElementwiseProgram>>;

/// A generated function and the elementwise programs its kernel calls point
/// to, which must live as long as its code.
pub struct Built {
    pub func: Function,
    pub programs: Programs,
}

/// Builds the function that does `part` of `plan`.
pub fn build(plan: &Plan, part: Part, sig: Signature, config: TargetFrontendConfig) -> Built {
    let ptr = config.pointer_type();
    let mut func = Function::with_name_signature(UserFuncName::user(0, 0), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let table = b.block_params(entry)[0];
    let barrier = b.block_params(entry)[1];
    let mut bases = HashMap::new();
    for (i, slot) in plan.slots().into_iter().enumerate() {
        let p = b.ins().load(ptr, flags(), table, (i * 8) as i32);
        bases.insert(slot, p);
    }
    let mut e = Emitter {
        b: &mut b,
        plan,
        bases,
        ptr,
        timed: HashMap::new(),
        part,
        barrier,
        programs: Vec::new(),
    };
    let k = plan.body.steps.max(1);
    let full = plan.time / k;
    let homes: Vec<Value> = (0..plan.n_states)
        .map(|i| e.bases[&Slot::State(i)])
        .collect();
    if let Some(start) = &plan.prologue {
        let zero = e.b.ins().iconst(types::I64, 0);
        e.program(start, zero);
    }
    e.counted_while(full, |e, i| {
        let t = e.b.ins().imul_imm_s(i, k as i64);
        e.states_for_run(&homes, i);
        e.program(&plan.body, t);
        // Every thread reads the flag after the step's last barrier.
        plan.stop.map(|v| {
            let (base, off) = e.addr(&v, t);
            let flag = e.b.ins().load(types::F32, flags(), base, off as i32);
            let zero = e.b.ins().f32const(0.0);
            e.b.ins().fcmp(FloatCC::Equal, flag, zero)
        })
    });
    let mut runs = full;
    if let Some(tail) = &plan.tail {
        let left = plan.time - full * k;
        e.counted(left, &[], |e, i, _| {
            let t = e.b.ins().iadd_imm_s(i, (full * k) as i64);
            let run = e.b.ins().iadd_imm_s(i, full as i64);
            e.states_for_run(&homes, run);
            e.program(tail, t);
            vec![]
        });
        runs += left;
    }
    // After an odd number of runs the final states are in the second buffers.
    for (i, home) in homes.iter().enumerate() {
        e.bases.insert(Slot::State(i), *home);
        if runs % 2 == 1 {
            let (r, c) = crate::layout::rows_cols(&plan.state_shapes[i]);
            let from = View::contiguous(Slot::Scratch, plan.alt[i], r, c);
            let back = crate::plan::copy(from, View::contiguous(Slot::State(i), 0, r, c));
            let Instr::Elementwise(back) = back else {
                unreachable!("a copy is elementwise")
            };
            let t = e.b.ins().iconst(types::I64, 0);
            e.elementwise(&back, t);
        }
    }
    let programs = std::mem::take(&mut e.programs);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(config);
    Built { func, programs }
}

/// Loads and stores of f32 data: never trapping in well-formed plans, and not
/// assumed aligned (sequences and user tensors have 4-byte alignment only).
fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

struct Emitter<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    plan: &'a Plan,
    bases: HashMap<Slot, Value>,
    ptr: Type,
    /// Per program: (slot, step offset) → base pointer at that time step.
    timed: HashMap<(Slot, usize), Value>,
    part: Part,
    barrier: Value,
    /// Programs of the elementwise kernel calls made so far.
    programs: Programs,
}

impl Emitter<'_, '_> {
    /// `n` iterations of `body(i, carried) -> carried'`; straight-line when n ≤ 1.
    fn counted(
        &mut self,
        n: usize,
        carried: &[Value],
        mut body: impl FnMut(&mut Self, Value, &[Value]) -> Vec<Value>,
    ) -> Vec<Value> {
        if n == 0 {
            return carried.to_vec();
        }
        if n == 1 {
            let zero = self.b.ins().iconst(types::I64, 0);
            return body(self, zero, carried);
        }
        let header = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        for v in carried {
            let ty = self.b.func.dfg.value_type(*v);
            self.b.append_block_param(header, ty);
            self.b.append_block_param(exit, ty);
        }
        let zero = self.b.ins().iconst(types::I64, 0);
        let mut args = vec![BlockArg::Value(zero)];
        args.extend(carried.iter().map(|v| BlockArg::Value(*v)));
        self.b.ins().jump(header, &args);
        self.b.switch_to_block(header);
        let params = self.b.block_params(header).to_vec();
        let out = body(self, params[0], &params[1..]);
        let next = self.b.ins().iadd_imm_s(params[0], 1);
        let more = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, next, n as i64);
        let mut again = vec![BlockArg::Value(next)];
        again.extend(out.iter().map(|v| BlockArg::Value(*v)));
        let done: Vec<BlockArg> = out.iter().map(|v| BlockArg::Value(*v)).collect();
        self.b.ins().brif(more, header, &again, exit, &done);
        self.b.switch_to_block(exit);
        self.b.block_params(exit).to_vec()
    }

    /// `n` iterations of `body(i)`, which may return an i8 truth value: go on
    /// (the loop stops after the first iteration that returns false).
    fn counted_while(&mut self, n: usize, mut body: impl FnMut(&mut Self, Value) -> Option<Value>) {
        if n == 0 {
            return;
        }
        let header = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, types::I64);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.ins().jump(header, &[BlockArg::Value(zero)]);
        self.b.switch_to_block(header);
        let i = self.b.block_params(header)[0];
        let go_on = body(self, i);
        let next = self.b.ins().iadd_imm_s(i, 1);
        let more = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedLessThan, next, n as i64);
        let more = match go_on {
            Some(g) => self.b.ins().band(more, g),
            None => more,
        };
        self.b
            .ins()
            .brif(more, header, &[BlockArg::Value(next)], exit, &[]);
        self.b.switch_to_block(exit);
    }

    /// Points `State(i)` and `NextState(i)` at the buffers run `run` reads and
    /// writes: the state buffers (`homes`) and their second ones in scratch, in
    /// turn.
    fn states_for_run(&mut self, homes: &[Value], run: Value) {
        let odd = self.b.ins().band_imm_u(run, 1);
        let scratch = self.bases[&Slot::Scratch];
        for (i, home) in homes.iter().enumerate() {
            let alt = self
                .b
                .ins()
                .iadd_imm_s(scratch, (self.plan.alt[i] * 4) as i64);
            let read = self.b.ins().select(odd, alt, *home);
            let write = self.b.ins().select(odd, *home, alt);
            self.bases.insert(Slot::State(i), read);
            self.bases.insert(Slot::NextState(i), write);
        }
    }

    fn program(&mut self, p: &Program, t: Value) {
        self.timed.clear();
        let parallel = self.part.threads > 1;
        let schedule = parallel::schedule(p, self.part.threads);
        if parallel && self.part.thread == 0 && std::env::var_os("RNNC_SCHEDULE").is_some() {
            eprint!("{}", schedule.describe(p, self.plan.isa));
        }
        // The bytes of weight panels this thread streams a step: where they
        // cannot stay in its L2, the kernels prefetch them ahead.
        let streamed: usize = (p.instrs.iter().enumerate())
            .filter_map(|(i, instr)| match instr {
                Instr::MatMul { k, nb, .. } => {
                    let runs = schedule.panel_runs(i, self.part.thread);
                    Some(runs.iter().map(|r| r.len()).sum::<usize>() * k * nb * 4)
                }
                _ => None,
            })
            .sum();
        let stream = rnnc_kernels::stream_distance(streamed);
        for (i, instr) in p.instrs.iter().enumerate() {
            if schedule.barriers[i] {
                self.wait();
            }
            let panels = || schedule.panel_runs(i, self.part.thread);
            match instr {
                Instr::MatMul {
                    x,
                    panels: panels_slot,
                    k,
                    nb,
                    out,
                    ..
                } if self.plan.isa == Isa::Portable => {
                    for run in panels() {
                        self.matmul(x, *panels_slot, (*k, *nb, run), out, t);
                    }
                }
                Instr::MatMul {
                    x,
                    panels: panels_slot,
                    k,
                    nb,
                    out,
                    init,
                    ..
                } => {
                    for run in panels() {
                        self.kernel_matmul(
                            self.plan.isa,
                            x,
                            *panels_slot,
                            (*k, *nb, run),
                            (out, init, stream),
                            t,
                        );
                    }
                }
                Instr::Elementwise(e) => self.elementwise(e, t),
                Instr::Gemm { x, b, k, m, out } => self.gemm(x, *b, *k, *m, out, t),
                Instr::CallScan { scan, args } => self.call_scan(*scan, args, t),
                Instr::StepCopy {
                    src,
                    dst,
                    steps,
                    src_step,
                    dst_step,
                } => self.step_copy(src, dst, *steps, (*src_step, *dst_step), t),
                Instr::Rows {
                    x,
                    out,
                    op: RowOp::LayerNorm { eps },
                } => self.row_layer_norm(x, out, *eps, t),
                Instr::Rows {
                    x,
                    out,
                    op: RowOp::Dot { w },
                } => self.row_dot(x, *w, out, t),
                Instr::Rows { x, out, op } => self.row_softmax(x, out, *op == RowOp::LogSoftmax, t),
                Instr::Gather {
                    table,
                    vocab,
                    ids,
                    out,
                } => self.gather(*table, *vocab, ids, out, t),
                Instr::SequenceMask { lengths, out } => self.sequence_mask(*lengths, out, t),
                Instr::BatchMatMul {
                    a,
                    b,
                    out,
                    dims,
                    steps,
                } => self.batch_matmul((a, b, out), *dims, *steps, t),
                Instr::DecodeStart {
                    hyps,
                    bos,
                    pad,
                    width,
                } => self.decode_start(hyps, (*bos, *pad, *width)),
                Instr::GreedyPick { logp, hyps, eos } => self.greedy_pick(logp, hyps, *eos, t),
                Instr::BeamPick {
                    logp,
                    hyps,
                    eos,
                    pad,
                    width,
                    states,
                    spare,
                } => self.beam_pick(logp, hyps, (*eos, *pad, *width), states, spare, t),
            }
        }
        // The next step reads this step's states, written by every thread.
        if parallel {
            self.wait();
        }
    }

    /// A call of compiled scan `scan` (this thread's version; its address is in the
    /// table) with a table of the views' start pointers, built on the stack.
    fn call_scan(&mut self, scan: usize, args: &[View], t: Value) {
        let bytes = u32::try_from(args.len() * 8).expect("a small table");
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            bytes,
            3,
        ));
        for (i, v) in args.iter().enumerate() {
            let (base, off) = self.addr(v, t);
            let p = self.b.ins().iadd_imm_s(base, off);
            self.b.ins().stack_store(self.ptr, p, slot, (i * 8) as i32);
        }
        let table = self.b.ins().stack_addr(self.ptr, slot, 0);
        let sig = signature(self.b.func.signature.call_conv, self.ptr);
        let sigref = self.b.import_signature(sig);
        let callee = self.bases[&Slot::Fn(scan * self.part.threads + self.part.thread)];
        let barrier = self.barrier;
        self.b
            .ins()
            .call_indirect(sigref, callee, &[table, barrier]);
    }

    /// A call to [`crate::barrier::rnnc_barrier_wait`] through its address.
    fn wait(&mut self) {
        let barrier = self.barrier;
        let thread = self.b.ins().iconst(self.ptr, self.part.thread as i64);
        self.call_address(
            crate::barrier::rnnc_barrier_wait as *const () as usize,
            &[barrier, thread],
        );
    }

    /// A call of the function at `addr` in this process (a kernel, the barrier)
    /// with pointer-sized `args`.
    fn call_address(&mut self, addr: usize, args: &[Value]) {
        let mut sig = Signature::new(self.b.func.signature.call_conv);
        for _ in args {
            sig.params.push(AbiParam::new(self.ptr));
        }
        let sigref = self.b.import_signature(sig);
        let callee = self.b.ins().iconst(self.ptr, addr as i64);
        self.b.ins().call_indirect(sigref, callee, args);
    }

    /// Base pointer and constant byte offset of a view at step `t` of this program.
    fn addr(&mut self, v: &View, t: Value) -> (Value, i64) {
        let base = self.bases[&v.slot];
        let off = (v.offset * 4) as i64;
        let Some((j, stride)) = v.time else {
            return (base, off);
        };
        if let Some(p) = self.timed.get(&(v.slot, j)) {
            return (*p, off);
        }
        // time(t + j): forwards t + j, backwards T − 1 − (t + j).
        let step = if self.plan.reverse {
            let neg = self.b.ins().ineg(t);
            self.b
                .ins()
                .iadd_imm_s(neg, self.plan.time as i64 - 1 - j as i64)
        } else {
            self.b.ins().iadd_imm_s(t, j as i64)
        };
        let bytes = self.b.ins().imul_imm_s(step, (stride * 4) as i64);
        let p = self.b.ins().iadd(base, bytes);
        self.timed.insert((v.slot, j), p);
        (p, off)
    }

    /// (base, byte offset, view) of each view.
    fn addrs(&mut self, views: &[View], t: Value) -> Vec<(Value, i64, View)> {
        views
            .iter()
            .map(|v| {
                let (b, o) = self.addr(v, t);
                (b, o, *v)
            })
            .collect()
    }

    /// Pointer to row `r` (a run-time value) of a view, plus the view's byte offset.
    fn row_ptr(&mut self, base: Value, off: i64, row_stride: usize, r: Value) -> Value {
        let p = if row_stride == 0 {
            base
        } else {
            let bytes = self.b.ins().imul_imm_s(r, (row_stride * 4) as i64);
            self.b.ins().iadd(base, bytes)
        };
        self.b.ins().iadd_imm_s(p, off)
    }

    /// Generated code for panels `mine` of a product.
    fn matmul(
        &mut self,
        x: &View,
        panels: usize,
        (k, nb, mine): (usize, usize, Range<usize>),
        out: &View,
        t: Value,
    ) {
        let rb = row_block(nb);
        let nv = nb / 4;
        let (xb, xo) = self.addr(x, t);
        let (ob, oo) = self.addr(out, t);
        let wbase = self.bases[&Slot::Const(panels)];
        let rows = x.rows;
        let blocks = rows / rb;
        let (xs, os) = (x.row_stride, out.row_stride);
        // Panels outside, rows inside: one K × nb panel stays in L1 for all rows.
        self.counted(mine.len(), &[], |e, p, _| {
            let p = e.b.ins().iadd_imm_s(p, mine.start as i64);
            let pbytes = e.b.ins().imul_imm_s(p, (k * nb * 4) as i64);
            let wp = e.b.ins().iadd(wbase, pbytes);
            let cbytes = e.b.ins().imul_imm_s(p, (nb * 4) as i64);
            let op = e.b.ins().iadd(ob, cbytes);
            e.counted(blocks, &[], |e, blk, _| {
                let r0 = e.b.ins().imul_imm_s(blk, rb as i64);
                e.micro_kernel(rb, nv, k, nb, r0, (xb, xo, xs), wp, (op, oo, os));
                vec![]
            });
            for i in blocks * rb..rows {
                let r0 = e.b.ins().iconst(types::I64, i as i64);
                e.micro_kernel(1, nv, k, nb, r0, (xb, xo, xs), wp, (op, oo, os));
            }
            vec![]
        });
    }

    /// Elements from each element of sequence or emit view `v` to the same
    /// element at the next run of the body (0 for other views): what the kernels
    /// prefetch (sequences to read, emits to write), since a step's rows of a
    /// `[B, T, F]` sequence lie a whole sequence apart and the hardware does not
    /// see the pattern.
    fn next_run(&self, v: &View) -> isize {
        match v.time {
            Some((_, stride)) if matches!(v.slot, Slot::Seq(_) | Slot::Emit(_)) => {
                let d = (self.plan.body.steps.max(1) * stride) as isize;
                if self.plan.reverse {
                    -d
                } else {
                    d
                }
            }
            _ => 0,
        }
    }

    /// A call of `isa`'s product kernel (`rnnc-kernels`) through its address, for
    /// this thread's panels: each thread streams the same panels at every step,
    /// so its slice of the weights stays in its own core's cache.
    fn kernel_matmul(
        &mut self,
        isa: Isa,
        x: &View,
        panels: usize,
        (k, nb, mine): (usize, usize, Range<usize>),
        (out, init, stream): (&View, &Option<View>, usize),
        t: Value,
    ) {
        if mine.is_empty() || x.rows == 0 {
            return;
        }
        let kernel = isa
            .kernel()
            .expect("plans name only kernels this CPU supports");
        let ptr = self.ptr;
        let callee = kernel as *const () as usize;
        let (xb, xo) = self.addr(x, t);
        let (ob, oo) = self.addr(out, t);
        let xp = self.b.ins().iadd_imm_s(xb, xo);
        let op = self
            .b
            .ins()
            .iadd_imm_s(ob, oo + (mine.start * nb * 4) as i64);
        let wp = self.bases[&Slot::Const(panels)];
        let wp = self
            .b
            .ins()
            .iadd_imm_s(wp, (mine.start * k * nb * 4) as i64);
        let c = |e: &mut Self, v: usize| e.b.ins().iconst(ptr, v as i64);
        // The accumulators' start from this thread's first column on.
        let (ip, ldi, cols) = match init {
            Some(v) => {
                let (ib, io) = self.addr(v, t);
                let first = mine.start * nb;
                let ip = self.b.ins().iadd_imm_s(ib, io + (first * 4) as i64);
                let ldi = if v.rows == 1 { 0 } else { v.row_stride };
                (ip, ldi, v.cols.saturating_sub(first))
            }
            None => (c(self, 0), 0, 0),
        };
        // A sequence's rows at the next run: prefetched by the kernel.
        let next = match init {
            Some(v @ View { time: Some(_), .. }) => self.next_run(v),
            _ => 0,
        };
        let args = [
            c(self, x.rows),
            c(self, k),
            xp,
            c(self, x.row_stride),
            wp,
            c(self, mine.len()),
            op,
            c(self, out.row_stride),
            ip,
            c(self, ldi),
            c(self, cols),
            self.b.ins().iconst(ptr, next as i64),
            c(self, stream),
        ];
        self.call_address(callee, &args);
    }

    /// A call to [`crate::gemm::rnnc_sgemm`] through its address.
    fn gemm(&mut self, x: &View, b: usize, k: usize, m: usize, out: &View, t: Value) {
        let cols = self.part.gemm_columns(m);
        if cols.is_empty() {
            return;
        }
        let ptr = self.ptr;
        let callee = crate::gemm::rnnc_sgemm as *const () as usize;
        let (xb, xo) = self.addr(x, t);
        let (ob, oo) = self.addr(out, t);
        let xp = self.b.ins().iadd_imm_s(xb, xo);
        let op = self.b.ins().iadd_imm_s(ob, oo + (cols.start * 4) as i64);
        let bp = self.bases[&Slot::Const(b)];
        let bp = self.b.ins().iadd_imm_s(bp, (cols.start * 4) as i64);
        let c = |e: &mut Self, v: usize| e.b.ins().iconst(ptr, v as i64);
        let args = [
            c(self, x.rows),
            c(self, k),
            c(self, cols.len()),
            xp,
            c(self, x.row_stride),
            bp,
            c(self, m),
            op,
            c(self, out.row_stride),
        ];
        self.call_address(callee, &args);
    }

    /// `rows` rows from `r0` times one panel: rows × nv accumulators through K.
    #[allow(clippy::too_many_arguments)]
    fn micro_kernel(
        &mut self,
        rows: usize,
        nv: usize,
        k: usize,
        nb: usize,
        r0: Value,
        (xb, xo, xs): (Value, i64, usize),
        wp: Value,
        (ob, oo, os): (Value, i64, usize),
    ) {
        let mut init = vec![wp];
        for i in 0..rows {
            let r = self.b.ins().iadd_imm_s(r0, i as i64);
            init.push(self.row_ptr(xb, xo, xs, r));
        }
        let zero = math::constant(self.b, F4, 0.0);
        init.extend(std::iter::repeat_n(zero, rows * nv));
        // The K loop, unrolled by 2 (then the K mod 2 left over), carries the
        // weight pointer, the row pointers and the accumulators. Unrolling by 4
        // measured slower: Cranelift then spills accumulators.
        let un = 2;
        let unrolled = self.counted(k / un, &init, |e, _, c| e.k_steps(rows, nv, nb, un, c));
        let done = self.counted(k % un, &unrolled, |e, _, c| e.k_steps(rows, nv, nb, 1, c));
        let acc = &done[1 + rows..];
        for i in 0..rows {
            let r = self.b.ins().iadd_imm_s(r0, i as i64);
            let p = self.row_ptr(ob, oo, os, r);
            for v in 0..nv {
                self.b
                    .ins()
                    .store(flags(), acc[i * nv + v], p, (v * 16) as i32);
            }
        }
    }

    /// `u` consecutive k of the micro-kernel; `c` is (weight pointer, row
    /// pointers, accumulators), returned advanced.
    fn k_steps(&mut self, rows: usize, nv: usize, nb: usize, u: usize, c: &[Value]) -> Vec<Value> {
        let (wp, xp) = (c[0], &c[1..1 + rows]);
        let mut acc = c[1 + rows..].to_vec();
        for kk in 0..u {
            let at = |v: usize| ((kk * nb + v * 4) * 4) as i32;
            // One row: each weight vector is read once, so Cranelift folds the load
            // into the FMA. Several rows share each weight vector from a register.
            let shared: Vec<Value> = if rows > 1 {
                (0..nv)
                    .map(|v| self.b.ins().load(F4, flags(), wp, at(v)))
                    .collect()
            } else {
                Vec::new()
            };
            for (i, &xpi) in xp.iter().enumerate() {
                let s = self.b.ins().load(types::F32, flags(), xpi, (kk * 4) as i32);
                let s = self.b.ins().splat(F4, s);
                for v in 0..nv {
                    let w = match shared.get(v) {
                        Some(w) => *w,
                        None => self.b.ins().load(F4, flags(), wp, at(v)),
                    };
                    acc[i * nv + v] = self.b.ins().fma(w, s, acc[i * nv + v]);
                }
            }
        }
        let mut next = vec![self.b.ins().iadd_imm_s(wp, (u * nb * 4) as i64)];
        for &xpi in xp {
            next.push(self.b.ins().iadd_imm_s(xpi, (u * 4) as i64));
        }
        next.extend(acc);
        next
    }

    fn elementwise(&mut self, e: &Elementwise, t: Value) {
        let e = e.flattened();
        if let Some(prog) = kernel_program(self.plan.isa, &e, |v| self.next_run(v)) {
            return self.kernel_elementwise(&e, prog, t);
        }
        let outputs: Vec<View> = e.outputs.iter().map(|(_, v)| *v).collect();
        let ins = self.addrs(&e.inputs, t);
        let outs = self.addrs(&outputs, t);
        self.elementwise_at(&e, &ins, &outs);
    }

    /// A call of the ISA's elementwise kernel on `prog` (the code of `e`,
    /// flattened) over this thread's part, with a table of the views' start
    /// pointers built on the stack.
    fn kernel_elementwise(&mut self, e: &Elementwise, prog: ElementwiseProgram, t: Value) {
        let (rows, cols) = self.part.elementwise(e.rows, e.cols);
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        let kernel = self
            .plan
            .isa
            .elementwise()
            .expect("plans name only kernels this CPU supports");
        let views: Vec<View> = e
            .inputs
            .iter()
            .copied()
            .chain(e.outputs.iter().map(|(_, v)| *v))
            .collect();
        let bytes = u32::try_from(views.len() * 8).expect("a small table");
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            bytes,
            3,
        ));
        for (i, v) in views.iter().enumerate() {
            let (base, off) = self.addr(v, t);
            let p = self.b.ins().iadd_imm_s(base, off);
            self.b.ins().stack_store(self.ptr, p, slot, (i * 8) as i32);
        }
        let prog = Box::new(prog);
        let prog_addr = &*prog as *const ElementwiseProgram as usize;
        self.programs.push(prog);
        let ptr = self.ptr;
        let callee = kernel as *const () as usize;
        let c = |em: &mut Self, v: usize| em.b.ins().iconst(ptr, v as i64);
        let args = [
            c(self, prog_addr),
            self.b.ins().stack_addr(ptr, slot, 0),
            c(self, rows.start),
            c(self, rows.end),
            c(self, cols.start),
            c(self, cols.end),
        ];
        self.call_address(callee, &args);
    }

    /// `steps` copies of one time step each, step `i` of `src` to step
    /// `steps − 1 − i` of `dst` (a `flip` of the time axis).
    fn step_copy(
        &mut self,
        src: &View,
        dst: &View,
        steps: usize,
        (src_step, dst_step): (isize, isize),
        t: Value,
    ) {
        let e = crate::plan::copy(*src, *dst);
        let Instr::Elementwise(e) = e else {
            unreachable!("a copy is elementwise")
        };
        let (sb, so) = self.addr(src, t);
        let (db, d_off) = self.addr(dst, t);
        self.counted(steps, &[], |em, i, _| {
            let s = em.b.ins().imul_imm_s(i, src_step as i64 * 4);
            let s = em.b.ins().iadd(sb, s);
            let d = em.b.ins().imul_imm_s(i, dst_step as i64 * 4);
            let d = em.b.ins().iadd(db, d);
            em.elementwise_at(&e, &[(s, so, *src)], &[(d, d_off, *dst)]);
            vec![]
        });
    }

    /// Embedding rows by token id: the id is checked against the table (an id out
    /// of range reads row 0 and is masked to zeros, so nothing outside the table is
    /// ever read), then the row is copied, 4 lanes at a time and a scalar tail.
    fn gather(&mut self, table: usize, vocab: usize, ids: &View, out: &View, t: Value) {
        let mine = self.part.rows(out.rows);
        if mine.is_empty() {
            return;
        }
        let tb = self.bases[&Slot::Const(table)];
        let (ib, io) = self.addr(ids, t);
        let (ob, oo) = self.addr(out, t);
        let d = out.cols;
        let nvec = d / 4;
        self.counted(mine.len(), &[], |em, r, _| {
            let r = em.b.ins().iadd_imm_s(r, mine.start as i64);
            let ip = em.row_ptr(ib, io, ids.row_stride, r);
            let id = em.b.ins().load(types::I64, flags(), ip, 0);
            let ok =
                em.b.ins()
                    .icmp_imm_s(IntCC::UnsignedLessThan, id, vocab as i64);
            let zero = em.b.ins().iconst(types::I64, 0);
            let row = em.b.ins().select(ok, id, zero);
            let bytes = em.b.ins().imul_imm_s(row, (d * 4) as i64);
            let src = em.b.ins().iadd(tb, bytes);
            let dst = em.row_ptr(ob, oo, out.row_stride, r);
            // All ones where the id is valid, else zero.
            let m = em.b.ins().uextend(types::I32, ok);
            let m = em.b.ins().ineg(m);
            let m4 = em.b.ins().splat(types::I32X4, m);
            em.counted(nvec, &[], |em, c, _| {
                let off = em.b.ins().imul_imm_s(c, 16);
                let s = em.b.ins().iadd(src, off);
                let v = em.b.ins().load(types::I32X4, flags(), s, 0);
                let v = em.b.ins().band(v, m4);
                let o = em.b.ins().iadd(dst, off);
                em.b.ins().store(flags(), v, o, 0);
                vec![]
            });
            for c in nvec * 4..d {
                let v = em.b.ins().load(types::I32, flags(), src, (c * 4) as i32);
                let v = em.b.ins().band(v, m);
                em.b.ins().store(flags(), v, dst, (c * 4) as i32);
            }
            vec![]
        });
    }

    /// This thread's share of the batch entries of a product of two run-time
    /// values: each row of `out_s` zeroed, then `a_s[i, kk]` times row kk of `b_s`
    /// added into it, 4 columns at a time and a scalar tail.
    fn batch_matmul(
        &mut self,
        (a, b, out): (&View, &View, &View),
        (batch, m, k, n): (usize, usize, usize, usize),
        (sa, sb, so): (usize, usize, usize),
        t: Value,
    ) {
        let mine = self.part.rows(batch);
        if mine.is_empty() {
            return;
        }
        let (ab, ao) = self.addr(a, t);
        let (bb, bo) = self.addr(b, t);
        let (ob, oo) = self.addr(out, t);
        let nvec = n / 4;
        self.counted(mine.len(), &[], |em, s, _| {
            let s = em.b.ins().iadd_imm_s(s, mine.start as i64);
            let a_s = em.row_ptr(ab, ao, sa, s);
            let b_s = em.row_ptr(bb, bo, sb, s);
            let o_s = em.row_ptr(ob, oo, so, s);
            em.counted(m, &[], |em, i, _| {
                let a_i = em.row_ptr(a_s, 0, k, i);
                let o_i = em.row_ptr(o_s, 0, n, i);
                let z4 = math::constant(em.b, F4, 0.0);
                em.counted(nvec, &[], |em, c, _| {
                    let off = em.b.ins().imul_imm_s(c, 16);
                    let o = em.b.ins().iadd(o_i, off);
                    em.b.ins().store(flags(), z4, o, 0);
                    vec![]
                });
                let z = em.b.ins().f32const(0.0);
                for c in nvec * 4..n {
                    em.b.ins().store(flags(), z, o_i, (c * 4) as i32);
                }
                em.counted(k, &[], |em, kk, _| {
                    let ap = em.row_ptr(a_i, 0, 1, kk);
                    let av = em.b.ins().load(types::F32, flags(), ap, 0);
                    let av4 = em.b.ins().splat(F4, av);
                    let b_k = em.row_ptr(b_s, 0, n, kk);
                    em.counted(nvec, &[], |em, c, _| {
                        let off = em.b.ins().imul_imm_s(c, 16);
                        let bp = em.b.ins().iadd(b_k, off);
                        let op = em.b.ins().iadd(o_i, off);
                        let bv = em.b.ins().load(F4, flags(), bp, 0);
                        let ov = em.b.ins().load(F4, flags(), op, 0);
                        let p = em.b.ins().fmul(av4, bv);
                        let ov = em.b.ins().fadd(ov, p);
                        em.b.ins().store(flags(), ov, op, 0);
                        vec![]
                    });
                    for c in nvec * 4..n {
                        let at = (c * 4) as i32;
                        let bv = em.b.ins().load(types::F32, flags(), b_k, at);
                        let ov = em.b.ins().load(types::F32, flags(), o_i, at);
                        let p = em.b.ins().fmul(av, bv);
                        let ov = em.b.ins().fadd(ov, p);
                        em.b.ins().store(flags(), ov, o_i, at);
                    }
                    vec![]
                });
                vec![]
            });
            vec![]
        });
    }

    /// Row r of `out`: 1.0 for column `t < lengths[r]`, else 0.0 (this thread's rows).
    fn sequence_mask(&mut self, lengths: usize, out: &View, t: Value) {
        let mine = self.part.rows(out.rows);
        if mine.is_empty() {
            return;
        }
        let lb = self.bases[&Slot::Seq(lengths)];
        let (ob, oo) = self.addr(out, t);
        self.counted(mine.len(), &[], |em, r, _| {
            let r = em.b.ins().iadd_imm_s(r, mine.start as i64);
            let at = em.b.ins().imul_imm_s(r, 8);
            let lp = em.b.ins().iadd(lb, at);
            let len = em.b.ins().load(types::I64, flags(), lp, 0);
            let dst = em.row_ptr(ob, oo, out.row_stride, r);
            let one = em.b.ins().f32const(1.0);
            let zero = em.b.ins().f32const(0.0);
            em.counted(out.cols, &[], |em, c, _| {
                let live = em.b.ins().icmp(IntCC::SignedLessThan, c, len);
                let v = em.b.ins().select(live, one, zero);
                let off = em.b.ins().imul_imm_s(c, 4);
                let o = em.b.ins().iadd(dst, off);
                em.b.ins().store(flags(), v, o, 0);
                vec![]
            });
            vec![]
        });
    }

    /// A call of the kernels' one-column product ([`rnnc_kernels::DotKernel`])
    /// for this thread's rows of `x` against constant `w`.
    fn row_dot(&mut self, x: &View, w: usize, out: &View, t: Value) {
        let mine = self.part.rows(x.rows);
        if mine.is_empty() {
            return;
        }
        let kernel = (self.plan.isa.dot()).expect("plans name only kernels this CPU supports");
        let ptr = self.ptr;
        let callee = kernel as *const () as usize;
        let (xb, xo) = self.addr(x, t);
        let (ob, oo) = self.addr(out, t);
        let xp = (self.b.ins()).iadd_imm_s(xb, xo + (mine.start * x.row_stride * 4) as i64);
        let op = (self.b.ins()).iadd_imm_s(ob, oo + (mine.start * out.row_stride * 4) as i64);
        let wp = self.bases[&Slot::Const(w)];
        let c = |e: &mut Self, v: usize| e.b.ins().iconst(ptr, v as i64);
        let args = [
            c(self, mine.len()),
            c(self, x.cols),
            xp,
            c(self, x.row_stride),
            wp,
            op,
            c(self, out.row_stride),
        ];
        self.call_address(callee, &args);
    }

    /// `softmax`/`log_softmax` of each row: its maximum, the sum of `exp(x − max)`,
    /// then `exp(x − max) / sum` or `x − max − log(sum)` (f32x4, then a scalar tail).
    fn row_softmax(&mut self, x: &View, out: &View, log: bool, t: Value) {
        let cols = x.cols;
        self.each_row(x, out, t, |em, xp, op| {
            let m = em.fold_row(xp, cols, Fold::Max, |_, v, _| v);
            let m4 = em.b.ins().splat(F4, m);
            let s = em.fold_row(xp, cols, Fold::Add, |em, v, ty| {
                let m = if ty == F4 { m4 } else { m };
                let d = em.b.ins().fsub(v, m);
                math::exp(em.b, ty, d)
            });
            // x − max − log(sum) for log_softmax, exp(x − max) / sum for softmax.
            let k = if log {
                math::log(em.b, types::F32, s)
            } else {
                s
            };
            let k4 = em.b.ins().splat(F4, k);
            em.map_row(xp, op, cols, |em, v, ty| {
                let (m, k) = if ty == F4 { (m4, k4) } else { (m, k) };
                let d = em.b.ins().fsub(v, m);
                if log {
                    em.b.ins().fsub(d, k)
                } else {
                    let e = math::exp(em.b, ty, d);
                    em.b.ins().fdiv(e, k)
                }
            });
        });
    }

    /// `(x − mean) / sqrt(var + eps)` of each row of this thread's share, the
    /// variance over the row, as the interpreter computes it (mean first, then the
    /// squared distances from it).
    fn row_layer_norm(&mut self, x: &View, out: &View, eps: f32, t: Value) {
        let cols = x.cols;
        self.each_row(x, out, t, |em, xp, op| {
            let n = em.b.ins().f32const(cols as f32);
            let sum = em.fold_row(xp, cols, Fold::Add, |_, v, _| v);
            let mean = em.b.ins().fdiv(sum, n);
            let mean4 = em.b.ins().splat(F4, mean);
            let sq = em.fold_row(xp, cols, Fold::Add, |em, v, ty| {
                let m = if ty == F4 { mean4 } else { mean };
                let d = em.b.ins().fsub(v, m);
                em.b.ins().fmul(d, d)
            });
            let var = em.b.ins().fdiv(sq, n);
            let e = em.b.ins().f32const(eps);
            let ve = em.b.ins().fadd(var, e);
            let root = em.b.ins().sqrt(ve);
            let one = em.b.ins().f32const(1.0);
            let inv = em.b.ins().fdiv(one, root);
            let inv4 = em.b.ins().splat(F4, inv);
            em.map_row(xp, op, cols, |em, v, ty| {
                let (m, k) = if ty == F4 { (mean4, inv4) } else { (mean, inv) };
                let d = em.b.ins().fsub(v, m);
                em.b.ins().fmul(d, k)
            });
        });
    }

    /// `body(row of x, row of out)` for each row of this thread's share of `x`.
    fn each_row(
        &mut self,
        x: &View,
        out: &View,
        t: Value,
        mut body: impl FnMut(&mut Self, Value, Value),
    ) {
        let mine = self.part.rows(x.rows);
        if mine.is_empty() {
            return;
        }
        let (xb, xo) = self.addr(x, t);
        let (ob, oo) = self.addr(out, t);
        self.counted(mine.len(), &[], |em, r, _| {
            let r = em.b.ins().iadd_imm_s(r, mine.start as i64);
            let xp = em.row_ptr(xb, xo, x.row_stride, r);
            let op = em.row_ptr(ob, oo, out.row_stride, r);
            body(em, xp, op);
            vec![]
        });
    }

    /// `out[c] = f(x[c])` along one row of `cols` elements: f32x4, then a scalar
    /// tail (`f` gets the type it works at).
    fn map_row(
        &mut self,
        xp: Value,
        op: Value,
        cols: usize,
        f: impl Fn(&mut Self, Value, Type) -> Value,
    ) {
        self.counted(cols / 4, &[], |em, c, _| {
            let bytes = em.b.ins().imul_imm_s(c, 16);
            let a = em.b.ins().iadd(xp, bytes);
            let v = em.b.ins().load(F4, flags(), a, 0);
            let y = f(em, v, F4);
            let o = em.b.ins().iadd(op, bytes);
            em.b.ins().store(flags(), y, o, 0);
            vec![]
        });
        for c in cols / 4 * 4..cols {
            let v = self.b.ins().load(types::F32, flags(), xp, (c * 4) as i32);
            let y = f(self, v, types::F32);
            self.b.ins().store(flags(), y, op, (c * 4) as i32);
        }
    }

    /// Folds the `cols` elements of the row at `xp`: `fold` over `f(x)` across f32x4
    /// vectors, then across their lanes, then over the scalar tail.
    fn fold_row(
        &mut self,
        xp: Value,
        cols: usize,
        fold: Fold,
        f: impl Fn(&mut Self, Value, Type) -> Value,
    ) -> Value {
        let combine = |em: &mut Self, a: Value, b: Value| match fold {
            Fold::Max => em.b.ins().fmax(a, b),
            Fold::Add => em.b.ins().fadd(a, b),
        };
        let start = match fold {
            Fold::Max => f32::NEG_INFINITY,
            Fold::Add => 0.0,
        };
        let nvec = cols / 4;
        let init = math::constant(self.b, F4, start);
        let acc = self.counted(nvec, &[init], |em, c, acc| {
            let bytes = em.b.ins().imul_imm_s(c, 16);
            let a = em.b.ins().iadd(xp, bytes);
            let v = em.b.ins().load(F4, flags(), a, 0);
            let y = f(em, v, F4);
            vec![combine(em, acc[0], y)]
        })[0];
        let mut r = self.b.ins().extractlane(acc, 0);
        for lane in 1..4 {
            let l = self.b.ins().extractlane(acc, lane);
            r = combine(self, r, l);
        }
        for c in nvec * 4..cols {
            let v = self.b.ins().load(types::F32, flags(), xp, (c * 4) as i32);
            let y = f(self, v, types::F32);
            r = combine(self, r, y);
        }
        r
    }

    /// The loops of elementwise `e` (flattened), with each input's and output's
    /// (base pointer, byte offset, view) given.
    fn elementwise_at(
        &mut self,
        e: &Elementwise,
        ins: &[(Value, i64, View)],
        outs: &[(Value, i64, View)],
    ) {
        let cols = e.cols;
        let (my_rows, my_cols) = self.part.elementwise(e.rows, e.cols);
        if my_rows.is_empty() || my_cols.is_empty() {
            return;
        }
        // This thread's columns: whole vectors from `c0` (a multiple of 4), then
        // the scalar tail if it is the last part.
        let c0 = my_cols.start;
        let nvec = my_cols.len() / 4;
        self.counted(my_rows.len(), &[], |em, r, _| {
            let r = em.b.ins().iadd_imm_s(r, my_rows.start as i64);
            // Per input: its row pointer, or its (scalar, splat) value when one
            // element stands for the whole row.
            let mut ptrs = Vec::new();
            for (b, o, v) in ins {
                let stride = if v.rows == 1 { 0 } else { v.row_stride };
                let p = em.row_ptr(*b, *o, stride, r);
                if v.cols == 1 && (cols > 1 || v.rows == 1) {
                    let s = em.b.ins().load(types::F32, flags(), p, 0);
                    let s4 = em.b.ins().splat(F4, s);
                    ptrs.push(Lane::Broadcast(s, s4));
                } else {
                    ptrs.push(Lane::Row(p));
                }
            }
            let optrs: Vec<Value> = outs
                .iter()
                .map(|(b, o, v)| em.row_ptr(*b, *o, v.row_stride, r))
                .collect();
            em.counted(nvec, &[], |em, c, _| {
                let bytes = em.b.ins().imul_imm_s(c, 16);
                let bytes = em.b.ins().iadd_imm_s(bytes, (c0 * 4) as i64);
                let vals: Vec<Value> = ptrs
                    .iter()
                    .map(|l| match l {
                        Lane::Broadcast(_, s4) => *s4,
                        Lane::Row(p) => {
                            let a = em.b.ins().iadd(*p, bytes);
                            em.b.ins().load(F4, flags(), a, 0)
                        }
                    })
                    .collect();
                let res = em.eval(&e.code, &vals, F4);
                for ((at, _), p) in e.outputs.iter().zip(&optrs) {
                    let a = em.b.ins().iadd(*p, bytes);
                    em.b.ins().store(flags(), res[*at], a, 0);
                }
                vec![]
            });
            for c in c0 + nvec * 4..my_cols.end {
                let vals: Vec<Value> = ptrs
                    .iter()
                    .map(|l| match l {
                        Lane::Broadcast(s, _) => *s,
                        Lane::Row(p) => em.b.ins().load(types::F32, flags(), *p, (c * 4) as i32),
                    })
                    .collect();
                let res = em.eval(&e.code, &vals, types::F32);
                for ((at, _), p) in e.outputs.iter().zip(&optrs) {
                    em.b.ins().store(flags(), res[*at], *p, (c * 4) as i32);
                }
            }
            vec![]
        });
    }

    fn eval(&mut self, code: &[EOp], inputs: &[Value], ty: Type) -> Vec<Value> {
        let mut vals: Vec<Value> = Vec::with_capacity(code.len());
        for op in code {
            let v = match *op {
                EOp::Input(i) => inputs[i],
                EOp::Const(c) => math::constant(self.b, ty, c),
                EOp::Unary(u, a) => {
                    let x = vals[a];
                    match u {
                        UnaryOp::Neg => self.b.ins().fneg(x),
                        UnaryOp::Relu => {
                            let z = math::constant(self.b, ty, 0.0);
                            self.b.ins().fmax(x, z)
                        }
                        UnaryOp::Sigmoid => math::sigmoid(self.b, ty, x),
                        UnaryOp::Tanh => math::tanh(self.b, ty, x),
                        UnaryOp::Exp => math::exp(self.b, ty, x),
                        UnaryOp::Log => math::log(self.b, ty, x),
                        UnaryOp::Step => math::step(self.b, ty, x),
                    }
                }
                EOp::Binary(op, a, c) => {
                    let (x, y) = (vals[a], vals[c]);
                    match op {
                        BinaryOp::Add => self.b.ins().fadd(x, y),
                        BinaryOp::Sub => self.b.ins().fsub(x, y),
                        BinaryOp::Mul => self.b.ins().fmul(x, y),
                        BinaryOp::Div => self.b.ins().fdiv(x, y),
                    }
                }
            };
            vals.push(v);
        }
        vals
    }
}

/// The elementwise loop `e` (flattened) as a program for `isa`'s kernel; None for
/// the portable path and for code that needs more slots than the kernel has.
/// Inputs are read as [`Emitter::elementwise_at`] reads them: one element for the
/// whole row where the view has one column, one row for all where it has one row.
pub(crate) fn kernel_program(
    isa: Isa,
    e: &Elementwise,
    next: impl Fn(&View) -> isize,
) -> Option<ElementwiseProgram> {
    isa.elementwise()?;
    let code: Vec<Code> = e
        .code
        .iter()
        .map(|op| match *op {
            EOp::Input(i) => Code::Input(i),
            EOp::Const(c) => Code::Const(c),
            EOp::Unary(u, a) => Code::Unary(
                match u {
                    UnaryOp::Neg => Unary::Neg,
                    UnaryOp::Relu => Unary::Relu,
                    UnaryOp::Sigmoid => Unary::Sigmoid,
                    UnaryOp::Tanh => Unary::Tanh,
                    UnaryOp::Exp => Unary::Exp,
                    UnaryOp::Log => Unary::Log,
                    UnaryOp::Step => Unary::Step,
                },
                a,
            ),
            EOp::Binary(b, x, y) => Code::Binary(
                match b {
                    BinaryOp::Add => Binary::Add,
                    BinaryOp::Sub => Binary::Sub,
                    BinaryOp::Mul => Binary::Mul,
                    BinaryOp::Div => Binary::Div,
                },
                x,
                y,
            ),
        })
        .collect();
    let inputs: Vec<Operand> = e
        .inputs
        .iter()
        .map(|v| Operand {
            row_stride: if v.rows == 1 { 0 } else { v.row_stride },
            scalar: v.cols == 1 && (e.cols > 1 || v.rows == 1),
            next: next(v),
        })
        .collect();
    let outputs: Vec<(usize, usize)> = e
        .outputs
        .iter()
        .map(|(at, v)| (*at, v.row_stride))
        .collect();
    let outputs_next = e.outputs.iter().map(|(_, v)| next(v)).collect();
    ElementwiseProgram::new(&code, &inputs, &outputs).map(|p| p.with_outputs_next(outputs_next))
}

/// How [`Emitter::fold_row`] combines a row's elements.
#[derive(Clone, Copy)]
enum Fold {
    Max,
    Add,
}

/// How one elementwise input is read along a row.
enum Lane {
    /// One element for the whole row: (scalar, splat).
    Broadcast(Value, Value),
    /// Consecutive elements from this row pointer.
    Row(Value),
}
