#!/usr/bin/env python3
"""Writes the ONNX import fixtures under tests/onnx/fixtures/<case>/ and the
malformed models under tests/onnx/bad/.

Run with the peers environment (torch, onnx, onnxruntime, numpy):

    ~/.rnnc-peers/bin/python tests/onnx/make_onnx_fixtures.py

Every case directory holds
  model.onnx           the graph,
  inputs/<name>.npy    one array per graph input that is not an initializer
                       (float32; int64 token ids; int32 sequence_lens),
  expected/<name>.npy  one array per graph output, the oracle's result,
  meta.json            {"oracle": "onnxruntime" | "numpy", "atol", "rtol",
                        "description"}.

Part 1 builds one LSTM / GRU / RNN node per case with onnx.helper, covering
every attribute and optional input of the operators. An independent NumPy
reference of the operator spec's equations (ref_rnn below) is checked against
onnxruntime on every case ORT runs (|ORT - NumPy| <= 1e-5); ORT is the oracle
there, and NumPy where ORT refuses the model (layout=1).
Part 2 builds small graphs of the operators found around recurrent layers
(Gather embedding, Gemm, MatMul, broadcasting arithmetic, Softmax, Slice,
Reshape, Shape glue, ...); a small NumPy interpreter (np_run) checks them.
Part 3 exports the seed models of /work/shared/reference/seed_models.py with
torch.onnx.export; ORT is the oracle, checked against PyTorch and np_run.
Part 4 writes malformed / unsupported models to tests/onnx/bad/.

Everything is deterministic (fixed seeds); the script deletes and rewrites
tests/onnx/fixtures and tests/onnx/bad. It also runs a few probes of ORT's
behaviour on points the spec leaves open and prints what it found.
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as TP
from onnx import helper as oh
from onnx import numpy_helper as nh

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
BAD = os.path.join(HERE, "bad")
SEED_MODELS = os.path.join(HERE, "..", "..", "..", "shared", "reference")
if not os.path.isdir(SEED_MODELS):
    SEED_MODELS = "/work/shared/reference"

ATOL, RTOL = 1e-5, 1e-4  # tolerances written to meta.json
CHECK_ATOL = 1e-5  # ORT vs NumPy / ORT vs PyTorch agreement asserted here

ort.set_default_logger_severity(4)

# ---------------------------------------------------------------------------
# NumPy reference of the ONNX RNN operators (float64)
# ---------------------------------------------------------------------------

# Parameters each activation takes, in the order it consumes them from the
# activation_alpha / activation_beta lists (two independent queues).
ACT_TAKES = {
    "Relu": (), "Tanh": (), "Sigmoid": (), "Softsign": (), "Softplus": (),
    "Affine": ("alpha", "beta"),
    "LeakyRelu": ("alpha",),
    "ThresholdedRelu": ("alpha",),
    "ScaledTanh": ("alpha", "beta"),
    "HardSigmoid": ("alpha", "beta"),
    "Elu": ("alpha",),
}
# Defaults when the lists run out: "the same as of corresponding ONNX
# operators" (LeakyRelu 0.01, HardSigmoid 0.2/0.5, Elu 1.0, ThresholdedRelu
# 1.0; Affine 1.0/0.0 and ScaledTanh as the removed operators had them).
# ORT agrees for LeakyRelu, HardSigmoid and Elu, which the *_activation_defaults
# cases rely on; for ThresholdedRelu, Affine and ScaledTanh ORT uses 0.0 (see
# probe_ort()), so no fixture leaves those three without explicit values.
ACT_DEFAULT = {
    "Affine": {"alpha": 1.0, "beta": 0.0},
    "LeakyRelu": {"alpha": 0.01},
    "ThresholdedRelu": {"alpha": 1.0},
    "ScaledTanh": {"alpha": 1.0, "beta": 1.0},
    "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
    "Elu": {"alpha": 1.0},
}


def act_apply(name, x, alpha=None, beta=None):
    if name == "Relu":
        return np.maximum(x, 0.0)
    if name == "Tanh":
        return np.tanh(x)
    if name == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "Affine":
        return alpha * x + beta
    if name == "LeakyRelu":
        return np.where(x >= 0, x, alpha * x)
    if name == "ThresholdedRelu":
        # The RNN pages write "x if x >= alpha", the ThresholdedRelu operator
        # "x for x > alpha"; ORT does the latter (probe_ort()). No fixture hits x == alpha.
        return np.where(x > alpha, x, 0.0)
    if name == "ScaledTanh":
        return alpha * np.tanh(beta * x)
    if name == "HardSigmoid":
        return np.minimum(np.maximum(alpha * x + beta, 0.0), 1.0)
    if name == "Elu":
        return np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, 0.0)) - 1.0))
    if name == "Softsign":
        return x / (1.0 + np.abs(x))
    if name == "Softplus":
        return np.logaddexp(0.0, x)
    raise ValueError("unknown activation " + name)


def resolve_activations(names, alphas, betas):
    """[(name, alpha, beta)]: alphas and betas are consumed in order, each by
    the functions that take that parameter; defaults past the end."""
    alphas, betas = list(alphas or []), list(betas or [])
    out = []
    for name in names:
        takes = ACT_TAKES[name]
        a = b = None
        if "alpha" in takes:
            a = alphas.pop(0) if alphas else ACT_DEFAULT[name]["alpha"]
        if "beta" in takes:
            b = betas.pop(0) if betas else ACT_DEFAULT[name]["beta"]
        out.append((name, a, b))
    return out


DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def ref_rnn(op, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None,
            hidden_size=None, direction="forward", activations=None, activation_alpha=None,
            activation_beta=None, clip=None, input_forget=0, linear_before_reset=0, layout=0,
            clip_cell_before_h=False):
    """The ONNX LSTM / GRU / RNN equations, one batch element and step at a time.
    Returns (Y, Y_h, Y_c) (Y_c None except for LSTM) in the node's layout.

    clip bounds the pre-activations of the gates (i, f, c, o for LSTM, peephole
    terms included; z, r, h for GRU; the one of RNN). The spec says "applied
    to the input of activations", which would also cover h(C_t); ORT does not
    clip C_t there, and this reference follows ORT (clip_cell_before_h=True
    gives the other reading; probe_ort() shows the two differ).
    input_forget=1 couples the gates as f = 1 - i (i after its activation),
    as ORT does; the spec gives no equation for it."""
    X = np.asarray(X, np.float64)
    if layout == 1:
        X = X.transpose(1, 0, 2)
        initial_h = None if initial_h is None else np.asarray(initial_h).transpose(1, 0, 2)
        initial_c = None if initial_c is None else np.asarray(initial_c).transpose(1, 0, 2)
    T, NB, _ = X.shape
    H = hidden_size
    G = GATES[op]
    nd = 2 if direction == "bidirectional" else 1
    W = np.asarray(W, np.float64)
    R = np.asarray(R, np.float64)
    B = np.zeros((nd, 2 * G * H)) if B is None else np.asarray(B, np.float64)
    P = np.zeros((nd, 3 * H)) if P is None else np.asarray(P, np.float64)
    h0 = np.zeros((nd, NB, H)) if initial_h is None else np.asarray(initial_h, np.float64)
    c0 = np.zeros((nd, NB, H)) if initial_c is None else np.asarray(initial_c, np.float64)
    lens = np.full(NB, T) if sequence_lens is None else np.asarray(sequence_lens)
    nact = len(DEFAULT_ACTS[op])
    names = activations if activations else DEFAULT_ACTS[op] * nd
    assert len(names) == nact * nd, names
    acts = resolve_activations(names, activation_alpha, activation_beta)

    def clipped(v):
        return v if clip is None else np.clip(v, -clip, clip)

    Y = np.zeros((T, nd, NB, H))
    Yh = np.zeros((nd, NB, H))
    Yc = np.zeros((nd, NB, H))
    for d in range(nd):
        reverse = direction == "reverse" or d == 1
        fa = acts[d * nact:(d + 1) * nact]

        def F(k, v):
            name, a, b = fa[k]
            return act_apply(name, clipped(v), a, b)

        Wd, Rd = W[d], R[d]
        Wb, Rb = B[d][:G * H], B[d][G * H:]
        for b in range(NB):
            h, c = h0[d, b].copy(), c0[d, b].copy()
            L = int(lens[b])
            steps = range(L - 1, -1, -1) if reverse else range(L)
            for t in steps:
                x = X[t, b]
                gx = Wd @ x + Wb
                gh = Rd @ h + Rb
                if op == "LSTM":
                    xi, xo, xf, xc = np.split(gx, 4)
                    hi, ho, hf, hc = np.split(gh, 4)
                    pi, po, pf = np.split(P[d], 3)
                    i = F(0, xi + hi + pi * c)
                    if input_forget:
                        f = 1.0 - i
                    else:
                        f = F(0, xf + hf + pf * c)
                    g = F(1, xc + hc)
                    c = f * c + i * g
                    o = F(0, xo + ho + po * c)
                    name, a, bb = fa[2]
                    h = o * act_apply(name, clipped(c) if clip_cell_before_h else c, a, bb)
                elif op == "GRU":
                    xz, xr, xh = np.split(gx, 3)
                    Rz, Rr, Rh = np.split(Rd, 3)
                    Rbz, Rbr, Rbh = np.split(Rb, 3)
                    z = F(0, xz + Rz @ h + Rbz)
                    r = F(0, xr + Rr @ h + Rbr)
                    if linear_before_reset:
                        n = F(1, xh + r * (Rh @ h + Rbh))
                    else:
                        n = F(1, xh + Rh @ (r * h) + Rbh)
                    h = (1.0 - z) * n + z * h
                else:
                    h = F(0, gx + gh)
                Y[t, d, b] = h
            Yh[d, b], Yc[d, b] = h, c
    if layout == 1:
        Y = Y.transpose(2, 0, 1, 3)
        Yh = Yh.transpose(1, 0, 2)
        Yc = Yc.transpose(1, 0, 2)
    return Y, Yh, (Yc if op == "LSTM" else None)


# ---------------------------------------------------------------------------
# A small NumPy interpreter for the graphs written here (Parts 2 and 3)
# ---------------------------------------------------------------------------

def _attrs(node):
    return {a.name: oh.get_attribute_value(a) for a in node.attribute}


def _decode(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list):
        return [_decode(e) for e in v]
    return v


def _slice(x, starts, ends, axes=None, steps=None):
    axes = list(range(len(starts))) if axes is None else list(axes)
    steps = [1] * len(starts) if steps is None else list(steps)
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a + x.ndim if a < 0 else a
        dim = x.shape[a]
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
            idx[a] = slice(s, e, st)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
            idx[a] = slice(s, None if e < 0 else e, st)
    return x[tuple(idx)]


def np_run(model, feeds):
    """Evaluates a topologically sorted ONNX graph with NumPy (float64 maths)."""
    g = model.graph
    opset = {o.domain: o.version for o in model.opset_import}.get("", 0)
    env = {}
    for init in g.initializer:
        a = nh.to_array(init)
        env[init.name] = a.astype(np.float64) if a.dtype == np.float32 else a
    for k, v in feeds.items():
        env[k] = v.astype(np.float64) if v.dtype == np.float32 else v
    env[""] = None
    for node in g.node:
        ins = [env[n] for n in node.input]
        at = {k: _decode(v) for k, v in _attrs(node).items()}
        op = node.op_type
        if op in ("LSTM", "GRU", "RNN"):
            names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
            if op != "LSTM":
                names = names[:6]
            kw = {n: v for n, v in zip(names, ins) if v is not None}
            if "output_sequence" in at:
                at.pop("output_sequence")
            y, yh, yc = ref_rnn(op, **kw, **at)
            outs = [y, yh, yc]
        elif op == "Gather":
            outs = [np.take(ins[0], ins[1].astype(np.int64), axis=at.get("axis", 0))]
        elif op == "Transpose":
            outs = [np.transpose(ins[0], at.get("perm"))]
        elif op in ("Squeeze", "Unsqueeze"):
            axes = at["axes"] if opset < 13 else (ins[1].tolist() if len(ins) > 1 and ins[1] is not None else None)
            x = ins[0]
            if op == "Squeeze":
                outs = [np.squeeze(x, axis=tuple(axes)) if axes is not None else np.squeeze(x)]
            else:
                r = x.ndim + len(axes)
                for a in sorted(a + r if a < 0 else a for a in axes):
                    x = np.expand_dims(x, a)
                outs = [x]
        elif op == "Gemm":
            a, b = ins[0], ins[1]
            if at.get("transA", 0):
                a = a.T
            if at.get("transB", 0):
                b = b.T
            y = at.get("alpha", 1.0) * (a @ b)
            if len(ins) > 2 and ins[2] is not None:
                y = y + at.get("beta", 1.0) * ins[2]
            outs = [y]
        elif op == "MatMul":
            outs = [np.matmul(ins[0], ins[1])]
        elif op in ("Add", "Sub", "Mul", "Div"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            outs = [f(ins[0], ins[1])]
        elif op == "Relu":
            outs = [np.maximum(ins[0], 0.0)]
        elif op == "Tanh":
            outs = [np.tanh(ins[0])]
        elif op == "Sigmoid":
            outs = [1.0 / (1.0 + np.exp(-ins[0]))]
        elif op in ("Softmax", "LogSoftmax"):
            assert opset >= 13
            ax = at.get("axis", -1)
            x = ins[0] - ins[0].max(axis=ax, keepdims=True)
            lse = np.log(np.exp(x).sum(axis=ax, keepdims=True))
            outs = [np.exp(x - lse) if op == "Softmax" else x - lse]
        elif op == "Concat":
            outs = [np.concatenate(ins, axis=at["axis"])]
        elif op == "Slice":
            if opset < 10:
                outs = [_slice(ins[0], at["starts"], at["ends"], at.get("axes"))]
            else:
                outs = [_slice(ins[0], ins[1].tolist(), ins[2].tolist(),
                               ins[3].tolist() if len(ins) > 3 and ins[3] is not None else None,
                               ins[4].tolist() if len(ins) > 4 and ins[4] is not None else None)]
        elif op == "Reshape":
            shape = [int(s) for s in ins[1]]
            if not at.get("allowzero", 0):
                shape = [ins[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            outs = [ins[0].reshape(shape)]
        elif op == "Flatten":
            ax = at.get("axis", 1)
            ax = ax + ins[0].ndim if ax < 0 else ax
            outs = [ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)]
        elif op == "Constant":
            if "value" in at:
                v = nh.to_array(at["value"])
            elif "value_float" in at:
                v = np.array(at["value_float"], np.float32)
            elif "value_floats" in at:
                v = np.array(at["value_floats"], np.float32)
            elif "value_int" in at:
                v = np.array(at["value_int"], np.int64)
            elif "value_ints" in at:
                v = np.array(at["value_ints"], np.int64)
            else:
                raise NotImplementedError("Constant " + str(at))
            outs = [v.astype(np.float64) if v.dtype == np.float32 else v]
        elif op == "Identity":
            outs = [ins[0]]
        elif op == "Dropout":
            outs = [ins[0], np.ones(ins[0].shape, bool)]
        elif op == "Shape":
            outs = [np.array(ins[0].shape, np.int64)]
        elif op == "ConstantOfShape":
            v = nh.to_array(at["value"]) if "value" in at else np.zeros(1, np.float32)
            a = np.full([int(s) for s in ins[0]], v.reshape(-1)[0], v.dtype)
            outs = [a.astype(np.float64) if a.dtype == np.float32 else a]
        elif op == "Expand":
            outs = [ins[0] * np.ones([int(s) for s in ins[1]], ins[0].dtype)]
        elif op == "Cast":
            to = at["to"]
            outs = [ins[0].astype(np.float64 if to == TP.FLOAT else oh.tensor_dtype_to_np_dtype(to))]
        else:
            raise NotImplementedError(op)
        for n, v in zip(node.output, outs):
            if n:
                env[n] = v
    return {o.name: env[o.name] for o in g.output}


# ---------------------------------------------------------------------------
# Writing cases
# ---------------------------------------------------------------------------

REPORT = []  # (case, oracle, max |ORT - NumPy| or None, note)


def ort_run(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def graph_input_names(model):
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def check_names(model):
    import re
    for v in list(model.graph.input) + list(model.graph.output):
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v.name), v.name
        assert v.name not in ("B", "T", "S"), v.name


def write_case(case, model, feeds, description, numpy_expected=None, torch_expected=None,
               check=True):
    """Runs ORT (and the NumPy reference) on `model` and writes the case.
    numpy_expected: the NumPy result (computed by np_run when None)."""
    check_names(model)
    if check:
        onnx.checker.check_model(model, full_check=True)
    assert sorted(feeds) == sorted(graph_input_names(model)), (case, sorted(feeds))
    out_names = [o.name for o in model.graph.output]
    if numpy_expected is None:
        numpy_expected = np_run(model, feeds)
    note = ""
    try:
        got = ort_run(model, feeds)
        oracle = "onnxruntime"
    except Exception as e:  # ORT refuses: record it, NumPy is the oracle
        got = None
        oracle = "numpy"
        note = str(e).strip()
    diff = None
    if got is not None:
        diff = 0.0
        for n in out_names:
            assert got[n].shape == numpy_expected[n].shape, (case, n, got[n].shape, numpy_expected[n].shape)
            diff = max(diff, float(np.abs(got[n].astype(np.float64) - numpy_expected[n]).max()))
        assert diff <= CHECK_ATOL, (case, diff)
        expected = got
    else:
        expected = {n: numpy_expected[n].astype(np.float32) for n in out_names}
    tdiff = None
    if torch_expected is not None:
        tdiff = 0.0
        for n in out_names:
            tdiff = max(tdiff, float(np.abs(expected[n] - torch_expected[n]).max()))
        assert tdiff <= CHECK_ATOL, (case, tdiff)

    d = os.path.join(FIXTURES, case)
    os.makedirs(os.path.join(d, "inputs"))
    os.makedirs(os.path.join(d, "expected"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for n, v in feeds.items():
        np.save(os.path.join(d, "inputs", n + ".npy"), v)
    for n in out_names:
        v = expected[n]
        if v.dtype == np.float64:
            v = v.astype(np.float32)
        np.save(os.path.join(d, "expected", n + ".npy"), v)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"oracle": oracle, "atol": ATOL, "rtol": RTOL, "description": description}, f, indent=1)
        f.write("\n")
    REPORT.append((case, oracle, diff, tdiff, note))


def vi(name, elem, shape):
    return oh.make_tensor_value_info(name, elem, shape)


def init(name, arr):
    return nh.from_array(np.asarray(arr), name)


def make_model(nodes, name, inputs, outputs, inits, opset=17, extra_opsets=()):
    g = oh.make_graph(nodes, name, inputs, outputs, inits)
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)] + list(extra_opsets),
                      producer_name="rnnc-make_onnx_fixtures")
    m.ir_version = 8
    return m


# ---------------------------------------------------------------------------
# Part 1: one recurrent node per case
# ---------------------------------------------------------------------------

T_, NB_, I_, H_ = 5, 3, 4, 6


def rnn_case(case, op, description, seed, direction="forward", bias=True, peephole=False,
             seq_lens=None, init_h=False, init_c=False, layout=0, outputs=None, H=H_,
             **attrs):
    rng = np.random.default_rng(seed)
    nd = 2 if direction == "bidirectional" else 1
    G = GATES[op]
    I = I_
    W = (rng.standard_normal((nd, G * H, I)) * 0.5).astype(np.float32)
    R = (rng.standard_normal((nd, G * H, H)) * 0.5).astype(np.float32)
    Bv = (rng.standard_normal((nd, 2 * G * H)) * 0.5).astype(np.float32)
    Pv = (rng.standard_normal((nd, 3 * H)) * 0.5).astype(np.float32)
    xshape = [NB_, T_, I] if layout else [T_, NB_, I]
    X = rng.standard_normal(xshape).astype(np.float32)
    hshape = [NB_, nd, H] if layout else [nd, NB_, H]
    h0 = (rng.standard_normal(hshape) * 0.5).astype(np.float32)
    c0 = (rng.standard_normal(hshape) * 0.5).astype(np.float32)

    inits = [init("W", W), init("R", R)]
    node_in = ["X", "W", "R"]
    feeds = {"X": X}
    sym_x = ["batch", "seq", I] if layout else ["seq", "batch", I]
    sym_h = ["batch", nd, H] if layout else [nd, "batch", H]
    g_in = [vi("X", TP.FLOAT, sym_x)]
    node_in.append("Bias" if bias else "")
    if bias:
        inits.append(init("Bias", Bv))
    if seq_lens is not None:
        node_in.append("seq_lens")
        feeds["seq_lens"] = np.asarray(seq_lens, np.int32)
        g_in.append(vi("seq_lens", TP.INT32, ["batch"]))
    else:
        node_in.append("")
    if init_h:
        node_in.append("h0")
        feeds["h0"] = h0
        g_in.append(vi("h0", TP.FLOAT, sym_h))
    else:
        node_in.append("")
    if op == "LSTM":
        if init_c:
            node_in.append("c0")
            feeds["c0"] = c0
            g_in.append(vi("c0", TP.FLOAT, sym_h))
        else:
            node_in.append("")
        if peephole:
            node_in.append("P")
            inits.append(init("P", Pv))
    while node_in[-1] == "":
        node_in.pop()

    if outputs is None:
        outputs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    sym_y = ["batch", "seq", nd, H] if layout else ["seq", nd, "batch", H]
    shapes = {"Y": sym_y, "Y_h": sym_h, "Y_c": sym_h}
    g_out = [vi(n, TP.FLOAT, shapes[n]) for n in outputs if n]
    attrs = dict(attrs)
    node_attrs = dict(hidden_size=H, **attrs)
    if direction != "forward":
        node_attrs["direction"] = direction
    if layout:
        node_attrs["layout"] = layout
    node = oh.make_node(op, node_in, outputs, name=case, **node_attrs)
    model = make_model([node], case, g_in, g_out, inits)

    y, yh, yc = ref_rnn(op, X, W, R, Bv if bias else None, feeds.get("seq_lens"), feeds.get("h0"),
                        feeds.get("c0"), Pv if peephole else None, hidden_size=H,
                        direction=direction, layout=layout, **attrs)
    ref = {"Y": y, "Y_h": yh, "Y_c": yc}
    if layout:
        LAYOUT_CHECK[case] = layout0_check(model, feeds, ref)
    write_case(case, model, feeds, description, numpy_expected={n: ref[n] for n in outputs if n})


LAYOUT_CHECK = {}  # layout=1 case -> max |ORT(layout 0 twin, transposed) - NumPy(layout 1)|


def layout0_check(model, feeds, ref):
    """ORT refuses layout=1: run the same node at layout 0 on transposed inputs and
    compare its transposed outputs with the NumPy layout-1 result."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    node = m.graph.node[0]
    keep = [a for a in node.attribute if a.name != "layout"]
    del node.attribute[:]
    node.attribute.extend(keep)
    for coll in (m.graph.input, m.graph.output):
        for v in coll:
            v.type.tensor_type.ClearField("shape")
    tf = {}
    for n, v in feeds.items():
        tf[n] = v.transpose(1, 0, 2) if n in ("X", "h0", "c0") else v
    got = ort_run(m, tf)
    diff = 0.0
    for n, v in got.items():
        v = v.transpose(2, 0, 1, 3) if n == "Y" else v.transpose(1, 0, 2)
        diff = max(diff, float(np.abs(v - ref[n]).max()))
    assert diff <= CHECK_ATOL, diff
    return diff


