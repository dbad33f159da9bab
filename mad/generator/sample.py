"""Constrained decoding: sample token sequences that are valid graphs at every step.

:class:`Sampler` runs ``n`` sequences in lockstep with a key/value cache. At
every step each sequence may only take tokens its grammar allows next:

- at a node boundary: an input reference ``@k`` to an existing node, an op,
  or ``<out>``;
- after the references: more references (up to 4) or an op not yet rejected
  on these inputs, seen in training with that many inputs of their dtype
  kinds (no ``gelu`` on token ids, no ``bitwise_and`` on floats) and fitting
  their shapes (:func:`~mad.generator.fits.op_fits`, and each required attr
  has a value that fits);
- after the op: a ``key=value`` token of that op's attrs or layer sizes, in
  sorted key order, whose value fits the inputs
  (:func:`~mad.generator.fits.value_fits`: a conv kernel of the conv's rank,
  a reshape target of the input's size...), or, once the node takes as many
  inputs as it has references, a token that starts the next node.

When a node is finished, it is added through
:class:`~mad.tokenizer.Assembler` (that is, :class:`~mad.graph.GraphBuilder`:
its shape rule runs on the actual input shapes) and checked against the
parameter budget. A node that fails is taken back (its cache slots are masked
out), its op is banned on those inputs, and the sequence resamples from the
node's start; so the emitted sequence is a valid partial graph after every
node. Inputs on which every op is banned are a dead end: the node is taken
back and no reference sequence leads to them again at that place. A node
whose shape would not run at every batch size (``4 // B``) or holds over 2^24
elements at batch 1 (the largest value in the shipped dataset; a 64M-element
attention map took 14 s to check) is rejected too, as is one that owns more
than 2^26 parameters (a 1x64 linear on a flattened 16M-element map); a prefix
with a larger tensor or layer, such as a 7B model's vocabulary table, raises
that cap to its size. So are nodes that run but mean nothing or break the
backward pass: token ids made numbers other than by an embedding, indices no
shape check bounds, a table sliced to one length only, a conv, pool or batch
norm on a channels-last tensor, and an in-place op on a trainable parameter,
on a tensor an earlier node keeps for its backward pass, or on the output of
an op whose backward reads it (``*_fault``).
Only nodes that depend on a graph input and that the caller's ``output_ok``
accepts (a float tensor with the batch dim, per-token features for a language
model...) may become the output.
After ``max_retries`` failures at one place the sequence closes at its last
such node; at the length limit only ``<out>`` is left.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mad.graph import ArchGraph, get_op
from mad.graph.aliasing import mutates, shares_storage, written_tensor
from mad.graph.builder_ops import port_count
from mad.graph.layer_params import LAYER_RULES
from mad.graph.passes.activation import ACTIVATIONS
from mad.graph.ops.symbols import attr_symbols, resolve_attrs
from mad.graph.symbolic import SymbolError, evaluate, free_symbols, to_poly
from mad.graph.validate import validate
from mad.tokenizer import MAX_REF, Assembler, GraphTokenizer, NodeRec

from .fits import SHAPE_RULE_OPS, node_fits, op_fits, shape_fits, static_fits
from .kernels import kernel_fault, picked_dims
from .model import GraphTransformer, KVCache
from .structure import ROLE, NodeDistances, bucket_row

__all__ = ["Sampler", "Sample", "fork_starmap"]

MAX_REFS = 4
MAX_NUMEL = 1 << 24  # elements of one new tensor at batch 1 (64 MiB in float32; unless the prefix holds a larger one)
MAX_LAYER = 1 << 26  # parameters a new node may own (unless the prefix holds a larger layer)


@dataclass
class Sample:
    """One sampled sequence: its tokens, the graph (None when it could not be finished) and log-probability."""

    tokens: list[str]
    graph: ArchGraph | None
    logprob: float
    error: str | None = None
    retries: int = 0


@dataclass
class _Seq:
    asm: Assembler
    tokens: list[str] = field(default_factory=list)  # alive graph tokens
    slots: list[tuple[str, int, int, int]] = field(default_factory=list)  # per cache slot: token, role, node, depth
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per cache slot (preallocated)
    slot_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    depths: list[int] = field(default_factory=list)  # per node
    phase: str = "start"  # start | refs | attrs | out | done
    refs: list[int] = field(default_factory=list)
    op: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    last_key: str = ""
    node_slots: list[int] = field(default_factory=list)  # cache slots of the node in progress
    node_tokens: int = 0
    banned: dict[tuple, set[int]] = field(default_factory=dict)
    dead: set[tuple[int, ...]] = field(default_factory=set)  # input lists no op accepts here (a dead end)
    fails_here: int = 0
    retries: int = 0
    logprob: float = 0.0
    outputs: list[int] = field(default_factory=list)
    graph: ArchGraph | None = None
    error: str | None = None
    pending: tuple[str, int, int, int] | None = None  # the token to feed next step, with its structure
    params: int = 0
    ok_outputs: list[int] = field(default_factory=list)  # nodes that may be the graph's output
    node_depth: int = 0  # depth of the node in progress (set by its op token)
    in_shapes: list[Any] = field(default_factory=list)  # shapes of the node in progress's inputs
    fit_key: str = ""  # those shapes and the graph's dims, for cached fit checks
    batchy: list[bool] = field(default_factory=list)  # per node: its shape holds the batch symbol
    flat: int = 0  # how many of the last nodes in a row lack the batch symbol
    ids: list[bool] = field(default_factory=list)  # per node: it holds token ids (:func:`holds_ids`)
    chan: list[int | None] = field(default_factory=list)  # per node: where it holds channels (:func:`channel_dim`)
    fed: list[bool] = field(default_factory=list)  # per node: it depends on a graph input (else it may not be output)
    max_layer: int = MAX_LAYER  # parameters one node may own (or the prefix's largest layer)
    max_numel: int = MAX_NUMEL  # elements of one new tensor at batch 1 (or the prefix's largest)


def dtype_kind(dtype: Any) -> str:
    """A tensor dtype's kind: ``f`` floating, ``i`` integer, ``b`` bool, ``t`` several outputs, ``?`` unknown."""
    if isinstance(dtype, list):
        return "t"
    if not isinstance(dtype, str):
        return "?"
    if dtype.startswith(("float", "bfloat", "complex")):
        return "f"
    return "b" if dtype == "bool" else "i"


# ops that pass token ids on as ids (an integer tensor of the same values, another layout or a part of it)
_ID_PASS = frozenset({"view", "reshape", "_unsafe_view", "flatten", "unsqueeze", "squeeze", "contiguous", "clone",
                      "to_device", "to_dtype", "to_dtype_layout", "_to_copy", "alias", "detach", "select", "slice",
                      "expand", "repeat", "getitem", "lift_fresh_copy", "pad"})


def holds_ids(g: ArchGraph, nid: str, inputs: list[bool]) -> bool:
    """Whether node ``nid`` of ``g`` holds token ids: an integer model input whose range spans more than two
    values (a vocabulary; not a 0/1 mask or segment id), or an integer tensor passed on from ids (``inputs``:
    whether each of its inputs holds them) by a view, slice, copy or cast."""
    node = g.nodes[nid]
    if dtype_kind(node.dtype) != "i":
        return False
    if node.op == "input":
        spec = next((s for s in g.inputs if s.name == node.attrs.get("name")), None)
        return spec is not None and (spec.range is None or spec.range[1] - spec.range[0] > 2)
    return node.op in _ID_PASS and any(inputs)


