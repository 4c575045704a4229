"""rnnc: a compiler for recurrent neural networks, from Python.

Load a model written in the rnnc language with its hyperparameters, give it
PyTorch's weights (a safetensors file, a dict of arrays, a ``state_dict`` or the
module itself) and run it on NumPy arrays::

    import rnnc
    m = rnnc.load("models/gru.rnn", input_size=256, hidden_size=256)
    m.load_weights(torch_gru.state_dict())
    out = m(input=x)                       # {"output": ..., "h_n": ...}
    out = m.run(input=x, backend="cpu", threads=2)
    s = m.stream(); y = s.step(input=x_t)  # one time step, state kept
    print(m.passes("O2"))                  # what each pass did

Every failure rnnc reports (a model that does not parse, weights or inputs that
do not fit it) raises :class:`RnncError` with rnnc's diagnostic as its message;
arguments of the wrong Python type raise ``TypeError``. Runs release the GIL;
a model belongs to the thread that made it (PyO3 raises on any other thread),
so a thread pool makes one model per thread.
"""

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._rnnc import BACKENDS, RnncError
from . import _rnnc

__all__ = ["load", "from_source", "load_onnx", "Model", "Stream", "RnncError", "BACKENDS"]


def _array(value: Any) -> Any:
    """A PyTorch tensor as a NumPy array (its dtype kept); anything else as given."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return value


class Stream:
    """A model run one time step per :meth:`step`, its recurrent state kept."""

    def __init__(self, native: "_rnnc.RnncStream"):
        self._s = native

    def step(self, **inputs: Any) -> Dict[str, Any]:
        """One step: the step's inputs (time axis of length 1); every output."""
        return self._s.step(**{k: _array(v) for k, v in inputs.items()})

    def reset(self) -> None:
        """Forget the state: the next step starts from zeros."""
        self._s.reset()

    @property
    def state_names(self) -> List[Tuple[str, str]]:
        """(state input, output) pairs carried from step to step, e.g. ("h0", "h_n")."""
        return self._s.state_names


class Model:
    """A recurrent model lowered for its hyperparameters. Make one with
    :func:`load` or :func:`from_source`."""

    def __init__(self, native: "_rnnc.RnncModel"):
        self._m = native
        #: The ``.rnn`` source of a model made by :func:`load_onnx`, else None.
        self.source: Optional[str] = None

    @property
    def name(self) -> str:
        return self._m.name

    @property
    def inputs(self) -> List[Tuple[str, List[Union[int, str]], str, bool]]:
        """(name, shape, dtype, has_default) per input; "B", "T", "S" are symbolic."""
        return self._m.inputs

    @property
    def outputs(self) -> List[Tuple[str, List[Union[int, str]], str]]:
        """(name, shape, dtype) per output, in order."""
        return self._m.outputs

    @property
    def weight_shapes(self) -> List[Tuple[str, List[int]]]:
        """(state_dict key, shape) per weight the model declares."""
        return self._m.weight_shapes

    def load_weights(self, weights: Any) -> "Model":
        """Weights from a safetensors file (a path), a dict of float32 arrays or
        tensors by state_dict key, a PyTorch ``state_dict``, or an ``nn.Module``.
        Every key and shape is checked against the model; returns the model."""
        if isinstance(weights, (str, os.PathLike)):
            self._m.load_weights_file(os.fspath(weights))
            return self
        label = "the weights dict"
        if not isinstance(weights, Mapping) and callable(getattr(weights, "state_dict", None)):
            weights, label = weights.state_dict(), "the module's state_dict"
        if not isinstance(weights, Mapping):
            raise TypeError(
                "load_weights takes a safetensors path, a dict of arrays, a state_dict or a "
                f"module, not {type(weights).__name__}"
            )
        self._m.load_weights_dict({k: _array(v) for k, v in weights.items()}, label)
        return self

    def run(self, backend: str = "cpu", threads: Optional[int] = None, opt: str = "O2",
            **inputs: Any) -> Dict[str, Any]:
        """Runs the model on its inputs by name (NumPy arrays or tensors: float32,
        int64 for token ids and lengths); returns a dict of NumPy arrays by output
        name. ``backend``: "cpu", "interp", "wgsl" or "cuda"; ``threads``: the CPU
        backend's threads (default: its cost model picks); ``opt``: "O0"-"O2" or a
        pass list. Code is compiled on first use at each shape and kept."""
        return self._m.run(backend, threads, opt, **{k: _array(v) for k, v in inputs.items()})

    def __call__(self, **inputs: Any) -> Dict[str, Any]:
        """``run`` on the CPU backend at -O2."""
        return self.run(**inputs)

    def stream(self, threads: Optional[int] = None, opt: str = "O2") -> Stream:
        """The model one time step per call on the CPU backend (see :class:`Stream`)."""
        return Stream(self._m.stream(threads, opt))

    def describe(self, backend: str = "cpu", threads: Optional[int] = None,
                 opt: str = "O2") -> str:
        """Where ``run`` with these settings runs: the CPU's kernels and threads,
        the GPU adapter."""
        return self._m.describe(backend, threads, opt)

    def object_file(self, batch: int = 1, seq: int = 100, opt: str = "O2") -> Dict[str, Any]:
        """Ahead of time for one batch size and length: ``{"object": bytes,
        "header": str, "prefix": str}``, the loaded weights built in; a C program
        links the object with ``cc`` and calls ``<prefix>_run``."""
        return self._m.object_file(batch, seq, opt)

    def gpu_kernels(self, target: str = "wgsl", batch: int = 1, seq: int = 100,
                    opt: str = "O2") -> Dict[str, str]:
        """The GPU kernels ("wgsl" or "cuda") for one batch size and length:
        ``{"file", "source", "manifest"}`` (the manifest is JSON)."""
        return self._m.gpu_kernels(target, batch, seq, opt)

    def passes(self, opt: str = "O2") -> str:
        """The pass table: nodes, products in and out of the loop, FLOPs and
        weight bytes per step after each pass of ``opt``."""
        return self._m.passes(opt)

    def ir(self, opt: str = "O2") -> str:
        """The graph IR after ``opt``, as text."""
        return self._m.ir(opt)

    def __repr__(self) -> str:
        ins = ", ".join(n for n, *_ in self.inputs)
        outs = ", ".join(n for n, *_ in self.outputs)
        return f"<rnnc.Model {self.name}({ins}) -> ({outs})>"


def load(path: Union[str, "os.PathLike[str]"], **params: Union[int, float, bool, str]) -> Model:
    """Loads the ``.rnn`` file at ``path`` (imports relative to it, ``std/...``
    built in) and lowers its model with the hyperparameters given as keywords."""
    return Model(_rnnc.load(os.fspath(path), **params))


def from_source(text: str, **params: Union[int, float, bool, str]) -> Model:
    """As :func:`load`, from source text."""
    return Model(_rnnc.from_source(text, **params))


def load_onnx(path: Union[str, "os.PathLike[str]"]) -> Model:
    """Imports the ONNX model at ``path`` (as ``rnnc import`` does) with the weights
    inside it loaded. The ``.rnn`` source import wrote is ``model.source``."""
    native, source = _rnnc.load_onnx(os.fspath(path))
    m = Model(native)
    m.source = source
    return m
