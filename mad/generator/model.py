"""The graph transformer: a decoder over graph token sequences with graph-structure attention.

A sequence is ``[text, cond_1..cond_C, tok_1..tok_T]``: a projected sentence
embedding, the constraint tokens (``modality=image``, ``norm=batch_norm``,
``params<=2^17``...) and the graph's tokens (:class:`~mad.tokenizer.GraphTokenizer`).
Each graph token also carries its role in its node (reference, op, key) and
its node's depth. Attention adds a learned per-head bias chosen by the
relation of the query token's node to the key token's node
(:mod:`mad.generator.structure`): same node, an input 1/2/3/4/5+ hops back,
an unrelated earlier node, a consumer (only in masked mode), or no relation
known. With ``structure_bias=False`` the bias is off and the model is a plain
decoder (the benchmark's comparison).

The same weights run in two modes: causal (next-token prediction: suggestion
and completion) and bidirectional (masked op/attr/edge recovery).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .structure import N_BUCKETS, N_ROLES

__all__ = ["GeneratorConfig", "GraphTransformer", "KVCache"]


@dataclass
class GeneratorConfig:
    """Sizes of a :class:`GraphTransformer` (saved as ``config.json`` next to its weights).

    Args:
        vocab_size: graph tokens (the tokenizer's vocabulary).
        cond_vocab: constraint tokens (index 0 is padding).
        text_dim: size of the sentence embedding (:class:`~mad.generator.TextEncoder`).
        d_model, n_layers, n_heads, d_ff: transformer sizes.
        n_kv_heads: key/value heads (grouped-query attention; None: one per query head). Fewer heads make the
            decoding cache, whose reads dominate a sampling step on a CPU, that many times smaller.
        max_len: longest graph token sequence (the prefix comes on top).
        max_cond: constraint tokens per sequence.
        structure_bias: graph-structure attention bias on or off.
        max_depth: node depths are clipped to this for their embedding.
    """

    vocab_size: int
    cond_vocab: int
    text_dim: int = 512
    d_model: int = 192
    n_layers: int = 4
    n_heads: int = 6
    d_ff: int = 768
    n_kv_heads: int | None = None
    max_len: int = 768
    max_cond: int = 24
    structure_bias: bool = True
    max_depth: int = 63
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GeneratorConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"generator config: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    @property
    def prefix_len(self) -> int:
        return 1 + self.max_cond

    @property
    def kv_heads(self) -> int:
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    def __post_init__(self) -> None:
        if self.kv_heads < 1 or self.d_model % self.n_heads or self.n_heads % self.kv_heads:
            raise ValueError(f"generator config: d_model {self.d_model} must split into n_heads {self.n_heads}, "
                             f"and n_heads into n_kv_heads {self.n_kv_heads} groups")


class KVCache:
    """Keys ``(B, H, L, dh)`` and transposed values ``(B, H, dh, L)`` of every layer for incremental decoding.

    Storage grows ``block`` positions at a time and is written in place. Positions
    past the filled ones are zeros, so a one-token step attends over the whole
    contiguous buffers (masking the tail) with batched matrix products; on a CPU
    that is faster than attention over strided slices, and the values transposed
    make the second product a plain one.
    """

    def __init__(self, n_layers: int, block: int = 64) -> None:
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.vt: list[torch.Tensor | None] = [None] * n_layers
        self.n = [0] * n_layers
        self.block = block

    def length_after(self, t: int) -> int:
        """Length of every layer's buffers once ``t`` more positions are appended (they grow together)."""
        n, buf = self.n[0], self.k[0]
        if buf is not None and n + t <= buf.shape[2]:
            return buf.shape[2]
        return -(-(n + t) // self.block) * self.block

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add ``k``, ``v`` (B, H, t, dh) to layer ``layer``; its whole buffers, keys (B, H, L, dh) and values
        (B, H, dh, L), L >= the filled positions (zeros after them)."""
        n, t = self.n[layer], k.shape[2]
        buf_k, buf_v = self.k[layer], self.vt[layer]
        if buf_k is None or n + t > buf_k.shape[2]:
            size = -(-(n + t) // self.block) * self.block
            new_k = k.new_zeros(k.shape[0], k.shape[1], size, k.shape[3])
            new_v = v.new_zeros(v.shape[0], v.shape[1], v.shape[3], size)
            if buf_k is not None:
                new_k[:, :, :n] = buf_k[:, :, :n]
                new_v[..., :n] = buf_v[..., :n]  # type: ignore[index]
            buf_k, buf_v = self.k[layer], self.vt[layer] = new_k, new_v
        buf_k[:, :, n: n + t] = k
        buf_v[..., n: n + t] = v.transpose(2, 3)  # type: ignore[index]
        self.n[layer] = n + t
        return buf_k, buf_v  # type: ignore[return-value]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only batch rows ``rows`` (finished samples leave the batch); only the filled slots are copied."""
        def take(buf: torch.Tensor | None, n: int, values: bool) -> torch.Tensor | None:
            if buf is None:
                return None
            out = buf.new_zeros((len(rows),) + tuple(buf.shape[1:]))
            if values:
                out[..., :n] = buf[..., :n][rows]
            else:
                out[:, :, :n] = buf[:, :, :n][rows]
            return out

        self.k = [take(k, n, False) for k, n in zip(self.k, self.n)]
        self.vt = [take(v, n, True) for v, n in zip(self.vt, self.n)]


class _Block(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.h, self.kv = cfg.n_heads, cfg.kv_heads
        self.dh = cfg.d_model // cfg.n_heads
        self.ln1 = nn.LayerNorm(cfg.d_model)
        # queries, then keys, then values (kv heads each): one product
        self.qkv = nn.Linear(cfg.d_model, cfg.d_model + 2 * self.kv * self.dh)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cache: KVCache | None = None, layer: int = 0):
        b, t, c = x.shape  # (B, T, C)
        h, kv, dh = self.h, self.kv, self.dh
        y = self.qkv(self.ln1(x))
        q = y[..., :c].view(b, t, h, dh).transpose(1, 2)  # (B, H, T, dh)
        k, v = y[..., c:].view(b, t, 2, kv, dh).permute(2, 0, 3, 1, 4)  # (B, KV, T, dh) each
        gqa = kv != h  # query head i reads key/value head i // (H / KV)
        if cache is None:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)  # (B, H, T, dh)
        else:
            k, vt = cache.append(layer, k, v)  # (B, KV, L, dh), (B, KV, dh, L), L >= S
            if t > 1:
                s = mask.shape[-1]  # filled positions, the new ones included
                a = F.scaled_dot_product_attention(q, k[:, :, :s], vt[..., :s].transpose(2, 3), attn_mask=mask,
                                                   enable_gqa=gqa)
            else:  # one new token: batched products over the whole buffers (the mask covers their zero tails);
                n, g = k.shape[2], h // kv  # the g query heads of a group share one product with its keys
                att = torch.bmm(q.reshape(b * kv, g, dh), k.view(b * kv, n, dh).transpose(1, 2))
                att = (att.view(b, h, 1, n) * dh ** -0.5 + mask).softmax(-1)  # (B, H, 1, L)
                # (the (n, g) operand as transposed rows: BLAS takes the fast path for that layout)
                a = torch.bmm(vt.view(b * kv, dh, n), att.view(b * kv, g, n).transpose(1, 2))  # (B*KV, dh, g)
                a = a.transpose(1, 2).reshape(b, h, 1, dh)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, c)))
        return x + self.drop(self.ff(self.ln2(x)))


