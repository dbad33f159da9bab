"""Exact symbolic shape rules through PyTorch's fake tensors: the slow fallback.

:func:`~mad.graph.interpreter.infer_node` fits most symbolic dims from a few
meta-tensor runs. A dim that is no multilinear polynomial of the symbols
(``(T - 1)//2 + 1`` after a strided convolution over a sequence) comes from
here: the op runs once on fake tensors whose sizes are symbols of a
``ShapeEnv``, and the output sizes are read back as expressions.
"""

from __future__ import annotations

from typing import Any

import sympy
import torch

from .ops.call import call_op
from .ops.symbols import resolve_attrs
from .ops.values import dtype_from_name
from .symbolic import evaluate, normalise

__all__ = ["fake_shape_rule"]


class _Env:
    def __init__(self, hints: dict[str, int]) -> None:
        from torch._dynamo.source import ConstantSource
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv

        self.shape_env = ShapeEnv()
        self.mode = FakeTensorMode(shape_env=self.shape_env, allow_non_fake_inputs=True)
        self.hints = hints
        self.symints: dict[str, Any] = {}
        self.rename: dict[sympy.Symbol, sympy.Symbol] = {}
        for name, hint in hints.items():
            src = ConstantSource(f"dim_{name}")
            s = self.shape_env.create_symbol(hint, src, dynamic_dim=DimDynamic.DYNAMIC)
            self.symints[name] = self.shape_env.create_symintnode(s, hint=hint, source=src)
            self.rename[s] = sympy.Symbol(name, integer=True, positive=True)

    def dim(self, d: Any) -> Any:
        return evaluate(d, self.symints) if isinstance(d, str) else d

    def expr(self, d: Any) -> Any:
        """An output size as an int or an expression string over the graph's symbols."""
        if isinstance(d, int):
            return d
        e = d.node.expr.xreplace(self.rename)
        if e.is_Integer:
            return int(e)
        return normalise(str(e))  # raises SymbolError when sympy printed something we cannot evaluate


def fake_shape_rule(g: Any, node: Any, op: Any, inputs: list[tuple[Any, Any]], hints: dict[str, int]) -> tuple[Any, Any]:
    """(shape, dtype) of ``node`` on symbolic inputs, exactly."""
    from .interpreter import param_dtype
    from .ops.values import dtype_name

    env = _Env(hints)

    def fake(shape: Any, dtype: Any) -> Any:
        if isinstance(dtype, list):
            return tuple(fake(s, d) for s, d in zip(shape, dtype))
        if shape is None:
            return None
        return torch.empty([env.dim(d) for d in shape], dtype=dtype_from_name(dtype or "float32"))

    from torch._dispatch.python import enable_python_dispatcher

    with env.mode, enable_python_dispatcher():  # symbolic-size kernels of composite ops (pad...)
        values = [fake(s, d) for s, d in inputs]
        params = {r: torch.empty(s, dtype=param_dtype(g, node, r)) for r, s in node.params.items()}
        attrs = resolve_attrs(op, node.attrs, env.symints)
        out = call_op(op, attrs, values, params, device="cpu")

    fixed = {env.rename[k].name: int(v) for k, v in env.shape_env.replacements.items()
             if k in env.rename and getattr(v, "is_Integer", False)}
    if fixed:
        raise ValueError(
            f"only runs at {', '.join(f'{k} = {v}' for k, v in sorted(fixed.items()))}: "
            "that dim must stay concrete in this graph"
        )

    def describe(v: Any) -> tuple[Any, Any]:
        if isinstance(v, torch.Tensor):
            return [env.expr(d) for d in v.shape], dtype_name(v.dtype)
        if isinstance(v, (list, tuple)):
            parts = [describe(x) for x in v]
            return [p[0] for p in parts], [p[1] for p in parts]
        return None, None

    return describe(out)
