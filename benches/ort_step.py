#!/usr/bin/env python3
"""ONNX Runtime's time for one streaming step: nn.LSTM/GRU/RNN exported to ONNX with
its state as inputs and outputs, called with T = 1 and the state fed back, as a
streaming user of ORT would. Timed like ../shared/peers/bench_peers.py (2 warm-ups,
>= 10 runs and 1 s, median). Run with the peers' Python:
  $VENV/bin/python benches/ort_step.py [--batch 1] [--hidden 256] [--threads 1]
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cell", default="LSTM", choices=["LSTM", "GRU", "RNN"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(0)
    H = a.hidden
    m = getattr(torch.nn, a.cell)(H, H, batch_first=True).eval()
    x = torch.randn(a.batch, 1, H)
    h = torch.zeros(1, a.batch, H)
    state = (h, h.clone()) if a.cell == "LSTM" else h
    path = os.path.join(tempfile.mkdtemp(), "step.onnx")
    names = ["h0", "c0"] if a.cell == "LSTM" else ["h0"]
    outs = ["output"] + (["h_n", "c_n"] if a.cell == "LSTM" else ["h_n"])
    torch.onnx.export(m, (x, state), path, input_names=["input"] + names,
                      output_names=outs, opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"input": x.numpy()}
    for n in names:
        feed[n] = np.zeros((1, a.batch, H), np.float32)

    def step():
        res = sess.run(None, feed)
        for n, v in zip(names, res[1:]):
            feed[n] = v

    for _ in range(2):
        step()
    ts = []
    t0 = time.perf_counter()
    while len(ts) < 10 or (time.perf_counter() - t0 < 1.0 and len(ts) < 100000):
        s = time.perf_counter()
        step()
        ts.append(time.perf_counter() - s)
    print(f"ort {a.cell} B={a.batch} H={H} T=1 threads={a.threads}: "
          f"median {statistics.median(ts) * 1e6:.2f} us per step, "
          f"min {min(ts) * 1e6:.2f} us over {len(ts)} steps")


if __name__ == "__main__":
    main()
