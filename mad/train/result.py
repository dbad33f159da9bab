"""What a training run reports: :class:`FitResult`, and :class:`TrainInterrupted` for a run stopped by Ctrl-C."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["FitResult", "TrainInterrupted", "json_value"]


def json_value(v: Any) -> Any:
    """JSON-safe copy: tuples become lists, non-finite floats become ``None``."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    return str(v)


@dataclass
class FitResult:
    """The outcome of :func:`mad.train.fit`.

    Args:
        task: task name; ``task_type``: ``"classification"`` or ``"language_modeling"``.
        metric: ``"accuracy"`` (classification, higher is better) or ``"bits_per_char"`` (lower is better).
        model_name: the graph's name or the module's class name.
        status: ``"completed"``, ``"interrupted"`` (Ctrl-C; see ``checkpoint``) or ``"diverged"`` (the loss
            became NaN or infinite; training stopped there).
        steps: optimizer steps done in total (across resumed segments); ``steps_requested``: the target.
        val_loss, val_accuracy, val_bpc: figures on the whole validation split after the last step
            (``val_accuracy`` for classification, ``val_bpc`` = loss / ln 2 for language modelling, else ``None``).
        test_loss, test_accuracy, test_bpc: the same on the test split (``None`` for an interrupted run).
        loss_curve: ``(step, training loss)`` after every step (1-based steps).
        eval_curve: ``{"step", "loss", "accuracy" | "bpc"}`` at every evaluation.
        seconds: wall time of this call; ``train_seconds``: time in training steps over all segments;
            ``steps_per_s``: steps of this call / their time (evaluation excluded).
        params: parameter count of the trained module.
        device: where it trained (``"cpu"``, ``"cuda:0"``); ``seed``: the run's seed.
        config: every training option (JSON values).
        checkpoint: folder of the last checkpoint written, or ``None``.
        retargeted: the graph was put on the task by ``mad.data.tasks.fit``.
        sees_future: language modelling only: the model's logits depend on later tokens (a bidirectional
            encoder), so it can read the next character from its input and its figures are not comparable
            with a causal model's (see :func:`mad.train.objective.sees_future`); ``None`` for classification.
        model: the trained ``nn.Module`` (not serialised).

    Example:
        >>> r = fit(graph, "digits", steps=200)
        >>> r.val_accuracy > 0.9, r.as_dict()["loss_curve"][0][0]
        (True, 1)
    """

    task: str
    task_type: str
    metric: str
    model_name: str
    status: str
    steps: int
    steps_requested: int
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_bpc: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    test_bpc: float | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    eval_curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds: float = 0.0
    steps_per_s: float = 0.0
    params: int = 0
    device: str = "cpu"
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    retargeted: bool = False
    sees_future: bool | None = None
    model: nn.Module | None = field(default=None, repr=False, compare=False)

    @property
    def value(self) -> float | None:
        """The validation figure of the task's metric (accuracy, or bits per character)."""
        return self.val_bpc if self.metric == "bits_per_char" else self.val_accuracy

    @property
    def final_loss(self) -> float | None:
        """The training loss of the last step."""
        return self.loss_curve[-1][1] if self.loss_curve else None

    def as_dict(self) -> dict[str, Any]:
        """Every field but ``model``, as JSON values (non-finite numbers as ``None``)."""
        return {f.name: json_value(getattr(self, f.name)) for f in fields(self) if f.name != "model"}

    def to_json(self, path: str | Path | None = None, indent: int | None = 1) -> str:
        """JSON text of :meth:`as_dict`; written to ``path`` if given."""
        text = json.dumps(self.as_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text)
        return text


class TrainInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`mad.train.fit` at a step boundary; a checkpoint was saved.

    It is a ``KeyboardInterrupt``, so loops around ``fit`` stop too; catch it to get the partial
    :class:`FitResult` (``.result``, status ``"interrupted"``) and the checkpoint folder (``.checkpoint``),
    which ``fit(..., resume=...)`` continues from.
    """

    def __init__(self, result: FitResult) -> None:
        self.result = result
        self.checkpoint = result.checkpoint
        super().__init__(f"training interrupted at step {result.steps}/{result.steps_requested}; checkpoint saved "
                         f"to {result.checkpoint}; continue with fit(..., resume={str(result.checkpoint)!r}) or "
                         f"`mad train ... --resume {result.checkpoint}`")
