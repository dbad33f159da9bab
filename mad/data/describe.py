"""describe(): one or two English sentences about an architecture, read off its graph.

Everything comes from the graph's structure: the inputs (modality), the ops
and their attrs and params (family, attention, conv, MLP and norm kinds,
widths), the scopes (block count) and the parameter count. ``graph.meta`` is
consulted only for the module class names a capture records
(``meta["scope_types"]``), to name activations and norms that a model wrote
out of primitive ops (e.g. a tanh-approximated GELU).

Example:
    >>> from mad.data.random_space import RandomSpaceConfig, sample
    >>> describe(sample(0, RandomSpaceConfig(modality="sequence")))  # doctest: +NORMALIZE_WHITESPACE
    'A transformer encoder over token sequences (vocabulary 256, length 32) with 4 blocks of hidden size 192.
     It uses multi-query attention (6 query heads, 1 key/value head), GELU MLPs, post-norm RMSNorm and
     learned position embeddings; 1.3M parameters.'
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from mad.graph import ArchGraph

__all__ = ["describe", "analyze", "GraphFacts", "human_count"]

log = logging.getLogger(__name__)

_CONVS = {"conv1d", "conv2d", "conv3d", "conv1d_padding", "conv2d_padding"}
_MATMULS = {"addmm", "mm", "matmul", "bmm", "baddbmm"}
_ACTS = {
    "relu": "ReLU", "relu6": "ReLU6", "gelu": "GELU", "silu": "SiLU", "hardswish": "hard-swish", "mish": "Mish",
    "elu": "ELU", "selu": "SELU", "celu": "CELU", "leaky_relu": "leaky ReLU", "softplus": "softplus",
    "hardsigmoid": "hard-sigmoid", "hardtanh": "hardtanh", "prelu": "PReLU", "tanh": "tanh", "sigmoid": "sigmoid",
}
_NORMS = {"layer_norm": "LayerNorm", "rms_norm": "RMSNorm", "batch_norm": "BatchNorm", "group_norm": "GroupNorm",
          "instance_norm": "InstanceNorm"}
_POOLS = {"max_pool1d": "max", "max_pool2d": "max", "max_pool3d": "max", "avg_pool1d": "average",
          "avg_pool2d": "average", "avg_pool3d": "average"}
# ops that only move or reshape data, walked through when tracing a value back to its source
_PASS = {"view", "reshape", "_unsafe_view", "expand", "unsqueeze", "squeeze", "squeeze_dims", "contiguous", "clone",
         "to_dtype", "to_dtype_layout", "_to_copy", "dropout", "alias", "detach", "type_as", "transpose", "permute",
         "flatten", "getitem", "repeat_interleave", "repeat", "slice", "select", "index", "to_device"}
_STAGE_NAMES = {"stages", "stage", "levels", "level", "groups", "group", "resolutions"}
_CAUSAL_CMP = {"le_tensor", "lt_tensor", "ge_tensor", "gt_tensor"}
# class-name fragments of captured modules -> activation / norm names
_ACT_CLASSES = (("swiglu", "SiLU"), ("gelu", "GELU"), ("silu", "SiLU"), ("swish", "SiLU"), ("relu", "ReLU"),
                ("mish", "Mish"), ("tanh", "tanh"))
_NORM_CLASSES = (("rmsnorm", "RMSNorm"), ("layernorm", "LayerNorm"), ("batchnorm", "BatchNorm"),
                 ("groupnorm", "GroupNorm"))


@dataclass
class GraphFacts:
    """What :func:`describe` reads off a graph (``None``/empty where absent).

    Fields: ``modality`` (``image``, ``video``, ``text``, ``audio``, ``signal``,
    ``tabular``, ``sequence`` or joined with ``+``), ``input_desc`` (a phrase),
    ``family`` (e.g. ``"decoder-only transformer"``), ``blocks``, ``stages``,
    ``layers`` (conv/linear/attention ops), ``width`` (typical hidden size),
    ``width_range`` (min, max channels of a CNN), ``attention`` (phrase),
    ``causal``, ``enc_dec_blocks`` (encoder, decoder) blocks, ``conv_kinds``
    (depthwise/grouped/dilated), ``kernel_sizes``, ``patch_sizes`` (convs
    whose stride equals the kernel), ``pools``, ``mlp`` (e.g. ``SwiGLU``),
    ``activations`` and ``norms`` (names by frequency), ``placement``
    (``pre``/``post``), ``position`` (phrase), ``num_params``.
    """

    modality: str = "unknown"
    input_desc: str = "inputs"
    family: str = "network"
    blocks: int = 0
    stages: int = 0
    enc_dec_blocks: tuple[int, int] | None = None
    layers: int = 0
    width: int | None = None
    width_range: tuple[int, int] | None = None
    attention: str | None = None
    causal: bool = False
    conv_kinds: list[str] = field(default_factory=list)
    kernel_sizes: list[str] = field(default_factory=list)
    patch_sizes: list[str] = field(default_factory=list)
    pools: list[str] = field(default_factory=list)
    mlp: str | None = None
    activations: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    placement: str | None = None
    position: str | None = None
    num_params: int = 0


def human_count(n: int) -> str:
    """``1234567 -> "1.2M"``, ``45300 -> "45.3K"``, ``812 -> "812"``."""
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            text = f"{n / div:.1f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return str(n)


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class _Reader:
    """Graph queries shared by the detectors."""

    def __init__(self, g: ArchGraph) -> None:
        self.g = g
        self.ops = Counter(n.op for n in g.nodes.values())
        self.types = {k: str(v).lower() for k, v in (g.meta.get("scope_types") or {}).items()}

    def nodes(self, *ops: str) -> list:
        wanted = set(ops)
        return [n for n in self.g.nodes.values() if n.op in wanted]

    def op(self, nid: str) -> str:
        return self.g.nodes[nid].op

    def source(self, nid: str, limit: int = 12) -> str:
        """Walk back through data-movement ops to the node that computed ``nid``."""
        for _ in range(limit):
            if self.op(nid) not in _PASS:
                return nid
            preds = self.g.predecessors(nid)
            if not preds:
                return nid
            nid = preds[0]
        return nid

    def consumers(self, nid: str, limit: int = 6) -> list[str]:
        """Successors of ``nid``, looking through data-movement ops."""
        out, frontier = [], [nid]
        for _ in range(limit):
            nxt = []
            for f in frontier:
                for s in self.g.successors(f):
                    (nxt if self.op(s) in _PASS else out).append(s)
            if not nxt:
                break
            frontier = nxt
        return out

    def ancestors_have(self, nid: str, ops: set[str], depth: int = 5) -> bool:
        frontier, seen = [nid], set()
        for _ in range(depth):
            nxt = []
            for f in frontier:
                for p in self.g.predecessors(f):
                    if p in seen:
                        continue
                    seen.add(p)
                    if self.op(p) in ops:
                        return True
                    nxt.append(p)
            frontier = nxt
        return False

    def ancestor(self, nid: str, ops: set[str], depth: int = 3) -> str | None:
        """The nearest ancestor of ``nid`` (within ``depth`` hops) whose op is in ``ops``."""
        frontier = [nid]
        for _ in range(depth):
            frontier = [p for f in frontier for p in self.g.predecessors(f)]
            for p in frontier:
                if self.op(p) in ops:
                    return p
        return None

    def is_linear(self, n) -> bool:
        if n.op == "linear":
            return True
        return n.op in _MATMULS and any(self.op(p) == "parameter" for p in self.g.predecessors(n.id))

    def class_hint(self, table: tuple[tuple[str, str], ...]) -> list[str]:
        found = Counter()
        for cls in self.types.values():
            for frag, name in table:
                if frag in cls:
                    found[name] += 1
                    break
        return [k for k, _ in found.most_common()]


# --------------------------------------------------------------------------- detectors
def _modality(g: ArchGraph, r: _Reader) -> tuple[str, str]:
    kinds, phrases = [], []
    for s in g.inputs:
        name, rank = s.name.lower(), len(s.shape)
        floating = s.dtype.startswith(("float", "bfloat", "complex"))
        if not floating:
            if rank >= 2 and not any(k in name for k in ("mask", "type", "position", "label")):
                if "text" not in kinds:
                    kinds.append("text")
                    vocab = f"vocabulary {s.range[1]}, " if s.range else ""
                    phrases.append(f"token sequences ({vocab}length {s.shape[-1]})")
            continue
        if rank == 4 or "pixel" in name or "image" in name:
            kinds.append("image")
            dims = "x".join(str(d) for d in s.shape[1:]) if rank == 4 else ""
            phrases.append(f"{dims} images".strip())
        elif rank == 5:
            kinds.append("video")
            phrases.append("video clips")
        elif any(k in name for k in ("input_values", "audio", "wave", "input_features", "speech")):
            kinds.append("audio")
            phrases.append("audio")
        elif rank == 3 and (r.ops.keys() & {"conv1d", "conv1d_padding"}):
            kinds.append("signal")
            phrases.append(f"{s.shape[1]}-channel 1-D signals of length {s.shape[2]}")
        elif rank == 2:
            kinds.append("tabular")
            phrases.append(f"{s.shape[1]}-feature vectors")
        elif rank == 3:
            kinds.append("sequence")
            phrases.append(f"sequences of {s.shape[2]}-dim vectors")
        else:
            kinds.append("tensor")
            phrases.append(f"rank-{rank} tensors")
    if not kinds:
        return "unknown", "inputs"
    seen = list(dict.fromkeys(kinds))
    return "+".join(seen), _join(list(dict.fromkeys(phrases)))


def _attention(r: _Reader) -> tuple[list[tuple[int, int]], bool]:
    """(query heads, key/value heads) per attention op, and whether any is causal."""
    heads: list[tuple[int, int]] = []
    causal = False
    g = r.g
    for n in r.nodes("scaled_dot_product_attention"):
        preds = g.predecessors(n.id)
        causal = causal or bool(n.attrs.get("is_causal"))
        q, k = (g.nodes[p].shape for p in preds[:2])
        if not (isinstance(q, list) and isinstance(k, list) and min(len(q), len(k)) >= 3 and isinstance(q[-3], int)):
            heads.append((1, 1))
            continue
        hq, hk = q[-3], k[-3]
        nid = preds[1]
        for _ in range(8):  # look through a repeat of key/value heads (expand + reshape or repeat_interleave)
            nd = g.nodes[nid]
            if nd.op == "expand" and isinstance(nd.shape, list) and len(nd.shape) == 5:
                hk = nd.shape[1]
                break
            if nd.op == "repeat_interleave":
                src = g.nodes[g.predecessors(nid)[0]].shape
                hk = src[-3] if isinstance(src, list) and len(src) >= 3 else hk
                break
            if nd.op not in _PASS - {"transpose", "permute"} or not g.predecessors(nid):
                break
            nid = g.predecessors(nid)[0]
        heads.append((hq, hk))
    for n in r.nodes("softmax", "_softmax"):  # attention written as matmul -> softmax -> matmul
        if r.ancestors_have(n.id, {"matmul", "bmm", "baddbmm"}, 4) and any(
            r.op(c) in ("matmul", "bmm") for c in r.consumers(n.id)
        ):
            shape = n.shape if isinstance(n.shape, list) else []
            h = shape[-3] if len(shape) >= 4 else 1
            heads.append((h, h))
    if heads and not causal:
        causal = bool(r.ops.keys() & {"tril", "triu"}) or any(
            all(r.ancestors_have(p, {"arange", "arange_start", "arange_start_step"}, 8) or r.op(p).startswith("arange")
                for p in r.g.predecessors(n.id))
            for n in r.nodes(*_CAUSAL_CMP)
        )
    return heads, causal


def _attention_phrase(heads: list[tuple[int, int]], spatial: bool) -> str:
    hq = Counter(h for h, _ in heads).most_common(1)[0][0]
    hk = Counter(k for _, k in heads).most_common(1)[0][0]
    where = "spatial self-attention" if spatial else "attention"
    if hk == hq:
        return f"multi-head {where} ({hq} head{'s' if hq != 1 else ''})"
    if hk == 1:
        return f"multi-query {where} ({hq} query heads, 1 key/value head)"
    return f"grouped-query {where} ({hq} query heads, {hk} key/value heads)"


def _blocks(r: _Reader, layer_nodes: list) -> tuple[int, int, tuple[int, int] | None]:
    """(blocks, stages, (encoder, decoder) blocks) from the numbered module paths of layer ops."""
    level1: dict[str, Counter] = {}
    for n in layer_nodes:
        parts = n.scope.split(".") if n.scope else []
        for i, p in enumerate(parts):
            if p.isdigit() and i > 0:
                level1.setdefault(parts[i - 1], Counter())[".".join(parts[: i + 1])] += 1
                break
    if not level1:
        return 0, 0, None
    container = max(level1, key=lambda c: sum(level1[c].values()))
    ids = list(level1[container])
    stages, blocks = 0, len(ids)
    if container in _STAGE_NAMES:
        inner: dict[str, set] = {}
        for n in layer_nodes:
            for sid in ids:
                if n.scope.startswith(sid + "."):
                    rest = n.scope[len(sid) + 1:].split(".")
                    for i, p in enumerate(rest):
                        if p.isdigit() and i > 0:
                            inner.setdefault(rest[i - 1], set()).add(sid + "." + ".".join(rest[: i + 1]))
                            break
        if inner:
            sub = max(inner, key=lambda c: len(inner[c]))
            stages, blocks = len(ids), len(inner[sub])
    enc = sum(1 for i in ids if re.search(r"(^|\.)encoder(\.|$)", i))
    dec = sum(1 for i in ids if re.search(r"(^|\.)decoder(\.|$)", i))
    return blocks, stages, (enc, dec) if enc and dec else None


def _norms(r: _Reader) -> tuple[list[str], list[tuple[str, str]]]:
    """Norm names by frequency, and (input, output) node of each norm (decomposed RMSNorm included)."""
    names: Counter = Counter()
    spans: list[tuple[str, str]] = []
    for n in r.g.nodes.values():
        preds = r.g.predecessors(n.id)
        if n.op in _NORMS and preds:
            names[_NORMS[n.op]] += 1
            spans.append((preds[0], n.id))
    for n in r.nodes("rsqrt"):  # x * rsqrt(mean(x^2) + eps) [* weight]
        square = r.ancestor(n.id, {"pow", "square"}, 3)
        if square is None or not r.ancestors_have(n.id, {"mean"}, 2):
            continue
        names["RMSNorm"] += 1
        out = n.id
        for _ in range(3):
            nxt = [s for s in r.g.successors(out) if r.op(s) in ("mul", "to_dtype", "type_as")]
            if len(nxt) != 1:
                break
            out = nxt[0]
        spans.append((r.g.predecessors(square)[0], out))
    found = [k for k, _ in names.most_common()]
    return found or r.class_hint(_NORM_CLASSES), spans


def _placement(r: _Reader, spans: list[tuple[str, str]]) -> str | None:
    """``post`` where a norm's output carries the residual stream (it feeds a residual add and the next
    layer), ``pre`` where the stream skips the norm (its input also feeds a residual add)."""
    votes, fallback = Counter(), Counter()
    adds = ("add", "add_")
    for inp, out in spans:
        users = r.consumers(out)
        if any(r.op(u) in adds for u in users) and any(r.is_linear(r.g.nodes[u]) or r.op(u) in _CONVS
                                                        for u in users):
            votes["post"] += 1
        elif any(r.op(u) in adds for u in r.consumers(inp)):
            votes["pre"] += 1
        elif r.op(r.source(inp)) in adds:  # a norm right after a residual sum, e.g. the last post-norm
            fallback["post"] += 1
    best = votes or fallback
    return best.most_common(1)[0][0] if best else None


def _mlp_and_acts(r: _Reader) -> tuple[str | None, list[str]]:
    acts: Counter = Counter()
    gated: Counter = Counter()
    for n in r.g.nodes.values():
        name = _ACTS.get(n.op)
        if name is None:
            continue
        acts[name] += 1
        if n.op in ("silu", "gelu", "relu"):
            for s in r.g.successors(n.id):
                if r.op(s) == "mul":
                    other = [p for p in r.g.predecessors(s) if p != n.id]
                    if other and r.is_linear(r.g.nodes[r.source(other[0])]):
                        gated[{"silu": "SwiGLU", "gelu": "GeGLU", "relu": "ReGLU"}[n.op]] += 1
    main = [k for k, _ in acts.most_common() if k not in ("tanh", "sigmoid")]
    if not main:
        hints = r.class_hint(_ACT_CLASSES)
        main = hints or [k for k, _ in acts.most_common()]
    mlp = gated.most_common(1)[0][0] if gated else (f"{main[0]} MLPs" if main else None)
    return mlp, main


def _position(r: _Reader, g: ArchGraph) -> str | None:
    if r.ops.get("sin") and r.ops.get("cos"):
        return "rotary position embeddings"
    for n in r.nodes("embedding"):
        idx = r.g.predecessors(n.id)
        if idx and r.ancestors_have(n.id, {"arange", "arange_start", "arange_start_step"}, 4):
            return "learned position embeddings"
    for n in r.nodes("add"):
        for p in r.g.predecessors(n.id):
            if r.op(r.source(p)) == "parameter":  # a table, maybe sliced to the sequence length
                other = [q for q in r.g.predecessors(n.id) if q != p]
                if other and r.op(r.source(other[0])) == "embedding":
                    return "learned position embeddings"
    return None


def _patchify(conv) -> bool:
    """A conv whose stride equals its kernel (> 1): it cuts the input into non-overlapping patches."""
    w = conv.params.get("weight") or []
    stride = conv.attrs.get("stride") or [1]
    stride = stride if isinstance(stride, list) else [stride]
    stride = stride * (len(w) - 2) if len(stride) == 1 else stride
    return len(w) > 2 and all(k > 1 for k in w[2:]) and list(w[2:]) == list(stride)


def _ensure_shapes(g: ArchGraph) -> ArchGraph:
    """``g`` with every shape filled in and concrete (symbolic dims at their example sizes)."""
    if all(n.shape is not None for n in g.nodes.values()) and not g.dims:
        return g
    h = g.copy()
    if any(n.shape is None for n in h.nodes.values()):
        try:
            h.infer()
        except Exception as e:  # describe what the structure alone says
            log.warning("describe(%s): shape inference failed (%s); heads and widths may be missing", g.name, e)
            return g
    if h.dims:
        from mad.graph.symbolic import concrete

        for n in h.nodes.values():
            n.shape = concrete(n.shape, h.dims)
        for s in h.inputs:
            s.shape = concrete(list(s.shape), h.dims)
    return h


def analyze(graph: ArchGraph) -> GraphFacts:
    """Read the facts :func:`describe` writes up; see :class:`GraphFacts`."""
    g = _ensure_shapes(graph)
    r = _Reader(g)
    f = GraphFacts(num_params=g.num_params)
    f.modality, f.input_desc = _modality(g, r)
    convs = [g.nodes[i] for i in g.topo_order() if g.nodes[i].op in _CONVS]
    linears = [n for n in g.nodes.values() if r.is_linear(n)]
    heads, f.causal = _attention(r)
    layer_nodes = convs + linears + r.nodes("scaled_dot_product_attention")
    f.layers = len(convs) + len(linears) + len(heads)
    f.blocks, f.stages, f.enc_dec_blocks = _blocks(r, layer_nodes)

    spatial = [c for c in convs[1:] if any(k > 1 for k in c.params.get("weight", [0, 0, 1])[2:]) and not _patchify(c)]
    token_inputs = [s for s in g.inputs if not s.dtype.startswith(("float", "bfloat")) and "decoder" in s.name]
    if heads and spatial:  # attention plus spatial convs past the stem
        f.family = "hybrid convolution-attention network"
    elif heads:
        enc_dec = bool(token_inputs) or (f.enc_dec_blocks is not None)
        if enc_dec:
            f.family = "encoder-decoder transformer"
        elif f.causal:
            f.family = "decoder-only transformer"
        elif "image" in f.modality:
            f.family = "vision transformer"
        else:
            f.family = "transformer encoder"
    elif convs:
        dims = {c.op[4] for c in convs}
        f.family = "1-D convolutional network" if dims == {"1"} else "convolutional network"
    elif linears:
        f.family = "MLP"
    if heads:
        f.attention = _attention_phrase(heads, spatial=f.family.startswith("hybrid"))

    # widths
    norm_names, norm_spans = _norms(r)
    f.norms = norm_names
    if convs and not f.family.endswith("transformer") and "transformer" not in f.family:
        chans = [n.shape[1] for n in g.nodes.values() if n.op in ("batch_norm", "group_norm", "instance_norm")
                 and isinstance(n.shape, list) and len(n.shape) > 2]
        chans = chans or [c.params["weight"][0] for c in convs if "weight" in c.params]
        if chans:
            f.width_range = (min(chans), max(chans))
            f.width = Counter(chans).most_common(1)[0][0]
    else:
        sizes = [n.attrs["normalized_shape"][-1] for n in g.nodes.values()
                 if n.op in ("layer_norm", "rms_norm") and n.attrs.get("normalized_shape")]
        sizes = sizes or [n.params["weight"][-1] for n in linears if len(n.params.get("weight", [])) == 2]
        sizes = sizes or [n.params["weight"][1] for n in r.nodes("embedding") if "weight" in n.params]
        if sizes:
            f.width = Counter(sizes).most_common(1)[0][0]

    # convolution kinds
    kinds = []
    for c in convs:
        w = c.params.get("weight")
        groups = c.attrs.get("groups") or 1
        dil = c.attrs.get("dilation") or [1]
        if groups > 1 and w and w[1] == 1:
            kinds.append("depthwise")
        elif groups > 1:
            kinds.append("grouped")
        if any(d > 1 for d in (dil if isinstance(dil, list) else [dil])):
            kinds.append("dilated")
        if w and len(w) > 2:
            size = "x".join(str(k) for k in w[2:])
            (f.patch_sizes if _patchify(c) else f.kernel_sizes).append(size)
    f.conv_kinds = list(dict.fromkeys(kinds))
    f.kernel_sizes = sorted(set(f.kernel_sizes), key=lambda s: (int(s.split("x")[0]), s))
    f.patch_sizes = sorted(set(f.patch_sizes), key=lambda s: (int(s.split("x")[0]), s))
    f.pools = list(dict.fromkeys(_POOLS[n.op] for n in g.nodes.values() if n.op in _POOLS))

    f.mlp, f.activations = _mlp_and_acts(r)
    if "transformer" in f.family:
        f.placement = _placement(r, norm_spans)
    if "transformer" in f.family:
        f.position = _position(r, g)
    return f


def _depth_phrase(f: GraphFacts) -> str:
    if f.enc_dec_blocks:
        return f"{f.enc_dec_blocks[0]} encoder and {f.enc_dec_blocks[1]} decoder blocks"
    if f.blocks:
        text = f"{f.blocks} block{'s' if f.blocks != 1 else ''}"
        if f.stages:
            text += f" in {f.stages} stage{'s' if f.stages != 1 else ''}"
        return text
    return f"{f.layers} layer op{'s' if f.layers != 1 else ''}"


def describe(graph: ArchGraph) -> str:
    """One or two English sentences about ``graph``: modality, family, depth, width,
    attention/conv/MLP/norm kinds and the parameter count.

    Works on any valid :class:`~mad.graph.ArchGraph` (captured, imported,
    generated or random); shapes are inferred on a copy if the graph lacks them.

    Example:
        >>> from mad.data.random_space import RandomSpaceConfig, sample
        >>> describe(sample(1, RandomSpaceConfig(modality="image")))  # doctest: +NORMALIZE_WHITESPACE
        'A convolutional network for 3x32x32 images with 6 blocks in 4 stages, 48 to 128 channels wide.
         It uses 1x1, 3x3 and 5x5 convolutions (depthwise and dilated), max and average pooling, ReLU
         activations and BatchNorm; 623.8K parameters.'
    """
    f = analyze(graph)
    article = "An" if f.family[0].lower() in "aeiou" or f.family.startswith("MLP") else "A"
    width = ""
    if f.width_range and f.width_range[0] != f.width_range[1]:
        width = f", {f.width_range[0]} to {f.width_range[1]} channels wide"
    elif f.width_range:
        width = f", {f.width_range[0]} channels wide"
    elif f.width:
        width = f" of hidden size {f.width}"
    prep = "over" if f.modality in ("text", "sequence") else "for"
    first = f"{article} {f.family} {prep} {f.input_desc} with {_depth_phrase(f)}{width}."

    uses = []
    if f.attention:
        uses.append(("causal " if f.causal and "decoder" not in f.family else "") + f.attention)
    if f.patch_sizes:
        uses.append(f"{_join(f.patch_sizes)} patchify convolution" + ("s" if len(f.patch_sizes) > 1 else ""))
    if f.kernel_sizes:
        conv = _join(f.kernel_sizes) + " convolutions"
        if f.conv_kinds:
            conv += f" ({_join(f.conv_kinds)})"
        uses.append(conv)
    if f.pools:
        uses.append(f"{_join(f.pools)} pooling")
    if f.mlp and ("transformer" in f.family or f.family == "MLP"):
        uses.append(f.mlp if f.mlp.endswith("MLPs") else f"{f.mlp} MLPs")
    elif f.activations:
        uses.append(f"{'/'.join(f.activations[:2])} activations")
    if f.norms:
        norm = "/".join(f.norms[:2])
        uses.append(f"{f.placement}-norm {norm}" if f.placement else norm)
    if f.position:
        uses.append(f.position)
    params = f"{human_count(f.num_params)} parameters"
    if uses:
        return f"{first} It uses {_join(uses)}; {params}."
    return f"{first} It has {params}."
