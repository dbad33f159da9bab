"""Naming the layers of a generated graph, so that its depth can be read and changed.

A generated graph has no module paths: each node's scope is its own name (``linear_3``) or empty. Converted
models carry their layers in numbered scopes (``layers.0``, ``layers.1``), which is what
:func:`mad.data.describe.analyze` counts as blocks and :func:`mad.graph.passes.set_depth` repeats or removes.

:func:`name_blocks` finds the layers from the structure alone. The *spine* is the chain of nodes that every
path from the main input to the output passes through (the output's dominators): the residual stream of a
transformer, the merge points of a ResNet. Each *anchor* op (attention; convolutions when there is no
attention) belongs to the layer that starts at the last spine node before it. A layer ends where the next
one starts; the last one after as many spine steps as the one before it (or, when it is the only one, at the
last residual ``add`` of its width). Layers whose output has the shape of their input (the ones that can be
repeated) are put under the scopes ``layers.0``, ``layers.1``...
"""

from __future__ import annotations

from collections import Counter

import networkx as nx

from mad.graph import ArchGraph, passes

__all__ = ["name_blocks", "BLOCK_SCOPE", "ANCHORS"]

BLOCK_SCOPE = "layers"
ANCHORS = (("scaled_dot_product_attention",), ("conv1d", "conv2d", "conv3d"))  # tried in this order


def _layers(g: ArchGraph, order: list[str], dg: nx.DiGraph) -> list[tuple[str, str]]:
    """(start, end) spine nodes of each layer, in order (the layer is what lies after start up to end)."""
    spine = passes.spine(g, order, dg)
    if len(spine) < 3:
        return []
    pos = {nid: i for i, nid in enumerate(spine)}
    for ops in ANCHORS:
        anchors = [nid for nid in order if g.nodes[nid].op in ops]
        starts = sorted({max((pos[a] for a in nx.ancestors(dg, nid) if a in pos), default=-1) for nid in anchors})
        starts = [s for s in starts if s >= 0 and spine[s] not in anchors]
        if starts:
            break
    else:
        return []
    bounds = list(starts)
    if len(starts) >= 2:
        bounds.append(starts[-1] + (starts[-1] - starts[-2]))
    else:
        width = g.nodes[spine[starts[0]]].shape
        adds = [i for i in range(starts[0] + 1, len(spine) - 1)
                if g.nodes[spine[i]].op == "add" and g.nodes[spine[i]].shape == width]
        if not adds:
            return []
        bounds.append(adds[-1])
    if bounds[-1] >= len(spine) - 1:  # the output itself: not a layer end
        return []
    return [(spine[a], spine[b]) for a, b in zip(bounds, bounds[1:])]


def _block(g: ArchGraph, order: list[str], dg: nx.DiGraph, start: str, end: str) -> list[str] | None:
    """The nodes of the layer from ``start`` to ``end`` when it takes ``start`` to a tensor of its shape and
    has no other output; else None."""
    nodes = (nx.descendants(dg, start) & nx.ancestors(dg, end)) | {end}
    a, b = g.nodes[start], g.nodes[end]
    if a.shape != b.shape or a.dtype != b.dtype:
        return None
    if any(s not in nodes for n in nodes - {end} for s in g.successors(n)) or end in g.outputs:
        return None
    if not any(g.nodes[n].params for n in nodes):
        return None
    return [n for n in order if n in nodes]


def name_blocks(g: ArchGraph) -> int:
    """Put ``g``'s repeatable layers under the scopes ``layers.0``, ``layers.1``... (in place).

    Returns the number of layers named (0 when none is found, or when the graph already has scopes of that
    name). Parameter names move with their scopes, except tied ones; the WL hash is unchanged.
    """
    if any(n.scope == BLOCK_SCOPE or n.scope.startswith(BLOCK_SCOPE + ".") for n in g.nodes.values()):
        return 0
    order = g.topo_order()
    dg = nx.DiGraph()  # every node, so that an unconnected one is simply in no layer
    dg.add_nodes_from(order)
    dg.add_edges_from((e.src, e.dst) for e in g.edges)
    copies = [b for b in (_block(g, order, dg, s, e) for s, e in _layers(g, order, dg)) if b is not None]
    users = Counter(n.param_name(r) for n in g.nodes.values() for r in n.params)
    for k, nodes in enumerate(copies):
        for nid in nodes:
            n = g.nodes[nid]
            names = {r: n.param_name(r) for r in n.params}
            n.scope = f"{BLOCK_SCOPE}.{k}.{n.scope or nid.replace('.', '_')}" if n.params or n.scope else \
                f"{BLOCK_SCOPE}.{k}"
            # a parameter shared with another node (tied weights) keeps its name
            n.param_names = {**n.param_names, **{r: f if users[f] > 1 else f"{n.scope}.{f.rsplit('.', 1)[-1]}"
                                                 for r, f in names.items()}}
    return len(copies)
