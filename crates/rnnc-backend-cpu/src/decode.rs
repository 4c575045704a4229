//! Decode loops (greedy decoding, beam search) on the CPU: in a whole-model
//! program a loop is one compiled function like a scan's ([`plan_decode`]):
//! `max_len` runs of the decoder step at B rows (B·width for a beam), each
//! followed by its log-softmax and the choice of tokens ([`Instr::GreedyPick`],
//! [`Instr::BeamPick`]), all generated code, choosing the tokens the
//! interpreter's loop (`rnnc_interp::run_decode`) chooses, and stopping where it
//! stops (once every sequence has ended).

use crate::plan::{
    plan_with, unsupported, Buffers, Hyps, Instr, Plan, Products, RowOp, Slot, Unsupported, View,
};
use rnnc_ir::op::Decode;
use rnnc_ir::Scan;
use rnnc_runtime::Weights;

/// Plans decode loop `d` as a function of `max_len` steps over `rows` rows (B,
/// or B·width): `shapes` are its states' and memories' at those rows. Its
/// pointer table: states (initial in, final out), memories, then the results
/// tokens (i64 `[rows, max_len]`), lengths (i64 `[rows]`) and scores (f32
/// `[rows]`) as its three emits, constants and scratch.
pub(crate) fn plan_decode(
    d: &Decode,
    shapes: &[Vec<usize>],
    weights: &Weights,
    products: Products,
) -> Result<Plan, Unsupported> {
    let rows = shapes[0][0];
    let mut operand_shapes = vec![vec![rows, d.max_len]];
    operand_shapes.extend(shapes.iter().cloned());
    let (mut p, io) = plan_with(
        &step_scan(d),
        &operand_shapes,
        None,
        weights,
        products,
        true,
    )?;
    let io = io.expect("planned as a decode step");
    let logits = io.emits[0];
    let vocab = logits.cols;
    // The loop feeds `bos`, then tokens of the vocabulary: each must be a row of
    // every table the step embeds it with (the interpreter's error otherwise).
    if let Some(table) = p.id_rows[0] {
        if d.bos < 0 || d.bos as usize >= table || vocab > table {
            return unsupported(format!(
                "a decoder reading start token {} or tokens of a vocabulary of {vocab} \
                 from an embedding table of {table} rows",
                d.bos
            ));
        }
    }
    let mut bufs = Buffers {
        consts: std::mem::take(&mut p.consts),
        scratch_len: p.scratch_len,
    };
    let logp = bufs.scratch_view(rows, vocab);
    // An i64 per row is two f32 units.
    let units = |slot, cols| View {
        row_stride: cols,
        ..View::contiguous(slot, 0, rows, cols)
    };
    let hyps = Hyps {
        prev: io.token,
        done: bufs.scratch_view(rows, 1),
        tokens: units(Slot::Emit(0), 2 * d.max_len),
        lengths: units(Slot::Emit(1), 2),
        scores: units(Slot::Emit(2), 1),
        finished: bufs.scratch_view(1, 1),
    };
    let body = &mut p.body.instrs;
    body.push(Instr::Rows {
        x: logits,
        out: logp,
        op: RowOp::LogSoftmax,
    });
    body.push(match d.beam {
        None => Instr::GreedyPick {
            logp,
            hyps,
            eos: d.eos,
        },
        Some(width) => {
            let states: Vec<View> = p
                .state_shapes
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    View::contiguous(Slot::NextState(i), 0, rows, s[1..].iter().product())
                })
                .collect();
            // Per row: the chosen candidate (score, i64 position), then a copy of
            // the row's tokens, length, score, end flag and states after its parent.
            let per_row = 3 + 2 * d.max_len + 4 + states.iter().map(|v| v.cols).sum::<usize>();
            Instr::BeamPick {
                logp,
                hyps,
                eos: d.eos,
                pad: d.pad,
                width,
                states,
                spare: bufs.scratch_view(rows, per_row),
            }
        }
    });
    p.prologue = Some(crate::plan::Program {
        steps: 1,
        instrs: vec![Instr::DecodeStart {
            hyps,
            bos: d.bos,
            pad: d.pad,
            width: d.beam.unwrap_or(1),
        }],
    });
    p.stop = Some(hyps.finished);
    p.consts = bufs.consts;
    p.scratch_len = bufs.scratch_len;
    p.n_seqs = 0;
    p.id_rows = Vec::new();
    p.n_emits = 3;
    p.emit_widths = vec![2 * d.max_len, 2, 1];
    Ok(p)
}

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
