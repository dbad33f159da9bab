"""Run one op on tensors: assemble its arguments from ports, params and attrs."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .registry import PORT, OpDef
from .values import decode_value

__all__ = ["call_op", "count_ports"]


def count_ports(op: OpDef, attrs: dict[str, Any], params: dict[str, Any]) -> int:
    """Number of input edges a node of ``op`` with these attrs and params takes."""
    n = 0
    for a in op.args:
        if a.name in params:
            continue
        if a.kind in ("list", "optional_list"):
            spec = attrs.get(a.name)
            n += sum(1 for e in spec if e == PORT) if isinstance(spec, list) else 0
        elif a.kind == "optional":
            n += attrs.get(a.name) == PORT
        elif a.name not in attrs:
            n += 1
    return n


def call_op(
    op: OpDef,
    attrs: dict[str, Any],
    inputs: Sequence[Any],
    params: dict[str, torch.Tensor] | None = None,
    device: torch.device | str | None = None,
) -> Any:
    """Run ``op`` on ``inputs`` (one value per port, in port order).

    ``params`` maps owned roles to tensors. ``device`` is given to ops that
    create tensors (``arange``, ``zeros``...).
    """
    params = params or {}
    it = iter(inputs)
    if not op.signature:
        return op.fn(*inputs, **attrs)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = True
    for name, is_tensor, kwarg_only in op.signature:
        if is_tensor:
            ta = op.arg(name)
            if name in params:
                v = params[name]
            elif ta.kind in ("list", "optional_list"):
                v = [next(it) if e == PORT else decode_value(e, "number") for e in attrs[name]]
            elif ta.kind == "optional" and attrs.get(name, None) in (None, PORT):
                v = next(it) if attrs.get(name) == PORT else None
            elif name in attrs:
                v = decode_value(attrs[name], "number")
            else:
                v = next(it)
        else:
            spec = op.attrs[name]
            if spec.type == "device":
                if device is None:
                    positional = False
                    continue
                v = torch.device(device)
            elif name not in attrs and spec.optional and spec.default is None:
                v = None  # e.g. upsample's output_size: optional, yet the schema gives it no default
            elif name not in attrs:
                positional = False  # leave it to the schema default
                continue
            else:
                v = decode_value(attrs[name], spec.type)
        if positional and not kwarg_only:
            args.append(v)
        else:
            positional = positional and not kwarg_only
            kwargs[name] = v
    return op.fn(*args, **kwargs)
