"""Pictures of an ArchGraph: nested module clusters, readable labels, shapes on edges.

:func:`to_dot` builds the Graphviz DOT text; :func:`render` writes an SVG,
PNG or PDF (chosen by the file suffix) with the ``dot`` program, or, when
``dot`` is not installed, a simpler layered drawing with matplotlib.

What the picture shows:

- nodes grouped in nested clusters by ``scope`` (the module path); a cluster
  that would hold a single node is dropped and the node carries the module
  name instead;
- node labels with the op and its key attributes (``linear 64→128``,
  ``conv2d 3→16 3x3/2``, ``softmax dim=-1``) and the module name;
- colours by op kind: layers (own parameters) blue, activations orange,
  other primitives white, shape/movement ops small and grey, inputs and
  outputs green, free parameters small and yellow;
- edges labelled with the tensor shape (``1×16×64``; dtype when not float32);
  ``getitem`` nodes are folded into the edge label (``[0] 1×16×64``);
- ``depth=N`` collapses every node whose scope is N levels deep or deeper
  into one box per block (its scope's first N levels), labelled with the
  block name, op counts and parameter count. A numeric scope part joins the
  part before it (``encoder.layer.0`` has two levels: ``encoder``,
  ``layer.0``), so ``depth=2`` on BERT draws one box per encoder layer.

Large graphs: when ``depth`` is not given and the graph would draw more than
:data:`MAX_UNITS` boxes, the deepest depth that fits is chosen (and logged).

Example:
    >>> from mad.graph.render import render, to_dot
    >>> text = to_dot(g, depth=2)         # DOT source, no rendering
    >>> render(g, "bert.svg")            # nested clusters, all nodes
    >>> render(g, "bert.png", depth=2)   # one box per encoder layer
"""

from __future__ import annotations

import html
import logging
import math
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .arch_graph import ArchGraph, Node
from .ops import UnknownOpError, get_op

__all__ = [
    "FORMATS",
    "MAX_UNITS",
    "choose_depth",
    "human",
    "op_detail",
    "render",
    "scope_levels",
    "shape_text",
    "to_dot",
]

log = logging.getLogger(__name__)

FORMATS = ("svg", "png", "pdf", "dot")
MAX_UNITS = 300  # boxes drawn before an automatic collapse kicks in
MAX_FANOUT = 6  # a box feeding more boxes than this gets reference boxes instead of edges
_LABEL_EDGES_UP_TO = 200  # up to this many drawn edges, shapes are edge labels placed by the layout
_XLABEL_EDGES_UP_TO = 1000  # up to this many, labels placed after layout (much faster); beyond, none

# ----------------------------------------------------------------- styling
_FONT = "Helvetica,Arial,sans-serif"
_STYLE = {  # kind -> (fill, border, font size)
    "layer": ("#d6e6fb", "#3f6fb5", 11),
    "attention": ("#e6dcf6", "#6a4aa8", 11),
    "activation": ("#fde3c4", "#c57a1e", 10),
    "primitive": ("#ffffff", "#8a939e", 10),
    "shape": ("#f1f1f1", "#b4b9bf", 9),
    "input": ("#d3f0d8", "#3d8b4f", 11),
    "output": ("#d3f0d8", "#3d8b4f", 11),
    "parameter": ("#fff4bf", "#c9a92c", 8),
    "block": ("#e8eef8", "#5b6f8f", 11),
    "ref": ("#ffffff", "#9aa3ad", 8),
}
_CLUSTER_FILLS = ("#f6f8fc", "#eef2f9", "#f9f5ee", "#f2f7f2", "#f7f2f7")

