"""mad.data: the MAD dataset and the offline task datasets used to score and train architectures.

- :func:`load_default` -- the shipped default dataset (``datasets.DatasetDict`` by split);
- :func:`build` / :class:`BuildConfig` -- build a dataset (``mad dataset build``);
- :mod:`mad.data.random_space` -- the random architecture space;
- :func:`describe` -- an English description of a graph;
- :mod:`mad.data.pretext` -- self-supervised tasks as PyG data;
- :mod:`mad.data.tasks` -- offline task data (digits, MNIST subsets, text, CIFAR-10 from disk).
"""

from importlib import import_module
from typing import Any

from . import tasks
from .tasks import TaskError, TaskInfo

__all__ = ["TaskError", "TaskInfo", "tasks", "load_default", "build", "BuildConfig", "load", "describe"]

_LAZY = {
    "load_default": ("default", "load_default"),
    "build": ("builder", "build"),
    "BuildConfig": ("builder", "BuildConfig"),
    "load": ("builder", "load"),
    "describe": ("describe", "describe"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(import_module(f".{mod}", __name__), attr)
    raise AttributeError(f"module 'mad.data' has no attribute {name!r}")
