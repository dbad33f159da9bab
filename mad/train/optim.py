"""Optimizers and learning-rate schedules by name (registries).

Optimizers (``weight_decay`` applies to tensors of rank >= 2 only; biases, norm scales and other vectors
are not decayed):

- ``adamw`` (default), ``adam``: betas (0.9, 0.999).
- ``sgd``: momentum 0.9, Nesterov.

Schedules, as a factor of ``lr`` for update ``s = 0 .. steps-1``; all warm up linearly over the first
``warmup`` updates (factor ``(s + 1) / warmup``):

- ``cosine`` (default): half a cosine from 1 to 0 over the remaining updates.
- ``linear``: straight line from 1 to 0.
- ``constant``: 1.

Example:
    >>> opt = make_optimizer("adamw", model, lr=1e-3, weight_decay=0.01)
    >>> sched = make_scheduler(opt, "cosine", steps=500, warmup=25)
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .objective import TrainError

__all__ = ["OPTIMIZERS", "SCHEDULES", "register_optimizer", "register_schedule", "make_optimizer",
           "make_scheduler", "lr_factor", "default_warmup"]

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {}
SCHEDULES: dict[str, Callable[[float], float]] = {}


def register_optimizer(name: str):
    """Register ``fn(param_groups, lr) -> Optimizer`` under ``name``."""
    def wrap(fn):
        OPTIMIZERS[name] = fn
        return fn
    return wrap


def register_schedule(name: str):
    """Register ``fn(progress in [0, 1)) -> factor`` (applied after warmup) under ``name``."""
    def wrap(fn):
        SCHEDULES[name] = fn
        return fn
    return wrap


@register_optimizer("adamw")
def _adamw(groups, lr):
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))


@register_optimizer("adam")
def _adam(groups, lr):
    return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999))


@register_optimizer("sgd")
def _sgd(groups, lr):
    return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)


@register_schedule("cosine")
def _cosine(p: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * p))


@register_schedule("linear")
def _linear(p: float) -> float:
    return 1.0 - p


@register_schedule("constant")
def _constant(p: float) -> float:
    return 1.0


def _choose(kind: str, name: str, table: dict) -> Callable:
    if name not in table:
        raise TrainError(f"unknown {kind} {name!r}; use one of {', '.join(sorted(table))}")
    return table[name]


def make_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Optimizer ``name`` over the trainable parameters of ``model``, decaying only tensors of rank >= 2."""
    fn = _choose("optimizer", name, OPTIMIZERS)
    if not lr > 0:
        raise TrainError(f"lr must be > 0, got {lr}")
    if weight_decay < 0:
        raise TrainError(f"weight_decay must be >= 0, got {weight_decay}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainError(f"{type(model).__name__} has no trainable parameters")
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0})
              if g["params"]]
    return fn(groups, lr)


def default_warmup(steps: int) -> int:
    """5% of the steps, at most 100."""
    return min(100, round(0.05 * steps))


def lr_factor(schedule: str, step: int, steps: int, warmup: int) -> float:
    """Factor of the base learning rate at 0-based update ``step`` of ``steps``."""
    fn = _choose("schedule", schedule, SCHEDULES)
    if step < warmup:
        return (step + 1) / warmup
    return fn((step - warmup) / max(1, steps - warmup))


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, steps: int,
                   warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`lr_factor`; call ``step()`` once after every optimizer step."""
    _choose("schedule", schedule, SCHEDULES)
    if warmup < 0:
        raise TrainError(f"warmup must be >= 0, got {warmup}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(schedule, s, steps, warmup))
