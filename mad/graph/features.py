"""Node features of an ArchGraph that decode back exactly: ``to_pyg`` / ``from_pyg``.

One encoding serves the GHN, the tokenizer and the generator. Nodes are in
``g.topo_order()``; every edge goes from a lower to a higher index.

Exact tensors (``from_pyg`` reads them back):

================  ==============  ===============================================================
field             dtype, shape    content
================  ==============  ===============================================================
``x``             long (N,)       frozen op id (:func:`mad.graph.ops.op_id`)
``node_int``      long (N, 8)     :data:`NODE_INT`: ``dtype`` (id in the vocabulary's dtype
                                  table, 0 unknown), ``rank`` (-1: no shape), ``num_outputs``,
                                  ``side`` (bits: 1 shape/dtype, 2 attrs, 4 params are in the
                                  side band), then derived: ``in_degree``, ``out_degree``,
                                  ``scope_depth``, ``output_pos`` (first position in
                                  ``graph.outputs``, -1)
``shape_code``    long (N, 8, 4)  output dim ``i < rank`` as ``(c0, cB, cT, cBT)``: the dim is
                                  ``c0 + cB*B + cT*T + cBT*B*T`` (an int when only ``c0`` is set)
``param_code``    long (N, 4, 7)  parameter role ``r`` (the op's ``param_args`` order):
                                  ``(rank, d0..d5)``, rank -1 when the node does not own it
``attr_code``     long (N, C, 5)  attr cells ``(kind, c0, cB, cT, cBT)``, C = :data:`CELLS`;
                                  see :mod:`mad.graph.feature_codec` for the kinds
``attr_real``     float64 (N, C)  the float of ``float``/``nonfinite`` cells
``edge_index``    long (2, E)     source and destination positions, sorted by destination, port
``edge_port``     long (E,)       the input port each edge feeds
``output_index``  long (K,)       positions of ``graph.outputs``, in order
================  ==============  ===============================================================

Attr cells: cell ``j < 10`` codes slot ``j`` of the op (:func:`~mad.graph.ops.vocab.op_slots`:
its arguments in schema order); the ``k``-th list-typed slot (``ints``,
``floats``, ``bools``, tensor lists) keeps its entries in cells
``10 + 8k .. 17 + 8k`` and its header cell holds the length.

Learning view (derived, not decoded): ``node_feat`` float32 (N, F), the
columns of :data:`NODE_FEATURES`: sizes at the example dims
(``graph.dims``) as ``log1p``, which dims are symbolic, parameter counts,
degrees, and ``cell_j`` = ``sign*log1p|v|`` of each attr cell's number
(list length for lists). Categorical columns (op, dtype, kinds, enum ids)
are the exact tensors above, for embeddings.

Side band (non-tensor attributes, exact): ``node_ids`` (list of N ids) and
``side``, a :class:`~mad.graph.feature_codec.SideBand` (PyG keeps it whole
when batching) holding

==================  ===========================================================
``name``,           the graph's name, source, metadata, inputs (TensorSpecs as
``source``,         dicts), output kind and keys, and dim symbols -> example
``meta``,           sizes
``inputs``,
``output_kind``,
``output_keys``,
``dims``
``scopes``,         per node, in tensor order
``param_names``
``node_order``,     the graph's insertion orders when they differ from the
``edge_order``      tensors' orders (else None), so the JSON text comes back
``nodes[i]``        what node ``i``'s tensors could not hold: ``attrs`` of kind
                    ``side`` (free text such as an input's name or an einsum
                    equation, ``any`` values such as a constant's bytes, lists
                    longer than 8, dims not multilinear in B and T),
                    ``attr_order`` (when it is not the slot order), ``shape``
                    and ``dtype`` of multi-output nodes (or of rank above 8),
                    and ``params`` of unusual shape
==================  ===========================================================

Example:
    >>> data = to_pyg(g)
    >>> from_pyg(data).wl_hash() == g.wl_hash()
    True
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .arch_graph import ArchGraph, GraphError, Node, TensorSpec
from .feature_codec import BOOL, FLOAT, INT, LIST, PORTS, SIDE, SYM, SideBand, dim_code, dim_decode, example_dim
from .feature_codec import example_numel, slog, value_code, value_decode
from .ops import get_op, op_from_id, op_id
from .ops.vocab import SPECIAL_TOKENS, enum_from_id, enum_id, op_slots, op_type

__all__ = ["to_pyg", "from_pyg", "op_layout", "NODE_INT", "NODE_FEATURES", "CELLS", "MAX_RANK"]

MAX_RANK, MAX_ROLES, MAX_PARAM_RANK = 8, 4, 6
MAX_SLOTS, MAX_LISTS, LIST_LEN = 10, 5, 8
CELLS = MAX_SLOTS + MAX_LISTS * LIST_LEN
NODE_INT: tuple[str, ...] = (
    "dtype", "rank", "num_outputs", "side", "in_degree", "out_degree", "scope_depth", "output_pos",
)
SIDE_SHAPE, SIDE_ATTRS, SIDE_PARAMS = 1, 2, 4
NODE_FEATURES: tuple[str, ...] = (
    "log_numel", "rank", "dim_-6", "dim_-5", "dim_-4", "dim_-3", "dim_-2", "dim_-1", "uses_B", "uses_T",
    "log_params", "w_out", "w_in", "num_outputs", "in_degree", "out_degree", "is_output", "scope_depth",
) + tuple(f"cell_{j}" for j in range(CELLS))
_ABSENT_CELL = (0, 0, 0, 0, 0, 0.0)
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_LIST_TYPES = {"ints": "int", "floats": "float", "bools": "bool", "tensor_list": "tensor"}


@dataclass(frozen=True)
class OpLayout:
    """Where an op's attrs live: slot keys and types, and each slot's list area (-1: none)."""

    keys: tuple[str, ...]
    types: tuple[str, ...]
    areas: tuple[int, ...]


@lru_cache(maxsize=None)
def op_layout(name: str) -> OpLayout:
    keys = op_slots(name)
    types = tuple(op_type(name, k) for k in keys)
    areas, k = [], 0
    for t in types:
        areas.append(k if t in _LIST_TYPES else -1)
        k += t in _LIST_TYPES
    if len(keys) > MAX_SLOTS or k > MAX_LISTS:
        raise ValueError(f"op {name!r} has {len(keys)} slots and {k} list slots; the features hold "
                         f"{MAX_SLOTS} and {MAX_LISTS}: widen the layout and bump VOCAB_VERSION")
    return OpLayout(keys, types, tuple(areas))


def _encode_attrs(n: Node, code: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    """Fill one node's cells; return the attrs that go to the side band."""
    lay = op_layout(n.op)
    side: dict[str, Any] = {}
    for j, (key, t, area) in enumerate(zip(lay.keys, lay.types, lay.areas)):
        if key not in n.attrs:
            continue
        v = n.attrs[key]
        c = None
        if area >= 0 and isinstance(v, list):
            if t == "tensor_list" and v and all(e == "%" for e in v):
                c = (PORTS, len(v), 0, 0, 0, 0.0)
            elif len(v) <= LIST_LEN:
                elems = [value_code(e, _LIST_TYPES[t]) for e in v]
                if all(e is not None for e in elems):
                    c = (LIST, len(v), 0, 0, 0, 0.0)
                    for i, e in enumerate(elems):
                        code[MAX_SLOTS + area * LIST_LEN + i] = e[:5]
                        real[MAX_SLOTS + area * LIST_LEN + i] = e[5]
        elif not isinstance(v, list):
            c = value_code(v, t)
        if c is None:
            c = (SIDE, 0, 0, 0, 0, 0.0)
            side[key] = copy.deepcopy(v)
        code[j], real[j] = c[:5], c[5]
    for key, v in n.attrs.items():
        if key not in lay.keys:
            side[key] = copy.deepcopy(v)
    return side


