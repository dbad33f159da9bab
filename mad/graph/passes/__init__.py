"""Graph passes: edits that keep an ArchGraph valid (torch.fx style), canonicalisation, retargeting,
cutting a prefix, and the architecture edits researchers ask for (LoRA, activations, GQA, depth, attention,
rotary positions, downsampling)."""

from .activation import ACTIVATIONS, GATED, replace_activation
from .attention_cell import add_attention, self_attention
from .blocks import block_io, block_nodes, remove_block, rename_scope, repeat_block, replace_subgraph
from .canonicalize import canonicalize
from .cut import cut, removed_part, spine
from .deepen import block_families, deepen, set_depth
from .edit import eliminate_dead_code, insert_after, mutates, replace_all_uses, rewire
from .edits import EDIT_PASSES
from .kv_heads import set_kv_heads
from .lora import add_lora, lora_targets
from .reinfer import reinfer, transaction
from .downsample import add_downsampling
from .residual import add_residual
from .retarget import (attend_output, attendable, image_as_signal, project_output, projectable, query_input, retarget,
                       signal_as_image)
from .rotary import add_rotary

__all__ = [
    "ACTIVATIONS",
    "EDIT_PASSES",
    "GATED",
    "add_lora",
    "block_families",
    "block_io",
    "block_nodes",
    "canonicalize",
    "cut",
    "spine",
    "deepen",
    "add_attention",
    "add_rotary",
    "add_downsampling",
    "add_residual",
    "self_attention",
    "set_depth",
    "eliminate_dead_code",
    "image_as_signal",
    "signal_as_image",
    "insert_after",
    "lora_targets",
    "mutates",
    "project_output",
    "projectable",
    "query_input",
    "attend_output",
    "attendable",
    "reinfer",
    "remove_block",
    "removed_part",
    "rename_scope",
    "repeat_block",
    "replace_activation",
    "replace_all_uses",
    "replace_subgraph",
    "retarget",
    "rewire",
    "set_kv_heads",
    "transaction",
]
