"""Ops that are not tensor computations: graph inputs, free parameters, getitem.

- ``input``: a graph input; ``attrs.name`` names the entry of ``graph.inputs``.
- ``parameter``: a free tensor the model owns (a class token, a position
  table, a norm weight used outside a layer, a non-persistent buffer or a
  constant). It owns one tensor under the role ``data``; ``attrs.kind`` is
  ``parameter``, ``buffer`` or ``constant``; ``attrs.value`` may carry the
  tensor's value (non-persistent buffers and constants, which no state dict
  restores) as ``{"dtype", "shape", "b64"}``.
- ``getitem``: element ``index`` of a multi-output node.
"""

from __future__ import annotations

import operator

from .registry import AttrSpec, OpDef, TensorArg, register_op

__all__ = ["INPUT", "PARAMETER", "GETITEM"]


def _no_run(*args, **kwargs):  # pragma: no cover - the interpreter feeds these
    raise RuntimeError("source ops are fed by the interpreter, not run")


def _zero(in_shapes, out_shape, attrs, params):
    return 0


INPUT = register_op(
    OpDef(
        name="input",
        category="source",
        args=(),
        attrs={"name": AttrSpec("str", required=True)},
        fn=_no_run,
        flops=_zero,
        doc="a graph input",
    )
)

PARAMETER = register_op(
    OpDef(
        name="parameter",
        category="source",
        args=(),
        attrs={
            "kind": AttrSpec("str", default="parameter"),
            "dtype": AttrSpec("dtype", default="float32"),
            "persistent": AttrSpec("bool", default=True),
            "value": AttrSpec("any", optional=True),
        },
        fn=_no_run,
        param_args=("data",),
        flops=_zero,
        doc="a free parameter, buffer or constant tensor",
    )
)

GETITEM = register_op(
    OpDef(
        name="getitem",
        category="structural",
        args=(TensorArg("input", "one"),),
        attrs={"index": AttrSpec("int", required=True)},
        fn=lambda x, index: operator.getitem(x, index),
        flops=_zero,
        doc="element `index` of a multi-output node",
    )
)
