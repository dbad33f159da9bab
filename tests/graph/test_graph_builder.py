"""GraphBuilder: every step checked, shapes inferred at once, bad steps change nothing, O(1) growth."""

from __future__ import annotations

import pytest
import torch

from mad.graph import ArchGraph, GraphBuilder, GraphError, TensorSpec, example_inputs, validate
from mad.graph.layer_params import layer_params, sizes_of
from mad.graph.symbolic import normalise


def _cnn() -> GraphBuilder:
    b = GraphBuilder("net")
    x = b.input("x", ("B", 1, 28, 28))
    h = b.op("conv2d", x, out_channels=16, kernel_size=3, padding=1)
    h = b.op("relu", h)
    h = b.op("flatten", b.op("adaptive_avg_pool2d", h, output_size=[1, 1]), start_dim=1)
    b.output(b.op("linear", h, out_features=10))
    return b


def test_readme_example_builds_a_valid_runnable_graph():
    g = _cnn().build()
    assert g.nodes[g.outputs[0]].shape == ["B", 10] and g.dims == {"B": 2}
    assert g.inputs[0].shape == ["B", 1, 28, 28]
    conv = next(n for n in g if n.op == "conv2d")
    assert conv.params == {"weight": [16, 1, 3, 3], "bias": [16]} and conv.attrs["padding"] == [1, 1]
    model = g.to_module()
    assert sorted(model.state_dict()) == ["conv2d_0.bias", "conv2d_0.weight", "linear_0.bias", "linear_0.weight"]
    out = model(*g.example_inputs())
    out.sum().backward()
    assert out.shape == (2, 10)
    assert model(*example_inputs(g, dims={"B": 5})).shape == (5, 10)  # any batch size
    assert g.num_params == 16 * 9 + 16 + 10 * 16 + 10


def test_dim_hints_give_example_sizes():
    b = GraphBuilder(dims={"B": 4, "T": 7})
    ids = b.input("ids", ("B", "T"), dtype="int64", range=[0, 50])
    e = b.op("embedding", ids, num_embeddings=50, embedding_dim=8)
    assert b.shape(e) == ["B", "T", 8] and b.symbols == {"B": 4, "T": 7} == b.graph.dims
    v = b.op("view", e, size=["B*T", 8])
    assert b.shape(v) == [normalise("B*T"), 8]
    r = b.op("arange", end="T")
    assert b.shape(r) == ["T"]
    with pytest.raises(GraphError, match="symbol 'H' has no example size"):
        b.input("img", ("B", 3, "H", 5))
    assert b.graph.dims == {"B": 4, "T": 7} and [s.name for s in b.graph.inputs] == ["ids"]
    with pytest.raises(GraphError, match=r"dim symbols \['S'\]"):
        b.op("view", e, size=["B", "S", 8])
    b.output(v)
    g = b.build()
    out = g.to_module()(*example_inputs(g, dims={"B": 3, "T": 5}))
    assert out.shape == (15, 8)


def test_scopes_name_state_dict_entries():
    b = GraphBuilder()
    x = b.input("x", ("B", 8))
    with b.scope("encoder.layer.0"):
        q = b.op("linear", x, out_features=8, scope="attention.q_proj")
        a = b.op("linear", x, out_features=8)
        c = b.op("linear", x, out_features=8)
        r = b.op("relu", q)
        with b.scope("mlp"):
            n = b.op("layer_norm", r)
    g = b.graph
    assert g.nodes[q].param_name("weight") == "encoder.layer.0.attention.q_proj.weight"
    assert [g.nodes[i].scope for i in (a, c, r, n)] == [
        "encoder.layer.0.linear_0", "encoder.layer.0.linear_1", "encoder.layer.0", "encoder.layer.0.mlp.layer_norm_0",
    ]
    with pytest.raises(GraphError, match="already exists; give this layer another scope"):
        b.op("linear", x, out_features=8, scope="encoder.layer.0.attention.q_proj")


def test_free_parameters_and_tied_weights():
    b = GraphBuilder()
    ids = b.input("ids", ("B", "T"), dtype="int64", range=[0, 30])
    with b.scope("embeddings"):
        tok = b.op("embedding", ids, num_embeddings=30, embedding_dim=12, scope="token")
        pos = b.parameter("position", [64, 12])
        with pytest.raises(GraphError, match="must be concrete ints"):
            b.parameter("bad", ["T", 12])
        pos_t = b.op("slice", pos, dim=0, start=0, end="T")
    h = b.op("add", tok, pos_t)
    head = b.op("linear", h, out_features=30, bias=False, scope="lm_head", tie={"weight": tok})
    b.output(head)
    g = b.build()
    assert g.nodes[pos].param_name("data") == "embeddings.position" and g.nodes[pos_t].shape == ["T", 12]
    assert g.nodes[head].param_name("weight") == "embeddings.token.weight"
    model = g.to_module()
    assert g.num_params == 30 * 12 + 64 * 12 == sum(p.numel() for p in model.parameters())
    assert model(*g.example_inputs()).shape == (2, 16, 30)
    with pytest.raises(GraphError, match="cannot tie 'weight' of shape"):
        b.op("linear", h, out_features=31, bias=False, tie={"weight": tok})


