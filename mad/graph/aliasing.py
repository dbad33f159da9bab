"""Which nodes write into a tensor in place, which share storage, and the order that makes their effects the same.

An ArchGraph's edges carry data; an in-place op (``x.add_(y)``, ``cache.copy_(k)``) also has an effect that
the edges do not show: every node that reads ``x`` (or a view of it) before the write sees the old values,
every node after it the new ones. The graph keeps that order as its node order, and anything that reorders
nodes (the tokenizer's canonical order) must keep it too: :func:`effect_order` gives, per node, the nodes
that must come before it for that reason.

Which ops write and which return a view comes from their aten schemas (``Tensor(a!) self`` and
``-> Tensor(a)``); ``getitem`` of a view-returning op (``split``, ``unbind``) is a view too.

Example:
    >>> effect_order(g)                      # {node id: [ids that must precede it]}; empty without in-place ops
    {}
"""

from __future__ import annotations

from functools import lru_cache

from .arch_graph import ArchGraph
from .ops.registry import get_op, has_op

__all__ = ["mutates", "aliases_input", "shares_storage", "written_tensor", "storage_family", "effect_order"]


@lru_cache(maxsize=None)
def mutates(op_name: str) -> bool:
    """Whether the op writes into one of its inputs (its aten schema is mutable: ``add_``, ``copy_``...)."""
    if not has_op(op_name):
        return False
    schema = getattr(get_op(op_name).target, "_schema", None)
    return bool(schema is not None and schema.is_mutable)


@lru_cache(maxsize=None)
def aliases_input(op_name: str) -> bool:
    """Whether the op's output may share storage with an input (views, in-place ops)."""
    if not has_op(op_name):
        return False
    schema = getattr(get_op(op_name).target, "_schema", None)
    return schema is not None and any(r.alias_info is not None for r in schema.returns)


def shares_storage(g: ArchGraph, nid: str) -> bool:
    """Whether node ``nid``'s output may share storage with its first input (a view, an in-place op's result, an
    item of ``split``...)."""
    op = g.nodes[nid].op
    if op == "getitem":
        src = written_tensor(g, nid)
        return src is not None and aliases_input(g.nodes[src].op)
    return aliases_input(op)


def written_tensor(g: ArchGraph, nid: str) -> str | None:
    """The node at port 0 of ``nid`` (what an in-place op writes into, what a view is a view of)."""
    return next((e.src for e in g.in_edges(nid) if e.port == 0), None)


def storage_family(g: ArchGraph, nid: str) -> set[str]:
    """The nodes whose outputs may share storage with ``nid``'s: up through the views and in-place results it
    is made from, then down through every view and in-place result of those."""
    root = nid
    while shares_storage(g, root):
        up = written_tensor(g, root)
        if up is None:
            break
        root = up
    family, stack = {root}, [root]
    while stack:
        for e in g.out_edges(stack.pop()):
            if e.port == 0 and e.dst not in family and shares_storage(g, e.dst):
                family.add(e.dst)
                stack.append(e.dst)
    return family


def effect_order(g: ArchGraph) -> dict[str, list[str]]:
    """Per node, the nodes that must precede it beyond its inputs, so that every in-place write keeps its place
    among the reads and writes of the storage it changes, in the order the graph runs (``g.topo_order()``,
    which is its node order when that is topological). Views themselves read nothing and are free to move.
    Empty for a graph without in-place ops."""
    writers = [m for m, node in g.nodes.items() if node.op not in ("input", "parameter") and mutates(node.op)]
    if not writers:
        return {}
    pos = {nid: k for k, nid in enumerate(g.topo_order())}
    extra: dict[str, set[str]] = {}
    for m in writers:
        into = written_tensor(g, m)
        if into is None:
            continue
        family = storage_family(g, into)
        for t in family:
            for e in g.out_edges(t):
                r = e.dst
                if r == m or (r in family and not mutates(g.nodes[r].op)):
                    continue
                a, b = (r, m) if pos[r] < pos[m] else (m, r)
                extra.setdefault(b, set()).add(a)
    return {b: sorted(a, key=pos.__getitem__) for b, a in extra.items()}
