"""Binding a node to the arguments ``call_op`` passes its op, as Python source, and the aten call made of them."""
from __future__ import annotations

import dataclasses
import keyword
from dataclasses import dataclass
from typing import Any

import torch

from ..arch_graph import GraphError, Node
from ..ops.call import call_op
from ..ops.registry import PORT, OpDef
from ..ops.values import decode_value
from .literals import _lit


@dataclass
class _Arg:
    """One schema argument of a node, as Python source."""

    name: str
    tensor: bool
    given: bool
    expr: str | None = None
    value: Any = None  # decoded value for attrs and constant tensor args
    const: bool = False  # a tensor argument given as a number in attrs
    kwarg_only: bool = False
    kind: str = "one"


class _Bound:
    """The arguments of one node, ready to print (see :func:`_bind`)."""

    def __init__(self, op: OpDef, node: Node, args: dict[str, _Arg], device_expr: str,
                 order: list[str] | None = None, n_pos: int = 0) -> None:
        self.op = op
        self.node = node
        self.args = args
        self.device_expr = device_expr
        self.order = order or []  # argument names in the order call_op passes them
        self.n_pos = n_pos  # how many of them go positionally
        self.in_shapes: list[Any] = []  # shapes of the port inputs, where known
        self.inplace_graph = False  # the graph has in-place ops (aliasing becomes visible)

    def rank(self) -> int | None:
        """Rank of the first port input, if known."""
        shape = self.in_shapes[0] if self.in_shapes else None
        return len(shape) if isinstance(shape, list) and all(isinstance(d, int) for d in shape) else None

    def t(self, name: str) -> str:
        """Source of a tensor argument (a variable, a parameter path or a constant)."""
        a = self.args[name]
        return a.expr if a.given else "None"

    def tensor_var(self, name: str) -> bool:
        """True when the argument is a tensor (not a constant number, not absent)."""
        a = self.args.get(name)
        return bool(a and a.given and not a.const and a.expr != "None")

    def v(self, name: str) -> Any:
        """Decoded value of an attribute: the given one, else the schema default."""
        a = self.args.get(name)
        if a is not None and a.given:
            return a.value
        spec = self.op.attrs.get(name)
        return decode_value(spec.default, spec.type) if spec is not None else None

    def nondefault(self, name: str) -> bool:
        a = self.args.get(name)
        if a is None or not a.given or a.tensor:
            return False
        spec = self.op.attrs.get(name)
        if spec is None:
            return True
        if spec.type == "device" or (name == "pin_memory" and not a.value):
            return False
        return a.value != decode_value(spec.default, spec.type)

    def extra(self, *handled: str) -> bool:
        """True when an attribute outside ``handled`` is set to a non-default value."""
        return any(self.nondefault(n) for n in self.op.attrs if n not in handled)

    def kw(self, *names: str) -> list[str]:
        """``name=value`` for each of ``names`` set to a non-default value."""
        return [f"{n}={_lit(self.v(n))}" for n in names if self.nondefault(n)]

    def x(self) -> str:
        """Source of the first tensor argument."""
        return self.t(self.op.args[0].name)


class _Src:
    """Stands for a tensor in a recorded call: prints as its Python source."""

    def __init__(self, expr: str) -> None:
        self.expr = expr


class _Recorded(Exception):
    def __init__(self, args: tuple, kwargs: dict[str, Any]) -> None:
        super().__init__("recorded")
        self.args_, self.kwargs = args, kwargs


def _record(*args: Any, **kwargs: Any) -> None:
    raise _Recorded(args, kwargs)


_DEVICE = torch.device("meta")  # stands for "the device of the inputs" in a recorded call


def _src(v: Any, device_expr: str) -> str:
    if isinstance(v, _Src):
        return v.expr
    if isinstance(v, torch.device):
        return device_expr
    if isinstance(v, (list, tuple)) and any(isinstance(x, _Src) for x in v):
        return "[" + ", ".join(_src(x, device_expr) for x in v) + "]"
    return _lit(v)


def _bind(op: OpDef, node: Node, inputs: list[str], param_exprs: dict[str, str], device_expr: str) -> _Bound:
    """The arguments ``call_op`` would pass for this node, as Python source.

    ``call_op`` itself assigns ports, owned params and attrs to the op's
    arguments (with a run function that only records them), so the source
    always calls the op exactly as :class:`~mad.graph.module.ArchModule` does.
    """
    recorder = dataclasses.replace(op, fn=_record)
    try:
        call_op(recorder, node.attrs, [_Src(e) for e in inputs], {r: _Src(e) for r, e in param_exprs.items()},
                device=_DEVICE)
    except _Recorded as rec:
        pos, kws = rec.args_, rec.kwargs
    else:  # pragma: no cover - call_op always calls fn
        raise GraphError(f"to_code: node {node.id!r} ({node.op}): the op was not called")
    args: dict[str, _Arg] = {}
    given = dict(zip([n for n, _, _ in op.signature], pos)) | kws
    for name, is_tensor, kwarg_only in op.signature:
        kind = op.arg(name).kind if is_tensor else "attr"
        if name not in given:
            args[name] = _Arg(name, is_tensor, False, kwarg_only=kwarg_only, kind=kind)
            continue
        v = given[name]
        const = is_tensor and not isinstance(v, (_Src, list, tuple)) and v is not None
        value = None if isinstance(v, _Src) else v
        if isinstance(v, (list, tuple)) and any(isinstance(x, _Src) for x in v):
            value = [PORT if isinstance(x, _Src) else x for x in v]
        args[name] = _Arg(name, is_tensor, True, _src(v, device_expr), value=value, const=const,
                          kwarg_only=kwarg_only, kind=kind)
    return _Bound(op, node, args, device_expr, order=list(given), n_pos=len(pos))


def _aten_call(b: _Bound, head: str | None = None) -> str:
    """``torch.ops.aten.<packet>.<overload>(...)`` (or ``head(...)``) with the arguments call_op passes."""
    if head is None:
        namespace, packet, overload = str(b.op.target).split(".")[:3]
        head = f"torch.ops.{namespace}.{packet}.{overload}"
        if not packet.isidentifier() or keyword.iskeyword(packet):
            head = f'getattr(torch.ops.{namespace}, "{packet}").{overload}'
    pos = [b.args[n].expr for n in b.order[:b.n_pos]]
    kws = [f"{n}={b.args[n].expr}" for n in b.order[b.n_pos:]]
    return f"{head}({', '.join(pos + kws)})"
