"""TextEncoder: fixed hashed n-gram features, deterministic across processes, similar texts closer."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from mad.generator.text_encoder import TextEncoder, tokenize

TEXTS = [
    "a small CNN for 28x28 grayscale digits with batch norm and residual connections under 100k parameters",
    "decoder-only transformer with rotary attention and RMSNorm for character-level text, vocabulary 128, 4 heads",
    "",
]


def test_encode_shape_norm_and_empty_text():
    enc = TextEncoder()
    v = enc.encode(TEXTS)
    assert v.shape == (3, 512) and v.dtype == torch.float32
    assert torch.allclose(v[:2].norm(dim=1), torch.ones(2))
    assert torch.count_nonzero(v[2]) == 0  # nothing to say -> zero vector
    assert TextEncoder(dim=64).encode("one text").shape == (1, 64)
    assert torch.equal(enc(TEXTS[:1]), enc.encode(TEXTS[0]))
    with pytest.raises(ValueError, match="dim"):
        TextEncoder(dim=1)
    with pytest.raises(TypeError, match="item 1"):
        enc.encode(["ok", 3])


def test_encoding_is_deterministic_across_processes():
    """zlib.crc32, not Python's salted hash: another interpreter with another hash seed gives the same bytes."""
    here = TextEncoder(dim=128).encode(TEXTS[:2])
    code = ("import sys, torch; from mad.generator.text_encoder import TextEncoder; "
            f"v = TextEncoder(dim=128).encode({TEXTS[:2]!r}); sys.stdout.write(repr(v.flatten().tolist()))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert torch.equal(torch.tensor(eval(out)).view(2, 128), here)


def test_similar_texts_are_closer_than_unrelated_ones():
    enc = TextEncoder()
    triples = [
        ("a small CNN for 28x28 grayscale digits with batch norm",
         "tiny convnet for 28x28 grayscale digits using batchnorm",
         "decoder-only transformer with rotary attention for character-level text"),
        ("GPT-style language model over a vocab of 256 tokens, 6 layers",
         "a 6 layers GPT-style model with vocab of 256",
         "ResNet-style CNN for RGB 32x32 images with BatchNorm"),
        ("vision transformer on 32x32 RGB images with RMSNorm",
         "a vision transformer for RGB 32x32 images, RMSNorm",
         "BERT-style encoder for text with post-norm LayerNorm"),
    ]
    for anchor, near, far in triples:
        a, b, c = enc.encode([anchor, near, far])
        assert a @ b > a @ c + 0.2, (anchor, float(a @ b), float(a @ c))


def test_settings_change_the_map():
    a = TextEncoder(seed=0).encode(TEXTS[0])
    assert not torch.equal(a, TextEncoder(seed=1).encode(TEXTS[0]))
    assert not torch.equal(a, TextEncoder(bigrams=False).encode(TEXTS[0]))
    assert TextEncoder(dim=256, seed=2).config() == {"dim": 256, "bigrams": True, "seed": 2}


def test_tokenize_keeps_shapes_and_buckets_numbers():
    toks = tokenize("RGB 32x32 images, under 100k params or 100,000 params; 1.5M FLOPs")
    assert "32x32" in toks and toks.count("#33") == 2  # 100k and 100,000 share a bucket
    assert "#41" in toks  # 1.5M
    assert tokenize("4 heads")[:2] == ["4", "#4"]  # small integers also stay exact
    assert tokenize("Hello WORLD") == ["hello", "world"]
