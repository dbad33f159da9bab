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

Example:
    >>> from mad.code2graph.hf_zoo import build
    >>> model, inputs = build("bert")
    >>> out = model(**inputs)
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import math
import sys
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

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

STAGES = ("config", "instantiate", "inputs", "forward")

# Target sizes of the shrunk configurations.
HIDDEN = 64
HEADS = 4
HEAD_DIM = HIDDEN // HEADS
INTERMEDIATE = 128
LAYERS = 2
VOCAB = 512
IMAGE = 32
PATCH = 8
EXPERTS = 4
EXPERTS_PER_TOKEN = 2
MAX_POSITIONS = 512


class ZooError(RuntimeError):
    """A zoo model type could not be configured, built, fed or run.

    Args:
        model_type: the transformers model type, e.g. ``"bert"``.
        stage: one of ``STAGES`` (``config``, ``instantiate``, ``inputs``, ``forward``).
        reason: one line saying what went wrong.
    """

    def __init__(self, model_type: str, stage: str, reason: str) -> None:
        self.model_type = model_type
        self.stage = stage
        self.reason = " ".join(str(reason).split())[:500]
        super().__init__(f"{model_type}: {stage} failed: {self.reason}")


# --------------------------------------------------------------------------- enumeration


def model_types() -> list[str]:
    """Every transformers model type that has a config and a base (``AutoModel``) class, sorted."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return sorted(t for t in CONFIG_MAPPING_NAMES if t in MODEL_MAPPING_NAMES)


def preload() -> None:
    """Import torch.export and transformers' auto/model machinery once (before forking workers)."""
    import torch.export  # noqa: F401
    import transformers.modeling_utils  # noqa: F401

    model_types()
    _model_class("bert")


def _model_class(model_type: str):
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    name = MODEL_MAPPING_NAMES[model_type]
    if isinstance(name, (list, tuple)):
        name = name[0]
    return getattr(transformers, name)


# --------------------------------------------------------------------------- config shrinking

WIDTH_KEYS = {
    "hidden_size", "d_model", "n_embd", "n_embed", "embed_dim", "model_dim", "emb_dim", "d_embed",
    "hidden_dim", "encoder_hidden_size", "decoder_hidden_size", "text_hidden_size", "projection_dim",
    "out_hidden_size", "output_hidden_size", "projector_hidden_size", "embedding_size", "embedding_dim",
    "vision_hidden_size", "audio_hidden_size", "pooler_hidden_size", "pooler_output_size", "fusion_hidden_size",
    "image_text_hidden_size", "encoder_hidden_dim", "classifier_proj_size",
    "memory_attention_hidden_size", "memory_encoder_hidden_size", "memory_encoder_output_channels",
    "mask_downsampler_embed_dim", "memory_fuser_embed_dim", "fpn_hidden_size", "hidden_size_per_layer_input",
    "latent_dim", "codebook_dim", "codevector_dim", "proj_codevector_dim", "xvector_output_dim",
    "mask_feature_size", "num_filters", "d_latent", "word_embed_proj_dim", "unit_embed_dim",
    "text_embed_dim", "vision_embed_dim", "query_hidden_size", "decoder_embed_dim", "quantization_dim",
    "vector_quantization_hidden_dimension", "upsample_initial_channel", "output_channels", "feature_size",
    "speech_decoder_postnet_units", "lang_embed_dim", "spkr_embed_dim", "neck_out_channels",
    "kv_channels", "lqe_hidden_dim", "audio_embed_dim", "image_embed_dim", "mamba_expand_dim", "condition_dim",
}
FFN_KEYS = {
    "intermediate_size", "ffn_dim", "encoder_ffn_dim", "decoder_ffn_dim", "n_inner", "d_ff", "mlp_dim",
    "moe_intermediate_size", "shared_expert_intermediate_size", "decoder_intermediate_size", "dim_feedforward",
    "encoder_feedforward_dim", "ffn_hidden_size", "d_inner", "shared_intermediate_size", "memory_fuser_intermediate_dim",
    "memory_attention_feed_forward_hidden_size", "speech_encoder_intermediate_size", "t2u_encoder_ffn_dim",
    "t2u_decoder_ffn_dim", "encoder_intermediate_size", "vision_intermediate_size", "text_intermediate_size",
}
LAYER_KEYS = {
    "num_hidden_layers", "n_layer", "n_layers", "num_layers", "encoder_layers", "decoder_layers",
    "num_encoder_layers", "num_decoder_layers", "depth", "speech_encoder_layers", "t2u_encoder_layers",
    "t2u_decoder_layers", "num_text_layers", "num_vision_layers", "decoder_num_hidden_layers",
    "encoder_num_hidden_layers", "text_encoder_layers", "num_single_layers", "num_global_layers",
}
HEAD_KEYS = {
    "num_attention_heads", "n_head", "num_heads", "encoder_attention_heads", "decoder_attention_heads",
    "n_heads", "num_attention_heads_decoder", "decoder_num_attention_heads", "t2u_encoder_attention_heads",
    "t2u_decoder_attention_heads", "index_n_heads", "swa_num_attention_heads", "mamba_n_heads",
    "linear_num_value_heads", "linear_num_key_heads", "linear_num_heads", "encoder_num_attention_heads",
}
KV_HEAD_KEYS = {"num_key_value_heads", "n_head_kv", "num_kv_heads", "decoder_num_key_value_heads"}
HEAD_DIM_KEYS = {
    "head_dim", "d_kv", "d_head", "attention_head_dim", "linear_key_head_dim", "linear_value_head_dim",
    "linear_head_dim", "swa_head_dim", "mamba_d_head", "index_head_dim", "attention_head_size", "qk_head_dim",
}
VOCAB_KEYS = {"vocab_size", "t2u_vocab_size", "unit_hifi_gan_vocab_size", "vocab_size_per_layer_input"}
EXPERT_KEYS = {"num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts", "num_routed_experts"}
TOPK_KEYS = {"num_experts_per_tok", "moe_topk", "top_k", "moe_k", "num_selected_experts", "top_k_experts"}
POSITION_KEYS = {
    "max_position_embeddings", "n_positions", "max_source_positions", "max_target_positions",
    "t2u_max_position_embeddings", "max_seq_len", "max_sequence_length", "n_ctx",
}
IMAGE_KEYS = {"image_size", "img_size", "pretrain_image_size", "max_img_size"}
PATCH_KEYS = {"patch_size"}
# Exact replacements independent of the default value (only applied when the key exists).
FIXED = {
    "kv_lora_rank": 16,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 8,
    "v_head_dim": 16,
    "n_group": 1,
    "n_groups": 1,
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "num_nextn_predict_layers": 0,
    "index_topk": 16,
    "n_shared_experts": 1,
    "num_shared_experts": 1,
    "mamba_d_state": 16,
    "ssm_state_size": 16,
    "state_size": 16,
    "mamba_chunk_size": 16,
    "chunk_size": 16,
    "time_step_rank": 8,
    "mamba_dt_rank": 8,
    "num_queries": 16,
    "num_query_tokens": 8,
    "num_denoising": 4,
    "codebook_size": 64,
    "num_codevectors_per_group": 16,
    "num_mel_bins": 16,
    "max_source_positions": 32,
    "rotary_dim": 8,
    "num_frames": 4,
    "mm_tokens_per_image": 4,
}
# Flags that would need optional packages or downloads, and their safe values.
FLAGS = {"use_timm_backbone": False, "use_pretrained_backbone": False}
LIST_WIDTH_KEYS = {"hidden_sizes", "embed_dims", "dims", "channels", "neck_hidden_sizes", "embedding_dimension"}
LIST_DEPTH_KEYS = {"depths", "num_layers_per_stage", "stage_num_blocks", "block_depths"}
LIST_HEAD_KEYS = {"num_heads", "num_attention_heads", "heads"}
TOKEN_SUFFIXES = ("_token_id", "_token_index", "_token_ids")
PLACEHOLDER_KEYS = {"image_token_id", "image_token_index", "audio_token_id", "audio_token_index"}
SKIP_KEYS = {"id2label", "label2id", "_name_or_path", "architectures", "transformers_version", "dtype"}