def ids_fault(node: Any, inputs: list[bool]) -> str | None:
    """Why a node may not be added: it turns token ids into floating-point numbers other than by an embedding
    lookup (``ids.float() * w`` runs but is no language model: retargeting finds no table to give the new
    vocabulary). Comparisons, masks and integer arithmetic on ids stay allowed."""
    if any(inputs) and dtype_kind(node.dtype) == "f" and node.op != "embedding":
        return f"{node.op} turns token ids into floating-point values (only an embedding may)"
    return None


def index_fault(g: ArchGraph, node: Any) -> str | None:
    """Why a node may not be added: it picks entries of a batch dim (``index``, ``index_select``) with a tensor
    of indices whose size does not follow the batch (``x[arange(B), last]`` does; a fixed table of positions
    does not) or with positions a sort or top-k found along a dim without the batch (values bounded by that
    dim's size), or it takes indices cast from a network's activations; or it looks up a fixed table
    (``embedding``) or picks entries of a dim without the batch with positions that count the batch
    (``arange(B)``). No shape check sees index values: ones drawn for the example batch run out of range at
    batch 1, positions up to the example batch at a larger one, and cast activations anywhere."""
    if node.op == "embedding":
        ids = written_tensor(g, node.id)
        origin = _source(g, ids) if ids is not None else None
        if origin is not None and _counts_batch(g.nodes[origin]):
            return "embedding looks up positions that grow with the batch size in a fixed table"
        return None
    if node.op not in ("index", "index_select"):
        return None
    shape, picked = picked_dims(g, node)
    for k, src in picked:
        if k < len(shape) and has_batch(shape[k]) and (src is None or not has_batch(g.nodes[src].shape)):
            return f"{node.op} picks entries of the batch dim with indices whose size does not follow the batch"
        origin = _source(g, src) if src is not None else None
        if origin is not None and _cast_from_activations(g, origin):
            return f"{node.op} takes indices cast from floating-point activations (values no check bounds)"
        if k < len(shape) and not has_batch(shape[k]) and origin is not None and _counts_batch(g.nodes[origin]):
            return f"{node.op} picks entries of a fixed-size dim with positions that grow with the batch size"
        if k < len(shape) and has_batch(shape[k]) and origin is not None and _ranks_fixed_dim(g, origin):
            return (f"{node.op} picks entries of the batch dim with positions along a fixed-size dim (a sort or "
                    "top-k of features)")
    return None


_RANKS = frozenset({"topk", "sort", "argsort", "argmax", "argmin"})


def _counts_batch(node: Any) -> bool:
    """Whether ``node`` is an ``arange`` whose bounds hold the batch symbol (values up to the batch size)."""
    return node.op.startswith("arange") and has_batch([node.attrs.get("start"), node.attrs.get("end")])


def _ranks_fixed_dim(g: ArchGraph, nid: str) -> bool:
    """Whether node ``nid`` (an index tensor's :func:`_source`) is a sort, top-k or arg-max along a dim without
    the batch: the positions it finds are bounded by that dim's size, not by the batch."""
    node = g.nodes[nid]
    preds = g.predecessors(nid)
    if node.op not in _RANKS or not preds:
        return False
    shape = g.nodes[preds[0]].shape
    dim = node.attrs.get("dim", -1)
    if not isinstance(shape, list) or not shape:
        return False
    if dim is None:  # over the flattened tensor
        return not any(has_batch(d) for d in shape)
    return isinstance(dim, int) and -len(shape) <= dim < len(shape) and not has_batch(shape[dim])


_CASTS = frozenset({"to_dtype", "type_as", "_to_copy", "to_dtype_layout", "to"})
_LAYOUT = (_ID_PASS | {"permute", "transpose", "movedim", "t", "flip", "roll"}) - _CASTS


def _source(g: ArchGraph, nid: str) -> str | None:
    """The node whose values integer tensor ``nid`` carries through views and copies (up to 32 of them); None
    when a view has no input."""
    seen = 0
    while g.nodes[nid].op in _LAYOUT and seen < 32:
        preds = g.predecessors(nid)
        if not preds:
            return None
        nid, seen = preds[0], seen + 1
    return nid


def _cast_from_activations(g: ArchGraph, nid: str) -> bool:
    """Whether node ``nid`` (an integer tensor's :func:`_source`) is a cast of a batched floating-point tensor (a
    network's activations): its values are whatever the activations are, so as indices they run out of range."""
    node = g.nodes[nid]
    preds = g.predecessors(nid)
    if node.op not in _CASTS or not preds or dtype_kind(node.dtype) != "i":
        return False
    src = g.nodes[preds[0]]
    return dtype_kind(src.dtype) == "f" and has_batch(src.shape)


# ops that read a 4-D tensor as (B, C, H, W): channels at dim 1, the spatial dims after it
_NCHW = frozenset({"conv2d", "conv2d_padding", "conv_transpose2d", "batch_norm", "instance_norm", "group_norm",
                   "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "pixel_shuffle",
                   "pixel_unshuffle", "upsample_nearest2d", "upsample_bilinear2d", "upsample_bicubic2d"})
# ops whose output keeps the layout of their 4-D inputs: elementwise ones, and norms and layers over the last dim
_SAME_LAYOUT = frozenset(ACTIVATIONS) | {"dropout", "neg", "exp", "sqrt", "rsqrt", "clone", "contiguous", "alias",
                                         "detach", "add", "sub", "mul", "div", "layer_norm", "rms_norm", "linear",
                                         "to_dtype", "_to_copy", "type_as"}


def channel_dim(node: Any, inputs: list[int | None]) -> int | None:
    """Where a 4-D floating-point tensor holds an image's channels: 1 for ``(B, C, H, W)``, 3 for channels last
    ``(B, H, W, C)`` (``inputs``: that of each input); None when not known (other ranks, after a reshape...).
    A graph's 4-D inputs and what the ``(B, C, H, W)`` ops give hold them at 1; a permute or transpose moves them;
    elementwise ops, and norms and linear layers over the last dim, keep them where their inputs do."""
    shape = node.shape
    if not isinstance(shape, list) or len(shape) != 4 or dtype_kind(node.dtype) != "f":
        return None
    if node.op == "input" or node.op in _NCHW:
        return 1
    known = {c for c in inputs if c is not None}
    if len(known) != 1:
        return None
    c = known.pop()
    if node.op == "permute":
        dims = [d % 4 for d in node.attrs.get("dims") or [] if isinstance(d, int)]
        return dims.index(c) if c in dims and len(dims) == 4 else None
    if node.op == "transpose":
        a, b = node.attrs.get("dim0"), node.attrs.get("dim1")
        if not isinstance(a, int) or not isinstance(b, int):
            return None
        a, b = a % 4, b % 4
        return b if c == a else a if c == b else c
    return c if node.op in _SAME_LAYOUT else None


_REDUCE = frozenset({"mean", "sum", "amax", "amin", "var", "std", "logsumexp"})


