"""JSON form of an ArchGraph, versioned by :data:`SCHEMA_VERSION`.

Document layout::

    {"format": "mad.archgraph", "schema_version": 2, "vocab_version": ...,
     "name": ..., "source": ..., "meta": {...}, "dims": {"B": 2, "T": 16},
     "inputs": [{"name", "shape", "dtype", "range"?, "dims"?}],
     "outputs": {"kind": "tensor"|"tuple"|"dict", "nodes": [...], "keys"?: [...]},
     "nodes": [{"id", "op", "attrs"?, "shape"?, "dtype"?, "params"?, "param_names"?, "scope"?}],
     "edges": [[src, dst, port], ...]}

Version 2 added ``dims`` (symbol -> example size): a shape entry or a
size attribute may then be a dim expression such as ``"B"`` or ``"B*T"``
(see :mod:`mad.graph.symbolic`). Version 1 documents (concrete shapes only)
still load. Empty fields are left out. Unknown schema versions and malformed documents
are rejected with a :class:`GraphError` that names the node or field.
``vocab_version`` records the op vocabulary the graph was written with; ops
are stored by name, never by id, so documents of every vocabulary version
read alike (an op a newer vocabulary added fails ``validate`` by name).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .arch_graph import ArchGraph, GraphError, TensorSpec
from .ops.registry import VOCAB_VERSION
from .symbolic import check_expr

__all__ = ["SCHEMA_VERSION", "to_dict", "from_dict", "to_json", "from_json"]

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
FORMAT = "mad.archgraph"


def to_dict(g: ArchGraph) -> dict[str, Any]:
    nodes = []
    for n in g.nodes.values():
        d: dict[str, Any] = {"id": n.id, "op": n.op}
        if n.attrs:
            d["attrs"] = n.attrs
        if n.shape is not None:
            d["shape"] = n.shape
        if n.dtype is not None:
            d["dtype"] = n.dtype
        if n.params:
            d["params"] = n.params
        if n.param_names:
            d["param_names"] = n.param_names
        if n.scope:
            d["scope"] = n.scope
        nodes.append(d)
    inputs = []
    for s in g.inputs:
        d = {"name": s.name, "shape": list(s.shape), "dtype": s.dtype}
        if s.range is not None:
            d["range"] = list(s.range)
        if s.dims is not None:
            d["dims"] = list(s.dims)
        inputs.append(d)
    outputs: dict[str, Any] = {"kind": g.output_kind, "nodes": list(g.outputs)}
    if g.output_keys is not None:
        outputs["keys"] = list(g.output_keys)
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "vocab_version": VOCAB_VERSION,
        "name": g.name,
        "source": g.source,
        "meta": g.meta,
        "dims": dict(g.dims),
        "inputs": inputs,
        "outputs": outputs,
        "nodes": nodes,
        "edges": [[e.src, e.dst, e.port] for e in g.edges],
    }


def _need(d: dict, key: str, types: type | tuple, where: str) -> Any:
    if key not in d:
        raise GraphError(f"{where}: missing field {key!r}")
    v = d[key]
    if not isinstance(v, types):
        names = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise GraphError(f"{where}: field {key!r} must be {names}, got {type(v).__name__}")
    return v


def from_dict(d: Any) -> ArchGraph:
    if not isinstance(d, dict):
        raise GraphError(f"graph document must be a JSON object, got {type(d).__name__}")
    if d.get("format", FORMAT) != FORMAT:
        raise GraphError(f"not an ArchGraph document: format is {d.get('format')!r}, expected {FORMAT!r}")
    version = d.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise GraphError(
            f"unsupported schema_version {version!r}: this mad reads versions {list(READABLE_VERSIONS)}; "
            "convert the graph again with this version"
        )
    dims = d.get("dims") or {}
    if not isinstance(dims, dict) or not all(
        isinstance(k, str) and k.isidentifier() and isinstance(v, int) and not isinstance(v, bool) and v >= 2
        for k, v in dims.items()
    ):
        raise GraphError(f"graph: field 'dims' must map symbol names to example sizes >= 2, got {dims!r}")
    g = ArchGraph(
        name=str(d.get("name", "graph")),
        source=str(d.get("source", "")),
        meta=copy.deepcopy(d.get("meta") or {}),
        dims=dims,
    )
    for i, s in enumerate(_need(d, "inputs", list, "graph")):
        where = f"inputs[{i}]"
        if not isinstance(s, dict):
            raise GraphError(f"{where}: must be an object")
        shape = _need(s, "shape", list, where)
        if not all(isinstance(x, (int, str)) and not isinstance(x, bool) for x in shape):
            raise GraphError(f"{where}: field 'shape' must be a list of ints or dim expressions")
        for x in shape:
            if isinstance(x, str) and check_expr(x) is not None:
                raise GraphError(f"{where}: {check_expr(x)}")
        g.inputs.append(
            TensorSpec(
                name=_need(s, "name", str, where),
                shape=shape,
                dtype=s.get("dtype", "float32"),
                range=s.get("range"),
                dims=s.get("dims"),
            )
        )
    for i, n in enumerate(_need(d, "nodes", list, "graph")):
        where = f"nodes[{i}]"
        if not isinstance(n, dict):
            raise GraphError(f"{where}: must be an object")
        nid = _need(n, "id", str, where)
        where = f"node {nid!r}"
        if nid in g.nodes:
            raise GraphError(f"{where}: duplicate node id")
        attrs = copy.deepcopy(n.get("attrs", {}))
        params = n.get("params", {})
        pnames = n.get("param_names", {})
        for key, val in (("attrs", attrs), ("params", params), ("param_names", pnames)):
            if not isinstance(val, dict):
                raise GraphError(f"{where}: field {key!r} must be an object")
        for role, shape in params.items():
            if not isinstance(shape, list) or not all(isinstance(x, int) and x >= 0 for x in shape):
                raise GraphError(f"{where}: params[{role!r}] must be a list of non-negative ints")
        g.add_node(
            _need(n, "op", str, where),
            id=nid,
            attrs=attrs,
            params=params,
            param_names=pnames,
            scope=str(n.get("scope", "")),
            shape=n.get("shape"),
            dtype=n.get("dtype"),
        )
    for i, e in enumerate(_need(d, "edges", list, "graph")):
        if (
            not isinstance(e, list)
            or len(e) != 3
            or not isinstance(e[0], str)
            or not isinstance(e[1], str)
            or not isinstance(e[2], int)
        ):
            raise GraphError(f"edges[{i}]: must be [src, dst, port], got {e!r}")
        g.add_edge(e[0], e[1], e[2])
    out = _need(d, "outputs", dict, "graph")
    nodes = _need(out, "nodes", list, "outputs")
    g.set_outputs(nodes, kind=out.get("kind"), keys=out.get("keys"))
    return g


def to_json(g: ArchGraph, path: str | Path | None = None, indent: int | None = None) -> str:
    text = json.dumps(to_dict(g), indent=indent, allow_nan=False)
    if path is not None:
        Path(path).write_text(text)
    return text


def from_json(text_or_path: str | Path) -> ArchGraph:
    if isinstance(text_or_path, Path) or (isinstance(text_or_path, str) and not text_or_path.lstrip().startswith("{")):
        p = Path(text_or_path)
        if not p.exists():
            raise FileNotFoundError(f"graph file not found: {p}")
        text = p.read_text()
        where = str(p)
    else:
        text, where = str(text_or_path), "graph JSON"
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise GraphError(f"{where}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    return from_dict(d)