def _shape_row(shape: Any, dtype: Any) -> tuple[list, int, int, bool]:
    """(dim codes, rank, dtype id, exact) of a node's output; element 0 stands for a multi-output node."""
    multi = isinstance(dtype, list) or (bool(shape) and isinstance(shape[0], list))
    first, dt = (shape, dtype) if not multi else (
        shape[0] if shape and isinstance(shape[0], list) else None, dtype[0] if isinstance(dtype, list) and dtype else None)
    codes = [dim_code(d) for d in first] if isinstance(first, list) else []
    did = enum_id("dtype", dt) if dt is None or isinstance(dt, str) else None
    exact = not multi and did is not None and (
        shape is None or (isinstance(shape, list) and None not in codes and len(codes) <= MAX_RANK))
    rank = len(codes) if isinstance(first, list) else -1
    return [c or (0, 0, 0, 0) for c in codes[:MAX_RANK]], rank, did or 0, exact


def _encode_params(n: Node, row: np.ndarray) -> dict[str, list]:
    """Fill one node's ``param_code`` row; return the params that go to the side band."""
    roles = get_op(n.op).param_args
    side = {}
    for r, shp in n.params.items():
        k = roles.index(r) if r in roles else -1
        if 0 <= k < MAX_ROLES and len(shp) <= MAX_PARAM_RANK and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shp
        ):
            row[k, 0] = len(shp)
            row[k, 1 : 1 + len(shp)] = shp
        else:
            side[r] = copy.deepcopy(shp)
    return side


