//! CTC decoding of log-probabilities `[B, T, C]` (the output of a `log_softmax`).
//!
//! A CTC path emits one label or the blank per step; its label sequence is the path
//! with repeats collapsed and blanks dropped (`a a _ a b b` → `a a b`). Greedy
//! decoding takes the most likely label at every step. Prefix beam search keeps the
//! `width` most likely label prefixes, each with the probability of all paths that
//! produce it so far, split into paths ending in a blank and paths ending in its last
//! label (Hannun et al., 2014), so that its scores are the log-probabilities that
//! PyTorch's `ctc_loss` assigns (negated) when the beam holds every prefix.

use ndarray::ArrayView3;
use std::collections::HashMap;

/// One decoded hypothesis: labels and its log-probability.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    pub labels: Vec<usize>,
    pub log_prob: f32,
}

/// Checks the shape and the blank; returns (B, T, C).
fn dims(log_probs: &ArrayView3<f32>, blank: usize) -> Result<(usize, usize, usize), String> {
    let (b, t, c) = log_probs.dim();
    if c == 0 {
        return Err("CTC decoding needs at least one class".into());
    }
    if blank >= c {
        return Err(format!(
            "the blank label {blank} is not one of the {c} classes"
        ));
    }
    Ok((b, t, c))
}

/// The most likely label per step, repeats collapsed, blanks dropped; one sequence
/// per batch row.
pub fn greedy(log_probs: ArrayView3<f32>, blank: usize) -> Result<Vec<Hypothesis>, String> {
    let (b, t, c) = dims(&log_probs, blank)?;
    let mut out = Vec::with_capacity(b);
    for row in 0..b {
        let mut labels = Vec::new();
        let mut score = 0.0f32;
        let mut prev = None;
        for step in 0..t {
            // The first maximum, as argmax in NumPy and PyTorch picks it.
            let (best, p) = (0..c).fold((0, f32::NEG_INFINITY), |(bi, bp), k| {
                let p = log_probs[[row, step, k]];
                if p > bp {
                    (k, p)
                } else {
                    (bi, bp)
                }
            });
            score += p;
            if best != blank && Some(best) != prev {
                labels.push(best);
            }
            prev = Some(best);
        }
        // The score of greedy decoding is that of its single best path.
        out.push(Hypothesis {
            labels,
            log_prob: score,
        });
    }
    Ok(out)
}

