"""The HuggingFace model zoo as a source of small, runnable architectures.

Every model type that transformers can build as a base model (``AutoModel``) is
shrunk to a tiny configuration (hidden ~64, 2 layers, a few heads, a small
vocabulary and image), instantiated with random weights (nothing is downloaded)
and paired with example inputs that match its modality.

Example:
    >>> from mad.code2graph.hf_zoo import build
    >>> model, inputs = build("bert")
    >>> out = model(**inputs)
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from typing import Any, Callable

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "ZooError",
    "build",
    "example_inputs",
    "model_types",
    "preload",
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
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES
    import transformers

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
    "image_text_hidden_size", "encoder_hidden_dim", "attention_hidden_size", "classifier_proj_size",
    "memory_attention_hidden_size", "memory_encoder_hidden_size", "memory_encoder_output_channels",
    "mask_downsampler_embed_dim", "memory_fuser_embed_dim", "fpn_hidden_size", "hidden_size_per_layer_input",
    "latent_dim", "codebook_dim", "codevector_dim", "proj_codevector_dim", "xvector_output_dim",
    "mask_feature_size", "num_filters", "d_latent", "word_embed_proj_dim", "unit_embed_dim",
    "text_embed_dim", "vision_embed_dim", "query_hidden_size", "decoder_embed_dim", "quantization_dim",
    "vector_quantization_hidden_dimension", "upsample_initial_channel", "output_channels", "feature_size",
    "speech_decoder_postnet_units", "lang_embed_dim", "spkr_embed_dim", "neck_out_channels",
    "kv_channels", "lqe_hidden_dim", "audio_embed_dim", "image_embed_dim", "mamba_expand_dim",
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
TOPK_KEYS = {"num_experts_per_tok", "moe_topk", "top_k", "moe_k", "num_selected_experts"}
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
    "topk_group": 1,
    "first_k_dense_replace": 1,
    "num_nextn_predict_layers": 0,
    "index_topk": 8,
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
    "relative_attention_num_buckets": 8,
    "codebook_size": 64,
    "num_codevectors_per_group": 16,
    "num_mel_bins": 16,
    "max_source_positions": 32,
    "window_size": 4,
}
LIST_WIDTH_KEYS = {"hidden_sizes", "embed_dims", "dims", "channels", "neck_hidden_sizes", "embedding_dimension"}
LIST_DEPTH_KEYS = {"depths", "num_layers_per_stage", "stage_num_blocks", "block_depths"}
LIST_HEAD_KEYS = {"num_heads", "num_attention_heads", "heads"}
TOKEN_SUFFIXES = ("_token_id", "_token_index", "_token_ids")
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
    return [max(multiple, int(round(v / factor / multiple)) * multiple) for v in values]


def _shrink_items(items: dict[str, Any], token_map: dict[int, int]) -> dict[str, Any]:
    """Changed keyword arguments for one config level (sub-configs become nested dicts)."""
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
            out[k] = _shrink_config(v, token_map)
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
    if _is_int(items.get("qk_rope_head_dim")):  # multi-head latent attention: rotary part sets head_dim
        out["head_dim"] = FIXED["qk_rope_head_dim"]
        if "qk_head_dim" in items:
            out["qk_head_dim"] = FIXED["qk_rope_head_dim"] + FIXED["qk_nope_head_dim"]
    if _is_int(items.get("num_key_value_heads")) and _is_int(h):
        old_kv, old_h = items["num_key_value_heads"], heads if _is_int(heads) else h
        out["num_key_value_heads"] = h if old_kv == old_h else (1 if old_kv == 1 else max(1, min(2, h)))
    # token ids beyond the small vocabulary move to its top end
    vocab = out.get("vocab_size", items.get("vocab_size"))
    for k, v in items.items():
        if not k.endswith(TOKEN_SUFFIXES) and k not in ("bos_token_id", "eos_token_id", "pad_token_id"):
            continue
        if _is_int(v) and _is_int(vocab) and v >= vocab:
            out[k] = token_map.setdefault(v, vocab - 1 - len(token_map))
        elif isinstance(v, list) and _is_int(vocab) and any(_is_int(x) and x >= vocab for x in v):
            out[k] = [token_map.setdefault(x, vocab - 1 - len(token_map)) if _is_int(x) and x >= vocab else x for x in v]
    return out


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
    if k in LIST_HEAD_KEYS:
        factor = max(1, math.ceil(max(v) / 8))
        return [max(1, x // factor) for x in v]
    if k in IMAGE_KEYS:
        return [min(x, IMAGE) for x in v]
    if k in PATCH_KEYS:
        return [min(x, PATCH) for x in v]
    return None


def _shrink_config(cfg, token_map: dict[int, int]) -> dict[str, Any]:
    """Shrunk keyword arguments of a sub-config, as the dict its parent accepts."""
    kwargs = _shrink_items(_config_items(cfg), token_map)
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
CONFIG_OVERRIDES: dict[str, dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]] = {}
# Per-type fixes applied to the built config, ``fn(config) -> None``.
CONFIG_FIXES: dict[str, Callable[[Any], None]] = {}


def _disable_cache(cfg, attn: str | None) -> None:
    if hasattr(cfg, "use_cache") or "use_cache" in getattr(cfg, "__dataclass_fields__", {}):
        cfg.use_cache = False
    if attn is not None:
        with contextlib.suppress(Exception):
            cfg._attn_implementation_internal = attn
    for v in list(vars(cfg).values()):
        if _is_config(v):
            _disable_cache(v, attn)


def small_config(model_type: str, **overrides: Any):
    """A tiny configuration of ``model_type`` (random-init friendly, ~hidden 64, 2 layers).

    Every known size attribute of the default config (and of its sub-configs:
    text, vision, audio, encoder, decoder, ...) is shrunk, token ids are kept
    inside the small vocabulary, and ``use_cache`` is off everywhere so that
    outputs carry no cache objects.

    Args:
        model_type: a name from ``model_types()``.
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
        token_map: dict[int, int] = {}
        kwargs = _shrink_items(_config_items(default), token_map)
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
    except Exception as e:  # noqa: BLE001 - any config error is reported with its type
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


