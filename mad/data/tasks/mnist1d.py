"""``mnist1d``: MNIST-1D generated from code (``mnist1d.data.make_dataset``), offline."""

from __future__ import annotations

import functools
import random

import numpy as np
import torch
from torch.utils.data import Dataset

from .spec import TaskError, TaskInfo
from .registry import _register, cached
from .common import _readonly, _permutation_split, _classification, _DIGIT_NAMES


_MNIST1D_SEED = 42


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Generate MNIST-1D from code; returns (inputs (N, 40), labels (N,), number of package-train examples).

    The generator seeds Python's and numpy's global RNGs; their states are restored afterwards.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = _MNIST1D_SEED
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float32)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return (*_readonly(x, y), len(data["y"]))


@_register("mnist1d", {"num_samples": 5000})
class _Mnist1d:
    @staticmethod
    def _sizes(num_samples: int) -> dict[str, int]:
        if not isinstance(num_samples, int) or num_samples < 100:
            raise TaskError(f"task 'mnist1d': option num_samples must be an int >= 100, got {num_samples!r}")
        total = (num_samples // 10) * 10  # the generator makes num_samples // 10 examples per class
        n_pool = int(total * 0.8)
        n_val = round(n_pool / 8)
        return {"train": n_pool - n_val, "val": n_val, "test": total - n_pool}

    @staticmethod
    def info(num_samples: int) -> TaskInfo:
        return TaskInfo("mnist1d", "classification", (1, 40), torch.float32, (), 10, None,
                        _Mnist1d._sizes(num_samples), "mnist1d's own: whole data set to mean 0, std 1",
                        f"mnist1d.data.make_dataset, seed {_MNIST1D_SEED}, generated offline")

    @staticmethod
    def build(split: str, data_dir, num_samples: int) -> Dataset:
        sizes = _Mnist1d._sizes(num_samples)
        x, y, n_pool = _mnist1d_arrays(num_samples)
        if split == "test":
            idx = np.arange(n_pool, len(y))
        else:
            idx = _permutation_split(n_pool, sizes["val"], 0)[split]
        return _classification(_Mnist1d.info(num_samples), split, x, y, idx, None, _DIGIT_NAMES)


cached(_mnist1d_arrays)
