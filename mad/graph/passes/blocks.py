"""Edits at the level of blocks (the nodes under one scope): replace, repeat, remove.

A *block* is every node whose scope is ``scope`` or lies below it
(``encoder.layer.1`` holds ``encoder.layer.1.attention.query``...). Its
*inputs* are the outside nodes it reads, its *outputs* the block nodes read
outside it or returned by the graph.

- :func:`replace_subgraph` swaps a block (or any node set) for what a
  builder function makes from the same inputs;
- :func:`repeat_block` / :func:`remove_block` stack copies of a residual
  block, or drop it, when its output has the shape of one of its inputs
  (the *carried* input, e.g. a transformer layer's hidden states). Sibling
  blocks numbered after it (``layer.2``, ``layer.3``...) are renumbered so
  that state-dict names keep execution order.

All are all-or-nothing, re-infer shapes downstream and keep ``validate()`` true.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from ..arch_graph import ArchGraph, GraphError
from ..builder import GraphBuilder
from .edit import eliminate_dead_code, rewire
from .reinfer import reinfer, transaction

__all__ = ["block_nodes", "block_io", "replace_subgraph", "repeat_block", "remove_block", "rename_scope"]


def _in_scope(node_scope: str, scope: str) -> bool:
    return node_scope == scope or node_scope.startswith(scope + ".")


def block_nodes(g: ArchGraph, scope_or_nodes: str | Iterable[str]) -> list[str]:
    """Ids of the block's nodes in topological order (a scope string or an explicit id list)."""
    order = g.topo_order()
    if isinstance(scope_or_nodes, str):
        nodes = [n for n in order if _in_scope(g.nodes[n].scope, scope_or_nodes) and g.nodes[n].op != "input"]
        if not nodes:
            raise GraphError(f"no nodes under scope {scope_or_nodes!r}")
        return nodes
    ids = set(scope_or_nodes)
    missing = sorted(ids - set(g.nodes))
    if missing:
        raise GraphError(f"node {missing[0]!r} does not exist")
    return [n for n in order if n in ids]


def block_io(g: ArchGraph, nodes: list[str]) -> tuple[list[str], list[str]]:
    """(inputs, outputs) of a node set: outside nodes it reads, its nodes read outside or returned."""
    inside = set(nodes)
    ins: dict[str, None] = {}
    outs: dict[str, None] = {}
    for nid in nodes:
        for p in g.predecessors(nid):
            if p not in inside:
                ins[p] = None
        if nid in g.outputs or any(s not in inside for s in g.successors(nid)):
            outs[nid] = None
    return list(ins), list(outs)


def replace_subgraph(g: ArchGraph, scope_or_nodes: str | Iterable[str],
                     builder_fn: Callable[..., Any]) -> list[str]:
    """Replace a block by ``builder_fn(b, *inputs)``'s nodes; returns the new output ids.

    Args:
        g: the graph (edited in place).
        scope_or_nodes: a scope (every node under it) or node ids.
        builder_fn: called with a :class:`~mad.graph.GraphBuilder` on ``g`` (scoped at the block's
            scope) and the block's input ids; returns one node id or a list, one per block output,
            in :func:`block_io` order. The old block's parameter names may be reused.

    Example:
        >>> replace_subgraph(g, "blocks.0.mlp.act", lambda b, x: b.op("silu", x))
    """
    nodes = block_nodes(g, scope_or_nodes)
    ins, outs = block_io(g, nodes)
    scope = scope_or_nodes if isinstance(scope_or_nodes, str) else ""
    with transaction(g):
        b = GraphBuilder.extend(g)
        b.release(nodes)
        if scope and any(g.nodes[n].params and g.nodes[n].scope == scope for n in nodes):
            b._free_scope = scope  # a one-layer block: its replacement layer keeps the name
        with b.scope(scope):
            new = builder_fn(b, *ins)
        new = [new] if isinstance(new, str) else list(new)
        if len(new) != len(outs):
            raise GraphError(f"replace_subgraph: the block has {len(outs)} output(s) {outs}, "
                             f"builder_fn returned {len(new)}")
        old = set(nodes)
        users = rewire(g, dict(zip(outs, new)), exclude=old)
        g.remove_nodes(nodes)
        reinfer(g, [u for u in users if u in g.nodes])
        eliminate_dead_code(g)
        g.validate()
    return new


# --------------------------------------------------------------------------- repeat / remove
_INDEXED = re.compile(r"^(.*?)(\d+)$")


def rename_scope(g: ArchGraph, old: str, new: str) -> None:
    """Rename scope ``old`` to ``new`` in node scopes, state-dict names and ``meta`` aliases/scope types."""

    def sub(name: str) -> str:
        return new + name[len(old):] if _in_scope(name, old) else name

    for n in g.nodes.values():
        n.scope = sub(n.scope)
        n.param_names = {r: sub(f) for r, f in n.param_names.items()}
    if "aliases" in g.meta:
        g.meta["aliases"] = {sub(a): sub(t) for a, t in g.meta["aliases"].items()}
    if "scope_types" in g.meta:
        g.meta["scope_types"] = {sub(k): v for k, v in g.meta["scope_types"].items()}


