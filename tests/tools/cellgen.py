#!/usr/bin/env python3
"""Random well-formed cells and models in the rnnc language, each with random
weights and inputs and the outputs NumPy computes for it, for tests/random_cells.rs.

Every cell is built as an expression tree here; the tree is written out as `.rnn`
source and evaluated with NumPy (float64) from the same tree, so the reference never
goes through rnnc's parser, IR or interpreter.

Cells have 1-3 states; their statements draw from products of any value or of a
concatenation (`W @ [h, x] + b`), `chunk`, activations (the IR's own and the
composed ones that are continuous), elementwise parameters, constants,
`layer_norm`, `softmax`, slices and per-example scalars (`h * x[0]`); the next
states are gated or squashed so that values stay in range. Models run the cell with
`scan` (forward or reverse, zeros, a given or a learned initial state) or with `rnn`
(1-2 layers, one or two directions), with or without `lengths`.

    python3 tests/tools/cellgen.py --seed 1 --count 300 --out DIR

writes DIR/case_0000/ … : model.rnn, weights.safetensors, input.npy (and
lengths.npy, h0.npy where used), want_<output>.npy per output and meta.json
({"params": {...}, "inputs": [...], "outputs": [...], "features": [...]}).
Needs NumPy only.
"""
import argparse
import json
import os
import struct

import numpy as np

EPS = 1e-5  # layer_norm's default


# ---------------------------------------------------------------- NumPy semantics
def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def softplus(v, beta=1.0):
    return np.logaddexp(0.0, beta * v) / beta


ACTIVATIONS = {
    # name: (source template, NumPy function)
    "sigmoid": ("sigmoid({})", sigmoid),
    "tanh": ("tanh({})", np.tanh),
    "relu": ("relu({})", lambda v: np.maximum(v, 0.0)),
    "softsign": ("softsign({})", lambda v: v / (1.0 + np.abs(v))),
    "softplus": ("softplus({})", softplus),
    "softplus2": ("softplus({}, beta = 2)", lambda v: softplus(v, 2.0)),
    "elu": ("elu({}, alpha = 0.5)", lambda v: np.where(v > 0, v, 0.5 * (np.exp(np.minimum(v, 0)) - 1))),
    "leaky_relu": ("leaky_relu({})", lambda v: np.where(v >= 0, v, 0.01 * v)),
    "hard_sigmoid": ("hard_sigmoid({})", lambda v: np.clip(0.2 * v + 0.5, 0.0, 1.0)),
    "scaled_tanh": ("scaled_tanh({}, alpha = 1.5, beta = 0.5)", lambda v: 1.5 * np.tanh(0.5 * v)),
    "abs": ("abs({})", np.abs),
    "square": ("({}) ** 2", lambda v: v * v),
}


def layer_norm(v):
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(var + EPS)


def softmax(v):
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------- expression trees
class Node:
    """A per-example value [B, width]: `src` in the language, `ev(env, w)` in NumPy.
    `sym` counts how often input_size is in `width` (concatenations of x), which
    `rnn`'s upper layers change."""

    def __init__(self, src, width, ev, sym=0):
        self.src, self.width, self.ev, self.sym = src, width, ev, sym