def layout_fault(node: Any, inputs: list[int | None]) -> str | None:
    """Why a node may not be added: a ``(B, C, H, W)`` op (a conv, pool, batch norm...) reads a 4-D tensor whose
    channels are known to be elsewhere (channels last after a permute): it would take a spatial size for the
    channels and mix the channels as a spatial dim; or a reduction over a 4-D image tensor takes its channels
    together with some but not all of its spatial dims (``mean(dim=[2, 3])`` of a channels-last tensor keeps
    one spatial dim as the features). It runs, but it is no image layer."""
    c = inputs[0] if inputs else None
    if c is None:
        return None
    if node.op in _NCHW and c != 1:
        return f"{node.op} reads a tensor with its channels at dim {c} as (B, C, H, W)"
    dims = node.attrs.get("dim")
    if node.op in _REDUCE and isinstance(dims, list) and all(isinstance(d, int) for d in dims):
        cut = {d % 4 for d in dims}
        space = {1, 2, 3} - {c}
        if c in cut and cut & space and not space <= cut:
            return f"{node.op} over dims {sorted(cut)} takes the channels (dim {c}) with part of the image only"
    return None


# ops whose backward reads their own output: changing it in place breaks the backward pass
SAVES_OUTPUT = {"sigmoid", "tanh", "exp", "exp2", "softmax", "log_softmax", "relu", "sqrt", "rsqrt", "reciprocal"}
# ops whose backward reads an input (scaled_dot_product_attention: the query, key and value, not the mask)
SAVES_INPUT = {"mul", "div", "matmul", "mm", "bmm", "linear", "einsum", "addmm", "baddbmm", "conv1d", "conv2d",
               "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "pow", "gelu", "silu", "mish",
               "softplus", "leaky_relu", "elu", "selu", "celu", "hardtanh", "relu6", "hardswish", "hardsigmoid",
               "log", "log1p", "sin", "cos", "abs", "erf", "atan2", "maximum", "minimum", "clamp", "amax", "amin",
               "max", "min", "prod", "norm", "linalg_norm", "var", "std", "logsumexp", "where", "layer_norm",
               "rms_norm", "batch_norm", "group_norm", "instance_norm", "scaled_dot_product_attention", "lstm", "gru",
               "embedding", "gather", "index_select"}


def _saved_before(g: ArchGraph, t: str, skip: str, order: dict[str, int], before: int) -> str | None:
    """A node before position ``before`` (not ``skip``) whose backward may read tensor ``t``, directly or through
    a view of it, or None."""
    stack = [t]
    while stack:
        x = stack.pop()
        for e in g.out_edges(x):
            if e.dst == skip or order[e.dst] >= before:
                continue
            op = g.nodes[e.dst].op
            if op in SAVES_INPUT and not (op == "scaled_dot_product_attention" and e.port >= 3):
                return e.dst
            if e.port == 0 and shares_storage(g, e.dst):
                stack.append(e.dst)
    return None


def inplace_fault(g: ArchGraph, node: Any) -> str | None:
    """Why an in-place op (``div_``, ``copy_``...: :func:`~mad.graph.aliasing.mutates`) may not be added:

    * the tensor it writes into is a trainable parameter (a leaf that requires grad cannot change in place; a
      buffer can);
    * that tensor, or one it is a view of (:func:`~mad.graph.aliasing.shares_storage`: reshapes, slices, other
      in-place results...), was read before by an op whose backward reads it (``mul``, ``linear``...; not
      ``add`` or ``cat``), directly or through another view, or is the output of an op whose backward reads
      its output (``relu``, ``softmax``...): the backward pass would find it changed and fail.

    Nodes after it may read the changed tensor: they run after the change, as in the code."""
    if not mutates(node.op):
        return None
    order = {nid: k for k, nid in enumerate(g.nodes)}
    reader, into = node.id, written_tensor(g, node.id)
    while into is not None:
        t = g.nodes[into]
        if t.op == "parameter" and (t.attrs or {}).get("kind") != "buffer":
            return f"{node.op} changes the trainable parameter {into!r} in place"
        saver = _saved_before(g, into, reader, order, order[node.id])
        if saver is not None:
            return f"{node.op} changes {into!r} in place after {g.nodes[saver].op} {saver!r} read it for its backward"
        if t.op.rstrip("_") in SAVES_OUTPUT:
            return f"{node.op} changes the output of {t.op} {into!r} in place, which its backward reads"
        if not shares_storage(g, into):
            return None
        reader, into = into, written_tensor(g, into)
    return None


