"""In-place ops (``add_``, ``relu_``...) as the tensor method of the same name."""
from __future__ import annotations

from ...ops import get_op
from ...ops.registry import OpDef
from ..binding import _Bound
from ..literals import _call
from .registry import _EMITTERS


def _is_inplace(op: OpDef) -> bool:
    """The op writes into its first argument (``add_``, ``relu_``...)."""
    packet = str(op.target).split(".")[1] if op.target is not None else ""
    return packet.endswith("_") and not packet.startswith("_")


def _inplace(b: _Bound) -> str | None:
    """``x.add_(y)``: an in-place op as the tensor method of the same name, arguments as call_op passes them."""
    if not b.tensor_var("self") or b.order[:1] != ["self"] or \
            any(isinstance(a.value, list) and None in a.value for a in b.args.values()):
        return None
    packet = str(b.op.target).split(".")[1]
    pos = [b.args[n].expr for n in b.order[1:b.n_pos]]
    kws = [f"{n}={b.args[n].expr}" for n in b.order[b.n_pos:] if b.nondefault(n) or b.args[n].tensor]
    return _call(f"{b.x()}.{packet}", *pos, *kws)


_EMITTERS["index_put"] = _inplace


def _register_inplace() -> None:
    """Give every in-place op of the vocabulary that has no form of its own the tensor-method form."""
    from ...ops import op_names

    for name in op_names():
        op = get_op(name)
        if _is_inplace(op) and op.args and op.args[0].name == "self":
            _EMITTERS.setdefault(name, _inplace)