_ACTIVATIONS = {
    "relu",
    "relu6",
    "gelu",
    "silu",
    "mish",
    "sigmoid",
    "tanh",
    "hardswish",
    "hardsigmoid",
    "hardtanh",
    "elu",
    "selu",
    "celu",
    "leaky_relu",
    "softplus",
    "glu",
    "softmax",
    "log_softmax",
    "threshold",
    "prelu",
}
_SHAPE_OPS = {
    "view",
    "reshape",
    "_unsafe_view",
    "permute",
    "transpose",
    "t",
    "unsqueeze",
    "squeeze",
    "squeeze_dims",
    "squeeze_all",
    "flatten",
    "unflatten",
    "expand",
    "expand_as",
    "contiguous",
    "clone",
    "slice",
    "select",
    "narrow",
    "cat",
    "stack",
    "split",
    "split_with_sizes",
    "chunk",
    "unbind",
    "tensor_split",
    "tensor_split_indices",
    "movedim",
    "alias",
    "detach",
    "lift_fresh_copy",
    "_to_copy",
    "to_dtype",
    "to_dtype_layout",
    "type_as",
    "dropout",
    "feature_dropout",
    "alpha_dropout",
    "repeat",
    "flip",
    "roll",
    "getitem",
    "_assert_tensor_metadata",
    "copy",
}
_SHORT = {"scaled_dot_product_attention": "sdpa"}
_ARITH = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "pow": "^", "rsub": "−"}
_DTYPE_SHORT = {
    "float32": "",
    "float64": "f64",
    "float16": "f16",
    "bfloat16": "bf16",
    "int64": "i64",
    "int32": "i32",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
    "bool": "bool",
    "complex64": "c64",
    "complex128": "c128",
}


def _kind(n: Node) -> str:
    """Colour family of a node."""
    if n.op == "input":
        return "input"
    if n.op == "parameter":
        return "parameter"
    if n.op == "scaled_dot_product_attention":
        return "attention"
    if n.op in _ACTIVATIONS:
        return "activation"
    if n.op in _SHAPE_OPS:
        return "shape"
    try:
        category = get_op(n.op).category
    except UnknownOpError:
        return "primitive"
    return "layer" if category == "layer" else "primitive"


# ----------------------------------------------------------------- text helpers
def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "(" + ", ".join(_num(x) for x in v) + ")"
    return str(v)