@pytest.mark.parametrize(
    "step, match",
    [
        (lambda b, h: b.op("convolution9d", h), "unknown op 'convolution9d'"),
        (lambda b, h: b.op("relu", h, colour=1), "unknown attribute 'colour'"),
        (lambda b, h: b.op("softmax", h, dim="x"), r"uses dim symbols \['x'\]"),
        (lambda b, h: b.op("softmax", h, dim=1.5), r"attrs\['dim'\] expected int"),
        (lambda b, h: b.op("transpose", h, dim0=0), "missing required attribute 'dim1'"),
        (lambda b, h: b.op("add", h), r"add: takes 2 input\(s\)"),
        (lambda b, h: b.op("relu", h, h), r"relu: takes 1 input\(s\)"),
        (lambda b, h: b.op("linear", h), "missing size 'out_features'"),
        (lambda b, h: b.op("linear", h, out_features=4, colour=2), "unknown attribute 'colour'"),
        (lambda b, h: b.op("conv2d", h, out_channels=4, kernel_size=9), "conv2d: cannot take inputs of shapes"),
        (lambda b, h: b.op("conv2d", h, out_channels=4, kernel_size=[1, 1, 1]), "kernel_size .* has 3 dims"),
        (lambda b, h: b.op("conv1d", h, out_channels=4, kernel_size=[2, 2]), "conv1d: kernel_size .* conv1d takes 1"),
        (lambda b, h: b.op("embedding", h, num_embeddings=4, embedding_dim=2), "embedding: cannot take inputs"),
        (lambda b, h: b.op("view", h, size=[7, 7]), "view: cannot take inputs of shapes"),
        (lambda b, h: b.op("relu", "ghost"), "no node 'ghost'"),
        (lambda b, h: b.op("input", name="y"), "input\\(\\)"),
    ],
)
def test_a_bad_step_raises_and_changes_nothing(step, match):
    b = GraphBuilder()
    x = b.input("x", ("B", 3, 8, 8))
    h = b.op("conv2d", x, out_channels=4, kernel_size=3)
    g = b.graph
    before = (g.to_json(), b.flops, dict(b._scope_counts), set(b._owned), [list(g.in_edges(n)) for n in g.nodes])
    with pytest.raises(GraphError, match=match):
        step(b, h)
    assert before == (g.to_json(), b.flops, dict(b._scope_counts), set(b._owned),
                      [list(g.in_edges(n)) for n in g.nodes])
    validate(g, partial=True)


def test_every_prefix_is_a_valid_partial_graph():
    b = GraphBuilder()
    x = b.input("x", ("B", 3, 8, 8))
    validate(b.graph, partial=True)
    for op, kw in [("conv2d", dict(out_channels=8, kernel_size=3, stride=2)), ("batch_norm", {}), ("silu", {}),
                   ("max_pool2d", dict(kernel_size=2)), ("flatten", dict(start_dim=1))]:
        x = b.op(op, x, **kw)
        b.graph.validate(partial=True)
    with pytest.raises(GraphError, match="declares no outputs"):
        b.graph.validate()
    with pytest.raises(GraphError, match="call b.output"):
        b.build()


def test_list_and_optional_ports_are_filled_from_the_inputs():
    b = GraphBuilder()
    x = b.input("x", ("B", 4, 6))
    cat = b.op("cat", x, x, x, dim=1)
    assert b.graph.nodes[cat].attrs["tensors"] == ["%"] * 3 and b.shape(cat) == ["B", 12, 6]
    q = b.op("unsqueeze", x, dim=1)
    mask = b.input("mask", (1, 1, 4, 4), dtype="bool")
    att = b.op("scaled_dot_product_attention", q, q, q, mask)
    assert b.graph.nodes[att].attrs["attn_mask"] == "%" and b.shape(att) == ["B", 1, 4, 6]
    parts = b.unpack(b.op("split_with_sizes", x, split_sizes=[2, 4], dim=-1))
    assert [b.shape(p) for p in parts] == [["B", 4, 2], ["B", 4, 4]]
    b.output(*parts)
    out = b.build().to_module()(*b.graph.example_inputs())
    assert [tuple(t.shape) for t in out] == [(2, 4, 2), (2, 4, 4)]


def test_growth_never_rebuilds_the_edge_index(monkeypatch):
    b = GraphBuilder()
    x = b.input("x", ("B", 8))
    b.graph.in_edges(x)  # index built once
    calls = []
    monkeypatch.setattr(ArchGraph, "_index", lambda self: calls.append(1))
    for _ in range(300):
        h = b.op("linear", x, out_features=8)
        x = b.op("add", x, h)
        assert b.graph.predecessors(x) == [b.graph.predecessors(x)[0], h]
    assert calls == []


