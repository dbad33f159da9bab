"""The versioned op vocabulary of the ArchGraph IR: op definitions and their frozen ids."""

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
from .vocab import (
    BOS_ID,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    op_from_id,
    op_id,
    vocab_size,
)

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "MASK_ID",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNK_ID",
    "VOCAB_VERSION",
    "AttrSpec",
    "OpDef",
    "TensorArg",
    "UnknownOpError",
    "get_op",
    "has_op",
    "op_for_target",
    "op_from_id",
    "op_id",
    "op_names",
    "register_op",
    "vocab_size",
]
