"""The sequence part of the random space: token-level transformer language models."""

from __future__ import annotations

import random
from typing import Any

from mad.graph import ArchGraph, GraphBuilder
from mad.graph.passes.attention_cell import feed_forward

from . import layers as L
from .config import RandomSpaceConfig

__all__ = ["sample_sequence_model", "build_sequence_model", "transformer_hparams"]

ATTENTIONS = ("mha", "mqa", "gqa")
MLPS = ("gelu", "swiglu", "relu")
SEQ_NORMS = ("layer_norm", "rms_norm")
PLACEMENTS = ("pre", "post")
RESIDUALS = ("standard", "parallel")
POSITIONS = ("learned", "none")


def width_pairs(cfg: RandomSpaceConfig) -> list[tuple[int, int]]:
    """The ``(d_model, head_dim)`` pairs of the space: head sizes that divide the hidden size."""
    return [(d, h) for d in cfg.d_models for h in cfg.head_dims if d % h == 0]


def kv_options(heads: int) -> list[int]:
    """Grouped-query key/value head counts for ``heads`` query heads (strictly between 1 and ``heads``)."""
    return [k for k in range(2, heads) if heads % k == 0]


def attention_kinds(heads: int) -> list[str]:
    """The attention kinds ``heads`` query heads allow: mha, mqa (> 1 head), gqa (a proper divisor > 1)."""
    return ["mha"] + (["mqa"] if heads > 1 else []) + (["gqa"] if kv_options(heads) else [])


def draw_attention(rng: random.Random, heads: int) -> tuple[str, int]:
    """An attention kind and its key/value head count for ``heads`` query heads."""
    attention = rng.choice(attention_kinds(heads))
    return attention, {"mha": heads, "mqa": 1}.get(attention) or rng.choice(kv_options(heads))


def mlp_hidden(kind: str, ratio: int, d_model: int) -> int:
    """The MLP hidden size: ``ratio * d_model``, or 2/3 of it rounded to a multiple of 8 for SwiGLU."""
    return ratio * d_model if kind != "swiglu" else max(8, round(ratio * d_model * 2 / 3 / 8) * 8)


def transformer_hparams(rng: random.Random, cfg: RandomSpaceConfig) -> dict[str, Any]:
    """Draw the hyperparameters of one transformer language model."""
    d_model, head_dim = rng.choice(width_pairs(cfg))
    heads = d_model // head_dim
    attention, kv_heads = draw_attention(rng, heads)
    mlp = rng.choice(MLPS)
    ratio = rng.choice(cfg.mlp_ratios)
    placement = rng.choice(PLACEMENTS)
    return {
        "d_model": d_model,
        "num_layers": rng.randint(*cfg.num_layers),
        "heads": heads,
        "kv_heads": kv_heads,
        "head_dim": head_dim,
        "attention": attention,
        "fused_qkv": rng.random() < 0.3,
        "causal": rng.random() < 0.7,
        "mlp": mlp,
        "mlp_ratio": ratio,
        "mlp_hidden": mlp_hidden(mlp, ratio, d_model),
        "norm": rng.choice(SEQ_NORMS),
        "placement": placement,
        "residual": rng.choice(RESIDUALS),
        "position": rng.choice(POSITIONS),
        "bias": rng.random() < 0.5,
        "embed_norm": placement == "post" and rng.random() < 0.5,
        "tie_embeddings": rng.random() < 0.3,
    }


