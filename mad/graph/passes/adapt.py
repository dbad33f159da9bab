"""Adapting one node to new input shapes: layers re-derive their parameters from their sizes.

:func:`follow_layers` is the default hook of :func:`~mad.graph.passes.reinfer`:
a layer keeps its *sizes* (``out_features``, ``out_channels``, kernel,
``bias``...) and takes its input-dependent parameter shapes from the new
input (``in_features``, ``in_channels``, norm widths). :func:`check_shared_params`
then checks that parameters shared by several nodes (tied weights) still
agree.
"""

from __future__ import annotations

from typing import Any

from ..arch_graph import ArchGraph, GraphError, Node
from ..layer_params import LAYER_RULES, layer_params, sizes_of

__all__ = ["follow_layers", "check_shared_params", "shared_names"]


def _concrete_ints(shape: Any) -> bool:
    return isinstance(shape, list) and all(isinstance(d, int) for d in shape)


def _follow_norm_shape(node: Node, new_in: Any) -> None:
    ns = node.attrs.get("normalized_shape")
    if not isinstance(ns, list) or not ns or not isinstance(new_in, list) or len(new_in) < len(ns):
        return
    if list(new_in[-len(ns):]) != ns:  # a layer norm must cover the trailing dims: follow them
        node.attrs["normalized_shape"] = list(new_in[-len(ns):])


def _follow_groups(node: Node, new_in: Any, sizes: dict[str, Any]) -> None:
    groups = node.attrs.get("groups", 1) or 1
    if groups == 1 or not _concrete_ints(new_in) or len(new_in) < 2:
        return
    cin = new_in[1]
    if cin % groups == 0:
        return
    if "transpose" not in node.op and node.params["weight"][1] == 1:
        node.attrs["groups"] = cin  # depthwise (one input channel per group) stays depthwise
        if sizes.get("out_channels") == groups:
            sizes["out_channels"] = cin
    else:
        cout = sizes.get("out_channels", 1)
        node.attrs["groups"] = max(d for d in range(1, groups + 1) if cin % d == 0 and cout % d == 0)


def follow_layers(g: ArchGraph, node: Node, in_specs: list[tuple[Any, Any]], old_in: list[Any]) -> None:
    """Re-derive a layer node's parameter shapes for its (new) input shape, keeping its sizes.

    ``embedding`` tables do not depend on the input shape and are left alone.
    A layer/RMS norm follows the trailing dims it normalises; a group norm
    whose group count no longer divides the channels takes the largest
    divisor below it; a depthwise convolution stays depthwise.
    """
    rule = LAYER_RULES.get(node.op)
    if rule is None or not node.params or node.op == "embedding" or not in_specs:
        return
    new0 = in_specs[0][0]
    if not isinstance(new0, list):
        return
    if node.op in ("layer_norm", "rms_norm"):
        _follow_norm_shape(node, new0)
    try:
        sizes = sizes_of(node.op, node.params, node.attrs)
    except KeyError:  # a layer fed some parameters through ports (e.g. a conv owning only its bias)
        return
    if node.op.startswith("conv"):
        _follow_groups(node, new0, sizes)
    if node.op == "group_norm" and _concrete_ints(new0) and len(new0) > 1:
        c, groups = new0[1], node.attrs.get("num_groups", 1)
        if c % groups:
            node.attrs["num_groups"] = max(d for d in range(1, groups + 1) if c % d == 0)
    try:
        params = layer_params(node.op, [s for s, _ in in_specs], node.attrs, sizes)
    except GraphError as e:
        from .reinfer import ReinferError

        raise ReinferError(f"node {node.id!r} ({node.op}, scope {node.scope!r}): cannot follow its new input "
                           f"shape {new0}: {e}", node.id) from None
    if set(params) == set(node.params):
        node.params = params


def shared_names(g: ArchGraph) -> dict[str, list[tuple[str, str]]]:
    """State-dict name -> the (node id, role) pairs that use it, for names used more than once
    (after resolving ``meta["aliases"]``)."""
    aliases: dict[str, str] = dict(g.meta.get("aliases", {}) or {})
    uses: dict[str, list[tuple[str, str]]] = {}
    for n in g.nodes.values():
        for role in n.params:
            name = n.param_name(role)
            seen = set()
            while name in aliases and name not in seen:
                seen.add(name)
                name = aliases[name]
            uses.setdefault(name, []).append((n.id, role))
    return {k: v for k, v in uses.items() if len(v) > 1}


def check_shared_params(g: ArchGraph) -> None:
    """Raise :class:`GraphError` if nodes sharing a parameter (tied weights) disagree on its shape."""
    for name, uses in shared_names(g).items():
        shapes = {tuple(g.nodes[n].params[r]) for n, r in uses}
        if len(shapes) > 1:
            detail = ", ".join(f"{n}.{r}={g.nodes[n].params[r]}" for n, r in uses)
            raise GraphError(f"parameter {name!r} is shared by nodes with different shapes ({detail}); "
                             "tied weights must change together")