def _config_chain(cfg) -> list:
    chain = [cfg]
    for k in ("text_config", "vision_config", "audio_config", "encoder", "decoder", "backbone_config"):
        sub = getattr(cfg, k, None)
        if _is_config(sub):
            chain.append(sub)
    return chain


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


def _image_size(cfg) -> tuple[int, int]:
    size = _get(cfg, "image_size", "img_size", default=IMAGE)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[-1])
    if isinstance(size, dict):
        return int(size.get("height", IMAGE)), int(size.get("width", IMAGE))
    return int(size), int(size)


def _channels(cfg) -> int:
    return int(_get(cfg, "num_channels", "in_channels", "in_chans", default=3))


def _params(model) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(model.forward).parameters)


def generic_inputs(model, cfg, batch: int, seq: int, gen: torch.Generator) -> dict[str, Any]:
    """Inputs chosen from the forward signature and the config (text, image, audio, encoder-decoder)."""
    params = _params(model)
    out: dict[str, Any] = {}
    if "input_ids" in params:
        out["input_ids"] = _text_ids(cfg, (batch, seq), gen)
        if "attention_mask" in params:
            out["attention_mask"] = torch.ones(batch, seq, dtype=torch.long)
        tvs = _get(cfg, "type_vocab_size", default=0)
        if "token_type_ids" in params and _is_int(tvs) and tvs > 1:
            out["token_type_ids"] = torch.zeros(batch, seq, dtype=torch.long)
    if "pixel_values" in params:
        h, w = _image_size(cfg)
        out["pixel_values"] = torch.randn(batch, _channels(cfg), h, w, generator=gen)
    if "input_features" in params:
        n_mels = int(_get(cfg, "num_mel_bins", "feature_size", "input_feat_per_channel", default=16))
        src = _get(cfg, "max_source_positions", default=None)
        frames = 2 * src if _is_int(src) and src <= 64 else 4 * seq
        out["input_features"] = torch.randn(batch, n_mels, frames, generator=gen)
    if "input_values" in params and "input_ids" not in out:
        out["input_values"] = torch.randn(batch, 1600, generator=gen)
    if "decoder_input_ids" in params and getattr(cfg, "is_encoder_decoder", False):
        out["decoder_input_ids"] = _text_ids(cfg, (batch, seq), gen)
    if "bbox" in params and "input_ids" in out:
        x0 = torch.randint(0, 500, (batch, seq, 2), generator=gen)
        out["bbox"] = torch.cat([x0, x0 + torch.randint(1, 500, (batch, seq, 2), generator=gen)], -1)
    missing = [n for n, p in params.items()
               if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               and n not in out]
    if missing:
        raise ValueError(f"no generator for required forward argument(s) {missing}")
    return out


