"""validate(): each broken invariant is rejected with a message naming the culprit."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from strategies import arch_graphs

from mad.graph import ArchGraph, GraphError, TensorSpec, from_json, validate


def _good() -> ArchGraph:
    """x (2, 3, 4) -> fc -> gelu -> split -> getitem; + y -> transpose -> output."""
    g = ArchGraph("good", inputs=[TensorSpec("x", [2, 3, 4]), TensorSpec("y", [2, 3, 2])])
    x = g.add_node("input", id="x", attrs={"name": "x"})
    y = g.add_node("input", id="y", attrs={"name": "y"})
    fc = g.add_node("linear", [x], id="fc", params={"weight": [4, 4], "bias": [4]}, scope="fc")
    act = g.add_node("gelu", [fc], id="act")
    sp = g.add_node("split", [act], id="sp", attrs={"split_size": 2, "dim": -1})
    first = g.add_node("getitem", [sp], id="first", attrs={"index": 0})
    s = g.add_node("add", [first, y], id="sum")
    t = g.add_node("transpose", [s], id="t", attrs={"dim0": 1, "dim1": 2})
    g.set_outputs([t])
    g.infer()
    return g


def test_good_graph_passes():
    g = _good()
    validate(g)
    assert g.validate() is g


@given(arch_graphs())
def test_random_valid_graphs_pass(g):
    validate(g)


def _rejects(g: ArchGraph, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        g.validate()


def test_cycle():
    g = _good()
    g.add_node("relu", id="loop_a")
    g.add_node("relu", ["loop_a"], id="loop_b")
    g.add_edge("loop_b", "loop_a", 0)
    _rejects(g, r"cycle through node 'loop_[ab]'")


def test_duplicate_id_from_json():
    d = json.loads(_good().to_json())
    d["nodes"][3]["id"] = "fc"
    with pytest.raises(GraphError, match="node 'fc': duplicate node id"):
        from_json(json.dumps(d))


def test_dangling_edge_source():
    g = _good()
    g.add_edge("ghost", "act", 1)
    _rejects(g, "edge 'ghost' -> 'act': source node 'ghost' does not exist")


def test_dangling_edge_destination():
    g = _good()
    g.add_edge("fc", "nowhere", 0)
    _rejects(g, "edge 'fc' -> 'nowhere': destination node 'nowhere' does not exist")


def test_unknown_op():
    g = _good()
    g.nodes["act"].op = "frobnicate"
    _rejects(g, r"node 'act': field 'op': unknown op 'frobnicate'")


def test_unknown_attr():
    g = _good()
    g.nodes["act"].attrs["slope"] = 0.1
    _rejects(g, r"node 'act' \(gelu\): unknown attribute 'slope'; gelu takes \['approximate'\]")


@pytest.mark.parametrize(
    "node, key, value, message",
    [
        ("t", "dim0", "1", r"node 't' \(transpose\): attrs\['dim0'\] expected int, got str '1'"),
        ("t", "dim0", True, r"attrs\['dim0'\] expected int, got bool"),
        ("t", "dim1", 1.0, r"attrs\['dim1'\] expected int, got float"),
        ("act", "approximate", 3, r"node 'act' \(gelu\): attrs\['approximate'\] expected str"),
        ("sp", "split_size", None, r"node 'sp' \(split\): attrs\['split_size'\] must not be null"),
        ("sum", "alpha", [1], r"node 'sum' \(add\): attrs\['alpha'\] expected number"),
        ("sum", "other", "two", r"node 'sum' \(add\): field 'attrs' uses dim symbols \['two'\] that graph.dims"),
        ("sum", "other", "2 +", r"node 'sum' \(add\): attrs\['other'\] must be a number or null"),
    ],
)
def test_wrong_attr_type(node, key, value, message):
    g = _good()
    g.nodes[node].attrs[key] = value
    _rejects(g, message)


def test_missing_required_attr():
    g = _good()
    del g.nodes["t"].attrs["dim1"]
    _rejects(g, r"node 't' \(transpose\): missing required attribute 'dim1'")


def test_list_argument_needs_its_attr():
    g = _good()
    cat = g.add_node("cat", ["fc", "fc"], id="cat")
    g.set_outputs(["t", cat])
    _rejects(g, r"node 'cat' \(cat\): list argument 'tensors' needs attrs\['tensors'\]")


def test_wrong_param_role():
    g = _good()
    g.nodes["fc"].params["kernel"] = [4, 4]
    _rejects(g, r"node 'fc' \(linear\): params\['kernel'\] is not a parameter of linear "
                r"\(allowed: \['weight', 'bias'\]\)")


def test_params_on_an_op_without_params():
    g = _good()
    g.nodes["act"].params["weight"] = [4]
    _rejects(g, r"node 'act' \(gelu\): params\['weight'\] is not a parameter of gelu \(allowed: none\)")


def test_param_also_given_as_attr():
    g = _good()
    g.nodes["fc"].attrs["bias"] = 0.0
    _rejects(g, r"node 'fc' \(linear\): 'bias' is both an owned param and an attr")


def test_parameter_node_without_data():
    g = _good()
    g.add_node("parameter", id="p")
    _rejects(g, r"node 'p' \(parameter\): parameter node must own params\['data'\]")


def test_missing_port():
    g = _good()
    g.edges = [e for e in g.edges if not (e.dst == "sum" and e.port == 1)]
    g._invalidate()
    _rejects(g, r"node 'sum' \(add\): has input ports \[0\] but needs exactly ports 0..1")


def test_extra_port():
    g = _good()
    g.add_edge("x", "act", 1)
    _rejects(g, r"node 'act' \(gelu\): has input ports \[0, 1\] but needs exactly ports 0..0")


def test_port_gap():
    g = _good()
    g.edges = [e if not (e.dst == "sum" and e.port == 1) else type(e)(e.src, e.dst, 2) for e in g.edges]
    g._invalidate()
    _rejects(g, r"node 'sum' \(add\): has input ports \[0, 2\]")


def test_constant_in_attrs_removes_a_port():
    g = _good()
    g.nodes["sum"].attrs["other"] = 1.0  # now add takes one port, but two edges still feed it
    _rejects(g, r"node 'sum' \(add\): has input ports \[0, 1\] but needs exactly ports 0..0")


def test_source_op_with_input_edge():
    g = _good()
    g.add_edge("x", "y", 0)
    _rejects(g, r"node 'y' \(input\): takes no inputs but has input ports \[0\]")


def test_input_node_not_in_inputs():
    g = _good()
    g.nodes["y"].attrs["name"] = "z"
    _rejects(g, r"node 'y' \(input\): attrs\['name'\] 'z' is not in graph.inputs \['x', 'y'\]")


def test_graph_input_without_node():
    g = _good()
    g.inputs.append(TensorSpec("mask", [2, 3]))
    _rejects(g, "graph.inputs: input 'mask' has no input node")


def test_two_nodes_for_one_input():
    g = _good()
    g.add_node("input", id="x2", attrs={"name": "x"})
    _rejects(g, r"node 'x2' \(input\): input 'x' already has node 'x'")


def test_duplicate_input_names():
    g = _good()
    g.inputs.append(TensorSpec("x", [1]))
    _rejects(g, r"graph.inputs: duplicate input names")


@pytest.mark.parametrize(
    "outputs, kind, keys, message",
    [
        ([], None, None, "graph.outputs: the graph declares no outputs"),
        (["ghost"], None, None, "graph.outputs: node 'ghost' does not exist"),
        (["t", "fc"], "tensor", None, "kind 'tensor' needs one output node, got 2"),
        (["t", "fc"], "dict", ["only_one"], "a dict output needs one key per output node"),
        (["t"], "list", None, "kind must be tensor, tuple or dict, got 'list'"),
    ],
)
def test_bad_outputs(outputs, kind, keys, message):
    g = _good()
    g.set_outputs(outputs, kind=kind, keys=keys)
    _rejects(g, message)


def test_recorded_shape_inconsistent_with_shape_rule():
    g = _good()
    g.nodes["t"].shape = [2, 3, 2]
    _rejects(g, r"node 't' \(transpose\): field 'shape' is \[2, 3, 2\] but the shape rule gives \[2, 2, 3\]")


def test_recorded_dtype_inconsistent():
    g = _good()
    g.nodes["act"].dtype = "float16"
    _rejects(g, r"node 'act' \(gelu\): field 'dtype' is float16 but the op gives float32")


def test_input_shape_change_is_caught_downstream():
    g = _good()
    g.inputs[0].shape = [5, 3, 4]
    _rejects(g, r"node 'x' \(input\): field 'shape' is \[2, 3, 4\] but the shape rule gives \[5, 3, 4\]")


def test_shape_rule_failure_names_the_node():
    g = _good()
    g.nodes["fc"].params["weight"] = [4, 7]
    g.nodes["fc"].shape = None
    _rejects(g, r"node 'fc' \(linear\): shape rule failed")


def test_shapes_can_be_skipped():
    g = _good()
    g.nodes["t"].shape = [9]
    validate(g, shapes=False)
    _rejects(g, "field 'shape'")


def test_getitem_on_single_output_node():
    g = _good()
    g.add_node("getitem", ["fc"], id="bad_item", attrs={"index": 0})
    _rejects(g, r"node 'bad_item' \(getitem\): reads from 'fc' \(linear\), which has one output")


def _recorded(g: ArchGraph, shapes: dict[str, list]) -> ArchGraph:
    for nid, shape in shapes.items():
        g.nodes[nid].shape = shape
        g.nodes[nid].dtype = ["float32"] * len(shape) if shape and isinstance(shape[0], list) else "float32"
    return g


def test_recorded_shapes_do_not_hide_a_failing_shape_rule():
    """A wrong weight shape fails on meta; recorded shapes must not make it pass."""
    g = _good()
    g.nodes["fc"].params["weight"] = [4, 7]  # input has 4 features, weight wants 7
    _rejects(g, r"node 'fc' \(linear\): shape rule failed")


def test_getitem_index_out_of_range():
    g = ArchGraph(inputs=[TensorSpec("x", [2, 5])])
    x = g.add_node("input", id="x", attrs={"name": "x"})
    sp = g.add_node("split", [x], id="sp", attrs={"split_size": 2, "dim": 1})
    g.set_outputs([g.add_node("getitem", [sp], id="item", attrs={"index": 3})])
    _rejects(g, r"node 'item' \(getitem\): shape rule failed")
    _recorded(g, {"x": [2, 5], "sp": [[2, 2], [2, 2], [2, 1]], "item": [2, 2]})
    _rejects(g, r"node 'item' \(getitem\): shape rule failed")


def test_data_dependent_op_keeps_its_recorded_shape():
    """Boolean-mask indexing has a value-dependent size: validate trusts the recorded shape."""
    g = ArchGraph(inputs=[TensorSpec("x", [3, 4]), TensorSpec("mask", [3, 4], "bool")])
    x = g.add_node("input", id="x", attrs={"name": "x"})
    mask = g.add_node("input", id="mask", attrs={"name": "mask"})
    sel = g.add_node("index", [x, mask], id="sel", attrs={"indices": ["%"]})
    g.set_outputs([g.add_node("relu", [sel], id="out")])
    _rejects(g, r"node 'sel' \(index\): shape rule failed")
    g.nodes["sel"].shape, g.nodes["sel"].dtype = [5], "float32"
    g.validate()
    summary = g.infer()
    assert summary.unchecked == ["sel"] and g.nodes["out"].shape == [5]


def test_a_stored_parameter_value_must_be_of_the_nodes_dtype_and_shape():
    import torch

    from mad.graph import GraphBuilder
    from mad.graph.module import encode_tensor

    b = GraphBuilder("table", dims={"B": 2})
    x = b.input("x", ("B", 4))
    t = b.parameter("table", [4], kind="buffer", dtype="int64")
    b.output(b.op("add", x, t))
    g = b.build()
    g.nodes[t].attrs["value"] = encode_tensor(torch.arange(4))
    validate(g)  # int64 values of the declared shape
    g.nodes[t].attrs["value"] = encode_tensor(torch.ones(4))
    with pytest.raises(GraphError, match="holds float32 values, but the node is int64"):
        validate(g)
    g.nodes[t].attrs["value"] = encode_tensor(torch.arange(5))
    with pytest.raises(GraphError, match=r"shape \[5\]"):
        validate(g)