fn log_add(a: f32, b: f32) -> f32 {
    if a == f32::NEG_INFINITY {
        return b;
    }
    if b == f32::NEG_INFINITY {
        return a;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// Log-probabilities of a prefix: of its paths ending in a blank, and in its last label.
#[derive(Clone, Copy)]
struct Prob {
    blank: f32,
    label: f32,
}

impl Prob {
    const ZERO: Prob = Prob {
        blank: f32::NEG_INFINITY,
        label: f32::NEG_INFINITY,
    };
    fn total(self) -> f32 {
        log_add(self.blank, self.label)
    }
}

/// Prefix beam search: the `width` best label sequences per batch row, best first,
/// each with its log-probability (the sum over all paths that yield it, as far as
/// the beam kept them).
pub fn prefix_beam(
    log_probs: ArrayView3<f32>,
    blank: usize,
    width: usize,
) -> Result<Vec<Vec<Hypothesis>>, String> {
    if width == 0 {
        return Err("the beam width must be at least 1".into());
    }
    let (b, t, c) = dims(&log_probs, blank)?;
    let mut out = Vec::with_capacity(b);
    for row in 0..b {
        let mut beam: Vec<(Vec<usize>, Prob)> = vec![(
            Vec::new(),
            Prob {
                blank: 0.0,
                label: f32::NEG_INFINITY,
            },
        )];
        for step in 0..t {
            let p = |k: usize| log_probs[[row, step, k]];
            let mut next: HashMap<Vec<usize>, Prob> = HashMap::new();
            for (prefix, prob) in &beam {
                // A blank keeps the prefix; so does repeating its last label.
                let e = next.entry(prefix.clone()).or_insert(Prob::ZERO);
                e.blank = log_add(e.blank, prob.total() + p(blank));
                if let Some(&last) = prefix.last() {
                    e.label = log_add(e.label, prob.label + p(last));
                }
                for k in (0..c).filter(|k| *k != blank) {
                    let mut extended = prefix.clone();
                    extended.push(k);
                    // After a label, the same label extends only across a blank.
                    let from = if prefix.last() == Some(&k) {
                        prob.blank
                    } else {
                        prob.total()
                    };
                    let e = next.entry(extended).or_insert(Prob::ZERO);
                    e.label = log_add(e.label, from + p(k));
                }
            }
            // A prefix no path can produce (a repeat with no step left between) goes.
            let mut ranked: Vec<(Vec<usize>, Prob)> = next
                .into_iter()
                .filter(|(_, p)| p.total() > f32::NEG_INFINITY)
                .collect();
            // Best first; ties broken by the labels, so the result is deterministic.
            ranked.sort_by(|a, b| {
                b.1.total()
                    .total_cmp(&a.1.total())
                    .then_with(|| a.0.cmp(&b.0))
            });
            ranked.truncate(width);
            beam = ranked;
        }
        out.push(
            beam.into_iter()
                .map(|(labels, p)| Hypothesis {
                    labels,
                    log_prob: p.total(),
                })
                .collect(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// Log-probabilities from probabilities, one batch row.
    fn lp(rows: &[&[f32]]) -> Array3<f32> {
        let c = rows[0].len();
        Array3::from_shape_fn((1, rows.len(), c), |(_, t, k)| rows[t][k].ln())
    }

    #[test]
    fn greedy_collapses_repeats_and_drops_blanks() {
        // Steps pick a, a, _, a, b, b (blank = 0, a = 1, b = 2).
        let x = lp(&[
            &[0.1, 0.8, 0.1],
            &[0.2, 0.7, 0.1],
            &[0.6, 0.2, 0.2],
            &[0.1, 0.8, 0.1],
            &[0.1, 0.1, 0.8],
            &[0.2, 0.1, 0.7],
        ]);
        let h = greedy(x.view(), 0).unwrap();
        assert_eq!(h[0].labels, vec![1, 1, 2]);
        let path: f32 = [0.8f32, 0.7, 0.6, 0.8, 0.8, 0.7]
            .iter()
            .map(|p| p.ln())
            .sum();
        assert!((h[0].log_prob - path).abs() < 1e-5);
    }

    #[test]
    fn beam_scores_sum_over_paths() {
        // Two steps, classes {_, a}: "a" comes from a_, _a and aa; "" from __.
        let x = lp(&[&[0.4, 0.6], &[0.3, 0.7]]);
        let h = prefix_beam(x.view(), 0, 4).unwrap();
        let p_a = 0.6 * 0.3 + 0.4 * 0.7 + 0.6 * 0.7;
        assert_eq!(h[0][0].labels, vec![1]);
        assert!((h[0][0].log_prob - (p_a as f32).ln()).abs() < 1e-6);
        assert_eq!(h[0][1].labels, Vec::<usize>::new());
        assert!((h[0][1].log_prob - (0.4f32 * 0.3).ln()).abs() < 1e-6);
    }

    #[test]
    fn beam_finds_what_greedy_misses() {
        // The best single path is blank, blank, but "a" has more paths in total.
        let x = lp(&[&[0.5, 0.5], &[0.5, 0.5]]);
        assert_eq!(greedy(x.view(), 0).unwrap()[0].labels, Vec::<usize>::new());
        assert_eq!(prefix_beam(x.view(), 0, 2).unwrap()[0][0].labels, vec![1]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let x = lp(&[&[0.5, 0.5]]);
        assert!(greedy(x.view(), 2).unwrap_err().contains("blank label 2"));
        assert!(prefix_beam(x.view(), 0, 0)
            .unwrap_err()
            .contains("at least 1"));
    }
}
