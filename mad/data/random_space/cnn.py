"""The image part of the random space: stem -> stages of random cells -> pooled linear head."""

from __future__ import annotations

import random
from typing import Any

from mad.graph import ArchGraph, GraphBuilder

from . import layers as L
from .config import CELL_OPS, PARAMETRIC, RandomSpaceConfig, RandomSpaceError

__all__ = ["sample_image_classifier", "build_image_classifier", "cnn_hparams"]

ACTIVATIONS = ("relu", "gelu", "silu", "hardswish")
CNN_NORMS = ("batch_norm", "group_norm", "layer_norm")
ORDERS = ("post", "pre")
DOWNSAMPLES = ("conv", "max_pool", "avg_pool")
STEMS = ("conv", "patchify")
POOLS = ("adaptive_avg", "mean")
MERGES = ("sum", "concat")


def choice(rng: random.Random, weights: dict[str, float]) -> str:
    """A draw from the keys with positive weight, in proportion to the weights."""
    keys = [k for k, w in weights.items() if w > 0]
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def sample_cell(rng: random.Random, cfg: RandomSpaceConfig) -> dict[str, Any]:
    """A cell genotype: nodes (op, inputs), how loose ends merge, and whether the cell is residual.

    Input index 0 is the cell input; node ``i`` is value ``i + 1``.
    """
    n = rng.randint(*cfg.cell_nodes)
    nodes = []
    for i in range(n):
        k = 1 if i == 0 or rng.random() < 0.6 else 2
        inputs = sorted(rng.sample(range(i + 1), k))
        nodes.append({"op": choice(rng, cfg.cell_ops), "inputs": inputs})
    if not any(nd["op"] in PARAMETRIC for nd in nodes):  # every cell learns something
        nodes[-1]["op"] = choice(rng, {k: w for k, w in cfg.cell_ops.items() if k in PARAMETRIC})
    return {
        "nodes": nodes,
        "merge": rng.choice(MERGES),
        "residual": rng.random() < 0.5,
        "mlp_ratio": rng.choice([2, 4]),
        "head_dim": rng.choice([16, 32]),
    }


def max_downsamplings(side: int) -> int:
    """How often a stem output of (at least) ``side`` pixels can be halved, keeping at least 2x2."""
    n = 0
    while side >= 4:
        side //= 2
        n += 1
    return n


def draw_stem(rng: random.Random, side: int) -> dict[str, Any]:
    """A stem for inputs whose smaller side is ``side``: a conv, or non-overlapping patches."""
    kinds = STEMS if side >= 16 else STEMS[:1]
    stem = {"kind": rng.choice(kinds)}
    if stem["kind"] == "conv":
        stem["kernel"] = rng.choice([3, 5, 7] if side >= 32 else [3])
        stem["stride"] = 2 if side >= 32 and rng.random() < 0.4 else 1
    else:
        stem["patch"] = rng.choice([2, 4] if side >= 32 else [2])
        stem["stride"] = stem["patch"]
    return stem


def draw_head(rng: random.Random) -> dict[str, Any]:
    """A classifier head: optional 1x1 expansion, global pooling, optional hidden layer."""
    return {
        "expand": rng.choice([0, 0, 2, 4]),  # 1x1 conv to k x width before pooling (0: none)
        "pool": rng.choice(POOLS),
        "hidden": rng.choice([0, 0, 128, 256]),
    }


def next_width(rng: random.Random, widths: list[int], width: int) -> int:
    """The width of the stage after one of ``width``: from ``widths`` (sorted), at least ``width``, at most double."""
    return rng.choice([x for x in widths if width <= x <= 2 * width] or [width])


