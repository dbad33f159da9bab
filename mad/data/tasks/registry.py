"""The task registry and its public API: ``names``, ``info``, ``load``, ``fit``, ``clear_cache``."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from torch.utils.data import Dataset

from .spec import SPLITS, TaskError, TaskInfo


logger = logging.getLogger(__name__)

_CACHES: list[Any] = []


@dataclass(frozen=True)
class _Task:
    name: str
    options: dict[str, Any]
    info: Callable[..., TaskInfo]
    build: Callable[..., Dataset]


_TASKS: dict[str, _Task] = {}


def _register(name: str, options: dict[str, Any]):
    def wrap(cls):
        _TASKS[name] = _Task(name, dict(options), cls.info, cls.build)
        return cls
    return wrap


def names() -> list[str]:
    """Names of all registered tasks, sorted."""
    return sorted(_TASKS)


def _get(name: str) -> _Task:
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise TaskError(f"unknown task {name!r}; known tasks: {', '.join(names())}") from None


def _options(task: _Task, opts: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(opts) - set(task.options))
    if unknown:
        allowed = ", ".join(sorted(task.options)) or "none"
        raise TaskError(f"task {task.name!r} got unknown option(s) {', '.join(unknown)}; its options are: {allowed}")
    return {**task.options, **opts}


def info(name: str, **opts) -> TaskInfo:
    """Facts about task ``name`` (shapes, dtypes, classes or vocabulary, split sizes) without building it.

    ``chars`` reads its text to count the vocabulary (cheap, cached); the others need no data at all, and the
    ``cifar10`` split sizes are those of the standard data set.

    Args:
        name: one of :func:`names`.
        **opts: the task's options (e.g. ``seq_len`` for ``chars``).

    Example:
        >>> info("mnist5k").input_shape
        (1, 28, 28)
    """
    task = _get(name)
    return task.info(**_options(task, opts))


def fit(graph: Any, name: str, **opts) -> Any:
    """Put an architecture on task ``name``: a copy of ``graph`` retargeted to its input shape and
    its classes (classification) or vocabulary and sequence length (language modelling).

    Reads the task's :func:`info` (no data is loaded, except ``chars`` counting its vocabulary) and
    calls :func:`mad.graph.passes.retarget`; the result takes the task's inputs (with a batch dim)
    and returns logits ``(B, num_classes)`` or ``(B, T, vocab_size)``.

    Args:
        graph: an :class:`~mad.graph.ArchGraph` (left untouched).
        name: one of :func:`names`.
        **opts: the task's options (e.g. ``seq_len`` for ``chars``).

    Raises:
        TaskError: unknown task or option.
        GraphError: the graph cannot take the task; the message says why.

    Example:
        >>> g2 = fit(g, "mnist5k")
        >>> g2.inputs[0].shape
        ['B', 1, 28, 28]
    """
    from mad.graph.passes import retarget

    ti = info(name, **opts)
    if ti.task_type == "classification":
        return retarget(graph, ti.input_shape, num_classes=ti.num_classes)
    return retarget(graph, ti.input_shape, vocab_size=ti.vocab_size)


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None, **opts) -> Dataset:
    """Build one split of task ``name`` as a map-style dataset of ``(input, label)`` pairs.

    Args:
        name: one of :func:`names`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        data_dir: folder holding user-provided data (``cifar10``: the folder that contains
            ``cifar-10-batches-py``, or that folder itself); defaults to ``$MAD_DATA_DIR``. Ignored by tasks whose
            data ships with a package.
        **opts: task options. ``chars``: ``seq_len`` (64), ``stride`` (= ``seq_len``), ``text_file`` (``None``:
            the ``pydoc_data`` topics). ``mnist1d``: ``num_samples`` (5000).

    Returns:
        a :class:`ClassificationDataset` or :class:`CharLMDataset` with attributes ``name``, ``split``,
        ``task_type``, ``input_shape``, ``input_dtype``, ``num_classes`` / ``vocab_size``.

    Raises:
        TaskError: unknown task, split or option. FileNotFoundError: user data missing (the message names the file).

    Example:
        >>> len(load("digits", "test"))
        180
    """
    task = _get(name)
    if split not in SPLITS:
        raise TaskError(f"task {name!r}: unknown split {split!r}; use one of {', '.join(SPLITS)}")
    opts = _options(task, opts)
    t0 = time.perf_counter()
    ds = task.build(split, data_dir, **opts)
    logger.debug("loaded task %s split %s: %d examples in %.3f s", name, split, len(ds), time.perf_counter() - t0)
    return ds


def clear_cache() -> None:
    """Drop every cached raw array, so the next :func:`load` reads its source again."""
    for fn in _CACHES:
        fn.cache_clear()


def cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Note an ``lru_cache``-wrapped loader so that :func:`clear_cache` empties it; returns it."""
    _CACHES.append(fn)
    return fn
