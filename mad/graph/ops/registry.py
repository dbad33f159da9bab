"""The op vocabulary: one :class:`OpDef` per op name, kept in a registry.

Every node of an :class:`~mad.graph.ArchGraph` names an op from this registry.
An op declares

- its tensor arguments (``args``), in port order, each ``one``, ``optional``,
  ``list`` or ``optional_list``; a tensor argument may instead be held by the
  node as an owned parameter (``param_args``) or as a constant in ``attrs``;
- its attribute schema (``attrs``: name -> :class:`AttrSpec`);
- how to run it (``fn``), from which the default shape rule (execution on the
  ``meta`` device) follows;
- its FLOP count (``flops``) and, for layers, the module that holds its
  parameters under the source model's names (``module``).

Ops are added with :func:`register_op`; :data:`VOCAB_VERSION` versions the set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = [
    "AttrSpec",
    "TensorArg",
    "OpDef",
    "register_op",
    "get_op",
    "has_op",
    "op_names",
    "op_for_target",
    "VOCAB_VERSION",
    "UnknownOpError",
]

VOCAB_VERSION = "2.0"

# attribute types understood by the validator
ATTR_TYPES = (
    "int",
    "float",
    "bool",
    "str",
    "number",  # int or float (aten Scalar)
    "ints",  # list of ints
    "floats",
    "bools",
    "dtype",  # torch dtype by name, e.g. "float32"
    "memory_format",  # by name, e.g. "contiguous_format"
    "layout",  # by name, e.g. "strided"
    "device",  # always null: the module supplies its device at run time
    "generator",  # always null: the default random generator
    "any",  # JSON value, checked by the op itself
)


def _dim_expr(value: Any) -> bool:
    """A symbolic dim (``"B"``, ``"B*T"``) where an int is expected; see :mod:`mad.graph.symbolic`."""
    if not isinstance(value, str):
        return False
    from ..symbolic import check_expr, free_symbols

    return check_expr(value) is None and bool(free_symbols(value))


class UnknownOpError(KeyError):
    """Raised when an op name is not in the vocabulary."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class AttrSpec:
    """Schema of one attribute: its type, whether it may be null, its default."""

    type: str
    optional: bool = False
    default: Any = None
    required: bool = False

    def check(self, value: Any) -> str | None:
        """Return a reason string when ``value`` does not fit, else None."""
        if value is None:
            return None if (self.optional or not self.required) else "must not be null"
        t = self.type
        if t == "any":
            return None
        if t == "bool":
            ok = isinstance(value, bool)
        elif t == "int":
            ok = (isinstance(value, int) and not isinstance(value, bool)) or _dim_expr(value)
        elif t in ("float", "number"):
            # an aten Scalar ("number") may be a bool; non-finite floats are stored as strings
            ok = isinstance(value, (int, float)) and (t == "number" or not isinstance(value, bool))
            if isinstance(value, str):
                ok = value in ("inf", "-inf", "nan") or (t == "number" and _dim_expr(value))
        elif t in ("str", "dtype", "memory_format", "layout"):
            ok = isinstance(value, str)
        elif t in ("device", "generator"):
            ok = False
        elif t == "ints":
            ok = isinstance(value, list) and all(
                (isinstance(v, int) and not isinstance(v, bool)) or _dim_expr(v) for v in value
            )
        elif t == "floats":
            ok = isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)
        elif t == "bools":
            ok = isinstance(value, list) and all(isinstance(v, bool) for v in value)
        else:  # pragma: no cover - schema bug
            return f"unknown attribute type {t!r}"
        return None if ok else f"expected {t}, got {type(value).__name__} {value!r}"


@dataclass(frozen=True)
class TensorArg:
    """A tensor argument of an op.

    ``kind`` is ``one`` (fed by the next port unless attrs hold a constant
    number for it), ``optional`` (null unless attrs mark it ``"%"``: fed by the
    next port, or hold a constant), ``list`` (a list of tensors) or
    ``optional_list`` (a list whose entries may be null). List arguments are
    described in the node's attrs by a list whose entries are ``"%"`` for a
    tensor fed through the next port and anything else for a constant.
    """

    name: str
    kind: str = "one"
    kwarg_only: bool = False


PORT = "%"  # marks a list entry fed through an edge


@dataclass
class OpDef:
    """Definition of one op of the vocabulary.

    Args:
        name: vocabulary name, e.g. ``"linear"``.
        category: ``"layer"`` (owns parameters), ``"primitive"``, ``"source"``
            (``input``/``parameter``) or ``"structural"`` (``getitem``).
        args: tensor arguments in port order.
        attrs: attribute schema.
        fn: ``fn(*args, **kwargs)`` that runs the op on tensors.
        param_args: tensor arguments a node may own as parameters.
        buffer_args: the subset of ``param_args`` that are buffers.
        flops: ``flops(in_shapes, out_shape, attrs, params) -> int``.
        module: ``module(attrs, params) -> nn.Module | None`` holding the
            owned parameters under their roles (used for naming/printing).
        multi_output: the op returns a tuple (read it with ``getitem``).
        target: the ``torch.ops.aten`` overload this op captures, if any.
        creates: the op makes a new tensor (``arange``, ``zeros``...) and
            takes a ``device`` at run time.
        signature: the full argument order of ``fn`` as
            ``(name, is_tensor, kwarg_only)``; empty means tensor args
            positionally, then attrs as keywords.
        doc: one line of documentation.
    """

    name: str
    category: str
    args: tuple[TensorArg, ...]
    attrs: dict[str, AttrSpec]
    fn: Callable[..., Any]
    param_args: tuple[str, ...] = ()
    buffer_args: tuple[str, ...] = ()
    flops: Callable[..., int] | None = None
    module: Callable[..., Any] | None = None
    multi_output: bool = False
    target: Any = None
    creates: bool = False
    signature: tuple[tuple[str, bool, bool], ...] = ()
    doc: str = ""

    def arg(self, name: str) -> TensorArg:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(name)


_REGISTRY: dict[str, OpDef] = {}
_BY_TARGET: dict[str, str] = {}


def register_op(opdef: OpDef | None = None, **kwargs: Any):
    """Add an op to the vocabulary.

    Use as a function (``register_op(OpDef(...))``) or as a decorator on the
    run function (``@register_op(name="gelu", category="primitive", ...)``).
    Registering a name twice is an error.
    """

    def _add(od: OpDef) -> OpDef:
        if od.name in _REGISTRY:
            raise ValueError(f"op {od.name!r} is already registered")
        _REGISTRY[od.name] = od
        if od.target is not None:
            _BY_TARGET[str(od.target)] = od.name
        return od

    if opdef is not None:
        return _add(opdef)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _add(OpDef(fn=fn, **kwargs))
        return fn

    return deco


def _ensure_loaded() -> None:
    if not _REGISTRY:
        from . import aten_ops, layers, structural  # noqa: F401  (registers)


def get_op(name: str) -> OpDef:
    """The :class:`OpDef` for ``name``; :class:`UnknownOpError` if absent."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownOpError(
            f"unknown op {name!r}: not in vocabulary v{VOCAB_VERSION} "
            f"({len(_REGISTRY)} ops; see `mad.graph.op_names()`)"
        ) from None


def has_op(name: str) -> bool:
    _ensure_loaded()
    return name in _REGISTRY


def op_names() -> list[str]:
    """All op names of the vocabulary, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def op_for_target(target: Any) -> str | None:
    """Vocabulary name of the op that captures a ``torch.ops.aten`` overload."""
    _ensure_loaded()
    return _BY_TARGET.get(str(target))