def slice_fault(g: ArchGraph, node: Any) -> str | None:
    """Why a node may not be added: a ``slice`` bounded by a dim symbol (``table[:T]``) that the graph records at
    a fixed length, while at half the symbol's example size it would be another: the table is no longer than
    that example size, so the graph holds at one length only and retargeting to another fails. (``x[-1:]`` of a
    length that follows the symbol keeps its length and passes.)"""
    if node.op != "slice" or not isinstance(node.shape, list):
        return None
    op = get_op("slice")
    try:
        syms = attr_symbols(op, node.attrs)
    except SymbolError:
        return None
    preds = g.predecessors(node.id)
    dim = node.attrs.get("dim", 0)
    if not syms or not preds or not isinstance(dim, int) or not -len(node.shape) <= dim < len(node.shape):
        return None
    size, out = g.nodes[preds[0]].shape[dim], node.shape[dim]
    if not isinstance(size, int) or not isinstance(out, int):
        return None
    half = {**g.dims, **{k: max(1, int(g.dims.get(k, 8)) // 2) for k in syms}}
    try:
        at = resolve_attrs(op, node.attrs, half)
        start, end = (None if at.get(k) is None else int(at[k]) for k in ("start", "end"))
    except (SymbolError, ArithmeticError, TypeError, ValueError):
        return None
    step = node.attrs.get("step", 1)
    if len(range(size)[slice(start, end, step if isinstance(step, int) and step > 0 else 1)]) != out:
        bounds = [node.attrs.get("start"), node.attrs.get("end")]
        return f"slice bounded by {bounds} keeps a fixed length {out}: it holds at one length only"
    return None


def has_batch(shape: Any) -> bool:
    """Whether a node's shape (or one of its outputs' shapes) holds the batch symbol ``B``."""
    if isinstance(shape, list):
        return any(has_batch(d) for d in shape)
    try:
        return isinstance(shape, str) and "B" in free_symbols(shape)
    except SymbolError:
        return False


def batch_fault(shape: Any, hints: dict[str, int]) -> str | None:
    """Why a node of ``shape`` would not run at every batch size (None when it would): a dim that holds the
    batch symbol ``B`` must be a multiple of it (``B``, ``B*T``, not ``4 // B``) and grow with it, not with its
    square (``B*B``), and every dim must be positive at batch 1. The batch may be in two dims only as a
    ``(B, B)`` table (a contrastive model's similarities); a broadcast of the batch against itself
    (``(B, B, 8, 32)``) is refused, as in no dataset graph."""
    dims = shape if isinstance(shape, list) else [shape]
    if isinstance(shape, list) and not any(isinstance(d, list) for d in shape):
        batched = [d for d in shape if isinstance(d, str) and "B" in free_symbols(d)]
        if len(batched) > 1 and shape != ["B", "B"]:
            return f"the batch is in {len(batched)} dims of {shape}"
    for d in dims:
        if isinstance(d, list):
            why = batch_fault(d, hints)
            if why is not None:
                return why
            continue
        if not isinstance(d, str):
            if isinstance(d, int) and d <= 0:
                return f"dim {d} is not positive"
            continue
        try:
            if "B" in free_symbols(d) and any(m.count("B") != 1 for m in to_poly(d)):
                return f"dim {d!r} mixes the batch into other sizes"
            if evaluate(d, {**hints, "B": 1}) <= 0:
                return f"dim {d!r} is not positive at batch 1"
        except (SymbolError, ArithmeticError) as e:
            return f"dim {d!r}: {e}"
    return None


def numel_at_batch1(shape: Any, hints: dict[str, int]) -> int | None:
    """Elements of the largest tensor of ``shape`` (a shape or a list of them) at batch 1 and the graph's
    example sizes ``hints``; None when a dim cannot be evaluated (:func:`batch_fault` names it)."""
    if isinstance(shape, list) and shape and all(isinstance(d, list) for d in shape):
        sizes = [numel_at_batch1(d, hints) for d in shape]
        return None if None in sizes else max(sizes)  # type: ignore[type-var]
    numel = 1
    for d in shape if isinstance(shape, list) else [shape]:
        if isinstance(d, str):
            try:
                d = int(evaluate(d, {**hints, "B": 1}))
            except (SymbolError, ArithmeticError):
                return None
        if isinstance(d, int):
            numel *= d
    return numel


def size_fault(shape: Any, hints: dict[str, int], limit: int = MAX_NUMEL) -> str | None:
    """Why a node of ``shape`` is too large to run (a tensor of over ``limit`` elements at batch 1), or None.

    The default, 2^24 elements, is the largest value of any graph of the shipped dataset at its example sizes;
    a generated attention map four times that size was seen to take 14 s to check at batch 4 (three quarters of
    the check time of 128 samples)."""
    numel = numel_at_batch1(shape, hints)
    return f"{numel} elements at batch 1 (over {limit})" if numel is not None and numel > limit else None


def node_fault(g: ArchGraph, node: Any, ids_in: list[bool], chan_in: list[int | None],
               max_numel: int = MAX_NUMEL) -> str | None:
    """Why node ``node`` just added to ``g`` must be taken back (None when it may stay): the first fault of
    :func:`batch_fault`, :func:`size_fault` (over ``max_numel`` elements), :func:`ids_fault`,
    :func:`index_fault`, :func:`slice_fault`, :func:`inplace_fault`, :func:`layout_fault` (``ids_in``,
    ``chan_in``: whether each input holds token ids, where it holds channels) and
    :func:`~mad.generator.kernels.kernel_fault` (what the kernels check and shape inference does not)."""
    return (batch_fault(node.shape, g.dims) or size_fault(node.shape, g.dims, max_numel) or ids_fault(node, ids_in)
            or index_fault(g, node) or slice_fault(g, node) or inplace_fault(g, node) or layout_fault(node, chan_in)
            or kernel_fault(g, node))


class Sampler:
    """Samples graphs from a :class:`~mad.generator.model.GraphTransformer` with grammar and builder checks.

    Args:
        model: the trained model (eval mode is set).
        tokenizer: the uncompressed :class:`~mad.tokenizer.GraphTokenizer` of its vocabulary.
        device: where the model runs.
        op_arity: the input counts each op may have (default: any).
        op_inputs: the dtype kinds (:func:`dtype_kind`) each op may take at each input port
            (:func:`~mad.generator.corpus.op_input_kinds`; default: any).

    Attributes:
        fits: mask ops and attr values that the shape checks of :mod:`mad.generator.fits` reject (default);
            False leaves them to the builder (the benchmark's comparison).
        max_flat: after this many nodes in a row whose shapes lack the batch symbol (constants, index and
            position arithmetic), the next node must take a batched input: no source op, and references
            only to batched nodes until one is among its inputs. A sample that drifts into such side chains
            otherwise spends its length on them and never reaches an output. ``None``: no limit. The
            default, 48, is above the longest such run in 98% of the dataset's converted models (median 9).
        workers: processes that share a call of at least 16 samples per process on a CPU (forked, one torch
            thread each: use one per core). The decoding steps are small and partly Python, so one process
            cannot keep two cores busy; two processes of one thread each sample about 1.8 times as fast
            as one of two threads. A call's samples then depend on ``workers`` too (not only on ``seed``).
            Default 1.
    """

    def __init__(self, model: GraphTransformer, tokenizer: GraphTokenizer, device: Any = "cpu",
                 op_arity: dict[str, list[int]] | None = None, op_inputs: dict[str, list[str]] | None = None) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.fits = True
        self.output_ok: Any = None  # the call's rules (set by sample())
        self.max_params: int | None = None  # the call's budgets (set by sample(), like output_ok)
        self.max_flops: int | None = None
        self.max_flat: int | None = 48
        self.workers = 1
        self.device = torch.device(device)
        v = tokenizer.vocab
        self.V = len(v)
        self.ids = v.ids
        self.texts = v.tokens
        self.ref_ids = np.array([v.id(f"@{k}") for k in range(1, MAX_REF + 1)])
        self.op_ids = {t[3:]: i for i, t in enumerate(v.tokens) if t.startswith("op:")}
        self.out_id, self.eos_id = v.id("<out>"), v.id("<eos>")
        self._op_keys: dict[str, np.ndarray] = {}
        self.pair_key: dict[int, str] = {}
        for i, t in enumerate(v.tokens):
            if "=" in t and t[:2] in ("a.", "s."):
                self.pair_key[i] = t.split("=", 1)[0]
        self.output_ok: Any = None
        # ops by number of inputs: those the training graphs had (all ops, any count, without a table)
        self.ops_with = np.zeros((MAX_REFS + 1, self.V), dtype=bool)
        for o, i in self.op_ids.items():
            if o == "input":
                continue
            for k in (op_arity or {}).get(o, [] if op_arity else range(MAX_REFS + 1)):
                if k <= MAX_REFS:
                    self.ops_with[k, i] = True
        self._required: dict[str, list[str]] = {}
        self._pair_keys = set(self.pair_key.values())
        self.op_inputs = {o: k for o, k in (op_inputs or {}).items() if o in self.op_ids}
        self._port_kinds: dict[tuple[int, str], np.ndarray] = {}
        self.pair_val = {i: json.loads(self.texts[i].split("=", 1)[1]) for i in self.pair_key}
        self._fitting: dict[tuple, np.ndarray] = {}
        self._op_fit: dict[tuple, np.ndarray] = {}
        self._arity: dict[tuple[str, int], bool] = {}
        self._targs: dict[str, frozenset[str]] = {}
        self._static_ok: dict[tuple[str, tuple], np.ndarray] = {}
        self._req_tokens: dict[tuple[str, int, tuple], dict[str, list[int]]] = {}
        self._after: dict[tuple, dict[str, list[int]]] = {}  # attr tokens that may come next, by key

    def _takes(self, port: int, kind: str) -> np.ndarray:
        """Bool mask over the vocabulary: False for the ops never seen with a ``kind`` tensor at input ``port``."""
        hit = self._port_kinds.get((port, kind))
        if hit is None:
            hit = np.ones(self.V, dtype=bool)
            for o, kinds in self.op_inputs.items():
                if port < len(kinds) and kind not in kinds[port]:
                    hit[self.op_ids[o]] = False
            self._port_kinds[(port, kind)] = hit
        return hit

    def _ops_on(self, s: _Seq) -> np.ndarray:
        """The ops that may follow the references ``s.refs``: seen with that many inputs, of those dtype kinds,
        fitting their shapes."""
        m = self.ops_with[len(s.refs)]
        if self.op_inputs:
            g, ids = s.asm.graph, s.asm.ids
            for port, r in enumerate(s.refs):
                kind = dtype_kind(g.nodes[ids[r]].dtype)
                if kind != "?":
                    m = m & self._takes(port, kind)
        return m & self._shape_fit(s, m) if self.fits else m

    @staticmethod
    def _inputs(s: _Seq) -> tuple[list[Any], str]:
        """Shapes of the references ``s.refs`` and a key of them with the graph's dims."""
        g, ids = s.asm.graph, s.asm.ids
        shapes = [g.nodes[ids[r]].shape for r in s.refs]
        return shapes, json.dumps([shapes, g.dims], sort_keys=True)

    def _shape_fit(self, s: _Seq, cand: np.ndarray) -> np.ndarray:
        """Bool mask over the vocabulary: False for the ops among ``cand`` that cannot take ``s.refs``' shapes
        (:func:`op_fits`) or have a required attr with no value that fits them (cached by shapes)."""
        shapes, key = self._inputs(s)
        hit = self._op_fit.get((len(s.refs), key))
        if hit is None:
            hit = np.ones(self.V, dtype=bool)
            dims, n = s.asm.graph.dims, len(s.refs)
            dkey = tuple(sorted(dims.items()))
            for o, i in self.op_ids.items():
                if self.ops_with[n, i]:
                    hit[i] = self._arity_ok(o, n) and op_fits(o, shapes, dims) and all(
                        any(o not in SHAPE_RULE_OPS or shape_fits(o, k, self.pair_val[t], shapes, dims, {})
                            for t in toks)
                        for k, toks in self._required_tokens(o, n, dims, dkey).items())
            self._op_fit[(len(s.refs), key)] = hit
        return hit & cand

    def _static(self, op: str, dims: dict[str, int], dkey: tuple) -> np.ndarray:
        """Ids of ``op``'s ``key=value`` tokens of the right type and with the graph's dim symbols
        (:func:`static_fits`), cached by op and dims (``dkey``: their sorted items)."""
        ck = (op, dkey)
        hit = self._static_ok.get(ck)
        if hit is None:
            hit = self._static_ok[ck] = np.array(
                [i for i in self._keys_of(op) if static_fits(op, self.pair_key[i], self.pair_val[i], dims)],
                dtype=np.int64)
        return hit

    def _required_tokens(self, op: str, n_refs: int, dims: dict[str, int], dkey: tuple) -> dict[str, list[int]]:
        """The tokens that may set each required key of ``op`` on ``n_refs`` inputs (empty lists: none can)."""
        ck = (op, n_refs, dkey)
        hit = self._req_tokens.get(ck)
        if hit is None:
            static = self._static(op, dims, dkey)
            hit = self._req_tokens[ck] = {k: [int(i) for i in static if self.pair_key[int(i)] == k]
                                          for k in self._required_keys(op, n_refs)}
        return hit

    def _arity_ok(self, op: str, n_refs: int) -> bool:
        """Whether a node of ``op`` may take ``n_refs`` inputs: scalar tokens (``a.other``) may stand for tensor
        arguments, and optional or list arguments take the rest."""
        hit = self._arity.get((op, n_refs))
        if hit is None:
            try:
                most = port_count(op, n_refs, {})
                d = get_op(op)
                scalars = sum(1 for a in d.args if a.kind == "one" and a.name not in d.param_args
                              and any(self.pair_key[i] == f"a.{a.name}" for i in self._keys_of(op)))
                hit = most - scalars <= n_refs <= most or self._owns(op, n_refs)
            except Exception:  # noqa: BLE001 - the builder decides
                hit = True
            self._arity[(op, n_refs)] = hit
        return hit

    def _fitting_keys(self, op: str, shapes: list[Any], key: str, dims: dict[str, int], groups: Any) -> np.ndarray:
        """Ids of ``op``'s ``key=value`` tokens whose value fits inputs of ``shapes`` (:func:`value_fits`;
        ``groups``: the node's ``a.groups`` so far, which its ``out_channels`` must be a multiple of)."""
        ck = (op, len(shapes), key, groups)
        hit = self._fitting.get(ck)
        if hit is None:
            owns = self._owns(op, len(shapes)) or op == "parameter"
            attrs = {} if groups is None else {"a.groups": groups}
            static = map(int, self._static(op, dims, tuple(sorted(dims.items()))))
            hit = np.array([i for i in static if (owns or self.pair_key[i][:2] != "s.")
                            and shape_fits(op, self.pair_key[i], self.pair_val[i], shapes, dims, attrs)],
                           dtype=np.int64)
            self._fitting[ck] = hit
        return hit

    @staticmethod
    def _owns(op: str, n_refs: int) -> bool:
        """Whether a node of layer ``op`` on ``n_refs`` inputs may own its parameters (take size tokens)."""
        rule = LAYER_RULES.get(op)
        return rule is not None and bool(rule.sizes) and port_count(op, n_refs, {next(iter(rule.sizes)): 1}) == n_refs

    def _tensor_args(self, op: str) -> frozenset[str]:
        """Keys of ``op``'s tensor arguments that a scalar token may set (``a.other`` of ``add``)."""
        hit = self._targs.get(op)
        if hit is None:
            hit = self._targs[op] = frozenset(f"a.{a.name}" for a in get_op(op).args)
        return hit

    def _scalar_ok(self, s: _Seq, key: str) -> bool:
        """Whether ``key`` may be set next: not a tensor argument, or one whose scalar still leaves an input for
        every reference (``add`` of two inputs takes no ``other``)."""
        if key not in self._tensor_args(s.op or ""):
            return True
        p = self._ports(s, key)
        return p is None or p >= len(s.refs)

    @staticmethod
    def _ports(s: _Seq, key: str | None = None) -> int | None:
        """Inputs the node in progress takes with the attrs it has (and ``key`` set too: a scalar may stand for
        a tensor argument); None when the count cannot read them (the builder decides)."""
        kwargs = {k[2:]: v for k, v in s.attrs.items()} | ({key[2:]: 1} if key else {})
        try:
            return port_count(s.op, len(s.refs), kwargs)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - attrs the count cannot read
            return None

    # ------------------------------------------------------------------ grammar
    def _keys_of(self, op: str) -> np.ndarray:
        """Ids of the ``key=value`` tokens op ``op`` may take (its attrs, its layer sizes)."""
        hit = self._op_keys.get(op)
        if hit is None:
            d = get_op(op)
            keys = {f"a.{a}" for a in d.attrs} | {f"a.{a.name}" for a in d.args}
            rule = LAYER_RULES.get(op)
            if rule is not None:
                keys |= {f"s.{k}" for k in rule.sizes}
            keys -= {f"a.{a}" for a in d.param_args}
            if op == "parameter":
                keys.add("s.shape")
            hit = np.array(sorted(i for i, k in self.pair_key.items() if k in keys), dtype=np.int64)
            self._op_keys[op] = hit
        return hit

    def _required_keys(self, op: str, n_refs: int) -> list[str]:
        """Keys a node of ``op`` on ``n_refs`` inputs must have (required attrs; required sizes when it owns
        its parameters; a parameter's shape) that some token sets."""
        hit = self._required.get((op, n_refs))
        if hit is None:
            d = get_op(op)
            keys = {f"a.{k}" for k, spec in d.attrs.items() if spec.required}
            rule = LAYER_RULES.get(op)
            if rule is not None and self._owns(op, n_refs):
                keys |= {f"s.{k}" for k, v in rule.sizes.items() if v is None}
            if op == "parameter":
                keys.add("s.shape")
            settable = {self.pair_key[i] for i in self._keys_of(op)}
            hit = self._required[(op, n_refs)] = sorted(k for k in keys if k in settable)
        return hit

    def _allowed(self, s: _Seq, max_len: int) -> np.ndarray:
        """Bool mask over the vocabulary of the tokens ``s`` may take next."""
        m = np.zeros(self.V, dtype=bool)
        n = len(s.asm)
        refs = self.ref_ids[: min(n, len(self.ref_ids))]
        if s.phase == "out":
            m[self.eos_id if s.outputs else
              self.ref_ids[[n - i - 1 for i in s.ok_outputs if n - i <= len(self.ref_ids)]]] = True
            return m
        # an admissible output within reach of a reference (ok_outputs ascend: the last is the nearest)
        can_out = bool(s.ok_outputs) and n - s.ok_outputs[-1] <= len(self.ref_ids)
        if len(s.tokens) >= max_len - 3:  # no room left: finish here
            m[self.out_id] = can_out
            return m
        if s.phase == "attrs":
            op = s.op or ""
            missing = [k for k in self._required_keys(op, len(s.refs)) if k not in s.attrs and k > s.last_key]
            upto = missing[0] if missing else None  # a required key may not be skipped (keys come sorted)
            groups = s.attrs.get("a.groups")
            ck = (op, len(s.refs), s.fit_key if self.fits else "", groups, s.last_key, upto)
            hit = self._after.get(ck)
            if hit is None:
                fit = self._fitting_keys(op, s.in_shapes, s.fit_key, s.asm.graph.dims, groups) \
                    if self.fits else self._keys_of(op)
                ids = [int(i) for i in fit if s.last_key < self.pair_key[int(i)] and
                       (upto is None or self.pair_key[int(i)] <= upto)]
                by_key: dict[str, list[int]] = {}
                for i in ids:
                    by_key.setdefault(self.pair_key[i], []).append(i)
                hit = self._after[ck] = by_key
            for k, ids in hit.items():
                if not self.fits or self._scalar_ok(s, k):
                    m[ids] = True
            if missing or (self.fits and (self._ports(s) not in (None, len(s.refs))
                                          or not node_fits(op, s.in_shapes, s.asm.graph.dims, s.attrs))):
                return m  # the node is not complete yet
        flat = self.max_flat is not None and s.flat >= self.max_flat  # the next node must take a batched input
        if s.phase in ("start", "attrs"):
            if s.phase == "start":
                m[self._batched(s, self._live_refs(s, refs, ())) if flat else self._live_refs(s, refs, ())] = True
            else:
                m[refs] = True  # the next node's
            if not flat:
                m |= self._shape_fit(s, self.ops_with[0]) if s.phase == "start" and self.fits else self.ops_with[0]
            m[self.out_id] = can_out
            if s.phase == "start" and s.banned.get(()):
                m[list(s.banned[()])] = False
        elif s.phase == "refs":
            flat = flat and not any(s.batchy[r] for r in s.refs)
            if len(s.refs) < MAX_REFS:
                live = self._live_refs(s, refs, tuple(s.refs))
                m[self._batched(s, live) if flat else live] = True
            if not flat:
                m |= self._ops_on(s)
            if s.banned.get(tuple(s.refs)):
                m[list(s.banned[tuple(s.refs)])] = False
        return m

    def _batched(self, s: _Seq, refs: np.ndarray) -> np.ndarray:
        """The reference tokens among ``refs`` that point at a node whose shape holds the batch symbol."""
        n = len(s.asm)  # @k is node n - k
        return refs[[s.batchy[n - int(self.texts[t][1:])] for t in refs.tolist()]] if len(refs) else refs

    @staticmethod
    def _live_refs(s: _Seq, refs: np.ndarray, head: tuple[int, ...]) -> np.ndarray:
        """The reference tokens among ``refs`` (``@1``, ``@2``... in order) that do not lead into a dead end."""
        if not s.dead:
            return refs
        n = len(s.asm)
        return refs[[head + (n - k - 1,) not in s.dead for k in range(len(refs))]]

    # ------------------------------------------------------------------ node bookkeeping
    def _close(self, s: _Seq, dist: NodeDistances) -> bool:
        """Add the node in progress; on failure take it back. True when it was added."""
        rec = NodeRec(s.op, list(s.refs), dict(s.attrs))  # type: ignore[arg-type]
        try:
            nid = s.asm.add(rec)  # leaves the graph unchanged when it raises
        except Exception as e:  # noqa: BLE001 - any rejection of the node: take it back
            s.error = str(e).splitlines()[0][:200]
            self._rollback(s, dist, ban=True)
            return False
        node = s.asm.graph.nodes[nid]
        params = s.params + node.num_params
        ids_in, chan_in = [s.ids[r] for r in s.refs], [s.chan[r] for r in s.refs]
        why = node_fault(s.asm.graph, node, ids_in, chan_in, s.max_numel)
        if why is None and node.num_params > s.max_layer:
            why = f"one layer of {node.num_params} parameters (over {s.max_layer})"
        if why is None and self.max_params is not None and params > self.max_params:
            why = f"over the parameter budget ({params} > {self.max_params})"
        if why is None and self.max_flops is not None and s.asm.flops > self.max_flops:
            why = f"over the FLOPs budget ({s.asm.flops} > {self.max_flops})"
        if why is not None:
            s.asm.pop()
            s.error = why
            self._rollback(s, dist, ban=True)
            return False
        s.params = params
        s.depths.append(s.node_depth)
        s.batchy.append(has_batch(node.shape))
        s.ids.append(holds_ids(s.asm.graph, nid, ids_in))
        s.chan.append(channel_dim(node, chan_in))
        s.fed.append(any(s.fed[r] for r in s.refs))
        s.flat = 0 if s.batchy[-1] else s.flat + 1
        if s.fed[-1] and (self.output_ok is None or self.output_ok(s.asm.graph.nodes[nid])):
            s.ok_outputs.append(len(s.asm) - 1)
        s.fails_here = 0
        s.banned, s.dead = {}, set()
        self._reset_node(s)
        return True

    @staticmethod
    def _reset_node(s: _Seq) -> None:
        s.phase, s.refs, s.op, s.attrs, s.last_key, s.node_slots, s.node_tokens = "start", [], None, {}, "", [], 0
        s.in_shapes, s.fit_key = [], ""

    def _rollback(self, s: _Seq, dist: NodeDistances, ban: bool, refeed: bool = True) -> None:
        """Take back the node in progress; with ``refeed`` the next step feeds the last token before it again."""
        if s.op is not None:
            if ban:
                s.banned.setdefault(tuple(s.refs), set()).add(self.op_ids[s.op])
            if len(dist) > len(s.asm):
                dist.pop()
        for slot in s.node_slots:
            s.alive[slot] = False
        if s.node_tokens:
            del s.tokens[len(s.tokens) - s.node_tokens:]
        if ban:
            s.fails_here += 1
            s.retries += 1
        self._reset_node(s)
        if not refeed:
            return
        p = self.model.cfg.prefix_len
        last = p + int(np.nonzero(s.alive[p: len(s.slots)])[0][-1])
        s.alive[last] = False  # its logits are needed again: feed it once more (one copy stays alive)
        s.pending = s.slots[last]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, n: int, text: torch.Tensor, cond: torch.Tensor, prefix: list[str], max_len: int = 768,
               temperature: float = 1.0, top_k: int = 40, seed: int = 0, max_params: int | None = None,
               max_retries: int = 12, output_ok: Any = None, deadline: float | None = None,
               max_flops: int | None = None) -> list[Sample]:
        """``n`` samples continuing the graph-token ``prefix`` (``<bos>``, dims, input nodes or a partial graph).

        Args:
            text: (text_dim,) prompt embedding; cond: (C,) condition ids (0 = none).
            prefix: forced tokens; they must decode to a valid partial graph.
            max_len: graph tokens per sample at most.
            temperature, top_k: sampling of the allowed tokens.
            max_params: parameter budget enforced node by node.
            max_flops: FLOPs budget (at the prefix's example sizes, as :func:`~mad.graph.interpret` counts)
                enforced node by node.
            max_retries: rejected nodes at one place before the sample is closed there.
            output_ok: ``output_ok(node) -> bool``: which nodes may be the output (default: any).
            deadline: a ``time.perf_counter()`` value; samples not finished by then are given up.
        """
        from .structure import buckets, token_structure

        if self.workers > 1 and self.device.type == "cpu" and n >= 16 * self.workers:
            return _forked(self, n, seed, dict(text=text, cond=cond, prefix=prefix, max_len=max_len,
                                               temperature=temperature, top_k=top_k, max_params=max_params,
                                               max_retries=max_retries, output_ok=output_ok, deadline=deadline,
                                               max_flops=max_flops))
        self.output_ok, self.max_params, self.max_flops = output_ok, max_params, max_flops
        model, dev = self.model, self.device
        gen = torch.Generator().manual_seed(seed)
        p = model.cfg.prefix_len
        st = token_structure(prefix)
        seqs = []
        asms = [self.tok.assembler(prefix) for _ in range(n)]
        first = asms[0].graph  # the caps: the defaults, or the prefix's largest layer and tensor
        max_layer = max([MAX_LAYER] + [nd.num_params for nd in first.nodes.values()])
        max_numel = max([MAX_NUMEL] + [numel_at_batch1(nd.shape, first.dims) or 0 for nd in first.nodes.values()])
        for asm in asms:
            sq = _Seq(asm=asm, tokens=list(prefix), params=asm.graph.num_params, max_layer=max_layer,
                      max_numel=max_numel)
            sq.depths = [0] * len(asm)
            for i, ps in enumerate(st.parents[: len(asm)]):
                sq.depths[i] = 1 + max((sq.depths[r] for r in ps), default=-1)
            sq.slots = [("", ROLE["prefix"], -1, 0)] * p + [
                (t, int(st.role[i]), int(st.node[i]), int(st.depth[i])) for i, t in enumerate(prefix)]
            cap = p + len(prefix) + max_len * 4 + 8
            sq.alive = np.zeros(cap, dtype=bool)
            sq.alive[: p + len(prefix)] = [True] + [bool(c) for c in cond.tolist()] + [True] * len(prefix)
            sq.slot_nodes = np.full(cap, -1, dtype=np.int64)
            sq.slot_nodes[p: p + len(prefix)] = st.node
            sq.batchy = [has_batch(asm.graph.nodes[nid].shape) for nid in asm.ids]
            for i, ps in enumerate(st.parents[: len(asm)]):
                sq.ids.append(holds_ids(asm.graph, asm.ids[i], [sq.ids[r] for r in ps]))
                sq.chan.append(channel_dim(asm.graph.nodes[asm.ids[i]], [sq.chan[r] for r in ps]))
                sq.fed.append(asm.graph.nodes[asm.ids[i]].op == "input" or any(sq.fed[r] for r in ps))
            sq.ok_outputs = [i for i, nid in enumerate(asm.ids)
                             if sq.fed[i] and (output_ok is None or output_ok(asm.graph.nodes[nid]))]
            sq.flat = next((k for k, b in enumerate(reversed(sq.batchy)) if b), len(sq.batchy))
            seqs.append(sq)
        base = NodeDistances()
        for ps in st.parents[: len(seqs[0].asm)]:
            base.add(ps)
        dists = [base.copy() for _ in seqs]
        cache = KVCache(model.cfg.n_layers)
        # the prompt and the forced prefix, for all samples at once
        x0 = model.prefix(text[None].expand(n, -1).to(dev), cond[None].expand(n, -1).to(dev))
        toks = torch.tensor([self.ids[t] for t in prefix], device=dev)[None].expand(n, -1)
        pos = torch.arange(len(prefix), device=dev)[None].expand(n, -1)
        xe = model.embed(toks, pos, torch.from_numpy(st.role).to(dev)[None].expand(n, -1),
                         torch.from_numpy(st.depth).to(dev)[None].expand(n, -1))
        total = p + len(prefix)
        keep = torch.from_numpy(seqs[0].alive[:total].copy()).to(dev)
        allowed = torch.ones(total, total, dtype=torch.bool, device=dev).tril() & keep[None]
        allowed |= torch.eye(total, dtype=torch.bool, device=dev)
        bk = torch.from_numpy(buckets(st, p)).to(dev)
        hid = model.step(torch.cat([x0, xe], dim=1), bk[None].expand(n, -1, -1),
                         allowed[None].expand(n, -1, -1), cache, head=False)[:, -1]  # (n, C)
        done = [False] * n
        rows = list(range(n))  # batch row -> sample; finished samples leave the batch
        for _ in range(max_len * 4):
            if deadline is not None and time.perf_counter() > deadline:
                break
            active, masks = [], []
            for r, b in enumerate(rows):
                sq = seqs[b]
                if done[b] or sq.pending is not None:
                    continue
                m = self._allowed(sq, max_len)
                if not m.any():
                    self._dead_end(sq, dists[b], max_retries)
                    done[b] = sq.phase == "done"
                    continue
                active.append(r)
                masks.append(m)
            if active:
                mk = np.stack(masks)  # (A, V)
                cols = np.flatnonzero(mk.any(0))  # the logits only of tokens some active sequence may take
                lg = model.logits(hid[active], torch.from_numpy(cols).to(dev)).float() / max(temperature, 1e-4)
                lg = lg.masked_fill(~torch.from_numpy(mk[:, cols]).to(lg.device), float("-inf"))  # (A, K)
                # sample among the top_k (the rest have probability 0): a draw over k columns, not the vocabulary;
                # k as over the whole vocabulary (more columns of -inf when fewer are here), so the draws are too
                k = min(top_k or self.V, self.V)
                if lg.shape[1] < k:
                    lg = F.pad(lg, (0, k - lg.shape[1]), value=float("-inf"))
                    cols = np.concatenate([cols, np.zeros(k - len(cols), dtype=cols.dtype)])
                vals, idx = lg.topk(k, dim=1)
                logp = torch.log_softmax(vals, dim=1).cpu()
                col = torch.multinomial(logp.exp(), 1, generator=gen)  # (A, 1)
                picks = cols[idx.cpu().gather(1, col)[:, 0].numpy()].tolist()
                for r, t, lp in zip(active, picks, logp.gather(1, col)[:, 0].tolist()):
                    sq = seqs[rows[r]]
                    sq.logprob += lp
                    self._consume(sq, t, dists[rows[r]], max_retries)
                    done[rows[r]] = sq.phase == "done"
            if all(done):
                break
            finished = [r for r, b in enumerate(rows) if done[b]]
            if finished and len(finished) >= max(1, len(rows) // 4):
                keep = [r for r, b in enumerate(rows) if not done[b]]
                cache.select(torch.tensor(keep, device=dev))
                rows = [rows[r] for r in keep]
            feed, qb, roles, depths, poss = [], [], [], [], []
            for b in rows:
                sq = seqs[b]
                info = sq.pending if sq.pending is not None and not done[b] else ("<pad>", ROLE["other"], -1, 0)
                sq.pending = None
                t, role, node, depth = info
                live = t != "<pad>"
                k = len(sq.slots)
                sq.slots.append(info)
                sq.alive[k] = live
                sq.slot_nodes[k] = node if live else -1
                if live and role in (ROLE["ref"], ROLE["op"], ROLE["key"]) and sq.phase in ("refs", "attrs"):
                    sq.node_slots.append(k)
                feed.append(self.ids[t])
                roles.append(role)
                depths.append(depth)
                poss.append(max(0, int(sq.alive[p: k + 1].sum()) - 1))
                if model.bias is not None:  # the structure relations only feed the bias
                    qb.append(bucket_row(dists[b], node, role, sq.slot_nodes[: k + 1]))
            xe = model.embed(torch.tensor(feed, device=dev)[:, None], torch.tensor(poss, device=dev)[:, None],
                             torch.tensor(roles, device=dev)[:, None], torch.tensor(depths, device=dev)[:, None])
            size = len(seqs[rows[0]].slots)
            al = torch.from_numpy(np.stack([seqs[b].alive[:size] for b in rows])).to(dev)[:, None]  # (R, 1, S)
            al[:, 0, -1] = True
            bq = torch.from_numpy(np.stack(qb)).to(dev)[:, None] if qb else None
            hid = model.step(xe, bq, al, cache, head=False)[:, -1]
        return [Sample(list(sq.tokens), sq.graph, sq.logprob, None if sq.graph is not None else
                       (sq.error or "not finished"), sq.retries) for sq in seqs]

    def _consume(self, s: _Seq, t: int, dist: NodeDistances, max_retries: int) -> None:
        """Apply token ``t`` to ``s``'s state (closing the node in progress when ``t`` starts another)."""
        text = self.texts[t]
        n = len(s.asm)
        if s.phase == "out":
            if text == "<eos>":
                s.tokens.append(text)
                self._end(s)
                return
            s.outputs.append(n - int(text[1:]))
            s.tokens.append(text)
            s.pending = (text, ROLE["out"], -1, 0)
            return
        if s.phase == "attrs" and (text.startswith("@") or text.startswith("op:") or text == "<out>"):
            if not self._close(s, dist):
                if s.fails_here >= max_retries:
                    self._finish_early(s)
                return  # resample from the node's start
            n = len(s.asm)
        if text == "<out>":
            if s.phase == "refs":  # references with no op yet: drop them
                self._rollback(s, dist, ban=False, refeed=False)
            s.phase = "out"
            s.tokens.append(text)
            s.pending = (text, ROLE["out"], -1, 0)
            return
        if text.startswith("@"):
            s.refs.append(n - int(text[1:]))
            s.phase = "refs"
            info = (text, ROLE["ref"], n, 0)
        elif text.startswith("op:"):
            s.op = text[3:]
            s.phase = "attrs"
            s.in_shapes, s.fit_key = self._inputs(s)
            dist.add(list(s.refs))
            s.node_depth = 1 + max((s.depths[r] for r in s.refs), default=-1)
            info = (text, ROLE["op"], n, s.node_depth)
        else:
            key, _, val = text.partition("=")
            s.attrs[key] = json.loads(val)
            s.last_key = key
            info = (text, ROLE["key"], n, s.node_depth)
        s.tokens.append(text)
        s.node_tokens += 1
        s.pending = info

    def _dead_end(self, s: _Seq, dist: NodeDistances, max_retries: int) -> None:
        """No token may follow. After the references: their inputs take no op that is left; mark them a dead
        end and resample the node from its start (a failure at this place). After the op: no attr value fits
        and the node is not complete; ban the op on these inputs and resample. With no node in progress,
        close the graph."""
        if s.phase == "attrs":
            s.error = f"{s.op}: no attr value left that completes it on these inputs"
            self._rollback(s, dist, ban=True)
            if s.fails_here >= max_retries:
                self._finish_early(s)
            return
        if s.phase != "refs":
            self._rollback(s, dist, ban=False, refeed=False)
            self._finish_early(s)
            return
        s.dead.add(tuple(s.refs))
        self._rollback(s, dist, ban=True)  # no op yet: only counts the failure
        if s.fails_here >= max_retries:
            self._finish_early(s)

    def _finish_early(self, s: _Seq) -> None:
        """Close the graph at its last admissible output node (the caller fixes its head)."""
        if not s.ok_outputs:
            s.error, s.phase, s.pending = "stuck: no node can be the output", "done", None
            return
        last = s.ok_outputs[-1]
        s.tokens += ["<out>", f"@{len(s.asm) - last}", "<eos>"]
        s.outputs = [last]
        self._end(s)

    @staticmethod
    def _end(s: _Seq) -> None:
        """Finish the graph at ``s.outputs``; the sample is done."""
        try:
            s.graph = s.asm.finish(s.outputs)
            validate(s.graph, shapes=False)  # the builder ran every shape rule; runs() checks again
        except Exception as e:  # noqa: BLE001 - an output the graph cannot have
            s.graph, s.error = None, str(e).splitlines()[0][:200]
        s.pending = None
        s.phase = "done"


# ---------------------------------------------------------------------- several processes
_JOB: tuple[Sampler, dict[str, Any]] | None = None  # what forked workers sample (set by the parent)


def fork_starmap(fn: Any, args: list[tuple], workers: int, chunksize: int = 1) -> list:
    """``[fn(*a) for a in args]`` computed by ``workers`` forked processes of one torch thread each, in order.

    One torch thread per child: OpenMP's thread pool does not survive a fork, and more threads there can hang.
    The parent's objects are frozen out of the garbage collector's sight while the children run: its passes in a
    child would otherwise touch, and so copy, every page of the parent's heap."""
    import gc
    import multiprocessing as mp

    gc.freeze()
    try:
        with mp.get_context("fork").Pool(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return pool.starmap(fn, args, chunksize=chunksize)
    finally:
        gc.unfreeze()


def _share(k: int, n: int, seed: int) -> list[Sample]:
    sampler, kw = _JOB  # type: ignore[misc]
    sampler.workers = 1
    return sampler.sample(n, seed=seed * 1_000_003 + k, **kw)


def _forked(sampler: Sampler, n: int, seed: int, kw: dict[str, Any]) -> list[Sample]:
    """``n`` samples drawn by ``sampler.workers`` forked processes (shares as even as can be), in share order."""
    global _JOB
    w = sampler.workers
    sizes = [n // w + (k < n % w) for k in range(w)]
    _JOB = (sampler, kw)
    try:
        parts = fork_starmap(_share, [(k, m, seed) for k, m in enumerate(sizes)], w)
    finally:
        _JOB = None
    return [smp for part in parts for smp in part]
