//! Generation loops: greedy decoding and beam search over a decoder step, with the
//! token each step chose fed back as the next step's input (see `rnnc_ir::op::Decode`).
//! The loops ([`run_decode`]) take the step as a function; the CPU backend's
//! generated selection (`rnnc-backend-cpu`, `codegen/decode.rs`) follows them rule
//! for rule.

use crate::eval::{ArgLayout, Cx};
use crate::kernels::{map_any, softmax};
use crate::RunError;
use crate::Tensor;
use ndarray::{Array1, ArrayD, Axis, IxDyn};
use rnnc_ir::op::Decode;
use std::rc::Rc;

/// One decoder step, `(previous tokens, states, memories) → (next states,
/// logits [rows, V])`, for `rows` = the tokens given (B, or B·width in a beam
/// search, whose memories are repeated to match).
pub(crate) type Step<'a> = dyn FnMut(&[i64], &[Rc<Tensor>], &[Rc<Tensor>]) -> Result<(Vec<Rc<Tensor>>, ArrayD<f32>), RunError>
    + 'a;

impl Cx<'_> {
    /// Runs a decode loop; returns tokens, lengths and scores (see [`Decode`]).
    pub(crate) fn decode(
        &self,
        d: &Decode,
        operands: &[Rc<Tensor>],
    ) -> Result<Vec<Tensor>, RunError> {
        let order = d.body.topo_order().expect("verified graphs are acyclic");
        let layout = ArgLayout {
            seqs: 1,
            states: d.n_states,
        };
        run_decode(d, operands, &mut |prev, states, memory| {
            let mut args = vec![Rc::new(Tensor::I64(Array1::from(prev.to_vec()).into_dyn()))];
            args.extend(states.iter().cloned());
            args.extend(memory.iter().cloned());
            let outs = self.eval_in_order(&d.body, &order, &args, layout, false)?;
            let logits = outs[d.n_states].f32().clone();
            Ok((outs[..d.n_states].to_vec(), logits))
        })
    }
}

/// Runs decode loop `d` on its operands (initial states, then memories) with
/// `step` computing each step; returns tokens, lengths and scores.
pub(crate) fn run_decode(
    d: &Decode,
    operands: &[Rc<Tensor>],
    step: &mut Step<'_>,
) -> Result<Vec<Tensor>, RunError> {
    match d.beam {
        None => greedy(d, operands, step),
        Some(k) => beam(d, k, operands, step),
    }
}

/// A step's log-probabilities over the vocabulary.
fn log_probs(
    step: &mut Step<'_>,
    prev: &[i64],
    states: &[Rc<Tensor>],
    memory: &[Rc<Tensor>],
) -> Result<(Vec<Rc<Tensor>>, ArrayD<f32>), RunError> {
    let (next, logits) = step(prev, states, memory)?;
    Ok((next, softmax(&logits, 1, true)))
}

fn greedy(
    d: &Decode,
    operands: &[Rc<Tensor>],
    step: &mut Step<'_>,
) -> Result<Vec<Tensor>, RunError> {
    let mut states = operands[..d.n_states].to_vec();
    let memory = &operands[d.n_states..];
    let batch = states[0].shape()[0];
    let mut tokens = ArrayD::from_elem(IxDyn(&[batch, d.max_len]), d.pad);
    let mut lengths = ArrayD::zeros(IxDyn(&[batch]));
    let mut scores = ArrayD::<f32>::zeros(IxDyn(&[batch]));
    let mut done = vec![false; batch];
    let mut prev = vec![d.bos; batch];
    for t in 0..d.max_len {
        let (next, logp) = log_probs(step, &prev, &states, memory)?;
        states = next;
        for b in 0..batch {
            if done[b] {
                continue;
            }
            let row = logp.index_axis(Axis(0), b);
            let (tok, lp) = argmax(row.iter().copied());
            tokens[[b, t]] = tok as i64;
            lengths[[b]] = (t + 1) as i64;
            scores[[b]] += lp;
            prev[b] = tok as i64;
            done[b] = tok as i64 == d.eos;
        }
        if done.iter().all(|x| *x) {
            break;
        }
    }
    Ok(vec![
        Tensor::I64(tokens),
        Tensor::I64(lengths),
        Tensor::F32(scores),
    ])
}