def part1():
    L = "LSTM"
    rnn_case("lstm_forward", L, "LSTM forward, default activations, with bias", 101)
    rnn_case("lstm_no_bias", L, "LSTM forward without the optional B input", 102, bias=False)
    rnn_case("lstm_reverse", L, "LSTM direction=reverse", 103, direction="reverse")
    rnn_case("lstm_bidirectional", L, "LSTM direction=bidirectional", 104, direction="bidirectional")
    rnn_case("lstm_peephole", L, "LSTM with peephole weights P (order iof), initial states", 105,
             peephole=True, init_h=True, init_c=True)
    rnn_case("lstm_peephole_bidir", L, "bidirectional LSTM with peepholes, no bias, B passed as ''",
             106, direction="bidirectional", bias=False, peephole=True)
    rnn_case("lstm_clip", L, "LSTM clip=0.5 (bounds the inputs of the activations)", 107, clip=0.5)
    rnn_case("lstm_clip_bidir_peephole", L, "bidirectional LSTM clip=0.3 with peepholes and initial states",
             108, direction="bidirectional", peephole=True, init_h=True, init_c=True, clip=0.3)
    rnn_case("lstm_input_forget", L, "LSTM input_forget=1 (f = 1 - i)", 109, input_forget=1)
    rnn_case("lstm_input_forget_peephole", L, "LSTM input_forget=1 with peepholes: P's f part unused",
             110, input_forget=1, peephole=True, init_c=True)
    rnn_case("lstm_initial_state", L, "LSTM with initial_h and initial_c graph inputs, sequence_lens ''",
             111, init_h=True, init_c=True)
    rnn_case("lstm_seq_lens", L, "bidirectional LSTM with sequence_lens [5,2,4]", 112,
             direction="bidirectional", seq_lens=[5, 2, 4])
    rnn_case("lstm_seq_lens_reverse_init", L, "reverse LSTM, sequence_lens [3,5,1], initial states",
             113, direction="reverse", seq_lens=[3, 5, 1], init_h=True, init_c=True)
    rnn_case("lstm_layout1", L, "bidirectional LSTM layout=1 (batch-major X, Y, Y_h, Y_c, initial states)",
             114, direction="bidirectional", layout=1, init_h=True, init_c=True)
    rnn_case("lstm_layout1_seq_lens", L, "LSTM layout=1 with sequence_lens [4,5,2]", 115, layout=1,
             seq_lens=[4, 5, 2])
    rnn_case("lstm_only_yh", L, "LSTM whose Y output is left empty (''), only Y_h", 116,
             outputs=["", "Y_h"])
    rnn_case("lstm_only_yc", L, "LSTM with outputs '', '', Y_c", 117, outputs=["", "", "Y_c"])
    rnn_case("lstm_activations", L,
             "LSTM f=HardSigmoid(0.3,0.6) g=ScaledTanh(1.2,0.8) h=Softsign", 118,
             activations=["HardSigmoid", "ScaledTanh", "Softsign"],
             activation_alpha=[0.3, 1.2], activation_beta=[0.6, 0.8])
    # alpha and beta are separate queues: LeakyRelu/Elu take no beta.
    rnn_case("lstm_activations_bidir", L,
             "bidirectional LSTM, forward Sigmoid,Elu(0.7),LeakyRelu(0.2), reverse HardSigmoid(0.25,0.45),"
             "Tanh,ScaledTanh(0.9,1.3)", 119, direction="bidirectional",
             activations=["Sigmoid", "Elu", "LeakyRelu", "HardSigmoid", "Tanh", "ScaledTanh"],
             activation_alpha=[0.7, 0.2, 0.25, 0.9], activation_beta=[0.45, 1.3])
    rnn_case("lstm_activation_defaults", L,
             "LSTM f=HardSigmoid g=LeakyRelu h=Elu with no alpha/beta (defaults 0.2/0.5, 0.01, 1.0)", 120,
             activations=["HardSigmoid", "LeakyRelu", "Elu"])
    rnn_case("lstm_hidden1", L, "LSTM hidden_size=1 with initial states", 121, H=1, init_h=True,
             init_c=True)

    G = "GRU"
    rnn_case("gru_forward", G, "GRU forward, defaults (linear_before_reset=0)", 201)
    rnn_case("gru_lbr0", G, "GRU linear_before_reset=0 explicit, initial_h", 202, linear_before_reset=0,
             init_h=True)
    rnn_case("gru_lbr1", G, "GRU linear_before_reset=1 (the PyTorch form), initial_h", 203,
             linear_before_reset=1, init_h=True)
    rnn_case("gru_no_bias", G, "GRU without B", 204, bias=False, linear_before_reset=1)
    rnn_case("gru_reverse", G, "GRU direction=reverse", 205, direction="reverse")
    rnn_case("gru_bidirectional_seq_lens", G, "bidirectional GRU lbr=1, sequence_lens [5,2,4], initial_h",
             206, direction="bidirectional", seq_lens=[5, 2, 4], init_h=True, linear_before_reset=1)
    rnn_case("gru_activations", G,
             "bidirectional GRU forward Affine(0.4,0.5),ThresholdedRelu(0.1) reverse Sigmoid,LeakyRelu(0.3)",
             207, direction="bidirectional",
             activations=["Affine", "ThresholdedRelu", "Sigmoid", "LeakyRelu"],
             activation_alpha=[0.4, 0.1, 0.3], activation_beta=[0.5])
    rnn_case("gru_activation_defaults", G,
             "bidirectional GRU HardSigmoid,LeakyRelu / Sigmoid,Elu with no alpha/beta (defaults)", 208,
             direction="bidirectional", activations=["HardSigmoid", "LeakyRelu", "Sigmoid", "Elu"])
    rnn_case("gru_clip", G, "GRU clip=0.4 linear_before_reset=1", 209, clip=0.4, linear_before_reset=1)
    rnn_case("gru_clip_lbr0", G, "bidirectional GRU clip=0.6 linear_before_reset=0", 210, clip=0.6,
             direction="bidirectional")
    rnn_case("gru_layout1", G, "GRU layout=1, bidirectional, initial_h", 211, layout=1,
             direction="bidirectional", init_h=True)
    rnn_case("gru_only_y", G, "GRU with only the Y output", 212, outputs=["Y"])

    Rn = "RNN"
    rnn_case("rnn_tanh", Rn, "RNN forward, default Tanh", 301)
    rnn_case("rnn_relu_bidirectional", Rn, "bidirectional RNN with Relu both ways", 302,
             direction="bidirectional", activations=["Relu", "Relu"])
    rnn_case("rnn_activations", Rn, "bidirectional RNN forward Softplus, reverse Affine(0.6,-0.1)", 303,
             direction="bidirectional", activations=["Softplus", "Affine"],
             activation_alpha=[0.6], activation_beta=[-0.1])
    rnn_case("rnn_sigmoid_reverse", Rn, "reverse RNN with Sigmoid, sequence_lens [1,5,3]", 304,
             direction="reverse", activations=["Sigmoid"], seq_lens=[1, 5, 3])
    rnn_case("rnn_initial_h", Rn, "RNN with initial_h, B and sequence_lens passed as ''", 305,
             bias=False, init_h=True)
    rnn_case("rnn_clip", Rn, "RNN clip=0.7 with ScaledTanh(1.5,0.5)", 306, clip=0.7,
             activations=["ScaledTanh"], activation_alpha=[1.5], activation_beta=[0.5])
    rnn_case("rnn_layout1", Rn, "RNN layout=1 with initial_h", 307, layout=1, init_h=True)
    rnn_case("rnn_layout1_seq_lens_bidir", Rn, "bidirectional RNN layout=1, sequence_lens [2,5,3]", 308,
             layout=1, direction="bidirectional", seq_lens=[2, 5, 3])


