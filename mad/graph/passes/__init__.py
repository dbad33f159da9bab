"""Graph passes: edits that keep an ArchGraph valid (torch.fx style), canonicalisation and retargeting."""

from .blocks import block_io, block_nodes, remove_block, rename_scope, repeat_block, replace_subgraph
from .canonicalize import canonicalize
from .edit import eliminate_dead_code, insert_after, mutates, replace_all_uses, rewire
from .reinfer import reinfer, transaction
from .retarget import retarget

__all__ = [
    "block_io",
    "block_nodes",
    "canonicalize",
    "eliminate_dead_code",
    "insert_after",
    "mutates",
    "reinfer",
    "remove_block",
    "rename_scope",
    "repeat_block",
    "replace_all_uses",
    "replace_subgraph",
    "retarget",
    "rewire",
    "transaction",
]
