"""ArchGraph: building, queries, topological order, parameter counting, inference."""

from __future__ import annotations

import pytest
import torch

from mad.graph import ArchGraph, Edge, GraphError, TensorSpec


def test_add_node_ids_edges_and_ports(mlp):
    assert list(mlp.nodes) == ["input_0", "linear_1", "relu_2", "linear_3"]
    assert mlp.edges == [
        Edge("input_0", "linear_1", 0),
        Edge("linear_1", "relu_2", 0),
        Edge("relu_2", "linear_3", 0),
    ]
    assert mlp.predecessors("relu_2") == ["linear_1"]
    assert mlp.successors("relu_2") == ["linear_3"]
    assert mlp.outputs == ["linear_3"] and mlp.output_kind == "tensor"
    assert len(mlp) == 4
    assert [n.id for n in mlp] == list(mlp.nodes)


def test_explicit_and_duplicate_ids():
    g = ArchGraph(inputs=[TensorSpec("x", [2])])
    g.add_node("input", id="x", attrs={"name": "x"})
    with pytest.raises(GraphError, match="'x' already exists"):
        g.add_node("relu", ["x"], id="x")
    # an automatic id never collides with an explicit one
    g.add_node("relu", ["x"], id="relu_1")
    auto = g.add_node("relu", ["x"])
    assert auto not in ("x", "relu_1") and len(g.nodes) == 3


def test_in_edges_sorted_by_port_whatever_the_insertion_order():
    g = ArchGraph(inputs=[TensorSpec("a", [3]), TensorSpec("b", [3])])
    a = g.add_node("input", attrs={"name": "a"})
    b = g.add_node("input", attrs={"name": "b"})
    s = g.add_node("sub")
    g.add_edge(b, s, 1)
    g.add_edge(a, s, 0)
    assert g.predecessors(s) == [a, b]
    assert [e.port for e in g.in_edges(s)] == [0, 1]
    assert g.out_edges(a) == [Edge(a, s, 0)]
    g.set_outputs([s])
    out = g.to_module()(torch.ones(3), torch.full((3,), 4.0))
    assert torch.equal(out, torch.full((3,), -3.0))  # a - b, not b - a


def test_topo_order_is_stable_and_detects_cycles():
    g = ArchGraph()
    for nid in ["c", "a", "b"]:
        g.add_node("relu", id=nid)
    g.add_edge("b", "c", 0)
    # a and b are ready first: insertion order breaks the tie; c waits for b
    assert g.topo_order() == ["a", "b", "c"]
    g.add_edge("c", "a", 0)
    g.add_edge("a", "b", 0)
    with pytest.raises(GraphError, match="cycle through node"):
        g.topo_order()


def test_ancestors_follow_edges_upstream_only():
    g = ArchGraph()
    for nid in ["x", "y", "a", "b", "c"]:
        g.add_node("relu", id=nid)
    g.add_edge("x", "a", 0)
    g.add_edge("a", "b", 0)
    g.add_edge("y", "c", 0)
    assert g.ancestors(["b"]) == {"x", "a", "b"}
    assert g.ancestors(["b", "c", "missing"]) == {"x", "y", "a", "b", "c"}
    assert g.ancestors([]) == set()


def test_remove_nodes_drops_touching_edges(mlp):
    mlp.remove_nodes(["relu_2"])
    assert "relu_2" not in mlp.nodes
    assert all("relu_2" not in (e.src, e.dst) for e in mlp.edges)
    assert mlp.predecessors("linear_3") == []
    assert mlp.successors("linear_1") == []


def test_set_outputs_kinds():
    g = ArchGraph()
    g.set_outputs(["a"])
    assert (g.output_kind, g.output_keys) == ("tensor", None)
    g.set_outputs(["a", "b"])
    assert g.output_kind == "tuple"
    g.set_outputs(["a", "b"], keys=["x", "y"])
    assert (g.output_kind, g.output_keys) == ("dict", ["x", "y"])
    g.set_outputs(["a"], kind="tuple")
    assert g.output_kind == "tuple"


def test_param_names_default_to_scope_then_id():
    g = ArchGraph()
    a = g.add_node("linear", params={"weight": [2, 2]}, scope="enc.fc")
    b = g.add_node("linear", params={"weight": [2, 2]})
    c = g.add_node("linear", params={"weight": [2, 2]}, scope="x", param_names={"weight": "shared.w"})
    assert g.nodes[a].param_name("weight") == "enc.fc.weight"
    assert g.nodes[b].param_name("weight") == f"{b}.weight"
    assert g.nodes[c].param_name("weight") == "shared.w"