def test_incremental_index_matches_a_rebuilt_one():
    b = GraphBuilder()
    x = b.input("x", ("B", 8))
    ids = [x]
    for i in range(40):
        ids.append(b.op("add", ids[-1], ids[i // 2]))
    g = b.graph
    g.remove_nodes(ids[10:15])
    fresh = ArchGraph.from_dict(g.to_dict())
    for n in g.nodes:
        assert g.in_edges(n) == fresh.in_edges(n) and g.out_edges(n) == fresh.out_edges(n)


def test_add_node_rejects_missing_inputs():
    g = ArchGraph(inputs=[TensorSpec("x", [2])])
    g.add_node("input", id="x", attrs={"name": "x"})
    with pytest.raises(GraphError, match="input node 'nope' does not exist"):
        g.add_node("relu", ["nope"])
    assert list(g.nodes) == ["x"] and g.edges == []


def test_valid_ops_lists_admissible_ops_and_values():
    b = GraphBuilder()
    img = b.input("img", ("B", 3, 5, 5))
    opts = b.valid_ops(img, ops=["conv2d", "linear", "embedding", "relu", "view", "max_pool2d", "softmax"])
    assert "embedding" not in opts and "view" not in opts  # float input; view needs a size choice
    assert opts["relu"] == {} and opts["linear"]["out_features"] == [16, 32, 64, 128, 256]
    assert opts["conv2d"]["kernel_size"] == [1, 3, 5] and opts["conv2d"]["groups"] == [1]
    assert opts["softmax"]["dim"] == [-4, -3, -2, -1, 0, 1, 2, 3]
    assert b.shape(img) == ["B", 3, 5, 5]
    for k in opts["conv2d"]["kernel_size"]:  # every value offered is accepted by op()
        b.op("conv2d", img, out_channels=4, kernel_size=k)
    ids = b.input("ids", ("B", "T"), dtype="int64", range=[0, 9])
    tok = b.valid_ops(ids, ops=["embedding", "conv2d"], choices={"embedding": {"num_embeddings": [9],
                                                                               "embedding_dim": [4, 8]}})
    assert tok == {"embedding": {"num_embeddings": [9], "embedding_dim": [4, 8]}}
    assert b.valid_ops(img, img, ops=["add", "relu", "cat"]) == {"add": {}, "cat": {"dim": [-4, -3, -2, -1, 0, 1, 2, 3]}}


def test_layer_rules_round_trip_sizes():
    for op, x, sizes in [
        ("linear", [2, 7], {"out_features": 3, "bias": False}),
        ("conv2d", [2, 6, 9, 9], {"out_channels": 4, "kernel_size": [3, 1], "bias": True}),
        ("conv_transpose2d", [2, 6, 9, 9], {"out_channels": 4, "kernel_size": [2, 2], "bias": False}),
        ("embedding", [2, 5], {"num_embeddings": 11, "embedding_dim": 3}),
        ("batch_norm", [2, 6, 4, 4], {"affine": True, "track_running_stats": True}),
    ]:
        params = layer_params(op, [x], {}, sizes)
        assert sizes_of(op, params, {}) == sizes
    with pytest.raises(GraphError, match="groups=4 must divide in_channels=6"):
        layer_params("conv2d", [[2, 6, 9, 9]], {"groups": 4}, {"out_channels": 8, "kernel_size": 3})


def test_flops_are_summed_as_nodes_are_added():
    b = _cnn()
    torch.manual_seed(0)
    assert b.flops == b.build().infer().flops > 0


def test_getitem_needs_a_multi_output_input():
    from mad.graph import GraphBuilder, GraphError

    b = GraphBuilder()
    x = b.input("x", ("B", 8))
    h = b.op("relu", x)
    with pytest.raises(GraphError, match="has one output"):
        b.op("getitem", h, index=0)
    parts = b.unpack(b.op("split", h, split_size=4, dim=-1))
    assert len(parts) == 2


def test_weight_norm_with_a_gain_of_the_wrong_shape_is_refused_not_run():
    # aten._weight_norm does not check its gain: a scalar g with dim=2 writes out of bounds and kills the process
    b = GraphBuilder(dims={"B": 2})
    v = b.input("v", ("B", 3, 8))
    g_bad = b.op("sum", v)  # a scalar
    with pytest.raises(GraphError, match="one gain per slice"):
        b.op("_weight_norm", v, g_bad, dim=2)
    g_ok = b.op("sum", v, dim=[0, 1], keepdim=True)  # (1, 1, 8)
    out = b.op("_weight_norm", v, g_ok, dim=2)
    b.output(out)
    g = b.build()
    x = g.example_inputs(seed=0)[0]
    w = torch._weight_norm(x, x.sum(dim=[0, 1], keepdim=True), 2)
    torch.testing.assert_close(g.to_module()(x), w)


def test_unbind_needs_a_fixed_size_and_refuses_a_symbolic_one():
    b = GraphBuilder(dims={"B": 2, "T": 16})
    x = b.input("x", ("B", "T", 3, 8))
    parts = b.op("unbind", x, dim=2)  # a fixed size: three outputs
    assert len(b.graph.nodes[parts].shape) == 3
    with pytest.raises(GraphError, match="unbind needs a fixed size"):  # one output per entry of T: no fixed count
        b.op("unbind", x, dim=1)