def cnn_hparams(rng: random.Random, cfg: RandomSpaceConfig) -> dict[str, Any]:
    """Draw the hyperparameters (genotype) of one image classifier."""
    side = min(cfg.image_shape[1:])
    hp: dict[str, Any] = {
        "norm": rng.choices(CNN_NORMS, weights=[2, 1, 1])[0],
        "activation": rng.choice(ACTIVATIONS),
        "order": rng.choice(ORDERS),  # conv-norm-act or act-conv-norm
    }
    stem = draw_stem(rng, side)
    hp["stem"] = stem
    max_down = max_downsamplings(side // stem["stride"])  # side // stride: a lower bound on the stem's output
    num_stages = min(rng.randint(*cfg.num_stages), 1 + max_down)
    widths = sorted(set(cfg.widths))
    width = rng.choice(widths[: max(1, (len(widths) + 1) // 2)])
    shared_cell = sample_cell(rng, cfg)
    hp["downsample"] = rng.choice(DOWNSAMPLES)
    stages = []
    for s in range(num_stages):
        if s > 0:
            width = next_width(rng, widths, width)
        cell = shared_cell if rng.random() < 0.7 else sample_cell(rng, cfg)
        stages.append({"width": width, "cells": rng.randint(*cfg.cells_per_stage), "cell": cell})
    hp["stages"] = stages
    hp["head"] = draw_head(rng)
    return hp


class _CNN:
    """Builds an image classifier from :func:`cnn_hparams`."""

    def __init__(self, b: GraphBuilder, hp: dict[str, Any], cfg: RandomSpaceConfig) -> None:
        self.b, self.hp, self.cfg = b, hp, cfg

    def conv_unit(self, x: str, cout: int, k: int, scope: str, stride: int = 1, act: bool = True) -> str:
        """conv-norm-act (post order) or act-conv-norm (pre order)."""
        b, hp = self.b, self.hp
        if hp["order"] == "pre" and act:
            x = L.act(b, x, hp["activation"], f"{scope}.act")
        x = L.conv(b, x, cout, k, f"{scope}.conv", stride=stride)
        x = L.norm2d(b, x, hp["norm"], f"{scope}.norm")
        if hp["order"] == "post" and act:
            x = L.act(b, x, hp["activation"], f"{scope}.act")
        return x

    def separable(self, x: str, k: int, dilation: int, scope: str) -> str:
        b, hp = self.b, self.hp
        c = b.shape(x)[1]
        if hp["order"] == "pre":
            x = L.act(b, x, hp["activation"], f"{scope}.act")
        x = L.conv(b, x, c, k, f"{scope}.dw", dilation=dilation, groups=c)
        x = L.conv(b, x, c, 1, f"{scope}.pw")
        x = L.norm2d(b, x, hp["norm"], f"{scope}.norm")
        if hp["order"] == "post":
            x = L.act(b, x, hp["activation"], f"{scope}.act")
        return x

    def spatial_attention(self, x: str, head_dim: int, scope: str) -> str:
        b = self.b
        bs, c, h, w = b.shape(x)
        t = b.op("flatten", x, start_dim=2, scope=scope)  # (B, C, H*W)
        t = b.op("transpose", t, dim0=1, dim1=2, scope=scope)  # (B, H*W, C)
        t = L.seq_norm(b, t, "layer_norm", f"{scope}.norm")
        heads = max(1, c // head_dim) if c % head_dim == 0 else 1
        t = L.attention(b, t, heads, heads, c // heads, scope)
        t = b.op("transpose", t, dim0=1, dim1=2, scope=scope)  # (B, C, H*W)
        return b.op("reshape", t, shape=[bs, c, h, w], scope=scope)

    def op(self, name: str, x: str, cell: dict[str, Any], scope: str) -> str:
        b, hp = self.b, self.hp
        if name not in CELL_OPS:
            raise RandomSpaceError(f"cell op {name!r} is not in CELL_OPS {sorted(CELL_OPS)}")
        c = b.shape(x)[1]
        if name.startswith("conv"):
            return self.conv_unit(x, c, int(name[4]), scope)
        if name.startswith("dw_conv"):
            return self.separable(x, int(name[7]), 1, scope)
        if name == "dil_conv3x3":
            return self.separable(x, 3, 2, scope)
        if name in ("max_pool3x3", "avg_pool3x3"):
            return L.pool(b, x, name[:3] + "_pool2d", 3, 1, scope)
        if name == "attention":
            return self.spatial_attention(x, cell["head_dim"], scope)
        if name == "mlp":
            y = L.conv(b, x, c * cell["mlp_ratio"], 1, f"{scope}.fc1", bias=True)
            y = L.act(b, y, hp["activation"], f"{scope}.act")
            return L.conv(b, y, c, 1, f"{scope}.fc2", bias=True)
        return x  # identity

    def cell(self, x: str, cell: dict[str, Any], scope: str, attn_ok: bool) -> str:
        b = self.b
        values = [x]
        used: set[int] = set()
        for i, nd in enumerate(cell["nodes"]):
            ins = [values[j] for j in nd["inputs"]]
            used.update(nd["inputs"])
            h = ins[0] if len(ins) == 1 else L.binary(b, "add", ins[0], ins[1], f"{scope}.n{i}")
            name = nd["op"] if attn_ok or nd["op"] != "attention" else "conv3x3"
            values.append(self.op(name, h, cell, f"{scope}.n{i}"))
        ends = [values[i] for i in range(1, len(values)) if i not in used]
        ends = list(dict.fromkeys(ends))  # identity nodes may repeat a value
        if len(ends) == 1:
            out = ends[0]
        elif cell["merge"] == "sum":
            out = ends[0]
            for e in ends[1:]:
                out = L.binary(b, "add", out, e, f"{scope}.merge")
        else:
            c = b.shape(x)[1]
            cat = b.op("cat", *ends, dim=1, scope=f"{scope}.merge")
            out = L.conv(b, cat, c, 1, f"{scope}.merge.conv")
            out = L.norm2d(b, out, self.hp["norm"], f"{scope}.merge.norm")
        if cell["residual"] and out != x:
            out = L.binary(b, "add", out, x, f"{scope}.residual")
        return out

    def downsample(self, x: str, cout: int, scope: str) -> str:
        b, kind = self.b, self.hp["downsample"]
        if kind == "conv":
            return self.conv_unit(x, cout, 3, scope, stride=2, act=False)
        x = L.pool(b, x, "max_pool2d" if kind == "max_pool" else "avg_pool2d", 2, 2, f"{scope}.pool")
        if b.shape(x)[1] != cout:
            x = L.conv(b, x, cout, 1, f"{scope}.proj.conv")
            x = L.norm2d(b, x, self.hp["norm"], f"{scope}.proj.norm")
        return x

    def build(self, x: str) -> str:
        b, hp, cfg = self.b, self.hp, self.cfg
        stem, stages = hp["stem"], hp["stages"]
        w0 = stages[0]["width"]
        if stem["kind"] == "conv":
            x = L.conv(b, x, w0, stem["kernel"], "stem.conv", stride=stem["stride"])
        else:  # non-overlapping patches
            x = L.conv(b, x, w0, stem["patch"], "stem.conv", stride=stem["patch"], pad=0)
        x = L.norm2d(b, x, hp["norm"], "stem.norm")
        x = L.act(b, x, hp["activation"], "stem.act")
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
        if head["pool"] == "adaptive_avg":
            x = b.op("adaptive_avg_pool2d", x, output_size=[1, 1], scope="head.pool")
            x = b.op("flatten", x, start_dim=1, scope="head.pool")
        else:
            x = b.op("mean", x, dim=[2, 3], scope="head.pool")
        if head["hidden"]:
            x = L.linear(b, x, head["hidden"], "head.hidden")
            x = L.act(b, x, hp["activation"], "head.act")
        return L.linear(b, x, cfg.num_classes, "head.fc")


def sample_image_classifier(rng: random.Random, cfg: RandomSpaceConfig | None = None) -> ArchGraph:
    """Draw one image classifier: stem -> stages of random cells -> pooled linear head.

    Args:
        rng: the random stream (its state advances).
        cfg: the space; ``image_shape``, ``batch_size``, ``num_classes`` and the
            image fields are used. Parameter/FLOP ranges are not enforced here (see ``sample``).

    Shapes:
        input ``pixel_values`` (B, C, H, W) float32 -> logits (B, num_classes); ``B`` is symbolic.

    Example:
        >>> g = sample_image_classifier(random.Random(0), RandomSpaceConfig(image_shape=(1, 8, 8)))
        >>> g.nodes[g.outputs[0]].shape
        ['B', 10]
    """
    cfg = cfg or RandomSpaceConfig()
    return build_image_classifier(cnn_hparams(rng, cfg), cfg)


def build_image_classifier(hp: dict[str, Any], cfg: RandomSpaceConfig) -> ArchGraph:
    """The image classifier of a :func:`cnn_hparams` genotype; ``hp`` (now ``meta["hparams"]``) gains each
    stage's ``resolution``. Raises :class:`~mad.graph.GraphError` (or ``KeyError``, ...) on an invalid genotype."""
    from .sampling import finish

    b = GraphBuilder("random-cnn", source="random", dims={"B": cfg.batch_size})
    x = b.input("pixel_values", ("B", *cfg.image_shape), "float32")
    b.graph.inputs[0].dims = ["batch", "channels", "height", "width"]
    out = _CNN(b, hp, cfg).build(x)
    return finish(b, out, "random-cnn", "image", hp)
