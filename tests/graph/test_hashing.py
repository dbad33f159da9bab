"""wl_hash: invariant under ids / order / names, sensitive to ops, attrs, params and edges."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import arch_graphs, relabel

from mad.graph import ArchGraph, TensorSpec
from mad.graph.hashing import wl_hash
from mad.graph.module import encode_tensor


def _block(ids: bool = False, act: str = "relu", stride: list[int] | None = None, swap: bool = False) -> ArchGraph:
    """A small conv block with a residual add and a sub (port order matters)."""
    g = ArchGraph("block", inputs=[TensorSpec("img", [1, 3, 6, 6])])
    x = g.add_node("input", attrs={"name": "img"})
    attrs = {"padding": [1, 1]}
    if stride is not None:
        attrs["stride"] = stride
    c = g.add_node("conv2d", [x], attrs=attrs, params={"weight": [3, 3, 3, 3], "bias": [3]}, scope="conv")
    a = g.add_node(act, [c])
    r = g.add_node("add", [a, x])
    s = g.add_node("sub", [x, r] if swap else [r, x])
    g.set_outputs([s])
    return g


def test_hash_is_a_stable_hex_string():
    h = wl_hash(_block())
    assert isinstance(h, str) and len(h) == 32 and int(h, 16) >= 0
    assert _block().wl_hash() == h
    assert wl_hash(_block(), iterations=0) != wl_hash(_block(), iterations=3)


def test_hash_is_the_same_in_another_process():
    code = (
        "import sys; sys.path.insert(0, 'tests/graph'); from test_hashing import _block; "
        "print(_block().wl_hash())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123"}
    )
    assert out.stdout.strip() == _block().wl_hash()


def test_ignores_names_scopes_shapes_and_values():
    g = _block()
    h = g.wl_hash()
    g.name, g.source = "other", "generated"
    g.nodes["conv2d_1"].scope = "backbone.stem"
    g.nodes["conv2d_1"].param_names = {"weight": "w", "bias": "b"}
    g.inputs[0].name = "pixels"
    g.nodes["input_0"].attrs["name"] = "pixels"
    g.infer()  # recorded shapes are derived, not hashed
    assert g.wl_hash() == h


def test_explicit_default_attrs_hash_like_missing_ones():
    assert _block(stride=[1, 1]).wl_hash() == _block().wl_hash()
    assert _block(stride=[2, 2]).wl_hash() != _block().wl_hash()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda: _block(act="gelu"), id="op"),
        pytest.param(lambda: _block(stride=[2, 2]), id="attr"),
        pytest.param(lambda: _block(swap=True), id="port-order"),
    ],
)
def test_changes_change_the_hash(change):
    assert change().wl_hash() != _block().wl_hash()


def test_param_shape_input_shape_and_edge_changes_change_the_hash():
    base = _block().wl_hash()
    g = _block()
    g.nodes["conv2d_1"].params.pop("bias")
    assert g.wl_hash() != base
    g = _block()
    g.inputs[0].shape = [2, 3, 6, 6]
    assert g.wl_hash() != base
    g = _block()  # rewire the residual: add(relu, conv) instead of add(relu, input)
    g.edges = [e if not (e.dst == "add_3" and e.port == 1) else type(e)("conv2d_1", "add_3", 1) for e in g.edges]
    g._invalidate()
    assert g.wl_hash() != base
    g = _block()
    g.add_node("relu", ["sub_4"])  # an extra (even dangling) node
    assert g.wl_hash() != base
    g = _block()
    g.set_outputs(["sub_4"], kind="tuple")
    assert g.wl_hash() != base


def test_distinguishes_deep_structure():
    """Two chains with the same op multiset in a different order."""

    def chain(ops):
        g = ArchGraph(inputs=[TensorSpec("x", [4])])
        n = g.add_node("input", attrs={"name": "x"})
        for op in ops:
            n = g.add_node(op, [n])
        g.set_outputs([n])
        return g

    assert chain(["relu", "gelu", "relu", "tanh"]).wl_hash() != chain(["relu", "relu", "gelu", "tanh"]).wl_hash()
    assert chain(["relu", "gelu"]).wl_hash() == chain(["relu", "gelu"]).wl_hash()


def test_tied_weights_change_the_hash():
    def two_linears(tied: bool, alias: bool = False) -> ArchGraph:
        g = ArchGraph(inputs=[TensorSpec("x", [2, 4])])
        x = g.add_node("input", attrs={"name": "x"})
        a = g.add_node("linear", [x], params={"weight": [4, 4]}, scope="a")
        names = {"weight": "a.weight"} if tied else {}
        b = g.add_node("linear", [a], params={"weight": [4, 4]}, scope="b", param_names=names)
        if alias:
            g.meta["aliases"] = {"b.weight": "a.weight"}
        g.set_outputs([b])
        return g

    untied, tied, aliased = two_linears(False), two_linears(True), two_linears(False, alias=True)
    assert tied.wl_hash() != untied.wl_hash()
    assert aliased.wl_hash() == tied.wl_hash()


def test_buffer_value_is_not_hashed_but_its_kind_is():
    def scaled(value: torch.Tensor, kind: str = "buffer") -> ArchGraph:
        g = ArchGraph(inputs=[TensorSpec("x", [2, 3])])
        x = g.add_node("input", attrs={"name": "x"})
        p = g.add_node("parameter", attrs={"kind": kind, "value": encode_tensor(value)}, params={"data": [3]})
        g.set_outputs([g.add_node("mul", [x, p])])
        return g

    assert scaled(torch.zeros(3)).wl_hash() == scaled(torch.ones(3)).wl_hash()
    assert scaled(torch.zeros(3)).wl_hash() != scaled(torch.zeros(3), kind="constant").wl_hash()


def test_negative_iterations_rejected():
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        wl_hash(_block(), iterations=-1)


@given(arch_graphs(), st.integers(0, 2**16))
def test_invariant_under_renaming_and_reordering(g, seed):
    h = g.wl_hash()
    assert relabel(g, seed=seed).wl_hash() == h
    assert ArchGraph.from_json(g.to_json()).wl_hash() == h


def _mutations(g: ArchGraph) -> list:
    """Closures that each change one architectural field of ``g``."""
    out = []
    for n in g:
        if n.op in ("relu", "gelu"):
            out.append(lambda n=n: setattr(n, "op", "gelu" if n.op == "relu" else "relu"))
        for key, value in n.attrs.items():
            if isinstance(value, int) and not isinstance(value, bool):
                out.append(lambda n=n, key=key: n.attrs.__setitem__(key, n.attrs[key] + 1))
        for role in n.params:
            out.append(lambda n=n, role=role: n.params.__setitem__(role, n.params[role] + [1]))
    for spec in g.inputs:
        out.append(lambda spec=spec: spec.shape.append(1))
    if g.edges:
        out.append(lambda: g.edges.__setitem__(0, type(g.edges[0])(g.edges[0].src, g.edges[0].dst, 7)))
    return out


@given(arch_graphs(), st.data())
def test_any_single_change_changes_the_hash(g, data):
    h = g.wl_hash()
    mutate = data.draw(st.sampled_from(_mutations(g)))
    mutate()
    g._invalidate()
    assert g.wl_hash() != h
