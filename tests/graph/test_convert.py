"""to_networkx / from_networkx: an exact round trip."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arch_graphs, relabel

from mad.graph import ArchGraph, GraphError, TensorSpec
from mad.graph.convert import from_networkx, to_networkx
from nets import attn_graph


_attn = attn_graph


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

