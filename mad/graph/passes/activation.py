"""replace_activation: swap one activation for another, including gated (GLU) feed-forwards.

Plain activations are the elementwise ops of :data:`ACTIVATIONS`. Gated ones
(:data:`GATED`) are written as a pattern of plain ops: ``swiglu`` is
``silu(fc1(x)) * fc1_gate(x)``, ``geglu`` uses ``gelu``, ``reglu`` ``relu``.

- plain -> plain: the node's op changes in place (``relu`` -> ``gelu``);
- plain -> gated: ``act(fc1(x))`` becomes ``silu(fc1(x)) * fc1_gate(x)``, with a new
  linear ``<fc1>_gate`` of fc1's size reading fc1's input; the activation's input
  must be a linear layer;
- gated -> plain: ``act(fc1(x)) * up(x)`` becomes ``new(fc1(x))`` and ``up`` is
  dropped when nothing else reads it (the inverse of plain -> gated);
- gated -> gated: the activation inside the gate changes.
"""

from __future__ import annotations

from typing import Any

from ..arch_graph import ArchGraph, GraphError
from ..builder import GraphBuilder
from .edit import rewire
from .edits import finish_edit, layer_path

__all__ = ["replace_activation", "ACTIVATIONS", "GATED", "activation_name", "gated_units"]

# elementwise activation ops of the vocabulary (no parameters)
ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "tanh", "sigmoid", "hardswish", "hardsigmoid", "hardtanh", "mish",
               "elu", "selu", "celu", "leaky_relu", "softplus", "log_sigmoid")
# gated activation -> the activation inside its gate
GATED = {"swiglu": "silu", "geglu": "gelu", "reglu": "relu"}
# other names researchers use -> (op, attrs)
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "swish": ("silu", {}),
    "hswish": ("hardswish", {}),
    "hard_swish": ("hardswish", {}),
    "hard_sigmoid": ("hardsigmoid", {}),
    "hard_tanh": ("hardtanh", {}),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}),
    "gelu_new": ("gelu", {"approximate": "tanh"}),
    "leakyrelu": ("leaky_relu", {}),
    "logsigmoid": ("log_sigmoid", {}),
}


def activation_name(name: str) -> tuple[str, dict[str, Any]]:
    """``(op or gated name, attrs)`` for an activation name (case and ``-`` ignored); GraphError if unknown."""
    key = name.strip().lower().replace("-", "_")
    if key in ACTIVATIONS or key in GATED:
        return key, {}
    if key in _ALIASES:
        op, attrs = _ALIASES[key]
        return op, dict(attrs)
    raise GraphError(f"replace_activation: unknown activation {name!r}; choose from "
                     f"{sorted(ACTIVATIONS) + sorted(GATED)} (or aliases {sorted(_ALIASES)})")


def _linear_input(g: ArchGraph, nid: str) -> str | None:
    """The linear layer (owning its weight) feeding node ``nid``, if that is what feeds it."""
    preds = g.predecessors(nid)
    if len(preds) == 1 and g.nodes[preds[0]].op == "linear" and "weight" in g.nodes[preds[0]].params:
        return preds[0]
    return None


def gated_units(g: ArchGraph, act_op: str | None = None) -> list[tuple[str, str, str, str]]:
    """``(fc, act, mul, up)`` ids of every ``act(fc(x)) * up(x)`` with ``fc``, ``up`` linears reading one ``x``.

    ``act_op`` restricts the activation op (``"silu"`` finds SwiGLU units).
    """
    found = []
    for nid in g.topo_order():
        node = g.nodes[nid]
        if node.op not in ACTIVATIONS or (act_op is not None and node.op != act_op):
            continue
        fc, users = _linear_input(g, nid), g.successors(nid)
        if fc is None or len(users) != 1 or g.nodes[users[0]].op != "mul":
            continue
        mul = users[0]
        others = [p for p in g.predecessors(mul) if p != nid]
        if len(others) != 1:
            continue
        up = others[0]
        n_up = g.nodes[up]
        if n_up.op == "linear" and "weight" in n_up.params and g.predecessors(up)[:1] == g.predecessors(fc)[:1]:
            found.append((fc, nid, mul, up))
    return found


