"""``chars``: character-level language modelling on Python's own documentation text or any text file."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .spec import TaskError, TaskInfo
from .datasets import CharLMDataset
from .registry import _register, cached
from .common import _file_stamp, _readonly


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


cached(_read_text)
cached(_encoded_text)
