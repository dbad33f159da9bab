"""ArchGraph: the one graph IR every stage of mad speaks.

An ArchGraph is a DAG of :class:`Node` s joined by ordered :class:`Edge` s.
Each node names an op of the vocabulary (:mod:`mad.graph.ops`), carries typed
``attrs``, the ``shape`` and ``dtype`` of its output, the parameters it owns
(``params``: role -> shape, ``param_names``: role -> state-dict name) and the
``scope`` (module path) it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["ArchGraph", "Node", "Edge", "TensorSpec", "GraphError"]


class GraphError(ValueError):
    """A graph breaks an invariant; the message names the node and field."""


@dataclass
class TensorSpec:
    """A graph input.

    Args:
        name: argument name of the model's ``forward``.
        shape: its shape; each dim an int or a symbol expression (``"B"``, ``"T"``)
            whose example size is in ``ArchGraph.dims`` (see :mod:`mad.graph.symbolic`).
        dtype: dtype name, e.g. ``"float32"`` or ``"int64"``.
        range: ``[low, high)`` of valid values for integer inputs (token ids
            inside the vocabulary, masks in ``[0, 2)``).
        dims: optional names of the dims, e.g. ``["batch", "seq"]``.
    """

    name: str
    shape: list[int | str]
    dtype: str = "float32"
    range: list[int] | None = None
    dims: list[str] | None = None


@dataclass
class Node:
    """One op application. See the module docstring for the fields."""

    id: str
    op: str
    attrs: dict[str, Any] = field(default_factory=dict)
    shape: list | None = None
    dtype: str | list | None = None
    params: dict[str, list[int]] = field(default_factory=dict)
    param_names: dict[str, str] = field(default_factory=dict)
    scope: str = ""

    def param_name(self, role: str) -> str:
        """State-dict name of the parameter this node owns as ``role``."""
        if role in self.param_names:
            return self.param_names[role]
        base = self.scope or self.id
        return f"{base}.{role}"

    @property
    def num_params(self) -> int:
        return sum(math.prod(s) for s in self.params.values())


@dataclass(frozen=True)
class Edge:
    """Output of ``src`` feeds input ``port`` of ``dst``."""

    src: str
    dst: str
    port: int


class ArchGraph:
    """A model architecture as a DAG of ops.

    Args:
        name: a human name, e.g. ``"bert"``.
        source: where it came from: ``hf:bert``, ``onnx:file``, ``module:Cls``,
            ``generated``, ``random``.
        inputs: graph inputs, in ``forward`` order.
        meta: free-form metadata (JSON values).
        dims: symbol -> example size of every symbolic dim (``{"B": 2, "T": 16}``);
            shapes and size attrs may use these symbols, so the graph runs at
            any batch size (and sequence length, for token inputs).

    Outputs are ``outputs`` (node ids) with ``output_kind`` ``tensor``,
    ``tuple`` or ``dict`` (then ``output_keys`` names them).

    Example:
        >>> g = ArchGraph("mlp", inputs=[TensorSpec("x", [2, 4])])
        >>> x = g.add_node("input", attrs={"name": "x"})
        >>> y = g.add_node("linear", [x], params={"weight": [3, 4], "bias": [3]}, scope="fc")
        >>> g.set_outputs([y])
        >>> g.infer().num_params
        15
    """

    def __init__(
        self,
        name: str = "graph",
        source: str = "",
        inputs: Iterable[TensorSpec] | None = None,
        meta: dict[str, Any] | None = None,
        dims: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        self.dims: dict[str, int] = dict(dims or {})
        self.source = source
        self.inputs: list[TensorSpec] = list(inputs or [])
        self.meta: dict[str, Any] = dict(meta or {})
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.outputs: list[str] = []
        self.output_kind: str = "tensor"
        self.output_keys: list[str] | None = None
        self._in_cache: dict[str, list[Edge]] | None = None
        self._out_cache: dict[str, list[Edge]] | None = None

    # ----------------------------------------------------------- building
    def add_node(
        self,
        op: str,
        inputs: Iterable[str] = (),
        *,
        id: str | None = None,
        attrs: dict[str, Any] | None = None,
        params: dict[str, list[int]] | None = None,
        param_names: dict[str, str] | None = None,
        scope: str = "",
        shape: list | None = None,
        dtype: str | list | None = None,
    ) -> str:
        """Add a node fed by ``inputs`` (ports 0, 1, ...); returns its id.

        O(1) amortised: the edge index is updated in place, never rebuilt.
        Raises :class:`GraphError` if the id exists or an input id does not.
        """
        inputs = list(inputs)
        for src in inputs:
            if src not in self.nodes:
                raise GraphError(f"add_node({op!r}): input node {src!r} does not exist; add it first")
        if id is None:
            id = f"{op}_{len(self.nodes)}"
            while id in self.nodes:
                id += "_"
        if id in self.nodes:
            raise GraphError(f"node id {id!r} already exists")
        self.nodes[id] = Node(
            id=id,
            op=op,
            attrs=dict(attrs or {}),
            shape=shape,
            dtype=dtype,
            params={k: list(v) for k, v in (params or {}).items()},
            param_names=dict(param_names or {}),
            scope=scope,
        )
        if self._in_cache is not None:
            self._in_cache.setdefault(id, [])
            self._out_cache.setdefault(id, [])  # type: ignore[union-attr]
        for port, src in enumerate(inputs):
            self.add_edge(src, id, port)
        return id

    def add_edge(self, src: str, dst: str, port: int) -> None:
        """Feed the output of ``src`` into input ``port`` of ``dst`` (O(1) amortised).

        Ends that do not exist yet are allowed here (documents are read edge by
        edge); :func:`~mad.graph.validate` reports dangling edges.
        """
        e = Edge(src, dst, port)
        self.edges.append(e)
        if self._in_cache is None:
            return
        ins = self._in_cache.setdefault(dst, [])
        ins.append(e)
        if len(ins) > 1 and ins[-2].port > port:  # rare: ports added out of order
            ins.sort(key=lambda x: x.port)
        self._out_cache.setdefault(src, []).append(e)  # type: ignore[union-attr]

    def set_outputs(self, node_ids: list[str], kind: str | None = None, keys: list[str] | None = None) -> None:
        """Declare the graph outputs: one tensor, a tuple, or a dict with ``keys``."""
        self.outputs = list(node_ids)
        self.output_keys = list(keys) if keys is not None else None
        self.output_kind = kind or ("dict" if keys is not None else ("tensor" if len(node_ids) == 1 else "tuple"))

    def remove_nodes(self, ids: Iterable[str]) -> None:
        """Remove nodes and every edge touching them (one pass over the edge list)."""
        ids = set(ids)
        if not ids:
            return
        for i in ids:
            self.nodes.pop(i, None)
        self.edges = [e for e in self.edges if e.src not in ids and e.dst not in ids]
        if self._in_cache is None:
            return
        ins, outs = self._in_cache, self._out_cache
        assert outs is not None
        for i in ids:
            for e in ins.pop(i, []):
                if e.src not in ids and e.src in outs:
                    outs[e.src] = [x for x in outs[e.src] if x.dst != i]
            for e in outs.pop(i, []):
                if e.dst not in ids and e.dst in ins:
                    ins[e.dst] = [x for x in ins[e.dst] if x.src != i]

    def _invalidate(self) -> None:
        """Drop the edge index; the next query rebuilds it (after editing ``edges`` by hand)."""
        self._in_cache = None
        self._out_cache = None

    # ----------------------------------------------------------- queries
    def _index(self) -> None:
        ins: dict[str, list[Edge]] = {n: [] for n in self.nodes}
        outs: dict[str, list[Edge]] = {n: [] for n in self.nodes}
        for e in self.edges:
            ins.setdefault(e.dst, []).append(e)
            outs.setdefault(e.src, []).append(e)
        for v in ins.values():
            v.sort(key=lambda e: e.port)
        self._in_cache, self._out_cache = ins, outs

    def in_edges(self, node_id: str) -> list[Edge]:
        """Edges into ``node_id``, sorted by port."""
        if self._in_cache is None:
            self._index()
        return self._in_cache.get(node_id, [])  # type: ignore[union-attr]

    def out_edges(self, node_id: str) -> list[Edge]:
        """Edges out of ``node_id``, in insertion order."""
        if self._out_cache is None:
            self._index()
        return self._out_cache.get(node_id, [])  # type: ignore[union-attr]

    def predecessors(self, node_id: str) -> list[str]:
        return [e.src for e in self.in_edges(node_id)]

    def successors(self, node_id: str) -> list[str]:
        return [e.dst for e in self.out_edges(node_id)]

    def ancestors(self, roots: Iterable[str]) -> set[str]:
        """The nodes of ``roots`` (those that exist) and every node upstream of them."""
        seen: set[str] = set()
        stack = [r for r in roots if r in self.nodes]
        while stack:
            nid = stack.pop()
            if nid not in seen:
                seen.add(nid)
                stack.extend(self.predecessors(nid))
        return seen

    def topo_order(self) -> list[str]:
        """Node ids in a topological order (stable: insertion order breaks ties).

        Raises :class:`GraphError` naming a node on a cycle.
        """
        indeg = {n: 0 for n in self.nodes}
        for e in self.edges:
            if e.dst in indeg and e.src in indeg:
                indeg[e.dst] += 1
        pos = {n: i for i, n in enumerate(self.nodes)}
        import heapq

        ready = [(pos[n], n) for n, d in indeg.items() if d == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, n = heapq.heappop(ready)
            order.append(n)
            for e in self.out_edges(n):
                if e.dst in indeg:
                    indeg[e.dst] -= 1
                    if indeg[e.dst] == 0:
                        heapq.heappush(ready, (pos[e.dst], e.dst))
        if len(order) != len(self.nodes):
            stuck = next(n for n, d in indeg.items() if d > 0)
            raise GraphError(f"graph has a cycle through node {stuck!r}")
        return order

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"ArchGraph(name={self.name!r}, source={self.source!r}, nodes={len(self.nodes)}, edges={len(self.edges)})"

    def input_node(self, name: str) -> str:
        for n in self.nodes.values():
            if n.op == "input" and n.attrs.get("name") == name:
                return n.id
        raise GraphError(f"no input node named {name!r}")

    def copy(self) -> "ArchGraph":
        from .serialize import from_dict, to_dict

        return from_dict(to_dict(self))

    # ----------------------------------------------------------- passes
    def infer(self, check: bool = False):
        """Run the interpreter: fill every node's shape and dtype; return the summary."""
        from .interpreter import interpret

        return interpret(self, update=not check, check=check)

    def validate(self, partial: bool = False) -> "ArchGraph":
        """Check every invariant; raise :class:`GraphError` naming the culprit.

        ``partial`` accepts a graph that declares no outputs yet (a prefix being built).
        """
        from .validate import validate

        validate(self, partial=partial)
        return self

    @property
    def num_params(self) -> int:
        """Parameters owned by the graph (tied parameters counted once)."""
        from .ops import get_op

        seen: dict[str, int] = {}
        for n in self.nodes.values():
            if n.op == "parameter" and n.attrs.get("kind", "parameter") != "parameter":
                continue
            for role, shape in n.params.items():
                if role in get_op(n.op).buffer_args:
                    continue
                seen[n.param_name(role)] = math.prod(shape)
        return sum(seen.values())

    # ----------------------------------------------------------- conversions
    def to_dict(self) -> dict[str, Any]:
        from .serialize import to_dict

        return to_dict(self)

    def to_json(self, path: str | Path | None = None, indent: int | None = None) -> str:
        """JSON text of the graph (schema-versioned); written to ``path`` if given."""
        from .serialize import to_json

        return to_json(self, path, indent=indent)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> "ArchGraph":
        """Parse JSON text or a ``.json`` file; malformed documents raise :class:`GraphError`."""
        from .serialize import from_json

        return from_json(text_or_path)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArchGraph":
        from .serialize import from_dict

        return from_dict(d)

    def to_module(self, device: Any = None):
        """A runnable ``nn.Module`` built from the graph (no code generation)."""
        from .module import ArchModule

        return ArchModule(self, device=device)

    def to_code(self, class_name: str | None = None) -> str:
        """Readable PyTorch source of an equivalent ``nn.Module`` class."""
        from .codegen import to_code

        return to_code(self, class_name=class_name)

    def to_networkx(self):
        from .convert import to_networkx

        return to_networkx(self)

    def to_pyg(self, infer: bool = True):
        """Node features as a ``torch_geometric`` ``Data`` that decodes back exactly (:mod:`mad.graph.features`)."""
        from .features import to_pyg

        return to_pyg(self, infer=infer)

    @classmethod
    def from_pyg(cls, data: Any) -> "ArchGraph":
        """Inverse of :meth:`to_pyg`."""
        from .features import from_pyg

        return from_pyg(data)

    def to_onnx(self, path: str | Path, **kwargs: Any) -> Path:
        from .onnx_io import to_onnx

        return to_onnx(self, path, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | Path, **kwargs: Any) -> "ArchGraph":
        from .onnx_io import from_onnx

        return from_onnx(path, **kwargs)

    def wl_hash(self, iterations: int = 3) -> str:
        """Canonical Weisfeiler-Lehman hash over op + attrs (ids and order ignored)."""
        from .hashing import wl_hash

        return wl_hash(self, iterations=iterations)

    def example_inputs(self, seed: int | None = None, device: Any = None, dims: dict[str, int] | None = None) -> tuple:
        """Random valid inputs for the graph's input specs, in ``forward`` order.

        Symbolic dims take their sizes from ``dims`` (``{"B": 8}``), else from ``self.dims``.
        """
        from .interpreter import example_inputs

        return example_inputs(self, seed=seed, device=device, dims=dims)
