//! Decoding a model's per-step outputs into label sequences. For now CTC
//! (connectionist temporal classification), as the speech model's log-probabilities
//! need: greedy decoding and prefix beam search, with PyTorch's convention that
//! the blank is label 0 unless told otherwise.

pub mod ctc;
