"""Which model types the zoo offers, their base model classes, and the error every stage raises."""

from __future__ import annotations

STAGES = ("config", "instantiate", "inputs", "forward")


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
