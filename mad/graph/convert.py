"""Conversion of an ArchGraph to networkx and back.

``to_networkx`` / ``from_networkx`` are an exact round trip: the JSON of
``from_networkx(to_networkx(g))`` equals the JSON of ``g``. The tensors for
graph neural networks (``to_pyg`` / ``from_pyg``) are in
:mod:`mad.graph.features`.
"""

from __future__ import annotations

import copy

from .arch_graph import ArchGraph, Edge, GraphError, Node, TensorSpec

__all__ = ["to_networkx", "from_networkx"]

_NODE_FIELDS = ("op", "attrs", "shape", "dtype", "params", "param_names", "scope")


def to_networkx(g: ArchGraph):
    """``g`` as a ``networkx.MultiDiGraph``.

    Nodes keep their ids and insertion order and carry the attributes
    ``op``, ``attrs``, ``shape``, ``dtype``, ``params``, ``param_names`` and
    ``scope`` (deep copies). Each edge ``(src, dst, key=port)`` carries
    ``port`` and ``index`` (its position in ``g.edges``). Graph attributes:
    ``name``, ``source``, ``meta``, ``inputs`` (list of dicts), ``outputs``,
    ``output_kind``, ``output_keys``.

    Example:
        >>> G = to_networkx(g)
        >>> G.nodes["linear_1"]["op"]
        'linear'
    """
    import networkx as nx

    G = nx.MultiDiGraph()
    G.graph.update(
        name=g.name,
        source=g.source,
        meta=copy.deepcopy(g.meta),
        inputs=[
            {"name": s.name, "shape": list(s.shape), "dtype": s.dtype, "range": copy.copy(s.range),
             "dims": copy.copy(s.dims)}
            for s in g.inputs
        ],
        outputs=list(g.outputs),
        output_kind=g.output_kind,
        output_keys=list(g.output_keys) if g.output_keys is not None else None,
    )
    for n in g.nodes.values():
        G.add_node(n.id, **{f: copy.deepcopy(getattr(n, f)) for f in _NODE_FIELDS})
    for i, e in enumerate(g.edges):
        G.add_edge(e.src, e.dst, key=e.port, port=e.port, index=i)
    return G


def from_networkx(G) -> ArchGraph:
    """Inverse of :func:`to_networkx`.

    Edges are restored in ``index`` order (edges without one follow, by
    destination and port). Raises :class:`GraphError` naming a node that
    lacks ``op`` or an edge that lacks ``port``.
    """
    ga = G.graph
    g = ArchGraph(
        name=ga.get("name", "graph"),
        source=ga.get("source", ""),
        inputs=[
            TensorSpec(s["name"], list(s["shape"]), s.get("dtype", "float32"), copy.copy(s.get("range")),
                       copy.copy(s.get("dims")))
            for s in ga.get("inputs", [])
        ],
        meta=copy.deepcopy(ga.get("meta") or {}),
    )
    for nid, data in G.nodes(data=True):
        if "op" not in data:
            raise GraphError(f"networkx node {nid!r}: missing attribute 'op'")
        g.nodes[nid] = Node(
            id=nid,
            op=data["op"],
            attrs=copy.deepcopy(data.get("attrs") or {}),
            shape=copy.deepcopy(data.get("shape")),
            dtype=copy.deepcopy(data.get("dtype")),
            params=copy.deepcopy(data.get("params") or {}),
            param_names=copy.deepcopy(data.get("param_names") or {}),
            scope=data.get("scope", ""),
        )
    order = list(G.nodes)
    pos = {n: i for i, n in enumerate(order)}
    edges = []
    for src, dst, key, data in G.edges(keys=True, data=True):
        port = data.get("port", key)
        if not isinstance(port, int):
            raise GraphError(f"networkx edge {src!r} -> {dst!r}: attribute 'port' must be an int, got {port!r}")
        index = data.get("index")
        rank = (0, index) if isinstance(index, int) else (1, pos[dst], port)
        edges.append((rank, Edge(src, dst, port)))
    edges.sort(key=lambda t: t[0])
    for _, e in edges:
        g.add_edge(e.src, e.dst, e.port)
    g.set_outputs(list(ga.get("outputs", [])), kind=ga.get("output_kind"), keys=ga.get("output_keys"))
    g._invalidate()
    return g
