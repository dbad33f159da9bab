"""Canonical node order of an ArchGraph: topological, fixed by the graph's structure alone.

The order is a depth-first post-order from the outputs:

- graph inputs come first, in ``graph.inputs`` order;
- then, for each output in order, a node is placed once all of its inputs
  are placed, and its inputs are visited in port order, each just before it
  is needed. A residual block ``add(x, f(x))`` reads as ``x``'s history, then
  ``f``'s chain, then the ``add``; a transformer layer is one contiguous run,
  so repeated layers are repeated runs;
- nodes no output depends on (dead ends such as an unused auxiliary head) come
  last, visited from the ones with the smallest WL round-0 label;
- an in-place op keeps its place among the reads and writes of the storage it
  changes (:func:`~mad.graph.aliasing.effect_order`): the nodes that came
  before it in ``g`` are placed before it, those after it after it, as if
  they were further inputs (visited after the real ones). A cache filled by
  ``copy_`` is filled before the attention that reads it, as in the source.

Apart from that, nothing depends on node ids or insertion order, so
isomorphic graphs (with their port order) give the same order.

Example:
    >>> order = canonical_order(g)          # list of node ids
    >>> set(order) == set(g.nodes)
    True
"""

from __future__ import annotations

from mad.graph import ArchGraph
from mad.graph.aliasing import effect_order
from mad.graph.hashing import node_labels

__all__ = ["canonical_order"]


def canonical_order(g: ArchGraph) -> list[str]:
    """Node ids of ``g`` in canonical topological order (see the module docstring)."""
    preds = {nid: [e.src for e in sorted(g.in_edges(nid), key=lambda e: e.port)] for nid in g.nodes}
    for nid, before in effect_order(g).items():
        preds[nid] = preds[nid] + before
    order: list[str] = []
    placed: set[str] = set()

    def visit(root: str) -> None:
        stack = [(root, 0)]
        while stack:
            nid, k = stack.pop()
            if nid in placed:
                continue
            ps = preds[nid]
            while k < len(ps) and ps[k] in placed:
                k += 1
            if k < len(ps):
                stack.append((nid, k + 1))
                stack.append((ps[k], 0))
                continue
            placed.add(nid)
            order.append(nid)

    for s in g.inputs:
        visit(g.input_node(s.name))
    for o in g.outputs:
        visit(o)
    if len(order) < len(g.nodes):
        labels = node_labels(g)
        insertion = {nid: i for i, nid in enumerate(g.nodes)}
        consumed = {e.src for e in g.edges}
        rest = sorted((n for n in g.nodes if n not in placed and n not in consumed),
                      key=lambda n: (labels[n], insertion[n]))
        for nid in rest:
            visit(nid)
    return order