# model_type -> fn(model, config, batch, seq, generator) -> inputs dict
INPUT_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {}


def example_inputs(model, config, batch: int = 2, seq: int = 8, seed: int = 0) -> dict[str, Any]:
    """Keyword inputs for ``model(**inputs)`` matching its modality.

    Args:
        model: a model built from ``config`` (its ``forward`` signature picks the inputs).
        config: the model's config.
        batch: batch size B.
        seq: text length T (audio and images use config-derived lengths).
        seed: seed of the random generator.

    Shapes:
        input_ids / attention_mask: (B, T); pixel_values: (B, C, H, W);
        input_features: (B, mel, frames); input_values: (B, samples).

    Raises:
        ValueError: when the forward has a required argument no rule can fill.
    """
    gen = torch.Generator().manual_seed(seed)
    builder = INPUT_BUILDERS.get(getattr(config, "model_type", ""), generic_inputs)
    return builder(model, config, batch, seq, gen)


# --------------------------------------------------------------------------- build


def build(model_type: str, device: Any = None, seed: int = 0, batch: int = 2, seq: int = 8, **overrides: Any):
    """Build a tiny randomly initialised base model of ``model_type`` and example inputs.

    Args:
        model_type: a name from ``model_types()``.
        device: ``None`` (CPU), a device, or ``"meta"`` to build without allocating weights
            (the inputs then stay on CPU: export and fake-tensor tracing accept that).
        seed: seed for weights and inputs.
        batch, seq: input batch size and text length.
        **overrides: config keyword arguments, see ``small_config``.

    Returns:
        ``(model, inputs)``: the model in eval mode and a dict of keyword tensors.

    Raises:
        ZooError: naming the model type and the failing stage.
    """
    cfg = small_config(model_type, **overrides)
    cls = _model_class(model_type)
    torch.manual_seed(seed)
    try:
        ctx = torch.device(device) if device is not None else contextlib.nullcontext()
        with ctx:
            model = cls._from_config(cfg) if hasattr(cls, "_from_config") else cls(cfg)
        model.eval()
    except Exception as e:  # noqa: BLE001
        raise ZooError(model_type, "instantiate", f"{type(e).__name__}: {e}") from e
    try:
        inputs = example_inputs(model, model.config, batch=batch, seq=seq, seed=seed)
    except Exception as e:  # noqa: BLE001
        raise ZooError(model_type, "inputs", f"{type(e).__name__}: {e}") from e
    return model, inputs


def run_forward(model_type: str, model, inputs: dict[str, Any]) -> Any:
    """Eager forward under ``torch.no_grad``; errors become ``ZooError(stage="forward")``."""
    try:
        with torch.no_grad():
            return model(**inputs)
    except Exception as e:  # noqa: BLE001
        raise ZooError(model_type, "forward", f"{type(e).__name__}: {e}") from e