def _plain_to_gated(g: ArchGraph, b: GraphBuilder, act: str, gate_op: str) -> None:
    node = g.nodes[act]
    fc = _linear_input(g, act)
    if fc is None:
        src = g.predecessors(act)
        what = f"{src[0]!r} ({g.nodes[src[0]].op})" if src else "nothing"
        raise GraphError(f"replace_activation: activation node {act!r} (scope {node.scope!r}) reads {what}, not a "
                         "linear layer; a gated activation needs act(linear(x)). Replace it by a plain activation "
                         "instead, or target a graph whose feed-forwards are linear")
    n_fc = g.nodes[fc]
    x = g.predecessors(fc)[0]
    gate = b.op("linear", x, out_features=n_fc.params["weight"][0], bias="bias" in n_fc.params,
                scope=f"{layer_path(n_fc)}_gate")  # (..., hidden)
    a = b.op(gate_op, fc, scope=node.scope)  # (..., hidden)
    m = b.op("mul", a, gate, scope=node.scope)  # (..., hidden)
    rewire(g, {act: m}, exclude=[a, m])
    g.remove_nodes([act])


def _gated_to_plain(g: ArchGraph, b: GraphBuilder, unit: tuple[str, str, str, str], op: str,
                    attrs: dict[str, Any]) -> None:
    fc, act, mul, up = unit
    a = b.op(op, fc, scope=g.nodes[act].scope, **attrs)  # (..., hidden)
    rewire(g, {mul: a}, exclude=[a])
    g.remove_nodes([act, mul])
    if not g.successors(up) and up not in g.outputs:
        g.remove_nodes([up])


def replace_activation(g: ArchGraph, old: str, new: str) -> ArchGraph:
    """A copy of ``g`` with every ``old`` activation replaced by ``new``.

    Args:
        g: a valid graph (unchanged).
        old: an activation op (``"relu"``, ``"gelu"``...; see :data:`ACTIVATIONS`), an alias
            (``"swish"``) or a gated kind (``"swiglu"``, ``"geglu"``, ``"reglu"``).
        new: the same kinds of names. ``"gelu_tanh"`` is ``gelu`` with ``approximate="tanh"``.

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``old``, ``new`` and ``replaced``
        (ids of the replaced activation nodes).

    Raises:
        GraphError: an unknown name; ``g`` has no ``old`` activation; turning a plain activation
            into a gated one where its input is not a linear layer (the message names the node).

    Example:
        >>> h = replace_activation(g, "gelu", "swiglu")   # each MLP gains a <fc1>_gate linear
        >>> replace_activation(h, "swiglu", "gelu").wl_hash() == g.wl_hash()
        True
    """
    old_op, _ = activation_name(old)
    new_op, new_attrs = activation_name(new)
    out = g.copy()
    b = GraphBuilder.extend(out)
    if old_op in GATED:
        units = gated_units(out, GATED[old_op])
        if not units:
            raise GraphError(f"replace_activation: graph {g.name!r} has no {old_op} unit "
                             f"({GATED[old_op]}(linear(x)) * linear(x))")
        for unit in units:
            if new_op in GATED:
                out.nodes[unit[1]].op, out.nodes[unit[1]].attrs = GATED[new_op], {}
            else:
                _gated_to_plain(out, b, unit, new_op, new_attrs)
        replaced = [u[1] for u in units]
    else:
        in_gates = {u[1] for u in gated_units(out)} if new_op in GATED else set()
        replaced = [nid for nid in out.topo_order() if out.nodes[nid].op == old_op and nid not in in_gates]
        if not replaced:
            have = sorted({n.op for n in out.nodes.values() if n.op in ACTIVATIONS})
            raise GraphError(f"replace_activation: graph {g.name!r} has no {old_op!r} activation"
                             f"{' outside gated units' if in_gates else ''}; it has {have or 'none'}")
        for nid in replaced:
            if new_op in GATED:
                _plain_to_gated(out, b, nid, GATED[new_op])
            else:
                out.nodes[nid].op, out.nodes[nid].attrs = new_op, dict(new_attrs)
    return finish_edit(out, "replace_activation", old=old, new=new, replaced=replaced)
