//! The generation loops: `greedy_decode` and `beam_search` run a decoder cell whose
//! input is the previous token, feeding back what it chose, until each sequence
//! ends with its end token or reaches the maximum length.

use super::body::Frame;
use super::value::{LResult, Tensor, Val};
use super::Lowerer;
use crate::op::{Decode, Op};
use crate::types::{DType, Dim, TensorTy};
use rnnc_syntax::ast::Arg;
use rnnc_syntax::{Diagnostic, Span};

impl Lowerer {
    /// `greedy_decode(cell, init, bos, eos, max_len, memory = (…), pad = 0)` →
    /// `(tokens, lengths, scores)`; `beam_search(…, width = k)` the same per beam.
    pub(crate) fn decode_builtin(
        &mut self,
        name: &'static str,
        args: &[Arg],
        frame: &mut Frame,
        span: Span,
    ) -> LResult<Val> {
        let beam = name == "beam_search";
        let mut params = vec!["cell", "init", "bos", "eos", "max_len", "memory", "pad"];
        if beam {
            params.push("width");
        }
        let a = self.sig(name, args, frame, span, &params, 5)?;
        if beam && a[7].is_none() {
            return Err(Diagnostic::error("`beam_search` is missing its argument `width`")
                .with_label(span, "called here")
                .with_note("beam_search(cell, init, bos, eos, max_len, memory = (…), pad = 0, width = k)")
                .into());
        }
        let (cell_v, cs) = a[0].clone().expect("required");
        let cell = self.cell_module(cell_v, cs, frame)?;
        let (init_v, init_span) = a[1].clone().expect("required");
        let init = self.tensor_tuple(init_v, init_span)?;
        let int = |i: usize, what: &str, min: i64| -> LResult<i64> {
            match &a[i] {
                // Only `pad` may be left out (the others are required): 0.
                None => Ok(0),
                Some((Val::Int(n), _)) if *n >= min => Ok(*n),
                Some((v, s)) => Err(Diagnostic::error(format!(
                    "`{}` of `{name}` must be {what}, found {}",
                    params[i],
                    match v {
                        Val::Int(n) => format!("{n}"),
                        _ => "something else".into(),
                    }
                ))
                .with_label(*s, "here")
                .into()),
            }
        };
        let bos = int(2, "a token id (an int ≥ 0)", 0)?;
        let eos = int(3, "a token id (an int ≥ 0)", 0)?;
        let max_len = int(4, "at least 1", 1)? as usize;
        let pad = int(6, "a token id (an int ≥ 0)", 0)?;
        let width = if beam {
            Some(int(7, "at least 1", 1)? as usize)
        } else {
            None
        };
        let memory = match &a[5] {
            None => Vec::new(),
            Some((v, s)) => self.tensor_tuple(v.clone(), *s)?,
        };
        let memory_types: Vec<TensorTy> = memory.iter().map(|m| self.ty(*m).clone()).collect();
        let token = TensorTy {
            dtype: DType::I64,
            dims: vec![Dim::Batch],
        };
        let body = self.run_cell(&cell, vec![token], memory_types, frame.suffix.clone(), span)?;
        let init = self.fit_init(init, &body.state_types, init_span)?;
        let n_states = body.state_types.len();
        let scores = body
            .graph
            .outputs
            .get(n_states)
            .map(|(_, v)| body.graph.ty(*v).clone());
        let vocab = match scores.as_ref().map(|t| (t.dtype, t.dims.as_slice())) {
            Some((DType::F32, [Dim::Batch, Dim::Fixed(v)])) => *v,
            _ => {
                return Err(Diagnostic::error(format!(
                    "the decoder cell's first emit must score the vocabulary, [V] per example; found {}",
                    scores.map(|t| t.to_string()).unwrap_or_else(|| "no emit".into())
                ))
                .with_label(cs, "this cell")
                .into())
            }
        };
        for (i, id) in [(2, bos), (3, eos)] {
            if id as usize >= vocab {
                let s = a[i].as_ref().map(|(_, s)| *s).unwrap_or(span);
                return Err(Diagnostic::error(format!(
                    "`{}` = {id} is not in the vocabulary of {vocab} tokens the decoder scores",
                    params[i]
                ))
                .with_label(s, "here")
                .into());
            }
        }
        // Each beam extends by a different token, so the first step can fill at most
        // `vocab` beams (as `torch.topk` refuses k above the size).
        if let Some(w) = width.filter(|w| *w > vocab) {
            let s = a[7].as_ref().map(|(_, s)| *s).unwrap_or(span);
            return Err(Diagnostic::error(format!(
                "`width` = {w} is more beams than the {vocab} tokens the decoder scores"
            ))
            .with_label(s, "here")
            .with_note(format!(
                "the first step extends `bos` by {vocab} different tokens at most: use a width of at most {vocab}"
            ))
            .into());
        }
        let decode = Decode {
            n_states,
            n_memory: memory.len(),
            bos,
            eos,
            pad,
            max_len,
            beam: width,
            body: Box::new(body.graph),
        };
        let mut operands: Vec<Tensor> = init;
        operands.extend(memory);
        let outs = self.op_n(Op::Decode(decode), &operands, span)?;
        Ok(Val::Tuple(outs.into_iter().map(Val::Tensor).collect()))
    }
}