def _siblings_after(g: ArchGraph, scope: str) -> tuple[str, int, list[int]]:
    m = _INDEXED.match(scope)
    if not m or not m.group(1).endswith("."):
        return scope, -1, []
    base, idx = m.group(1), int(m.group(2))
    later = set()
    for n in g.nodes.values():
        if n.scope.startswith(base):
            head = n.scope[len(base):].split(".")[0]
            if head.isdigit() and int(head) > idx:
                later.add(int(head))
    return base, idx, sorted(later)


def _shift(g: ArchGraph, base: str, indices: list[int], by: int) -> None:
    for i in sorted(indices, reverse=by > 0):
        rename_scope(g, f"{base}{i}", f"{base}{i + by}")


def _carried(g: ArchGraph, scope: str, ins: list[str], outs: list[str], carry: str | None) -> str:
    if len(outs) != 1:
        raise GraphError(f"block {scope!r} has {len(outs)} outputs {outs}; repeat/remove need exactly one")
    shape = g.nodes[outs[0]].shape
    if carry is not None:
        if carry not in ins:
            raise GraphError(f"block {scope!r}: carry={carry!r} is not one of its inputs {ins}")
        cands = [carry]
    else:
        cands = [i for i in ins if g.nodes[i].shape == shape and g.nodes[i].dtype == g.nodes[outs[0]].dtype]
    if not cands or g.nodes[cands[0]].shape != shape:
        raise GraphError(f"block {scope!r}: output shape {shape} matches none of its inputs "
                         f"{[(i, g.nodes[i].shape) for i in ins]}; only shape-preserving blocks can be "
                         "repeated or removed")
    if len(cands) > 1:
        raise GraphError(f"block {scope!r}: several inputs {cands} have the output's shape {shape}; "
                         "name the carried one with carry=")
    return cands[0]


def repeat_block(g: ArchGraph, scope: str, times: int, carry: str | None = None) -> list[str]:
    """Make the shape-preserving block ``scope`` run ``times`` times in a row (``times=1``: no change).

    Copies get fresh parameters (same shapes) and the scopes ``<base>.<i+1>``, ``<base>.<i+2>``...
    when ``scope`` ends with an index (``encoder.layer.1``), later siblings being renumbered
    after them; otherwise ``<scope>_1``, ``<scope>_2``... Other inputs of the block (masks,
    rotary tables) feed every copy. Returns the output id of each copy.

    Raises:
        GraphError: ``times < 1``, the block has several outputs, or no input has its output's shape.
    """
    if times < 1:
        raise GraphError(f"repeat_block({scope!r}): times must be >= 1, got {times}")
    nodes = block_nodes(g, scope)
    ins, outs = block_io(g, nodes)
    x = _carried(g, scope, ins, outs, carry)
    if times == 1:
        return []
    with transaction(g):
        base, idx, later = _siblings_after(g, scope)
        if idx >= 0:
            _shift(g, base, later, times - 1)
            names = [f"{base}{idx + k}" for k in range(1, times)]
        else:
            names = [f"{scope}_{k}" for k in range(1, times)]
        prev, copies, created = outs[0], [], set()
        for new_scope in names:
            mapping = {x: prev}
            for nid in nodes:
                n = g.nodes[nid]
                nn = g.add_node(
                    n.op, [mapping.get(p, p) for p in g.predecessors(nid)], id=f"{nid}@{new_scope}",
                    attrs=dict(n.attrs), params={r: list(s) for r, s in n.params.items()},
                    param_names={r: (new_scope + f[len(scope):] if _in_scope(f, scope) else f)
                                 for r, f in n.param_names.items()},
                    scope=new_scope + n.scope[len(scope):], shape=n.shape, dtype=n.dtype,
                )
                mapping[nid] = nn
                created.add(nn)
            prev = mapping[outs[0]]
            copies.append(prev)
        users = rewire(g, {outs[0]: prev}, exclude=set(nodes) | created)
        reinfer(g, users)
        g.validate()
    return copies


def remove_block(g: ArchGraph, scope: str, carry: str | None = None) -> list[str]:
    """Drop the shape-preserving block ``scope``: its users read its carried input instead.

    Later indexed siblings are renumbered down (``layer.2`` becomes ``layer.1``). Returns the
    removed ids (the block and nodes only it used).
    """
    nodes = block_nodes(g, scope)
    ins, outs = block_io(g, nodes)
    x = _carried(g, scope, ins, outs, carry)
    with transaction(g):
        users = rewire(g, {outs[0]: x}, exclude=set(nodes))
        g.remove_nodes(nodes)
        removed = list(nodes) + eliminate_dead_code(g)
        base, idx, later = _siblings_after(g, scope)
        if idx >= 0 and later and later[0] == idx + 1:
            _shift(g, base, later, -1)
        reinfer(g, [u for u in users if u in g.nodes])
        g.validate()
    return removed