class _Transformer:
    """Builds a token-level transformer from :func:`transformer_hparams`."""

    def __init__(self, b: GraphBuilder, hp: dict[str, Any], cfg: RandomSpaceConfig) -> None:
        self.b, self.hp, self.cfg = b, hp, cfg

    def attn(self, x: str, scope: str) -> str:
        hp = self.hp
        return L.attention(self.b, x, hp["heads"], hp["kv_heads"], hp["head_dim"], scope, causal=hp["causal"],
                           fused=hp["fused_qkv"], bias=hp["bias"])

    def mlp(self, x: str, scope: str) -> str:
        b, hp = self.b, self.hp
        return feed_forward(b, x, hp["mlp_hidden"], hp["mlp"], scope, bias=hp["bias"])

    def block(self, x: str, scope: str) -> str:
        b, hp = self.b, self.hp
        norm = hp["norm"]
        add = lambda u, v: L.binary(b, "add", u, v, scope)  # noqa: E731
        if hp["placement"] == "pre":
            h = L.seq_norm(b, x, norm, f"{scope}.norm1")
            if hp["residual"] == "parallel":
                a, m = self.attn(h, f"{scope}.attn"), self.mlp(h, f"{scope}.mlp")
                return add(add(x, a), m)
            x = add(x, self.attn(h, f"{scope}.attn"))
            h = L.seq_norm(b, x, norm, f"{scope}.norm2")
            return add(x, self.mlp(h, f"{scope}.mlp"))
        if hp["residual"] == "parallel":
            a, m = self.attn(x, f"{scope}.attn"), self.mlp(x, f"{scope}.mlp")
            return L.seq_norm(b, add(add(x, a), m), norm, f"{scope}.norm1")
        x = L.seq_norm(b, add(x, self.attn(x, f"{scope}.attn")), norm, f"{scope}.norm1")
        return L.seq_norm(b, add(x, self.mlp(x, f"{scope}.mlp")), norm, f"{scope}.norm2")

    def build(self, ids: str) -> str:
        b, hp, cfg = self.b, self.hp, self.cfg
        d, vocab = hp["d_model"], cfg.vocab_size
        tok = b.op("embedding", ids, num_embeddings=vocab, embedding_dim=d, scope="embeddings.token")  # (B, T, D)
        x = tok
        if hp["position"] == "learned":
            with b.scope("embeddings"):
                table = b.parameter("position", [cfg.positions, d])
            pos = b.op("slice", table, dim=0, start=0, end="T", scope="embeddings")  # (T, D)
            x = L.binary(b, "add", x, pos, "embeddings")
        if hp["embed_norm"]:
            x = L.seq_norm(b, x, hp["norm"], "embeddings.norm")
        for i in range(hp["num_layers"]):
            x = self.block(x, f"blocks.{i}")
        if hp["placement"] == "pre":
            x = L.seq_norm(b, x, hp["norm"], "final_norm")
        tie = {"weight": tok} if hp["tie_embeddings"] else None
        return L.linear(b, x, vocab, "lm_head", bias=False, tie=tie)  # (B, T, vocab)


def sample_sequence_model(rng: random.Random, cfg: RandomSpaceConfig | None = None) -> ArchGraph:
    """Draw one token-level transformer language model.

    Variants: attention full MHA / multi-query / grouped-query (fused or separate
    q/k/v, causal or bidirectional); MLP GELU / ReLU / SwiGLU; layer_norm or
    rms_norm, pre- or post-norm; standard or parallel attention+MLP residual;
    learned position table (a ``parameter`` node of ``cfg.positions`` rows sliced
    to ``T``) or none; tied or separate LM head.

    Shapes:
        input ``input_ids`` (B, T) int64 in ``[0, vocab_size)`` -> logits (B, T, vocab_size);
        ``B`` and ``T`` are symbolic (example sizes ``batch_size`` and ``seq_len``).

    Example:
        >>> g = sample_sequence_model(random.Random(0), RandomSpaceConfig(vocab_size=64, seq_len=16))
        >>> g.nodes[g.outputs[0]].shape, g.dims
        (['B', 'T', 64], {'B': 2, 'T': 16})
    """
    cfg = cfg or RandomSpaceConfig()
    return build_sequence_model(transformer_hparams(rng, cfg), cfg)


def build_sequence_model(hp: dict[str, Any], cfg: RandomSpaceConfig) -> ArchGraph:
    """The language model of a :func:`transformer_hparams` genotype (``hp`` becomes ``meta["hparams"]``).
    Raises :class:`~mad.graph.GraphError` (or ``KeyError``, ...) on an invalid genotype."""
    from .sampling import finish

    b = GraphBuilder("random-transformer", source="random", dims={"B": cfg.batch_size, "T": cfg.seq_len})
    ids = b.input("input_ids", ("B", "T"), "int64", range=[0, cfg.vocab_size])
    b.graph.inputs[0].dims = ["batch", "seq"]
    out = _Transformer(b, hp, cfg).build(ids)
    return finish(b, out, "random-transformer", "sequence", hp)
