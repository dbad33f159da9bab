"""Task facts: splits, :class:`TaskInfo` and :class:`TaskError`."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


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