class GraphTransformer(nn.Module):
    """Decoder over graph tokens with graph-structure attention bias (see the module docstring).

    Args:
        cfg: a :class:`GeneratorConfig`.

    Shapes:
        tokens, role, depth: (B, T) longs; pos: (B, T) logical positions;
        text: (B, text_dim); cond: (B, C) constraint ids (0 = none);
        bucket: (B, P+T, P+T) relation ids of every query/key pair (P = prefix length; None without the bias);
        keep: (B, P+T) bool, False for padding; returns logits (B, T, vocab).

    Example:
        >>> m = GraphTransformer(GeneratorConfig(vocab_size=100, cond_vocab=10))
    """

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok = nn.Embedding(cfg.vocab_size, d)
        self.pos = nn.Embedding(cfg.max_len + cfg.prefix_len, d)
        self.role = nn.Embedding(N_ROLES, d)
        self.depth = nn.Embedding(cfg.max_depth + 1, d)
        self.cond = nn.Embedding(cfg.cond_vocab, d, padding_idx=0)
        self.text = nn.Linear(cfg.text_dim, d)
        self.mode = nn.Embedding(2, d)  # 0 causal, 1 masked
        self.bias = nn.Embedding(N_BUCKETS, cfg.n_heads) if cfg.structure_bias else None
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    # ---------------------------------------------------------------- embeddings
    def prefix(self, text: torch.Tensor, cond: torch.Tensor, masked: bool = False) -> torch.Tensor:
        """(B, P, C) embeddings of the prompt: the sentence, then the constraint tokens."""
        p = torch.arange(self.cfg.prefix_len, device=text.device)
        x = torch.cat([self.text(text)[:, None], self.cond(cond)], dim=1) + self.pos(p)[None]  # (B, P, C)
        return x + self.mode.weight[int(masked)]

    def embed(self, tokens: torch.Tensor, pos: torch.Tensor, role: torch.Tensor, depth: torch.Tensor,
              masked: bool = False) -> torch.Tensor:
        """(B, T, C) embeddings of graph tokens at logical positions ``pos`` (0 = first graph token)."""
        x = self.tok(tokens) + self.pos(pos.clamp(max=self.cfg.max_len - 1) + self.cfg.prefix_len)
        x = x + self.role(role) + self.depth(depth.clamp(0, self.cfg.max_depth))
        return x + self.mode.weight[int(masked)]

    def attn_mask(self, bucket: torch.Tensor | None, allowed: torch.Tensor) -> torch.Tensor:
        """(B, H, Tq, S) float mask: the structure bias where ``allowed``, -inf elsewhere (``bucket`` may be
        None without the bias)."""
        neg = torch.zeros(allowed.shape, dtype=torch.float32, device=allowed.device)
        neg = neg.masked_fill(~allowed, float("-inf"))[:, None]  # (B, 1, Tq, S)
        if self.bias is None:
            return neg
        assert bucket is not None, "the structure bias needs the relation buckets"
        return neg + self.bias(bucket).permute(0, 3, 1, 2)  # (B, H, Tq, S)

    # ---------------------------------------------------------------- training forward
    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, role: torch.Tensor, depth: torch.Tensor,
                text: torch.Tensor, cond: torch.Tensor, bucket: torch.Tensor | None, keep: torch.Tensor,
                masked: bool = False) -> torch.Tensor:
        x = torch.cat([self.prefix(text, cond, masked), self.embed(tokens, pos, role, depth, masked)], dim=1)
        n = x.shape[1]
        allowed = keep[:, None, :].expand(-1, n, -1)  # (B, S, S)
        if not masked:
            allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=x.device).tril()[None]
        allowed = allowed | torch.eye(n, dtype=torch.bool, device=x.device)[None]
        mask = self.attn_mask(bucket, allowed)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.head(self.ln(x[:, self.cfg.prefix_len:]))  # (B, T, V)

    # ---------------------------------------------------------------- incremental decoding
    def step(self, x: torch.Tensor, bucket: torch.Tensor | None, allowed: torch.Tensor, cache: KVCache,
             head: bool = True) -> torch.Tensor:
        """Run new embedded positions ``x`` (B, t, C) against the cache; logits (B, t, V) of the last layer
        (with ``head=False`` its normalised states (B, t, C), for :meth:`logits`).

        ``bucket``/``allowed``: (B, t, S) for the new queries against all S cached + new keys.
        """
        mask = self.attn_mask(bucket, allowed)
        if x.shape[1] == 1:  # a one-token step attends over whole buffers: mask their unfilled tails once here
            n = cache.length_after(1)
            mask = F.pad(mask, (0, n - mask.shape[-1]), value=float("-inf")) if n > mask.shape[-1] else mask
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, cache, i)
        x = self.ln(x)
        return self.head(x) if head else x

    def logits(self, h: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of normalised states ``h`` (..., C) over the vocabulary, or only over the token ids ``cols``
        (..., len(cols)): a decoding step needs the tokens some sequence may take next, often a small part of
        the vocabulary."""
        return self.head(h) if cols is None else F.linear(h, self.head.weight[cols])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
