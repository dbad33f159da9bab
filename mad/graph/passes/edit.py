"""Small graph edits in the style of torch.fx: rewire uses, insert a node, drop dead code.

Every function edits the graph in place, all-or-nothing (on error the graph
is as it was), re-infers shapes downstream of what it changed, and leaves
``g.validate()`` true when it was true before. Errors are
:class:`~mad.graph.GraphError` s that name the node and say why.

Example:
    >>> bn = insert_after(g, "conv2d_1", "batch_norm")   # conv -> bn -> (old users of conv)
    >>> replace_all_uses(g, "relu_3", "conv2d_1")        # bypass the relu
    >>> eliminate_dead_code(g)                           # the relu is gone
    ['relu_3']
"""

from __future__ import annotations

from typing import Any, Iterable

from ..aliasing import mutates
from ..arch_graph import ArchGraph, Edge, GraphError
from ..builder import GraphBuilder
from .reinfer import reinfer, transaction

__all__ = ["replace_all_uses", "insert_after", "eliminate_dead_code", "mutates", "rewire"]


def _need(g: ArchGraph, nid: str, what: str) -> None:
    if nid not in g.nodes:
        raise GraphError(f"{what}: node {nid!r} does not exist")


def rewire(g: ArchGraph, mapping: dict[str, str], exclude: Iterable[str] = ()) -> list[str]:
    """Make every use of ``old`` (edges and graph outputs) a use of ``mapping[old]``; no shape checks.

    Uses by nodes in ``exclude`` are kept. Returns the ids of the nodes whose inputs changed.
    """
    skip = set(exclude)
    users: list[str] = []
    edges = []
    for e in g.edges:
        if e.src in mapping and e.dst not in skip:
            edges.append(Edge(mapping[e.src], e.dst, e.port))
            users.append(e.dst)
        else:
            edges.append(e)
    g.edges = edges
    g._invalidate()
    g.outputs = [mapping.get(o, o) for o in g.outputs]
    return list(dict.fromkeys(users))


def replace_all_uses(g: ArchGraph, old: str, new: str, exclude: Iterable[str] = ()) -> list[str]:
    """Feed every user of ``old`` (and the graph outputs) from ``new`` instead; re-infer downstream.

    Args:
        g: the graph (edited in place).
        old, new: node ids. ``new`` may have another shape if its users can take it.
        exclude: users that keep reading ``old`` (e.g. ``new`` itself when it consumes ``old``).

    Returns:
        ids of the users that now read ``new``.

    Raises:
        GraphError: a node is missing, the rewiring makes a cycle, or a user cannot take ``new``'s shape.
    """
    _need(g, old, "replace_all_uses")
    _need(g, new, "replace_all_uses")
    if old == new:
        return []
    with transaction(g):
        users = rewire(g, {old: new}, exclude)
        try:
            g.topo_order()
        except GraphError as e:
            raise GraphError(f"replace_all_uses({old!r}, {new!r}): {new!r} depends on a user of {old!r} ({e})") from None
        reinfer(g, users)
    return users


def insert_after(g: ArchGraph, node: str, op: str, *extra_inputs: str, scope: str | None = None,
                 **kwargs: Any) -> str:
    """Insert ``op(node, *extra_inputs, **kwargs)`` between ``node`` and all its users; returns the new id.

    Keywords are those of :meth:`GraphBuilder.op <mad.graph.GraphBuilder.op>` (attrs and layer sizes).
    A parameter-owning op is scoped ``scope`` (default: ``<node's scope>.<op>_<k>``).

    Example:
        >>> d = insert_after(g, "linear_3", "dropout", p=0.1, train=False)
    """
    _need(g, node, "insert_after")
    with transaction(g):
        b = GraphBuilder.extend(g)
        base = g.nodes[node].scope
        with b.scope(base):
            new = b.op(op, node, *extra_inputs, scope=scope, **kwargs)
        users = rewire(g, {node: new}, exclude=[new])
        reinfer(g, users)
    return new


def eliminate_dead_code(g: ArchGraph) -> list[str]:
    """Remove nodes whose value reaches no output and that mutate nothing; returns the removed ids.

    Graph inputs always stay. A node that writes in place into a live tensor
    (an in-place op, see :func:`mutates`) is kept with everything it reads.
    """
    live = g.ancestors([*g.outputs, *(n.id for n in g.nodes.values()
                                     if n.op not in ("input", "parameter") and mutates(n.op))])
    dead = [nid for nid, n in g.nodes.items() if nid not in live and n.op != "input"]
    if dead:
        g.remove_nodes(dead)
    return dead
