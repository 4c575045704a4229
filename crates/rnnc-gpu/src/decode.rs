//! Decode loops on the device: `greedy_decode` and `beam_search` as a loop of
//! `max_len` iterations the host drives, each one decoder step (its body planned
//! like a scan's, one kernel per op) and one kernel that picks the tokens, a thread
//! per example: the argmax of a greedy step, the best `width` continuations of a
//! beam, then the beams' states reordered after their parents.
//!
//! The loop always runs `max_len` steps: a finished sequence is left as it stands
//! (greedy), and once every hypothesis of a beam has finished a step keeps them in
//! place, so the outputs are those of the interpreter, which stops early.

use crate::lower::{Builder, Layout, Unsupported, Val};
use crate::plan::{BeamStep, Body, Hypotheses, Scalar, ScanPlan, Step};
use rnnc_ir::op::Decode;

/// What a greedy step or a beam step reads and updates: per row, the tokens so far
/// (`[rows, max_len]`), their count, summed log-probability and a finished flag.
struct Hyps {
    tokens: Val,
    lengths: Val,
    scores: Val,
    done: Val,
}

impl Builder {
    /// Plans a decode loop on operands `ops` (initial states, then memories);
    /// returns tokens, lengths and scores.
    pub(crate) fn decode(
        &mut self,
        d: &Decode,
        ops: &[Val],
        sched: &mut Vec<Step>,
        prefix: &str,
    ) -> Result<Vec<Val>, Unsupported> {
        let batch = self.dims().batch;
        let width = d.beam.unwrap_or(1);
        let rows = batch * width;
        let (inits, memories) = ops.split_at(d.n_states);
        // A beam's rows are `b * width + k`, each starting as a copy of example b:
        // a new region (None for greedy decoding, which reads its operands as
        // they are).
        let spread = |b: &mut Self, v: &Val, name: &str, sched: &mut Vec<Step>| {
            if width == 1 {
                return None;
            }
            let v = b.contiguous(v.clone(), false, sched, name);
            let index: Vec<f32> = (0..rows).map(|r| (r / width) as f32).collect();
            let index = b.constants_of(&index);
            let mut shape = v.shape.clone();
            shape[0] = rows;
            Some(b.pick(sched, name, &v, &index, shape))
        };
        let mut states = vec![];
        for (i, init) in inits.iter().enumerate() {
            let name = format!("{prefix}init{i}");
            // Its own region: the loop writes the states in place.
            let s = spread(self, init, &name, sched).unwrap_or_else(|| {
                let s = self.fresh(init.shape.clone(), init.ids);
                self.copy(false, sched, &name, "initial state", init, &s);
                s
            });
            states.push(s);
        }
        let memories: Vec<Val> = memories
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let name = format!("{prefix}memory{i}");
                spread(self, m, &name, sched).unwrap_or_else(|| m.clone())
            })
            .collect();
        let fill = |b: &mut Self, sched: &mut Vec<Step>, shape: Vec<usize>, v: f32, what: &str| {
            let name = format!("{prefix}{what}");
            b.constant_map(sched, &name, shape, v)
        };
        let prev = Val {
            ids: true,
            ..fill(self, sched, vec![rows], d.bos as f32, "start")
        };
        // Only the first beam of an example is alive at the start (scores 0, not
        // finished); the others have no score and are finished, so no two beams are
        // alike. Uploaded once as constants, copied in at every run.
        let first = |r: usize| r.is_multiple_of(width);
        let scores0 = self.constants_of(
            &(0..rows)
                .map(|r| if first(r) { 0.0 } else { f32::NEG_INFINITY })
                .collect::<Vec<_>>(),
        );
        let done0 = self.constants_of(
            &(0..rows)
                .map(|r| if first(r) { 0.0 } else { 1.0 })
                .collect::<Vec<_>>(),
        );
        let fresh_hyps = |b: &mut Self, sched: &mut Vec<Step>, tag: &str| -> Hyps {
            let scores = b.fresh(vec![rows], false);
            let done = b.fresh(vec![rows], false);
            b.copy(
                false,
                sched,
                &format!("{prefix}{tag}scores"),
                "starting scores",
                &scores0,
                &scores,
            );
            b.copy(
                false,
                sched,
                &format!("{prefix}{tag}done"),
                "finished at the start",
                &done0,
                &done,
            );
            Hyps {
                tokens: fill(
                    b,
                    sched,
                    vec![rows, d.max_len],
                    d.pad as f32,
                    &format!("{tag}tokens"),
                ),
                lengths: fill(b, sched, vec![rows], 0.0, &format!("{tag}lengths")),
                scores,
                done,
            }
        };
        let hyps = fresh_hyps(self, sched, "");
        // A beam step writes every row of the next hypotheses from the current ones.
        let next = (width > 1).then(|| Hyps {
            tokens: self.fresh(vec![rows, d.max_len], false),
            lengths: self.fresh(vec![rows], false),
            scores: self.fresh(vec![rows], false),
            done: self.fresh(vec![rows], false),
        });
        // One decoder step at `rows` rows: the body's batch axis is the beams'.
        let mut run = vec![];
        let saved = self.set_batch(rows);
        let mut args = vec![prev.clone()];
        args.extend(states.iter().cloned());
        args.extend(memories.iter().cloned());
        let layout = Layout {
            seqs: 1,
            states: d.n_states,
        };
        let vals = self.graph(&d.body, &args, layout, &mut run, prefix);
        self.set_batch(saved);
        let vals = vals?;
        let out = |i: usize| vals[&d.body.outputs[i].1].clone();
        let logits = self.contiguous(out(d.n_states), false, &mut run, &format!("{prefix}logits"));
        let vocab = *logits.shape.last().expect("logits are [B, V]");
        let name = format!("{prefix}pick");
        let regions = |h: &Hyps| Hypotheses {
            tokens: h.tokens.offset,
            lengths: h.lengths.offset,
            scores: h.scores.offset,
            done: h.done.offset,
        };
        let eos = d.eos as f32;
        let max_len = d.max_len;
        let next_states: Vec<Val> = (0..d.n_states).map(out).collect();
        match &next {
            None => {
                let body = Body::Greedy {
                    rows,
                    vocab,
                    max_len,
                    eos,
                    logits: logits.offset,
                    prev: prev.offset,
                    hyps: regions(&hyps),
                };
                self.launch(false, &mut run, &name, "greedy choice".into(), body);
                self.advance(&mut run, &next_states, &states, prefix);
            }
            Some(next) => {
                let parents = self.fresh(vec![rows], false);
                let logp = self.fresh(vec![rows, vocab], false);
                let body = Body::BeamStep(BeamStep {
                    batch,
                    width,
                    vocab,
                    max_len,
                    eos,
                    pad: d.pad as f32,
                    logits: logits.offset,
                    logp: logp.offset,
                    prev: prev.offset,
                    parents: parents.offset,
                    from: regions(&hyps),
                    to: regions(next),
                });
                let about = format!("best {width} continuations of each example's beams");
                self.launch(false, &mut run, &name, about, body);
                // The states after their parents, then the hypotheses back in place.
                let mut reordered = vec![];
                for (i, v) in next_states.iter().enumerate() {
                    let name = format!("{prefix}reorder{i}");
                    let v = self.contiguous(v.clone(), false, &mut run, &name);
                    let shape = v.shape.clone();
                    reordered.push(self.pick(&mut run, &name, &v, &parents, shape));
                }
                self.advance(&mut run, &reordered, &states, prefix);
                for (what, from, to) in [
                    ("tokens", &next.tokens, &hyps.tokens),
                    ("lengths", &next.lengths, &hyps.lengths),
                    ("scores", &next.scores, &hyps.scores),
                    ("done", &next.done, &hyps.done),
                ] {
                    let name = format!("{prefix}keep_{what}");
                    self.copy(false, &mut run, &name, "the chosen hypotheses", from, to);
                }
            }
        }
        self.push_scan_plan(ScanPlan {
            scan: prefix.trim_end_matches('_').to_string(),
            strategy: "per op",
            launches_per_body: run.len(),
            steps_per_body: 1,
            why: Some("a decode loop: its step is one kernel per op, then the choice".into()),
        });
        sched.push(Step::Loop {
            count: d.max_len,
            first: 0,
            stride: 1,
            body: run,
        });
        let shaped = |v: &Val, shape: Vec<usize>, ids: bool| Val {
            offset: v.offset,
            strides: crate::plan::row_major(&shape),
            shape,
            ids,
        };
        let lead = match d.beam {
            Some(w) => vec![batch, w],
            None => vec![batch],
        };
        let with = |extra: &[usize]| [lead.clone(), extra.to_vec()].concat();
        Ok(vec![
            shaped(&hyps.tokens, with(&[d.max_len]), true),
            shaped(&hyps.lengths, lead.clone(), true),
            shaped(&hyps.scores, lead.clone(), false),
        ])
    }

    /// The rows of `src` (`[n, …]`, contiguous) in the order of the row numbers at
    /// `index`, as a new region of `shape`.
    fn pick(
        &mut self,
        sched: &mut Vec<Step>,
        name: &str,
        src: &Val,
        index: &Val,
        shape: Vec<usize>,
    ) -> Val {
        let dim: usize = src.shape[1..].iter().product();
        let out = self.fresh(shape, src.ids);
        let body = Body::Pick {
            rows: out.shape[0],
            dim,
            src: src.offset,
            index: index.offset,
            dst: out.offset,
        };
        self.launch(false, sched, name, "rows in a new order".into(), body);
        out
    }

    /// A region of `shape` set to `v` at the start of every run.
    fn constant_map(
        &mut self,
        sched: &mut Vec<Step>,
        name: &str,
        shape: Vec<usize>,
        v: f32,
    ) -> Val {
        self.map(false, sched, name, &[], shape, vec![Scalar::Const(v)], &[0])
            .expect("a constant fill has no operands to fail on")
            .remove(0)
    }

    /// A region of constants (uploaded once, with the weights).
    fn constants_of(&mut self, values: &[f32]) -> Val {
        let v = self.fresh(vec![values.len()], false);
        for (i, &x) in values.iter().enumerate() {
            self.push_constant(v.offset + i, x);
        }
        v
    }
}
