"""Shrinking a transformers config to a tiny one: sizes, per-layer lists, dependent values, token ids."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import sys
from typing import Any

from .catalog import ZooError, model_types
from .config_tree import _all_values, _first_int, _is_config, _is_int
from .overrides import CONFIG_FIXES, CONFIG_OVERRIDES
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


def _config_items(cfg) -> dict[str, Any]:
    return {k: v for k, v in vars(cfg).items() if not k.startswith("__") and k not in SKIP_KEYS}


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


def _rederive_head_dim(kwargs: dict[str, Any], overrides: dict[str, Any], default: Any) -> None:
    """Overriding the width or the heads of a shrunk config keeps ``head_dim`` derived from them
    where the default config derives it (``head_dim = hidden_size // num_attention_heads``)."""
    if "head_dim" in overrides or "head_dim" not in kwargs:
        return
    if "hidden_size" not in overrides and "num_attention_heads" not in overrides:
        return
    d_hidden, d_heads = getattr(default, "hidden_size", None), getattr(default, "num_attention_heads", None)
    d_head_dim = getattr(default, "head_dim", None)
    derived = d_head_dim is None or (_is_int(d_hidden) and _is_int(d_heads) and d_heads and d_head_dim * d_heads == d_hidden)
    hidden, heads = kwargs.get("hidden_size"), kwargs.get("num_attention_heads")
    if derived and _is_int(hidden) and _is_int(heads) and heads and hidden % heads == 0:
        kwargs["head_dim"] = hidden // heads


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
        _rederive_head_dim(kwargs, overrides, default)
        cfg = cls(**kwargs)
        if model_type in CONFIG_FIXES:
            CONFIG_FIXES[model_type](cfg)
        _disable_cache(cfg, None)
    except ZooError:
        raise
    except Exception as e:
        raise ZooError(model_type, "config", f"{type(e).__name__}: {e}") from e
    return cfg


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