def to_pyg(g: ArchGraph, infer: bool = True):
    """``g`` as a ``torch_geometric.data.Data`` laid out as the module docstring says.

    Args:
        g: the graph.
        infer: when a node has no recorded shape, infer shapes on a copy first
            (then :func:`from_pyg` gives the graph with those shapes).

    Raises:
        UnknownOpError: a node's op is not in the vocabulary.
        GraphError: an edge names a missing node, or the graph has a cycle.
    """
    from torch_geometric.data import Data

    dims = getattr(g, "dims", None)
    if infer and any(n.shape is None for n in g.nodes.values()):
        g = g.copy()
        if dims is not None:
            g.dims = dict(dims)
        g.infer()
    order = g.topo_order()
    pos = {nid: i for i, nid in enumerate(order)}
    for e in g.edges:
        if e.src not in pos or e.dst not in pos:
            missing = e.src if e.src not in pos else e.dst
            raise GraphError(f"edge {e.src!r} -> {e.dst!r}: node {missing!r} does not exist")
    n_nodes = len(order)
    sizes = dict(dims or {})
    for nid in order:
        get_op(g.nodes[nid].op)  # UnknownOpError names the op
    x = [op_id(g.nodes[nid].op) for nid in order]
    missing_out = [o for o in g.outputs if o not in pos]
    if missing_out:
        raise GraphError(f"graph.outputs: node {missing_out[0]!r} does not exist")
    node_int = np.zeros((n_nodes, len(NODE_INT)), np.int64)
    shape_code = np.zeros((n_nodes, MAX_RANK, 4), np.int64)
    param_code = np.zeros((n_nodes, MAX_ROLES, 1 + MAX_PARAM_RANK), np.int64)
    param_code[:, :, 0] = -1
    attr_code = np.zeros((n_nodes, CELLS, 5), np.int64)
    attr_real = np.zeros((n_nodes, CELLS), np.float64)
    feat = np.zeros((n_nodes, len(NODE_FEATURES)), np.float32)
    out_pos: dict[str, int] = {}
    for i, o in enumerate(g.outputs):
        out_pos.setdefault(o, i)
    side_nodes: dict[int, dict[str, Any]] = {}
    for i, nid in enumerate(order):
        n = g.nodes[nid]
        entry: dict[str, Any] = {}
        flags = 0
        codes, rank, did, exact = _shape_row(n.shape, n.dtype)
        if not exact:
            flags |= SIDE_SHAPE
            entry["shape"], entry["dtype"] = copy.deepcopy(n.shape), copy.deepcopy(n.dtype)
        if codes:
            shape_code[i, : len(codes)] = codes
        attrs_side = _encode_attrs(n, attr_code[i], attr_real[i])
        if attrs_side:
            flags |= SIDE_ATTRS
            entry["attrs"] = attrs_side
        slot_keys = op_layout(n.op).keys
        if list(n.attrs) != [k for k in slot_keys if k in n.attrs] + [k for k in n.attrs if k not in slot_keys]:
            entry["attr_order"] = list(n.attrs)
        params_side = _encode_params(n, param_code[i])
        if params_side:
            flags |= SIDE_PARAMS
            entry["params"] = params_side
        if entry:
            side_nodes[i] = entry
        multi = isinstance(n.dtype, list) or (bool(n.shape) and isinstance(n.shape[0], list))
        scope_depth = n.scope.count(".") + 1 if n.scope else 0
        node_int[i] = (did, rank, len(n.shape) if multi and n.shape else 1, flags, len(g.in_edges(nid)),
                       len(g.out_edges(nid)), scope_depth, out_pos.get(nid, -1))
        feat[i, : len(NODE_FEATURES) - CELLS] = _learning_row(n, node_int[i], sizes)
    feat[:, len(NODE_FEATURES) - CELLS :] = _cell_features(attr_code, attr_real, sizes)
    edges = sorted(g.edges, key=lambda e: (pos[e.dst], e.port))
    side = SideBand({
        "name": g.name, "source": g.source, "meta": copy.deepcopy(g.meta),
        "inputs": [{"name": s.name, "shape": copy.deepcopy(s.shape), "dtype": s.dtype,
                    "range": copy.copy(s.range), "dims": copy.copy(s.dims)} for s in g.inputs],
        "output_kind": g.output_kind, "output_keys": copy.copy(g.output_keys),
        "dims": dict(dims) if dims is not None else None,
        "scopes": [g.nodes[nid].scope for nid in order],
        "param_names": [dict(g.nodes[nid].param_names) for nid in order],
        "nodes": side_nodes,
        # insertion orders of g, when they differ from the tensors' orders (None: the same)
        "node_order": _perm([pos[nid] for nid in g.nodes]),
        "edge_order": _perm(_edge_order(g.edges, edges)),
    })
    return Data(
        x=torch.tensor(x, dtype=torch.long),
        node_int=torch.from_numpy(node_int),
        shape_code=torch.from_numpy(shape_code),
        param_code=torch.from_numpy(param_code),
        attr_code=torch.from_numpy(attr_code),
        attr_real=torch.from_numpy(attr_real),
        node_feat=torch.from_numpy(feat),
        edge_index=torch.tensor([[pos[e.src] for e in edges], [pos[e.dst] for e in edges]],
                                dtype=torch.long).reshape(2, len(edges)),
        edge_port=torch.tensor([e.port for e in edges], dtype=torch.long),
        output_index=torch.tensor([pos[o] for o in g.outputs], dtype=torch.long),
        node_ids=list(order),
        side=side,
        num_nodes=n_nodes,
    )


