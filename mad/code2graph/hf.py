"""from_hf(): a HuggingFace transformers model type -> ArchGraph, offline.

The model is built from its config class, shrunk to a small size (see
:mod:`mad.code2graph.hf_zoo`), with random weights: nothing is downloaded.
With ``device="meta"`` the full-size config can be captured without
allocating weights (a 7B Llama converts in seconds).
"""

from __future__ import annotations

from typing import Any

from mad.graph import ArchGraph

from .capture import CaptureStats, from_module

__all__ = ["from_hf", "build_hf"]


def build_hf(model_type: str, device: Any = None, seed: int = 0, small: bool = True, **overrides: Any):
    """(model, example kwargs) for ``model_type``; see :func:`mad.code2graph.hf_zoo.build`."""
    from .hf_zoo import build

    return build(model_type, device=device, seed=seed, small=small, **overrides)


def from_hf(
    model_type: str,
    device: Any = None,
    seed: int = 0,
    stats: CaptureStats | None = None,
    small: bool = True,
    **overrides: Any,
) -> ArchGraph:
    """Capture the transformers model of ``model_type`` into an ArchGraph.

    Args:
        model_type: a key of transformers' config mapping, e.g. ``"bert"``.
        device: ``None`` (CPU) or ``"meta"`` (no weights allocated).
        seed: seed for the random weights and example inputs.
        stats: filled with capture timings if given.
        small: shrink the config to a tiny model (default); ``False`` keeps the
            type's default size (with ``device="meta"`` for big models).
        **overrides: config fields to set, e.g. ``num_hidden_layers=4``.

    Example:
        >>> g = from_hf("bert", num_hidden_layers=1)
        >>> g.source
        'hf:bert'
        >>> g7b = from_hf("llama", device="meta", small=False)  # the 7B default config, no weights
    """
    model, inputs = build_hf(model_type, device=device, seed=seed, small=small, **overrides)
    g = from_module(model, (), inputs, name=model_type, source=f"hf:{model_type}", stats=stats)
    g.meta["model_class"] = type(model).__name__
    g.meta["config"] = {k: v for k, v in overrides.items() if isinstance(v, (int, float, str, bool))}
    return g
