"""Example inputs matching a model's modality: token ids, images, audio, time series, multimodal placeholders."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch

from .config_tree import (
    _all_values,
    _channels,
    _config_chain,
    _first_int,
    _get,
    _image_hw,
    _is_config,
    _is_int,
    _vision_config,
)
from .overrides import INPUT_BUILDERS
from .sizes import IMAGE, PATCH, TOKEN_SUFFIXES, VOCAB

logger = logging.getLogger(__name__)


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


def _params(model) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(model.forward).parameters)


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