def _perm(p: list[int]) -> list[int] | None:
    return None if p == list(range(len(p))) else p


def _edge_order(original: list, ordered: list) -> list[int]:
    """Position in ``ordered`` of each edge of ``original`` (parallel edges in turn)."""
    slots: dict[Any, list[int]] = {}
    for k, e in enumerate(ordered):
        slots.setdefault(e, []).append(k)
    return [slots[e].pop(0) for e in original]


def _learning_row(n: Node, ints: np.ndarray, sizes: dict[str, int]) -> list[float]:
    shape = n.shape or []
    if shape and isinstance(shape[0], list):  # multi-output: the largest element
        shape = max(shape, key=lambda s: example_numel(s, sizes))
    dims = [0.0] * 6
    for k, d in enumerate(list(shape)[-6:][::-1]):
        dims[5 - k] = slog(example_dim(d, sizes))
    symbols = set(_SYMBOL.findall(" ".join(d for d in shape if isinstance(d, str))))
    w = n.params.get("weight") or n.params.get("data")
    w = w if w and all(isinstance(d, int) for d in w) else None
    n_params = sum(example_numel(s, {}) for s in n.params.values())
    return [
        slog(example_numel(shape, sizes)), float(len(shape)), *dims, float("B" in symbols), float("T" in symbols),
        slog(n_params), slog(w[0]) if w else 0.0, slog(example_numel(w[1:], {})) if w and len(w) > 1 else 0.0,
        float(ints[2]), float(ints[4]), float(ints[5]), float(ints[7] >= 0), float(ints[6]),
    ]


def _cell_features(code: np.ndarray, real: np.ndarray, sizes: dict[str, int]) -> np.ndarray:
    """``sign*log1p|v|`` of every cell's number at the example sizes (see :func:`example_value`)."""
    kind = code[..., 0]
    c = code[..., 1:].astype(np.float64)
    b, t = float(sizes.get("B", 1)), float(sizes.get("T", 1))
    v = np.where(np.isin(kind, (BOOL, INT, LIST, PORTS)), c[..., 0], 0.0)
    v = np.where(kind == FLOAT, real, v)
    v = np.where(kind == SYM, c[..., 0] + c[..., 1] * b + c[..., 2] * t + c[..., 3] * b * t, v)
    v = np.where(np.isfinite(v), v, 0.0)
    return (np.sign(v) * np.log1p(np.abs(v))).astype(np.float32)


def _decode_attrs(op: str, cells: dict[int, tuple], side: dict[str, Any]) -> dict[str, Any]:
    lay = op_layout(op)
    attrs: dict[str, Any] = {}
    for j, (key, t, area) in enumerate(zip(lay.keys, lay.types, lay.areas)):
        c = cells.get(j)
        if c is None:
            continue
        kind = c[0]
        if kind == SIDE:
            attrs[key] = copy.deepcopy(side[key])
        elif kind == PORTS:
            attrs[key] = ["%"] * c[1]
        elif kind == LIST:
            base = MAX_SLOTS + area * LIST_LEN
            elems = [cells.get(base + i, _ABSENT_CELL) for i in range(c[1])]
            attrs[key] = [value_decode(e[0], e[1:5], e[5], _LIST_TYPES[t]) for e in elems]
        else:
            attrs[key] = value_decode(kind, c[1:5], c[5], t)
    for key, v in side.items():
        if key not in attrs:
            attrs[key] = copy.deepcopy(v)
    return attrs


