"""cut: a topological prefix is a valid partial graph; its outputs are the frontier, computing what the original did."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from mad.data.random_space import RandomSpaceConfig, sample
from mad.graph import GraphBuilder, GraphError
from mad.graph.passes import cut, removed_part


def _mlp():
    b = GraphBuilder("mlp")
    x = b.input("x", ("B", 6))
    h = b.op("linear", x, out_features=8, scope="fc1")
    r = b.op("relu", h, scope="act")
    y = b.op("linear", r, out_features=3, scope="fc2")
    b.output(y)
    return b.build(), dict(x=x, h=h, r=r, y=y)


def _check_prefix(g, p):
    """Invariants of every cut: a valid partial graph, a topological prefix, op histograms add up."""
    p.validate(partial=True)
    info = p.meta["cut"]
    order = g.topo_order()
    kept = [n for n in order if n in p.nodes]
    assert set(kept) <= set(g.nodes) and info["removed"] == len(g) - len(p)
    last = order.index(info["after"])
    assert all(order.index(n) <= last or g.nodes[n].op == "input" for n in kept)
    assert all(n in p.nodes for n in order[: last + 1])
    assert Counter(n.op for n in p) + Counter(info["removed_ops"]) == Counter(n.op for n in g)
    assert [g.nodes[n].op for n in removed_part(g, p)] == info["removed_ops"]
    frontier = [n for n in kept if g.nodes[n].op not in ("input", "parameter")
                and (n in g.outputs or any(s not in p.nodes for s in g.successors(n)))]
    assert p.outputs == frontier
    assert info["original_outputs"]["outputs"] == g.outputs


def test_cut_after_a_node_outputs_the_value_the_original_computed_there():
    g, n = _mlp()
    p = cut(g, after=n["r"])
    _check_prefix(g, p)
    assert p.outputs == [n["r"]] and p.meta["cut"] == {
        "after": n["r"], "removed": 1, "removed_ops": ["linear"],
        "original_outputs": {"outputs": [n["y"]], "kind": "tensor", "keys": None}}
    p.validate()
    full, part = g.to_module(), p.to_module()
    part.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(5, 6)
    assert torch.equal(part(x), torch.relu(full.fc1(x)))


def test_cut_after_a_scope_keeps_the_whole_scope_and_nothing_after():
    g = sample(3, RandomSpaceConfig(modality="sequence", num_layers=(3, 3)))
    p = cut(g, after="blocks.1")
    _check_prefix(g, p)
    assert any(n.scope.startswith("blocks.1.") for n in p) and not any(n.scope.startswith("blocks.2") for n in p)
    assert not any(n.scope == "lm_head" for n in p)
    kept_block = [n for n in g if n.scope.startswith("blocks.1.") or n.scope == "blocks.1"]
    assert all(n.id in p.nodes for n in kept_block)
    out = p.to_module()(*p.example_inputs())
    assert out.shape == (2, 32, g.meta["hparams"]["d_model"])


@pytest.mark.parametrize("modality", ["image", "sequence"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_cut_by_fraction_keeps_that_share_of_nodes(modality, fraction):
    g = sample(1, RandomSpaceConfig(modality=modality))
    p = cut(g, fraction=fraction)
    _check_prefix(g, p)
    n_inputs_after = sum(1 for i in g.topo_order()[round(fraction * len(g)):] if g.nodes[i].op == "input")
    assert len(p) == round(fraction * len(g)) + n_inputs_after
    assert p.outputs and p.meta["num_params"] == p.num_params
    g.validate()  # the original is untouched


def test_cut_at_the_last_node_removes_nothing():
    g, n = _mlp()
    p = cut(g, after=n["y"])
    assert p.meta["cut"]["removed"] == 0 and p.outputs == g.outputs and p.wl_hash() == g.wl_hash()


def test_cut_after_an_input_only_keeps_no_outputs():
    g, n = _mlp()
    p = cut(g, after=n["x"])
    assert list(p.nodes) == [n["x"]] and p.outputs == []
    p.validate(partial=True)


def test_cut_errors_name_the_problem():
    g, _ = _mlp()
    with pytest.raises(GraphError, match="'nope' is neither a node id nor a scope"):
        cut(g, after="nope")
    for bad in (0, 1, 1.5, -0.2, True):
        with pytest.raises(GraphError, match="fraction must be a number strictly between 0 and 1"):
            cut(g, fraction=bad)
    with pytest.raises(GraphError, match="exactly one of"):
        cut(g)
    with pytest.raises(GraphError, match="exactly one of"):
        cut(g, after="fc1", fraction=0.5)
