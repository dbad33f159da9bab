"""The graph hypernetwork: a Graphormer-style encoder over the IR's node features and a decoder that
emits every parameter of every parameter-owning node, of any shape.

Encoder. Each node starts as the sum of an embedding of its frozen op id, a projection of its ``node_feat``
row (sizes, attrs, parameter counts), embeddings of its in/out degree and of its distance from the inputs,
and the task vector (task id, input shape, classes or vocabulary). ``layers`` pre-norm transformer layers
attend over all nodes of a graph with an additive per-head bias looked up from the forward shortest-path
distance ``i -> j`` and the backward one ``j -> i`` (bucketed; "unreachable" has its own bucket), so the
model sees the whole DAG at once and stays invariant to node order.

Decoder. Each parameter slot's input is the owner node's embedding plus embeddings of the parameter role and
kind. The default ``decoder="tiled"`` maps it to a block ``T`` of ``32 x 32 x 9`` values and tiles it over the
tensor: ``W[a, b, s] = T[a mod 32, b mod 32, s mod 9]`` (``s`` runs over the flattened kernel positions;
vectors tile a 1024-long block). ``decoder="cp"`` instead builds a rank-``R`` CP product
``W[i_1..i_k] = sum_r prod_d F_d[i_d, r]`` with ``F_d = [PE(n_d), E[:n_d]] @ M_d``, fixed sines of the index
plus a learned per-index table, where output ``j`` of a layer and input ``j`` of the next share an encoding.
``bench/ghn_decoders.py`` compares them: fitted to one architecture at a time, the tiled decoder reaches a
far lower loss (the CP product is a low-rank, smooth family that collapses the signal of deep nets). The
decoded tensor gets zero-mean rows and unit RMS, then is normalised per op kind
(:data:`mad.ghn.encode.KINDS`):

* ``weight`` (linear, conv, recurrent, free tensors of rank >= 2): ``g1 * W/rms(W) * s + g2 * Z * s`` with
  ``s = 1/sqrt(fan_in)``, ``Z`` a fixed pseudo-random tensor seeded by the parameter's name and shape
  (full rank, so fine-tuning from the prediction is not stuck in a low-rank subspace) and predicted gains
  ``g1, g2 > 0`` that start at ``cp_gain`` and ``noise_gain`` (the decoded part dominates: the noise is
  invisible to the GHN, so features built on it cannot be read out by predicted later layers);
* ``embedding``: the same with ``s = 1``;
* ``scale`` (norm weights, PReLU slopes): ``1 + a * W/rms(W)``; ``bias``: ``a * W/rms(W)``, ``a`` predicted
  and starting at 0.

The pooled graph embedding (plus log parameter count and log FLOPs, and where the task's estimator reads it,
the metric of the predicted parameters) feeds a per-task linear estimator (or, where it ranks better, a tree
ensemble on the graph's structure, costs and that metric),
fitted after training (:mod:`mad.ghn.quality`), of the metric an architecture reaches after brief training.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .encode import KINDS, MAX_DEGREE, MAX_DEPTH, ROLE_BUCKETS, UNREACHABLE, Batch, GraphInput, ParamSlot

__all__ = ["GHNConfig", "GHNModel", "task_features"]

_LETTERS = "abcdefgh"


@dataclass
class GHNConfig:
    """Hyperparameters of :class:`GHNModel` (saved next to every checkpoint as ``config.json``)."""

    d: int = 128
    layers: int = 4
    heads: int = 8
    ff: int = 256
    pe: int = 32
    rank: int = 16
    factor_heads: int = 3
    num_ops: int = 512
    feat_dim: int = 68
    task_feat_dim: int = 6
    tasks: list[str] = field(default_factory=lambda: ["mnist5k", "digits", "mnist1d", "chars"])
    dropout: float = 0.0
    decoder: str = "tiled"    # "tiled" (a per-slot block tiled to the shape) or "cp" (low-rank CP over index encodings)
    block: tuple[int, int, int] = (32, 32, 9)   # tiled block: out rows, in columns, kernel positions
    index_emb: int = 32       # learned per-index features appended to the fixed ones (0: none)
    max_index: int = 4096     # indices beyond it wrap around
    cp_gain: float = 1.0      # initial scale of the decoded part, in units of the fan-in scale
    noise_gain: float = 0.1   # initial scale of the fixed full-rank part
    # classification heads are predicted for standardized inputs: training standardizes the logits layer's input
    # over the batch, prediction folds statistics over the batch-norm batches into its weight and bias
    head_norm: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GHNConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def task_features(input_shape: tuple[int, ...], num_outputs: int, is_lm: bool) -> torch.Tensor:
    """``(6,)``: log sizes of the last three input dims (0 when absent), input rank, log outputs, is-LM."""
    dims = [0.0, 0.0, 0.0]
    for k, v in enumerate(list(input_shape)[-3:][::-1]):
        dims[2 - k] = math.log1p(v)
    return torch.tensor(dims + [float(len(input_shape)), math.log1p(num_outputs), float(is_lm)])


def _inv_softplus(v: float) -> float:
    return math.log(math.expm1(v))


@lru_cache(maxsize=512)
def _pe(n: int, p: int) -> torch.Tensor:
    """``(n, p)``: half relative-position sines/cosines (period n/f), half absolute ones, unit RMS per column."""
    i = torch.arange(n, dtype=torch.float32)[:, None]
    q = p // 4
    f_rel = torch.arange(1, q + 1, dtype=torch.float32)[None] * (2 * math.pi / max(n, 1))
    f_abs = torch.exp(-torch.arange(q, dtype=torch.float32) * (math.log(1000.0) / max(q - 1, 1)))[None]
    enc = torch.cat([torch.sin(i * f_rel), torch.cos(i * f_rel), torch.sin(i * f_abs), torch.cos(i * f_abs)], 1)
    if enc.shape[1] < p:
        enc = torch.cat([enc, torch.ones(n, p - enc.shape[1])], 1)
    return enc * math.sqrt(2.0)


def _repeat_to(x: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """``x`` repeated periodically along ``dim`` to length ``n``: index ``i`` holds ``x``'s index ``i mod size``."""
    m = x.shape[dim]
    if n > m:
        reps = [1] * x.dim()
        reps[dim] = -(-n // m)
        x = x.repeat(reps)
    return x.narrow(dim, 0, n)


def slot_noise(slot: ParamSlot) -> torch.Tensor:
    """The fixed full-rank part of a slot: standard normal, seeded by the parameter's name and shape."""
    seed = zlib.crc32(f"{slot.fqn}|{slot.shape}".encode())
    return torch.randn(slot.shape, generator=torch.Generator().manual_seed(seed))


class _Layer(nn.Module):
    def __init__(self, c: GHNConfig):
        super().__init__()
        self.heads = c.heads
        self.ln1, self.ln2 = nn.LayerNorm(c.d), nn.LayerNorm(c.d)
        self.qkv = nn.Linear(c.d, 3 * c.d)
        self.proj = nn.Linear(c.d, c.d)
        self.ff = nn.Sequential(nn.Linear(c.d, c.ff), nn.GELU(), nn.Linear(c.ff, c.d))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        G, N, D = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(G, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        h = h + self.drop(self.proj(a.transpose(1, 2).reshape(G, N, D)))
        return h + self.drop(self.ff(self.ln2(h)))


class GHNModel(nn.Module):
    """Graph hypernetwork. ``forward(batch, task_ids, task_feats)`` returns, per graph, a dict
    ``state-dict name -> predicted tensor``, the pooled graph embeddings ``(G, d)`` and the weight-norm penalty
    (zero with ``penalty=False``, which skips computing it)."""

    def __init__(self, config: GHNConfig | None = None):
        super().__init__()
        c = self.config = config or GHNConfig()
        if c.d % c.heads:
            raise ValueError(f"d={c.d} must be a multiple of heads={c.heads}")
        self.op_emb = nn.Embedding(c.num_ops, c.d)
        self.feat = nn.Sequential(nn.Linear(c.feat_dim, c.d), nn.GELU(), nn.Linear(c.d, c.d))
        self.in_deg = nn.Embedding(MAX_DEGREE + 1, c.d)
        self.out_deg = nn.Embedding(MAX_DEGREE + 1, c.d)
        self.depth = nn.Embedding(MAX_DEPTH + 1, c.d)
        self.task_emb = nn.Embedding(len(c.tasks) + 1, c.d)  # 0: a task the GHN was not trained on
        self.task_feat = nn.Linear(c.task_feat_dim, c.d)
        self.fwd_bias = nn.Embedding(UNREACHABLE + 1, c.heads)
        self.bwd_bias = nn.Embedding(UNREACHABLE + 1, c.heads)
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c.layers))
        self.ln = nn.LayerNorm(c.d)
        # decoder
        self.role_emb = nn.Embedding(ROLE_BUCKETS, c.d)
        self.kind_emb = nn.Embedding(len(KINDS), c.d)
        self.slot_mlp = nn.Sequential(nn.Linear(c.d, c.d), nn.GELU(), nn.LayerNorm(c.d))
        self.gains = nn.Linear(c.d, 3)
        if c.decoder == "tiled":
            self.tile = nn.Linear(c.d, math.prod(c.block))
            self.tile_vec = nn.Linear(c.d, c.block[0] * c.block[1])
        elif c.decoder == "cp":
            self.index = nn.Parameter(torch.randn(c.factor_heads, c.max_index, c.index_emb)) if c.index_emb else None
            self.factors = nn.Linear(c.d, c.factor_heads * (c.pe + c.index_emb) * c.rank)
        else:
            raise ValueError(f"decoder {c.decoder!r}: use 'tiled' or 'cp'")
        self._reset()

    def _reset(self) -> None:
        nn.init.zeros_(self.gains.weight)
        nn.init.zeros_(self.gains.bias)
        for emb in (self.fwd_bias, self.bwd_bias):
            nn.init.zeros_(emb.weight)
        if self.config.decoder == "cp":
            nn.init.normal_(self.factors.weight, std=1.0 / math.sqrt(self.config.d))

    def task_ids(self, names: list[str]) -> torch.Tensor:
        return torch.tensor([self.config.tasks.index(t) + 1 if t in self.config.tasks else 0 for t in names])

    # ------------------------------------------------------------------ encoder
    def embed(self, batch: Batch, task_ids: torch.Tensor, task_feats: torch.Tensor) -> torch.Tensor:
        """Node embeddings ``(G, N, d)``."""
        c = self.config
        op = torch.where(batch.op < c.num_ops, batch.op, torch.full_like(batch.op, 4))  # 4: UNK
        h = (self.op_emb(op) + self.feat(batch.feat) + self.in_deg(batch.in_deg) + self.out_deg(batch.out_deg)
             + self.depth(batch.depth))
        h = h + (self.task_emb(task_ids) + self.task_feat(task_feats))[:, None, :]
        bias = (self.fwd_bias(batch.fwd) + self.bwd_bias(batch.bwd)).permute(0, 3, 1, 2)
        bias = bias.masked_fill(~batch.mask[:, None, None, :], float("-inf"))
        for layer in self.layers:
            h = layer(h, bias)
        return self.ln(h) * batch.mask[..., None]

    @staticmethod
    def pool(h: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Mean of the node embeddings ``(G, N, d)`` over each graph's real nodes: ``(G, d)``."""
        return h.sum(1) / batch.mask.sum(1, keepdim=True).clamp(min=1)

    # ------------------------------------------------------------------ decoder
    def forward(self, batch: Batch, task_ids: torch.Tensor, task_feats: torch.Tensor, penalty: bool = True):
        c = self.config
        h = self.embed(batch, task_ids, task_feats)
        pooled = self.pool(h, batch)
        rows, index = [], []
        for g, gi in enumerate(batch.graphs):
            for k, s in enumerate(gi.slots):
                rows.append((g, s.node, s.role_id, s.kind))
                index.append((g, k))
        out: list[dict[str, torch.Tensor]] = [{} for _ in batch.graphs]
        norm = h.new_zeros(())  # the weight-norm penalty
        if not rows:
            return out, pooled, norm
        r = torch.tensor(rows, device=h.device)
        u = h[r[:, 0], r[:, 1]] + self.role_emb(r[:, 2]) + self.kind_emb(r[:, 3])
        u = self.slot_mlp(u)
        gains = self.gains(u)
        groups: dict[tuple, list[int]] = {}
        for j, (g, k) in enumerate(index):
            s = batch.graphs[g].slots[k]
            groups.setdefault((s.shape, s.kind), []).append(j)
        total = 0
        for (shape, kind), js in groups.items():
            jt = torch.tensor(js, device=h.device)
            W = self._tensor(shape, u[jt])                                   # (K, *shape), unit RMS
            gk = gains[jt]
            view = (-1,) + (1,) * len(shape)
            if KINDS[kind] in ("weight", "embedding"):
                s_ref = 1.0 if KINDS[kind] == "embedding" else 1.0 / math.sqrt(max(1, math.prod(shape[1:])))
                g1 = F.softplus(gk[:, 0] + _inv_softplus(c.cp_gain)).view(view)
                g2 = F.softplus(gk[:, 1] + _inv_softplus(c.noise_gain)).view(view)
                noises = [self._noise(batch.graphs[index[j][0]], index[j][1]) for j in js]
                noise = (noises[0][None] if len(js) == 1 else torch.stack(noises)).to(W)
                T = (g1 * W + g2 * noise) * s_ref
                if penalty:
                    norm = norm + ((T / s_ref) ** 2).mean(dim=tuple(range(1, T.dim()))).sum()
            else:
                base = 1.0 if KINDS[kind] == "scale" else 0.0
                T = base + gk[:, 2].view(view) * W
                if penalty:
                    norm = norm + (gk[:, 2] ** 2).sum()
            total += len(js)
            for t, j in zip(T.unbind(0), js):
                g, k = index[j]
                out[g][batch.graphs[g].slots[k].fqn] = t
        return out, pooled, norm / max(total, 1)

    def _tensor(self, shape: tuple[int, ...], u: torch.Tensor) -> torch.Tensor:
        c = self.config
        dims = shape if shape else (1,)
        if c.decoder == "tiled":
            W = self._tiled(dims, u)
        else:
            W = self._cp(dims, u)
        if len(dims) >= 2:  # zero-mean rows, as in a random init: no input-independent offsets downstream
            W = W - W.mean(dim=tuple(range(2, W.dim())), keepdim=True)
        rms = W.pow(2).mean(dim=tuple(range(1, W.dim())), keepdim=True).add(1e-8).sqrt()
        return (W / rms).reshape((W.shape[0],) + tuple(shape))

    def _tiled(self, dims: tuple[int, ...], u: torch.Tensor) -> torch.Tensor:
        """``W[a, b, s] = T[a mod Bo, b mod Bi, s mod Bk]`` (``s`` the flattened trailing dims), built by repeating
        the block along each dim (the trailing one first, so a block wider than the tensor is cut before it grows)."""
        bo, bi, bk = self.config.block
        if len(dims) == 1:
            return _repeat_to(self.tile_vec(u), 1, dims[0])
        W = _repeat_to(self.tile(u).view(-1, bo, bi, bk), 3, math.prod(dims[2:]))
        return _repeat_to(_repeat_to(W, 2, dims[1]), 1, dims[0])

    def _cp(self, dims: tuple[int, ...], u: torch.Tensor) -> torch.Tensor:
        c = self.config
        M = self.factors(u).view(-1, c.factor_heads, c.pe + c.index_emb, c.rank)
        factors = []
        for d, n in enumerate(dims):
            head = min(d, c.factor_heads - 1)
            pe = _pe(n, c.pe).to(M)
            if self.index is not None:
                rows = torch.arange(n, device=M.device) % c.max_index
                pe = torch.cat([pe, self.index[head, rows]], 1)
            factors.append(torch.einsum("np,kpr->knr", pe, M[:, head]))
        letters = _LETTERS[:len(dims)]
        spec = ",".join(f"k{a}r" for a in letters) + "->k" + letters
        return torch.einsum(spec, *factors)

    @staticmethod
    def _noise(gi: GraphInput, k: int) -> torch.Tensor:
        cache = gi.__dict__.setdefault("_noise", {})
        if k not in cache:
            cache[k] = slot_noise(gi.slots[k])
        return cache[k]
