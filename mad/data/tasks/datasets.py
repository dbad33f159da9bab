"""The two dataset kinds every task returns: images/signals with labels, and character windows."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from .spec import TaskError, TaskInfo


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
