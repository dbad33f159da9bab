"""Small hand-written nets of the kinds researchers build: a CNN with BatchNorm, a ViT with a
class token, a GPT with learned positions, an MLP-Mixer and an MLP. Shared by the tests of
symbolic dims and train/eval modes."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class BNCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(8, classes)

    def forward(self, x):
        h = self.stem(x)
        h = F.relu(h + self.block(h))
        return self.head(self.drop(h.mean((2, 3))))


class ViT(nn.Module):
    def __init__(self, dim: int = 32, patch: int = 4, image: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        h = self.patch(x).flatten(2).transpose(1, 2)  # (B, N, D)
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1) + self.pos
        return self.head(self.encoder(h)[:, 0])


class GPT(nn.Module):
    def __init__(self, vocab: int = 50, dim: int = 32, heads: int = 4, ctx: int = 32) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(ctx, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.heads = heads

    def forward(self, ids):
        B, T = ids.shape
        h = self.tok(ids) + self.pos(torch.arange(T, device=ids.device))
        q, k, v = self.qkv(self.ln(h)).split(h.shape[-1], dim=-1)
        q, k, v = (t.view(B, T, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, -1)))
        h = h + self.mlp(self.ln(h))
        return self.head(h)


class Mixer(nn.Module):
    def __init__(self, dim: int = 16, tokens: int = 16, classes: int = 10) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, dim, 4, stride=4)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.token_mlp = nn.Sequential(nn.Linear(tokens, 32), nn.GELU(), nn.Linear(32, tokens))
        self.channel_mlp = nn.Sequential(nn.Linear(dim, 32), nn.GELU(), nn.Linear(32, dim))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        h = self.patch(x).flatten(2).transpose(1, 2)  # (B, N, D)
        h = h + self.token_mlp(self.norm1(h).transpose(1, 2)).transpose(1, 2)
        h = h + self.channel_mlp(self.norm2(h))
        return self.head(h.mean(1))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


def nets() -> dict[str, tuple[nn.Module, tuple]]:
    """name -> (module, example args at batch 2)."""
    torch.manual_seed(0)
    return {
        "cnn_bn": (BNCNN(), (torch.randn(2, 3, 8, 8),)),
        "vit": (ViT(), (torch.randn(2, 3, 16, 16),)),
        "gpt": (GPT(), (torch.randint(0, 50, (2, 12)),)),
        "mixer": (Mixer(), (torch.randn(2, 1, 16, 16),)),
        "mlp": (MLP(), (torch.randn(2, 1, 8, 8),)),
    }


def at_batch(args: tuple, batch: int, seq: int | None = None) -> tuple:
    """The example args at another batch size (and sequence length, for token inputs)."""
    out = []
    for a in args:
        if a.dtype.is_floating_point:
            out.append(torch.randn(batch, *a.shape[1:]))
        else:
            out.append(torch.randint(0, 50, (batch, seq or a.shape[1])))
    return tuple(out)


def attn_graph():
    """A hand-built graph: x (2, 5, 8) -> q, k, v projections -> sdpa -> split -> getitem -> out proj; x + out."""
    from mad.graph import ArchGraph, TensorSpec

    g = ArchGraph("attn", source="test", inputs=[TensorSpec("x", [2, 5, 8], dims=["batch", "seq", "channel"])],
                  meta={"note": {"a": [1, 2]}})
    x = g.add_node("input", id="x", attrs={"name": "x"})
    qkv = [g.add_node("linear", [x], id=n, params={"weight": [8, 8]}, scope=f"attn.{n}") for n in ("q", "k", "v")]
    a = g.add_node("scaled_dot_product_attention", qkv, id="sdpa", attrs={"is_causal": True})
    sp = g.add_node("split", [a], id="split", attrs={"split_size": 4, "dim": -1})
    h0 = g.add_node("getitem", [sp], id="h0", attrs={"index": 0})
    o = g.add_node("linear", [h0], id="o", params={"weight": [8, 4], "bias": [8]}, scope="attn.o")
    r = g.add_node("add", [x, o], id="res")
    g.set_outputs([r, a], keys=["out", "attn"])
    return g