/// Beam search: every example keeps `width` hypotheses (rows `b * width + k` of
/// the decoder's batch). Each step scores every continuation of every live
/// hypothesis plus each finished one as it stands, keeps the best `width` (the
/// earlier candidate among equals, so width 1 is greedy decoding), and reorders
/// the states after their parents.
fn beam(
    d: &Decode,
    width: usize,
    operands: &[Rc<Tensor>],
    step: &mut Step<'_>,
) -> Result<Vec<Tensor>, RunError> {
    let batch = operands[0].shape()[0];
    // Row b * width + k starts as a copy of example b.
    let repeat: Vec<usize> = (0..batch * width).map(|r| r / width).collect();
    let mut states: Vec<Rc<Tensor>> = operands[..d.n_states]
        .iter()
        .map(|t| Rc::new(rows(t, &repeat)))
        .collect();
    let memory: Vec<Rc<Tensor>> = operands[d.n_states..]
        .iter()
        .map(|t| Rc::new(rows(t, &repeat)))
        .collect();
    let mut hyps: Vec<Hyp> = (0..batch * width)
        .map(|r| Hyp {
            tokens: Vec::new(),
            // Only the first copy is alive at first, so no two beams are equal.
            score: if r % width == 0 {
                0.0
            } else {
                f32::NEG_INFINITY
            },
            done: r % width != 0,
        })
        .collect();
    let mut prev = vec![d.bos; batch * width];
    for _ in 0..d.max_len {
        if hyps.iter().all(|h| h.done) {
            break;
        }
        let (next, logp) = log_probs(step, &prev, &states, &memory)?;
        let mut parents = Vec::with_capacity(batch * width);
        let mut chosen = Vec::with_capacity(batch * width);
        for b in 0..batch {
            let mut cands: Vec<(f32, usize, Option<usize>)> = Vec::new();
            for k in 0..width {
                let h = &hyps[b * width + k];
                if h.done {
                    if h.score > f32::NEG_INFINITY {
                        cands.push((h.score, k, None));
                    }
                    continue;
                }
                let row = logp.index_axis(Axis(0), b * width + k);
                cands.extend(
                    row.iter()
                        .enumerate()
                        .map(|(v, lp)| (h.score + lp, k, Some(v))),
                );
            }
            best_first(&mut cands, width);
            for j in 0..width {
                match cands.get(j) {
                    Some(&(score, k, v)) => {
                        let parent = &hyps[b * width + k];
                        let mut tokens = parent.tokens.clone();
                        let done = match v {
                            Some(v) => {
                                tokens.push(v as i64);
                                v as i64 == d.eos || tokens.len() == d.max_len
                            }
                            None => true,
                        };
                        parents.push(b * width + k);
                        chosen.push(Hyp {
                            tokens,
                            score,
                            done,
                        });
                    }
                    // Fewer candidates than beams (a vocabulary smaller than the
                    // width): the slot stays empty.
                    None => {
                        parents.push(b * width);
                        chosen.push(Hyp {
                            tokens: Vec::new(),
                            score: f32::NEG_INFINITY,
                            done: true,
                        });
                    }
                }
            }
        }
        states = next.iter().map(|t| Rc::new(rows(t, &parents))).collect();
        for (r, h) in chosen.iter().enumerate() {
            // A finished hypothesis still runs (its row is ignored): feed it a
            // token the vocabulary has.
            prev[r] = match (h.done, h.tokens.last()) {
                (false, Some(t)) => *t,
                _ => d.eos,
            };
        }
        hyps = chosen;
    }
    let mut tokens = ArrayD::from_elem(IxDyn(&[batch, width, d.max_len]), d.pad);
    let mut lengths = ArrayD::zeros(IxDyn(&[batch, width]));
    let mut scores = ArrayD::zeros(IxDyn(&[batch, width]));
    for (r, h) in hyps.iter().enumerate() {
        let (b, k) = (r / width, r % width);
        for (t, tok) in h.tokens.iter().enumerate() {
            tokens[[b, k, t]] = *tok;
        }
        lengths[[b, k]] = h.tokens.len() as i64;
        scores[[b, k]] = h.score;
    }
    Ok(vec![
        Tensor::I64(tokens),
        Tensor::I64(lengths),
        Tensor::F32(scores),
    ])
}

/// One beam-search hypothesis: the tokens so far and their summed log-probability.
struct Hyp {
    tokens: Vec<i64>,
    score: f32,
    done: bool,
}

/// Puts the `k` best candidates first, best first, as a stable sort by score
/// (descending) would order them: among equal scores the earlier candidate wins.
/// A partial selection, since a step has `width · V` candidates per example.
fn best_first<T>(cands: &mut Vec<(f32, usize, T)>, k: usize) {
    let mut indexed: Vec<(usize, f32)> = cands.iter().map(|c| c.0).enumerate().collect();
    let order = |x: &(usize, f32), y: &(usize, f32)| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0));
    if k < indexed.len() {
        indexed.select_nth_unstable_by(k, order);
        indexed.truncate(k);
    }
    indexed.sort_by(order);
    let mut taken: Vec<Option<(f32, usize, T)>> = cands.drain(..).map(Some).collect();
    cands.extend(
        indexed
            .iter()
            .map(|(i, _)| taken[*i].take().expect("each once")),
    );
}

/// The index and value of the largest element; the first among equals.
fn argmax(values: impl Iterator<Item = f32>) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 || i == 0 {
            best = (i, v);
        }
    }
    best
}

/// The rows `index` of a tensor (axis 0), in that order.
fn rows(t: &Tensor, index: &[usize]) -> Tensor {
    map_any!(t, |a| a.select(Axis(0), index))
}
