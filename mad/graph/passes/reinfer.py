"""Re-infer shapes downstream of edited nodes, optionally adapting each node on the way.

Passes that change a node (its inputs, attrs, params) call :func:`reinfer`
with the ids they touched; every node downstream whose inputs changed shape
is re-run through its shape rule, and propagation stops where shapes come
out unchanged. ``retarget`` passes an ``adapt`` hook that edits size-bearing
attrs and parameter shapes before each node is re-inferred.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Callable, Iterable, Iterator

from ..arch_graph import ArchGraph, GraphError, Node
from ..interpreter import _data_dependent, _shape_rule, param_dtype
from ..ops import get_op
from ..ops.values import dtype_name

__all__ = ["reinfer", "transaction", "Adapt", "ReinferError"]


class ReinferError(GraphError):
    """A node cannot follow an edit; ``node`` is its id (the message says why)."""

    def __init__(self, message: str, node: str) -> None:
        super().__init__(message)
        self.node = node

# adapt(g, node, in_specs, old_in_shapes) -> None: may edit node.attrs / node.params before the node is
# re-inferred; in_specs are the inputs' new (shape, dtype), old_in_shapes their shapes before the pass.
# The hook may raise GraphError to say the node cannot follow.
Adapt = Callable[[ArchGraph, Node, list[tuple[Any, Any]], list[Any]], None]


def _source_shape(g: ArchGraph, node: Node) -> tuple[Any, Any]:
    if node.op == "input":
        spec = next((s for s in g.inputs if s.name == node.attrs.get("name")), None)
        if spec is None:
            raise GraphError(f"node {node.id!r} (input): input {node.attrs.get('name')!r} is not in graph.inputs")
        return list(spec.shape), spec.dtype
    data = node.params.get("data")
    if data is None:
        raise GraphError(f"node {node.id!r}: parameter node must own params['data']")
    return list(data), dtype_name(param_dtype(g, node, "data"))


def reinfer(g: ArchGraph, changed: Iterable[str], adapt: Adapt | None | str = "layers",
            everything: bool = False, old_shapes: dict[str, Any] | None = None) -> list[str]:
    """Re-infer shape and dtype of ``changed`` nodes and of every node downstream whose inputs changed.

    Args:
        g: the graph, edited in place.
        changed: ids of nodes whose inputs, attrs or params were edited (ids no longer in ``g`` are skipped).
        adapt: hook run on each visited node (not source nodes) before its shape rule; the
            default ``"layers"`` (:func:`~mad.graph.passes.adapt.follow_layers`) lets layers
            downstream re-derive their parameter shapes from their sizes (a linear after a widened
            layer gets more input features); ``None`` changes no attrs or params.
        everything: visit every node in topological order (``adapt`` sees all of them).
        old_shapes: shapes before the edit of nodes changed by the caller (default: as recorded).

    Returns:
        ids of the nodes whose shape or dtype changed, in topological order.

    Raises:
        GraphError: naming the first node whose shape rule fails on its new inputs.
    """
    if adapt == "layers":
        from .adapt import follow_layers

        adapt = follow_layers
    dirty = {n for n in changed if n in g.nodes}
    old: dict[str, Any] = dict(old_shapes or {})
    touched: list[str] = []
    if not dirty and not everything:
        return touched
    for nid in g.topo_order():
        node = g.nodes[nid]
        preds = g.predecessors(nid)
        if not everything and nid not in dirty and not any(p in dirty for p in preds):
            continue
        if node.op in ("input", "parameter"):
            shape, dtype = _source_shape(g, node)
        else:
            in_specs = [(g.nodes[p].shape, g.nodes[p].dtype) for p in preds]
            if adapt is not None:
                adapt(g, node, in_specs, [old.get(p, g.nodes[p].shape) for p in preds])  # type: ignore[operator]
                in_specs = [(g.nodes[p].shape, g.nodes[p].dtype) for p in preds]  # adapt may resize a source
            try:
                shape, dtype = _shape_rule(g, node, get_op(node.op), in_specs)
            except GraphError:
                raise
            except Exception as e:  # noqa: BLE001
                guess = getattr(adapt, "guess", None)
                if _data_dependent(e) and not any(p in dirty for p in preds) and node.shape is not None:
                    shape, dtype = node.shape, node.dtype  # value-dependent op whose inputs did not change
                elif _data_dependent(e) and guess is not None and node.shape is not None:
                    shape, dtype = guess(node), node.dtype  # value-dependent: the adapt hook's best guess
                else:
                    msg = str(e).strip().split("\n")[0]
                    ins = [s for s, _ in in_specs]
                    raise ReinferError(f"node {nid!r} ({node.op}, scope {node.scope!r}): cannot follow the change: "
                                       f"its shape rule fails on inputs of shapes {ins}: {msg}", nid) from None
        if shape != node.shape or dtype != node.dtype:
            old.setdefault(nid, node.shape)
            node.shape, node.dtype = shape, dtype
            dirty.add(nid)
            touched.append(nid)
    return touched


@contextlib.contextmanager
def transaction(g: ArchGraph) -> Iterator[ArchGraph]:
    """Run a pass on ``g`` all-or-nothing: on any exception the graph is restored as it was.

    Example:
        >>> with transaction(g):
        ...     edit(g)        # raises -> g is unchanged
    """
    saved = copy.deepcopy({k: v for k, v in g.__dict__.items() if k not in ("_in_cache", "_out_cache")})
    try:
        yield g
    except BaseException:
        g.__dict__.update(saved)
        g._invalidate()
        raise
