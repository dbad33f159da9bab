"""Source of tensor values (buffers no state dict restores): a literal, a short constructor, or base64 text."""
from __future__ import annotations

import math
from typing import Any

import torch

from .literals import _ints, _lit

_LITERAL_NUMEL = 16  # tensors up to this size are written out as literals
_B64_LINE = 112


def _value_expr(t: torch.Tensor) -> tuple[str, str | None]:
    """Source that rebuilds ``t`` exactly; second item is base64 text when a helper is needed."""
    dtype = t.dtype
    dt = "" if dtype == torch.float32 else f", dtype={_lit(dtype)}"
    shape = list(t.shape)
    n = t.numel()
    if dtype.is_complex:
        return "", _b64(t)
    if n == 0:
        return f"torch.empty({_ints(shape)}{dt})", None
    flat = t.reshape(-1)
    if n > 1 and dtype != torch.bool and torch.equal(flat, torch.arange(n, dtype=dtype)):
        base = f"torch.arange({n})" if dtype == torch.int64 else f"torch.arange({n}{dt})"
        return (base if len(shape) == 1 else f"{base}.view({_ints(shape)})"), None
    first = flat[0]
    if n > 1 and (bool((flat == first).all()) or (dtype.is_floating_point and bool(torch.isnan(flat).all()))):
        v = first.item()
        if v in (0, 1) and not (dtype.is_floating_point and math.copysign(1.0, v) < 0):
            return f"torch.{'zeros' if v == 0 else 'ones'}({_ints(shape)}{dt})", None
        return f"torch.full({_lit(tuple(shape))}, {_lit(v)}{dt})", None
    if len(shape) >= 2:
        ones = torch.ones(shape, dtype=dtype)
        for name in ("tril", "triu"):
            if torch.equal(t, getattr(ones, name)()):
                return f"torch.ones({_ints(shape)}{dt}).{name}()", None
    if n <= _LITERAL_NUMEL:
        values = _short_floats(t) if dtype in (torch.float32, torch.float16, torch.bfloat16) else t.tolist()
        implied = {torch.int64, torch.bool, torch.float32}
        return f"torch.tensor({_lit(values)}{'' if dtype in implied else dt})", None
    return "", _b64(t)


def _short_floats(t: torch.Tensor) -> Any:
    """``t.tolist()`` with each float written in the fewest digits that give back the same value."""
    flat = t.reshape(-1)
    out = []
    for v in flat.tolist():
        short = v
        if math.isfinite(v):
            for digits in range(1, 18):
                cand = float(f"{v:.{digits}g}")
                if torch.tensor(cand, dtype=t.dtype).item() == v:
                    short = cand
                    break
        out.append(short)
    return torch.tensor(out, dtype=torch.float64).reshape(t.shape).tolist() if t.dim() else out[0]


def _b64(t: torch.Tensor) -> str:
    from ..module import encode_tensor

    return encode_tensor(t)["b64"]


_B64_HELPER = '''

def _tensor_from_base64(text: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor from its raw bytes, base64-encoded (buffers that no state dict restores)."""
    raw = bytearray(base64.b64decode(text))
    if not raw:
        return torch.empty(shape, dtype=dtype)
    if dtype == torch.bool:
        return torch.frombuffer(raw, dtype=torch.uint8).bool().reshape(shape).clone()
    return torch.frombuffer(raw, dtype=dtype).reshape(shape).clone()
'''
