"""What the architecture edits share: work on a copy, record the edit, refresh the summary, validate.

The edits a researcher asks for by name are graph passes in their own modules:
:func:`~mad.graph.passes.lora.add_lora`,
:func:`~mad.graph.passes.activation.replace_activation`,
:func:`~mad.graph.passes.kv_heads.set_kv_heads` and
:func:`~mad.graph.passes.deepen.deepen`. Each takes a graph and returns a new,
validated graph (the input is never changed) whose ``meta["edits"]`` lists
the edits applied so far (``{"pass": name, ...arguments and what changed}``).
"""

from __future__ import annotations

from typing import Any

from ..arch_graph import ArchGraph, Node

__all__ = ["finish_edit", "free_scope", "layer_path", "EDIT_PASSES"]

# names of the edit passes, for callers that dispatch on a name (see mad.generator.edit)
EDIT_PASSES = ("add_lora", "replace_activation", "set_kv_heads", "deepen", "set_depth", "add_attention", "add_rotary",
               "add_downsampling", "add_residual")


def layer_path(node: Node) -> str:
    """The module path of a layer node: its scope, else its id (the prefix of its new sub-layers)."""
    return node.scope or node.id


def free_scope(g: ArchGraph, base: str) -> str:
    """The first of ``base``, ``base1``, ``base2``... that is no node's top-level scope in ``g`` (where an edit
    puts the layers it adds)."""
    used = {n.scope.split(".")[0] for n in g.nodes.values()}
    return next(f"{base}{k or ''}" for k in range(len(used) + 1) if f"{base}{k or ''}" not in used)


def finish_edit(g: ArchGraph, name: str, **info: Any) -> ArchGraph:
    """Record edit ``name`` with ``info`` (JSON values) in ``g.meta["edits"]``, refresh the summary, validate.

    ``meta`` keys ``num_params``, ``num_nodes`` and ``flops`` are recomputed when present.
    Returns ``g``.
    """
    g.meta["edits"] = [*g.meta.get("edits", []), {"pass": name, **info}]
    if "num_params" in g.meta:
        g.meta["num_params"] = g.num_params
    if "num_nodes" in g.meta:
        g.meta["num_nodes"] = len(g.nodes)
    if "flops" in g.meta:
        g.meta["flops"] = g.infer().flops
    return g.validate()
