//! Generated code of a decode loop's bookkeeping ([`Instr::DecodeStart`],
//! [`Instr::GreedyPick`], [`Instr::BeamPick`]): scalar loops on thread 0, which
//! choose exactly the tokens `rnnc_interp::run_decode` chooses from the same
//! log-probabilities (NaN scores aside).

use super::{flags, Emitter};
use crate::plan::{Hyps, View};
use cranelift_codegen::ir::{condcodes::FloatCC, condcodes::IntCC, types, InstBuilder, Value};

/// Where a row of one of [`Hyps`]' buffers starts.
struct Rows {
    base: Value,
    off: i64,
    stride: usize,
}

/// Offsets (f32 units) of one row's parts in a beam's `spare` row.
const CHOSEN_SCORE: i32 = 0;
const CHOSEN_POS: i32 = 1;
const COPY: usize = 3;

impl Emitter<'_, '_> {
    fn rows_of(&mut self, v: &View, t: Value) -> Rows {
        let (base, off) = self.addr(v, t);
        Rows {
            base,
            off,
            stride: v.row_stride,
        }
    }

    fn row(&mut self, r: &Rows, i: Value) -> Value {
        self.row_ptr(r.base, r.off, r.stride, i)
    }

    /// `x cc c` for a constant `c`.
    fn fcmp_const(&mut self, cc: FloatCC, x: Value, c: f32) -> Value {
        let c = self.b.ins().f32const(c);
        self.b.ins().fcmp(cc, x, c)
    }

    /// `body` where `cond` (an i8 truth value) holds.
    fn when(&mut self, cond: Value, body: impl FnOnce(&mut Self)) {
        let then = self.b.create_block();
        let merge = self.b.create_block();
        self.b.ins().brif(cond, then, &[], merge, &[]);
        self.b.switch_to_block(then);
        body(self);
        self.b.ins().jump(merge, &[]);
        self.b.switch_to_block(merge);
    }

    /// Copies `n` 4-byte units from `src` to `dst`.
    fn copy_units(&mut self, src: Value, dst: Value, n: usize) {
        self.counted(n, &[], |em, i, _| {
            let at = em.b.ins().imul_imm_s(i, 4);
            let s = em.b.ins().iadd(src, at);
            let d = em.b.ins().iadd(dst, at);
            let v = em.b.ins().load(types::I32, flags(), s, 0);
            em.b.ins().store(flags(), v, d, 0);
            vec![]
        });
    }

    /// Stores in `finished` whether every one of `rows` rows has ended.
    fn set_finished(&mut self, done: &Rows, finished: &Rows, rows: usize) {
        let yes = self.b.ins().iconst(types::I8, 1);
        let all = self.counted(rows, &[yes], |em, r, all| {
            let p = em.row(done, r);
            let d = em.b.ins().load(types::F32, flags(), p, 0);
            let ended = em.fcmp_const(FloatCC::NotEqual, d, 0.0);
            vec![em.b.ins().band(all[0], ended)]
        });
        let (one, zero) = (self.b.ins().f32const(1.0), self.b.ins().f32const(0.0));
        let flag = self.b.ins().select(all[0], one, zero);
        let zero_row = self.b.ins().iconst(types::I64, 0);
        let p = self.row(finished, zero_row);
        self.b.ins().store(flags(), flag, p, 0);
    }

