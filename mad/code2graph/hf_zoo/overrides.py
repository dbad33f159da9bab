"""Per-type registries for what the generic rules miss: config adjustments, config fixes, input builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .config_tree import _channels, _image_hw
from .sizes import IMAGE, VOCAB

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
