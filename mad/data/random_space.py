"""A random architecture space built directly on the ArchGraph IR.

In the spirit of DeepNets-1M, :func:`sample` draws image classifiers (a stem,
stages of small random cells, a pooled linear head) or sequence models
(token embedding, random transformer-block variants, an LM head) and returns
them as :class:`~mad.graph.ArchGraph` s. A sample is a pure function of its
seed and the :class:`RandomSpaceConfig`: the same seed gives the same JSON.

Graphs are built with every node's output shape filled in as it is added and
FLOPs summed with each op's own FLOP rule, so the parameter and FLOP ranges
can be enforced by rejection without an interpreter walk per try;
``g.validate()`` re-runs the interpreter and checks those shapes.

Example:
    >>> cfg = RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=500_000)
    >>> g = sample(7, cfg)
    >>> g.meta["family"], g.meta["num_params"] <= 500_000
    ('random-cnn', True)
    >>> logits = g.to_module()(*g.example_inputs())   # (2, 10)
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from mad.graph import ArchGraph, TensorSpec
from mad.graph.ops import get_op

__all__ = [
    "RandomSpaceConfig",
    "RandomSpaceError",
    "sample",
    "sample_many",
    "sample_image_classifier",
    "sample_sequence_model",
    "CELL_OPS",
]

log = logging.getLogger(__name__)

SPACE_VERSION = 1

# cell ops of the image space and their sampling weights
CELL_OPS: dict[str, float] = {
    "conv3x3": 3.0,
    "conv1x1": 1.0,
    "conv5x5": 1.0,
    "dw_conv3x3": 2.0,
    "dw_conv5x5": 1.0,
    "dil_conv3x3": 1.0,
    "max_pool3x3": 1.0,
    "avg_pool3x3": 1.0,
    "attention": 1.0,
    "mlp": 1.0,
    "identity": 1.0,
}
_PARAMETRIC = {"conv3x3", "conv1x1", "conv5x5", "dw_conv3x3", "dw_conv5x5", "dil_conv3x3", "attention", "mlp"}
_ACTIVATIONS = ("relu", "gelu", "silu", "hardswish")
_CNN_NORMS = ("batch_norm", "group_norm", "layer_norm")
_BN_ATTRS = {"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True}


class RandomSpaceError(RuntimeError):
    """No architecture within the configured ranges was found, or the config is inconsistent."""


@dataclass
class RandomSpaceConfig:
    """What :func:`sample` draws from.

    Args:
        modality: ``"image"``, ``"sequence"`` or ``"any"`` (each sample picks one).
        batch_size: batch dim of the graph inputs (FLOPs are counted for it).
        image_shape: ``(channels, height, width)`` of image inputs.
        num_classes: outputs of the image classifier head.
        seq_len: tokens per sequence.
        vocab_size: token ids lie in ``[0, vocab_size)``; the LM head predicts them.
        min_params, max_params: accepted parameter counts (``None``: no upper bound).
        min_flops, max_flops: accepted FLOPs of one forward pass over the input batch.
        num_stages: inclusive range of image stages (capped by how often the input can be halved).
        cells_per_stage: inclusive range of cells per stage.
        cell_nodes: inclusive range of op nodes per cell.
        widths: channel widths the image stages choose from (stage widths never shrink).
        cell_ops: image cell ops and their sampling weights (keys of :data:`CELL_OPS`).
        max_attn_tokens: spatial self-attention only where ``H * W`` is at most this;
            finer stages use a 3x3 conv in its place.
        num_layers: inclusive range of transformer blocks.
        d_models: hidden sizes the transformer chooses from.
        head_dims: attention head sizes (a hidden size takes those that divide it).
        mlp_ratios: transformer MLP hidden size over model size.
        max_tries: rejection-sampling budget per :func:`sample` call.
        seed: first seed of :func:`sample_many`.

    Example:
        >>> cfg = RandomSpaceConfig(modality="sequence", vocab_size=128, num_layers=(2, 4)).check()
        >>> sample(0, cfg).nodes[sample(0, cfg).outputs[0]].shape
        [2, 32, 128]
    """

    modality: str = "any"
    batch_size: int = 2
    image_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    seq_len: int = 32
    vocab_size: int = 256
    min_params: int = 0
    max_params: int | None = 3_000_000
    min_flops: int = 0
    max_flops: int | None = 2_000_000_000
    num_stages: tuple[int, int] = (1, 4)
    cells_per_stage: tuple[int, int] = (1, 3)
    cell_nodes: tuple[int, int] = (1, 4)
    widths: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128, 192, 256)
    cell_ops: dict[str, float] = field(default_factory=lambda: dict(CELL_OPS))
    max_attn_tokens: int = 256
    num_layers: tuple[int, int] = (1, 6)
    d_models: tuple[int, ...] = (32, 48, 64, 96, 128, 192, 256)
    head_dims: tuple[int, ...] = (16, 32, 64)
    mlp_ratios: tuple[int, ...] = (2, 3, 4)
    max_tries: int = 200
    seed: int = 0

    def check(self) -> "RandomSpaceConfig":
        """Raise :class:`RandomSpaceError` naming the first inconsistent field; return self."""

        def bad(name: str, why: str) -> RandomSpaceError:
            return RandomSpaceError(f"RandomSpaceConfig.{name}: {why}")

        if self.modality not in ("image", "sequence", "any"):
            raise bad("modality", f"must be 'image', 'sequence' or 'any', got {self.modality!r}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise bad("image_shape", f"must be (channels, height, width) of positive ints, got {self.image_shape}")
        for name in ("batch_size", "num_classes", "seq_len", "vocab_size", "max_tries", "max_attn_tokens"):
            if getattr(self, name) < 1:
                raise bad(name, f"must be >= 1, got {getattr(self, name)}")
        for name in ("num_stages", "cells_per_stage", "cell_nodes", "num_layers"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise bad(name, f"must be an inclusive range (lo, hi) with 1 <= lo <= hi, got {(lo, hi)}")
        for name in ("widths", "d_models", "head_dims", "mlp_ratios"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise bad(name, f"must be a non-empty tuple of positive ints, got {values}")
        if not any(d % h == 0 for d in self.d_models for h in self.head_dims):
            raise bad("head_dims", f"no head size in {self.head_dims} divides a hidden size in {self.d_models}")
        unknown = sorted(set(self.cell_ops) - set(CELL_OPS))
        if unknown:
            raise bad("cell_ops", f"unknown ops {unknown}; choose from {sorted(CELL_OPS)}")
        if not any(w > 0 and op in _PARAMETRIC for op, w in self.cell_ops.items()):
            raise bad("cell_ops", f"needs a positive weight on at least one op with parameters: {sorted(_PARAMETRIC)}")
        if self.max_params is not None and self.max_params < self.min_params:
            raise bad("max_params", f"{self.max_params} is below min_params {self.min_params}")
        if self.max_flops is not None and self.max_flops < self.min_flops:
            raise bad("max_flops", f"{self.max_flops} is below min_flops {self.min_flops}")
        return self


# --------------------------------------------------------------------------- builder
def _conv_out(size: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


class _Builder:
    """Adds nodes whose output shapes are known, and sums their FLOPs with each op's FLOP rule."""

    def __init__(self, g: ArchGraph) -> None:
        self.g = g
        self.flops = 0

    def shape(self, nid: str) -> list:
        return self.g.nodes[nid].shape  # type: ignore[return-value]

    def add(
        self,
        op: str,
        inputs: list[str],
        shape: list,
        scope: str,
        attrs: dict[str, Any] | None = None,
        params: dict[str, list[int]] | None = None,
        param_names: dict[str, str] | None = None,
        dtype: Any = "float32",
    ) -> str:
        attrs, params = attrs or {}, params or {}
        nid = self.g.add_node(
            op, inputs, attrs=attrs, params=params, param_names=param_names, scope=scope, shape=shape, dtype=dtype
        )
        rule = get_op(op).flops
        if rule is not None:
            self.flops += int(rule([self.g.nodes[i].shape for i in inputs], shape, attrs, params))
        return nid

    # ------------------------------------------------------------ layers
    def conv(self, x: str, cout: int, k: int, scope: str, stride: int = 1, dilation: int = 1, groups: int = 1,
             bias: bool = False, pad: int | None = None) -> str:
        """(B, C, H, W) -> (B, cout, H', W'); "same" padding unless ``pad`` is given."""
        b, c, h, w = self.shape(x)
        pad = dilation * (k - 1) // 2 if pad is None else pad
        attrs: dict[str, Any] = {"stride": [stride, stride], "padding": [pad, pad], "dilation": [dilation, dilation],
                                 "groups": groups}
        params = {"weight": [cout, c // groups, k, k]}
        if bias:
            params["bias"] = [cout]
        else:
            attrs["bias"] = None
        shape = [b, cout, _conv_out(h, k, stride, pad, dilation), _conv_out(w, k, stride, pad, dilation)]
        return self.add("conv2d", [x], shape, scope, attrs, params)

    def linear(self, x: str, out: int, scope: str, bias: bool = True, param_names: dict[str, str] | None = None) -> str:
        shape = self.shape(x)
        params = {"weight": [out, shape[-1]]}
        attrs: dict[str, Any] = {}
        if bias:
            params["bias"] = [out]
        else:
            attrs["bias"] = None
        return self.add("linear", [x], shape[:-1] + [out], scope, attrs, params, param_names)

    def act(self, x: str, kind: str, scope: str) -> str:
        return self.add(kind, [x], self.shape(x), scope)

    def binary(self, op: str, a: str, b: str, scope: str) -> str:
        return self.add(op, [a, b], self.shape(a), scope)

    def seq_norm(self, x: str, kind: str, scope: str) -> str:
        """layer_norm or rms_norm over the last dim, with a learned scale (and shift for layer_norm)."""
        d = self.shape(x)[-1]
        if kind == "rms_norm":
            return self.add("rms_norm", [x], self.shape(x), scope, {"normalized_shape": [d], "eps": 1e-6},
                            {"weight": [d]})
        return self.add("layer_norm", [x], self.shape(x), scope, {"normalized_shape": [d], "eps": 1e-5},
                        {"weight": [d], "bias": [d]})

    def norm2d(self, x: str, kind: str, scope: str) -> str:
        """Normalise (B, C, H, W) features: batch norm, group norm, or layer norm over channels."""
        b, c, h, w = self.shape(x)
        if kind == "batch_norm":
            params = {r: [c] for r in ("weight", "bias", "running_mean", "running_var")}
            return self.add("batch_norm", [x], [b, c, h, w], scope, dict(_BN_ATTRS), params)
        if kind == "group_norm":
            groups = next(gr for gr in (32, 16, 8, 4, 2, 1) if c % gr == 0 and (c // gr >= 2 or gr == 1))
            return self.add("group_norm", [x], [b, c, h, w], scope, {"num_groups": groups, "eps": 1e-5},
                            {"weight": [c], "bias": [c]})
        t = self.add("permute", [x], [b, h, w, c], scope, {"dims": [0, 2, 3, 1]})
        t = self.seq_norm(t, "layer_norm", scope)
        return self.add("permute", [t], [b, c, h, w], scope + ".out", {"dims": [0, 3, 1, 2]})

    def pool(self, x: str, kind: str, k: int, stride: int, scope: str) -> str:
        b, c, h, w = self.shape(x)
        pad = k // 2 if stride == 1 else 0
        shape = [b, c, _conv_out(h, k, stride, pad), _conv_out(w, k, stride, pad)]
        attrs: dict[str, Any] = {"kernel_size": [k, k], "stride": [stride, stride], "padding": [pad, pad]}
        if kind == "avg_pool2d" and pad:
            attrs["count_include_pad"] = False
        return self.add(kind, [x], shape, scope, attrs)

    def attention(self, x: str, heads: int, kv_heads: int, head_dim: int, scope: str, causal: bool = False,
                  fused: bool = False, bias: bool = True) -> str:
        """Multi-head attention over (B, T, D) with ``kv_heads`` key/value heads; returns (B, T, D)."""
        b, t, d = self.shape(x)
        qd, kd = heads * head_dim, kv_heads * head_dim
        if fused:
            qkv = self.linear(x, qd + 2 * kd, f"{scope}.qkv_proj", bias=bias)
            parts = [[b, t, qd], [b, t, kd], [b, t, kd]]
            split = self.add("split_with_sizes", [qkv], parts, scope, {"split_sizes": [qd, kd, kd], "dim": -1},
                             dtype=["float32"] * 3)
            q, k, v = (self.add("getitem", [split], parts[i], scope, {"index": i}) for i in range(3))
        else:
            q = self.linear(x, qd, f"{scope}.q_proj", bias=bias)
            k = self.linear(x, kd, f"{scope}.k_proj", bias=bias)
            v = self.linear(x, kd, f"{scope}.v_proj", bias=bias)
        split_heads = []
        for y, n in ((q, heads), (k, kv_heads), (v, kv_heads)):
            y = self.add("view", [y], [b, t, n, head_dim], scope, {"size": [-1, t, n, head_dim]})
            split_heads.append(self.add("transpose", [y], [b, n, t, head_dim], scope, {"dim0": 1, "dim1": 2}))
        attrs: dict[str, Any] = {"attn_mask": None, "is_causal": causal}
        if kv_heads != heads:
            attrs["enable_gqa"] = True
        o = self.add("scaled_dot_product_attention", split_heads, [b, heads, t, head_dim], scope, attrs)
        o = self.add("transpose", [o], [b, t, heads, head_dim], scope, {"dim0": 1, "dim1": 2})
        o = self.add("reshape", [o], [b, t, qd], scope, {"shape": [-1, t, qd]})
        return self.linear(o, d, f"{scope}.o_proj", bias=bias)


# --------------------------------------------------------------------------- image space
def _choice(rng: random.Random, weights: dict[str, float]) -> str:
    keys = [k for k, w in weights.items() if w > 0]
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _sample_cell(rng: random.Random, cfg: RandomSpaceConfig) -> dict[str, Any]:
    """A cell genotype: nodes (op, inputs), how loose ends merge, and whether the cell is residual.

    Input index 0 is the cell input; node ``i`` is value ``i + 1``.
    """
    n = rng.randint(*cfg.cell_nodes)
    nodes = []
    for i in range(n):
        k = 1 if i == 0 or rng.random() < 0.6 else 2
        inputs = sorted(rng.sample(range(i + 1), k))
        nodes.append({"op": _choice(rng, cfg.cell_ops), "inputs": inputs})
    if not any(nd["op"] in _PARAMETRIC for nd in nodes):  # every cell learns something
        nodes[-1]["op"] = _choice(rng, {k: w for k, w in cfg.cell_ops.items() if k in _PARAMETRIC})
    return {
        "nodes": nodes,
        "merge": rng.choice(["sum", "concat"]),
        "residual": rng.random() < 0.5,
        "mlp_ratio": rng.choice([2, 4]),
        "head_dim": rng.choice([16, 32]),
    }


def _cnn_hparams(rng: random.Random, cfg: RandomSpaceConfig) -> dict[str, Any]:
    side = min(cfg.image_shape[1:])
    hp: dict[str, Any] = {
        "norm": rng.choices(_CNN_NORMS, weights=[2, 1, 1])[0],
        "activation": rng.choice(_ACTIVATIONS),
        "order": rng.choice(["post", "pre"]),  # conv-norm-act or act-conv-norm
    }
    kinds = ["conv"] + (["patchify"] if side >= 16 else [])
    stem = {"kind": rng.choice(kinds)}
    if stem["kind"] == "conv":
        stem["kernel"] = rng.choice([3, 5, 7] if side >= 32 else [3])
        stem["stride"] = 2 if side >= 32 and rng.random() < 0.4 else 1
    else:
        stem["patch"] = rng.choice([2, 4] if side >= 32 else [2])
        stem["stride"] = stem["patch"]
    hp["stem"] = stem
    side //= stem["stride"]  # a lower bound on the stem's output size
    max_down = 0
    while side >= 4:  # every downsampling keeps at least 2x2
        side //= 2
        max_down += 1
    num_stages = min(rng.randint(*cfg.num_stages), 1 + max_down)
    widths = sorted(set(cfg.widths))
    width = rng.choice(widths[: max(1, (len(widths) + 1) // 2)])
    shared_cell = _sample_cell(rng, cfg)
    hp["downsample"] = rng.choice(["conv", "max_pool", "avg_pool"])
    stages = []
    for s in range(num_stages):
        if s > 0:
            width = rng.choice([x for x in widths if width <= x <= 2 * width] or [width])
        cell = shared_cell if rng.random() < 0.7 else _sample_cell(rng, cfg)
        stages.append({"width": width, "cells": rng.randint(*cfg.cells_per_stage), "cell": cell})
    hp["stages"] = stages
    hp["head"] = {
        "expand": rng.choice([0, 0, 2, 4]),  # 1x1 conv to k x width before pooling (0: none)
        "pool": rng.choice(["adaptive_avg", "mean"]),
        "hidden": rng.choice([0, 0, 128, 256]),
    }
    return hp


class _CNN:
    """Builds an image classifier from :func:`_cnn_hparams`."""

    def __init__(self, bld: _Builder, hp: dict[str, Any], cfg: RandomSpaceConfig) -> None:
        self.b, self.hp, self.cfg = bld, hp, cfg

    def conv_unit(self, x: str, cout: int, k: int, scope: str, stride: int = 1, act: bool = True) -> str:
        """conv-norm-act (post order) or act-conv-norm (pre order)."""
        b, hp = self.b, self.hp
        if hp["order"] == "pre" and act:
            x = b.act(x, hp["activation"], f"{scope}.act")
        x = b.conv(x, cout, k, f"{scope}.conv", stride=stride)
        x = b.norm2d(x, hp["norm"], f"{scope}.norm")
        if hp["order"] == "post" and act:
            x = b.act(x, hp["activation"], f"{scope}.act")
        return x

    def separable(self, x: str, k: int, dilation: int, scope: str) -> str:
        b, hp = self.b, self.hp
        c = b.shape(x)[1]
        if hp["order"] == "pre":
            x = b.act(x, hp["activation"], f"{scope}.act")
        x = b.conv(x, c, k, f"{scope}.dw", dilation=dilation, groups=c)
        x = b.conv(x, c, 1, f"{scope}.pw")
        x = b.norm2d(x, hp["norm"], f"{scope}.norm")
        if hp["order"] == "post":
            x = b.act(x, hp["activation"], f"{scope}.act")
        return x

    def spatial_attention(self, x: str, head_dim: int, scope: str) -> str:
        b = self.b
        bs, c, h, w = b.shape(x)
        t = b.add("flatten", [x], [bs, c, h * w], scope, {"start_dim": 2})
        t = b.add("transpose", [t], [bs, h * w, c], scope, {"dim0": 1, "dim1": 2})
        t = b.seq_norm(t, "layer_norm", f"{scope}.norm")
        heads = max(1, c // head_dim) if c % head_dim == 0 else 1
        t = b.attention(t, heads, heads, c // heads, scope)
        t = b.add("transpose", [t], [bs, c, h * w], scope, {"dim0": 1, "dim1": 2})
        return b.add("reshape", [t], [bs, c, h, w], scope, {"shape": [-1, c, h, w]})

    def op(self, name: str, x: str, cell: dict[str, Any], scope: str) -> str:
        b, hp = self.b, self.hp
        c = b.shape(x)[1]
        if name.startswith("conv"):
            return self.conv_unit(x, c, int(name[4]), scope)
        if name.startswith("dw_conv"):
            return self.separable(x, int(name[7]), 1, scope)
        if name == "dil_conv3x3":
            return self.separable(x, 3, 2, scope)
        if name in ("max_pool3x3", "avg_pool3x3"):
            return b.pool(x, name[:3] + "_pool2d", 3, 1, scope)
        if name == "attention":
            return self.spatial_attention(x, cell["head_dim"], scope)
        if name == "mlp":
            y = b.conv(x, c * cell["mlp_ratio"], 1, f"{scope}.fc1", bias=True)
            y = b.act(y, hp["activation"], f"{scope}.act")
            return b.conv(y, c, 1, f"{scope}.fc2", bias=True)
        if name == "identity":
            return x
        raise RandomSpaceError(f"cell op {name!r} is not in CELL_OPS {sorted(CELL_OPS)}")

    def cell(self, x: str, cell: dict[str, Any], scope: str, attn_ok: bool) -> str:
        b = self.b
        values = [x]
        used: set[int] = set()
        for i, nd in enumerate(cell["nodes"]):
            ins = [values[j] for j in nd["inputs"]]
            used.update(nd["inputs"])
            h = ins[0] if len(ins) == 1 else b.binary("add", ins[0], ins[1], f"{scope}.n{i}")
            name = nd["op"] if attn_ok or nd["op"] != "attention" else "conv3x3"
            values.append(self.op(name, h, cell, f"{scope}.n{i}"))
        ends = [values[i] for i in range(1, len(values)) if i not in used]
        ends = list(dict.fromkeys(ends))  # identity nodes may repeat a value
        if len(ends) == 1:
            out = ends[0]
        elif cell["merge"] == "sum":
            out = ends[0]
            for e in ends[1:]:
                out = b.binary("add", out, e, f"{scope}.merge")
        else:
            bs, c, h, w = b.shape(x)
            attrs = {"tensors": ["%"] * len(ends), "dim": 1}
            cat = b.add("cat", ends, [bs, c * len(ends), h, w], f"{scope}.merge", attrs)
            out = b.conv(cat, c, 1, f"{scope}.merge.conv")
            out = b.norm2d(out, self.hp["norm"], f"{scope}.merge.norm")
        if cell["residual"] and out != x:
            out = b.binary("add", out, x, f"{scope}.residual")
        return out

    def downsample(self, x: str, cout: int, scope: str) -> str:
        b, kind = self.b, self.hp["downsample"]
        if kind == "conv":
            return self.conv_unit(x, cout, 3, scope, stride=2, act=False)
        x = b.pool(x, "max_pool2d" if kind == "max_pool" else "avg_pool2d", 2, 2, f"{scope}.pool")
        if b.shape(x)[1] != cout:
            x = b.conv(x, cout, 1, f"{scope}.proj.conv")
            x = b.norm2d(x, self.hp["norm"], f"{scope}.proj.norm")
        return x

    def build(self, x: str) -> str:
        b, hp, cfg = self.b, self.hp, self.cfg
        stem, stages = hp["stem"], hp["stages"]
        w0 = stages[0]["width"]
        if stem["kind"] == "conv":
            x = b.conv(x, w0, stem["kernel"], "stem.conv", stride=stem["stride"])
        else:
            x = b.conv(x, w0, stem["patch"], "stem.conv", stride=stem["patch"], pad=0)  # non-overlapping patches
        x = b.norm2d(x, hp["norm"], "stem.norm")
        x = b.act(x, hp["activation"], "stem.act")
        for s, st in enumerate(stages):
            if s > 0:
                x = self.downsample(x, st["width"], f"stages.{s}.down")
            _, _, h, w = b.shape(x)
            st["resolution"] = [h, w]
            for c in range(st["cells"]):
                x = self.cell(x, st["cell"], f"stages.{s}.cells.{c}", attn_ok=h * w <= cfg.max_attn_tokens)
        head = hp["head"]
        if head["expand"]:
            x = self.conv_unit(x, b.shape(x)[1] * head["expand"], 1, "head.expand")
        bs, c = b.shape(x)[:2]
        if head["pool"] == "adaptive_avg":
            x = b.add("adaptive_avg_pool2d", [x], [bs, c, 1, 1], "head.pool", {"output_size": [1, 1]})
            x = b.add("flatten", [x], [bs, c], "head.pool", {"start_dim": 1})
        else:
            x = b.add("mean", [x], [bs, c], "head.pool", {"dim": [2, 3]})
        if head["hidden"]:
            x = b.linear(x, head["hidden"], "head.hidden")
            x = b.act(x, hp["activation"], "head.act")
        return b.linear(x, cfg.num_classes, "head.fc")


# --------------------------------------------------------------------------- sequence space
def _transformer_hparams(rng: random.Random, cfg: RandomSpaceConfig) -> dict[str, Any]:
    pairs = [(d, h) for d in cfg.d_models for h in cfg.head_dims if d % h == 0]
    d_model, head_dim = rng.choice(pairs)
    heads = d_model // head_dim
    kv_options = [k for k in range(2, heads) if heads % k == 0]
    kinds = ["mha"] + (["mqa"] if heads > 1 else []) + (["gqa"] if kv_options else [])
    attention = rng.choice(kinds)
    kv_heads = {"mha": heads, "mqa": 1}.get(attention) or rng.choice(kv_options)
    mlp = rng.choice(["gelu", "swiglu", "relu"])
    ratio = rng.choice(cfg.mlp_ratios)
    hidden = ratio * d_model if mlp != "swiglu" else max(8, round(ratio * d_model * 2 / 3 / 8) * 8)
    placement = rng.choice(["pre", "post"])
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
        "mlp_hidden": hidden,
        "norm": rng.choice(["layer_norm", "rms_norm"]),
        "placement": placement,
        "residual": rng.choice(["standard", "parallel"]),
        "position": rng.choice(["learned", "none"]),
        "bias": rng.random() < 0.5,
        "embed_norm": placement == "post" and rng.random() < 0.5,
        "tie_embeddings": rng.random() < 0.3,
    }


class _Transformer:
    """Builds a token-level transformer from :func:`_transformer_hparams`."""

    def __init__(self, bld: _Builder, hp: dict[str, Any], cfg: RandomSpaceConfig) -> None:
        self.b, self.hp, self.cfg = bld, hp, cfg

    def attn(self, x: str, scope: str) -> str:
        hp = self.hp
        return self.b.attention(x, hp["heads"], hp["kv_heads"], hp["head_dim"], scope, causal=hp["causal"],
                                fused=hp["fused_qkv"], bias=hp["bias"])

    def mlp(self, x: str, scope: str) -> str:
        b, hp = self.b, self.hp
        d, f, bias = b.shape(x)[-1], hp["mlp_hidden"], hp["bias"]
        if hp["mlp"] == "swiglu":
            gate = b.linear(x, f, f"{scope}.gate_proj", bias=bias)
            up = b.linear(x, f, f"{scope}.up_proj", bias=bias)
            h = b.binary("mul", b.act(gate, "silu", f"{scope}.act"), up, scope)
            return b.linear(h, d, f"{scope}.down_proj", bias=bias)
        h = b.linear(x, f, f"{scope}.fc1", bias=bias)
        h = b.act(h, hp["mlp"], f"{scope}.act")
        return b.linear(h, d, f"{scope}.fc2", bias=bias)

    def block(self, x: str, scope: str) -> str:
        b, hp = self.b, self.hp
        norm = hp["norm"]
        if hp["placement"] == "pre":
            h = b.seq_norm(x, norm, f"{scope}.norm1")
            if hp["residual"] == "parallel":
                a, m = self.attn(h, f"{scope}.attn"), self.mlp(h, f"{scope}.mlp")
                return b.binary("add", b.binary("add", x, a, scope), m, scope)
            x = b.binary("add", x, self.attn(h, f"{scope}.attn"), scope)
            h = b.seq_norm(x, norm, f"{scope}.norm2")
            return b.binary("add", x, self.mlp(h, f"{scope}.mlp"), scope)
        if hp["residual"] == "parallel":
            a, m = self.attn(x, f"{scope}.attn"), self.mlp(x, f"{scope}.mlp")
            return b.seq_norm(b.binary("add", b.binary("add", x, a, scope), m, scope), norm, f"{scope}.norm1")
        x = b.seq_norm(b.binary("add", x, self.attn(x, f"{scope}.attn"), scope), norm, f"{scope}.norm1")
        return b.seq_norm(b.binary("add", x, self.mlp(x, f"{scope}.mlp"), scope), norm, f"{scope}.norm2")

    def build(self, ids: str) -> str:
        b, hp, cfg = self.b, self.hp, self.cfg
        bs, t = b.shape(ids)
        d, vocab = hp["d_model"], cfg.vocab_size
        x = b.add("embedding", [ids], [bs, t, d], "embeddings.token", params={"weight": [vocab, d]})
        if hp["position"] == "learned":
            pos = b.add("parameter", [], [t, d], "embeddings", params={"data": [t, d]},
                        param_names={"data": "embeddings.position"}, attrs={"kind": "parameter"})
            x = b.binary("add", x, pos, "embeddings")
        if hp["embed_norm"]:
            x = b.seq_norm(x, hp["norm"], "embeddings.norm")
        for i in range(hp["num_layers"]):
            x = self.block(x, f"blocks.{i}")
        if hp["placement"] == "pre":
            x = b.seq_norm(x, hp["norm"], "final_norm")
        tied = {"weight": "embeddings.token.weight"} if hp["tie_embeddings"] else None
        return b.linear(x, vocab, "lm_head", bias=False, param_names=tied)


# --------------------------------------------------------------------------- entry points
def _finish(g: ArchGraph, bld: _Builder, out: str, family: str, modality: str, hp: dict[str, Any]) -> ArchGraph:
    g.set_outputs([out])
    g.meta.update(
        {
            "family": family,
            "modality": modality,
            "space_version": SPACE_VERSION,
            "hparams": hp,
            "num_params": g.num_params,
            "flops": bld.flops,
            "num_nodes": len(g.nodes),
        }
    )
    return g


def sample_image_classifier(rng: random.Random, cfg: RandomSpaceConfig | None = None) -> ArchGraph:
    """Draw one image classifier: stem -> stages of random cells -> pooled linear head.

    Args:
        rng: the random stream (its state advances).
        cfg: the space; ``image_shape``, ``batch_size``, ``num_classes`` and the
            image fields are used. Parameter/FLOP ranges are not enforced here (see :func:`sample`).

    Shapes:
        input ``pixel_values`` (B, C, H, W) float32 -> logits (B, num_classes).

    Example:
        >>> g = sample_image_classifier(random.Random(0), RandomSpaceConfig(image_shape=(1, 8, 8)))
        >>> g.nodes[g.outputs[0]].shape
        [2, 10]
    """
    cfg = cfg or RandomSpaceConfig()
    hp = _cnn_hparams(rng, cfg)
    spec = TensorSpec("pixel_values", [cfg.batch_size, *cfg.image_shape], "float32",
                      dims=["batch", "channels", "height", "width"])
    g = ArchGraph("random-cnn", source="random", inputs=[spec])
    bld = _Builder(g)
    x = bld.add("input", [], list(spec.shape), "", {"name": spec.name})
    out = _CNN(bld, hp, cfg).build(x)
    return _finish(g, bld, out, "random-cnn", "image", hp)


def sample_sequence_model(rng: random.Random, cfg: RandomSpaceConfig | None = None) -> ArchGraph:
    """Draw one token-level transformer language model.

    Variants: attention full MHA / multi-query / grouped-query (fused or separate
    q/k/v, causal or bidirectional); MLP GELU / ReLU / SwiGLU; layer_norm or
    rms_norm, pre- or post-norm; standard or parallel attention+MLP residual;
    learned position table (a ``parameter`` node) or none; tied or separate LM head.

    Shapes:
        input ``input_ids`` (B, T) int64 in ``[0, vocab_size)`` -> logits (B, T, vocab_size).

    Example:
        >>> g = sample_sequence_model(random.Random(0), RandomSpaceConfig(vocab_size=64, seq_len=16))
        >>> g.nodes[g.outputs[0]].shape
        [2, 16, 64]
    """
    cfg = cfg or RandomSpaceConfig()
    hp = _transformer_hparams(rng, cfg)
    spec = TensorSpec("input_ids", [cfg.batch_size, cfg.seq_len], "int64", range=[0, cfg.vocab_size],
                      dims=["batch", "seq"])
    g = ArchGraph("random-transformer", source="random", inputs=[spec])
    bld = _Builder(g)
    ids = bld.add("input", [], list(spec.shape), "", {"name": spec.name}, dtype="int64")
    out = _Transformer(bld, hp, cfg).build(ids)
    return _finish(g, bld, out, "random-transformer", "sequence", hp)


def _in_range(value: int, lo: int, hi: int | None) -> bool:
    return value >= lo and (hi is None or value <= hi)


def sample(seed: int, cfg: RandomSpaceConfig | None = None, validate: bool = False) -> ArchGraph:
    """One architecture of the space, reproducible from ``seed``.

    Draws candidates from a ``random.Random(seed)`` stream until one has
    ``min_params <= params <= max_params`` and ``min_flops <= flops <= max_flops``.

    Args:
        seed: any int; equal seeds (and configs) give identical graphs and JSON.
        cfg: the space (default :class:`RandomSpaceConfig()`).
        validate: also run ``g.validate()`` (the interpreter re-checks every shape).

    Returns:
        the graph, with ``meta``: ``family`` (``random-cnn``/``random-transformer``),
        ``modality``, ``hparams``, ``num_params``, ``flops``, ``seed``, ``tries``.

    Raises:
        RandomSpaceError: no candidate within the ranges after ``cfg.max_tries`` tries.

    Example:
        >>> sample(3).to_json() == sample(3).to_json()
        True
    """
    cfg = (cfg or RandomSpaceConfig()).check()
    rng = random.Random(seed)
    seen: list[tuple[int, int]] = []
    for attempt in range(1, cfg.max_tries + 1):
        modality = cfg.modality if cfg.modality != "any" else rng.choice(["image", "sequence"])
        g = sample_image_classifier(rng, cfg) if modality == "image" else sample_sequence_model(rng, cfg)
        params, flops = g.meta["num_params"], g.meta["flops"]
        if _in_range(params, cfg.min_params, cfg.max_params) and _in_range(flops, cfg.min_flops, cfg.max_flops):
            g.name = f"{g.meta['family']}-{seed}"
            g.meta["seed"] = seed
            g.meta["tries"] = attempt
            if validate:
                g.validate()
            return g
        log.debug("sample(seed=%s) try %d: %s with %d params, %d FLOPs is out of range", seed, attempt,
                  g.meta["family"], params, flops)
        seen.append((params, flops))
    p = sorted(s[0] for s in seen)
    f = sorted(s[1] for s in seen)
    raise RandomSpaceError(
        f"sample(seed={seed}): no architecture within params [{cfg.min_params}, {cfg.max_params}] and "
        f"FLOPs [{cfg.min_flops}, {cfg.max_flops}] after {cfg.max_tries} tries (candidates had params "
        f"{p[0]}..{p[-1]}, FLOPs {f[0]}..{f[-1]}); widen RandomSpaceConfig.min_params/max_params/min_flops/"
        "max_flops, change widths/d_models/depth ranges, or raise max_tries"
    )


def sample_many(n: int, cfg: RandomSpaceConfig | None = None, start: int | None = None,
                validate: bool = False) -> Iterator[ArchGraph]:
    """``sample(seed, cfg)`` for seeds ``start, start + 1, ...`` (default ``cfg.seed``), ``n`` graphs."""
    cfg = (cfg or RandomSpaceConfig()).check()
    first = cfg.seed if start is None else start
    for seed in range(first, first + n):
        yield sample(seed, cfg, validate=validate)


def config_dict(cfg: RandomSpaceConfig) -> dict[str, Any]:
    """The config as JSON values (tuples become lists), e.g. to store next to a dataset."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
