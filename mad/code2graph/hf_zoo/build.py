"""Building a tiny randomly initialised model with example inputs, and running its forward."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from .catalog import ZooError, _model_class
from .configs import full_config, small_config
from .inputs import example_inputs


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
