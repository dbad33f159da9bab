"""Block passes: replace, repeat and remove scoped blocks; names stay in execution order."""

from __future__ import annotations

import pytest
import torch

from mad.graph import GraphBuilder, GraphError
from mad.graph.passes import block_io, block_nodes, remove_block, repeat_block, replace_subgraph


def _transformer(layers: int = 3):
    b = GraphBuilder("tf")
    ids = b.input("ids", ("B", "T"), dtype="int64", range=[0, 40])
    mask = b.input("mask", ("B", 1, "T", "T"), dtype="bool")
    x = b.op("embedding", ids, num_embeddings=40, embedding_dim=16, scope="emb")
    for i in range(layers):
        with b.scope(f"layers.{i}"):
            h = b.op("layer_norm", x, scope="norm")
            q = b.op("unsqueeze", b.op("linear", h, out_features=16, scope="q"), dim=1)
            a = b.op("squeeze", b.op("scaled_dot_product_attention", q, q, q, mask), dim=1)
            x = b.op("add", x, a)
            m = b.op("linear", b.op("gelu", b.op("linear", x, out_features=32, scope="fc1")), out_features=16,
                     scope="fc2")
            x = b.op("add", x, m)
    b.output(b.op("linear", x, out_features=40, scope="head", bias=False, tie={"weight": "embedding_2"}))
    return b.build()


def _layer_scopes(g):
    return sorted({n.scope.split(".")[1] for n in g if n.scope.startswith("layers.")})


def test_block_io_finds_inputs_and_the_one_output():
    g = _transformer()
    nodes = block_nodes(g, "layers.1")
    ins, outs = block_io(g, nodes)
    assert len(ins) == 2 and g.nodes[ins[1]].op == "input" and len(outs) == 1
    with pytest.raises(GraphError, match="no nodes under scope 'layers.9'"):
        block_nodes(g, "layers.9")


def test_repeat_block_renumbers_later_layers_and_runs():
    g = _transformer(3)
    per_layer = sum(n.num_params for n in g if n.scope.startswith("layers.1"))
    before = g.num_params
    copies = repeat_block(g, "layers.1", 3)
    assert len(copies) == 2 and _layer_scopes(g) == ["0", "1", "2", "3", "4"]
    assert g.num_params == before + 2 * per_layer
    # execution order = numbering: layer 4 (old layer 2) reads the last copy
    l4 = [n for n in g if n.scope == "layers.4.norm"][0]
    assert g.predecessors(l4.id)[0] == copies[-1]
    g.validate()
    model = g.to_module()
    assert "layers.4.fc2.weight" in model.state_dict()
    out = model(*g.example_inputs())
    out.sum().backward()
    assert out.shape == (2, 16, 40)


def test_remove_block_is_undone_by_nothing_and_renumbers_down():
    g = _transformer(3)
    removed = remove_block(g, "layers.0")
    assert _layer_scopes(g) == ["0", "1"] and removed
    g.validate()
    assert g.to_module()(*g.example_inputs()).shape == (2, 16, 40)


def test_blocks_that_change_shape_cannot_repeat():
    g = _transformer(2)
    before = g.to_json()
    with pytest.raises(GraphError, match="matches none of its inputs"):
        repeat_block(g, "layers.0.fc1", 2)
    with pytest.raises(GraphError, match="times must be >= 1"):
        repeat_block(g, "layers.0", 0)
    assert g.to_json() == before


def test_replace_subgraph_swaps_a_block_and_keeps_the_name():
    g = _transformer(2)
    new = replace_subgraph(g, "layers.1.fc1", lambda b, x: b.op("linear", x, out_features=64))
    node = g.nodes[new[0]]
    assert node.scope == "layers.1.fc1" and node.params["weight"] == [64, 16]
    fc2 = next(n for n in g if n.scope == "layers.1.fc2")
    assert fc2.params["weight"] == [16, 64]  # the layer after it follows the new width
    g.validate()
    model = g.to_module()
    assert model(*g.example_inputs()).shape == (2, 16, 40)


def test_replace_subgraph_whole_mlp_with_a_gated_one():
    g = _transformer(1)

    def gated(b, x):
        gate = b.op("silu", b.op("linear", x, out_features=24, scope="gate"))
        up = b.op("linear", x, out_features=24, scope="up")
        return b.op("add", x, b.op("linear", b.op("mul", gate, up), out_features=16, scope="down"))

    nodes = [n.id for n in g if n.scope in ("layers.0.fc1", "layers.0.fc2") or n.op == "gelu"]
    nodes.append(next(n.id for n in g if n.op == "add" and g.predecessors(n.id)[1] in nodes))
    replace_subgraph(g, nodes, gated)
    assert {"gate.weight", "up.weight", "down.weight"} <= set(g.to_module().state_dict())
    g.validate()


def test_replace_subgraph_wrong_output_count_changes_nothing():
    g = _transformer(1)
    before = g.to_json()
    with pytest.raises(GraphError, match="has 1 output"):
        replace_subgraph(g, "layers.0", lambda b, x, m: [x, x])
    assert g.to_json() == before
    torch.manual_seed(0)
