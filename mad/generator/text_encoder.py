"""TextEncoder: a fixed, offline text -> vector map from hashed word unigrams and bigrams.

No training and no downloads: lower-cased word tokens (and bucketed numbers) are
hashed with ``zlib.crc32`` (stable across processes and machines, unlike Python's
``hash``) into ``dim`` signed buckets, counted with sublinear weights and
L2-normalised. Texts sharing words and word pairs get a high cosine similarity;
a model trained on top learns a projection of these features.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch

__all__ = ["TextEncoder", "tokenize"]

_TOKEN = re.compile(r"\d+(?:\s*[x×]\s*\d+)+|\d+(?:,\d{3})*(?:\.\d+)?[kmbg]?(?![a-z])|[a-z][a-z0-9_]*")
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}


def _number_tokens(text: str) -> list[str]:
    """A number becomes its exact form (small integers) and a half-octave bucket: ``"100k"`` -> ``["#33"]``."""
    m = re.fullmatch(r"(\d+(?:,\d{3})*(?:\.\d+)?)([kmbg]?)", text)
    value = float(m.group(1).replace(",", "")) * _SCALE.get(m.group(2), 1)
    out = [f"#{int(2 * math.log2(value)) if value >= 1 else 0}"]
    if value == int(value) and value <= 1024 and not m.group(2):
        out.insert(0, str(int(value)))
    return out


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; ``28x28`` stays one shape token; numbers as :func:`_number_tokens`.

    Example:
        >>> tokenize("Under 100k params, RGB 32x32, 4 heads")
        ['under', '#33', 'params', 'rgb', '32x32', '4', '#4', 'heads']
    """
    out: list[str] = []
    for m in _TOKEN.finditer(text.lower()):
        tok = m.group(0)
        if tok[0].isdigit():
            if re.search(r"[x×]", tok):
                out.append(re.sub(r"\s*[x×]\s*", "x", tok))
            else:
                out.extend(_number_tokens(tok))
        else:
            out.append(tok)
    return out


@dataclass
class TextEncoder:
    """Hashed unigram + bigram features of a text, as a fixed-size L2-normalised vector.

    Args:
        dim: length of each vector (hash buckets).
        bigrams: add features for adjacent token pairs.
        seed: salt of the hash, so two encoders can be made independent.

    Shapes:
        ``encode(texts)``: ``N`` strings -> ``(N, dim)`` float32; an empty text is the zero vector.

    Example:
        >>> enc = TextEncoder(dim=64)
        >>> v = enc.encode(["a small CNN for digits", "a tiny CNN for digits"])
        >>> v.shape, round(float(v.norm(dim=1)[0]), 4), bool(v[0] @ v[1] > 0.5)
        (torch.Size([2, 64]), 1.0, True)
    """

    dim: int = 512
    bigrams: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError(f"TextEncoder.dim must be >= 2, got {self.dim}")

    def config(self) -> dict[str, Any]:
        """The settings that define the map (save them next to anything trained on its vectors)."""
        return asdict(self)

    def features(self, text: str) -> Counter:
        """Feature string -> count for one text."""
        toks = tokenize(text)
        feats = Counter(f"u:{t}" for t in toks)
        if self.bigrams:
            feats.update(f"b:{a} {b}" for a, b in zip(toks, toks[1:]))
        return feats

    def _bucket(self, feature: str) -> tuple[int, float]:
        h = zlib.crc32(f"{self.seed}|{feature}".encode())
        return h % self.dim, 1.0 if (h >> 31) & 1 else -1.0

    def encode(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Vectors of ``texts`` (one string gives a ``(1, dim)`` tensor)."""
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.dim)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"TextEncoder.encode: item {i} is {type(text).__name__}, not str")
            for feat, count in self.features(text).items():
                j, sign = self._bucket(feat)
                out[i, j] += sign * (1.0 + math.log(count))
        norms = out.norm(dim=1, keepdim=True)
        return out / norms.clamp_min(1e-12)

    __call__ = encode
