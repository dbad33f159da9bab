"""Naming the layers of scope-less (generated) graphs: counted as blocks, repeatable, nothing else changed."""

from __future__ import annotations

import pytest
import torch

from mad.data.describe import analyze
from mad.data.random_space import RandomSpaceConfig, sample
from mad.generator.layers import name_blocks
from mad.graph import GraphBuilder
from mad.graph.passes import block_families, set_depth


def _scopeless(g):
    """``g`` as the generator writes it: no module paths, parameter names from node ids."""
    h = g.copy()
    for n in h.nodes.values():
        n.scope, n.param_names = "", {}
    return h


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_transformer_layers_are_found_without_scopes(seed):
    g = sample(seed, RandomSpaceConfig(modality="sequence"))
    layers = analyze(g).blocks
    plain, h = _scopeless(g), _scopeless(g)
    assert analyze(h).blocks == 0
    assert name_blocks(h) == layers
    h.validate()
    assert h.wl_hash() == plain.wl_hash() and h.num_params == plain.num_params
    assert analyze(h).blocks == layers and block_families(h) == {"layers.": list(range(layers))}
    renamed = {plain.nodes[nid].param_name(r): n.param_name(r) for nid, n in h.nodes.items() for r in n.params}
    assert len(set(renamed.values())) == len(renamed) and any(k != v for k, v in renamed.items())
    x = h.example_inputs(seed=0)
    with torch.no_grad():  # the same network: the parameters only changed names
        a, b = plain.to_module(), h.to_module()
        b.load_state_dict({renamed[k]: v for k, v in a.state_dict().items()})
        assert torch.allclose(a(*x), b(*x))
    deeper = set_depth(h, layers + 2)
    assert analyze(deeper).blocks == layers + 2
    deeper.to_module()(*deeper.example_inputs(seed=0)).sum().backward()
    assert name_blocks(h) == 0  # already named


def test_graphs_without_repeatable_layers_are_left_alone():
    b = GraphBuilder("mlp")
    x = b.input("x", ("B", 6))
    h = b.op("relu", b.op("linear", x, out_features=8))
    b.output(b.op("linear", h, out_features=3))
    g = b.build()
    before = g.to_json()
    assert name_blocks(g) == 0 and g.to_json() == before


def test_tied_parameters_keep_their_shared_name():
    g = _scopeless(sample(1, RandomSpaceConfig(modality="sequence")))
    nodes = [n for n in g.nodes.values() if n.op == "linear"]
    shared = nodes[0].param_name("weight")
    tied = next(n for n in nodes[1:] if n.params.get("weight") == nodes[0].params["weight"])
    tied.param_names = {**tied.param_names, "weight": shared}
    assert name_blocks(g) > 0
    assert nodes[0].param_name("weight") == shared == tied.param_name("weight")
    g.to_module()
