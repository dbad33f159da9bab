"""Sampled variants of transformers model types: depth, width, heads, MLP size, activation.

``variant_overrides(model_type, k)`` gives the config overrides of variant
``k`` (``k = 0`` is the plain small config). Only fields the type's config
has are varied, so every variant is a legal config of that type; whether it
instantiates and converts is checked by the dataset builder.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

__all__ = ["variant_overrides", "VARIED_FIELDS"]

# field -> how to vary it (a function of rng and the small config's value)
_ACTS = ["gelu", "relu", "silu", "gelu_new", "tanh"]
_NORMS = {"position_embedding_type": ["absolute", "relative_key", "relative_key_query"]}
VARIED_FIELDS = (
    "num_hidden_layers",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "position_embedding_type",
)


@lru_cache(maxsize=None)
def _base_fields(model_type: str) -> dict[str, Any]:
    from mad.code2graph.hf_zoo import small_config

    cfg = small_config(model_type)
    out = {}
    for f in VARIED_FIELDS:
        v = getattr(cfg, f, None)
        if v is not None and f in cfg.to_dict():
            out[f] = v
    if hasattr(cfg, "num_key_value_heads") and getattr(cfg, "num_key_value_heads", None) is not None:
        out["num_key_value_heads"] = cfg.num_key_value_heads
    if getattr(cfg, "head_dim", None) is not None:
        out["head_dim"] = cfg.head_dim
    return out


def variant_overrides(model_type: str, k: int, seed: int = 0) -> dict[str, Any]:
    """Config overrides of variant ``k`` of ``model_type`` (``{}`` for ``k == 0``).

    Heads always divide the hidden size, grouped-query key/value heads divide
    the heads, and the MLP size is a multiple of the hidden size.
    """
    if k == 0:
        return {}
    base = _base_fields(model_type)
    rng = random.Random(f"{model_type}/{k}/{seed}")
    out: dict[str, Any] = {}
    if "num_hidden_layers" in base:
        out["num_hidden_layers"] = rng.choice([1, 2, 3, 4])
    if "hidden_size" in base and "num_attention_heads" in base and "head_dim" not in base:
        heads = rng.choice([1, 2, 4])
        out["num_attention_heads"] = heads
        out["hidden_size"] = heads * rng.choice([8, 16, 24, 32])
        if "num_key_value_heads" in base:
            out["num_key_value_heads"] = rng.choice([h for h in (1, 2, 4) if heads % h == 0])
        if "intermediate_size" in base:
            out["intermediate_size"] = out["hidden_size"] * rng.choice([1, 2, 4])
    elif "intermediate_size" in base and isinstance(base["intermediate_size"], int):
        out["intermediate_size"] = max(8, int(base["intermediate_size"] * rng.choice([0.5, 1, 2])))
    if isinstance(base.get("hidden_act"), str):
        out["hidden_act"] = rng.choice(_ACTS)
    for f, choices in _NORMS.items():
        if isinstance(base.get(f), str) and base[f] in choices:
            out[f] = rng.choice(choices)
    return out