class Cell:
    """One random cell: its declarations, statements and the trees behind them."""

    def __init__(self, rng, input_size, hidden_size, n_states, x_in_products_only):
        self.rng = rng
        self.I, self.H = input_size, hidden_size
        # Under `rnn`, x's width changes with the layer: it may only be multiplied.
        self.x_in_products_only = x_in_products_only
        self.params = []  # (name, shape expression, fn(input_size) -> shape)
        self.lines = []  # statements, in order
        self.steps = []  # (names, fn(env, w) -> arrays) in order
        self.features = set()
        widths = [hidden_size * int(rng.integers(1, 3)) for _ in range(n_states)]
        self.states = [(f"s{k}", w) for k, w in enumerate(widths)]
        self.pool = [Node("x", input_size, lambda e, w: e["x"], sym=1)]
        for name, wd in self.states:
            self.pool.append(Node(name, wd, (lambda n: lambda e, w: e[n])(name)))
        self.counter = 0

    # Sizes are written with the hyperparameters, as a person would, so that `rnn`
    # can resize the input for its upper layers.
    def size(self, n, sym=0):
        rest = n - sym * self.I
        terms = []
        if sym:
            terms.append("input_size" if sym == 1 else f"{sym} * input_size")
        if rest and rest % self.H == 0:
            k = rest // self.H
            terms.append("hidden_size" if k == 1 else f"{k} * hidden_size")
        elif rest:
            terms.append(str(rest))
        return " + ".join(terms)

    def fresh(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def param(self, prefix, shape, sym=0):
        """A parameter; `sym` input_size terms in its last axis."""
        name = self.fresh(prefix)
        dims = ", ".join([self.size(d) for d in shape[:-1]] + [self.size(shape[-1], sym)])
        fixed = shape[-1] - sym * self.I

        def shape_for(input_size, shape=tuple(shape), fixed=fixed, sym=sym):
            return shape[:-1] + (fixed + sym * input_size,)

        self.params.append((name, dims, shape_for))
        return name

    def pick(self, width=None, any_x=False):
        cands = [v for v in self.pool if (width is None or v.width == width)
                 and (any_x or not (self.x_in_products_only and v.sym))]
        return cands[int(self.rng.integers(len(cands)))] if cands else None

    def bind(self, node, prefix="v"):
        """`name = node` as a statement; the name joins the pool."""
        name = self.fresh(prefix)
        self.lines.append(f"{name} = {node.src}")
        self.steps.append(([name], (lambda f: lambda e, w: [f(e, w)])(node.ev)))
        v = Node(name, node.width, (lambda n: lambda e, w: e[n])(name))
        self.pool.append(v)
        return v

    # ------------------------------------------------------------ forms
    def product(self, out):
        rng = self.rng
        if rng.random() < 0.5 and len(self.pool) > 1:
            a, b = self.pick(any_x=True), self.pick(any_x=True)
            operand = Node(f"[{a.src}, {b.src}]", a.width + b.width,
                           (lambda a, b: lambda e, w: np.concatenate([a.ev(e, w), b.ev(e, w)], -1))(a, b),
                           sym=a.sym + b.sym)
            self.features.add("product of a concatenation")
        else:
            operand = self.pick(any_x=True)
            self.features.add("product")
        W = self.param("W", (out, operand.width), operand.sym)
        src = f"{W} @ {operand.src}"
        ev = (lambda o, W: lambda e, w: o.ev(e, w) @ w[W].T)(operand, W)
        if rng.random() < 0.7:
            bias = self.param("b", (out,))
            src += f" + {bias}"
            ev = (lambda f, bias: lambda e, w: f(e, w) + w[bias])(ev, bias)
        return Node(src, out, ev)

    def activation(self, v):
        name = list(ACTIVATIONS)[int(self.rng.integers(len(ACTIVATIONS)))]
        tmpl, f = ACTIVATIONS[name]
        self.features.add(name)
        return Node(tmpl.format(v.src), v.width, (lambda v, f: lambda e, w: f(v.ev(e, w)))(v, f))

    def elementwise(self, a):
        rng = self.rng
        r = rng.random()
        b = self.pick(a.width)
        if r < 0.3 and b is not None:
            op = ["+", "-", "*"][int(rng.integers(3))]
            fn = {"+": np.add, "-": np.subtract, "*": np.multiply}[op]
            self.features.add(f"elementwise {op}")
            return Node(f"({a.src} {op} {b.src})", a.width,
                        (lambda a, b, fn: lambda e, w: fn(a.ev(e, w), b.ev(e, w)))(a, b, fn))
        if r < 0.55:
            p = self.param("p", (a.width,))
            self.features.add("elementwise parameter")
            return Node(f"({p} * {a.src})", a.width, (lambda a, p: lambda e, w: w[p] * a.ev(e, w))(a, p))
        if r < 0.7:
            c = round(float(rng.uniform(-1.5, 1.5)), 2)
            self.features.add("constant")
            return Node(f"({c} * {a.src} + 0.25)", a.width, (lambda a, c: lambda e, w: c * a.ev(e, w) + 0.25)(a, c))
        if r < 0.85:
            s = self.pick()
            k = int(rng.integers(s.width))
            self.features.add("per-example scalar")
            return Node(f"({a.src} * {s.src}[{k}])", a.width,
                        (lambda a, s, k: lambda e, w: a.ev(e, w) * s.ev(e, w)[:, k:k + 1])(a, s, k))
        if a.width >= 3 and r < 0.93:
            self.features.add("layer_norm")
            return Node(f"layer_norm({a.src})", a.width, (lambda a: lambda e, w: layer_norm(a.ev(e, w)))(a))
        self.features.add("softmax")
        return Node(f"softmax({a.src}, dim = -1)", a.width, (lambda a: lambda e, w: softmax(a.ev(e, w)))(a))

    def statement(self):
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            out = self.H * int(rng.integers(1, 4))
            v = self.product(out)
            if rng.random() < 0.7:
                v = self.activation(v)
            self.bind(v)
        elif r < 0.5:
            # chunk a product into gates
            n = int(rng.integers(2, 4))
            v = self.product(n * self.H)
            names = [self.fresh("g") for _ in range(n)]
            self.lines.append(f"{', '.join(names)} = chunk({v.src}, {n})")
            H = self.H
            self.steps.append((names, (lambda v, n, H: lambda e, w: [
                v.ev(e, w)[:, i * H:(i + 1) * H] for i in range(n)])(v, n, H)))
            for nm in names:
                g = Node(nm, H, (lambda nm: lambda e, w: e[nm])(nm))
                self.pool.append(g)
            self.features.add("chunk")
        elif r < 0.6:
            a = self.pick()
            if a.width >= 2:
                i = int(rng.integers(a.width - 1))
                j = int(rng.integers(i + 1, a.width + 1))
                self.features.add("slice")
                self.bind(Node(f"{a.src}[{i}:{j}]", j - i, (lambda a, i, j: lambda e, w: a.ev(e, w)[:, i:j])(a, i, j)))
        elif r < 0.8:
            self.bind(self.activation(self.pick()))
        else:
            self.bind(self.elementwise(self.pick()))

    def next_state(self, name, width):
        rng = self.rng
        cand = self.pick(width)
        if cand is None or rng.random() < 0.4:
            cand = self.product(width)
        cand = Node(f"tanh({cand.src})", width, (lambda c: lambda e, w: np.tanh(c.ev(e, w)))(cand))
        if rng.random() < 0.5:
            z = self.product(width)
            zname = self.fresh("z")
            self.lines.append(f"{zname} = sigmoid({z.src})")
            self.steps.append(([zname], (lambda z: lambda e, w: [sigmoid(z.ev(e, w))])(z)))
            self.lines.append(f"{name}' = (1 - {zname}) * {name} + {zname} * {cand.src}")
            self.steps.append(([name + "'"], (lambda z, n, c: lambda e, w: [
                (1 - e[z]) * e[n] + e[z] * c.ev(e, w)])(zname, name, cand)))
            self.features.add("gated update")
        else:
            self.lines.append(f"{name}' = {cand.src}")
            self.steps.append(([name + "'"], (lambda c: lambda e, w: [c.ev(e, w)])(cand)))

    def build(self, n_statements, n_emits):
        for _ in range(n_statements):
            self.statement()
        for name, wd in self.states:
            self.next_state(name, wd)
        self.pool.extend(Node(n + "'", wd, (lambda m: lambda e, w: e[m])(n + "'")) for n, wd in self.states)
        self.emits = []
        for _ in range(n_emits):
            v = self.pick()
            if v.src == "x":  # an emit that reads the state
                v = self.pool[-1]
            self.emits.append(v)
        self.features.add(f"{len(self.states)} states")

    def source(self, cell_name):
        out = [f"cell {cell_name}(input_size: int, hidden_size: int) {{",
               "    input x: [input_size]"]
        for name, wd in self.states:
            out.append(f"    state {name}: [{self.size(wd)}]")
        for name, dims, _ in self.params:
            out.append(f"    param {name}: [{dims}]")
        out += [f"    {line}" for line in self.lines]
        out += [f"    emit {e.src}" for e in self.emits]
        out.append("}")
        return "\n".join(out)

    def step(self, x, states, w):
        """One step for the batch: (emits, next states)."""
        env = {"x": x}
        for (name, _), s in zip(self.states, states):
            env[name] = s
        for names, fn in self.steps:
            for n, v in zip(names, fn(env, w)):
                env[n] = v
        return [e.ev(env, w) for e in self.emits], [env[n + "'"] for n, _ in self.states]


def run_scan(cell, w, xs, init, reverse, lengths):
    """The cell over [B, T, I]: emits [B, T, …] and final states, with PyTorch's
    packed-sequence semantics where `lengths` is given."""
    B, T, _ = xs.shape
    states = [s.copy() for s in init]
    emits = [np.zeros((B, T, e.width)) for e in cell.emits]
    lengths = np.full(B, T) if lengths is None else lengths
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        out, nxt = cell.step(xs[:, t], states, w)
        live = (t < lengths)[:, None].astype(np.float64)
        states = [live * n + (1 - live) * s for n, s in zip(nxt, states)]
        for k, o in enumerate(out):
            emits[k][:, t] = live * o
    return emits, states


def save_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def make_case(rng, out_dir):
    I, H = int(rng.integers(2, 7)), int(rng.integers(2, 6))
    B, T = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    use_rnn = rng.random() < 0.3
    n_states = int(rng.integers(1, 4))
    cell = Cell(rng, I, H, n_states, use_rnn)
    cell.build(int(rng.integers(1, 7)), 1 if use_rnn else int(rng.integers(1, 3)))
    use_lengths = rng.random() < 0.25
    features = set(cell.features)
    x = rng.standard_normal((B, T, I))
    lengths = rng.integers(1, T + 1, size=B) if use_lengths else None
    inputs = {"input": x}
    model = [f"model M(input_size: int, hidden_size: int) {{", "    input input: [B, T, input_size]"]
    if use_lengths:
        model.append("    input lengths: i64[B]")
        inputs["lengths"] = lengths
        features.add("lengths")
    lengths_arg = ", lengths = lengths" if use_lengths else ""
    weights, outputs = {}, {}

    def draw(prefix, suffix, cell_for):
        got = {}
        for name, _, shape_for in cell_for.params:
            shape = shape_for(cell_for.I)
            fan_in = shape[-1] if len(shape) == 2 else 1
            got[name] = rng.uniform(-1, 1, size=shape) / np.sqrt(fan_in)
            weights[f"{prefix}{name}{suffix}"] = got[name]
        return got

    if use_rnn:
        layers, dirs = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        features.add(f"rnn layers={layers} directions={dirs}")
        names = ", ".join(["out"] + [f"{n}_n" for n, _ in cell.states])
        model.append(f"    {names} = rnn(C(input_size, hidden_size), input, num_layers = {layers}, "
                     f"bidirectional = {'true' if dirs == 2 else 'false'}{lengths_arg})")
        model.append("    output out")
        model += [f"    output {n}_n" for n, _ in cell.states]
        seq, finals = x, [[] for _ in cell.states]
        layer_cell = cell
        for l in range(layers):
            outs = []
            for d in range(dirs):
                w = draw("", f"_l{l}" + ("_reverse" if d else ""), layer_cell)
                init = [np.zeros((B, wd)) for _, wd in layer_cell.states]
                em, st = run_scan(layer_cell, w, seq, init, d == 1, lengths)
                outs.append(em[0])
                for k, s in enumerate(st):
                    finals[k].append(s)
            seq = np.concatenate(outs, -1)
            if l + 1 < layers:
                # The upper layers read D * emit-width features: the same tree
                # with input_size rebound, so its input products get new shapes.
                layer_cell = rebuilt(cell, seq.shape[-1])
        outputs["out"] = seq
        for (n, _), f in zip(cell.states, finals):
            outputs[f"{n}_n"] = np.stack(f, 0)
    else:
        reverse = rng.random() < 0.3
        init_kind = ["zeros", "given", "learned"][int(rng.integers(3))]
        if reverse:
            features.add("reverse scan")
        emits = ", ".join(f"y{k}" for k in range(len(cell.emits)))
        finals = ", ".join(f"{n}_n" for n, _ in cell.states)
        init = [np.zeros((B, wd)) for _, wd in cell.states]
        init_arg = ""
        if init_kind == "given":
            for n, wd in cell.states:
                model.append(f"    input {n}_0: [B, {cell.size(wd)}]")
            init = [rng.standard_normal((B, wd)) * 0.5 for _, wd in cell.states]
            for (n, _), v in zip(cell.states, init):
                inputs[f"{n}_0"] = v
            init_arg = ", init = (" + ", ".join(f"{n}_0" for n, _ in cell.states) + ",)"
            features.add("given initial state")
        elif init_kind == "learned":
            for n, wd in cell.states:
                model.append(f"    param {n}_init: [{cell.size(wd)}]")
                weights[f"{n}_init"] = rng.uniform(-0.5, 0.5, size=(wd,))
            init = [np.broadcast_to(weights[f"{n}_init"], (B, wd)) for n, wd in cell.states]
            init_arg = ", init = (" + ", ".join(f"{n}_init" for n, _ in cell.states) + ",)"
            features.add("learned initial state")
        model.append(f"    {emits}, {finals} = scan(C(input_size, hidden_size), input{init_arg}"
                     f"{', reverse = true' if reverse else ''}{lengths_arg})")
        model += [f"    output y{k}" for k in range(len(cell.emits))]
        model += [f"    output {n}_n" for n, _ in cell.states]
        w = draw("", "", cell)
        em, st = run_scan(cell, w, x, init, reverse, lengths)
        for k, e in enumerate(em):
            outputs[f"y{k}"] = e
        for (n, _), s in zip(cell.states, st):
            outputs[f"{n}_n"] = s
    model.append("}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.rnn"), "w") as f:
        f.write("// Generated by tests/tools/cellgen.py.\n")
        f.write(cell.source("C") + "\n\n" + "\n".join(model) + "\n")
    save_safetensors(os.path.join(out_dir, "weights.safetensors"), weights)
    for name, v in inputs.items():
        arr = v.astype(np.int64) if name == "lengths" else v.astype(np.float32)
        np.save(os.path.join(out_dir, f"{name}.npy"), arr)
    for name, v in outputs.items():
        np.save(os.path.join(out_dir, f"want_{name}.npy"), np.asarray(v, dtype=np.float64))
    meta = {"params": {"input_size": I, "hidden_size": H}, "batch": B, "time": T,
            "inputs": sorted(inputs), "outputs": list(outputs), "features": sorted(features)}
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


def rebuilt(cell, input_size):
    """The cell's tree with a new input width, as `rnn` runs it in its upper
    layers: the same statements; its parameters' shapes follow (`params`)."""
    clone = Cell.__new__(Cell)
    clone.__dict__.update(cell.__dict__)
    clone.I = input_size
    return clone


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for i in range(args.count):
        rng = np.random.default_rng([args.seed, i])
        make_case(rng, os.path.join(args.out, f"case_{i:04d}"))


if __name__ == "__main__":
    main()
