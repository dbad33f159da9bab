"""The versioned op vocabulary of the ArchGraph IR."""

from .registry import (
    VOCAB_VERSION,
    AttrSpec,
    OpDef,
    TensorArg,
    UnknownOpError,
    get_op,
    has_op,
    op_for_target,
    op_names,
    register_op,
)

__all__ = [
    "VOCAB_VERSION",
    "AttrSpec",
    "OpDef",
    "TensorArg",
    "UnknownOpError",
    "get_op",
    "has_op",
    "op_for_target",
    "op_names",
    "register_op",
]