def human(n: float) -> str:
    """``1234567`` -> ``"1.23M"``; small numbers stay exact."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(int(n))


def shape_text(shape: Any, dtype: Any = None) -> str:
    """``[1, 16, 64]`` -> ``"1×16×64"``; a tuple of shapes in parentheses; dtype if not float32."""
    if shape is None:
        return ""
    if shape and isinstance(shape[0], list) or (isinstance(dtype, list)):
        dts = dtype if isinstance(dtype, list) else [None] * len(shape)
        return "(" + ", ".join(shape_text(s, d) for s, d in zip(shape, dts)) + ")"
    text = "×".join(str(d) for d in shape) if shape else "scalar"
    short = _DTYPE_SHORT.get(dtype, dtype) if isinstance(dtype, str) else ""
    return f"{text} {short}" if short else text


def _spatial(v: Any, sep: str = "x") -> str:
    """``[3, 3]`` -> ``"3x3"``; a single value as is."""
    return sep.join(str(x) for x in v) if isinstance(v, list) else str(v)


def _first(v: Any) -> Any:
    if isinstance(v, list) and v and all(x == v[0] for x in v):
        return v[0]
    return v


# ----------------------------------------------------------------- key attributes per op
def _linear(n: Node) -> str:
    w = n.params.get("weight")
    if not w or len(w) != 2:
        return ""
    return f"{w[1]}→{w[0]}" + ("" if "bias" in n.params else " no bias")


def _conv(n: Node) -> str:
    w = n.params.get("weight")
    if not w or len(w) < 3:
        return ""
    groups = n.attrs.get("groups") or 1
    transposed = n.op.startswith("conv_transpose")
    cin, cout = (w[0], w[1] * groups) if transposed else (w[1] * groups, w[0])
    text = f"{cin}→{cout} " + "x".join(str(k) for k in w[2:])
    stride = _first(n.attrs.get("stride", 1))
    if stride not in (1, [1], None):
        text += f"/{_spatial(stride)}"
    if groups > 1:
        text += " dw" if groups == cin and groups == cout else f" g{groups}"
    dilation = _first(n.attrs.get("dilation", 1))
    if dilation not in (1, [1], None):
        text += f" d{_spatial(dilation)}"
    return text


def _embedding(n: Node) -> str:
    w = n.params.get("weight")
    return f"{w[0]}×{w[1]}" if w and len(w) == 2 else ""


def _norm(n: Node) -> str:
    shape = n.attrs.get("normalized_shape")
    return _spatial(shape, "×") if shape else ""


def _batch_norm(n: Node) -> str:
    for role in ("weight", "running_mean"):
        if role in n.params:
            return str(n.params[role][0])
    return ""


def _group_norm(n: Node) -> str:
    return f"{n.attrs.get('num_groups')} groups"


def _sdpa(n: Node) -> str:
    bits = []
    if n.attrs.get("is_causal"):
        bits.append("causal")
    if n.attrs.get("dropout_p"):
        bits.append(f"p={_num(n.attrs['dropout_p'])}")
    if n.attrs.get("scale") is not None:
        bits.append(f"scale={_num(n.attrs['scale'])}")
    if n.attrs.get("enable_gqa"):
        bits.append("gqa")
    return " ".join(bits)


def _dim(n: Node) -> str:
    d = n.attrs.get("dim")
    text = "" if d is None else f"dim={_num(d)}"
    if n.attrs.get("keepdim"):
        text += " keep"
    return text


def _transpose(n: Node) -> str:
    return f"{n.attrs.get('dim0')}↔{n.attrs.get('dim1')}"


def _permute(n: Node) -> str:
    return _num(n.attrs.get("dims", []))


def _pool(n: Node) -> str:
    k = n.attrs.get("kernel_size")
    text = _spatial(k) if k is not None else ""
    s = n.attrs.get("stride")
    if s not in (None, [], 1, [1], [1, 1]):
        text += f"/{_spatial(_first(s))}"
    return text


def _adaptive_pool(n: Node) -> str:
    return "→" + _spatial(n.attrs.get("output_size", ""))


def _getitem(n: Node) -> str:
    return f"[{n.attrs.get('index')}]"


def _select(n: Node) -> str:
    return f"dim={n.attrs.get('dim')} [{n.attrs.get('index')}]"


def _none(n: Node) -> str:
    return ""


def _dropout(n: Node) -> str:
    return f"p={_num(n.attrs.get('p', 0.5))}"


def _cast(n: Node) -> str:
    return str(n.attrs.get("dtype") or "")


_DETAILS: dict[str, Callable[[Node], str]] = {
    "linear": _linear,
    "embedding": _embedding,
    "layer_norm": _norm,
    "rms_norm": _norm,
    "batch_norm": _batch_norm,
    "instance_norm": _batch_norm,
    "group_norm": _group_norm,
    "scaled_dot_product_attention": _sdpa,
    "transpose": _transpose,
    "permute": _permute,
    "getitem": _getitem,
    "dropout": _dropout,
    "to_dtype": _cast,
    "to_dtype_layout": _cast,
    "to_device": _cast,
    "select": _select,
    "view": _none,  # the shape is on the outgoing edge
    "reshape": _none,
    "_unsafe_view": _none,
    "expand": _none,
    "_to_copy": _cast,
}
for _name in (
    "conv1d",
    "conv2d",
    "conv3d",
    "conv1d_padding",
    "conv2d_padding",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
):
    _DETAILS[_name] = _conv
for _name in (
    "softmax",
    "log_softmax",
    "cat",
    "stack",
    "mean",
    "sum",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "cumsum",
    "logsumexp",
    "max_dim",
    "min_dim",
    "var",
    "std",
    "flatten",
    "unsqueeze",
    "squeeze",
    "slice",
    "chunk",
    "split",
    "unbind",
    "prod",
    "all",
    "any",
):
    _DETAILS[_name] = _dim
for _name in ("avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d"):
    _DETAILS[_name] = _pool
for _name in (
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
):
    _DETAILS[_name] = _adaptive_pool


_QUIET_ATTRS = {"pin_memory", "layout", "device", "memory_format", "non_blocking", "copy", "train"}


def _generic(n: Node) -> str:
    """Non-default scalar attributes, at most two; constants of arithmetic ops as ``× 0.125``."""
    try:
        op = get_op(n.op)
    except UnknownOpError:
        return ""
    bits = []
    tensor_args = {a.name for a in op.args}
    for key, value in n.attrs.items():
        if key in tensor_args:
            if not isinstance(value, list) and n.op in _ARITH:
                bits.append(f"{_ARITH[n.op]} {_num(value)}")
            elif not isinstance(value, list):
                bits.append(f"{key}={_num(value)}")
            continue
        spec = op.attrs.get(key)
        if (spec is not None and value == spec.default) or key in _QUIET_ATTRS:
            continue
        if key == "alpha" and value == 1:
            continue
        if isinstance(value, (bool, int, float, str)) or (isinstance(value, list) and len(value) <= 4):
            bits.append(f"{key}={_num(value)}")
    return " ".join(bits[:2])


def op_detail(n: Node) -> str:
    """Key attributes of a node as a short text (``"64→128"``, ``"3→16 3x3/2"``, ``"dim=-1"``)."""
    fn = _DETAILS.get(n.op)
    try:
        text = fn(n) if fn else _generic(n)
    except Exception:  # a malformed attr must not stop the picture
        log.debug("no detail for node %s (%s)", n.id, n.op, exc_info=True)
        text = ""
    return text if len(text) <= 40 else text[:39] + "…"


# ----------------------------------------------------------------- scopes
def scope_levels(scope: str) -> tuple[str, ...]:
    """Hierarchy levels of a scope; a numeric part joins the name before it.

    >>> scope_levels("encoder.layer.0.attention.self")
    ('encoder', 'layer.0', 'attention', 'self')
    >>> scope_levels("0.1.conv")
    ('0', '1', 'conv')
    """
    if not scope:
        return ()
    levels: list[str] = []
    for part in scope.split("."):
        if part.isdigit() and levels and not levels[-1].split(".")[-1].isdigit():
            levels[-1] += "." + part
        else:
            levels.append(part)
    return tuple(levels)


def _own_params(n: Node) -> int:
    """Trainable parameters a node owns (buffers and constants not counted)."""
    if n.op == "parameter":
        return n.num_params if n.attrs.get("kind", "parameter") == "parameter" else 0
    try:
        buffers = set(get_op(n.op).buffer_args)
    except UnknownOpError:
        buffers = set()
    return sum(math.prod(s) for r, s in n.params.items() if r not in buffers)


# ----------------------------------------------------------------- display model
@dataclass
class _Unit:
    """One box of the picture: a node, a collapsed block, or an output marker."""

    key: str
    kind: str
    title: str
    detail: str = ""
    note: str = ""
    path: tuple[str, ...] = ()
    tooltip: str = ""


@dataclass
class _Link:
    src: str
    dst: str
    labels: list[str] = field(default_factory=list)
    dashed: bool = False
    invisible: bool = False  # ranks a reference box next to its user's other inputs; not drawn


@dataclass
class _Picture:
    title: str
    units: dict[str, _Unit]
    links: list[_Link]
    cluster_params: dict[tuple[str, ...], int]
    depth: int | None


def _shapes(g: ArchGraph) -> dict[str, tuple[Any, Any]]:
    """Output shape and dtype of every node; inferred on a copy where the graph has none recorded."""
    known = {nid: (n.shape, n.dtype) for nid, n in g.nodes.items()}
    if all(s is not None for s, _ in known.values()):
        return known
    try:
        c = g.copy()
        c.infer()
        return {nid: (n.shape, n.dtype) for nid, n in c.nodes.items()}
    except Exception as e:  # noqa: BLE001 - draw without shapes rather than fail
        log.info("shapes unknown (%s); edges drawn without shapes", str(e).split("\n")[0])
        return known


def _block_of(levels: tuple[str, ...], depth: int | None) -> tuple[str, ...] | None:
    if depth is None or len(levels) < depth or depth < 0:
        return None
    return levels[:depth]


def _count_units(g: ArchGraph, levels: dict[str, tuple[str, ...]], depth: int | None) -> int:
    blocks: dict[tuple[str, ...], int] = Counter()
    loose = 0
    for nid, n in g.nodes.items():
        if n.op == "getitem":
            continue
        b = _block_of(levels[nid], depth)
        if b is None:
            loose += 1
        else:
            blocks[b] += 1
    return loose + len(blocks)


def choose_depth(g: ArchGraph, max_units: int = MAX_UNITS) -> int | None:
    """The deepest collapse depth that draws at most ``max_units`` boxes (None: draw every node).

    Returns 0 when even one box per top-level block is too many.
    """
    levels = {nid: scope_levels(n.scope) for nid, n in g.nodes.items()}
    if _count_units(g, levels, None) <= max_units:
        return None
    deepest = max((len(v) for v in levels.values()), default=0)
    for d in range(deepest, 0, -1):
        if _count_units(g, levels, d) <= max_units:
            return d
    return 0


def _picture(g: ArchGraph, depth: int | None) -> _Picture:
    levels = {nid: scope_levels(n.scope) for nid, n in g.nodes.items()}
    shapes = _shapes(g)
    units: dict[str, _Unit] = {}
    owner: dict[str, str] = {}  # node id -> unit key
    members: dict[str, list[Node]] = defaultdict(list)
    cluster_params: dict[tuple[str, ...], int] = Counter()

    for nid, n in g.nodes.items():
        p = _own_params(n)
        for i in range(1, len(levels[nid]) + 1):
            cluster_params[levels[nid][:i]] += p

    # getitem nodes are folded into the edges that leave them
    folded: dict[str, tuple[str, str]] = {}
    for nid, n in g.nodes.items():
        if n.op == "getitem":
            preds = g.predecessors(nid)
            if preds:
                folded[nid] = (preds[0], f"[{n.attrs.get('index')}]")

    def source_of(nid: str) -> tuple[str, str]:
        prefix = ""
        while nid in folded:
            nid, tag = folded[nid]
            prefix = tag + prefix
        return nid, prefix

    def node_unit(n: Node, path: tuple[str, ...]) -> _Unit:
        shape, dtype = shapes.get(n.id, (None, None))
        if n.op == "input":
            title, detail = str(n.attrs.get("name", n.id)), shape_text(shape, dtype)
        elif n.op == "parameter":
            kind_attr = n.attrs.get("kind", "parameter")
            title = n.param_name("data").rsplit(".", 1)[-1] if (n.param_names or n.scope) else kind_attr
            detail = shape_text(n.params.get("data"), n.attrs.get("dtype"))
            if kind_attr != "parameter":
                detail += f" {kind_attr}"
        else:
            title, detail = _SHORT.get(n.op, n.op), op_detail(n)
        return _Unit(n.id, _kind(n), title, detail, path=path, tooltip=f"{n.id} ({n.op}) {n.scope}".strip())

    for nid, n in g.nodes.items():
        if nid in folded:
            continue
        block = _block_of(levels[nid], depth) if n.op != "input" else None
        if block is None:
            units[nid] = node_unit(n, levels[nid])
            owner[nid] = nid
        else:
            key = "block:" + ".".join(block)
            owner[nid] = key
            members[key].append(n)

    for key, nodes in members.items():
        block = levels[nodes[0].id][: depth or 0]
        if len(nodes) == 1:  # a block of one node is drawn as the node
            units[nodes[0].id] = node_unit(nodes[0], levels[nodes[0].id])
            owner[nodes[0].id] = nodes[0].id
            continue
        real = [m for m in nodes if m.op != "parameter"]
        counts = Counter(_SHORT.get(m.op, m.op) for m in real)
        rank = {"layer": 0, "attention": 0, "activation": 1, "primitive": 1, "shape": 2}
        kind_of = {_SHORT.get(m.op, m.op): rank.get(_kind(m), 1) for m in real}
        shown = sorted(counts, key=lambda c: (kind_of[c], -counts[c], c))[:4]
        ops_text = ", ".join(f"{c}×{counts[c]}" if counts[c] > 1 else c for c in shown)
        if len(counts) > len(shown):
            ops_text += f", +{len(counts) - len(shown)} more"
        params = cluster_params.get(block, 0) if block else sum(_own_params(m) for m in nodes)
        summary = f"{len(real)} ops" + (f" · {human(params)} params" if params else "")
        title = block[-1] if block else g.name
        units[key] = _Unit(
            key, "block", title, ops_text, note=summary, path=block[:-1], tooltip=".".join(block) or g.name
        )
        for m in nodes:
            owner[m.id] = key

    links: dict[tuple[str, str], _Link] = {}
    for e in g.edges:
        if e.dst in folded or e.dst not in owner:
            continue
        src, tag = source_of(e.src)
        if src not in owner:
            continue
        a, b = owner[src], owner[e.dst]
        if a == b:
            continue
        link = links.get((a, b))
        if link is None:
            link = links[(a, b)] = _Link(a, b, dashed=units[a].kind == "parameter")
        shape, dtype = shapes.get(e.src, (None, None))
        label = (tag + " " if tag else "") + shape_text(shape, dtype)
        if units[a].kind != "parameter" and label and label not in link.labels:
            link.labels.append(label)

    keys = g.output_keys or []
    for i, o in enumerate(g.outputs):
        src, tag = source_of(o)
        if src not in owner:
            continue
        title = keys[i] if i < len(keys) else ("output" if len(g.outputs) == 1 else f"output {i}")
        key = f"out:{i}"
        units[key] = _Unit(key, "output", str(title), tooltip=f"{key} graph output {i} ({o})")
        shape, dtype = shapes.get(o, (None, None))
        label = (tag + " " if tag else "") + shape_text(shape, dtype)
        links[(owner[src], key)] = _Link(owner[src], key, [label] if label else [])

    _split_fanout(units, links)

    try:
        total = g.num_params
    except UnknownOpError:
        total = sum(_own_params(n) for n in g.nodes.values())
    title = f"{g.name}" + (f" ({g.source})" if g.source else "") + f" · {len(g.nodes)} nodes · {human(total)} params"
    if depth is not None:
        title += f" · depth {depth}"
    return _Picture(title, units, list(links.values()), dict(cluster_params), depth)


def _split_fanout(units: dict[str, _Unit], links: dict[tuple[str, str], _Link]) -> None:
    """Replace the edges of a box that feeds more than :data:`MAX_FANOUT` boxes by small reference boxes.

    A value used everywhere (an attention mask, rotary tables) would otherwise
    draw a curtain of long edges across the picture; each user gets a dashed
    box naming the source next to it instead, and the source notes its uses.
    """
    fanout: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in links:
        if units[key[1]].kind != "output":
            fanout[key[0]].append(key)
    for src, keys in fanout.items():
        if len(keys) <= MAX_FANOUT or units[src].kind == "parameter":
            continue
        u = units[src]
        u.note = (u.note + " · " if u.note else "") + f"used by {len(keys)}"
        for key in keys:
            link = links.pop(key)
            ref = f"ref:{src}:{key[1]}"
            units[ref] = _Unit(
                ref,
                "ref",
                u.title,
                link.labels[0] if link.labels else "",
                path=units[key[1]].path,
                tooltip=f"{ref} from {u.tooltip or src}",
            )
            links[(ref, key[1])] = _Link(ref, key[1])
            anchor = next((a for a, b in links if b == key[1] and not a.startswith("ref:")), None)
            if anchor is not None:  # keep the reference at its user's level, not at the top of the picture
                links[(anchor, ref)] = _Link(anchor, ref, invisible=True)


def _prune_clusters(pic: _Picture) -> dict[tuple[str, ...], list[str]]:
    """Cluster path -> unit keys placed directly in it, clusters in first-seen order.

    A cluster that would hold one box and no sub-cluster is dropped: its box
    moves to the parent cluster and carries the cluster's name as a note.
    """
    direct: dict[tuple[str, ...], list[str]] = defaultdict(list)
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
    seen: set[tuple[str, ...]] = {()}
    for u in pic.units.values():
        direct[u.path].append(u.key)
        for i in range(1, len(u.path) + 1):
            p = u.path[:i]
            if p not in seen:
                seen.add(p)
                children[p[:-1]].append(p)

    def fold(p: tuple[str, ...]) -> None:
        for c in list(children[p]):
            fold(c)
        if not p or children[p]:
            return
        parent = p[:-1]
        keys = direct.pop(p, [])
        if len(keys) == 1:
            u = pic.units[keys[0]]
            if p[-1] != u.title:
                u.note = p[-1] if not u.note else f"{p[-1]}.{u.note}"
            direct[parent].append(keys[0])
        elif keys:
            direct[p] = keys
            return
        children[parent].remove(p)

    fold(())
    placement: dict[tuple[str, ...], list[str]] = {}

    def collect(p: tuple[str, ...]) -> None:
        placement[p] = direct.get(p, [])
        for c in children[p]:
            collect(c)

    collect(())
    return placement


# ----------------------------------------------------------------- DOT
def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _h(s: str) -> str:
    return html.escape(s, quote=True)


def _unit_dot(u: _Unit, ident: str) -> str:
    fill, border, size = _STYLE[u.kind]
    small = max(size - 2, 7)
    if u.kind == "parameter":  # one compact line
        rows = [_h(u.title) + (f' <FONT COLOR="#6b5a12">{_h(u.detail)}</FONT>' if u.detail else "")]
    else:
        rows = [f"<B>{_h(u.title)}</B>"]
    if u.detail and u.kind != "parameter":
        rows.append(f'<FONT POINT-SIZE="{small}">{_h(u.detail)}</FONT>')
    if u.note:
        rows.append(f'<FONT POINT-SIZE="{small}" COLOR="#5f6b7a"><I>{_h(u.note)}</I></FONT>')
    label = "<" + "<BR/>".join(rows) + ">"
    attrs = [
        f"label={label}",
        f'fillcolor="{fill}"',
        f'color="{border}"',
        f"fontsize={size}",
        f"tooltip={_q(u.tooltip or u.title)}",
    ]
    if u.kind == "parameter":
        attrs += ["shape=box", 'style="filled"', "height=0.15", "width=0.3", 'margin="0.09,0.03"']
    elif u.kind == "shape":
        attrs += ['style="rounded,filled"', "height=0.25", 'margin="0.06,0.02"']
    elif u.kind in ("input", "output"):
        attrs += ["shape=box", 'style="rounded,filled,bold"', "penwidth=1.4"]
    elif u.kind == "ref":
        attrs += ['style="rounded,dashed,filled"', 'fontcolor="#55606e"', "height=0.2", 'margin="0.05,0.02"']
    elif u.kind == "block":
        attrs += ["shape=box3d", 'style="filled"', 'margin="0.14,0.06"']
    elif u.kind in ("layer", "attention"):
        attrs += ['style="rounded,filled,bold"', "penwidth=1.3"]
    else:
        attrs += ['style="rounded,filled"']
    return f"  {ident} [{', '.join(attrs)}];"


def to_dot(g: ArchGraph, depth: int | None = None, *, max_units: int = MAX_UNITS, rankdir: str = "TB") -> str:
    """Graphviz DOT text of the picture of ``g`` (see the module docstring).

    Args:
        g: the graph; shapes are read from the nodes, or inferred on a copy.
        depth: collapse scopes at this many levels into one box per block;
            ``None`` draws every node, unless that exceeds ``max_units``
            boxes, in which case :func:`choose_depth` picks a depth.
        max_units: box budget for the automatic collapse (``0`` disables it).
        rankdir: ``"TB"`` (top to bottom) or ``"LR"``.

    Raises:
        ValueError: ``depth`` is negative.
        GraphError: the graph has a cycle.
    """
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    g.topo_order()  # cycles make no picture; fail with the node name
    if depth is None and max_units:
        auto = choose_depth(g, max_units)
        if auto is not None:
            log.info(
                "%s has %d nodes; drawing it collapsed to depth %d (pass depth to change)", g.name, len(g.nodes), auto
            )
            depth = auto
    pic = _picture(g, depth)
    placement = _prune_clusters(pic)
    ident = {key: f"n{i}" for i, key in enumerate(pic.units)}
    n_links = len(pic.links)
    label_key = "label" if n_links <= _LABEL_EDGES_UP_TO else "xlabel" if n_links <= _XLABEL_EDGES_UP_TO else None

    lines = [
        f"digraph {_q(g.name)} {{",
        (
            f'  graph [rankdir={rankdir}, newrank=true, fontname="{_FONT}", fontsize=13, labelloc=t, labeljust=l, '
            f'nodesep=0.22, ranksep=0.32, pad=0.25, bgcolor="white", label={_q(pic.title)}];'
        ),
        f'  node [shape=box, fontname="{_FONT}", margin="0.1,0.04", height=0.3, penwidth=1.0];',
        f'  edge [fontname="{_FONT}", fontsize=8, fontcolor="#55606e", color="#7d8794", arrowsize=0.6, penwidth=0.9];',
    ]
    counter = [0]

    def emit(path: tuple[str, ...], indent: str) -> None:
        for key in placement.get(path, []):
            lines.append(indent + _unit_dot(pic.units[key], ident[key]).lstrip())
        kids = [p for p in placement if len(p) == len(path) + 1 and p[: len(path)] == path]
        for c in kids:
            counter[0] += 1
            fill = _CLUSTER_FILLS[(len(c) - 1) % len(_CLUSTER_FILLS)]
            params = pic.cluster_params.get(c, 0)
            label = (
                f"<<B>{_h(c[-1])}</B>"
                + (f' <FONT POINT-SIZE="9" COLOR="#5f6b7a">{human(params)} params</FONT>' if params else "")
                + ">"
            )
            lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
            lines.append(
                f'{indent}  label={label}; style="rounded,filled"; fillcolor="{fill}"; '
                f'color="#b7c0cc"; fontsize=11; tooltip={_q(".".join(c))};'
            )
            emit(c, indent + "  ")
            lines.append(f"{indent}}}")

    emit((), "  ")
    for link in pic.links:
        attrs = []
        if link.labels and label_key:
            text = link.labels[0] + (f" (+{len(link.labels) - 1})" if len(link.labels) > 1 else "")
            attrs.append(f"{label_key}={_q(' ' + text)}")
        if link.invisible:
            attrs = ["style=invis", "arrowhead=none"]
        elif link.dashed:
            attrs += ["style=dashed", 'color="#c9a92c"', "arrowsize=0.4"]
        lines.append(f"  {ident[link.src]} -> {ident[link.dst]}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- output
def _format_of(path: Path, fmt: str | None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise ValueError(f"cannot write {path.name!r}: unknown picture format {fmt!r}; use one of {list(FORMATS)}")
    return fmt


def render(g: ArchGraph, path: str | Path, depth: int | None = None, fmt: str | None = None) -> Path:
    """Draw ``g`` to ``path``; the format comes from ``fmt`` or the suffix (svg, png, pdf, dot).

    Uses Graphviz ``dot`` when installed; otherwise logs a warning and draws a
    layered picture with matplotlib (no clusters). Returns the written path.

    Raises:
        ValueError: unknown format or negative depth.
        GraphError: the graph has a cycle.
    """
    path = Path(path)
    fmt = _format_of(path, fmt)
    dot_text = to_dot(g, depth)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        path.write_text(dot_text)
        return path
    if shutil.which("dot") is None:
        log.warning(
            "Graphviz 'dot' is not installed; drawing %s with matplotlib instead (no module clusters). "
            "Install graphviz (e.g. `apt install graphviz`) for the full picture.",
            path.name,
        )
        _render_matplotlib(g, path, fmt, depth)
        return path
    import graphviz

    text = dot_text
    if fmt == "png":
        text = text.replace("  graph [", "  graph [dpi=110, ", 1)
    try:
        data = graphviz.Source(text, engine="dot").pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        log.warning("Graphviz 'dot' could not be run; drawing %s with matplotlib instead.", path.name)
        _render_matplotlib(g, path, fmt, depth)
        return path
    path.write_bytes(data)
    return path


def _render_matplotlib(g: ArchGraph, path: Path, fmt: str, depth: int | None) -> None:
    """Layered drawing without Graphviz: rows by longest path, boxes coloured like the DOT picture."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if depth is None:
        depth = choose_depth(g, MAX_UNITS)
    pic = _picture(g, depth)
    preds: dict[str, list[str]] = defaultdict(list)
    for link in pic.links:
        preds[link.dst].append(link.src)
    order = list(pic.units)
    rank: dict[str, int] = {}
    pending = set(order)
    while pending:  # the units form a DAG because the graph does (blocks may merge; guard anyway)
        progressed = False
        for key in order:
            if key in pending and all(p in rank or p == key for p in preds[key]):
                rank[key] = 1 + max((rank[p] for p in preds[key] if p != key), default=-1)
                pending.discard(key)
                progressed = True
        if not progressed:
            for key in pending:
                rank[key] = max(rank.values(), default=0) + 1
            break
    rows: dict[int, list[str]] = defaultdict(list)
    for key in order:
        rows[rank[key]].append(key)
    width = max(len(r) for r in rows.values())
    pos = {}
    for r, keys in rows.items():
        for i, key in enumerate(keys):
            pos[key] = ((i - (len(keys) - 1) / 2) * 2.6, -r * 1.0)
    fig = Figure(figsize=(min(2.0 + 2.6 * width, 200), min(1.5 + 1.0 * len(rows), 300)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    for link in pic.links:
        if link.invisible:
            continue
        (x0, y0), (x1, y1) = pos[link.src], pos[link.dst]
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0 - 0.22),
                (x1, y1 + 0.22),
                arrowstyle="-|>",
                mutation_scale=8,
                color="#7d8794",
                lw=0.8,
                linestyle="--" if link.dashed else "-",
            )
        )
        if link.labels:
            ax.text(
                (x0 + x1) / 2 + 0.05,
                (y0 + y1) / 2,
                link.labels[0],
                fontsize=6,
                color="#55606e",
                ha="left",
                va="center",
                zorder=1.5,
            )
    for key, u in pic.units.items():
        fill, border, size = _STYLE[u.kind]
        x, y = pos[key]
        ax.add_patch(
            FancyBboxPatch((x - 1.1, y - 0.22), 2.2, 0.44, boxstyle="round,pad=0.02", fc=fill, ec=border, zorder=2)
        )
        text = u.title + (f"\n{u.detail}" if u.detail else "")
        ax.text(x, y, text, ha="center", va="center", fontsize=max(size - 3, 5), zorder=3)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.4, max(xs) + 1.4)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.8)
    ax.text((min(xs) + max(xs)) / 2, max(ys) + 0.55, pic.title, ha="center", fontsize=9)
    fig.savefig(path, format=fmt, dpi=100)
