"""The HuggingFace model zoo as a source of small, runnable architectures.

Every model type that transformers can build as a base model (``AutoModel``) is
shrunk to a tiny configuration (hidden ~64, 2 layers, a few heads, a small
vocabulary and image), instantiated with random weights (nothing is downloaded)
and paired with example inputs that match its modality.

How a config is shrunk (``small_config``):
    * known size attributes (widths, FFN sizes, layer/head/expert counts, vocab,
      positions, image and patch sizes) get small values, in the config and in
      every sub-config (text, vision, audio, encoder, decoder, ...);
    * per-layer lists (``layer_types``, ...) are subsampled keeping one layer of
      each kind, so hybrid models stay hybrid;
    * dependent values are recomputed (head_dim, multimodal rotary sections,
      latent-attention ranks, state-space head sizes, windows of hierarchical
      vision transformers), token ids are moved inside the small vocabulary;
    * ``CONFIG_OVERRIDES`` holds the few per-type adjustments generic rules miss;
    * ``use_cache`` is off everywhere and mixture-of-experts layers use the
      ``batched_mm`` implementation (static shapes, plain aten ops). Attention
      keeps transformers' default: SDPA where the model supports it (one
      ``scaled_dot_product_attention`` node per layer), eager otherwise.

How inputs are made (``example_inputs``): from the forward signature and the
config (text, images in several layouts, audio features or waveforms, video,
time series); multimodal models get as many placeholder tokens as their
image/audio encoders produce. Where several layouts are plausible the model is
run on each and the first that works is kept. ``INPUT_BUILDERS`` holds per-type
builders for inputs no generic rule covers.

Modules: :mod:`.catalog` (model types, ``ZooError``), :mod:`.sizes` (target
sizes and attribute names), :mod:`.config_tree` (reading nested configs),
:mod:`.configs` (shrinking), :mod:`.overrides` (per-type registries),
:mod:`.inputs` (example inputs), :mod:`.build` (model and inputs together).

Example:
    >>> from mad.code2graph.hf_zoo import build
    >>> model, inputs = build("bert")
    >>> out = model(**inputs)
"""

# The package namespace re-exports the public names of its modules.
# ruff: noqa: F401
from __future__ import annotations

from .build import build, run_forward
from .catalog import STAGES, ZooError, model_types, preload
from .config_tree import SUBCONFIG_KEYS
from .configs import EXPERTS_IMPLEMENTATION, full_config, small_config
from .inputs import (
    FEATURE_FNS,
    MAX_CANDIDATES,
    MM_TOKEN_KEYS,
    MM_WRAP_KEYS,
    example_inputs,
    generic_inputs,
    input_candidates,
)
from .overrides import CONFIG_FIXES, CONFIG_OVERRIDES, INPUT_BUILDERS
from .sizes import (
    EXPERT_KEYS,
    EXPERTS,
    EXPERTS_PER_TOKEN,
    FFN_KEYS,
    FIXED,
    FLAGS,
    HEAD_DIM,
    HEAD_DIM_KEYS,
    HEAD_KEYS,
    HEADS,
    HIDDEN,
    IMAGE,
    IMAGE_KEYS,
    INTERMEDIATE,
    KV_HEAD_KEYS,
    LAYER_KEYS,
    LAYERS,
    LIST_DEPTH_KEYS,
    LIST_HEAD_KEYS,
    LIST_WIDTH_KEYS,
    MAX_POSITIONS,
    PATCH,
    PATCH_KEYS,
    PLACEHOLDER_KEYS,
    POSITION_KEYS,
    SKIP_KEYS,
    TOKEN_SUFFIXES,
    TOPK_KEYS,
    VOCAB,
    VOCAB_KEYS,
    WIDTH_KEYS,
)

__all__ = [
    "STAGES",
    "ZooError",
    "build",
    "example_inputs",
    "input_candidates",
    "model_types",
    "preload",
    "run_forward",
    "small_config",
]