def _is_config(v: Any) -> bool:
    from transformers import PretrainedConfig

    return isinstance(v, PretrainedConfig)


def _config_items(cfg) -> dict[str, Any]:
    return {k: v for k, v in vars(cfg).items() if not k.startswith("__") and k not in SKIP_KEYS}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _layer_count(items: dict[str, Any]) -> int | None:
    for k in ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "decoder_layers", "encoder_layers", "depth"):
        if _is_int(items.get(k)) and items[k] > 0:
            return items[k]
    return None


def _subsample_layers(values: list, n: int) -> list:
    """Pick ``n`` entries of a per-layer list keeping one of each distinct value (first occurrences first)."""
    picked: list[int] = []
    seen: list = []
    for i, v in enumerate(values):
        if v not in seen:
            seen.append(v)
            picked.append(i)
    for i in range(len(values)):
        if len(picked) >= n:
            break
        if i not in picked:
            picked.append(i)
    return [values[i] for i in sorted(picked[:n])]


def _scale_list(values: list[int], cap: int, multiple: int = 8) -> list[int]:
    biggest = max(values)
    if biggest <= cap:
        return list(values)
    factor = biggest / cap
    return [max(multiple, round(v / factor / multiple) * multiple) for v in values]


def _shrink_items(items: dict[str, Any], token_map: dict[Any, int], mrope: bool = False,
                  fill_none: bool = False) -> dict[str, Any]:
    """Changed keyword arguments for one config level (sub-configs become nested dicts).

    ``mrope``: the model reads ``rope_parameters["mrope_section"]`` (set even when the default omits it).
    ``fill_none``: also give known size attributes whose default is ``None`` a small value.
    """
    out: dict[str, Any] = {}
    old_layers = _layer_count(items)
    n_layers = LAYERS
    per_layer_lists = {
        k: v for k, v in items.items()
        if old_layers and old_layers > LAYERS and isinstance(v, list) and len(v) == old_layers and not k.startswith("_")
    }
    for v in per_layer_lists.values():
        try:
            n_layers = max(n_layers, min(4, len({repr(x) for x in v})))
        except TypeError:
            pass
    heads = items.get("num_attention_heads")
    for k, v in items.items():
        if _is_config(v):
            out[k] = _shrink_config(v, token_map, fill_none)
            continue
        if v is None and fill_none:
            new = _shrink_int(k, 1 << 30, items, n_layers)
            if new is not None:
                out[k] = new
            continue
        if k in per_layer_lists:
            out[k] = _subsample_layers(v, n_layers)
            continue
        if _is_int(v):
            new = _shrink_int(k, v, items, n_layers)
            if new is not None and new != v:
                out[k] = new
        elif isinstance(v, (list, tuple)) and v and all(_is_int(x) for x in v):
            new_list = _shrink_int_list(k, list(v), items)
            if new_list is not None and new_list != list(v):
                out[k] = type(v)(new_list) if isinstance(v, tuple) else new_list
        elif isinstance(v, dict) and k in ("text_config", "vision_config", "audio_config") and "model_type" in v:
            out[k] = v  # a plain dict sub-config; left as is
    # heads / kv heads / head_dim consistency
    h = out.get("num_attention_heads", heads)
    if _is_int(h) and "head_dim" in items and (items.get("head_dim") is not None or "num_attention_heads" in out):
        out["head_dim"] = HEAD_DIM
    for k, v in FLAGS.items():
        if k in items and items[k] != v:
            out[k] = v
    width = out.get("hidden_size", items.get("hidden_size"))
    # state-space heads: keep "heads x head size = expand x width" where the default config has it
    for expand, heads_k, dim_k in (("mamba_expand", "mamba_n_heads", "mamba_d_head"), ("expand", "num_heads", "head_dim")):
        e, n0, d0, w0 = items.get(expand), items.get(heads_k), items.get(dim_k), items.get("hidden_size")
        n = out.get(heads_k, n0)
        if all(_is_int(x) and x for x in (e, n0, d0, w0, n, width)) and n0 * d0 == e * w0:
            out[dim_k] = e * width // n
    for k in ("vision_feature_layer", "vision_feature_layers"):
        v = items.get(k)  # absolute layer indices become indices from the end of the shrunk tower
        if _is_int(v) and v >= LAYERS:
            out[k] = -1
        elif isinstance(v, list) and any(_is_int(x) and x >= LAYERS for x in v):
            out[k] = [-1 - i for i in range(len(v))][:LAYERS]
    if isinstance(items.get("image_grid_pinpoints"), list):  # any-resolution tiling: one tile of the small image
        out["image_grid_pinpoints"] = [[IMAGE, IMAGE]]
    hd = out.get("head_dim", items.get("head_dim"))
    if not _is_int(hd) and _is_int(out.get("hidden_size")) and _is_int(h) and h:
        hd = out["hidden_size"] // h
    for rk in ("rope_parameters", "rope_scaling"):
        rope = items.get(rk)
        if isinstance(rope, dict) and _is_int(hd) and (isinstance(rope.get("mrope_section"), list) or mrope):
            partial = rope.get("partial_rotary_factor", items.get("partial_rotary_factor")) or 1.0
            sections = rope.get("mrope_section") or [16, 24, 24]
            out[rk] = dict(rope, mrope_section=_split_sections(sections, int(hd * partial) // 2))
    if _is_int(items.get("qk_rope_head_dim")):  # multi-head latent attention: rotary part sets head_dim
        out["head_dim"] = FIXED["qk_rope_head_dim"]
        if "qk_head_dim" in items:
            out["qk_head_dim"] = FIXED["qk_rope_head_dim"] + FIXED["qk_nope_head_dim"]
    if "num_key_value_heads" in items and _is_int(h):
        old_kv, old_h = items["num_key_value_heads"], heads if _is_int(heads) else h
        out["num_key_value_heads"] = h if old_kv in (old_h, None) else (1 if old_kv == 1 else max(1, min(2, h)))
    if _is_int(items.get("upsample_groups")) and items["upsample_groups"] > 1:
        out["upsample_groups"] = out.get("hidden_size", HIDDEN)  # depthwise upsampling over the hidden channels
    depths = items.get("depths")
    if isinstance(depths, (list, tuple)) and _is_int(items.get("window_size")) and items["window_size"] > 2:
        # hierarchical vision transformers: the last stage must still hold a whole window
        out["window_size"] = 2
        patch = _first_int(out.get("patch_size", items.get("patch_size")), 4)
        need = patch * 2 ** (len(depths) - 1) * 2
        if _is_int(items.get("image_size")):
            out["image_size"] = max(IMAGE, need)
    # token ids beyond the small vocabulary move to its top end
    vocab = out.get("vocab_size", items.get("vocab_size"))
    if not _is_int(vocab) or vocab > token_map.get(-1, VOCAB):
        vocab = token_map.get(-1, VOCAB)
    for k, v in items.items():
        if not k.endswith(TOKEN_SUFFIXES) and k not in ("bos_token_id", "eos_token_id", "pad_token_id"):
            continue
        if _is_int(v) and _is_int(vocab) and v >= vocab:
            out[k] = _remap_token(token_map, v, vocab)
        elif isinstance(v, list) and _is_int(vocab) and any(_is_int(x) and x >= vocab for x in v):
            out[k] = [_remap_token(token_map, x, vocab) if _is_int(x) and x >= vocab else x for x in v]
        elif v is None and k in PLACEHOLDER_KEYS and _is_int(vocab):  # placeholders the inputs must contain
            out[k] = _remap_token(token_map, f"unset:{k}", vocab)
    if any(_is_int(items.get(k)) and items[k] > 0 for k in EXPERT_KEYS):
        for k in TOPK_KEYS:
            if k in items and items[k] is None:
                out[k] = EXPERTS_PER_TOKEN
    return out


def _split_sections(sections: list[int], total: int) -> list[int]:
    """Scale ``sections`` to sum to ``total`` keeping their proportions (entries may drop to 0 when tiny)."""
    whole = sum(sections) or 1
    out = [int(x * total / whole) for x in sections]
    for i in range(total - sum(out)):
        out[i % len(out)] += 1
    return out


def _remap_token(token_map: dict[Any, int], token: int, vocab: int) -> int:
    """A stable new id (counting down from the top of the small vocabulary) for an out-of-vocabulary token id."""
    if token not in token_map:
        used = token_map.get("used", 0)
        token_map[token] = vocab - 1 - used
        token_map["used"] = used + 1
    return token_map[token]


def _min_vocab(cfg) -> int:
    """The smallest vocabulary of the shrunk config tree (token ids must fit all of them)."""
    sizes = [min(v, VOCAB) for v in _all_values(cfg, "vocab_size") if _is_int(v) and v > 16]
    return min(sizes) if sizes else VOCAB


def _shrink_int(k: str, v: int, items: dict[str, Any], n_layers: int) -> int | None:
    if k in FIXED:
        return FIXED[k] if v > FIXED[k] else None
    if k in WIDTH_KEYS:
        return HIDDEN if v > HIDDEN else None
    if k in FFN_KEYS:
        return INTERMEDIATE if v > INTERMEDIATE else None
    if k in LAYER_KEYS:
        return n_layers if v > n_layers else None
    if k in HEAD_KEYS:
        return HEADS if v > HEADS else None
    if k in HEAD_DIM_KEYS:
        return HEAD_DIM if v > HEAD_DIM else None
    if k in VOCAB_KEYS:
        return VOCAB if v > VOCAB else None
    if k in EXPERT_KEYS:
        return EXPERTS if v > EXPERTS else None
    if k in TOPK_KEYS:
        return EXPERTS_PER_TOKEN if v > EXPERTS_PER_TOKEN else None
    if k in POSITION_KEYS:
        return MAX_POSITIONS if v > MAX_POSITIONS else None
    if k in IMAGE_KEYS:
        return IMAGE if v > IMAGE else None
    if k in PATCH_KEYS:
        return PATCH if v > PATCH else None
    return None


def _shrink_int_list(k: str, v: list[int], items: dict[str, Any]) -> list[int] | None:
    if k in LIST_WIDTH_KEYS:
        return _scale_list(v, 128)
    if k in LIST_DEPTH_KEYS:
        return [min(x, 1) for x in v]
    if k in LIST_HEAD_KEYS:  # powers of two divide the small widths
        return [1 << int(math.log2(max(1, min(x, 8)))) for x in v]
    if k in IMAGE_KEYS:
        return [min(x, IMAGE) for x in v]
    if k in PATCH_KEYS:
        return [min(x, PATCH) for x in v]
    return None


def _uses_mrope(cfg) -> bool:
    """Whether the modeling code of ``cfg``'s family reads an ``mrope_section`` (multimodal rotary sections)."""
    mod = sys.modules.get(type(cfg).__module__)
    if mod is None:
        return False
    name = mod.__name__.replace(".configuration_", ".modeling_")
    try:
        modeling = importlib.import_module(name)
        return "mrope_section" in inspect.getsource(modeling)
    except Exception:  # noqa: BLE001 - no modeling file: no mrope
        return False


def _shrink_config(cfg, token_map: dict[Any, int], fill_none: bool = False) -> dict[str, Any]:
    """Shrunk keyword arguments of a sub-config, as the dict its parent accepts."""
    kwargs = _shrink_items(_config_items(cfg), token_map, _uses_mrope(cfg), fill_none)
    kwargs["model_type"] = cfg.model_type
    return kwargs


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("rope_parameters", "rope_scaling"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# Per-type adjustments: a dict merged into the shrunk keyword arguments, or a callable
# ``fn(kwargs) -> kwargs`` applied to them before the config is built.
_SERIES = {"prediction_length": 4, "context_length": 8, "lags_sequence": [1, 2, 3]}
CONFIG_OVERRIDES: dict[str, dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]] = {
    "autoformer": _SERIES,
    "informer": _SERIES,
    "time_series_transformer": _SERIES,
    "bit": {"num_groups": 8},
    "esm": {"pad_token_id": 1, "mask_token_id": 2},
    "layoutlmv3": {"coordinate_size": 16, "shape_size": 0, "hidden_size": 64, "input_size": IMAGE},
    "lilt": {"hidden_size": 96},
    "reformer": {"axial_pos_embds_dim": [32, 32], "axial_pos_shape": [16, 32], "max_position_embeddings": 512,
                 "local_attn_chunk_length": 8, "lsh_attn_chunk_length": 8},
    "tvp": {"visual_prompt_size": 4},
    "gemma3n_text": {"num_kv_shared_layers": 0},
    "xmod": {"default_language": "en_XX"},
    "seggpt": {"image_size": [2 * IMAGE, IMAGE]},
    "audio-spectrogram-transformer": {"max_length": 64, "num_mel_bins": 16},
    "qwen2_5_omni_thinker": {"vision_start_token_id": VOCAB - 20},
    "qwen3_omni_moe_thinker": {"vision_start_token_id": VOCAB - 20},
}
# Per-type fixes applied to the built config, ``fn(config) -> None``.
CONFIG_FIXES: dict[str, Callable[[Any], None]] = {}


# Mixture-of-experts layers run as gathered batched matmuls: plain aten ops with static shapes
# (the default grouped kernel is a custom op, and the eager loop has data-dependent shapes).
EXPERTS_IMPLEMENTATION = "batched_mm"


def _disable_cache(cfg, attn: str | None) -> None:
    if hasattr(cfg, "use_cache") or "use_cache" in getattr(cfg, "__dataclass_fields__", {}):
        cfg.use_cache = False
    with contextlib.suppress(Exception):
        cfg._experts_implementation_internal = EXPERTS_IMPLEMENTATION
    if attn is not None:
        with contextlib.suppress(Exception):
            cfg._attn_implementation_internal = attn
    for v in list(vars(cfg).values()):
        if _is_config(v):
            _disable_cache(v, attn)


def small_config(model_type: str, _fill_none: bool = False, **overrides: Any):
    """A tiny configuration of ``model_type`` (random-init friendly, ~hidden 64, 2 layers).

    Every known size attribute of the default config (and of its sub-configs:
    text, vision, audio, encoder, decoder, ...) is shrunk, token ids are kept
    inside the small vocabulary, and ``use_cache`` is off everywhere so that
    outputs carry no cache objects.

    Args:
        model_type: a name from ``model_types()``.
        _fill_none: also set known size attributes whose default is ``None`` (a second try for
            configs whose defaults cannot build a model).
        **overrides: keyword arguments applied last (nested dicts merge into sub-configs).

    Returns:
        A ``transformers.PretrainedConfig``.

    Raises:
        ZooError: stage ``config`` when the type is unknown or its config cannot be built.

    Example:
        >>> small_config("llama").hidden_size
        64
    """
    from transformers import CONFIG_MAPPING

    if model_type not in model_types():
        raise ZooError(model_type, "config", "unknown model type; pick one of hf_zoo.model_types()")
    cls = CONFIG_MAPPING[model_type]
    try:
        default = cls()
        token_map: dict[Any, int] = {-1: _min_vocab(default)}
        kwargs = _shrink_items(_config_items(default), token_map, _uses_mrope(default), _fill_none)
        fix = CONFIG_OVERRIDES.get(model_type)
        if callable(fix):
            kwargs = fix(kwargs)
        elif fix:
            kwargs = _merge(kwargs, fix)
        kwargs = _merge(kwargs, overrides)
        cfg = cls(**kwargs)
        if model_type in CONFIG_FIXES:
            CONFIG_FIXES[model_type](cfg)
        _disable_cache(cfg, None)
    except ZooError:
        raise
    except Exception as e:
        raise ZooError(model_type, "config", f"{type(e).__name__}: {e}") from e
    return cfg


# --------------------------------------------------------------------------- example inputs


def _get(cfg, *names: str, default: Any = None) -> Any:
    """First attribute among ``names`` found on ``cfg`` or its text/vision/audio sub-configs."""
    for c in _config_chain(cfg):
        for n in names:
            v = getattr(c, n, None)
            if v is not None:
                return v
    return default


def _all_values(cfg, *names: str) -> list[Any]:
    """Every value of the attributes ``names`` over ``cfg`` and all nested sub-configs (outermost first)."""
    found: list[Any] = []

    def walk(c):
        for n in names:
            v = getattr(c, n, None)
            if v is not None and v not in found:
                found.append(v)
        for v in vars(c).values():
            if _is_config(v):
                walk(v)

    walk(cfg)
    return found


SUBCONFIG_KEYS = ("text_config", "vision_config", "audio_config", "encoder", "decoder", "backbone_config",
                  "encoder_config", "decoder_config", "speech_config", "audio_encoder_config", "vision_encoder_config")


def _config_chain(cfg) -> list:
    chain = [cfg]
    for k in SUBCONFIG_KEYS:
        sub = getattr(cfg, k, None)
        if _is_config(sub):
            chain.append(sub)
    return chain


def _vision_config(cfg):
    for k in ("vision_config", "vision_encoder_config", "image_config", "backbone_config"):
        sub = getattr(cfg, k, None)
        if _is_config(sub):
            return sub
    return cfg


def _text_config(cfg):
    for k in ("text_config", "language_config", "llm_config", "decoder"):
        sub = getattr(cfg, k, None)
        if _is_config(sub) and _is_int(getattr(sub, "vocab_size", None)):
            return sub
    return cfg


def _vocab(cfg) -> int:
    sizes = [getattr(c, "vocab_size", None) for c in _config_chain(cfg)]
    sizes = [s for s in sizes if _is_int(s) and s > 0]
    return min(sizes) if sizes else VOCAB


def _special_ids(cfg) -> set[int]:
    ids: set[int] = set()

    def walk(c):
        for k, v in vars(c).items():
            if _is_config(v):
                walk(v)
            elif k.endswith(TOKEN_SUFFIXES) or k in ("bos_token_id", "eos_token_id", "pad_token_id"):
                if _is_int(v):
                    ids.add(v)
                elif isinstance(v, list):
                    ids.update(x for x in v if _is_int(x))

    walk(cfg)
    return ids


def _text_ids(cfg, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Random token ids inside the vocabulary avoiding every special token id."""
    vocab = _vocab(cfg)
    specials = _special_ids(cfg)
    allowed = torch.tensor([i for i in range(min(vocab, 4 * VOCAB)) if i not in specials] or [0])
    idx = torch.randint(0, len(allowed), shape, generator=gen)
    return allowed[idx]


def _image_hw(cfg) -> tuple[int, int]:
    size = _get(_vision_config(cfg), "image_size", "img_size", default=None)
    if size is None:
        size = _get(cfg, "image_size", "img_size", default=IMAGE)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[-1])
    if isinstance(size, dict):
        return int(size.get("height", IMAGE)), int(size.get("width", IMAGE))
    return int(size), int(size)


def _channels(cfg) -> int:
    return int(_get(_vision_config(cfg), "num_channels", "in_channels", "in_chans", "num_input_channels",
                    default=_get(cfg, "num_channels", "in_channels", default=3)))


def _params(model) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(model.forward).parameters)


def _first_int(v: Any, default: int) -> int:
    if isinstance(v, (list, tuple)) and v:
        v = v[0]
    return int(v) if _is_int(v) else default


def _pixel_variants(cfg, params: dict, batch: int, gen: torch.Generator) -> list[dict[str, Any]]:
    """Image inputs in the layouts models use: patch sequences with a grid, (B,C,H,W), (B,N,C,H,W)."""
    vc = _vision_config(cfg)
    c = _channels(cfg)
    h, w = _image_hw(cfg)
    out: list[dict[str, Any]] = []
    grid_key = next((k for k in ("image_grid_thw", "grid_thw") if k in params), None)
    pixel_key = "pixel_values" if "pixel_values" in params else ("hidden_states" if grid_key else None)
    if grid_key and pixel_key:
        p = _first_int(_get(vc, "patch_size", default=PATCH), PATCH)
        tp = _first_int(getattr(vc, "temporal_patch_size", 1), 1) or 1
        merge = _first_int(getattr(vc, "spatial_merge_size", 1), 1) or 1
        g = max(merge, (max(h, IMAGE) // p) // merge * merge)
        n = batch * g * g
        out.append({pixel_key: torch.randn(n, c * tp * p * p, generator=gen),
                    grid_key: torch.tensor([[1, g, g]] * batch)})
        out.append({pixel_key: torch.randn(n, c, tp, p, p, generator=gen).flatten(1),
                    grid_key: torch.tensor([[1, g, g]] * batch)})
        out.append({pixel_key: torch.randn(n, c, p, p, generator=gen), grid_key: torch.tensor([[1, g, g]] * batch)})
        merge_key = next((k for k in ("image_merge_sizes", "merge_sizes") if k in params), None)
        if merge_key:
            for d in out:
                d[merge_key] = torch.tensor([merge] * batch)
    frames = _first_int(_get(cfg, "num_frames", default=0), 0)
    video_key = "pixel_values_videos" if "pixel_values_videos" in params and "pixel_values" not in params else None
    if frames > 1 and ("pixel_values" in params or video_key) and not grid_key:
        out.append({video_key or "pixel_values": torch.randn(batch, frames, c, h, w, generator=gen)})
    elif video_key:
        out.append({video_key: torch.randn(batch, 4, c, h, w, generator=gen)})
    if "spatial_shapes" in params:  # native-resolution patch sequences with a validity mask
        p = _first_int(_get(vc, "patch_size", default=PATCH), PATCH)
        gh, gw = max(1, h // p), max(1, w // p)
        out.append({"pixel_values": torch.randn(batch, gh * gw, c * p * p, generator=gen),
                    "pixel_attention_mask": torch.ones(batch, gh * gw, dtype=torch.long),
                    "spatial_shapes": torch.tensor([[gh, gw]] * batch)})
    if "pixel_values" in params and not grid_key:
        px = torch.randn(batch, c, h, w, generator=gen)
        base: dict[str, Any] = {"pixel_values": px}
        if "pixel_mask" in params:
            base["pixel_mask"] = torch.ones(batch, h, w, dtype=torch.long)
        out.append(base)
        if "image_sizes" in params:
            out.append(dict(base, image_sizes=torch.tensor([[h, w]] * batch)))
        if getattr(cfg, "image_grid_pinpoints", None):  # base image + one tile, with the original sizes
            out.append({"pixel_values": torch.randn(batch, 2, c, h, w, generator=gen),
                        "image_sizes": torch.tensor([[h, w]] * batch)})
        five = {"pixel_values": px[:, None]}
        if "pixel_attention_mask" in params:
            five["pixel_attention_mask"] = torch.ones(batch, 1, h, w, dtype=torch.bool)
        if "image_sizes" in params:
            five["image_sizes"] = torch.tensor([[h, w]] * batch)
        out.append(five)
    return out


def _audio_variants(cfg, params: dict, batch: int, gen: torch.Generator) -> list[dict[str, Any]]:
    """Audio inputs: log-mel features in both (B, mel, T) and (B, T, mel) layouts, or raw waveforms."""
    out: list[dict[str, Any]] = []
    if "input_features" in params:
        mels = [m for m in _all_values(cfg, "num_mel_bins", "feature_size", "input_feat_per_channel", "n_mels",
                                        "num_mel_filters", "mel_bins", "input_dim", "feature_dim", "input_size",
                                        "feature_projection_input_dim")
                if _is_int(m) and 1 < m <= 512][:4] or [16]
        src = _get(cfg, "max_source_positions", default=None)
        frames = 2 * src if _is_int(src) and src <= 64 else 64
        mask_key = next((k for k in ("input_features_mask", "feature_attention_mask", "input_features_attention_mask")
                         if k in params), None)
        for m in mels:
            for layout in ("mel_first", "time_first"):
                x = torch.randn(batch, m, frames, generator=gen)
                d = {"input_features": x if layout == "mel_first" else x.transpose(1, 2).contiguous()}
                if mask_key:
                    d[mask_key] = torch.ones(batch, frames, dtype=torch.long)
                out.append(d)
    if "input_values" in params and _is_int(getattr(cfg, "max_length", None)) and _is_int(
            getattr(cfg, "num_mel_bins", None)):  # spectrogram transformers take (B, frames, mel)
        out.append({"input_values": torch.randn(batch, cfg.max_length, cfg.num_mel_bins, generator=gen)})
    if "input_features" in params and out:
        out.append({k: v[:, None] if k == "input_features" else v for k, v in out[1].items()})  # (B, 1, T, mel)
    if "input_values" in params:
        samples = 1600
        out.append({"input_values": torch.randn(batch, samples, generator=gen)})
        out.append({"input_values": torch.randn(batch, 1, samples, generator=gen)})
    return out


MM_TOKEN_KEYS = {
    "image": ("image_token_id", "image_token_index", "image_token"),
    "audio": ("audio_token_id", "audio_token_index"),
}
MM_WRAP_KEYS = {
    "image": (("vision_start_token_id", "image_start_token_id", "boi_token_id", "boi_token_index"),
              ("vision_end_token_id", "image_end_token_id", "eoi_token_id", "eoi_token_index")),
    "audio": (("audio_start_token_id", "audio_bos_token_id", "boa_token_id"),
              ("audio_end_token_id", "audio_eos_token_id", "eoa_token_id", "eoa_token_index")),
}
FEATURE_FNS = {"image": "get_image_features", "audio": "get_audio_features"}


def _feature_tokens(model, fn_name: str, inputs: dict[str, Any]) -> int | None:
    """Total number of embedding rows ``model.<fn_name>`` produces for ``inputs`` (None if it cannot tell)."""
    fn = getattr(model, fn_name, None)
    if fn is None:
        return None
    sig = inspect.signature(fn).parameters
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in sig.values())
    kwargs = {k: v for k, v in inputs.items() if k in sig}
    if not kwargs:
        return None
    if any(p.is_meta for p in model.parameters()):
        kwargs = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    if accepts_any and "return_dict" not in kwargs:
        kwargs["return_dict"] = True
    with torch.no_grad():
        out = fn(**kwargs)
    feats = out
    if hasattr(out, "pooler_output") and getattr(out, "pooler_output", None) is not None:
        feats = out.pooler_output
    elif hasattr(out, "last_hidden_state") and getattr(out, "last_hidden_state", None) is not None:
        feats = out.last_hidden_state
    leaves = [feats] if isinstance(feats, torch.Tensor) else [t for t in _flat(feats) if isinstance(t, torch.Tensor)]
    if not leaves:
        return None
    return sum(t.numel() // max(1, t.shape[-1]) for t in leaves)


def _flat(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [y for v in x for y in _flat(v)]
    if isinstance(x, dict):
        return [y for v in x.values() for y in _flat(v)]
    return [x]


def _token_id(cfg, names: tuple[str, ...]) -> int | None:
    for c in _config_chain(cfg):
        for n in names:
            v = getattr(c, n, None)
            if _is_int(v):
                return v
    return None


def _place_mm_tokens(model, cfg, inputs: dict[str, Any], batch: int, seq: int, gen: torch.Generator) -> None:
    """Rewrite ``input_ids`` so each sample holds the placeholder tokens the image/audio encoders fill."""
    if "input_ids" not in inputs:
        return
    rows = [list(r) for r in inputs["input_ids"].tolist()]
    changed = False
    for kind, keys in MM_TOKEN_KEYS.items():
        tok = _token_id(cfg, keys)
        if tok is None:
            continue
        feats = {k: v for k, v in inputs.items() if k != "input_ids"}
        n = _feature_tokens(model, FEATURE_FNS[kind], feats)
        if n is None:
            continue
        per = [n // batch + (1 if i < n % batch else 0) for i in range(batch)]
        start = _token_id(cfg, MM_WRAP_KEYS[kind][0])
        end = _token_id(cfg, MM_WRAP_KEYS[kind][1])
        for i in range(batch):
            block = ([start] if start is not None else []) + [tok] * per[i] + ([end] if end is not None else [])
            rows[i] = rows[i][:1] + block + rows[i][1:]
        changed = True
    if not changed:
        return
    length = max(len(r) for r in rows)
    filler = _text_ids(cfg, (batch, length), gen).tolist()
    rows = [r + filler[i][: length - len(r)] for i, r in enumerate(rows)]
    ids = torch.tensor(rows)
    inputs["input_ids"] = ids
    for k in ("attention_mask", "token_type_ids"):
        if k in inputs:
            inputs[k] = torch.ones_like(ids) if k == "attention_mask" else torch.zeros_like(ids)
    if "mm_token_type_ids" in _params(model):
        mm = torch.zeros_like(ids)
        tok_img = _token_id(cfg, MM_TOKEN_KEYS["image"])
        tok_aud = _token_id(cfg, MM_TOKEN_KEYS["audio"])
        if tok_img is not None:
            mm[ids == tok_img] = 1
        if tok_aud is not None:
            mm[ids == tok_aud] = 3
        inputs["mm_token_type_ids"] = mm


def _text_inputs(cfg, params: dict, batch: int, seq: int, gen: torch.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "input_ids" in params:
        out["input_ids"] = _text_ids(cfg, (batch, seq), gen)
        if "attention_mask" in params:
            out["attention_mask"] = torch.ones(batch, seq, dtype=torch.long)
        tvs = _get(cfg, "type_vocab_size", default=0)
        if "token_type_ids" in params and _is_int(tvs) and tvs > 1:
            out["token_type_ids"] = torch.zeros(batch, seq, dtype=torch.long)
        if "bbox" in params:
            x0 = torch.randint(0, 500, (batch, seq, 2), generator=gen)
            out["bbox"] = torch.cat([x0, x0 + torch.randint(1, 500, (batch, seq, 2), generator=gen)], -1)
    if "decoder_input_ids" in params and getattr(cfg, "is_encoder_decoder", False):
        out["decoder_input_ids"] = _text_ids(cfg, (batch, seq), gen)
    for name, p in params.items():  # further required token-id inputs (e.g. a Q-Former's own prompt)
        if name.endswith("_input_ids") and name not in out and p.default is inspect.Parameter.empty:
            out[name] = _text_ids(cfg, (batch, seq), gen)
            mask = name.replace("input_ids", "attention_mask")
            if mask in params:
                out[mask] = torch.ones(batch, seq, dtype=torch.long)
    return out


def _series_inputs(cfg, params: dict, batch: int, gen: torch.Generator) -> dict[str, Any]:
    """Time-series inputs: past values (with lags), time features, observed masks, future features."""
    if "past_values" not in params:
        return {}
    pred = _first_int(getattr(cfg, "prediction_length", None), 4)
    ctx = _first_int(getattr(cfg, "context_length", None), 4 * pred)
    lags = getattr(cfg, "lags_sequence", None)
    length = ctx + (max(lags) if isinstance(lags, (list, tuple)) and lags else 0)
    channels = _first_int(getattr(cfg, "num_input_channels", None) or getattr(cfg, "input_size", None), 1)
    shape = (batch, length) if channels == 1 and "num_input_channels" not in vars(cfg) else (batch, length, channels)
    out: dict[str, Any] = {"past_values": torch.randn(*shape, generator=gen)}
    n_time = _first_int(getattr(cfg, "num_time_features", None), 0)
    if "past_time_features" in params:
        out["past_time_features"] = torch.randn(batch, length, n_time, generator=gen)
    if "past_observed_mask" in params:
        out["past_observed_mask"] = torch.ones(*shape)
    if "past_values_padding" in params:
        out["past_values_padding"] = torch.zeros(batch, length)
    if "freq" in params:
        out["freq"] = torch.zeros(batch, 1, dtype=torch.long)
    if "future_time_features" in params and "past_time_features" in out:
        out["future_time_features"] = torch.randn(batch, pred, n_time, generator=gen)
        if "future_values" in params:
            out["future_values"] = torch.randn(batch, pred, *shape[2:], generator=gen)
    n_cat = _first_int(getattr(cfg, "num_static_categorical_features", None), 0)
    if n_cat and "static_categorical_features" in params:
        card = getattr(cfg, "cardinality", None) or [2] * n_cat
        out["static_categorical_features"] = torch.stack(
            [torch.randint(0, int(c), (batch,), generator=gen) for c in card[:n_cat]], 1)
    n_real = _first_int(getattr(cfg, "num_static_real_features", None), 0)
    if n_real and "static_real_features" in params:
        out["static_real_features"] = torch.randn(batch, n_real, generator=gen)
    return out


def input_candidates(model, cfg, batch: int, seq: int, gen: torch.Generator) -> list[dict[str, Any]]:
    """Plausible input dicts for ``model``, most likely first (text x image layouts x audio layouts)."""
    params = _params(model)
    text = _text_inputs(cfg, params, batch, seq, gen)
    text.update(_series_inputs(cfg, params, batch, gen))
    groups = [g for g in (_pixel_variants(cfg, params, batch, gen), _audio_variants(cfg, params, batch, gen)) if g]
    combos: list[dict[str, Any]] = [dict(text)]
    for group in groups:
        combos = [dict(c, **v) for c in combos for v in group][:MAX_CANDIDATES]
    return combos


MAX_CANDIDATES = 12


def _missing_required(params: dict[str, inspect.Parameter], inputs: dict[str, Any]) -> list[str]:
    return [n for n, p in params.items()
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and n not in inputs]


def generic_inputs(model, cfg, batch: int, seq: int, gen: torch.Generator) -> dict[str, Any]:
    """The first candidate of ``input_candidates`` the model runs on (the first one if none runs).

    Candidates for multimodal models get their placeholder tokens placed (``_place_mm_tokens``).
    On a meta-device model nothing is run and the first complete candidate is returned.
    """
    params = _params(model)
    cands = input_candidates(model, cfg, batch, seq, gen)
    cands = [c for c in cands if not _missing_required(params, c)] or cands
    missing = _missing_required(params, cands[0])
    if missing:
        raise ValueError(f"no generator for required forward argument(s) {missing}; add an INPUT_BUILDERS entry")
    on_meta = any(p.is_meta for p in model.parameters())
    first_error: Exception | None = None
    first_ok: dict[str, Any] | None = None
    for cand in cands:
        try:
            _place_mm_tokens(model, cfg, cand, batch, seq, gen)
        except Exception as e:  # noqa: BLE001 - try the next layout
            first_error = first_error or e
            continue
        first_ok = first_ok or cand
        if on_meta or len(cands) == 1:
            return cand
        try:
            with torch.no_grad():
                model(**cand)
            return cand
        except Exception as e:  # noqa: BLE001 - try the next layout
            logger.debug("candidate %s failed: %s", list(cand), e)
            first_error = first_error or e
    if first_ok is not None:
        return first_ok
    raise ValueError(f"no input layout works: {type(first_error).__name__}: {first_error}")


def _trajectory_inputs(model, cfg, batch: int, seq: int, gen: torch.Generator) -> dict[str, Any]:
    """Offline reinforcement-learning trajectories: states, actions, returns-to-go, timesteps."""
    return {
        "states": torch.randn(batch, seq, cfg.state_dim, generator=gen),
        "actions": torch.randn(batch, seq, cfg.act_dim, generator=gen),
        "rewards": torch.randn(batch, seq, 1, generator=gen),
        "returns_to_go": torch.randn(batch, seq, 1, generator=gen),
        "timesteps": torch.arange(seq).repeat(batch, 1),
        "attention_mask": torch.ones(batch, seq, dtype=torch.long),
    }


def _latent_array_inputs(model, cfg, batch: int, seq: int, gen: torch.Generator) -> dict[str, Any]:
    """A model without preprocessor reads raw feature arrays (B, T, d_model)."""
    return {"inputs": torch.randn(batch, seq, cfg.d_model, generator=gen)}


def _prompted_image_inputs(model, cfg, batch: int, seq: int, gen: torch.Generator) -> dict[str, Any]:
    """In-context segmentation: an image, a prompt image and the prompt's mask, all (B, C, H, W)."""
    h, w = _image_hw(cfg)
    h //= 2  # the model stacks image and prompt along the height
    c = _channels(cfg)
    return {
        "pixel_values": torch.randn(batch, c, h, w, generator=gen),
        "prompt_pixel_values": torch.randn(batch, c, h, w, generator=gen),
        "prompt_masks": torch.randn(batch, c, h, w, generator=gen),
    }


# model_type -> fn(model, config, batch, seq, generator) -> inputs dict
INPUT_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "decision_transformer": _trajectory_inputs,
    "perceiver": _latent_array_inputs,
    "seggpt": _prompted_image_inputs,
}


def example_inputs(model, config, batch: int = 2, seq: int = 8, seed: int = 0) -> dict[str, Any]:
    """Keyword inputs for ``model(**inputs)`` matching its modality.

    The forward signature and the config pick the inputs: token ids inside the
    vocabulary (avoiding special ids), masks, images in the layout the model
    expects, audio features, decoder ids for encoder-decoders, and, for
    multimodal models, as many image/audio placeholder tokens in ``input_ids``
    as the model's encoders produce. Where several layouts are plausible the
    model is run on each and the first that works is kept.

    Args:
        model: a model built from ``config`` (its ``forward`` signature picks the inputs).
        config: the model's config.
        batch: batch size B.
        seq: text length T (multimodal models get longer sequences to hold placeholders).
        seed: seed of the random generator.

    Shapes:
        input_ids / attention_mask: (B, T); pixel_values: (B, C, H, W) or patches;
        input_features: (B, mel, frames) or (B, frames, mel); input_values: (B, samples).

    Raises:
        ValueError: when the forward has a required argument no rule can fill.
    """
    gen = torch.Generator().manual_seed(seed)
    builder = INPUT_BUILDERS.get(getattr(config, "model_type", ""), generic_inputs)
    return builder(model, config, batch, seq, gen)


# --------------------------------------------------------------------------- build


def full_config(model_type: str, **overrides: Any):
    """The default (full-size) config of ``model_type`` with ``overrides``, cache off."""
    from transformers import CONFIG_MAPPING

    if model_type not in model_types():
        raise ZooError(model_type, "config", "unknown model type; pick one of hf_zoo.model_types()")
    try:
        cfg = CONFIG_MAPPING[model_type](**overrides)
        _disable_cache(cfg, None)
    except Exception as e:  # noqa: BLE001 - any config error is reported with its type
        raise ZooError(model_type, "config", f"{type(e).__name__}: {e}") from e
    return cfg


def build(
    model_type: str,
    device: Any = None,
    seed: int = 0,
    batch: int = 2,
    seq: int = 8,
    small: bool = True,
    **overrides: Any,
):
    """Build a tiny randomly initialised base model of ``model_type`` and example inputs.

    Args:
        model_type: a name from ``model_types()``.
        device: ``None`` (CPU), a device, or ``"meta"`` to build without allocating weights
            (the inputs then stay on CPU: export and fake-tensor tracing accept that).
        seed: seed for weights and inputs.
        batch, seq: input batch size and text length.
        small: shrink the config (``small_config``); ``False`` keeps the default full size
            (use it with ``device="meta"``: a 7B config then allocates nothing).
        **overrides: config keyword arguments, see ``small_config``.

    Returns:
        ``(model, inputs)``: the model in eval mode and a dict of keyword tensors.

    Raises:
        ZooError: naming the model type and the failing stage.
    """
    cfg = small_config(model_type, **overrides) if small else full_config(model_type, **overrides)
    cls = _model_class(model_type)
    try:
        model = _instantiate(cls, cfg, device, seed)
    except Exception as e:  # noqa: BLE001
        if not small:
            raise ZooError(model_type, "instantiate", f"{type(e).__name__}: {e}") from e
        try:  # defaults that leave sizes unset: retry with every known size filled in
            cfg = small_config(model_type, _fill_none=True, **overrides)
            model = _instantiate(cls, cfg, device, seed)
        except Exception:  # noqa: BLE001 - report the first error
            raise ZooError(model_type, "instantiate", f"{type(e).__name__}: {e}") from e
    try:
        inputs = example_inputs(model, model.config, batch=batch, seq=seq, seed=seed)
    except Exception as e:
        raise ZooError(model_type, "inputs", f"{type(e).__name__}: {e}") from e
    return model, inputs


def _instantiate(cls, cfg, device: Any, seed: int):
    torch.manual_seed(seed)
    ctx = torch.device(device) if device is not None else contextlib.nullcontext()
    with ctx:
        model = cls._from_config(cfg) if hasattr(cls, "_from_config") else cls(cfg)
    return model.eval()


def run_forward(model_type: str, model, inputs: dict[str, Any]) -> Any:
    """Eager forward under ``torch.no_grad``; errors become ``ZooError(stage="forward")``."""
    try:
        with torch.no_grad():
            return model(**inputs)
    except Exception as e:
        raise ZooError(model_type, "forward", f"{type(e).__name__}: {e}") from e
