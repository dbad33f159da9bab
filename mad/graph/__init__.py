"""mad.graph: the ArchGraph IR, its op vocabulary, validation and conversions."""

from .arch_graph import ArchGraph, Edge, GraphError, Node, TensorSpec
from .interpreter import GraphSummary, example_inputs, interpret
from .ops import VOCAB_VERSION, OpDef, UnknownOpError, get_op, op_names, register_op
from .serialize import SCHEMA_VERSION, from_json
from .validate import validate
from .builder import GraphBuilder

__all__ = [
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
    "op_names",
    "register_op",
    "validate",
]
