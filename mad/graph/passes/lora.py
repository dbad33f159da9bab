"""add_lora: low-rank adapters (LoRA) beside linear layers.

For a targeted ``linear`` node ``y = W x + b`` the pass adds

    y' = y + (alpha / rank) * B(A(x))

with ``A = linear(x, rank, bias=False)`` (scope ``<layer>.lora_A``) and
``B = linear(., out_features, bias=False)`` (scope ``<layer>.lora_B``); every
former user of ``y`` reads ``y'``. The scaling is a ``mul`` by a scalar, left out
when ``alpha == rank``. A graph does not carry initial values: LoRA starts as
the identity edit when ``B``'s weight is zero, so the state-dict names of the
``B`` weights are listed in ``meta["edits"][-1]["zero_init"]`` for the trainer.
"""

from __future__ import annotations

from ..arch_graph import ArchGraph, GraphError
from ..builder import GraphBuilder
from .blocks import _in_scope
from .edit import rewire
from .edits import finish_edit, layer_path

__all__ = ["add_lora", "lora_targets"]


def _owns_weight(g: ArchGraph, nid: str) -> bool:
    n = g.nodes[nid]
    return n.op == "linear" and "weight" in n.params


def lora_targets(g: ArchGraph, target: str = "last") -> list[str]:
    """Ids of the ``linear`` nodes that ``target`` names, in topological order.

    Args:
        g: the graph.
        target: ``"last"`` (the last linear owning its weight, in topological order), ``"all"``
            (every linear owning its weight), a node id (a linear), or a scope (every linear owning
            its weight under it).

    Raises:
        GraphError: the target is unknown, is not a linear, or holds no linear.
    """
    order = g.topo_order()
    linears = [nid for nid in order if _owns_weight(g, nid)]
    if target in ("last", "all"):
        if not linears:
            raise GraphError(f"add_lora: graph {g.name!r} has no linear layer that owns its weight; "
                             "LoRA adapts linear layers")
        return linears[-1:] if target == "last" else linears
    if target in g.nodes:
        if not _owns_weight(g, target):
            n = g.nodes[target]
            raise GraphError(f"add_lora: node {target!r} is a {n.op!r}"
                             f"{' without its own weight' if n.op == 'linear' else ''}; target a linear layer "
                             "that owns its weight, a scope holding some, 'last' or 'all'")
        return [target]
    inside = [nid for nid in linears if _in_scope(g.nodes[nid].scope, target)]
    if not inside:
        if any(_in_scope(n.scope, target) for n in g.nodes.values()):
            raise GraphError(f"add_lora: scope {target!r} holds no linear layer; target a scope with linears")
        raise GraphError(f"add_lora: {target!r} is neither 'last', 'all', a node id nor a scope of graph {g.name!r}")
    return inside


def add_lora(g: ArchGraph, target: str = "last", rank: int = 8, alpha: float | None = None) -> ArchGraph:
    """A copy of ``g`` with a LoRA adapter beside each targeted linear layer.

    Args:
        g: a valid graph (unchanged).
        target: ``"last"``, ``"all"``, a linear node id or a scope (see :func:`lora_targets`).
        rank: inner size of the adapter, ``>= 1``.
        alpha: the adapter's output is scaled by ``alpha / rank``; ``None`` means ``alpha = rank``
            (scale 1, no ``mul`` node).

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``targets`` (node ids),
        ``rank``, ``alpha`` and ``zero_init`` (state-dict names of the ``lora_B`` weights, which
        make the edit start as the identity when zeroed).

    Shapes:
        a linear ``(..., in) -> (..., out)`` gets ``A: (..., in) -> (..., rank)`` and
        ``B: (..., rank) -> (..., out)``; shapes downstream are unchanged.

    Example:
        >>> h = add_lora(g, "blocks.0.attn", rank=4)       # q/k/v/o projections of block 0
        >>> sorted(n.scope for n in h if n.scope.endswith("lora_A"))[:1]
        ['blocks.0.attn.k_proj.lora_A']
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise GraphError(f"add_lora: rank must be an int >= 1, got {rank!r}")
    alpha = float(rank if alpha is None else alpha)
    scale = alpha / rank
    out = g.copy()
    targets = lora_targets(out, target)
    b = GraphBuilder.extend(out)
    zero_init = []
    for nid in targets:
        node = out.nodes[nid]
        x = out.predecessors(nid)[0]
        path = layer_path(node)
        d_out = node.params["weight"][0]
        down = b.op("linear", x, out_features=rank, bias=False, scope=f"{path}.lora_A")  # (..., rank)
        up = b.op("linear", down, out_features=d_out, bias=False, scope=f"{path}.lora_B")  # (..., out)
        zero_init.append(out.nodes[up].param_name("weight"))
        delta = up if scale == 1.0 else b.op("mul", up, other=scale, scope=path)
        total = b.op("add", nid, delta, scope=path)  # (..., out)
        rewire(out, {nid: total}, exclude=[total])
    return finish_edit(out, "add_lora", target=target, targets=targets, rank=rank, alpha=alpha, zero_init=zero_init)
