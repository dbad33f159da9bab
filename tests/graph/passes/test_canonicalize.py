"""canonicalize(): one op per meaning, safe in-place rewrites, defaults dropped; outputs stay equal."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import torch
from torch import nn

from mad.graph import ArchGraph, TensorSpec, get_op, op_names
from mad.graph.ops.vocab import op_slots
from mad.graph.passes import canonicalize
from mad.graph.passes.canonicalize import INPLACE, REWRITES, SYNONYMS


def _flat(out) -> list[torch.Tensor]:
    if isinstance(out, dict):
        out = list(out.values())
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _assert_same_outputs(before: ArchGraph, after: ArchGraph, seed: int = 1) -> None:
    """Both graphs' modules, with the same parameters and inputs, give equal outputs and buffers."""
    m0, m1 = before.to_module().eval(), after.to_module().eval()
    m1.load_state_dict(m0.state_dict())
    x0, x1 = before.example_inputs(seed=seed), after.example_inputs(seed=seed)
    with torch.no_grad():
        torch.manual_seed(0)
        a = _flat(m0(*x0))
        torch.manual_seed(0)
        b = _flat(m1(*x1))
    assert len(a) == len(b)
    for u, v in zip(a, b):
        torch.testing.assert_close(v, u, equal_nan=True)
    for (k, u), (_, v) in zip(m0.state_dict().items(), m1.state_dict().items()):
        torch.testing.assert_close(v, u, msg=f"buffer {k} differs")
    for u, v in zip(x0, x1):
        torch.testing.assert_close(v, u)  # graph inputs are never written


def _check(g: ArchGraph) -> ArchGraph:
    """Canonicalize a copy of ``g``: valid, idempotent, same outputs; returns the copy."""
    g.infer()
    g.validate()
    c = canonicalize(g.copy())
    c.validate()
    h, text = c.wl_hash(), c.to_json()
    canonicalize(c)
    assert c.wl_hash() == h and c.to_json() == text  # a second run changes nothing
    _assert_same_outputs(g, c)
    return c


def _one(op: str, attrs: dict, inputs: list[tuple[list[int], str]], pre: str | None = None) -> ArchGraph:
    """A graph of inputs -> (optional ``pre`` op on the first input) -> ``op`` -> output."""
    g = ArchGraph(op, inputs=[TensorSpec(f"x{i}", s, d) for i, (s, d) in enumerate(inputs)])
    ids = [g.add_node("input", attrs={"name": f"x{i}"}) for i in range(len(inputs))]
    if pre:
        ids[0] = g.add_node(pre, [ids[0]])
    g.set_outputs([g.add_node(op, ids, id="n", attrs=attrs)])
    return g


F, B = "float32", "bool"
SYNONYM_CASES = [
    ("concat", {"tensors": ["%", "%"], "dim": 1}, [([2, 3], F)] * 2, "cat", {"tensors": ["%", "%"], "dim": 1}),
    ("concatenate", {"tensors": ["%", "%"]}, [([2, 3], F)] * 2, "cat", {"tensors": ["%", "%"]}),
    ("multiply", {}, [([2, 3], F)] * 2, "mul", {}),
    ("clip", {"min": -0.5, "max": 0.5}, [([2, 3], F)], "clamp", {"min": -0.5, "max": 0.5}),
    ("view", {"size": [3, 2]}, [([2, 3], F)], "reshape", {"shape": [3, 2]}),
    ("_unsafe_view", {"size": [6]}, [([2, 3], F)], "reshape", {"shape": [6]}),
    ("view_as", {}, [([2, 3], F), ([6], F)], "reshape_as", {}),
    ("lift_fresh_copy", {}, [([2, 3], F)], "clone", {}),
    ("and", {}, [([2, 3], B)] * 2, "bitwise_and", {}),
    ("or", {}, [([2, 3], B)] * 2, "bitwise_or", {}),
    ("xor", {}, [([2, 3], B)] * 2, "bitwise_xor", {}),
    ("max_other", {}, [([2, 3], F)] * 2, "maximum", {}),
    ("min_other", {}, [([2, 3], F)] * 2, "minimum", {}),
    ("div_mode", {}, [([2, 3], F)] * 2, "div", {}),
    ("div_mode", {"rounding_mode": "floor"}, [([2, 3], F)] * 2, "div_mode", {"rounding_mode": "floor"}),
    ("std_dim", {"dim": [1], "unbiased": False}, [([2, 3], F)], "std", {"dim": [1], "correction": 0}),
    ("var_dim", {"dim": [1], "unbiased": True, "keepdim": True}, [([2, 3], F)], "var", {"dim": [1], "keepdim": True}),
    ("squeeze_dims", {"dim": [1]}, [([2, 1, 3], F)], "squeeze", {"dim": 1}),
    ("squeeze_dims", {"dim": [1, 2]}, [([2, 1, 1], F)], "squeeze_dims", {"dim": [1, 2]}),
]


