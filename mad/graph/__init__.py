"""mad.graph: the ArchGraph IR, its op vocabulary, validation and conversions."""

from .arch_graph import ArchGraph, Edge, GraphError, Node, TensorSpec
from .interpreter import GraphSummary, example_inputs, interpret
from .ops import (
    BOS_ID,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    UNK_ID,
    VOCAB_VERSION,
    OpDef,
    UnknownOpError,
    get_op,
    op_from_id,
    op_id,
    op_names,
    register_op,
    vocab_size,
)
from .serialize import SCHEMA_VERSION, from_json
from .validate import validate
from .builder import GraphBuilder

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "MASK_ID",
    "PAD_ID",
    "UNK_ID",
    "ArchGraph",
    "Edge",
    "GraphBuilder",
    "GraphError",
    "GraphSummary",
    "Node",
    "OpDef",
    "SCHEMA_VERSION",
    "TensorSpec",
    "UnknownOpError",
    "VOCAB_VERSION",
    "example_inputs",
    "from_json",
    "get_op",
    "interpret",
    "op_from_id",
    "op_id",
    "op_names",
    "register_op",
    "validate",
    "vocab_size",
]
