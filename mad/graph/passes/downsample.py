"""add_downsampling: a 2x2 max pool (stride 2) in a conv net that keeps its feature map at one size.

A CNN without strided convolutions or pooling keeps the input's resolution through every layer: the
receptive field grows by a kernel's width per layer and each layer costs as much as the first. The edit puts
``max_pool2d(kernel_size=2, stride=2)`` after the feature map ``(B, C, H, W)`` nearest a third of the way
through the network that a conv, norm or pool wrote in that layout (or an activation of one), so later layers
run at half the size and see twice as far. Layers after it re-derive their shapes; a head that reads the
spatial size (a flatten into a linear layer) follows it with fewer input features.
"""

from __future__ import annotations

from ..arch_graph import ArchGraph, GraphError
from .activation import ACTIVATIONS
from .edit import insert_after
from .edits import finish_edit

__all__ = ["add_downsampling"]

# ops that write a (B, C, H, W) feature map in that layout
NCHW_WRITERS = frozenset({"conv2d", "batch_norm", "group_norm", "instance_norm", "max_pool2d", "avg_pool2d"})


def feature_map(shape: object) -> bool:
    """Whether ``shape`` is a ``(B, C, H, W)`` feature map with concrete, positive C, H and W."""
    return isinstance(shape, list) and len(shape) == 4 and all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:])


def _sites(g: ArchGraph) -> list[str]:
    """Nodes after which a pool halves a (B, C, H, W) feature map: one a conv, norm or pool wrote (or an
    activation of one), with even spatial sizes of at least 4, not the graph's input."""
    out = []
    for nid in g.topo_order():
        n = g.nodes[nid]
        shape = n.shape
        if not feature_map(shape):
            continue
        if shape[2] < 4 or shape[3] < 4 or shape[2] % 2 or shape[3] % 2:
            continue
        preds = g.predecessors(nid)
        if n.op in NCHW_WRITERS or (n.op in ACTIVATIONS and preds and g.nodes[preds[0]].op in NCHW_WRITERS):
            out.append(nid)
    return out


def add_downsampling(g: ArchGraph) -> ArchGraph:
    """A copy of ``g`` with a 2x2 max pool (stride 2) after the feature map nearest a third of the way in.

    Args:
        g: a valid graph with a ``(B, C, H, W)`` feature map of even spatial size (unchanged).

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``after`` (the node the pool follows).

    Raises:
        GraphError: no feature map takes the pool, or what follows it cannot take half the size (a residual
            add that joins it with the full-size map, a reshape to a fixed size).

    Example:
        >>> h = add_downsampling(plain_cnn)
        >>> h.meta["edits"][-1]["after"]
        'relu_1'
    """
    sites = _sites(g)
    if not sites:
        raise GraphError(f"add_downsampling: graph {g.name!r} has no (B, C, H, W) feature map of even size >= 4 "
                         "written by a conv, norm or pool")
    order = {nid: i for i, nid in enumerate(g.topo_order())}
    third = len(order) / 3
    site = min(sites, key=lambda nid: (abs(order[nid] - third), order[nid]))
    out = g.copy()
    insert_after(out, site, "max_pool2d", kernel_size=2, stride=2)  # the layers after it re-derive their shapes
    return finish_edit(out, "add_downsampling", after=site)
