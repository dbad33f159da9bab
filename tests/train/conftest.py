"""Graphs shared by the training tests, captured once per session (capture costs about a second each)."""

from __future__ import annotations

import pytest
import torch

from mad.code2graph import from_module
from mad.train import TaskSpec

from train_nets import CHARS, SEQ, TinyCNN, TinyLM


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def vocab() -> int:
    return TaskSpec.of("chars", CHARS).num_outputs


@pytest.fixture(scope="session")
def cnn_graph():
    torch.manual_seed(0)
    return from_module(TinyCNN(), (torch.randn(2, 1, 8, 8),), name="tiny_cnn")


@pytest.fixture(scope="session")
def lm_graph(vocab):
    torch.manual_seed(0)
    return from_module(TinyLM(vocab), (torch.randint(0, vocab, (2, SEQ)),), name="tiny_lm")
