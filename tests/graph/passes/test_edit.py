"""Edit passes: rewiring, insertion and dead-code elimination keep the graph valid and outputs right."""

from __future__ import annotations

import pytest
import torch

from mad.graph import GraphBuilder, GraphError
from mad.graph.passes import eliminate_dead_code, insert_after, mutates, reinfer, replace_all_uses, transaction


def _net():
    b = GraphBuilder("net")
    x = b.input("x", ("B", 6))
    h = b.op("linear", x, out_features=8, scope="fc1")
    r = b.op("relu", h)
    y = b.op("linear", r, out_features=3, scope="fc2")
    b.output(y)
    return b.build(), dict(x=x, h=h, r=r, y=y)


def test_replace_all_uses_bypasses_a_node_and_dead_code_goes():
    g, n = _net()
    users = replace_all_uses(g, n["r"], n["h"])
    assert users == [n["y"]] and g.predecessors(n["y"]) == [n["h"]]
    assert eliminate_dead_code(g) == [n["r"]]
    g.validate()
    model = g.to_module()
    x = torch.randn(2, 6)
    assert torch.allclose(model(x), model.fc2(model.fc1(x)))


def test_replace_all_uses_with_another_width_resizes_downstream_layers():
    g, n = _net()
    b = GraphBuilder.extend(g)
    wide = b.op("linear", n["x"], out_features=5, scope="wide")
    replace_all_uses(g, n["r"], wide)
    assert g.nodes[n["y"]].params["weight"] == [3, 5]
    eliminate_dead_code(g)
    g.validate()
    assert g.to_module()(*g.example_inputs()).shape == (2, 3)


def test_replace_all_uses_refuses_a_cycle_and_changes_nothing():
    g, n = _net()
    before = g.to_json()
    with pytest.raises(GraphError, match="depends on a user"):
        replace_all_uses(g, n["h"], n["y"])
    assert g.to_json() == before
    with pytest.raises(GraphError, match="'ghost' does not exist"):
        replace_all_uses(g, "ghost", n["y"])


def test_insert_after_keeps_outputs_equal_for_an_identity_op():
    g, n = _net()
    model = g.to_module()
    x = torch.randn(2, 6)
    ref = model(x)
    d = insert_after(g, n["r"], "dropout", p=0.5, train=False)
    assert g.predecessors(n["y"]) == [d] and g.predecessors(d) == [n["r"]]
    g.validate()
    m2 = g.to_module()
    m2.load_state_dict(model.state_dict())
    assert torch.equal(m2(x), ref)


def test_insert_after_a_layer_gets_a_scope_and_params():
    g, n = _net()
    ln = insert_after(g, n["h"], "layer_norm")
    assert g.nodes[ln].scope == "fc1.layer_norm_0" and g.nodes[ln].params == {"weight": [8], "bias": [8]}
    g.validate()
    with pytest.raises(GraphError, match="conv2d"):
        insert_after(g, n["h"], "conv2d", out_channels=2, kernel_size=3)
    g.validate()


def test_dead_code_keeps_mutations_and_inputs():
    b = GraphBuilder()
    x = b.input("x", (2, 4))
    unused = b.input("unused", (2, 4))
    buf = b.parameter("buf", [2, 4], kind="buffer")
    b.op("add_", buf, x)  # writes into the buffer: kept
    dead = b.op("relu", b.op("neg", x))
    b.output(b.op("sigmoid", x))
    g = b.build()
    removed = eliminate_dead_code(g)
    assert dead in removed and len(removed) == 2
    assert unused in g.nodes and buf in g.nodes and any(nd.op == "add_" for nd in g)
    assert mutates("add_") and mutates("copy_") and not mutates("add")
    g.validate()


def test_reinfer_names_the_node_that_cannot_follow():
    g, n = _net()
    g.inputs[0].shape = ["B", 6, 1]
    with pytest.raises(GraphError, match="cannot follow"), transaction(g):
        reinfer(g, [n["x"]], adapt=None)
    assert g.inputs[0].shape == ["B", 6, 1]  # the transaction restores what was before it (here: the edit itself)
    g.inputs[0].shape = ["B", 6]
    g.validate()
