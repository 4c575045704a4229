//! `rnnc run --decode ctc-greedy|ctc-beam`: label sequences from the model's
//! log-probabilities, one line per hypothesis.

use crate::args::Decode;
use rnnc::Tensor;
use rnnc_decode::ctc;
use std::fmt::Write;

/// Decodes the output named `output` ([B, T, C] log-probabilities) as text:
/// `sample B: labels…` (greedy) or `sample B, beam K (log p = …): labels…`.
pub fn decode(
    outputs: &[(String, Tensor)],
    how: Decode,
    width: usize,
    blank: usize,
) -> Result<String, String> {
    let Some((_, t)) = outputs.iter().find(|(n, _)| n == "output") else {
        return Err("the model has no output named `output` to decode".into());
    };
    let Tensor::F32(a) = t else {
        return Err("`output` holds integers, not log-probabilities".into());
    };
    let a = a
        .view()
        .into_dimensionality::<ndarray::Ix3>()
        .map_err(|_| {
            format!(
                "CTC needs log-probabilities [B, T, C]; `output` has shape {:?}",
                a.shape()
            )
        })?;
    let labels = |l: &[usize]| l.iter().map(usize::to_string).collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    match how {
        Decode::CtcGreedy => {
            for (b, h) in ctc::greedy(a, blank)?.iter().enumerate() {
                let _ = writeln!(out, "sample {b}: {}", labels(&h.labels));
            }
        }
        Decode::CtcBeam => {
            for (b, beam) in ctc::prefix_beam(a, blank, width)?.iter().enumerate() {
                for (k, h) in beam.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "sample {b}, beam {k} (log p = {:.6}): {}",
                        h.log_prob,
                        labels(&h.labels)
                    );
                }
            }
        }
    }
    Ok(out)
}
