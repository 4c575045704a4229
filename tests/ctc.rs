//! CTC decoding against references: prefix beam search scores equal PyTorch's
//! `ctc_loss` (negated) when the beam keeps every prefix, greedy decoding of the
//! speech model equals NumPy's, and beams come out best first
//! (`tests/fixtures/make_ctc.py` made the references).

mod common;

use rnnc_decode::ctc;
use std::collections::HashMap;

fn read3(path: &std::path::Path) -> ndarray::Array3<f32> {
    match rnnc_cli::npy::read(path).unwrap() {
        rnnc_interp::Tensor::F32(a) => a.into_dimensionality().unwrap(),
        _ => panic!("f32 log-probabilities"),
    }
}

#[test]
fn beam_scores_are_pytorchs_ctc_log_likelihoods() {
    let dir = common::root().join("tests/fixtures/ctc");
    let lp = read3(&dir.join("small.npy"));
    let want: Vec<HashMap<String, f64>> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("small_scores.json")).unwrap())
            .unwrap();
    // 2 labels over 4 steps: 31 possible sequences, so a beam of 64 keeps them all.
    let beams = ctc::prefix_beam(lp.view(), 0, 64).unwrap();
    for (row, beam) in beams.iter().enumerate() {
        assert_eq!(
            beam.len(),
            want[row].len(),
            "row {row}: every producible sequence is in the beam"
        );
        for h in beam {
            let key = h
                .labels
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            let torch = want[row][&key];
            assert!(
                (f64::from(h.log_prob) - torch).abs() < 1e-5,
                "row {row} [{key}]: {} vs PyTorch {torch}",
                h.log_prob
            );
        }
        assert!(
            beam.windows(2).all(|w| w[0].log_prob >= w[1].log_prob),
            "best first"
        );
    }
}

#[test]
fn speech_model_decodes() {
    let fx = common::seed0("speech_lstm");
    let lp = read3(&fx.dir.join("output.npy"));
    let want: Vec<Vec<usize>> = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("tests/fixtures/ctc/speech_greedy.json"))
            .unwrap(),
    )
    .unwrap();
    let got: Vec<Vec<usize>> = ctc::greedy(lp.view(), 0)
        .unwrap()
        .into_iter()
        .map(|h| h.labels)
        .collect();
    assert_eq!(got, want);
    for beam in ctc::prefix_beam(lp.view(), 0, 5).unwrap() {
        assert_eq!(beam.len(), 5);
        assert!(beam.windows(2).all(|w| w[0].log_prob >= w[1].log_prob));
    }
}
