"""mad.tokenizer: architecture graphs as token sequences and back, exactly."""

from .graph_tokenizer import Assembler, GraphTokenizer, NodeRec, TokenizeError
from .order import canonical_order
from .vocab import MAX_REF, Vocab

__all__ = ["Assembler", "GraphTokenizer", "MAX_REF", "NodeRec", "TokenizeError", "Vocab", "canonical_order"]