@pytest.mark.parametrize("op,attrs,inputs,want_op,want_attrs", SYNONYM_CASES, ids=[c[0] for c in SYNONYM_CASES])
def test_synonyms_become_one_op(op, attrs, inputs, want_op, want_attrs):
    c = _check(_one(op, attrs, inputs))
    assert (c.nodes["n"].op, c.nodes["n"].attrs) == (want_op, want_attrs)


def test_unsafe_view_stays_where_an_in_place_op_writes_through_it():
    # relu(x) -> _unsafe_view -> fill_ (kept: its input is a graph output) ; _unsafe_view is fresh, reshape is not
    g = ArchGraph("uv", inputs=[TensorSpec("x", [2, 3])])
    x = g.add_node("input", attrs={"name": "x"})
    r = g.add_node("relu", [x], id="r")
    v = g.add_node("_unsafe_view", [r], id="v", attrs={"size": [6]})
    f = g.add_node("fill_", [v], id="f", attrs={"value": 0.0})
    g.set_outputs([r, v, f])
    c = _check(g)
    assert c.nodes["v"].op == "_unsafe_view" and c.nodes["f"].op == "fill_"


# ----------------------------------------------------------------- in-place ops


def _inplace_graph(kind: str) -> ArchGraph:
    g = ArchGraph(kind, inputs=[TensorSpec("x", [2, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    h = g.add_node("relu", [x], id="h")
    if kind == "chain":  # relu(x).add_(1).mul_(2): both become out-of-place in one run
        a = g.add_node("add_", [h], id="a", attrs={"other": 1.0})
        g.set_outputs([g.add_node("mul_", [a], id="m", attrs={"other": 2.0})])
    elif kind == "zero":
        g.set_outputs([g.add_node("zero_", [h], id="a")])
    elif kind == "graph_input":  # x.add_(1) writes the caller's tensor
        g.set_outputs([g.add_node("add_", [x], id="a", attrs={"other": 1.0})])
    elif kind == "other_reader":  # h is read again after the write
        a = g.add_node("add_", [h], id="a", attrs={"other": 1.0})
        g.set_outputs([g.add_node("mul", [a, h], id="m")])
    elif kind == "output":  # h is an output, so the write is observed
        g.set_outputs([g.add_node("add_", [h], id="a", attrs={"other": 1.0}), h])
    elif kind == "view":  # h[:, :2].fill_(0) writes into h through a view
        s = g.add_node("slice", [h], id="s", attrs={"dim": 1, "start": 0, "end": 2})
        f = g.add_node("fill_", [s], id="a", attrs={"value": 0.0})
        g.set_outputs([g.add_node("add", [f, f], id="o"), h])
    elif kind == "buffer":  # running statistic: copy_ into a buffer stays
        p = g.add_node("parameter", id="p", params={"data": [2, 4]}, attrs={"kind": "buffer"}, scope="stat")
        g.set_outputs([g.add_node("copy_", [p, h], id="a"), h])
    elif kind == "dtype":  # float16.add_(float32) stays float16; add() would promote
        c = g.add_node("_to_copy", [x], id="c", attrs={"dtype": "float16"})
        g.set_outputs([g.add_node("add_", [c, h], id="a")])
    return g


@pytest.mark.parametrize(
    "kind,want",
    [
        ("chain", {"a": "add", "m": "mul"}),
        ("zero", {"a": "fill"}),
        ("graph_input", {"a": "add_"}),
        ("other_reader", {"a": "add_"}),
        ("output", {"a": "add_"}),
        ("view", {"a": "fill_"}),
        ("buffer", {"a": "copy_"}),
        ("dtype", {"a": "add_"}),
    ],
)
def test_in_place_ops_become_out_of_place_only_when_safe(kind, want):
    c = _check(_inplace_graph(kind))
    assert {k: c.nodes[k].op for k in want} == want
    if kind == "zero":
        assert c.nodes["a"].attrs == {"value": 0}


# ----------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    "op,attrs,kept",
    [
        ("leaky_relu", {"negative_slope": 0.01}, {}),
        ("leaky_relu", {"negative_slope": 0.2}, {"negative_slope": 0.2}),
        ("celu", {"alpha": 1.0}, {}),
        ("celu", {"alpha": 1}, {"alpha": 1}),  # int 1 is not the float default 1.0
        ("add", {"other": 2.0, "alpha": 1}, {"other": 2.0}),
        ("add", {"alpha": True}, {"alpha": True}),  # True is not 1 (bool inputs)
        ("softmax", {"dim": -1, "dtype": None}, {"dim": -1}),  # dim is required and stays
        ("gelu", {"approximate": "none"}, {}),
        ("linear", {"bias": None}, {}),  # an absent optional tensor written out
    ],
)
def test_default_attrs_are_dropped_with_type_equality(op, attrs, kept):
    inputs = {"linear": [([2, 3], F), ([4, 3], F)], "add": [([2, 3], B)] * 2}.get(op, [([2, 3], F)])
    if op == "add" and "other" in attrs:
        inputs = [([2, 3], F)]
    c = _check(_one(op, attrs, inputs))
    assert c.nodes["n"].attrs == kept


def test_factory_defaults_and_none_equivalents_are_dropped():
    g = ArchGraph("ar", inputs=[TensorSpec("x", [5])])
    x = g.add_node("input", attrs={"name": "x"})
    a = g.add_node("arange", id="a", attrs={"end": 5, "dtype": "float32", "layout": "strided", "pin_memory": False})
    p = g.add_node("parameter", id="p", params={"data": [5]}, attrs={"kind": "parameter", "persistent": True})
    g.set_outputs([g.add_node("add", [g.add_node("add", [x, a]), p])])
    c = _check(g)
    assert c.nodes["a"].attrs == {"end": 5, "dtype": "float32"} and c.nodes["p"].attrs == {}


# ----------------------------------------------------------------- the tables


def test_tables_map_onto_registered_ops_with_the_same_arguments():
    registered = set(op_names())
    for src, (dst, renames) in SYNONYMS.items():
        assert {src, dst} <= registered
        renamed = [renames.get(k, k) for k in op_slots(src)]
        assert renamed == [k for k in op_slots(dst) if k in renamed], src  # same order
        extra = [k for k in op_slots(dst) if k not in renamed]  # e.g. clone's memory_format
        assert not any(get_op(dst).attrs[k].required for k in extra), src
    for src, (dst, extra) in INPLACE.items():
        assert {src, dst} <= registered
        if not extra:
            assert op_slots(src) == op_slots(dst), src
    assert set(REWRITES) <= registered
    mutating = {n for n in registered if getattr(getattr(get_op(n).target, "_schema", None), "is_mutable", False)}
    assert mutating - set(INPLACE) == {"index_copy_"}  # no out-of-place index_copy in the vocabulary


# ----------------------------------------------------------------- real models


class InPlaceCNN(nn.Module):
    """In-place ReLUs, a residual ``+=``, and buffers written during forward (which must stay)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        self.register_buffer("calls", torch.zeros(()))
        self.register_buffer("last_mean", torch.zeros(8))

    def forward(self, x):
        h = self.act(self.bn(self.conv1(x)))
        r = self.conv2(h)
        r += h
        r = torch.relu_(r)
        self.calls.add_(1)
        self.last_mean.copy_(r.mean((0, 2, 3)))
        return self.head(r.mean((2, 3)).view(r.shape[0], -1))


def _capture(name: str):
    if name == "cnn":
        from mad.code2graph import from_module

        model = InPlaceCNN().eval()
        return model, from_module(model, (torch.randn(2, 3, 8, 8),)), (torch.randn(2, 3, 8, 8),), {}
    from mad.code2graph.hf import build_hf, from_hf

    model, inputs = build_hf(name, seed=0)
    return model, from_hf(name, seed=0), (), inputs


@pytest.mark.parametrize("name", ["bert", "gpt2", "cnn"])
def test_real_models_keep_their_outputs(name):
    from mad.code2graph import flatten_output

    model, g, args, kwargs = _capture(name)
    before = Counter(n.op for n in g)
    c = canonicalize(g.copy())
    c.validate()
    after = Counter(n.op for n in c)
    assert not set(after) & (set(SYNONYMS) | set(REWRITES)), after
    h = c.wl_hash()
    assert canonicalize(c.copy()).wl_hash() == h
    if name == "cnn":  # relu_ and the residual add_ become out-of-place; the buffer writes stay
        assert before["relu_"] + before["add_"] > 0 and after["relu_"] == 0
        assert after["copy_"] == before["copy_"] == 1 and after["add_"] == 1  # calls += 1
    m = c.to_module()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    m.load_state_dict(state)
    with torch.no_grad():
        want = flatten_output(model(*args, **kwargs))
        got = flatten_output(m(*args, **kwargs))
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-5)
    for k, v in model.state_dict().items():  # buffers written by forward are written alike
        torch.testing.assert_close(m.state_dict()[k], v)


def test_shipped_graphs_with_in_place_ops():
    from mad.data import load_default

    texts = load_default()["train"]["graph"]
    picked = [t for t in texts if any(op in t for op in ('"add_"', '"mul_"', '"copy_"', '"div_"', '"relu_"'))]
    picked = sorted(picked, key=len)[:6]
    assert picked
    for text in picked:
        _check(ArchGraph.from_json(text))


def test_linear_time_on_a_2000_node_graph():
    g = ArchGraph("long", inputs=[TensorSpec("x", [2, 8])])
    h = g.add_node("input", attrs={"name": "x"})
    while len(g) < 2000:
        r = g.add_node("relu", [h])
        a = g.add_node("add_", [r], attrs={"other": 1.0, "alpha": 1})
        v = g.add_node("view", [a], attrs={"size": [16]})
        h = g.add_node("view", [v], attrs={"size": [2, 8]})
    g.set_outputs([h])
    g.infer()
    best = float("inf")
    for _ in range(3):
        c = g.copy()
        t = time.perf_counter()
        canonicalize(c)
        best = min(best, time.perf_counter() - t)
    assert Counter(n.op for n in c)["add"] == 500
    assert best < 0.1, f"canonicalize took {best:.3f} s on {len(g)} nodes"
