"""Conversions of an ArchGraph to graph libraries: networkx and PyTorch Geometric.

``to_networkx`` / ``from_networkx`` are an exact round trip: the JSON of
``from_networkx(to_networkx(g))`` equals the JSON of ``g``.

``to_pyg`` gives the tensors a graph neural network (a GHN, the generator)
reads. Node order is ``g.topo_order()``, so every edge goes from a lower to a
higher node index. The per-node numeric features (``node_feat``, float32,
shape ``(N, F)``, ``F = len(NODE_FEATURES)``) are, in order:

==============  ==============================================================
``log_params``  ``log1p`` of the number of parameter elements the node owns
``log_numel``   ``log1p`` of the number of elements of the output (largest
                element for a multi-output node)
``rank``        rank of the output (of its largest element when multi-output)
``dim_-4``      ``log1p`` of output dim -4 (0 when the rank is below 4)
``dim_-3``      ``log1p`` of output dim -3
``dim_-2``      ``log1p`` of output dim -2
``dim_-1``      ``log1p`` of output dim -1
``num_outputs`` number of tensors the node returns (1 for a tensor)
``w_out``       ``log1p`` of dim 0 of the ``weight`` (or ``data``) param, else 0
``w_in``        ``log1p`` of the product of the remaining dims of that param
``in_degree``   number of input edges
``out_degree``  number of output edges
``is_output``   1.0 when the node is a graph output
==============  ==============================================================
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from .arch_graph import ArchGraph, Edge, GraphError, Node, TensorSpec
from .ops import op_names

__all__ = ["to_networkx", "from_networkx", "to_pyg", "NODE_FEATURES", "op_index"]

NODE_FEATURES: tuple[str, ...] = (
    "log_params",
    "log_numel",
    "rank",
    "dim_-4",
    "dim_-3",
    "dim_-2",
    "dim_-1",
    "num_outputs",
    "w_out",
    "w_in",
    "in_degree",
    "out_degree",
    "is_output",
)

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


def op_index() -> dict[str, int]:
    """Op name -> its index in the sorted vocabulary (the ``x`` of :func:`to_pyg`)."""
    return {name: i for i, name in enumerate(op_names())}


def _largest(shape: Any) -> list[int]:
    """The shape itself, or the largest element's shape for a multi-output node."""
    if shape and isinstance(shape[0], list):
        return max(shape, key=lambda s: math.prod(s) if s else 1)
    return list(shape or [])


def _features(n: Node, in_deg: int, out_deg: int, is_output: bool, dims: dict[str, int] | None = None) -> list[float]:
    from .symbolic import concrete

    shape = _largest(concrete(n.shape, dims or {}))  # symbolic dims at their example sizes
    numel = math.prod(shape) if shape else 1
    dims = [0.0] * 4
    for k, d in enumerate(shape[-4:][::-1]):
        dims[3 - k] = math.log1p(d)
    num_outputs = len(n.shape) if n.shape and isinstance(n.shape[0], list) else 1
    w = n.params.get("weight") or n.params.get("data")
    w_out = math.log1p(w[0]) if w else 0.0
    w_in = math.log1p(math.prod(w[1:])) if w and len(w) > 1 else 0.0
    return [
        math.log1p(n.num_params),
        math.log1p(numel),
        float(len(shape)),
        *dims,
        float(num_outputs),
        w_out,
        w_in,
        float(in_deg),
        float(out_deg),
        1.0 if is_output else 0.0,
    ]


def to_pyg(g: ArchGraph):
    """``g`` as a ``torch_geometric.data.Data``.

    Shapes are inferred on a copy first when any node lacks one.

    Returns:
        ``Data`` with
        - ``x``: long ``(N,)``, index of each node's op in ``op_names()``;
        - ``node_feat``: float32 ``(N, F)``, see :data:`NODE_FEATURES`;
        - ``edge_index``: long ``(2, E)``, node positions in topological order;
        - ``edge_port``: long ``(E,)``, the input port each edge feeds
          (edges sorted by destination position, then port);
        - ``node_ids``: list of the N node ids, in the node order used;
        - ``num_nodes``: N.

    Raises:
        UnknownOpError: a node's op is not in the vocabulary.
        GraphError: the graph has a cycle or shape inference fails.

    Example:
        >>> data = to_pyg(g)
        >>> data.x.shape, data.edge_index.shape
        (torch.Size([6]), torch.Size([2, 6]))
    """
    from torch_geometric.data import Data

    from .ops import get_op

    work = g
    if any(n.shape is None for n in g.nodes.values()):
        work = g.copy()
        work.infer()
    order = work.topo_order()
    pos = {nid: i for i, nid in enumerate(order)}
    vocab = op_index()
    for nid in order:
        get_op(work.nodes[nid].op)  # raises UnknownOpError naming the op
    outputs = set(work.outputs)
    feats = [
        _features(work.nodes[nid], len(work.in_edges(nid)), len(work.out_edges(nid)), nid in outputs, work.dims)
        for nid in order
    ]
    for e in work.edges:
        if e.src not in pos or e.dst not in pos:
            missing = e.src if e.src not in pos else e.dst
            raise GraphError(f"edge {e.src!r} -> {e.dst!r}: node {missing!r} does not exist")
    edges = sorted(work.edges, key=lambda e: (pos[e.dst], e.port))
    edge_index = torch.tensor([[pos[e.src] for e in edges], [pos[e.dst] for e in edges]], dtype=torch.long)
    return Data(
        x=torch.tensor([vocab[work.nodes[nid].op] for nid in order], dtype=torch.long),
        node_feat=torch.tensor(feats, dtype=torch.float32).reshape(len(order), len(NODE_FEATURES)),
        edge_index=edge_index.reshape(2, len(edges)),
        edge_port=torch.tensor([e.port for e in edges], dtype=torch.long),
        node_ids=list(order),
        num_nodes=len(order),
    )