    /// Every row feeds `bos`, has no tokens and score 0; of each `width` rows only
    /// the first is live (the others score −∞ and count as ended).
    pub(super) fn decode_start(&mut self, h: &Hyps, (bos, pad, width): (i64, i64, usize)) {
        if self.part.thread != 0 {
            return;
        }
        let t = self.b.ins().iconst(types::I64, 0);
        let [prev, done, tokens, lengths, scores, finished] = h.all().map(|v| self.rows_of(&v, t));
        let max_len = h.tokens.cols / 2;
        self.counted(h.prev.rows, &[], |em, r, _| {
            let first = em.b.ins().urem_imm_u(r, width as i64);
            let first = em.b.ins().icmp_imm_s(IntCC::Equal, first, 0);
            let (zero, ended, minus_inf) = (
                em.b.ins().f32const(0.0),
                em.b.ins().f32const(1.0),
                em.b.ins().f32const(f32::NEG_INFINITY),
            );
            let score = em.b.ins().select(first, zero, minus_inf);
            let flag = em.b.ins().select(first, zero, ended);
            let p = em.row(&scores, r);
            em.b.ins().store(flags(), score, p, 0);
            let p = em.row(&done, r);
            em.b.ins().store(flags(), flag, p, 0);
            let b = em.b.ins().iconst(types::I64, bos);
            let p = em.row(&prev, r);
            em.b.ins().store(flags(), b, p, 0);
            let none = em.b.ins().iconst(types::I64, 0);
            let p = em.row(&lengths, r);
            em.b.ins().store(flags(), none, p, 0);
            let row = em.row(&tokens, r);
            em.counted(max_len, &[], |em, c, _| {
                let at = em.b.ins().imul_imm_s(c, 8);
                let p = em.b.ins().iadd(row, at);
                let v = em.b.ins().iconst(types::I64, pad);
                em.b.ins().store(flags(), v, p, 0);
                vec![]
            });
            vec![]
        });
        let zero = self.b.ins().f32const(0.0);
        let row0 = self.b.ins().iconst(types::I64, 0);
        let p = self.row(&finished, row0);
        self.b.ins().store(flags(), zero, p, 0);
    }

    /// Index and value of the largest of `n` f32 at `row` (the first among equals).
    fn argmax(&mut self, row: Value, n: usize) -> (Value, Value) {
        let first = self.b.ins().load(types::F32, flags(), row, 0);
        let zero = self.b.ins().iconst(types::I64, 0);
        let best = self.counted(n - 1, &[zero, first], |em, i, best| {
            let c = em.b.ins().iadd_imm_s(i, 1);
            let at = em.b.ins().imul_imm_s(c, 4);
            let p = em.b.ins().iadd(row, at);
            let v = em.b.ins().load(types::F32, flags(), p, 0);
            let better = em.b.ins().fcmp(FloatCC::GreaterThan, v, best[1]);
            vec![
                em.b.ins().select(better, c, best[0]),
                em.b.ins().select(better, v, best[1]),
            ]
        });
        (best[0], best[1])
    }

    /// Greedy decoding's step `t`: each live row takes its argmax.
    pub(super) fn greedy_pick(&mut self, logp: &View, h: &Hyps, eos: i64, t: Value) {
        if self.part.thread != 0 {
            return;
        }
        let lp = self.rows_of(logp, t);
        let [prev, done, tokens, lengths, scores, finished] = h.all().map(|v| self.rows_of(&v, t));
        let vocab = logp.cols;
        self.counted(h.prev.rows, &[], |em, r, _| {
            let dp = em.row(&done, r);
            let d = em.b.ins().load(types::F32, flags(), dp, 0);
            let live = em.fcmp_const(FloatCC::Equal, d, 0.0);
            em.when(live, |em| {
                let row = em.row(&lp, r);
                let (tok, best) = em.argmax(row, vocab);
                let at = em.b.ins().imul_imm_s(t, 8);
                let tr = em.row(&tokens, r);
                let p = em.b.ins().iadd(tr, at);
                em.b.ins().store(flags(), tok, p, 0);
                let n = em.b.ins().iadd_imm_s(t, 1);
                let p = em.row(&lengths, r);
                em.b.ins().store(flags(), n, p, 0);
                let p = em.row(&scores, r);
                let s = em.b.ins().load(types::F32, flags(), p, 0);
                let s = em.b.ins().fadd(s, best);
                em.b.ins().store(flags(), s, p, 0);
                let p = em.row(&prev, r);
                em.b.ins().store(flags(), tok, p, 0);
                let end = em.b.ins().icmp_imm_s(IntCC::Equal, tok, eos);
                let (one, zero) = (em.b.ins().f32const(1.0), em.b.ins().f32const(0.0));
                let flag = em.b.ins().select(end, one, zero);
                em.b.ins().store(flags(), flag, dp, 0);
            });
            vec![]
        });
        self.set_finished(&done, &finished, h.prev.rows);
    }

