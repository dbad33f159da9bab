"""Helpers the array-backed classification tasks share: fixed splits, read-only arrays, registration."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .spec import SPLIT_SEED, TaskInfo
from .datasets import ClassificationDataset
from .registry import _TASKS, _Task


def _readonly(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _permutation_split(n: int, n_val: int, n_test: int, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Disjoint index sets covering ``range(n)``: test first, then val, then train, from one seeded permutation."""
    perm = np.random.default_rng(seed).permutation(n)
    return {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}


def _classification(info_: TaskInfo, split: str, inputs: np.ndarray, labels: np.ndarray, idx: np.ndarray,
                    divisor: float | None, class_names: tuple[str, ...], offset: int = 0) -> ClassificationDataset:
    x = torch.from_numpy(inputs[idx].reshape((len(idx),) + info_.input_shape))
    y = torch.from_numpy(labels[idx].astype(np.int64))
    return ClassificationDataset(info_, split, x, y, torch.from_numpy(idx.astype(np.int64) + offset), divisor,
                                 class_names)


_DIGIT_NAMES = tuple(str(i) for i in range(10))


def _register_permuted_images(name: str, n: int, hold: int, shape: tuple[int, ...], scale: float, source: str,
                              arrays: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
    """Register a 10-digit image classification task split by a seeded permutation (hold each for val/test)."""

    def info() -> TaskInfo:
        return TaskInfo(name, "classification", shape, torch.float32, (), 10, None,
                        {"train": n - 2 * hold, "val": hold, "test": hold}, f"pixel / {scale:g} -> [0, 1]", source)

    def build(split: str, data_dir) -> Dataset:
        x, y = arrays()
        idx = _permutation_split(len(y), hold, hold)[split]
        return _classification(info(), split, x, y, idx, scale, _DIGIT_NAMES)

    _TASKS[name] = _Task(name, {}, info, build)


def _file_stamp(paths: list[Path]) -> tuple:
    """(path, mtime, size) of each file: a cache key that changes when a file does."""
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