# ---------------------------------------------------------------------------
# Part 2: the operators around recurrent layers
# ---------------------------------------------------------------------------

def _w(rng, *shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _lstm_weights(rng, prefix, I, H, nd=1, G=4):
    return [init(prefix + "W", _w(rng, nd, G * H, I)), init(prefix + "R", _w(rng, nd, G * H, H)),
            init(prefix + "Bias", _w(rng, nd, 2 * G * H))]


def i64(*v):
    return np.array(v, np.int64)


def part2():
    I, H = I_, H_
    X_seq = vi("X", TP.FLOAT, ["seq", "batch", I])

    # Gather embedding -> Transpose -> LSTM -> Squeeze -> Gemm -> LogSoftmax
    rng = np.random.default_rng(401)
    V, E, K = 10, I, 3
    ids = rng.integers(0, V, size=(NB_, T_)).astype(np.int64)
    ids[1, 3:] = 0  # padding id 0
    nodes = [
        oh.make_node("Gather", ["emb", "ids"], ["embedded"], name="embedding", axis=0),
        oh.make_node("Transpose", ["embedded"], ["x_tm"], name="to_time_major", perm=[1, 0, 2]),
        oh.make_node("LSTM", ["x_tm", "lstm_W", "lstm_R", "lstm_Bias"], ["", "h_n"], name="lstm", hidden_size=H),
        oh.make_node("Squeeze", ["h_n", "axes0"], ["h_last"], name="squeeze_dir"),
        oh.make_node("Gemm", ["h_last", "fc_W", "fc_b"], ["scores"], name="fc", transB=1, alpha=0.7, beta=1.3),
        oh.make_node("LogSoftmax", ["scores"], ["logits"], name="log_softmax", axis=-1),
    ]
    inits = [init("emb", _w(rng, V, E))] + _lstm_weights(rng, "lstm_", E, H) + [
        init("axes0", i64(0)), init("fc_W", _w(rng, K, H)), init("fc_b", _w(rng, K))]
    m = make_model(nodes, "embed_lstm_gemm", [vi("ids", TP.INT64, ["batch", "seq"])],
                   [vi("logits", TP.FLOAT, ["batch", K])], inits)
    write_case("ops_embed_lstm_gemm", m, {"ids": ids},
               "Gather embedding of int64 ids -> Transpose -> LSTM(Y_h only) -> Squeeze -> Gemm(transB,alpha,beta,C) -> LogSoftmax")

    # LSTM -> Squeeze -> MatMul -> broadcasting Add/Sub/Mul/Div
    rng = np.random.default_rng(402)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    den = (np.abs(_w(rng, 1, 1, 5)) + 0.5).astype(np.float32)
    nodes = [
        oh.make_node("LSTM", ["X", "lstm_W", "lstm_R", "lstm_Bias"], ["Y", "Y_h"], name="lstm", hidden_size=H),
        oh.make_node("Squeeze", ["Y", "axes1"], ["y3"], name="squeeze_dir"),  # [seq,batch,6]
        oh.make_node("MatMul", ["y3", "proj"], ["p"], name="proj"),  # @ [6,5] -> [seq,batch,5]
        oh.make_node("Add", ["p", "bias5"], ["p_b"], name="add_bias"),  # + [5]
        oh.make_node("MatMul", ["y3", "col"], ["gate"], name="matmul_col"),  # @ [6,1] -> [seq,batch,1]
        oh.make_node("Mul", ["p_b", "gate"], ["p_s"], name="mul_gate"),  # * [seq,batch,1]
        oh.make_node("MatMul", ["Y_h", "proj"], ["hp"], name="matmul_h"),  # [1,batch,6] @ [6,5]
        oh.make_node("Sub", ["hp", "p_s"], ["p_n"], name="sub_bcast"),  # [1,batch,5] - [seq,batch,5]
        oh.make_node("Sub", ["scalar", "p_n"], ["p_m"], name="sub_scalar"),  # [] - x
        oh.make_node("Div", ["p_m", "den"], ["q"], name="div"),  # / [1,1,5]
        oh.make_node("Div", ["q", "scalar"], ["q2"], name="div_scalar"),  # / []
        oh.make_node("Add", ["q2", "p"], ["Z"], name="residual"),
    ]
    inits = _lstm_weights(rng, "lstm_", I, H) + [
        init("axes1", i64(1)), init("proj", _w(rng, H, 5)), init("bias5", _w(rng, 5)),
        init("col", _w(rng, H, 1)), init("scalar", np.array(0.75, np.float32)), init("den", den)]
    m = make_model(nodes, "matmul_arith", [X_seq],
                   [vi("Z", TP.FLOAT, ["seq", "batch", 5]), vi("gate", TP.FLOAT, ["seq", "batch", 1])], inits)
    write_case("ops_matmul_arith", m, {"X": X},
               "LSTM -> Squeeze -> MatMul (3-D @ 2-D) -> Add/Mul/Sub/Div broadcasting [5], [seq,batch,1], [1,batch,5], scalar first and second, [1,1,5]")

    # GRU -> Squeeze -> activations and softmaxes
    rng = np.random.default_rng(403)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    nodes = [
        oh.make_node("GRU", ["X", "gru_W", "gru_R", "gru_Bias"], ["Y", "Y_h"], name="gru", hidden_size=H,
                     linear_before_reset=1),
        oh.make_node("Squeeze", ["Y", "axes1"], ["y3"], name="squeeze_dir"),
        oh.make_node("Relu", ["y3"], ["relu"], name="relu"),
        oh.make_node("Tanh", ["y3"], ["tanh_y"], name="tanh"),
        oh.make_node("Sigmoid", ["Y_h"], ["sig"], name="sigmoid"),
        oh.make_node("Softmax", ["y3"], ["softmax_last"], name="softmax_last", axis=-1),
        oh.make_node("Softmax", ["y3"], ["softmax_batch"], name="softmax_batch", axis=1),
        oh.make_node("LogSoftmax", ["y3"], ["log_softmax_time"], name="log_softmax_time", axis=0),
        oh.make_node("LogSoftmax", ["Y_h"], ["log_softmax_h"], name="log_softmax_h"),  # default axis -1
    ]
    inits = _lstm_weights(rng, "gru_", I, H, G=3) + [init("axes1", i64(1))]
    outs = [vi("relu", TP.FLOAT, ["seq", "batch", H]), vi("tanh_y", TP.FLOAT, ["seq", "batch", H]),
            vi("sig", TP.FLOAT, [1, "batch", H]), vi("softmax_last", TP.FLOAT, ["seq", "batch", H]),
            vi("softmax_batch", TP.FLOAT, ["seq", "batch", H]),
            vi("log_softmax_time", TP.FLOAT, ["seq", "batch", H]), vi("log_softmax_h", TP.FLOAT, [1, "batch", H])]
    m = make_model(nodes, "activations", [X_seq], outs, inits)
    write_case("ops_activations_softmax", m, {"X": X},
               "GRU -> Squeeze -> Relu/Tanh/Sigmoid, Softmax axis -1 and 1, LogSoftmax axis 0 and default (opset 13+ single-axis semantics)")

    # bidirectional LSTM -> Transpose -> Reshape [0,0,-1]; Y_h -> Transpose -> Flatten
    rng = np.random.default_rng(404)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    nodes = [
        oh.make_node("LSTM", ["X", "lstm_W", "lstm_R", "lstm_Bias"], ["Y", "Y_h"], name="bilstm", hidden_size=H,
                     direction="bidirectional"),
        oh.make_node("Transpose", ["Y", ], ["y_t"], name="y_to_seq_batch_dir", perm=[0, 2, 1, 3]),
        oh.make_node("Reshape", ["y_t", "shape_00m1"], ["features"], name="merge_dirs"),
        oh.make_node("Transpose", ["Y_h"], ["h_t"], name="h_batch_first", perm=[1, 0, 2]),
        oh.make_node("Flatten", ["h_t"], ["h_flat"], name="flatten", axis=1),
        oh.make_node("Transpose", ["features"], ["features_bt"], name="default_perm"),  # reverses the dims
    ]
    inits = _lstm_weights(rng, "lstm_", I, H, nd=2) + [init("shape_00m1", i64(0, 0, -1))]
    m = make_model(nodes, "transpose_reshape", [X_seq],
                   [vi("features", TP.FLOAT, ["seq", "batch", 2 * H]), vi("h_flat", TP.FLOAT, ["batch", 2 * H]),
                    vi("features_bt", TP.FLOAT, [2 * H, "batch", "seq"])], inits)
    write_case("ops_transpose_reshape_flatten", m, {"X": X},
               "bidirectional LSTM -> Transpose [0,2,1,3] -> Reshape [0,0,-1]; Y_h -> Transpose -> Flatten(axis 1); Transpose without perm")

    # Reshape splitting one axis into three and joining three into one
    rng = np.random.default_rng(406)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    nodes = [
        oh.make_node("MatMul", ["X", "proj_W"], ["p"], name="project"),  # [seq,batch,24]
        oh.make_node("Reshape", ["p", "shape_00234"], ["p5"], name="split_into_three"),
        oh.make_node("Transpose", ["p5"], ["p5t"], name="reverse_last_three", perm=[0, 1, 4, 3, 2]),
        oh.make_node("Reshape", ["p5t", "shape_00m1"], ["joined"], name="join_three"),
        oh.make_node("Tanh", ["joined"], ["out"], name="tanh"),
    ]
    inits = [init("proj_W", (rng.standard_normal((I, 24)) * 0.5).astype(np.float32)),
             init("shape_00234", i64(0, 0, 2, 3, 4)), init("shape_00m1", i64(0, 0, -1))]
    m = make_model(nodes, "reshape_three", [X_seq], [vi("out", TP.FLOAT, ["seq", "batch", 24])], inits)
    write_case("ops_reshape_three_axes", m, {"X": X},
               "MatMul -> Reshape [0,0,2,3,4] -> Transpose of the last three -> Reshape [0,0,-1]")

    # Attention over the LSTM's outputs: products of two run-time values
    rng = np.random.default_rng(407)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    nodes = [
        oh.make_node("LSTM", ["X", "lstm_W", "lstm_R", "lstm_Bias"], ["Y"], name="lstm", hidden_size=H),
        oh.make_node("Squeeze", ["Y", "axes1"], ["y3"], name="squeeze_dir"),          # [seq,batch,H]
        oh.make_node("Transpose", ["y3"], ["keys"], name="batch_major", perm=[1, 0, 2]),  # [batch,seq,H]
        oh.make_node("Transpose", ["keys"], ["keys_t"], name="keys_t", perm=[0, 2, 1]),   # [batch,H,seq]
        oh.make_node("MatMul", ["keys", "keys_t"], ["scores"], name="scores"),           # [batch,seq,seq]
        oh.make_node("Softmax", ["scores"], ["weights"], name="softmax", axis=-1),
        oh.make_node("MatMul", ["weights", "keys"], ["context"], name="context"),        # [batch,seq,H]
    ]
    inits = _lstm_weights(rng, "lstm_", I, H) + [init("axes1", i64(1))]
    m = make_model(nodes, "attention", [X_seq],
                   [vi("context", TP.FLOAT, ["batch", "seq", H]), vi("weights", TP.FLOAT, ["batch", "seq", "seq"])],
                   inits)
    write_case("ops_attention_matmul", m, {"X": X},
               "LSTM -> self-attention over its outputs: MatMul of two run-time values, Softmax, MatMul")

    # Slice (last step, reversed time, strided) and Concat
    rng = np.random.default_rng(405)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    nodes = [
        oh.make_node("LSTM", ["X", "lstm_W", "lstm_R", "lstm_Bias"], ["Y", "Y_h", "Y_c"], name="lstm", hidden_size=H),
        oh.make_node("Slice", ["Y", "s_m1", "e_max", "ax0"], ["y_last"], name="last_step"),  # [1,1,batch,H]
        oh.make_node("Squeeze", ["y_last", "ax01"], ["y_last2"], name="squeeze"),  # [batch,H]
        oh.make_node("Slice", ["X", "s_m1", "e_min", "ax0", "st_m1"], ["x_rev"], name="flip_time"),
        oh.make_node("Slice", ["Y", "s_1_0", "e_4_3", "ax_m1_0", "st_2_2"], ["y_strided"], name="strided"),
        oh.make_node("Concat", ["Y_h", "Y_c"], ["hc"], name="concat_states", axis=-1),  # [1,batch,2H]
        oh.make_node("Squeeze", ["hc", "ax0"], ["hc2"], name="squeeze_hc"),
        oh.make_node("Concat", ["y_last2", "hc2"], ["summary"], name="concat_summary", axis=1),  # [batch,3H]
    ]
    inits = _lstm_weights(rng, "lstm_", I, H) + [
        init("s_m1", i64(-1)), init("e_max", i64(np.iinfo(np.int64).max)), init("ax0", i64(0)),
        init("ax01", i64(0, 1)), init("e_min", i64(np.iinfo(np.int64).min)), init("st_m1", i64(-1)),
        init("s_1_0", i64(1, 0)), init("e_4_3", i64(4, 3)), init("ax_m1_0", i64(-1, 0)), init("st_2_2", i64(2, 2))]
    m = make_model(nodes, "slice_concat", [X_seq],
                   [vi("summary", TP.FLOAT, ["batch", 3 * H]), vi("x_rev", TP.FLOAT, ["seq", "batch", I]),
                    vi("y_strided", TP.FLOAT, ["strided_seq", 1, "batch", 2])], inits)
    write_case("ops_slice_concat", m, {"X": X},
               "Slice last step (ends INT64_MAX), reversed time (step -1, ends INT64_MIN), strided on two axes; Concat on -1 and 1")

    # Squeeze / Unsqueeze with axes as inputs (opset 13) and attributes (opset 11)
    for opset in (13, 11):
        rng = np.random.default_rng(406 + opset)
        X = rng.standard_normal((T_, NB_, I)).astype(np.float32)

        def sq(op, x, y, axes, name):
            if opset >= 13:
                return oh.make_node(op, [x, "axes_" + name], [y], name=name)
            return oh.make_node(op, [x], [y], name=name, axes=axes)

        nodes = [
            oh.make_node("GRU", ["X", "gru_W", "gru_R", "gru_Bias"], ["Y", "Y_h"], name="gru", hidden_size=H),
            sq("Squeeze", "Y", "y3", [1], "sq_dir"),
            sq("Unsqueeze", "y3", "y5", [0, -1], "unsq_two"),  # [1,seq,batch,H,1]
            sq("Squeeze", "Y_h", "h2", [-3], "sq_neg"),
            sq("Unsqueeze", "h2", "h3", [1], "unsq_mid"),  # [batch,1,H]
        ]
        inits = _lstm_weights(rng, "gru_", I, H, G=3)
        if opset >= 13:
            inits += [init("axes_sq_dir", i64(1)), init("axes_unsq_two", i64(0, -1)),
                      init("axes_sq_neg", i64(-3)), init("axes_unsq_mid", i64(1))]
        m = make_model(nodes, "squeeze_unsqueeze", [X_seq],
                       [vi("y5", TP.FLOAT, [1, "seq", "batch", H, 1]), vi("h3", TP.FLOAT, ["batch", 1, H])],
                       inits, opset=opset)
        write_case("ops_squeeze_unsqueeze_opset%d" % opset, m, {"X": X},
                   "GRU -> Squeeze/Unsqueeze (several and negative axes) at opset %d, axes as %s" %
                   (opset, "initializer inputs" if opset >= 13 else "attributes"))

    # Constant, Identity, Dropout (inference, ratio input)
    rng = np.random.default_rng(420)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    nodes = [
        oh.make_node("Constant", [], ["offset"], name="offset_const", value=nh.from_array(_w(rng, I), "offset")),
        oh.make_node("Add", ["X", "offset"], ["x_off"], name="add_offset"),
        oh.make_node("Identity", ["x_off"], ["x_id"], name="identity"),
        oh.make_node("RNN", ["x_id", "rnn_W", "rnn_R", "rnn_Bias"], ["Y", "Y_h"], name="rnn", hidden_size=H),
        oh.make_node("Dropout", ["Y_h", "ratio"], ["h_drop"], name="dropout"),
        oh.make_node("Dropout", ["Y", "ratio", "training"], ["y_drop", "mask"], name="dropout_mask"),
        oh.make_node("Constant", [], ["two"], name="two", value_float=2.0),
        oh.make_node("Mul", ["h_drop", "two"], ["h_out"], name="double"),
        oh.make_node("Identity", ["y_drop"], ["y_out"], name="identity_out"),
    ]
    inits = _lstm_weights(rng, "rnn_", I, H, G=1) + [init("ratio", np.array(0.3, np.float32)),
                                                      init("training", np.array(False))]
    m = make_model(nodes, "constant_identity_dropout", [X_seq],
                   [vi("h_out", TP.FLOAT, [1, "batch", H]), vi("y_out", TP.FLOAT, ["seq", 1, "batch", H])], inits)
    write_case("ops_constant_identity_dropout", m, {"X": X},
               "Constant (value tensor and value_float) -> Add -> Identity -> RNN -> Dropout(ratio input; training_mode false, mask output unused)")

    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape glue around a dynamic batch dim
    rng = np.random.default_rng(421)
    X = rng.standard_normal((NB_, T_, I)).astype(np.float32)
    nodes = [
        oh.make_node("Shape", ["X"], ["x_shape"], name="shape"),
        oh.make_node("Gather", ["x_shape", "idx0"], ["batch_dim"], name="gather_batch", axis=0),  # scalar
        oh.make_node("Unsqueeze", ["batch_dim", "axes0"], ["batch_1d"], name="unsqueeze_batch"),
        oh.make_node("Concat", ["batch_1d", "minus1"], ["target"], name="concat_shape", axis=0),  # [batch, -1]
        oh.make_node("Transpose", ["X"], ["x_tm"], name="to_time_major", perm=[1, 0, 2]),
        oh.make_node("LSTM", ["x_tm", "lstm_W", "lstm_R", "lstm_Bias"], ["Y", "Y_h"], name="bilstm", hidden_size=H,
                     direction="bidirectional"),
        oh.make_node("Transpose", ["Y_h"], ["h_bf"], name="h_batch_first", perm=[1, 0, 2]),
        oh.make_node("Reshape", ["h_bf", "target"], ["h_cat"], name="view_batch_m1"),  # [batch, 2H]
        oh.make_node("Gemm", ["h_cat", "fc_W", "fc_b"], ["logits"], name="fc", transB=1),
        oh.make_node("Transpose", ["Y"], ["y_bf"], name="y_batch_first", perm=[2, 0, 1, 3]),  # [batch,seq,2,H]
        oh.make_node("Shape", ["X"], ["x_shape2"], name="shape2"),
        oh.make_node("Slice", ["x_shape2", "zero", "two", "zero"], ["bt"], name="slice_shape"),  # [batch, seq]
        oh.make_node("Concat", ["bt", "minus1"], ["target3"], name="concat_shape3", axis=0),
        oh.make_node("Reshape", ["y_bf", "target3"], ["output"], name="view_b_t_m1"),  # [batch,seq,2H]
    ]
    inits = _lstm_weights(rng, "lstm_", I, H, nd=2) + [
        init("idx0", np.array(0, np.int64)), init("axes0", i64(0)), init("minus1", i64(-1)),
        init("fc_W", _w(rng, 3, 2 * H)), init("fc_b", _w(rng, 3)), init("zero", i64(0)), init("two", i64(2))]
    m = make_model(nodes, "shape_glue", [vi("X", TP.FLOAT, ["batch", "seq", I])],
                   [vi("logits", TP.FLOAT, ["batch", 3]), vi("output", TP.FLOAT, ["batch", "seq", 2 * H])], inits)
    write_case("ops_shape_glue", m, {"X": X},
               "batch-first X: Shape->Gather(0)->Unsqueeze->Concat(-1)->Reshape and Shape->Slice->Concat->Reshape around a bidirectional LSTM, Gemm head")


# ---------------------------------------------------------------------------
# Part 3: the seed models exported by torch.onnx.export
# ---------------------------------------------------------------------------

EXPORTER = {}  # which exporter was used, and why


def torch_export(module, args, path, input_names, output_names, dynamic_axes):
    import torch
    kw = dict(input_names=input_names, output_names=output_names, opset_version=17)
    try:
        import onnxscript  # noqa: F401  (the default, torch.export-based exporter needs it)
        have_onnxscript = True
    except ImportError:
        have_onnxscript = False
    if have_onnxscript:
        shapes = {n: {k: torch.export.Dim.AUTO for k in ax} for n, ax in dynamic_axes.items()
                  if n in input_names}
        torch.onnx.export(module, args, path, dynamic_shapes=shapes, dynamo=True, **kw)
        EXPORTER["used"] = "torch.onnx.export(dynamo=True) (the default exporter)"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, path, dynamic_axes=dynamic_axes, dynamo=False, **kw)
        EXPORTER["used"] = ("torch.onnx.export(dynamo=False) (TorchScript exporter): the default "
                            "dynamo exporter raised ModuleNotFoundError: No module named 'onnxscript'")


