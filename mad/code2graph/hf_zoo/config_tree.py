"""Reading values from a config and its nested sub-configs (text, vision, audio, encoder, decoder, ...)."""

from __future__ import annotations

from typing import Any

from .sizes import IMAGE


def _is_config(v: Any) -> bool:
    from transformers import PretrainedConfig

    return isinstance(v, PretrainedConfig)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


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


def _first_int(v: Any, default: int) -> int:
    if isinstance(v, (list, tuple)) and v:
        v = v[0]
    return int(v) if _is_int(v) else default
