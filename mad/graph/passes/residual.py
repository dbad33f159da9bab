"""add_residual: a residual conv block on the feature map of a convolutional network without skip connections.

The block reads a ``(B, C, H, W)`` feature map ``x`` and returns ``x + conv(relu(bn(conv(x))))`` with two
3x3 convolutions of ``C`` channels (padding 1, so the map keeps its size) and a batch norm between them, the
body of a ResNet basic block; everything after the block reads its output, of the same shape. The site is the latest feature map that
every path to the output passes through (:func:`~.cut.spine`) and that a conv, norm, pool or activation
wrote, so the skip sits inside the network's own trunk.
"""

from __future__ import annotations

from ..arch_graph import ArchGraph, GraphError
from ..builder import GraphBuilder
from .activation import ACTIVATIONS
from .cut import spine
from .downsample import NCHW_WRITERS, feature_map
from .edit import rewire
from .edits import finish_edit, free_scope

__all__ = ["add_residual"]


def _site(g: ArchGraph) -> str | None:
    best = None
    for nid in spine(g)[1:-1]:
        n = g.nodes[nid]
        if feature_map(n.shape) and (n.op in NCHW_WRITERS or n.op in ACTIVATIONS):
            best = nid
    return best


def add_residual(g: ArchGraph, node: str | None = None) -> ArchGraph:
    """A copy of ``g`` with a residual block of two 3x3 convolutions after the feature map ``node``.

    Args:
        g: a valid graph (unchanged).
        node: a node of shape ``(B, C, H, W)`` with concrete sizes; default: the latest feature map on the
            network's trunk (every path to the output passes through it) that a conv, norm, pool or activation
            wrote.

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``node`` and ``channels``.

    Raises:
        GraphError: no such feature map.

    Example:
        >>> h = add_residual(plain_cnn)
        >>> h.meta["edits"][-1]["channels"]
        16
    """
    node = node or _site(g)
    if node is None or node not in g.nodes:
        raise GraphError(f"add_residual: graph {g.name!r} has no (B, C, H, W) feature map with concrete sizes "
                         "on its trunk that a conv, norm, pool or activation wrote")
    shape = g.nodes[node].shape
    if not feature_map(shape):
        raise GraphError(f"add_residual: node {node!r} has shape {shape}, not a (B, C, H, W) feature map with "
                         "concrete sizes")
    c = shape[1]
    out = g.copy()
    b = GraphBuilder.extend(out)
    before = set(out.nodes)
    scope = free_scope(out, "res_block")
    h = b.op("conv2d", node, out_channels=c, kernel_size=3, padding=1, bias=False, scope=f"{scope}.conv1")
    h = b.op("relu", b.op("batch_norm", h, scope=f"{scope}.bn1"), scope=scope)
    h = b.op("conv2d", h, out_channels=c, kernel_size=3, padding=1, bias=False, scope=f"{scope}.conv2")
    y = b.op("add", node, h, scope=scope)
    rewire(out, {node: y}, exclude=set(out.nodes) - before)
    return finish_edit(out, "add_residual", node=node, channels=c)
