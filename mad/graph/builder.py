"""GraphBuilder: grow a valid ArchGraph one op at a time.

Every addition is checked at once (op in the vocabulary, attrs against the
op's schema, the number of inputs, the shape rule on the inputs' shapes); a
bad addition raises :class:`~mad.graph.GraphError` naming the op and attr and
leaves the builder unchanged. So every prefix of a build is a valid partial
graph (``validate(g, partial=True)``), which is what a generator decoding a
graph step by step needs; :meth:`GraphBuilder.valid_ops` says which steps
are admissible next.

Adding a node costs O(1) amortised: its shape comes from one (cached) shape
rule call on its inputs' shapes, and the graph's edge index grows in place.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from .arch_graph import ArchGraph, GraphError, Node, TensorSpec
from .builder_ops import prepare_node
from .interpreter import node_flops
from .ops import get_op
from .symbolic import check_expr, free_symbols, normalise
from .validate import validate

__all__ = ["GraphBuilder", "DEFAULT_DIM_HINTS"]

DEFAULT_DIM_HINTS = {"B": 2, "T": 16}


class GraphBuilder:
    """Builds an :class:`~mad.graph.ArchGraph` op by op, inferring each shape as it goes.

    Args:
        name: the graph's name.
        source: the graph's ``source`` (default ``"generated"``).
        dims: example sizes of dim symbols used in input shapes (default
            ``{"B": 2, "T": 16}``; e.g. ``dims={"B": 4}`` overrides one). The
            symbols an input uses are recorded in ``graph.dims``.
        meta: initial ``graph.meta``.

    Ops are added by vocabulary name with attrs as keywords. For layers
    (``linear``, ``conv2d``, ``layer_norm``, ``embedding``...) the keywords
    that are sizes (``out_features``, ``out_channels``, ``kernel_size``,
    ``bias``, ``affine``, ``num_embeddings``, ``embedding_dim``...; see
    :data:`mad.graph.layer_params.LAYER_RULES`) become parameter shapes
    computed from the input shape; every other keyword is an attr, checked
    against the op's schema (an int given for a list attr such as ``stride``
    is repeated per spatial dim). Reserved keywords: ``scope`` (module path
    of the node, below the current :meth:`scope`), ``id`` (node id) and
    ``tie`` (role -> node id whose parameter this layer shares).

    Shapes:
        input shapes may use dim symbols (``("B", 1, 28, 28)``, ``("B", "T")``);
        node shapes then carry them (``["B", 16, 28, 28]``), and size attrs may
        use them too (``view`` sizes ``["B", "T", 4, 16]``, an ``arange`` end
        ``"T"``). FLOPs are counted at the symbols' example sizes.

    Example:
        >>> b = GraphBuilder("net")
        >>> x = b.input("x", ("B", 1, 28, 28))
        >>> h = b.op("relu", b.op("conv2d", x, out_channels=16, kernel_size=3, padding=1))
        >>> h = b.op("flatten", b.op("adaptive_avg_pool2d", h, output_size=[1, 1]), start_dim=1)
        >>> b.output(b.op("linear", h, out_features=10))
        >>> g = b.build()
        >>> g.nodes[g.outputs[0]].shape, g.nodes["conv2d_1"].param_name("weight"), g.dims
        (['B', 10], 'conv2d_0.weight', {'B': 2})
    """

    def __init__(
        self,
        name: str = "graph",
        source: str = "generated",
        dims: dict[str, int] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.g = ArchGraph(name, source=source, meta=meta)
        self.dim_hints: dict[str, int] = dict(DEFAULT_DIM_HINTS) | dict(dims or {})
        self.flops = 0  # running FLOP count of the nodes added and not released (at the example sizes)
        self._node_flops: dict[str, int] = {}
        self._prefix: list[str] = []
        self._scope_counts: dict[tuple[str, str], int] = {}
        self._owned: set[str] = set()  # state-dict names of the parameters so far
        self._param_scopes: set[str] = set()
        self._free_scope: str | None = None  # a released layer scope the next auto-scoped layer takes

    @classmethod
    def extend(cls, g: ArchGraph, dims: dict[str, int] | None = None) -> "GraphBuilder":
        """A builder that adds to the existing graph ``g`` (in place), e.g. inside a pass.

        The parameter names and scopes ``g`` already uses are reserved.
        """
        b = cls(g.name, source=g.source, dims=dims)
        b.g = g
        for n in g.nodes.values():
            if n.params:
                b._param_scopes.add(n.scope)
                b._owned.update(n.param_name(r) for r in n.params)
        return b

    def release(self, nodes: list[str]) -> None:
        """Forget the parameter names and scopes of ``nodes`` (about to be removed), so new layers may reuse them."""
        for nid in nodes:
            self.flops -= self._node_flops.pop(nid, 0)
            n = self.g.nodes.get(nid)
            if n is not None and n.params:
                self._param_scopes.discard(n.scope)
                self._owned.difference_update(n.param_name(r) for r in n.params)

    # ------------------------------------------------------------ queries
    @property
    def graph(self) -> ArchGraph:
        """The graph as built so far (a valid partial graph)."""
        return self.g

    def shape(self, node: str) -> list:
        """Output shape of ``node``."""
        return self._node(node).shape  # type: ignore[return-value]

    def dtype(self, node: str) -> Any:
        return self._node(node).dtype

    def _node(self, node: str) -> Node:
        try:
            return self.g.nodes[node]
        except KeyError:
            raise GraphError(f"no node {node!r} in the graph being built; use an id returned by the builder") from None

    # ------------------------------------------------------------ scopes
    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[str]:
        """Nodes added inside get scope ``<outer>.<name>`` (nested scopes join with dots).

        Example:
            >>> b = GraphBuilder()
            >>> x = b.input("x", ("B", 8))
            >>> with b.scope("encoder.layer.0"):
            ...     y = b.op("linear", x, out_features=8, scope="q_proj")
            >>> b.graph.nodes[y].param_name("weight")
            'encoder.layer.0.q_proj.weight'
        """
        parts = [p for p in name.split(".") if p]
        self._prefix.extend(parts)
        try:
            yield ".".join(self._prefix)
        finally:
            del self._prefix[len(self._prefix) - len(parts):]

    def _scope_for(self, op: str, scope: str | None, owns: bool) -> str:
        prefix = ".".join(self._prefix)
        if scope:
            return f"{prefix}.{scope}" if prefix else scope
        if not owns:
            return prefix
        if self._free_scope is not None and self._free_scope == prefix and prefix not in self._param_scopes:
            self._free_scope = None
            return prefix
        key = (prefix, op)
        while True:  # auto name: <prefix>.<op>_<k>, first free k
            k = self._scope_counts.get(key, 0)
            self._scope_counts[key] = k + 1
            name = f"{prefix}.{op}_{k}" if prefix else f"{op}_{k}"
            if name not in self._param_scopes:
                return name

    # ------------------------------------------------------------ sources
    def _dim(self, d: Any, where: str) -> Any:
        """An int dim as it is; a symbol expression checked, its symbols declared in ``g.dims``."""
        if isinstance(d, str):
            reason = check_expr(d)
            if reason:
                raise GraphError(f"{where}: {reason}")
            for sym in sorted(free_symbols(d)):
                if sym not in self.g.dims:
                    if sym not in self.dim_hints:
                        raise GraphError(f"{where}: dim symbol {sym!r} has no example size; pass dims={{{sym!r}: n}}")
                    self.g.dims[sym] = self.dim_hints[sym]
            return normalise(d) if not d.isidentifier() else d
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise GraphError(f"{where}: dims must be non-negative ints or symbols, got {d!r}")
        return d

    @property
    def symbols(self) -> dict[str, int]:
        """Dim symbols the graph uses -> example size (``graph.dims``)."""
        return dict(self.g.dims)

    def input(self, name: str, shape: Any, dtype: str = "float32", range: list[int] | None = None) -> str:
        """Add a graph input; returns its node id.

        Args:
            name: argument name of ``forward``.
            shape: dims as ints or symbols (``("B", "T")``).
            dtype: dtype name (``"int64"`` for token ids).
            range: ``[low, high)`` of integer inputs (token ids: ``[0, vocab]``).
        """
        if any(s.name == name for s in self.g.inputs):
            raise GraphError(f"input {name!r} already exists")
        where = f"input {name!r}"
        before = dict(self.g.dims)
        try:
            dims = [self._dim(d, where) for d in shape]
        except GraphError:
            self.g.dims = before
            raise
        spec = TensorSpec(name, dims, dtype, list(range) if range is not None else None)
        nid = self._fresh_id(name)
        self.g.inputs.append(spec)
        return self.g.add_node("input", id=nid, attrs={"name": name}, shape=list(dims), dtype=dtype)

    def parameter(self, name: str, shape: list[int], kind: str = "parameter", dtype: str = "float32") -> str:
        """Add a free parameter (class token, position table...) named ``<scope>.<name>``; returns its id.

        ``kind`` is ``parameter``, ``buffer`` or ``constant``.
        """
        prefix = ".".join(self._prefix)
        fqn = f"{prefix}.{name}" if prefix else name
        if fqn in self._owned:
            raise GraphError(f"parameter {fqn!r} already exists; choose another name")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise GraphError(f"parameter {fqn!r}: shape {list(shape)} must be concrete ints (a table for a "
                             "symbolic length is made at the largest length and sliced, e.g. "
                             "b.op('slice', table, dim=0, start=0, end='T'))")
        shape = list(shape)
        if kind not in ("parameter", "buffer", "constant"):
            raise GraphError(f"parameter {fqn!r}: kind must be parameter, buffer or constant, got {kind!r}")
        attrs: dict[str, Any] = {"kind": kind}
        if dtype != "float32":
            attrs["dtype"] = dtype
        nid = self.g.add_node(
            "parameter", id=self._fresh_id(fqn.replace(".", "_")), attrs=attrs, params={"data": list(shape)},
            param_names={"data": fqn}, scope=prefix, shape=list(shape), dtype=dtype,
        )
        self._owned.add(fqn)
        return nid

    def _fresh_id(self, base: str) -> str:
        nid = base
        while nid in self.g.nodes:
            nid += "_"
        return nid

    # ------------------------------------------------------------ ops
    def op(self, op: str, *inputs: str, scope: str | None = None, id: str | None = None,
           tie: dict[str, str] | None = None, **kwargs: Any) -> str:
        """Add ``op`` applied to ``inputs`` (node ids, in port order); returns the new node's id.

        Raises :class:`GraphError` (and adds nothing) for an unknown op, a bad
        or missing attr or size, a wrong number of inputs, or inputs the op
        cannot take (its shape rule fails).
        """
        for i in inputs:
            self._node(i)
        if id is not None and id in self.g.nodes:
            raise GraphError(f"{op}: node id {id!r} already exists")
        p = prepare_node(self.g, op, list(inputs), kwargs)
        owns = bool(p.params)
        full_scope = self._scope_for(op, scope, owns)
        param_names: dict[str, str] = {}
        for role, target in (tie or {}).items():
            param_names[role] = self._tie(op, role, p.params, target)
        new_names = {r: f"{full_scope}.{r}" for r in p.params if r not in param_names}
        clash = sorted(n for n in new_names.values() if n in self._owned)
        if clash:
            raise GraphError(f"{op}: parameter {clash[0]!r} already exists; give this layer another scope=")
        nid = self.g.add_node(op, list(inputs), id=id, attrs=p.attrs, params=p.params, param_names=param_names,
                              scope=full_scope, shape=p.shape, dtype=p.dtype)
        self._owned.update(new_names.values())
        if owns:
            self._param_scopes.add(full_scope)
        self._count(nid, p.flops)
        return nid

    def _count(self, nid: str, flops: int) -> None:
        self._node_flops[nid] = flops
        self.flops += flops

    def count_flops(self, nid: str) -> None:
        """Add node ``nid``'s FLOPs to :attr:`flops`, for a node put into the graph without :meth:`op`."""
        self._count(nid, node_flops(self.g, nid))

    def _tie(self, op: str, role: str, params: dict[str, list[int]], target: str) -> str:
        if role not in params:
            raise GraphError(f"{op}: tie={{{role!r}: ...}} but {op} owns no {role!r} here (it owns {sorted(params)})")
        other = self._node(target)
        if role not in other.params:
            raise GraphError(f"{op}: cannot tie {role!r} to node {target!r} ({other.op}), which owns no {role!r}")
        if other.params[role] != params[role]:
            raise GraphError(f"{op}: cannot tie {role!r} of shape {params[role]} to node {target!r}'s "
                             f"{role!r} of shape {other.params[role]}")
        return other.param_name(role)

    def unpack(self, node: str) -> list[str]:
        """``getitem`` nodes for every output of a multi-output node (``split``, ``lstm``...)."""
        n = self._node(node)
        if not get_op(n.op).multi_output:
            raise GraphError(f"node {node!r} ({n.op}) has one output; nothing to unpack")
        return [self.op("getitem", node, index=i) for i in range(len(n.shape or []))]

    # ------------------------------------------------------------ finishing
    def output(self, *nodes: str, keys: list[str] | None = None) -> None:
        """Declare the outputs: one node (a tensor), several (a tuple) or several with ``keys`` (a dict)."""
        for n in nodes:
            self._node(n)
        if not nodes:
            raise GraphError("output() needs at least one node id")
        self.g.set_outputs(list(nodes), keys=keys)

    def build(self, check: bool = True) -> ArchGraph:
        """The graph, validated (``check``: every invariant, shapes re-inferred).

        The builder keeps a reference: adding more nodes afterwards grows the same graph.
        """
        if not self.g.outputs:
            raise GraphError("build(): no outputs declared; call b.output(node) first")
        if check:
            validate(self.g)
        return self.g

    def valid_ops(self, *inputs: str, ops: list[str] | None = None,
                  choices: dict[str, dict[str, list[Any]]] | None = None) -> dict[str, dict[str, list[Any]]]:
        """Which ops, and which attr/size values, are admissible on ``inputs`` next.

        See :func:`mad.graph.builder_ops.admissible` for the search and its cost.

        Example:
            >>> b = GraphBuilder()
            >>> x = b.input("x", ("B", 3, 8, 8))
            >>> opts = b.valid_ops(x, ops=["conv2d", "linear", "embedding"])
            >>> sorted(opts), opts["conv2d"]["stride"]
            (['conv2d', 'linear'], [1, 2])
        """
        from .builder_ops import admissible

        for i in inputs:
            self._node(i)
        return admissible(self.g, list(inputs), ops=ops, choices=choices)
