"""cut: the prefix of a graph up to a node, a scope or a fraction of its nodes (a completion prompt), and the
graph's spine (the nodes a cut at which separates the input from the output).

The kept part is every node at or before the cut in ``g.topo_order()``, plus
every graph input. A topological prefix holds all the predecessors of its
nodes, so it is a valid partial graph; its outputs are set to the *frontier*
(kept nodes that fed a removed node, and kept nodes that were graph outputs),
so it usually runs as it is. What was cut away is described in
``meta["cut"]`` for comparing a completion with the original.
"""

from __future__ import annotations

from ..arch_graph import ArchGraph, GraphError
from .blocks import _in_scope

__all__ = ["cut", "removed_part", "spine"]

_SOURCES = ("input", "parameter")  # never made outputs of the cut


def _cut_position(g: ArchGraph, order: list[str], after: str | None, fraction: float | None) -> int:
    """Index in ``order`` of the last kept node."""
    if (after is None) == (fraction is None):
        raise GraphError("cut(): give exactly one of after= (a node id or scope) or fraction= (0 < f < 1)")
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise GraphError(f"cut(): fraction must be a number strictly between 0 and 1, got {fraction!r}")
        return min(len(order) - 1, max(0, round(fraction * len(order)) - 1))
    if after in g.nodes:
        return order.index(after)
    last = [i for i, nid in enumerate(order) if _in_scope(g.nodes[nid].scope, after) and g.nodes[nid].op != "input"]
    if not last:
        scopes = sorted({n.scope.split(".")[0] for n in g.nodes.values() if n.scope})
        raise GraphError(f"cut(): {after!r} is neither a node id nor a scope of graph {g.name!r}; "
                         f"top-level scopes are {scopes[:20]}")
    return last[-1]


def cut(g: ArchGraph, after: str | None = None, fraction: float | None = None) -> ArchGraph:
    """The partial graph of every node at or before the cut in ``g.topo_order()`` (``g`` is unchanged).

    Args:
        g: a valid graph.
        after: a node id (cut right after it) or a scope (cut after the last node under it,
            in topological order).
        fraction: keep the first ``round(fraction * len(g))`` nodes in topological order
            (at least one), ``0 < fraction < 1``.

    Returns:
        a copy that keeps every graph input and the nodes up to the cut. Its outputs are the
        frontier: kept nodes other than inputs and parameters that fed a removed node or were
        outputs of ``g`` (none when only sources are kept). ``validate(partial=True)`` holds, and
        ``validate()`` too when the frontier is not empty. ``meta["cut"]`` records ``after`` (the last kept node's id),
        ``removed`` (how many nodes were removed), ``removed_ops`` (their op names in
        topological order) and ``original_outputs`` (``g.outputs``, ``output_kind``, ``output_keys``);
        ``meta`` keys ``num_params``, ``num_nodes`` and ``flops``, when present, describe the prefix.

    Raises:
        GraphError: both or neither of ``after`` and ``fraction``, an unknown node or scope,
            or a fraction outside (0, 1).

    Example:
        >>> p = cut(g, after="blocks.1")             # the embedding and the first two blocks
        >>> p.validate(partial=True).meta["cut"]["removed"] > 0
        True
    """
    order = g.topo_order()
    if not order:
        raise GraphError(f"cut(): graph {g.name!r} has no nodes")
    pos = _cut_position(g, order, after, fraction)
    keep = set(order[: pos + 1]) | {nid for nid, n in g.nodes.items() if n.op == "input"}
    removed = [nid for nid in order if nid not in keep]
    out = g.copy()
    frontier = [nid for nid in order if nid in keep and g.nodes[nid].op not in _SOURCES
                and (nid in g.outputs or any(s not in keep for s in g.successors(nid)))]
    out.remove_nodes(removed)
    if frontier:
        out.set_outputs(frontier)
    else:
        out.outputs, out.output_kind, out.output_keys = [], "tensor", None
    out.meta["cut"] = {
        "after": order[pos],
        "removed": len(removed),
        "removed_ops": [g.nodes[nid].op for nid in removed],
        "original_outputs": {"outputs": list(g.outputs), "kind": g.output_kind, "keys": g.output_keys},
    }
    for key, value in (("num_params", out.num_params), ("num_nodes", len(out.nodes))):
        if key in out.meta:
            out.meta[key] = value
    if "flops" in out.meta:
        out.meta["flops"] = out.infer().flops
    out.validate(partial=True)
    return out


def removed_part(g: ArchGraph, partial: ArchGraph) -> list[str]:
    """Ids of the nodes of ``g`` that ``partial`` (a :func:`cut` of ``g``) does not hold, in topological order."""
    return [nid for nid in g.topo_order() if nid not in partial.nodes]


def spine(g: ArchGraph, order: list[str] | None = None, dg=None) -> list[str]:
    """The nodes every path from the graph's first input to its output passes through (the output's
    dominators, found with networkx), in topological order, input and output included: the residual stream of
    a transformer, the merge points of a ResNet. Free ``parameter`` nodes are weights, not paths of the data,
    and do not break it. Empty for a graph without one input node and one output, or where the output does not
    depend on the input. ``order`` (``g.topo_order()``) and ``dg`` (``g``'s networkx ``DiGraph``) may be passed
    when the caller has them."""
    import networkx as nx

    if not g.inputs or len(g.outputs) != 1:
        return []
    order = order if order is not None else g.topo_order()
    src = next((nid for nid in order if g.nodes[nid].op == "input"), None)
    if src is None:
        return []
    if dg is None:
        dg = nx.DiGraph([(e.src, e.dst) for e in g.edges])
        dg.add_nodes_from(order)
    if not nx.has_path(dg, src, g.outputs[0]):
        return []
    dom = nx.immediate_dominators(dg, src)
    chain = [g.outputs[0]]
    while chain[-1] != src:
        chain.append(dom[chain[-1]])
    return chain[::-1]