    /// Offers candidate (`c`, `pos`) to the `width` best so far of one example,
    /// kept best first in the spare rows from `slots` on (`filled` of them
    /// taken); returns the new count. Candidates come in list order, so one that
    /// ties a kept one goes after it, as a stable sort puts it.
    fn offer(
        &mut self,
        spare: &Rows,
        slots: Value,
        width: usize,
        (c, pos, filled): (Value, Value, Value),
    ) -> Value {
        let w = width as i64;
        let last = self.b.ins().iadd_imm_s(slots, w - 1);
        let lp = self.row(spare, last);
        let worst = self.b.ins().load(types::F32, flags(), lp, CHOSEN_SCORE * 4);
        let full = self.b.ins().icmp_imm_s(IntCC::Equal, filled, w);
        let beats = self.b.ins().fcmp(FloatCC::GreaterThan, c, worst);
        let not_full = self.b.ins().bxor_imm_s(full, 1);
        let enters = self.b.ins().bor(not_full, beats);
        let join = self.b.create_block();
        self.b.append_block_param(join, types::I64);
        let insert = self.b.create_block();
        self.b
            .ins()
            .brif(enters, insert, &[], join, &[filled.into()]);
        self.b.switch_to_block(insert);
        let no = self.b.ins().iconst(types::I8, 0);
        // Slot by slot: the carried candidate takes the slot where it beats what
        // is there (or the slot is free), and from then on each displaced one
        // moves down a slot.
        self.counted(width, &[c, pos, no], |em, i, car| {
            let r = em.b.ins().iadd(slots, i);
            let p = em.row(spare, r);
            let s = em.b.ins().load(types::F32, flags(), p, CHOSEN_SCORE * 4);
            let q = em.b.ins().load(types::I64, flags(), p, CHOSEN_POS * 4);
            let free = em.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i, filled);
            let better = em.b.ins().fcmp(FloatCC::GreaterThan, car[0], s);
            let take = em.b.ins().bor(free, better);
            let take = em.b.ins().bor(take, car[2]);
            let ns = em.b.ins().select(take, car[0], s);
            let nq = em.b.ins().select(take, car[1], q);
            em.b.ins().store(flags(), ns, p, CHOSEN_SCORE * 4);
            em.b.ins().store(flags(), nq, p, CHOSEN_POS * 4);
            vec![
                em.b.ins().select(take, s, car[0]),
                em.b.ins().select(take, q, car[1]),
                take,
            ]
        });
        let more = self.b.ins().iadd_imm_s(filled, 1);
        let w_ = self.b.ins().iconst(types::I64, w);
        let lt = self.b.ins().icmp(IntCC::SignedLessThan, more, w_);
        let n = self.b.ins().select(lt, more, w_);
        self.b.ins().jump(join, &[n.into()]);
        self.b.switch_to_block(join);
        self.b.block_params(join)[0]
    }

    /// Beam search's step: the best `width` candidates per example, then every
    /// hypothesis and next state rewritten after its parent.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn beam_pick(
        &mut self,
        logp: &View,
        h: &Hyps,
        (eos, pad, width): (i64, i64, usize),
        states: &[View],
        spare_view: &View,
        t: Value,
    ) {
        if self.part.thread != 0 {
            return;
        }
        let lp = self.rows_of(logp, t);
        let [prev, done, tokens, lengths, scores, finished] = h.all().map(|v| self.rows_of(&v, t));
        let spare = self.rows_of(spare_view, t);
        let state_rows: Vec<Rows> = states.iter().map(|v| self.rows_of(v, t)).collect();
        let (vocab, rows, max_len) = (logp.cols, h.prev.rows, h.tokens.cols / 2);
        let w = width as i64;
        // 1. Per example, the best candidates into the spare rows' chosen slots.
        self.counted(rows / width, &[], |em, b, _| {
            let slots = em.b.ins().imul_imm_s(b, w);
            em.counted(width, &[], |em, j, _| {
                let r = em.b.ins().iadd(slots, j);
                let p = em.row(&spare, r);
                let s = em.b.ins().f32const(f32::NEG_INFINITY);
                let q = em.b.ins().iconst(types::I64, -1);
                em.b.ins().store(flags(), s, p, CHOSEN_SCORE * 4);
                em.b.ins().store(flags(), q, p, CHOSEN_POS * 4);
                vec![]
            });
            let none = em.b.ins().iconst(types::I64, 0);
            em.counted(width, &[none], |em, k, filled| {
                let q = em.b.ins().iadd(slots, k);
                let sp = em.row(&scores, q);
                let score = em.b.ins().load(types::F32, flags(), sp, 0);
                let dp = em.row(&done, q);
                let d = em.b.ins().load(types::F32, flags(), dp, 0);
                let ended = em.fcmp_const(FloatCC::NotEqual, d, 0.0);
                let first = em.b.ins().imul_imm_s(k, vocab as i64);
                let join = em.b.create_block();
                em.b.append_block_param(join, types::I64);
                let (as_is, cont) = (em.b.create_block(), em.b.create_block());
                em.b.ins().brif(ended, as_is, &[], cont, &[]);
                // An ended hypothesis stands as it is (unless it never started).
                em.b.switch_to_block(as_is);
                let real = em.fcmp_const(FloatCC::GreaterThan, score, f32::NEG_INFINITY);
                let (offer, skip) = (em.b.create_block(), em.b.create_block());
                em.b.ins().brif(real, offer, &[], skip, &[]);
                em.b.switch_to_block(offer);
                let n = em.offer(&spare, slots, width, (score, first, filled[0]));
                em.b.ins().jump(join, &[n.into()]);
                em.b.switch_to_block(skip);
                em.b.ins().jump(join, &[filled[0].into()]);
                // A live one: each of its continuations.
                em.b.switch_to_block(cont);
                let row = em.row(&lp, q);
                let n = em.counted(vocab, &[filled[0]], |em, v, f| {
                    let at = em.b.ins().imul_imm_s(v, 4);
                    let p = em.b.ins().iadd(row, at);
                    let l = em.b.ins().load(types::F32, flags(), p, 0);
                    let c = em.b.ins().fadd(score, l);
                    let pos = em.b.ins().iadd(first, v);
                    vec![em.offer(&spare, slots, width, (c, pos, f[0]))]
                });
                em.b.ins().jump(join, &[n[0].into()]);
                em.b.switch_to_block(join);
                vec![em.b.block_params(join)[0]]
            });
            vec![]
        });
        // 2. Each row's new hypothesis, after its parent, into its spare row.
        let copy_at = COPY as i32 * 4;
        let (len_at, score_at, done_at) = (
            copy_at + (2 * max_len) as i32 * 4,
            copy_at + (2 * max_len + 2) as i32 * 4,
            copy_at + (2 * max_len + 3) as i32 * 4,
        );
        let states_at = done_at + 4;
        self.counted(rows, &[], |em, r, _| {
            let sp = em.row(&spare, r);
            let pos = em.b.ins().load(types::I64, flags(), sp, CHOSEN_POS * 4);
            let chosen = em.b.ins().load(types::F32, flags(), sp, CHOSEN_SCORE * 4);
            let empty = em.b.ins().icmp_imm_s(IntCC::SignedLessThan, pos, 0);
            let zero = em.b.ins().iconst(types::I64, 0);
            let pos0 = em.b.ins().select(empty, zero, pos);
            let k = em.b.ins().udiv_imm_u(pos0, vocab as i64);
            let v = em.b.ins().urem_imm_u(pos0, vocab as i64);
            let b0 = em.b.ins().udiv_imm_u(r, w);
            let b0 = em.b.ins().imul_imm_s(b0, w);
            let parent = em.b.ins().iadd(b0, k);
            let pt = em.row(&tokens, parent);
            let dst = em.b.ins().iadd_imm_s(sp, copy_at as i64);
            em.copy_units(pt, dst, 2 * max_len);
            // An empty slot (fewer candidates than beams) has no tokens.
            em.when(empty, |em| {
                em.counted(max_len, &[], |em, c, _| {
                    let at = em.b.ins().imul_imm_s(c, 8);
                    let p = em.b.ins().iadd(dst, at);
                    let v = em.b.ins().iconst(types::I64, pad);
                    em.b.ins().store(flags(), v, p, 0);
                    vec![]
                });
            });
            let pl = em.row(&lengths, parent);
            let len = em.b.ins().load(types::I64, flags(), pl, 0);
            let pd = em.row(&done, parent);
            let pdone = em.b.ins().load(types::F32, flags(), pd, 0);
            let was_done = em.fcmp_const(FloatCC::NotEqual, pdone, 0.0);
            let grows = em.b.ins().bor(empty, was_done);
            let grows = em.b.ins().bxor_imm_s(grows, 1);
            // A live parent's continuation: its token appended.
            em.when(grows, |em| {
                let at = em.b.ins().imul_imm_s(len, 8);
                let p = em.b.ins().iadd(dst, at);
                em.b.ins().store(flags(), v, p, 0);
            });
            let longer = em.b.ins().iadd_imm_s(len, 1);
            let new_len = em.b.ins().select(grows, longer, len);
            let new_len = em.b.ins().select(empty, zero, new_len);
            em.b.ins().store(flags(), new_len, sp, len_at);
            em.b.ins().store(flags(), chosen, sp, score_at);
            // A continuation ends on `eos` or at `max_len` tokens; an ended parent's
            // candidate and an empty slot stay ended.
            let is_eos = em.b.ins().icmp_imm_s(IntCC::Equal, v, eos);
            let full = em.b.ins().icmp_imm_s(IntCC::Equal, new_len, max_len as i64);
            let ends = em.b.ins().bor(is_eos, full);
            let yes = em.b.ins().iconst(types::I8, 1);
            let ended = em.b.ins().select(grows, ends, yes);
            let (one, fzero) = (em.b.ins().f32const(1.0), em.b.ins().f32const(0.0));
            let flag = em.b.ins().select(ended, one, fzero);
            em.b.ins().store(flags(), flag, sp, done_at);
            let mut at = states_at as i64;
            for (s, v) in state_rows.iter().zip(states) {
                let src = em.row(s, parent);
                let d = em.b.ins().iadd_imm_s(sp, at);
                em.copy_units(src, d, v.cols);
                at += 4 * v.cols as i64;
            }
            vec![]
        });
        // 3. The spare rows back, and the token each row feeds next.
        self.counted(rows, &[], |em, r, _| {
            let sp = em.row(&spare, r);
            let src = em.b.ins().iadd_imm_s(sp, copy_at as i64);
            let tr = em.row(&tokens, r);
            em.copy_units(src, tr, 2 * max_len);
            let len = em.b.ins().load(types::I64, flags(), sp, len_at);
            let p = em.row(&lengths, r);
            em.b.ins().store(flags(), len, p, 0);
            let s = em.b.ins().load(types::F32, flags(), sp, score_at);
            let p = em.row(&scores, r);
            em.b.ins().store(flags(), s, p, 0);
            let d = em.b.ins().load(types::F32, flags(), sp, done_at);
            let p = em.row(&done, r);
            em.b.ins().store(flags(), d, p, 0);
            let mut at = states_at as i64;
            for (s, v) in state_rows.iter().zip(states) {
                let dst = em.row(s, r);
                let src = em.b.ins().iadd_imm_s(sp, at);
                em.copy_units(src, dst, v.cols);
                at += 4 * v.cols as i64;
            }
            // A live hypothesis feeds its last token; an ended one (whose row the
            // next step computes and nobody reads) a token of the vocabulary.
            let live = em.fcmp_const(FloatCC::Equal, d, 0.0);
            let has = em.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, len, 0);
            let feeds = em.b.ins().band(live, has);
            let last = em.b.ins().iadd_imm_s(len, -1);
            let last = em.b.ins().select(has, last, len);
            let at = em.b.ins().imul_imm_s(last, 8);
            let lp = em.b.ins().iadd(tr, at);
            let tok = em.b.ins().load(types::I64, flags(), lp, 0);
            let e = em.b.ins().iconst(types::I64, eos);
            let next = em.b.ins().select(feeds, tok, e);
            let p = em.row(&prev, r);
            em.b.ins().store(flags(), next, p, 0);
            vec![]
        });
        self.set_finished(&done, &finished, rows);
    }
}
