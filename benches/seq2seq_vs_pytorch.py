"""The seq2seq benchmark of issue 14: models/seq2seq_attention.rnn against PyTorch.

Both sides run the same model with the same weights (a PyTorch Seq2SeqAttention
from tests/fixtures/seq2seq_reference.py, saved as safetensors) on the inputs
`rnnc bench` makes (token ids 0, every source at full length), interleaved in one
run, in teacher-forced, greedy and beam-search modes, on 1 and 2 threads. PyTorch
runs its loops batched, as its translation tutorial writes them: greedy keeps the
argmax of all B rows per step; beam search runs the B·width hypotheses as one
batch per step and keeps the best `width` continuations per example with one
topk (finished hypotheses carry over as they stand, as in rnnc).

PyTorch runs twice: as the reference module is written (the attention projects
the keys, `Ua(keys)`, at every step, as the tutorial does), and with that
projection computed once per sequence by hand (what rnnc's hoist-memory pass
does). Prints, per mode and thread count, the median times (ms) and PyTorch's /
rnnc's for both (above 1: rnnc is faster; the issue's target is 1.5), and the
decoded lengths PyTorch found (with random weights the end token is rare, so
both sides decode all max_len steps).

Usage: VENV/bin/python benches/seq2seq_vs_pytorch.py target/release/rnnc [--quick]
(VENV: the peers' environment from ../shared/peers/setup.sh, with torch and
safetensors.)
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
from seq2seq_reference import Seq2SeqAttention  # noqa: E402

VOCAB, HIDDEN, B, S, MAX_LEN, WIDTH, BOS, EOS = 1000, 256, 8, 30, 20, 4, 1, 2
MODES = ["teacher", "greedy", "beam"]


class Steps:
    """The decoder step of `m`, with the keys' projection per step (`hoist` False,
    the reference's code) or once per sequence (`hoist` True)."""

    def __init__(self, m, hoist):
        self.m, self.hoist = m, hoist

    def encode(self, src, lengths):
        keys, h, mask = self.m.encode(src, lengths)
        a = self.m.decoder.attention
        return (keys, a.Ua(keys) if self.hoist else None), h, mask

    def step(self, token, h, keys, mask):
        keys, projected = keys
        d = self.m.decoder
        if projected is None:
            return d.step(token, h, keys, mask)
        a = d.attention
        scores = a.Va(torch.tanh(a.Wa(h).unsqueeze(1) + projected)).squeeze(2)
        weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)
        h = d.gru(torch.cat([d.embedding(token), context], dim=-1), h)
        return d.out(h), weights, h


def teacher(m, src, lengths, tgt_in):
    keys, h, mask = m.encode(src, lengths)
    logits, attention = [], []
    for t in range(tgt_in.shape[1]):
        lg, w, h = m.step(tgt_in[:, t], h, keys, mask)
        logits.append(lg)
        attention.append(w)
    return torch.stack(logits, 1), torch.stack(attention, 1)