def test_num_params_counts_tied_once_and_skips_buffers_and_constants():
    g = ArchGraph(inputs=[TensorSpec("x", [2, 4, 6])])
    x = g.add_node("input", attrs={"name": "x"})
    h = g.add_node("linear", [x], params={"weight": [6, 6], "bias": [6]}, scope="fc")
    tied = {"weight": "fc.weight", "bias": "fc.bias"}
    t = g.add_node("linear", [h], params={"weight": [6, 6], "bias": [6]}, param_names=tied)
    bn = g.add_node(
        "batch_norm",
        [t],
        attrs={"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True},
        params={"weight": [4], "bias": [4], "running_mean": [4], "running_var": [4]},
        scope="bn",
    )
    p = g.add_node("parameter", params={"data": [6]}, scope="scale")
    buf = g.add_node("parameter", attrs={"kind": "buffer"}, params={"data": [6]}, scope="buf")
    const = g.add_node("parameter", attrs={"kind": "constant"}, params={"data": [100]}, scope="const")
    y = g.add_node("mul", [bn, p])
    z = g.add_node("add", [y, buf])
    g.set_outputs([z])
    del const
    # fc: 36 + 6 (tied linear adds nothing), bn: 4 + 4 (running stats are buffers), scale: 6
    assert g.num_params == 42 + 8 + 6
    assert g.infer().num_params == 56


def test_infer_fills_shapes_and_summarises(mlp):
    s = mlp.infer()
    assert [mlp.nodes[n].shape for n in mlp.nodes] == [[2, 4], [2, 8], [2, 8], [2, 3]]
    assert all(n.dtype == "float32" for n in mlp)
    assert s.num_params == 8 * 4 + 8 + 3 * 8 + 3
    assert (s.num_nodes, s.num_edges, s.depth) == (4, 3, 3)
    assert s.op_histogram == {"input": 1, "linear": 2, "relu": 1}
    # linear: 2 * out * in + out (bias); relu: one op per element
    assert s.node_flops == {"input_0": 0, "linear_1": 2 * 16 * 4 + 16, "relu_2": 16, "linear_3": 2 * 6 * 8 + 6}
    assert s.flops == sum(s.node_flops.values())
    assert s.as_dict()["num_params"] == s.num_params


def test_infer_multi_output_shapes():
    g = ArchGraph(inputs=[TensorSpec("x", [2, 5])])
    x = g.add_node("input", attrs={"name": "x"})
    sp = g.add_node("split", [x], attrs={"split_size": 2, "dim": 1})
    last = g.add_node("getitem", [sp], attrs={"index": 2})
    g.set_outputs([last])
    g.infer()
    assert g.nodes[sp].shape == [[2, 2], [2, 2], [2, 1]]
    assert g.nodes[sp].dtype == ["float32"] * 3
    assert g.nodes[last].shape == [2, 1]


def test_infer_check_mode_reports_without_writing(mlp):
    mlp.infer()
    mlp.nodes["relu_2"].shape = [2, 9]
    with pytest.raises(GraphError, match=r"node 'relu_2' \(relu\): field 'shape' is \[2, 9\]"):
        mlp.infer(check=True)
    assert mlp.nodes["relu_2"].shape == [2, 9]


def test_copy_is_deep(mlp):
    mlp.meta["aliases"] = {"a.weight": "fc1.weight"}
    mlp.nodes["relu_2"].attrs["note"] = [1, 2]
    mlp.infer()
    text = mlp.to_json()
    c = mlp.copy()
    assert c.to_json() == text
    c.nodes["linear_1"].params["weight"][0] = 99
    c.nodes["relu_2"].attrs["note"].append(3)
    c.meta["aliases"]["b.weight"] = "fc2.weight"
    c.inputs[0].shape[0] = 7
    c.add_node("relu", ["linear_3"])
    assert mlp.to_json() == text


def test_input_node_lookup(mlp):
    assert mlp.input_node("x") == "input_0"
    with pytest.raises(GraphError, match="no input node named 'y'"):
        mlp.input_node("y")


def test_example_inputs_are_seeded_and_respect_specs():
    g = ArchGraph(
        inputs=[
            TensorSpec("ids", [3, 50], "int64", range=[5, 9]),
            TensorSpec("mask", [3, 50], "bool"),
            TensorSpec("x", [3, 2], "float64"),
        ]
    )
    a = g.example_inputs(seed=1)
    b = g.example_inputs(seed=1)
    c = g.example_inputs(seed=2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])
    ids, mask, x = a
    assert ids.dtype == torch.int64 and ids.min() >= 5 and ids.max() < 9
    assert mask.dtype == torch.bool and x.dtype == torch.float64
    assert [list(t.shape) for t in a] == [[3, 50], [3, 50], [3, 2]]


def test_repr_names_the_graph(mlp):
    assert repr(mlp) == "ArchGraph(name='mlp', source='test', nodes=4, edges=3)"
