"""The Python package against PyTorch's numbers (the committed seed fixtures, and a
live torch.nn.LSTM/GRU where torch is importable), streaming against whole runs,
and bad input as exceptions that leave the interpreter running.

Run: PYTHONPATH=<where the wheel is installed> python3 -m pytest crates/rnnc-python/tests
"""

import json
import pathlib

import numpy as np
import pytest

import rnnc

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURES = sorted(p.parent for p in (ROOT / "tests/fixtures").glob("seed*/*/meta.json"))


def model_file(name):
    """The model file a fixture's outputs come from (as tests/common/mod.rs maps them)."""
    if name in ("elman_tanh", "elman_relu"):
        name = "elman_rnn"
    elif name.startswith("torch_lstm"):
        name = "lstm"
    elif name.startswith("torch_gru"):
        name = "gru"
    return ROOT / "models" / f"{name}.rnn"


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("backend", ["cpu", "interp"])
def test_seed_fixtures_match_pytorch(fixture, backend):
    meta = json.loads((fixture / "meta.json").read_text())
    m = rnnc.load(model_file(meta["name"]), **meta["ctor_kwargs"])
    m.load_weights(fixture / "weights.safetensors")
    inputs = {f[: -len(".npy")]: np.load(fixture / f) for f in meta["inputs"]}
    out = m.run(backend=backend, **inputs)
    tol = meta["suggested_tolerance"]
    checked = 0
    for f, spec in meta["outputs"].items():
        name = f[: -len(".npy")]
        if spec["dtype"] != "float32" or name not in out:
            continue
        np.testing.assert_allclose(out[name], np.load(fixture / f), atol=tol["atol"],
                                   rtol=tol["rtol"], err_msg=f"{fixture} {name}")
        checked += 1
    assert checked >= 1, f"{fixture}: no output compared"


@pytest.mark.parametrize("mode", ["teacher", "greedy", "beam"])
def test_seq2seq_with_token_ids_matches_pytorch(mode):
    d = ROOT / "tests/fixtures/seq2seq"
    meta = json.loads((d / "meta.json").read_text())
    params = {k: meta[k] for k in ("src_vocab", "tgt_vocab", "hidden_size", "bos", "eos",
                                   "max_len", "beam_width")}
    m = rnnc.load(ROOT / "models/seq2seq_attention.rnn", mode=mode, **params)
    m.load_weights(d / "weights.safetensors")
    inputs = {"src": np.load(d / "src.npy"), "src_lengths": np.load(d / "src_lengths.npy")}
    if mode == "teacher":
        inputs["tgt_in"] = np.load(d / "tgt_in.npy")
    out = m(**inputs)
    if mode == "teacher":
        np.testing.assert_allclose(out["logits"], np.load(d / "logits.npy"), atol=1e-5, rtol=1e-4)
    else:
        for name in ("tokens", "lengths"):
            np.testing.assert_array_equal(out[name], np.load(d / f"{mode}_{name}.npy"))
        np.testing.assert_allclose(out["scores"], np.load(d / f"{mode}_scores.npy"), atol=1e-4)
    with pytest.raises(TypeError, match="int64"):
        m(**{**inputs, "src": inputs["src"].astype(np.int32)})
    with pytest.raises(rnnc.RnncError, match="lengths"):
        m(**{**inputs, "src_lengths": inputs["src_lengths"] * 100})


def random_lstm(hidden=7, inputs=5, seed=0):
    m = rnnc.load(ROOT / "models/lstm.rnn", input_size=inputs, hidden_size=hidden)
    rng = np.random.default_rng(seed)
    m.load_weights({k: rng.uniform(-0.5, 0.5, shape).astype(np.float32)
                    for k, shape in m.weight_shapes})
    return m


def test_the_model_describes_itself():
    m = random_lstm()
    assert m.name == "LSTM"
    assert [i[0] for i in m.inputs] == ["input", "h0", "c0"]
    assert m.inputs[0][1] == ["B", "T", 5]
    assert [o[0] for o in m.outputs] == ["output", "h_n", "c_n"]
    assert dict(m.weight_shapes)["weight_ih_l0"] == [28, 5]
    assert "fuse-gates" in m.passes("O2")
    assert "scan" in m.ir("O0")
    assert "CPU" in m.describe(threads=1)
    assert "LSTM" in repr(m)


