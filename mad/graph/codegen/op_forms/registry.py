"""The table of readable forms: op name -> emitter (source for a bound node, or None for the aten call)."""
from __future__ import annotations

from collections.abc import Callable

from ..binding import _Bound

# Each emitter returns source for the node, or None to fall back to the aten call.
# Every form here is checked against the aten op by tests/graph/test_codegen.py.
Emitter = Callable[[_Bound], "str | None"]
_EMITTERS: dict[str, Emitter] = {}


def _emits(*names: str) -> Callable[[Emitter], Emitter]:
    def deco(fn: Emitter) -> Emitter:
        for n in names:
            _EMITTERS[n] = fn
        return fn

    return deco
