"""Constraints on an architecture, read off a graph and checked against one.

:class:`Constraints` is what a researcher asks for ("a CNN for 1x28x28 digits,
10 classes, BatchNorm, residual, under 100k parameters"), each field optional.
:func:`constraints_of` gives the constraints a graph meets exactly (to condition
a generator on its own training graphs); :func:`check` says, field by field,
whether a graph meets a set of constraints, and :func:`adherence` is the share met.

Everything about a graph comes from :func:`mad.data.describe.analyze` plus a few
structural reads (inputs, outputs, residual adds, strided ops), so a graph always
meets its own constraints: ``adherence(g, constraints_of(g)) == 1.0``.

Example:
    >>> from mad.data.random_space import RandomSpaceConfig, sample
    >>> g = sample(0, RandomSpaceConfig(modality="image"))
    >>> c = constraints_of(g)
    >>> c.modality, c.input_shape, c.num_classes, adherence(g, c)
    ('image', (3, 32, 32), 10, 1.0)
    >>> check(g, Constraints(max_params=10))
    {'max_params': False}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from mad.data.describe import GraphFacts, analyze
from mad.graph import ArchGraph

__all__ = [
    "Constraints", "GraphTraits", "traits_of", "constraints_of", "constraints_from_facts", "check", "adherence",
    "share_met", "flops_of",
    "MODALITIES", "FAMILIES", "ATTENTION_KINDS", "NORMS", "ACTIVATIONS", "MLP_KINDS", "POSITIONS", "CONV_KINDS",
]

MODALITIES = ("image", "text", "sequence", "audio", "signal", "tabular", "video", "tensor")
# family words: a graph answers to every word of its family (a ViT is a "vit", a "transformer" and "encoder-only")
FAMILIES = ("cnn", "hybrid", "transformer", "vit", "encoder-only", "decoder-only", "encoder-decoder", "mlp", "rnn",
            "mixer")
ATTENTION_KINDS = ("multi-head", "grouped-query", "multi-query", "none", "any")
NORMS = ("layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm", "none")
ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "hardswish", "mish", "elu", "selu", "celu", "leaky_relu", "softplus",
               "hardsigmoid", "hardtanh", "prelu", "tanh", "sigmoid")
MLP_KINDS = ("swiglu", "geglu", "reglu", "plain")
POSITIONS = ("rotary", "learned", "none")
CONV_KINDS = ("depthwise", "grouped", "dilated")

_FAMILY_WORDS = {  # GraphFacts.family -> the family words it answers to (most specific first)
    "convolutional network": ("cnn",),
    "1-D convolutional network": ("cnn",),
    "hybrid convolution-attention network": ("hybrid", "cnn"),
    "vision transformer": ("vit", "transformer", "encoder-only"),
    "transformer encoder": ("encoder-only", "transformer"),
    "decoder-only transformer": ("decoder-only", "transformer"),
    "encoder-decoder transformer": ("encoder-decoder", "transformer"),
    "MLP": ("mlp",),
}
_ACT_NAMES = {"ReLU": "relu", "ReLU6": "relu6", "GELU": "gelu", "SiLU": "silu", "hard-swish": "hardswish",
              "Mish": "mish", "ELU": "elu", "SELU": "selu", "CELU": "celu", "leaky ReLU": "leaky_relu",
              "softplus": "softplus", "hard-sigmoid": "hardsigmoid", "hardtanh": "hardtanh", "PReLU": "prelu",
              "tanh": "tanh", "sigmoid": "sigmoid"}
_NORM_NAMES = {"LayerNorm": "layer_norm", "RMSNorm": "rms_norm", "BatchNorm": "batch_norm",
               "GroupNorm": "group_norm", "InstanceNorm": "instance_norm"}
_CONVS = {"conv1d", "conv2d", "conv3d", "conv1d_padding", "conv2d_padding"}
_POOLS = {"max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"}
_MATMULS = {"addmm", "mm", "matmul", "bmm", "baddbmm"}
_LAYERS = _CONVS | {"linear", "scaled_dot_product_attention", "lstm", "gru", "rnn_tanh", "rnn_relu"}
_RNNS = {"lstm", "gru", "rnn_tanh", "rnn_relu"}
_NON_TOKEN = ("mask", "type", "position", "label")


@dataclass
class Constraints:
    """What an architecture must satisfy; every field ``None`` means unconstrained.

    Args:
        modality: input kind, in the vocabulary of :class:`~mad.data.describe.GraphFacts` (``"image"``,
            ``"text"`` for token ids, ``"sequence"`` for vectors over time, ``"audio"``, ...); several
            joined with ``+`` (``"text+image"``) mean all of them.
        input_shape: the main input without the batch dim, e.g. ``(1, 28, 28)`` or ``(128,)`` for 128
            tokens; a string entry (``"T"``) is a free length.
        num_classes: outputs of a classifier head (the graph's single output is ``(B, num_classes)``).
        vocab_size: token ids lie in ``[0, vocab_size)``.
        max_params: parameter budget (inclusive).
        max_flops: FLOPs budget of one forward pass at the graph's example sizes (inclusive).
        family: one of :data:`FAMILIES`; ``"transformer"`` is met by every transformer, ``"cnn"`` also by
            a conv net with attention cells (``"hybrid"``).
        attention: one of :data:`ATTENTION_KINDS`; ``"any"`` means some attention, ``"none"`` none.
        num_heads: query heads of the (most common) attention.
        norm: one of :data:`NORMS`: this norm is used somewhere (``"none"``: no norm at all).
        placement: ``"pre"`` or ``"post"`` norm in a transformer block.
        activations: names from :data:`ACTIVATIONS`, all of which the graph must use.
        mlp: one of :data:`MLP_KINDS`: a gated MLP kind, or ``"plain"`` for an ungated one.
        position: one of :data:`POSITIONS` (``"none"``: no detected position encoding).
        residual: the graph has (``True``) or has no (``False``) residual additions around a layer.
        downsampling: the graph has (or has no) strided convolutions or pooling past a patchify stem.
        conv_kinds: names from :data:`CONV_KINDS`, all of which the graph must use.
        depth: number of blocks (repeated layers), as :func:`~mad.data.describe.analyze` counts them.
        hidden_size: the typical hidden size (channels of a CNN).

    Example:
        >>> c = Constraints(modality="image", input_shape=(1, 28, 28), num_classes=10, max_params=100_000)
        >>> Constraints.from_dict(c.to_dict()) == c
        True
        >>> sorted(c.to_dict())
        ['input_shape', 'max_params', 'modality', 'num_classes']
    """

    modality: str | None = None
    input_shape: tuple[int | str, ...] | None = None
    num_classes: int | None = None
    vocab_size: int | None = None
    max_params: int | None = None
    max_flops: int | None = None
    family: str | None = None
    attention: str | None = None
    num_heads: int | None = None
    norm: str | None = None
    placement: str | None = None
    activations: frozenset[str] | None = None
    mlp: str | None = None
    position: str | None = None
    residual: bool | None = None
    downsampling: bool | None = None
    conv_kinds: frozenset[str] | None = None
    depth: int | None = None
    hidden_size: int | None = None

    def __post_init__(self) -> None:
        if self.input_shape is not None:
            self.input_shape = tuple(self.input_shape)
        for name in ("activations", "conv_kinds"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, frozenset(value))
        for name, vocab in (("family", FAMILIES), ("attention", ATTENTION_KINDS), ("norm", NORMS),
                            ("mlp", MLP_KINDS), ("position", POSITIONS), ("placement", ("pre", "post"))):
            value = getattr(self, name)
            if value is not None and value not in vocab:
                raise ValueError(f"Constraints.{name}={value!r} is not one of {vocab}; use one of them or None")
        bad_kinds = [k for k in (self.modality or "").split("+") if self.modality and k not in MODALITIES]
        if bad_kinds:
            raise ValueError(f"Constraints.modality={self.modality!r} has unknown kinds {bad_kinds}; use kinds from "
                             f"{MODALITIES}, joined with '+'")
        for name, vocab in (("activations", ACTIVATIONS), ("conv_kinds", CONV_KINDS)):
            bad = sorted((getattr(self, name) or set()) - set(vocab))
            if bad:
                raise ValueError(f"Constraints.{name} has unknown names {bad}; use names from {vocab}")

    def set_fields(self) -> list[str]:
        """Names of the fields that constrain something (not ``None``), in declaration order."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the set fields (tuples and sets as sorted lists)."""
        out: dict[str, Any] = {}
        for name in self.set_fields():
            value = getattr(self, name)
            out[name] = sorted(value) if isinstance(value, frozenset) else list(value) if isinstance(value, tuple) \
                else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Constraints":
        """Inverse of :meth:`to_dict`; unknown keys raise naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown Constraints fields {unknown}; known fields are {sorted(known)}")
        return cls(**d)


@dataclass
class GraphTraits:
    """Everything :func:`check` compares constraints against, read once from a graph.

    ``facts`` is :func:`~mad.data.describe.analyze`'s reading; the other fields are in
    :class:`Constraints` vocabulary (``families`` is every family word the graph answers to,
    ``norms``/``activations`` every one it uses, ``flops`` ``None`` until needed).
    """

    facts: GraphFacts
    modality: str
    input_shape: tuple | None
    num_classes: int | None
    vocab_size: int | None
    num_params: int
    families: tuple[str, ...]
    attention: str
    num_heads: int | None
    norms: tuple[str, ...]
    activations: frozenset[str]
    mlp: str | None
    position: str
    residual: bool
    downsampling: bool
    conv_kinds: frozenset[str]
    flops: int | None = None


# --------------------------------------------------------------------------- structural reads
def _main_input(g: ArchGraph):
    """The input a prompt talks about: the first image/values input or token-id input (not a mask)."""
    for s in g.inputs:
        if not any(k in s.name.lower() for k in _NON_TOKEN):
            return s
    return g.inputs[0] if g.inputs else None


def _vocab(g: ArchGraph) -> int | None:
    for s in g.inputs:
        if s.dtype.startswith(("int", "uint")) and len(s.shape) >= 2 and not any(k in s.name.lower()
                                                                                 for k in _NON_TOKEN):
            if s.range:
                return int(s.range[1])
            for n in g.nodes.values():  # an embedding fed (directly) by the token input
                if n.op == "embedding" and "weight" in n.params:
                    if any(g.nodes[p].op == "input" and g.nodes[p].attrs.get("name") == s.name
                           for p in g.predecessors(n.id)):
                        return int(n.params["weight"][0])
    return None


def _num_classes(g: ArchGraph) -> int | None:
    """``K`` when the graph has one output of shape ``(B, K)`` (a classifier head)."""
    if len(g.outputs) != 1:
        return None
    shape = g.nodes[g.outputs[0]].shape
    if isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int):
        return shape[1]
    return None


def _is_layer(g: ArchGraph, nid: str) -> bool:
    op = g.nodes[nid].op
    return op in _LAYERS or (op in _MATMULS and any(g.nodes[p].op == "parameter" for p in g.predecessors(nid)))


def _has_residual(g: ArchGraph) -> bool:
    """An ``add`` whose one operand is upstream of the other through at least one layer (conv, linear, attention).

    Ancestor sets are bitmasks over the topological order, so this is one pass over the graph.
    """
    order = g.topo_order()
    index = {nid: i for i, nid in enumerate(order)}
    anc: dict[str, int] = {}
    layers = 0
    for nid in order:
        mask = 0
        for p in g.predecessors(nid):
            mask |= anc[p] | (1 << index[p])
        anc[nid] = mask
        if _is_layer(g, nid):
            layers |= 1 << index[nid]
    for nid in order:
        if g.nodes[nid].op not in ("add", "add_"):
            continue
        preds = g.predecessors(nid)
        if len(preds) < 2:
            continue
        for a, b in ((preds[0], preds[1]), (preds[1], preds[0])):
            between = anc[b] & ~anc[a] & ~(1 << index[a])
            if anc[b] >> index[a] & 1 and (between | (1 << index[b])) & layers:
                return True
    return False


def _strides(attr: Any) -> list[int]:
    if attr is None or attr == []:
        return []
    return [int(s) for s in (attr if isinstance(attr, list) else [attr]) if isinstance(s, int)]


def _has_downsampling(g: ArchGraph) -> bool:
    """A strided convolution or a strided/windowed pooling, not counting a patchify conv on a graph input."""
    for n in g.nodes.values():
        if n.op in _CONVS:
            if not any(s > 1 for s in _strides(n.attrs.get("stride"))):
                continue
            w, stride = n.params.get("weight") or [], _strides(n.attrs.get("stride"))
            stride = stride * (len(w) - 2) if len(stride) == 1 else stride
            patchify = len(w) > 2 and list(w[2:]) == stride
            fed_by_input = any(g.nodes[p].op == "input" for p in g.predecessors(n.id))
            if not (patchify and fed_by_input):
                return True
        elif n.op in _POOLS:
            stride = _strides(n.attrs.get("stride")) or _strides(n.attrs.get("kernel_size"))
            if any(s > 1 for s in stride):
                return True
    return False


def _heads(phrase: str | None) -> int | None:
    m = re.search(r"\((\d+) (?:query )?heads?", phrase or "")
    return int(m.group(1)) if m else None


def _facts_fields(f: GraphFacts) -> dict[str, Any]:
    """The :class:`Constraints`-vocabulary reading of :class:`~mad.data.describe.GraphFacts`."""
    gated = f.mlp if f.mlp in ("SwiGLU", "GeGLU", "ReGLU") else None
    position = {"rotary position embeddings": "rotary", "learned position embeddings": "learned"}.get(f.position or "")
    return {
        "families": _FAMILY_WORDS.get(f.family, ()),
        "attention": (f.attention or "none").split(" ")[0],
        "num_heads": _heads(f.attention),
        "norms": tuple(_NORM_NAMES.get(n, n.lower()) for n in f.norms),
        "activations": frozenset(_ACT_NAMES[a] for a in f.activations if a in _ACT_NAMES),
        "mlp": gated.lower() if gated else ("plain" if f.mlp else None),
        "position": position or "none",
        "conv_kinds": frozenset(k for k in f.conv_kinds if k in CONV_KINDS),
    }


def traits_of(graph: ArchGraph, facts: GraphFacts | None = None) -> GraphTraits:
    """Read a graph's :class:`GraphTraits` (pass ``facts`` if :func:`~mad.data.describe.analyze` already ran)."""
    f = facts or analyze(graph)
    main = _main_input(graph)
    fields_ = _facts_fields(f)
    if any(n.op in _RNNS for n in graph.nodes.values()):
        fields_["families"] = ("rnn",) + fields_["families"]
    return GraphTraits(
        facts=f,
        modality=f.modality,
        input_shape=tuple(main.shape[1:]) if main is not None else None,
        num_classes=_num_classes(graph),
        vocab_size=_vocab(graph),
        num_params=graph.num_params,
        residual=_has_residual(graph),
        downsampling=_has_downsampling(graph),
        **fields_,
    )


def _component_constraints(f: GraphFacts, t: dict[str, Any]) -> dict[str, Any]:
    """Component fields of :class:`Constraints` from facts (``t`` is :func:`_facts_fields` or traits as a dict)."""
    transformer = "transformer" in t["families"]
    return {
        "family": t["families"][0] if t["families"] else None,
        "attention": t["attention"],
        "num_heads": t["num_heads"],
        "norm": t["norms"][0] if t["norms"] else "none",
        "placement": f.placement if transformer and f.placement in ("pre", "post") else None,
        "activations": t["activations"] or None,
        "mlp": t["mlp"] if transformer else None,
        "position": t["position"] if transformer and t["position"] != "none" else None,
        "conv_kinds": t["conv_kinds"] or None,
        "depth": f.blocks or None,
        "hidden_size": f.width,
    }


def constraints_from_facts(f: GraphFacts) -> Constraints:
    """What :class:`~mad.data.describe.GraphFacts` alone says: modality, components, depth, width and
    ``max_params`` (the graph's own count); no input shape, head, FLOPs, residual or downsampling."""
    return Constraints(modality=f.modality if f.modality != "unknown" else None, max_params=f.num_params or None,
                       **_component_constraints(f, _facts_fields(f)))


def flops_of(graph: ArchGraph) -> int:
    """FLOPs of one forward pass of ``graph`` at its example sizes (one interpreter walk)."""
    from mad.graph import interpret

    return interpret(graph.copy(), update=False).flops


def constraints_of(graph: ArchGraph, flops: int | None = None, traits: GraphTraits | None = None) -> Constraints:
    """The constraints ``graph`` meets exactly: its input, head, budget (its own size) and components.

    Args:
        graph: any valid graph (captured, random or generated).
        flops: its FLOPs if known (e.g. the dataset's ``flops`` column); computed by one interpreter walk otherwise.
        traits: a :class:`GraphTraits` already read from ``graph``.

    Components that do not apply stay ``None``: no ``num_heads`` without attention, no ``downsampling``
    for token inputs, no ``placement``/``position``/``mlp`` outside transformers.
    """
    t = traits or traits_of(graph)
    spatial = t.modality.split("+")[0] in ("image", "video", "audio", "signal")
    return Constraints(
        modality=t.modality if t.modality != "unknown" else None,
        input_shape=t.input_shape,
        num_classes=t.num_classes,
        vocab_size=t.vocab_size,
        max_params=t.num_params,
        max_flops=flops if flops is not None else flops_of(graph),
        residual=t.residual,
        downsampling=t.downsampling if spatial else None,
        **_component_constraints(t.facts, vars(t)),
    )


def _shape_ok(want: tuple, have: tuple | None) -> bool:
    if have is None or len(want) != len(have):
        return False
    return all(isinstance(w, str) or isinstance(h, str) or w == h for w, h in zip(want, have))


def check(graph: ArchGraph, c: Constraints, traits: GraphTraits | None = None,
          flops: int | None = None) -> dict[str, bool]:
    """For every set field of ``c``, whether ``graph`` meets it (see :class:`Constraints` for each rule).

    Args:
        graph: the graph to check.
        c: the constraints.
        traits: a :class:`GraphTraits` already read from ``graph`` (saves re-reading it).
        flops: the graph's FLOPs if known; computed only when ``c.max_flops`` is set.

    Example:
        >>> from mad.data.random_space import RandomSpaceConfig, sample
        >>> check(sample(0, RandomSpaceConfig(modality="image")), Constraints(family="transformer", residual=None))
        {'family': False}
    """
    t = traits or traits_of(graph)
    out: dict[str, bool] = {}
    for name in c.set_fields():
        want = getattr(c, name)
        if name == "modality":
            ok = set(want.split("+")) <= set(t.modality.split("+"))
        elif name == "input_shape":
            ok = _shape_ok(want, t.input_shape)
        elif name == "max_params":
            ok = t.num_params <= want
        elif name == "max_flops":
            if t.flops is None:
                t.flops = flops if flops is not None else flops_of(graph)
            ok = t.flops <= want
        elif name == "family":
            ok = want in t.families
        elif name == "attention":
            ok = t.attention != "none" if want == "any" else t.attention == want
        elif name == "norm":
            ok = not t.norms if want == "none" else want in t.norms
        elif name == "placement":
            ok = t.facts.placement == want
        elif name in ("activations", "conv_kinds"):
            ok = want <= getattr(t, name)
        elif name == "depth":
            ok = t.facts.blocks == want
        elif name == "hidden_size":
            ok = t.facts.width == want
        else:  # exact: num_classes, vocab_size, num_heads, mlp, position, residual, downsampling
            ok = getattr(t, name) == want
        out[name] = bool(ok)
    return out


def adherence(graph: ArchGraph, c: Constraints, traits: GraphTraits | None = None, flops: int | None = None) -> float:
    """Share of the set fields of ``c`` that ``graph`` meets (1.0 when nothing is constrained)."""
    return share_met(check(graph, c, traits=traits, flops=flops))


def share_met(result: dict[str, bool]) -> float:
    """Share of the checks in ``result`` (from :func:`check`) that pass; 1.0 when there are none."""
    return sum(result.values()) / len(result) if result else 1.0
