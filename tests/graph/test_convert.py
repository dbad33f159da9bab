"""to_networkx / from_networkx (exact round trip) and to_pyg (tensors for GNNs)."""

from __future__ import annotations

import math

import networkx as nx
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import arch_graphs, relabel

from mad.graph import ArchGraph, GraphError, TensorSpec, UnknownOpError, op_names
from mad.graph.convert import NODE_FEATURES, from_networkx, op_index, to_networkx, to_pyg


def _attn() -> ArchGraph:
    """x (2, 5, 8) -> q, k, v projections -> sdpa -> split -> getitem -> out proj; x + out."""
    g = ArchGraph("attn", source="test", inputs=[TensorSpec("x", [2, 5, 8], dims=["batch", "seq", "channel"])],
                  meta={"note": {"a": [1, 2]}})
    x = g.add_node("input", id="x", attrs={"name": "x"})
    qkv = [g.add_node("linear", [x], id=n, params={"weight": [8, 8]}, scope=f"attn.{n}") for n in ("q", "k", "v")]
    a = g.add_node("scaled_dot_product_attention", qkv, id="sdpa", attrs={"is_causal": True})
    sp = g.add_node("split", [a], id="split", attrs={"split_size": 4, "dim": -1})
    h0 = g.add_node("getitem", [sp], id="h0", attrs={"index": 0})
    o = g.add_node("linear", [h0], id="o", params={"weight": [8, 4], "bias": [8]}, scope="attn.o")
    r = g.add_node("add", [x, o], id="res")
    g.set_outputs([r, a], keys=["out", "attn"])
    return g


# ----------------------------------------------------------------- networkx


def test_to_networkx_fields():
    g = _attn()
    g.infer()
    G = to_networkx(g)
    assert isinstance(G, nx.MultiDiGraph)
    assert list(G.nodes) == list(g.nodes)
    assert G.nodes["o"] == {
        "op": "linear", "attrs": {}, "shape": [2, 5, 8], "dtype": "float32",
        "params": {"weight": [8, 4], "bias": [8]}, "param_names": {}, "scope": "attn.o",
    }
    assert G.nodes["sdpa"]["attrs"] == {"is_causal": True}
    assert G.number_of_edges() == len(g.edges) == 11
    assert sorted((d["port"], u) for u, v, d in G.in_edges("sdpa", data=True)) == [(0, "q"), (1, "k"), (2, "v")]
    assert G.graph["outputs"] == ["res", "sdpa"] and G.graph["output_keys"] == ["out", "attn"]
    assert G.graph["inputs"][0]["dims"] == ["batch", "seq", "channel"]
    assert nx.is_directed_acyclic_graph(G)


def test_networkx_keeps_parallel_edges():
    g = ArchGraph(inputs=[TensorSpec("x", [3])])
    x = g.add_node("input", attrs={"name": "x"})
    g.set_outputs([g.add_node("mul", [x, x])])  # x * x: two edges x -> mul, ports 0 and 1
    G = to_networkx(g)
    assert G.number_of_edges(x, "mul_1") == 2
    back = from_networkx(G)
    assert back.to_json() == g.to_json()


def test_networkx_copies_are_independent():
    g = _attn()
    G = to_networkx(g)
    G.nodes["split"]["attrs"]["dim"] = 0
    G.graph["meta"]["note"]["a"].append(3)
    assert g.nodes["split"].attrs["dim"] == -1 and g.meta["note"]["a"] == [1, 2]
    back = from_networkx(G)
    G.nodes["q"]["params"]["weight"][0] = 1
    assert back.nodes["q"].params["weight"] == [8, 8]


@pytest.mark.parametrize("infer", [False, True])
def test_networkx_round_trip_is_exact(infer):
    g = _attn()
    if infer:
        g.infer()
    back = from_networkx(to_networkx(g))
    assert back.to_json() == g.to_json()
    back.validate()


@given(arch_graphs(), st.integers(0, 1000))
def test_random_graphs_networkx_round_trip(g, seed):
    g = relabel(g, seed=seed)  # edges in no particular order
    back = from_networkx(to_networkx(g))
    assert back.to_json() == g.to_json()


def test_from_networkx_without_edge_index_orders_by_destination_and_port():
    G = to_networkx(_attn())
    for _, _, d in G.edges(data=True):
        del d["index"]
    back = from_networkx(G)
    back.validate()
    assert back.predecessors("sdpa") == ["q", "k", "v"]
    assert back.wl_hash() == _attn().wl_hash()