def part3():
    import tempfile

    import torch
    sys.path.insert(0, SEED_MODELS)
    import seed_models as S

    torch.manual_seed(0)
    torch.set_num_threads(1)

    def reinit(module):  # every parameter ~ N(0, 0.5^2); the embedding's padding row stays 0
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(torch.randn_like(p) * 0.5)
            for mod in module.modules():
                if isinstance(mod, torch.nn.Embedding) and mod.padding_idx is not None:
                    mod.weight[mod.padding_idx].zero_()
        return module.eval()

    B_, T3, F_ = NB_, T_, 4
    cases = []
    ids = torch.randint(1, 11, (B_, T3))
    ids[2, 3:] = 0  # trailing padding, fed through the LSTM as zero vectors
    cases.append(("seed_lstm_classifier", S.LSTMClassifier(11, 4, 6, 2, 3), (ids,), ["x"], ["logits"],
                  {"x": {0: "batch", 1: "seq"}, "logits": {0: "batch"}},
                  "LSTMClassifier(vocab 11, embed 4, hidden 6, 2 layers, bidirectional, 3 classes), int64 ids with padding"))
    cases.append(("seed_gru_model", S.GRUModel(F_, 6, 2, 3), (torch.randn(B_, T3, F_),), ["x"], ["logits"],
                  {"x": {0: "batch", 1: "seq"}, "logits": {0: "batch"}},
                  "GRUModel(input 4, hidden 6, 2 layers, output 3): fc(hidden[-1])"))
    cases.append(("seed_timeseries_lstm", S.TimeSeriesLSTM(F_, 6, 2, 1), (torch.randn(B_, T3, F_),), ["x"],
                  ["prediction"], {"x": {0: "batch", 1: "seq"}, "prediction": {0: "batch"}},
                  "TimeSeriesLSTM(features 4, hidden 6, 2 layers, output 1): regressor(lstm_out[:, -1])"))
    cases.append(("seed_speech_lstm", S.SpeechLSTM(5, 6, 7), (torch.randn(B_, T3, 5),), ["x"], ["log_probs"],
                  {"x": {0: "batch", 1: "seq"}, "log_probs": {0: "batch", 1: "seq"}},
                  "SpeechLSTM(n_mels 5, hidden 6, 4 bidirectional layers, 7 classes): log_softmax per step"))
    cases.append(("seed_bilstm", S.BiLSTM(F_, 6, 2), (torch.randn(B_, T3, F_),), ["x"], ["output"],
                  {"x": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"}},
                  "BiLSTM(input 4, hidden 6, 2 layers): two LSTM stacks, torch.flip on time, per-step fc"))
    cases.append(("seed_elman_rnn", S.ElmanRNN(F_, 6, 2, "tanh"), (torch.randn(B_, T3, F_),), ["x"],
                  ["output", "h_n"], {"x": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"},
                                      "h_n": {1: "batch"}},
                  "ElmanRNN(input 4, hidden 6, 2 layers, tanh), no h0: outputs out and h_n"))
    cases.append(("seed_elman_rnn_relu_h0", S.ElmanRNN(F_, 6, 1, "relu"),
                  (torch.randn(B_, T3, F_), torch.randn(1, B_, 6) * 0.5), ["x", "h0"], ["output", "h_n"],
                  {"x": {0: "batch", 1: "seq"}, "h0": {1: "batch"}, "output": {0: "batch", 1: "seq"},
                   "h_n": {1: "batch"}},
                  "ElmanRNN(input 4, hidden 6, 1 layer, relu) with h0 as a graph input"))

    tmp = tempfile.mkdtemp()
    listings = {}
    try:
        for case, module, args, in_names, out_names, dyn, desc in cases:
            reinit(module)
            with torch.no_grad():
                ref = module(*args)
            ref = ref if isinstance(ref, tuple) else (ref,)
            path = os.path.join(tmp, case + ".onnx")
            torch_export(module, args, path, in_names, out_names, dyn)
            model = onnx.load(path)
            feeds = {n: a.numpy() for n, a in zip(in_names, args)}
            torch_expected = {n: r.numpy() for n, r in zip(out_names, ref)}
            write_case(case, model, feeds, desc, torch_expected=torch_expected)
            listings[case] = describe_graph(model)
    finally:
        shutil.rmtree(tmp)
    return listings


def describe_graph(model):
    """A plain-text listing of an exported graph for the report."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    lines = ["opset " + ", ".join("%s:%d" % (o.domain or "ai.onnx", o.version) for o in model.opset_import)]
    lines.append("inputs: " + ", ".join("%s%s" % (i.name, _shape_str(i)) for i in g.input if i.name not in inits))
    lines.append("outputs: " + ", ".join("%s%s" % (o.name, _shape_str(o)) for o in g.output))
    lines.append("ops: " + ", ".join(n.op_type for n in g.node))
    lines.append("initializers: %d (%s)" % (len(inits), ", ".join(
        "%s%s" % (k, list(v.dims)) for k, v in inits.items())))
    for n in g.node:
        at = {k: _decode(v) for k, v in _attrs(n).items()}
        if "value" in at:
            at["value"] = nh.to_array(at["value"]).tolist()
        lines.append("  %s %s(%s) -> %s %s" % (n.name, n.op_type, ", ".join(n.input), ", ".join(n.output),
                                               at if at else ""))
    return "\n".join(lines)


def _shape_str(v):
    dims = v.type.tensor_type.shape.dim
    return "[" + ",".join(d.dim_param if d.dim_param else str(d.dim_value) for d in dims) + "]"


# ---------------------------------------------------------------------------
# Part 4: malformed and unsupported models
# ---------------------------------------------------------------------------

def _lstm_graph_parts(rng, W_name="W"):
    I, H = I_, H_
    inits = [init("R", _w(rng, 1, 4 * H, H)), init("Bias", _w(rng, 1, 8 * H))]
    if W_name == "W":
        inits.insert(0, init("W", _w(rng, 1, 4 * H, I)))
    node = oh.make_node("LSTM", ["X", W_name, "R", "Bias"], ["Y", "Y_h"], name="lstm", hidden_size=H)
    ins = [vi("X", TP.FLOAT, ["seq", "batch", I])]
    outs = [vi("Y", TP.FLOAT, ["seq", 1, "batch", H]), vi("Y_h", TP.FLOAT, [1, "batch", H])]
    return node, ins, outs, inits


def part4():
    os.makedirs(BAD)
    rng = np.random.default_rng(500)
    written = {}

    def save(name, model_or_bytes, line):
        path = os.path.join(BAD, name)
        data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
        with open(path, "wb") as f:
            f.write(data)
        written[name] = line

    node, ins, outs, inits = _lstm_graph_parts(rng)
    good = make_model([node], "lstm", ins, outs, inits)
    onnx.checker.check_model(good)
    data = good.SerializeToString()
    save("truncated.onnx", data[:len(data) // 2],
         "a valid one-LSTM model (%d bytes) cut to its first %d bytes: the protobuf does not parse"
         % (len(data), len(data) // 2))

    node, ins, outs, inits = _lstm_graph_parts(rng)
    save("opset_too_old.onnx", make_model([node], "lstm", ins, outs, inits, opset=6),
         "the same LSTM graph importing the default domain at opset 6")

    node, ins, outs, inits = _lstm_graph_parts(rng)
    save("opset_too_new.onnx", make_model([node], "lstm", ins, outs, inits, opset=99),
         "the same LSTM graph importing the default domain at opset 99")

    node, ins, outs, inits = _lstm_graph_parts(rng)
    einsum = oh.make_node("Einsum", ["Y_h", "mix"], ["Z"], name="mix_einsum", equation="dbh,hk->dbk")
    save("unknown_op.onnx", make_model([node, einsum], "lstm_einsum", ins,
                                       [vi("Z", TP.FLOAT, [1, "batch", 2])], inits + [init("mix", _w(rng, H_, 2))]),
         "LSTM followed by an Einsum node named mix_einsum (a valid ONNX op the importer does not support)")

    node, ins, outs, inits = _lstm_graph_parts(rng)
    custom = oh.make_node("FancyNorm", ["Y"], ["Z"], name="fancy", domain="com.example", eps=1e-3)
    save("custom_domain.onnx",
         make_model([node, custom], "lstm_custom", ins, [vi("Z", TP.FLOAT, ["seq", 1, "batch", H_])], inits,
                    extra_opsets=[oh.make_opsetid("com.example", 1)]),
         "LSTM followed by node fancy of op FancyNorm in domain com.example (opset import com.example:1)")

    node, ins, outs, inits = _lstm_graph_parts(rng, W_name="W_missing")
    save("missing_initializer.onnx", make_model([node], "lstm", ins, outs, inits),
         "LSTM whose W input names W_missing, which no initializer, input or node defines (checker not run)")

    node, ins, outs, inits = _lstm_graph_parts(rng)
    reshape = oh.make_node("Reshape", ["Y", "target_shape"], ["Z"], name="dynamic_reshape")
    save("dynamic_reshape.onnx",
         make_model([node, reshape], "lstm_reshape", ins + [vi("target_shape", TP.INT64, [3])],
                    [vi("Z", TP.FLOAT, None)], inits),
         "LSTM -> Reshape whose shape is the int64 graph input target_shape (not a constant)")

    rng_bytes = np.random.default_rng(501)
    while True:  # random bytes that onnx itself refuses to parse
        junk = rng_bytes.integers(0, 256, size=512, dtype=np.uint8).tobytes()
        try:
            onnx.load_model_from_string(junk)
        except Exception:
            break
    save("not_onnx.onnx", junk, "512 random bytes (numpy seed 501); not a protobuf ModelProto")

    for name in ("opset_too_old.onnx", "opset_too_new.onnx", "unknown_op.onnx", "custom_domain.onnx",
                 "missing_initializer.onnx", "dynamic_reshape.onnx"):
        onnx.load(os.path.join(BAD, name))  # they parse
    with open(os.path.join(BAD, "README.md"), "w") as f:
        f.write("# Malformed and unsupported ONNX models\n\n"
                "Written by `../make_onnx_fixtures.py` (`~/.rnnc-peers/bin/python tests/onnx/make_onnx_fixtures.py`).\n"
                "The importer must refuse each with a clear error.\n\n")
        for name, line in written.items():
            f.write("- `%s`: %s.\n" % (name, line))
    return written


# ---------------------------------------------------------------------------
# Probes of ORT on points the spec leaves open (printed, not written)
# ---------------------------------------------------------------------------

def probe_ort():
    findings = []
    rng = np.random.default_rng(600)
    H, I = H_, I_

    def single(op, nd, attrs, X, W, R, Bv=None, outs=("Y", "Y_h"), h0=None):
        ins = ["X", "W", "R"] + (["Bias"] if Bv is not None else [])
        inits = [init("W", W), init("R", R)] + ([init("Bias", Bv)] if Bv is not None else [])
        feeds = {"X": X}
        g_in = [vi("X", TP.FLOAT, list(X.shape))]
        if h0 is not None:
            while len(ins) < 5:
                ins.append("")
            ins.append("h0")
            feeds["h0"] = h0
            g_in.append(vi("h0", TP.FLOAT, list(h0.shape)))
        n = oh.make_node(op, ins, list(outs), hidden_size=W.shape[1] // GATES[op], **attrs)
        m = make_model([n], "probe", g_in, [vi(o, TP.FLOAT, None) for o in outs], inits)
        return ort_run(m, feeds)

    # 1. clip and h(C_t)
    X = rng.standard_normal((T_, NB_, I)).astype(np.float32)
    W, R, Bv = _w(rng, 1, 4 * H, I), _w(rng, 1, 4 * H, H), _w(rng, 1, 8 * H)
    got = single("LSTM", 1, {"clip": 0.5}, X, W, R, Bv)
    a = ref_rnn("LSTM", X, W, R, Bv, hidden_size=H, clip=0.5, clip_cell_before_h=False)[0]
    b = ref_rnn("LSTM", X, W, R, Bv, hidden_size=H, clip=0.5, clip_cell_before_h=True)[0]
    findings.append("LSTM clip=0.5: max|ORT - ref(clip gates only)| = %.2e, max|ORT - ref(also clip C_t "
                    "before h)| = %.2e" % (np.abs(got["Y"] - a).max(), np.abs(got["Y"] - b).max()))

    # 2. alpha/beta: separate queues vs one entry per activation
    acts = ["Sigmoid", "Elu", "LeakyRelu", "HardSigmoid", "Tanh", "ScaledTanh"]
    al, be = [0.7, 0.2, 0.25, 0.9], [0.45, 1.3]
    W2, R2, B2 = _w(rng, 2, 4 * H, I), _w(rng, 2, 4 * H, H), _w(rng, 2, 8 * H)
    got = single("LSTM", 2, dict(direction="bidirectional", activations=acts, activation_alpha=al,
                                 activation_beta=be), X, W2, R2, B2)
    a = ref_rnn("LSTM", X, W2, R2, B2, hidden_size=H, direction="bidirectional", activations=acts,
                activation_alpha=al, activation_beta=be)[0]
    findings.append("activation_alpha/beta as two queues consumed by the functions taking each: "
                    "max|ORT - ref| = %.2e" % np.abs(got["Y"] - a).max())
    # the positional reading: alpha[k], beta[k] belong to activation k
    al_pos = [0.0, 0.7, 0.2, 0.25, 0.0, 0.9]
    be_pos = [0.0, 0.0, 0.0, 0.45, 0.0, 1.3]
    got = single("LSTM", 2, dict(direction="bidirectional", activations=acts, activation_alpha=al_pos,
                                 activation_beta=be_pos), X, W2, R2, B2)
    b_ = ref_rnn("LSTM", X, W2, R2, B2, hidden_size=H, direction="bidirectional", activations=acts,
                 activation_alpha=[0.7, 0.2, 0.25, 0.9], activation_beta=[0.45, 1.3])[0]
    findings.append("positional lists (one alpha/beta slot per activation, 0 where unused) vs the "
                    "queue reading of the compacted lists: max|ORT - ref| = %.2e (large = ORT does not "
                    "read them positionally)" % np.abs(got["Y"] - b_).max())

    # 3. defaults of every parameterised activation (RNN, one activation, no lists)
    Wr, Rr, Br = _w(rng, 1, H, I), _w(rng, 1, H, H), _w(rng, 1, 2 * H)
    for name in ("Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu"):
        try:
            got = single("RNN", 1, dict(activations=[name]), X * 3, Wr, Rr, Br)["Y"]
        except Exception as e:
            findings.append("%s with no alpha/beta: ORT refuses: %s" % (name, str(e).strip()))
            continue
        best = None
        for ca in (0.0, 0.01, 0.1, 0.2, 0.5, 1.0, 1.6732632, 1.67):
            for cb in (0.0, 0.5, 1.0, 0.67, 0.6666667):
                ACT_DEFAULT.setdefault(name, {})
                saved = dict(ACT_DEFAULT[name])
                ACT_DEFAULT[name].update({"alpha": ca, "beta": cb})
                y = ref_rnn("RNN", X * 3, Wr, Rr, Br, hidden_size=H, activations=[name])[0]
                ACT_DEFAULT[name] = saved
                d = float(np.abs(got - y).max())
                if best is None or d < best[0]:
                    best = (d, ca, cb)
        takes = ACT_TAKES[name]
        spec = ref_rnn("RNN", X * 3, Wr, Rr, Br, hidden_size=H, activations=[name])[0]
        findings.append("%s with no alpha/beta: ORT matches alpha=%s%s (max diff %.1e); with the "
                        "ONNX-operator default %s the max diff is %.1e" % (
                            name, best[1], (", beta=%s" % best[2]) if "beta" in takes else "", best[0],
                            ACT_DEFAULT[name], float(np.abs(got - spec).max())))

    # 4. ThresholdedRelu exactly at alpha: x >= alpha (RNN doc) or x > alpha (ThresholdedRelu op)
    Wz, Rz = np.zeros((1, 1, 1), np.float32), np.zeros((1, 1, 1), np.float32)
    Bz = np.array([[0.5, 0.0]], np.float32)
    got = single("RNN", 1, dict(activations=["ThresholdedRelu"], activation_alpha=[0.5]),
                 np.zeros((1, 1, 1), np.float32), Wz, Rz, Bz)["Y"]
    findings.append("ThresholdedRelu(alpha=0.5) at exactly x=0.5 gives %s (0.5: x >= alpha as the RNN "
                    "pages say; 0: x > alpha as the ThresholdedRelu operator says)" % got.ravel()[0])

    # 5. bidirectional with only one direction's activations
    try:
        got = single("GRU", 2, dict(direction="bidirectional", activations=["Sigmoid", "Tanh"]), X,
                     _w(rng, 2, 3 * H, I), _w(rng, 2, 3 * H, H))
        findings.append("bidirectional GRU with 2 activations (one direction's worth): ORT accepts it")
    except Exception as e:
        findings.append("bidirectional GRU with 2 activations: ORT refuses: " + str(e).strip())

    # 6. lower-case activation names
    try:
        got = single("RNN", 1, dict(activations=["relu"]), X, Wr, Rr, Br)["Y"]
        y = ref_rnn("RNN", X, Wr, Rr, Br, hidden_size=H, activations=["Relu"])[0]
        findings.append("activation name 'relu' (lower case): ORT accepts it as Relu (max diff %.1e)"
                        % np.abs(got - y).max())
    except Exception as e:
        findings.append("activation name 'relu': ORT refuses: " + str(e).strip())

    # 7. sequence_lens containing 0
    try:
        n = oh.make_node("LSTM", ["X", "W", "R", "Bias", "seq_lens", "h0"], ["Y", "Y_h", "Y_c"], hidden_size=H)
        h0 = _w(rng, 1, NB_, H)
        m = make_model([n], "probe", [vi("X", TP.FLOAT, [T_, NB_, I]), vi("seq_lens", TP.INT32, [NB_]),
                                      vi("h0", TP.FLOAT, [1, NB_, H])],
                       [vi(o, TP.FLOAT, None) for o in ("Y", "Y_h", "Y_c")],
                       [init("W", W), init("R", R), init("Bias", Bv)])
        got = ort_run(m, {"X": X, "seq_lens": np.array([0, 5, 2], np.int32), "h0": h0})
        findings.append("sequence_lens with a 0 entry: Y_h of that row = %s initial_h, Y_c %s, Y rows all "
                        "zero: %s" % ("==" if np.allclose(got["Y_h"][0, 0], h0[0, 0]) else
                                      ("zeros, not" if np.allclose(got["Y_h"][0, 0], 0) else "neither zeros nor"),
                                      "zero" if np.allclose(got["Y_c"][0, 0], 0) else "non-zero",
                                      bool(np.all(got["Y"][:, :, 0] == 0))))
    except Exception as e:
        findings.append("sequence_lens with a 0 entry: ORT refuses: " + str(e).strip())
    return findings


# ---------------------------------------------------------------------------

def main():
    for d in (FIXTURES, BAD):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(FIXTURES)
    part1()
    part2()
    listings = part3()
    part4()
    print("%-34s %-12s %-12s %-12s" % ("case", "oracle", "|ORT-NumPy|", "|ORT-torch|"))
    for case, oracle, diff, tdiff, note in REPORT:
        print("%-34s %-12s %-12s %-12s" % (case, oracle, "-" if diff is None else "%.2e" % diff,
                                           "-" if tdiff is None else "%.2e" % tdiff))
    print("\nlayout=1 cases: ORT on the layout-0 twin (transposed) vs NumPy:")
    for case, diff in LAYOUT_CHECK.items():
        print("  %-32s %.2e" % (case, diff))
    print("\nORT refusals:")
    for case, oracle, diff, tdiff, note in REPORT:
        if note:
            print("  %s: %s" % (case, note))
    print("\nexporter: " + EXPORTER.get("used", "?"))
    for case, text in listings.items():
        print("\n== %s\n%s" % (case, text))
    print("\nORT probes:")
    for line in probe_ort():
        print("  " + line)
    total = 0
    for root, _, files in os.walk(HERE):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("\ntests/onnx total size: %d bytes" % total)
    assert total < 1_500_000


if __name__ == "__main__":
    main()