def greedy(m, src, lengths):
    keys, h, mask = m.encode(src, lengths)
    prev = torch.full((B,), BOS, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    tokens, scores = [], torch.zeros(B)
    out_len = torch.zeros(B, dtype=torch.long)
    for t in range(MAX_LEN):
        logits, _, h = m.step(prev, h, keys, mask)
        lp, tok = F.log_softmax(logits, dim=-1).max(dim=-1)
        live = ~done
        scores += torch.where(live, lp, torch.zeros_like(lp))
        out_len += live.long()
        tokens.append(torch.where(live, tok, torch.zeros_like(tok)))
        prev = torch.where(live, tok, prev)
        done |= tok == EOS
        if bool(done.all()):
            break
    return torch.stack(tokens, 1), out_len, scores


def beam(m, src, lengths):
    keys, h, mask = m.encode(src, lengths)
    rows = B * WIDTH
    keys = tuple(k if k is None else k.repeat_interleave(WIDTH, 0) for k in keys)
    mask = mask.repeat_interleave(WIDTH, 0)
    h = h.repeat_interleave(WIDTH, 0)
    # Only the first hypothesis of each example is live at the start.
    scores = torch.full((B, WIDTH), float("-inf"))
    scores[:, 0] = 0.0
    done = torch.zeros(B, WIDTH, dtype=torch.bool)
    prev = torch.full((rows,), BOS, dtype=torch.long)
    tokens = torch.zeros(B, WIDTH, 0, dtype=torch.long)
    out_len = torch.zeros(B, WIDTH, dtype=torch.long)
    for _ in range(MAX_LEN):
        if bool(done.all()):
            break
        logits, _, h = m.step(prev, h, keys, mask)
        lp = F.log_softmax(logits, dim=-1).view(B, WIDTH, VOCAB)
        # A finished hypothesis has one continuation: itself (token 0), at no cost.
        stay = torch.full((VOCAB,), float("-inf"))
        stay[0] = 0.0
        lp = torch.where(done[..., None], stay, lp)
        total = (scores[..., None] + lp).view(B, WIDTH * VOCAB)
        scores, idx = total.topk(WIDTH, dim=-1)
        parent, tok = idx // VOCAB, idx % VOCAB
        pick = (parent + torch.arange(B)[:, None] * WIDTH).view(-1)
        was_done = done.gather(1, parent)
        out_len = out_len.gather(1, parent) + (~was_done).long()
        tokens = torch.cat([tokens.gather(1, parent[..., None].expand_as(tokens)), tok[..., None]], 2)
        done = was_done | (tok == EOS)
        h = h[pick]
        prev = tok.view(-1)
    return tokens, out_len, scores


def median_ms(f, runs):
    f()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def rnnc_ms(rnnc, weights, mode, threads):
    # PyTorch's OpenMP threads spin for a while after its last call; let them
    # sleep first, or they take the cores rnnc's threads run on.
    time.sleep(1.0)
    cmd = [rnnc, "bench", os.path.join(ROOT, "models", "seq2seq_attention.rnn"),
           "--param", f"src_vocab={VOCAB}", "--param", f"tgt_vocab={VOCAB}",
           "--param", f"hidden_size={HIDDEN}", "--param", f"max_len={MAX_LEN}",
           "--param", f"beam_width={WIDTH}", "--param", f"mode={mode}",
           "--weights", weights, "--batch", str(B), "--seq", str(S),
           "--threads", str(threads), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_ms"]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rnnc, quick = sys.argv[1], "--quick" in sys.argv
    runs = 5 if quick else 30
    torch.manual_seed(0)
    module = Seq2SeqAttention(VOCAB, VOCAB, HIDDEN).eval()
    tutorial, hoisted = Steps(module, False), Steps(module, True)
    src = torch.zeros(B, S, dtype=torch.long)
    lengths = torch.full((B,), S, dtype=torch.long)
    tgt_in = torch.zeros(B, S, dtype=torch.long)
    runs_of = {
        "teacher": lambda m: teacher(m, src, lengths, tgt_in),
        "greedy": lambda m: greedy(m, src, lengths),
        "beam": lambda m: beam(m, src, lengths),
    }
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        weights = os.path.join(tmp, "seq2seq.safetensors")
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, weights)
        print(f"seq2seq attention, vocab {VOCAB}, hidden {HIDDEN}, B={B}, S=T={S}, "
              f"max_len {MAX_LEN}, beam width {WIDTH}; PyTorch {torch.__version__}")
        print(f"PyTorch's decoded lengths: greedy {greedy(tutorial, src, lengths)[1].tolist()}, "
              f"beam (best) {beam(tutorial, src, lengths)[1][:, 0].tolist()}")
        print("| mode | threads | PyTorch (ms) | PyTorch, keys projected once (ms) "
              "| rnnc (ms) | PyTorch / rnnc | hoisted PyTorch / rnnc |")
        print("|---|---|---|---|---|---|---|")
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for mode in MODES:
                plain = median_ms(lambda: runs_of[mode](tutorial), runs)
                ours = rnnc_ms(rnnc, weights, mode, threads)
                fast = median_ms(lambda: runs_of[mode](hoisted), runs)
                print(f"| {mode} | {threads} | {plain:.2f} | {fast:.2f} | {ours:.2f} | "
                      f"{plain / ours:.2f} | {fast / ours:.2f} |", flush=True)


if __name__ == "__main__":
    main()