def test_calls_run_on_the_cpu_and_every_thread_count_agrees():
    m = random_lstm()
    x = np.random.default_rng(1).standard_normal((3, 6, 5), dtype=np.float32)
    ref = m.run(backend="interp", input=x)
    for threads in (None, 1, 2):
        out = m.run(threads=threads, input=x)
        for name in ref:
            np.testing.assert_allclose(out[name], ref[name], atol=1e-5, err_msg=name)
    assert m(input=x)["output"].shape == (3, 6, 7)
    # Outputs belong to the caller: writing to them changes nothing in rnnc.
    out = m(input=x)
    out["output"][:] = 0
    np.testing.assert_allclose(m(input=x)["output"], ref["output"], atol=1e-5)


def test_streaming_steps_equal_the_whole_sequence():
    m = random_lstm()
    x = np.random.default_rng(2).standard_normal((2, 5, 5), dtype=np.float32)
    whole = m(input=x)
    s = m.stream(threads=1)
    assert s.state_names[0] == ("h0", "h_n")
    for t in range(5):
        y = s.step(input=x[:, t : t + 1])
        np.testing.assert_allclose(y["output"][:, 0], whole["output"][:, t], atol=1e-5)
    np.testing.assert_allclose(y["h_n"], whole["h_n"], atol=1e-5)
    s.reset()
    np.testing.assert_allclose(s.step(input=x[:, :1])["output"][:, 0], whole["output"][:, 0],
                               atol=1e-5)


try:
    import torch
except ImportError:  # the test script's Python has no torch: the live tests skip
    torch = None


@pytest.mark.skipif(torch is None, reason="torch is not importable")
@pytest.mark.parametrize("cell,model", [("LSTM", "lstm"), ("GRU", "gru")])
def test_a_live_torch_module_and_its_state_dict(cell, model):
    torch.manual_seed(0)
    layer = getattr(torch.nn, cell)(6, 9, num_layers=2, batch_first=True).eval()
    x = torch.randn(4, 8, 6)
    with torch.no_grad():
        want, _ = layer(x)
    m = rnnc.load(ROOT / f"models/{model}.rnn", input_size=6, hidden_size=9, num_layers=2)
    for weights in (layer.state_dict(), layer):
        m.load_weights(weights)
        for backend in ("cpu", "interp"):
            got = m.run(backend=backend, input=x)["output"]
            np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=1e-4)


def test_threads_each_with_their_own_model_agree_with_one_thread():
    import threading

    x = np.random.default_rng(3).standard_normal((2, 9, 5), dtype=np.float32)
    want = random_lstm()(input=x)["output"]
    got, errors = {}, []

    def work(i):
        try:
            m = random_lstm()  # the same weights: seed 0
            for _ in range(5):
                got[i] = m.run(threads=1, input=x)["output"]
        except Exception as e:  # reported below, so a failure names itself
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(3):
        np.testing.assert_array_equal(got[i], want)


def test_a_model_stays_on_the_thread_that_made_it():
    import threading

    m = random_lstm()
    x = np.zeros((1, 2, 5), np.float32)
    seen = []
    t = threading.Thread(target=lambda: seen.append(_raises(lambda: m(input=x))))
    t.start()
    t.join()
    assert seen and seen[0] is not None, "another thread could use the model"
    assert m(input=x)["output"].shape == (1, 2, 7)


def _raises(f):
    try:
        f()
    except BaseException as e:  # PyO3 raises for an unsendable object on another thread
        return e
    return None


def test_ahead_of_time_output(tmp_path):
    m = random_lstm()
    o = m.object_file(batch=2, seq=6)
    assert isinstance(o["object"], bytes) and len(o["object"]) > 0
    assert f"void {o['prefix']}_run(" in o["header"]
    k = m.gpu_kernels("wgsl", batch=2, seq=6)
    assert k["file"] == "LSTM.wgsl" and "@compute" in k["source"]
    assert json.loads(k["manifest"])["kernels"]
    assert "__global__" in m.gpu_kernels("cuda")["source"]
    with pytest.raises(rnnc.RnncError, match="no such GPU target"):
        m.gpu_kernels("metal")
    with pytest.raises(rnnc.RnncError, match="at least 1"):
        m.object_file(batch=0)


