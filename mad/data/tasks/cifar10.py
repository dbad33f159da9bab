"""``cifar10``: the python-pickle CIFAR-10 layout read from ``--data-dir`` with a restricted unpickler."""

from __future__ import annotations

import functools
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .spec import CIFAR10_CLASSES, CIFAR10_FOLDER, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, DATA_DIR_ENV, TaskInfo
from .registry import _register, cached
from .common import _classification, _file_stamp, _permutation_split, _readonly


logger = logging.getLogger(__name__)

class _CifarUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batch files that resolves only the numpy array constructors those files use."""

    def find_class(self, module: str, name: str):
        allowed = {
            ("_codecs", "encode"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"CIFAR batch file refers to {module}.{name}, which a CIFAR batch never "
                                         "holds; refusing to load it")
        if module == "_codecs":
            import codecs
            return codecs.encode
        if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _np_core_attr("multiarray", name)
        if module in ("numpy.core.numeric", "numpy._core.numeric"):
            return _np_core_attr("numeric", name)
        return getattr(np, name)


def _np_core_attr(submodule: str, name: str):
    import importlib

    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"this numpy has no {submodule}.{name} to rebuild a CIFAR array")


def _cifar10_root(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir is None:
        raise FileNotFoundError(f"task 'cifar10' reads user data: pass data_dir= (or set ${DATA_DIR_ENV}) to the "
                                f"folder holding {CIFAR10_FOLDER}/ (data_batch_1..5, test_batch)")
    base = Path(data_dir).expanduser()
    root = base if base.name == CIFAR10_FOLDER else base / CIFAR10_FOLDER
    if not root.is_dir() and (base / CIFAR10_TEST_FILE).is_file():
        root = base
    for fname in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE):
        if not (root / fname).is_file():
            raise FileNotFoundError(f"task 'cifar10': missing file {root / fname}; data_dir must hold "
                                    f"{CIFAR10_FOLDER}/ with data_batch_1..5 and test_batch (the python version "
                                    "of CIFAR-10, unpacked)")
    return root.resolve()


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        try:
            batch = _CifarUnpickler(f, encoding="latin1").load()
        except Exception as err:
            raise ValueError(f"task 'cifar10': cannot read {path} as a CIFAR-10 python batch: {err}") from err
    if not isinstance(batch, dict):
        raise ValueError(f"task 'cifar10': {path} holds a {type(batch).__name__}, expected a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"task 'cifar10': {path} lacks key 'data' or 'labels' (has {sorted(batch)})")
    data = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise ValueError(f"task 'cifar10': {path} has data {data.shape} and {labels.shape[0]} labels; expected "
                         "(N, 3072) uint8 rows and N labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"task 'cifar10': {path} has labels outside 0..9")
    return data, labels


@functools.lru_cache(maxsize=2)
def _cifar10_arrays(root: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    """Rows (N, 3072) uint8 of data_batch_1..5 then test_batch, labels (N,), number of training rows, class names.

    ``stamp`` (paths, mtimes, sizes) is part of the cache key so that changed files are read again.
    """
    root_path = Path(root)
    parts = [_read_cifar_batch(root_path / f) for f in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)]
    n_train = sum(len(p[1]) for p in parts[:-1])
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    class_names = CIFAR10_CLASSES
    meta = root_path / "batches.meta"
    if meta.is_file():
        try:
            with open(meta, "rb") as f:
                m = _CifarUnpickler(f, encoding="latin1").load()
            label_names = m.get("label_names", m.get(b"label_names"))
            if label_names is not None and len(label_names) == 10:
                class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in label_names)
        except Exception as err:  # the names are a convenience; the standard ones are used instead
            logger.warning("cifar10: ignoring unreadable %s (%s)", meta, err)
    return (*_readonly(x, y), n_train, class_names)


@_register("cifar10", {})
class _Cifar10:
    @staticmethod
    def _sizes(n_train: int, n_test: int) -> dict[str, int]:
        n_val = round(n_train * 0.1)
        return {"train": n_train - n_val, "val": n_val, "test": n_test}

    @staticmethod
    def info(sizes: dict[str, int] | None = None) -> TaskInfo:
        return TaskInfo("cifar10", "classification", (3, 32, 32), torch.float32, (), 10, None,
                        sizes or _Cifar10._sizes(50000, 10000), "pixel / 255 -> [0, 1]",
                        f"user data: <data_dir>/{CIFAR10_FOLDER} (python pickle batches)")

    @staticmethod
    def build(split: str, data_dir) -> Dataset:
        root = _cifar10_root(data_dir)
        files = [root / f for f in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)]
        x, y, n_train, class_names = _cifar10_arrays(str(root), _file_stamp(files))
        sizes = _Cifar10._sizes(n_train, len(y) - n_train)
        if split == "test":
            idx = np.arange(n_train, len(y))
        else:
            idx = _permutation_split(n_train, sizes["val"], 0)[split]
        return _classification(_Cifar10.info(sizes), split, x, y, idx, 255.0, class_names)


cached(_cifar10_arrays)
