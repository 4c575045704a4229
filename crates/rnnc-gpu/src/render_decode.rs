//! Writing the kernels of a decode loop (`decode.rs`): the greedy choice, a beam
//! step's choice of the best continuations, and the reordering of rows. Their
//! arithmetic follows the interpreter's (`rnnc-interp`'s `decode.rs`): the
//! log-softmax as `x − max − log Σ exp(x − max)`, the first index among equal
//! scores.

use crate::plan::{BeamStep, Hypotheses};
use crate::render::{exp_sum, float, Writer};

/// `dst[r, :] = src[index[r], :]`.
pub(crate) fn pick(
    w: &mut Writer<'_>,
    (rows, dim): (usize, usize),
    src: usize,
    index: usize,
    dst: usize,
    stride: &str,
) {
    let d = w.d;
    w.open(d.for_up("i", "gid", &(rows * dim).to_string(), stride));
    w.line(d.let_int("src_row", &d.to_int(&format!("arena[{index} + i / {dim}]"))));
    w.line(format!(
        "arena[{dst} + i] = arena[{src} + src_row * {dim} + i % {dim}];"
    ));
    w.close();
}

/// Binds `mx`, `sum` and `log_sum` for the `vocab` values at `row + j`.
fn log_softmax_of(w: &mut Writer<'_>, row: &str, vocab: usize) {
    exp_sum(w, vocab, &|j| format!("arena[{row} + {j}]"));
}

/// The greedy choice of every unfinished row at the loop's step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn greedy(
    w: &mut Writer<'_>,
    (rows, vocab, max_len): (usize, usize, usize),
    eos: f32,
    logits: usize,
    prev: usize,
    h: &Hypotheses,
    stride: &str,
) {
    let d = w.d;
    w.line(d.let_int("t", d.clock()));
    w.open(d.for_up("i", "gid", &rows.to_string(), stride));
    w.open(format!("if (arena[{} + i] == 0.0f) {{", h.done));
    w.line(d.let_int("row", &format!("{logits} + i * {vocab}")));
    log_softmax_of(w, "row", vocab);
    w.line(d.var_int("best", "0"));
    w.line(d.var_float("best_lp", "arena[row] - mx - log_sum"));
    w.open(d.for_up("j", "1", &vocab.to_string(), "1"));
    w.line(d.let_float("lp", "arena[row + j] - mx - log_sum"));
    w.open("if (lp > best_lp) {".into());
    w.line("best = j;");
    w.line("best_lp = lp;");
    w.close();
    w.close();
    let tok = d.to_float("best");
    w.line(format!("arena[{} + i * {max_len} + t] = {tok};", h.tokens));
    w.line(format!(
        "arena[{} + i] = {};",
        h.lengths,
        d.to_float("t + 1")
    ));
    w.line(format!(
        "arena[{0} + i] = arena[{0} + i] + best_lp;",
        h.scores
    ));
    w.line(format!("arena[{prev} + i] = {tok};"));
    w.open(format!("if (best == {}) {{", eos as i64));
    w.line(format!("arena[{} + i] = 1.0f;", h.done));
    w.close();
    w.close();
    w.close();
}

