"""Small models for the training tests: an image CNN for ``digits`` and a token LM for ``chars``."""

from __future__ import annotations

import torch
from torch import nn

SEQ = 16  # chars sequence length in these tests
CHARS = {"seq_len": SEQ}


class TinyCNN(nn.Module):
    """(N, 1, 8, 8) -> conv 3x3 (8) -> BatchNorm -> ReLU -> Dropout -> Linear -> (N, 10)."""

    def __init__(self, width: int = 8, classes: int = 10, side: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(width * side * side, classes)

    def forward(self, x):
        h = self.drop(torch.relu(self.bn(self.conv(x))))  # (N, W, 8, 8)
        return self.head(h.flatten(1))


class TinyLM(nn.Module):
    """(N, T) token ids -> embedding -> Linear -> GELU -> Dropout -> Linear -> (N, T, vocab)."""

    def __init__(self, vocab: int, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(0.1))
        self.head = nn.Linear(2 * dim, vocab)

    def forward(self, ids):
        return self.head(self.mlp(self.emb(ids)))  # (N, T, V)


class LinearLM(nn.Module):
    """No activation at all: embedding -> Linear -> Linear (naswot falls back to the head's input)."""

    def __init__(self, vocab: int, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids):
        return self.head(self.proj(self.emb(ids)))


class DigitsCNN(nn.Module):
    """A small CNN that learns ``digits`` well: two conv blocks and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.BatchNorm2d(32), nn.ReLU())
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))