def test_bad_input_raises_and_the_interpreter_lives_on():
    m = random_lstm()
    x = np.zeros((2, 3, 5), np.float32)
    with pytest.raises(TypeError, match="float64"):
        m(input=x.astype(np.float64))
    with pytest.raises(TypeError, match="NumPy array"):
        m(input=[[1.0]])
    with pytest.raises(rnnc.RnncError, match="input"):
        m(input=np.zeros((2, 3, 6), np.float32))
    with pytest.raises(rnnc.RnncError, match="backend"):
        m.run(backend="gpu", input=x)
    with pytest.raises(rnnc.RnncError, match="at least one thread"):
        m.run(threads=0, input=x)
    with pytest.raises(rnnc.RnncError, match="one thread"):
        m.run(backend="interp", threads=2, input=x)

    fresh = rnnc.load(ROOT / "models/lstm.rnn", input_size=5, hidden_size=7)
    with pytest.raises(rnnc.RnncError, match="load_weights"):
        fresh(input=x)
    partial = {k: np.zeros(s, np.float32) for k, s in fresh.weight_shapes}
    del partial["weight_hh_l0"]
    partial["bias_ih_l0"] = np.zeros(3, np.float32)
    with pytest.raises(rnnc.RnncError) as e:
        fresh.load_weights(partial)
    assert "missing tensor `weight_hh_l0`" in str(e.value)
    assert "`bias_ih_l0` has shape [3]" in str(e.value)
    with pytest.raises(rnnc.RnncError, match="safetensors|cannot read"):
        fresh.load_weights(ROOT / "README.md")
    with pytest.raises(TypeError):
        fresh.load_weights(42)

    with pytest.raises(rnnc.RnncError, match="hidden_size"):
        rnnc.load(ROOT / "models/lstm.rnn", input_size=5, hidden_size="many")
    with pytest.raises(rnnc.RnncError, match="colour"):
        rnnc.load(ROOT / "models/lstm.rnn", input_size=5, hidden_size=7, colour=3)
    with pytest.raises(TypeError, match="hidden_size"):
        rnnc.load(ROOT / "models/lstm.rnn", input_size=5, hidden_size=[7])
    with pytest.raises(rnnc.RnncError) as e:
        rnnc.from_source("model M( {")
    assert "<source>:1" in str(e.value), str(e.value)
    with pytest.raises(rnnc.RnncError, match="no/such"):
        rnnc.load("no/such/model.rnn")
    # Still alive, still right.
    assert m(input=x)["output"].shape == (2, 3, 7)


ONNX_CASES = ["seed_bilstm", "lstm_layout1_seq_lens", "gru_activations"]


@pytest.mark.parametrize("case", ONNX_CASES)
def test_an_onnx_model_imports_and_matches_onnx_runtime(case):
    d = ROOT / "tests/onnx/fixtures" / case
    m = rnnc.load_onnx(d / "model.onnx")
    assert m.source is not None and "scan(" in m.source
    inputs = {p.stem: np.load(p) for p in (d / "inputs").glob("*.npy")}
    # ONNX's sequence_lens is int32; the Python layer takes int64 ids and lengths.
    inputs = {k: v.astype(np.int64) if v.dtype == np.int32 else v for k, v in inputs.items()}
    out = m.run(**inputs)
    for p in (d / "expected").glob("*.npy"):
        np.testing.assert_allclose(out[p.stem], np.load(p), atol=1e-5, rtol=1e-4)


def test_a_bad_onnx_file_raises_naming_it():
    bad = ROOT / "tests/onnx/bad/unknown_op.onnx"
    with pytest.raises(rnnc.RnncError, match="unknown_op.onnx.*Einsum"):
        rnnc.load_onnx(bad)