/// A beam step, a thread per example: log-probabilities of every live beam's row,
/// then `width` passes, each choosing the best candidate after the one the pass
/// before chose, in the order (score descending, candidate ascending). Candidate
/// `k · vocab + v` continues beam k with token v; a finished beam is candidate
/// `k · vocab` as it stands.
pub(crate) fn beam(w: &mut Writer<'_>, b: &BeamStep, stride: &str) {
    let d = w.d;
    let (wd, v, ml) = (b.width, b.vocab, b.max_len);
    let (from, to) = (&b.from, &b.to);
    let neg_inf = float(f32::NEG_INFINITY, d);
    w.open(d.for_up("i", "gid", &b.batch.to_string(), stride));
    w.open(d.for_up("k", "0", &wd.to_string(), "1"));
    w.line(d.let_int("r", &format!("i * {wd} + k")));
    w.open(format!("if (arena[{} + r] == 0.0f) {{", from.done));
    w.line(d.let_int("row", &format!("{} + r * {v}", b.logits)));
    log_softmax_of(w, "row", v);
    w.open(d.for_up("j", "0", &v.to_string(), "1"));
    w.line(format!(
        "arena[{} + r * {v} + j] = arena[row + j] - mx - log_sum;",
        b.logp
    ));
    w.close();
    w.close();
    w.close();
    w.line(d.var_int("chosen", "0"));
    w.line(d.var_float("last_s", "0.0f"));
    w.line(d.var_int("last_pos", "0"));
    w.open(d.for_up("jj", "0", &wd.to_string(), "1"));
    w.line(d.var_int("found", "0"));
    w.line(d.var_float("bs", "0.0f"));
    w.line(d.var_int("bpos", "0"));
    w.line(d.var_int("bk", "0"));
    w.line(d.var_int("bv", "-1"));
    w.open(d.for_up("k", "0", &wd.to_string(), "1"));
    w.line(d.let_int("r", &format!("i * {wd} + k")));
    w.line(d.let_float("base", &format!("arena[{} + r]", from.scores)));
    let consider = |w: &mut Writer<'_>, s: &str, pos: &str, tok: &str| {
        let after = format!("(chosen == 0 || {s} < last_s || ({s} == last_s && {pos} > last_pos))");
        w.open(format!("if ({after} && (found == 0 || {s} > bs)) {{"));
        w.line("found = 1;");
        w.line(format!("bs = {s};"));
        w.line(format!("bpos = {pos};"));
        w.line("bk = k;");
        w.line(format!("bv = {tok};"));
        w.close();
    };
    w.open(format!("if (arena[{} + r] != 0.0f) {{", from.done));
    w.open(format!("if (base > {neg_inf}) {{"));
    w.line(d.let_int("pos", &format!("k * {v}")));
    consider(w, "base", "pos", "-1");
    w.close();
    w.close();
    w.open("else {".into());
    w.open(d.for_up("j", "0", &v.to_string(), "1"));
    w.line(d.let_float("s", &format!("base + arena[{} + r * {v} + j]", b.logp)));
    w.line(d.let_int("pos", &format!("k * {v} + j")));
    consider(w, "s", "pos", "j");
    w.close();
    w.close();
    w.close();
    // Beam jj of example i: the chosen candidate, or an empty slot where there are
    // fewer candidates than beams.
    w.line(d.let_int("dst", &format!("i * {wd} + jj")));
    w.open("if (found != 0) {".into());
    w.line(d.let_int("parent", &format!("i * {wd} + bk")));
    w.line(format!(
        "arena[{} + dst] = {};",
        b.parents,
        d.to_float("parent")
    ));
    w.line(d.let_int(
        "plen",
        &d.to_int(&format!("arena[{} + parent]", from.lengths)),
    ));
    w.open(d.for_up("tt", "0", &ml.to_string(), "1"));
    w.line(format!(
        "arena[{} + dst * {ml} + tt] = arena[{} + parent * {ml} + tt];",
        to.tokens, from.tokens
    ));
    w.close();
    w.line(d.var_int("len", "plen"));
    w.line(d.var_float("fin", "1.0f"));
    w.line(d.var_float("next", &float(b.eos, d)));
    w.open("if (bv >= 0) {".into());
    w.line(format!(
        "arena[{} + dst * {ml} + plen] = {};",
        to.tokens,
        d.to_float("bv")
    ));
    w.line("len = plen + 1;");
    w.open(format!("if (bv != {} && len < {ml}) {{", b.eos as i64));
    w.line("fin = 0.0f;");
    w.line(format!("next = {};", d.to_float("bv")));
    w.close();
    w.close();
    w.line(format!(
        "arena[{} + dst] = {};",
        to.lengths,
        d.to_float("len")
    ));
    w.line(format!("arena[{} + dst] = bs;", to.scores));
    w.line(format!("arena[{} + dst] = fin;", to.done));
    w.line(format!("arena[{} + dst] = next;", b.prev));
    w.line("chosen = 1;");
    w.line("last_s = bs;");
    w.line("last_pos = bpos;");
    w.close();
    w.open("else {".into());
    w.line(format!(
        "arena[{} + dst] = {};",
        b.parents,
        d.to_float(&format!("i * {wd}"))
    ));
    w.open(d.for_up("tt", "0", &ml.to_string(), "1"));
    w.line(format!(
        "arena[{} + dst * {ml} + tt] = {};",
        to.tokens,
        float(b.pad, d)
    ));
    w.close();
    w.line(format!("arena[{} + dst] = 0.0f;", to.lengths));
    w.line(format!("arena[{} + dst] = {neg_inf};", to.scores));
    w.line(format!("arena[{} + dst] = 1.0f;", to.done));
    w.line(format!("arena[{} + dst] = {};", b.prev, float(b.eos, d)));
    w.close();
    w.close();
    w.close();
}
