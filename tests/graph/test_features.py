"""to_pyg / from_pyg: node features that decode back to the exact graph."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import arch_graphs, relabel
from torch_geometric.data import Batch

import mad.graph.features as features
from nets import attn_graph
from mad.graph import MASK_ID, ArchGraph, GraphError, TensorSpec, UnknownOpError, op_id, op_names
from mad.graph.feature_codec import KINDS, SideBand
from mad.graph.features import CELLS, NODE_FEATURES, NODE_INT, from_pyg, op_layout, to_pyg

K = {k: i for i, k in enumerate(KINDS)}
TENSORS = ("x", "node_int", "shape_code", "param_code", "attr_code", "attr_real", "node_feat")


def _attn() -> ArchGraph:
    g = attn_graph()
    g.infer()
    return g


def _assert_same(back: ArchGraph, g: ArchGraph) -> None:
    assert back.to_json() == g.to_json()
    assert back.wl_hash() == g.wl_hash()
    assert getattr(back, "dims", None) == getattr(g, "dims", None)


def _rows(data) -> dict[str, list]:
    return {k: data[k].reshape(data.num_nodes, -1).tolist() for k in TENSORS if k != "x"}


# ----------------------------------------------------------------- layout


def test_layout_is_documented_once_in_the_module_docstring():
    doc = features.__doc__
    for field in TENSORS + ("edge_index", "edge_port", "output_index", "node_ids", "side"):
        assert f"``{field}``" in doc, field
    for col in NODE_INT:
        assert f"``{col}``" in doc, col
    data = to_pyg(_attn())
    assert data.node_int.shape[1] == len(NODE_INT) and data.node_feat.shape[1] == len(NODE_FEATURES)
    assert data.attr_code.shape[1:] == (CELLS, 5) and data.attr_real.dtype == torch.float64


def test_every_op_of_the_vocabulary_fits_the_layout():
    for name in op_names():
        op_layout(name)  # raises when an op has more slots or list slots than the layout holds


def test_features_of_known_nodes():
    g = _attn()
    data = to_pyg(g)
    pos = {nid: i for i, nid in enumerate(data.node_ids)}
    assert data.node_ids == g.topo_order()
    assert data.x.tolist() == [op_id(g.nodes[n].op) for n in data.node_ids]
    o, sp, sdpa = pos["o"], pos["split"], pos["sdpa"]
    ints = dict(zip(NODE_INT, data.node_int[o].tolist()))
    assert ints == {"dtype": 1, "rank": 3, "num_outputs": 1, "side": 0, "in_degree": 1, "out_degree": 1,
                    "scope_depth": 2, "output_pos": -1}
    assert data.shape_code[o, :3, 0].tolist() == [2, 5, 8] and not data.shape_code[o, :, 1:].any()
    assert data.param_code[o].tolist()[:2] == [[2, 8, 4, 0, 0, 0, 0], [1, 8, 0, 0, 0, 0, 0]]  # weight, bias
    slots = op_layout("split").keys
    assert data.attr_code[sp, slots.index("split_size")].tolist() == [K["int"], 4, 0, 0, 0]
    assert data.attr_code[sp, slots.index("dim")].tolist() == [K["int"], -1, 0, 0, 0]
    assert data.node_int[sp, NODE_INT.index("num_outputs")] == 2
    assert data.attr_code[sdpa, op_layout("scaled_dot_product_attention").keys.index("is_causal"), :2].tolist() == [
        K["bool"], 1]
    assert data.node_int[sdpa, NODE_INT.index("output_pos")] == 1
    f = dict(zip(NODE_FEATURES, data.node_feat[o].tolist()))
    assert f["log_numel"] == pytest.approx(math.log1p(80)) and f["log_params"] == pytest.approx(math.log1p(40))
    assert [f["dim_-3"], f["dim_-2"], f["dim_-1"]] == pytest.approx([math.log1p(2), math.log1p(5), math.log1p(8)])
    assert data.output_index.tolist() == [pos["res"], pos["sdpa"]]
    got = {(data.node_ids[s], data.node_ids[d], p) for s, d, p in zip(*data.edge_index.tolist(), data.edge_port.tolist())}
    assert got == {(e.src, e.dst, e.port) for e in g.edges}
    assert all(s < d for s, d in zip(*data.edge_index.tolist()))


# ----------------------------------------------------------------- exact round trips


def test_round_trip_of_a_hand_built_graph():
    g = _attn()
    _assert_same(from_pyg(to_pyg(g)), g)
    _assert_same(ArchGraph.from_pyg(g.to_pyg()), g)


def test_values_that_are_easy_to_get_wrong():
    g = ArchGraph("edge", inputs=[TensorSpec("x", [2, 12], "float32")])
    x = g.add_node("input", attrs={"name": "x"})
    a = g.add_node("add", [x], attrs={"other": 1, "alpha": True})  # int vs bool
    b = g.add_node("mul", [a], attrs={"other": 1.0})  # float 1.0 vs int 1
    c = g.add_node("clamp", [b], attrs={"min": -0.0, "max": 1e-300})
    d = g.add_node("nan_to_num", [c], attrs={"nan": 0.1, "posinf": "inf", "neginf": "-inf"})
    s = g.add_node("slice", [d], attrs={"dim": 1, "start": 0, "end": 9223372036854775807})
    cat = g.add_node("cat", [s] * 20, attrs={"tensors": ["%"] * 20, "dim": 1})  # 20 ports: (2, 240)
    r9 = g.add_node("reshape", [cat], attrs={"shape": [1] * 7 + [2, 240]})  # rank 9, a list longer than 8
    pm = g.add_node("permute", [r9], attrs={"dims": [0, 1, 2, 3, 4, 5, 6, 8, 7]})
    r2 = g.add_node("reshape", [pm], attrs={"shape": [240, 2]})
    e = g.add_node("einsum", [r2, r2], attrs={"equation": "ij,kj->ik", "tensors": ["%", "%"]})
    w = g.add_node("where_scalar_other", [g.add_node("gt_scalar", [e], attrs={"other": 0}), e],
                   attrs={"other": "nan"})
    g.set_outputs([g.add_node("sum", [w], attrs={"dim": [], "keepdim": False})])
    g.infer()
    g.validate()
    data = to_pyg(g)
    _assert_same(from_pyg(data), g)
    side = {data.node_ids[i]: sorted([*v.get("attrs", {}), *(["shape"] if "shape" in v else [])])
            for i, v in data.side["nodes"].items()}
    # free text, lists longer than 8 and rank-9 shapes go to the side band; everything else is in tensors
    assert side == {x: ["name"], r9: ["shape", "shape"], pm: ["dims", "shape"], e: ["equation"]}


def test_symbolic_dims_decode_exactly():
    """Shapes and size attrs hold dim expressions over B and T (hand-made: no validate)."""
    g = ArchGraph("sym", inputs=[TensorSpec("ids", ["B", "T"], "int64", range=[0, 50])])
    g.dims = {"B": 2, "T": 5}
    ids = g.add_node("input", attrs={"name": "ids"}, shape=["B", "T"], dtype="int64")
    e = g.add_node("embedding", [ids], params={"weight": [50, 8]}, shape=["B", "T", 8], dtype="float32")
    r = g.add_node("reshape", [e], attrs={"shape": ["B*T", 8]}, shape=["B*T", 8], dtype="float32")
    ar = g.add_node("arange", attrs={"end": "T + 1"}, shape=["T + 1"], dtype="int64")
    v = g.add_node("view", [r], attrs={"size": ["2*B*T", 4]}, shape=["2*B*T", 4], dtype="float32")
    x = g.add_node("expand", [v], attrs={"size": ["2*B*T - 1", -1]}, shape=["2*B*T - 1", 4], dtype="float32")
    odd = g.add_node("reshape", [x], attrs={"shape": ["T+1", -1]}, shape=["(T + 1)//2", "B*B"], dtype="float32")
    g.set_outputs([odd, ar])
    data = to_pyg(g)
    _assert_same(from_pyg(data), g)
    pos = {nid: i for i, nid in enumerate(data.node_ids)}
    assert data.shape_code[pos[r], :2].tolist() == [[0, 0, 0, 1], [8, 0, 0, 0]]  # B*T, 8
    assert data.shape_code[pos[ar], 0].tolist() == [1, 0, 1, 0]  # T + 1
    cell = op_layout("expand").keys.index("size")
    area = features.MAX_SLOTS + op_layout("expand").areas[cell] * features.LIST_LEN
    assert data.attr_code[pos[x], cell, :2].tolist() == [K["list"], 2]
    assert data.attr_code[pos[x], area].tolist() == [K["sym"], -1, 0, 0, 2]  # 2*B*T - 1
    assert data.attr_code[pos[ar], 0].tolist() == [K["sym"], 1, 0, 1, 0]
    # non-canonical text ("T+1"), floor division and powers are carried in the side band, exactly
    assert set(data.side["nodes"]) == {pos[ids], pos[odd]}
    assert data.side["nodes"][pos[odd]]["shape"] == ["(T + 1)//2", "B*B"]
    f = dict(zip(NODE_FEATURES, data.node_feat[pos[r]].tolist()))
    assert f["dim_-2"] == pytest.approx(math.log1p(10)) and (f["uses_B"], f["uses_T"]) == (1.0, 1.0)


def _shipped(n: int | None = None) -> list[str]:
    from mad.data import load_default

    dd = load_default()
    texts = [t for split in dd for t in dd[split]["graph"]]
    return texts if n is None else texts[:: max(1, len(texts) // n)][:n]


def _check_shipped(texts: list[str]) -> Counter:
    reasons: Counter = Counter()
    for text in texts:
        g = ArchGraph.from_json(text)
        data = to_pyg(g)
        _assert_same(from_pyg(data), g)
        for i, entry in data.side["nodes"].items():
            op = g.nodes[data.node_ids[i]].op
            reasons.update(f"{op}.{k}" for k in entry.get("attrs", {}))
            reasons.update(f"{op}.{f}" for f in ("shape", "params") if f in entry)
    return reasons


def test_round_trip_on_shipped_graphs():
    reasons = _check_shipped(_shipped(50))
    # what the side band carries on real graphs: free text, constants' bytes, shapes of multi-output nodes
    assert {r.split(".")[1] for r in reasons} <= {"name", "value", "equation", "shape", "pad"}, reasons


@pytest.mark.slow
def test_round_trip_on_every_shipped_graph():
    _check_shipped(_shipped())


# ----------------------------------------------------------------- invariance, batching, errors


@given(arch_graphs(), st.integers(0, 1000))
def test_node_order_does_not_change_the_feature_rows(g, seed):
    a, b = to_pyg(g), to_pyg(relabel(g, seed=seed, prefix="m"))

    def rows(data):
        flat = _rows(data)
        return [(data.x[i].item(), *(tuple(flat[k][i]) for k in flat)) for i in range(data.num_nodes)]

    def edges(data):
        r = rows(data)
        return sorted((r[s], r[d], p) for s, d, p in zip(*data.edge_index.tolist(), data.edge_port.tolist()))

    assert sorted(rows(a)) == sorted(rows(b))
    assert edges(a) == edges(b)
    assert from_pyg(b).wl_hash() == g.wl_hash()


def test_batches_keep_each_graph_decodable():
    graphs = [_attn(), ArchGraph.from_json(_shipped(3)[1])]
    batch = Batch.from_data_list([to_pyg(g) for g in graphs])
    assert batch.num_graphs == 2 and isinstance(batch.side, list)
    assert batch.output_index.max() < batch.num_nodes
    for i, g in enumerate(graphs):
        _assert_same(from_pyg(batch.get_example(i)), g)


def test_errors_name_the_node_and_field():
    g = _attn()
    g.nodes["res"].op = "frobnicate"
    with pytest.raises(UnknownOpError, match="unknown op 'frobnicate'"):
        to_pyg(g)
    g = _attn()
    g.add_edge("ghost", "res", 2)
    with pytest.raises(GraphError, match="node 'ghost' does not exist"):
        to_pyg(g)
    data = to_pyg(_attn())
    data.x[3] = MASK_ID
    with pytest.raises(GraphError, match="node 3: op id 1 is the special token '<mask>'"):
        from_pyg(data)
    data = to_pyg(_attn())
    data.side = SideBand()
    with pytest.raises(GraphError, match=r"node 0 \(input\): fields \['attrs'\] are in the side band"):
        from_pyg(data)


def test_graphs_without_shapes_are_inferred_on_a_copy():
    g = _attn()
    for n in g:
        n.shape = n.dtype = None
    data = to_pyg(g)
    assert all(n.shape is None for n in g) and (data.node_int[:, NODE_INT.index("rank")] >= 0).all()
    back = from_pyg(to_pyg(g, infer=False))
    _assert_same(back, g)