def _used_cells(code: torch.Tensor, real: torch.Tensor, n_nodes: int) -> list[dict[int, tuple]]:
    """Per node: cell index -> (kind, c0, cB, cT, cBT, real), for the cells that are not absent."""
    code, real = code.detach().cpu().numpy(), real.detach().cpu().numpy()
    node, cell = np.nonzero(code[..., 0])
    out: list[dict[int, tuple]] = [{} for _ in range(n_nodes)]
    for i, j, c, r in zip(node.tolist(), cell.tolist(), code[node, cell].tolist(), real[node, cell].tolist()):
        out[i][j] = (*c, r)
    return out


def _rows(t: torch.Tensor) -> list:
    return t.detach().cpu().numpy().tolist()  # numpy's tolist is far faster than torch's on 3-d tensors


def from_pyg(data: Any) -> ArchGraph:
    """The ArchGraph that :func:`to_pyg` encoded in ``data`` (exact, see the module docstring).

    Without a side band (``data.side``), node ids are ``<op>_<i>``, scopes
    empty, and graph inputs come from the ``input`` nodes; values that needed
    the side band then raise :class:`GraphError` naming the node and field.
    """
    side = getattr(data, "side", None) or SideBand()
    side_nodes = side.get("nodes", {})
    x = _rows(data.x)
    n_nodes = len(x)
    ops = []
    for i, t in enumerate(x):
        if t < len(SPECIAL_TOKENS):
            raise GraphError(f"node {i}: op id {t} is the special token {op_from_id(t)!r}, not an op")
        ops.append(op_from_id(t))
    ids = list(getattr(data, "node_ids", None) or [f"{op}_{i}" for i, op in enumerate(ops)])
    node_int, shape_code, param_code = _rows(data.node_int), _rows(data.shape_code), _rows(data.param_code)
    cells = _used_cells(data.attr_code, data.attr_real, n_nodes)
    scopes = side.get("scopes") or [""] * n_nodes
    pnames = side.get("param_names") or [{}] * n_nodes
    g = ArchGraph(side.get("name", "graph"), side.get("source", ""), meta=copy.deepcopy(side.get("meta") or {}))
    for i in side.get("node_order") or range(n_nodes):
        op = ops[i]
        entry = side_nodes.get(i, {})
        did, rank, _, flags = node_int[i][:4]
        need = [f for bit, f in ((SIDE_SHAPE, "shape"), (SIDE_ATTRS, "attrs"), (SIDE_PARAMS, "params"))
                if flags & bit and f not in entry]
        if need:
            raise GraphError(f"node {i} ({op}): fields {need} are in the side band, which this data lacks")
        if flags & SIDE_SHAPE:
            shape, dtype = copy.deepcopy(entry["shape"]), copy.deepcopy(entry["dtype"])
        else:
            shape = None if rank < 0 else [dim_decode(c) for c in shape_code[i][:rank]]
            dtype = enum_from_id("dtype", did)
        roles = get_op(op).param_args
        params = {roles[k]: row[1 : 1 + row[0]] for k, row in enumerate(param_code[i][: len(roles)]) if row[0] >= 0}
        params.update(copy.deepcopy(entry.get("params", {})))
        attrs = _decode_attrs(op, cells[i], entry.get("attrs", {}))
        if "attr_order" in entry:
            attrs = {k: attrs[k] for k in entry["attr_order"]}
        g.add_node(op, id=ids[i], attrs=attrs,
                   params=params, param_names=dict(pnames[i]), scope=scopes[i], shape=shape, dtype=dtype)
    src, dst = _rows(data.edge_index)
    ports = _rows(data.edge_port)
    for k in side.get("edge_order") or range(len(ports)):
        g.add_edge(ids[src[k]], ids[dst[k]], ports[k])
    outs = [ids[i] for i in _rows(data.output_index)]
    g.set_outputs(outs, kind=side.get("output_kind"), keys=copy.copy(side.get("output_keys")))
    if "inputs" in side.data:
        g.inputs = [TensorSpec(s["name"], copy.deepcopy(s["shape"]), s["dtype"], copy.copy(s["range"]),
                               copy.copy(s["dims"])) for s in side["inputs"]]
    else:
        g.inputs = [TensorSpec(n.attrs["name"], list(n.shape or []), n.dtype or "float32")
                    for n in g.nodes.values() if n.op == "input"]
    if side.get("dims") is not None:
        g.dims = dict(side["dims"])
    return g