def test_from_networkx_names_bad_nodes_and_edges():
    G = to_networkx(_attn())
    G.add_node("stray")
    with pytest.raises(GraphError, match="networkx node 'stray': missing attribute 'op'"):
        from_networkx(G)
    G = to_networkx(_attn())
    G.add_edge("x", "o", key="p", port="p")
    with pytest.raises(GraphError, match=r"networkx edge 'x' -> 'o': attribute 'port' must be an int"):
        from_networkx(G)


# ----------------------------------------------------------------- pyg


def test_to_pyg_tensors():
    g = _attn()
    data = to_pyg(g)
    vocab = op_names()
    order = g.topo_order()
    assert data.node_ids == order and data.num_nodes == len(order) == 9
    assert data.x.dtype == torch.long and data.x.shape == (9,)
    assert [vocab[i] for i in data.x.tolist()] == [g.nodes[n].op for n in order]
    assert data.edge_index.shape == (2, 11) and data.edge_index.dtype == torch.long
    assert data.edge_port.shape == (11,) and data.edge_port.dtype == torch.long
    pos = {n: i for i, n in enumerate(order)}
    triples = zip(*data.edge_index.tolist(), data.edge_port.tolist())
    got = {(data.node_ids[s], data.node_ids[d], p) for s, d, p in triples}
    assert got == {(e.src, e.dst, e.port) for e in g.edges}
    assert all(pos[e.src] < pos[e.dst] for e in g.edges)
    assert data.node_feat.shape == (9, len(NODE_FEATURES)) and data.node_feat.dtype == torch.float32
    assert all(n.shape is None for n in g)  # shapes were inferred on a copy


def test_to_pyg_features_of_known_nodes():
    g = _attn()
    data = to_pyg(g)
    f = {nid: dict(zip(NODE_FEATURES, row)) for nid, row in zip(data.node_ids, data.node_feat.tolist())}
    o = f["o"]  # linear 4 -> 8 with bias on (2, 5, 4): output (2, 5, 8)
    assert o["log_params"] == pytest.approx(math.log1p(8 * 4 + 8))
    assert o["log_numel"] == pytest.approx(math.log1p(80))
    assert o["rank"] == 3 and o["num_outputs"] == 1
    assert [o["dim_-4"], o["dim_-3"], o["dim_-2"], o["dim_-1"]] == pytest.approx(
        [0.0, math.log1p(2), math.log1p(5), math.log1p(8)]
    )
    assert o["w_out"] == pytest.approx(math.log1p(8)) and o["w_in"] == pytest.approx(math.log1p(4))
    assert (o["in_degree"], o["out_degree"], o["is_output"]) == (1, 1, 0)
    sp = f["split"]  # two outputs (2, 5, 4)
    assert sp["num_outputs"] == 2 and sp["rank"] == 3 and sp["log_numel"] == pytest.approx(math.log1p(40))
    assert sp["log_params"] == 0 and sp["w_out"] == 0
    assert f["sdpa"]["is_output"] == 1 and f["sdpa"]["out_degree"] == 1
    assert f["x"]["in_degree"] == 0 and f["x"]["out_degree"] == 4


def test_to_pyg_rejects_unknown_ops_and_dangling_edges():
    g = _attn()
    g.infer()
    g.nodes["res"].op = "frobnicate"
    with pytest.raises(UnknownOpError, match="unknown op 'frobnicate'"):
        to_pyg(g)
    g = _attn()
    g.infer()
    g.add_edge("ghost", "res", 2)
    with pytest.raises(GraphError, match="node 'ghost' does not exist"):
        to_pyg(g)


def test_op_index_matches_sorted_vocabulary():
    idx = op_index()
    assert list(idx) == op_names() and list(idx.values()) == list(range(len(idx)))


@given(arch_graphs(), st.integers(0, 1000))
def test_to_pyg_is_permutation_equivariant(g, seed):
    """Relabelled graphs give the same node multiset and the same edge set up to the id mapping."""
    a, b = to_pyg(g), to_pyg(relabel(g, seed=seed, prefix="m"))

    def rows(data):
        return sorted(
            (int(op), tuple(feat)) for op, feat in zip(data.x.tolist(), data.node_feat.tolist())
        )

    def edges(data):
        key = {i: (int(data.x[i]), tuple(data.node_feat[i].tolist())) for i in range(data.num_nodes)}
        return sorted((key[s], key[d], p) for s, d, p in zip(*data.edge_index.tolist(), data.edge_port.tolist()))

    assert a.num_nodes == b.num_nodes
    assert rows(a) == rows(b)
    assert edges(a) == edges(b)


def test_arch_graph_methods_delegate():
    g = _attn()
    G = g.to_networkx()
    assert dict(G.nodes(data=True)) == dict(to_networkx(g).nodes(data=True))
    data = g.to_pyg()
    assert torch.equal(data.x, to_pyg(g).x) and data.node_ids == g.topo_order()
