"""retarget: put an architecture on another task (input shape, classes, vocabulary).

What changes, in a re-inference walk over a copy of the graph:

- the *primary input* (the image for an image task, the token ids for a
  token task) takes the task's shape; other inputs are replaced by
  constants built from it (an attention mask by ``ones_like``, token type
  ids by ``zeros_like``), so the graph takes exactly the task's input;
- the *stem* (the first layers reading the image) takes the new channel
  count, and every layer re-derives its parameter shapes from its sizes;
- recorded sizes (views, ``arange`` ends, mask shapes) follow the new
  sequence length or image size (:mod:`~mad.graph.passes.resize`);
  learned position tables are resized when the token count changes;
- the *classifier head* (the last linear/conv producing the logits) gets
  ``num_classes`` outputs; a token model's embedding and LM head get
  ``vocab_size`` rows (tied weights stay tied). A backbone without a head
  (outputs named ``last_hidden_state``/``pooler_output``...) gets one: a
  mean over positions and a linear ``classifier``, or a linear ``lm_head``;
- the result returns one tensor: the logits;
- a 2-D image network put on a 1-D signal task (``(C, L)`` inputs) reads
  the signal as a one-pixel-high image: it is retargeted to ``(C, 1, L)``
  and an ``unsqueeze`` after its input takes the ``(B, C, L)`` signal
  there (:func:`image_as_signal`; ``meta["retarget"]["as_image"]``); one
  whose layers cannot take a height of 1 is refused, not resized.

Symbolic dims (``B``, ``T``) need no rewriting: a new sequence length is a
new example size in ``graph.dims`` (where a capture left a copy of its old
example size concrete, a failed walk is retried with that size substituted
too: the result then runs at the new length only). Concrete recorded sizes are rewritten by
:class:`~mad.graph.passes.resize.Resize`, and a walk that fails is retried:
with size changes seen on the way (a token count behind a patch embedding),
without a substitution that was a coincidence (a rotary width equal to the
old length), and, for images, finally by resizing the new input back to the
size the graph was built for (``meta["retarget"]["resized_input_to"]``).

Anything that cannot follow raises one :class:`~mad.graph.GraphError` that
says why; the input graph is never changed.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..arch_graph import ArchGraph, GraphError, TensorSpec
from ..builder import GraphBuilder
from ..symbolic import concrete
from .adapt import check_shared_params, shared_names
from .edit import eliminate_dead_code, insert_after, rewire
from .reinfer import ReinferError, reinfer
from .resize import Resize

__all__ = ["retarget", "project_output", "projectable", "image_as_signal", "signal_as_image"]

MAX_ATTEMPTS = 24


class _Failed(Exception):
    """One attempt failed at a node; carries the attempt's graph to find what to blame."""

    def __init__(self, graph: ArchGraph, error: ReinferError) -> None:
        super().__init__(str(error))
        self.graph, self.error = graph, error


def _blame(g: ArchGraph, failed: str, applied: list[str], disabled: set[str]) -> str | None:
    """The substituted node nearest upstream of the failing one (a candidate coincidence), if any."""
    if failed not in g.nodes:
        return None
    up = g.ancestors([failed])
    for site in reversed(applied):
        if site in up and site not in disabled:
            return site
    return None


# ops a head's output passes through on its way to the graph output
_HEAD_PASS = {"dropout", "view", "reshape", "_unsafe_view", "flatten", "squeeze", "squeeze_dims", "squeeze_all",
              "unsqueeze", "contiguous", "clone", "to_dtype", "to_dtype_layout", "_to_copy", "alias", "detach",
              "softmax", "log_softmax", "permute", "transpose", "type_as"}
# ops an embedding's indices may pass through from the token input
_INDEX_PASS = {"view", "reshape", "_unsafe_view", "flatten", "unsqueeze", "squeeze", "contiguous", "clone",
               "to_dtype", "to_dtype_layout", "_to_copy", "alias", "detach", "select", "slice", "lift_fresh_copy"}
_TOKEN_FEATURE_KEYS = ("last_hidden_state", "hidden_states", "text_embeds", "features")
_FEATURE_KEYS = ("pooler_output", "last_hidden_state", "image_embeds", "text_embeds", "features", "hidden_states")


def _fail(g: ArchGraph, why: str) -> GraphError:
    return GraphError(f"retarget {g.name!r}: {why}")


def _float_inputs(g: ArchGraph, rank: int) -> list[TensorSpec]:
    """The graph's float input specs of ``rank``."""
    return [s for s in g.inputs if s.dtype.startswith(("float", "bfloat")) and len(s.shape) == rank]


def image_as_signal(g: ArchGraph, name: str | None = None) -> ArchGraph:
    """``g``, changed in place, reading a ``(B, C, L)`` signal where it read a ``(B, C, 1, L)`` image: the input
    drops its height-1 dim and an ``unsqueeze`` after it puts the dim back, so a 2-D image network runs on 1-D
    signals (the random space draws signal classifiers this way; :func:`retarget` puts any image network on a
    signal task so).

    Args:
        g: a graph whose input ``name`` (default: its only rank-4 float input) has height 1.

    Raises:
        GraphError: no such input, or its height is not 1.
    """
    spec = _one_input(g, name, 4)
    if spec is None or spec.shape[2] != 1:
        raise _fail(g, f"image_as_signal needs one float (B, C, 1, L) input{f' named {name!r}' if name else ''}, "
                       f"got {_input_list(g)}")
    inp = _set_input(g, spec, [spec.shape[0], spec.shape[1], spec.shape[3]], ["batch", "channels", "length"])
    insert_after(g, inp, "unsqueeze", dim=2)
    return _recount(g)


def signal_as_image(g: ArchGraph, name: str | None = None) -> ArchGraph:
    """The inverse of :func:`image_as_signal`: ``g``, changed in place, reading the ``(B, C, 1, L)`` image that
    its ``(B, C, L)`` signal input was unsqueezed into (the ``unsqueeze`` goes), so an image network that was put
    on a signal task is the image network again (what a generator asked for a ``C x 1 x L`` image learns from).

    Args:
        g: a graph whose input ``name`` (default: its only rank-3 float input) feeds exactly one node, an
            ``unsqueeze`` at dim 2.

    Raises:
        GraphError: no such input, or it feeds anything else.
    """
    spec = _one_input(g, name, 3)
    inp = g.input_node(spec.name) if spec is not None else None
    users = g.successors(inp) if inp is not None else []
    unsq = g.nodes[users[0]] if len(users) == 1 else None
    if unsq is None or unsq.op != "unsqueeze" or unsq.attrs.get("dim") not in (2, -2) or inp in g.outputs:
        readers = [g.nodes[u].op for u in users]
        raise _fail(g, f"signal_as_image needs one float (B, C, L) input{f' named {name!r}' if name else ''} read "
                       f"only by an unsqueeze at dim 2, got inputs {_input_list(g)}, read by {readers}")
    _set_input(g, spec, [spec.shape[0], spec.shape[1], 1, spec.shape[2]], ["batch", "channels", "height", "width"])
    rewire(g, {unsq.id: inp})
    g.remove_nodes([unsq.id])
    return _recount(g)


def _one_input(g: ArchGraph, name: str | None, rank: int) -> TensorSpec | None:
    """The input ``name`` (default: the graph's only float input of ``rank``) when it has ``rank``, else ``None``
    (no such input, or several candidates)."""
    names = [name] if name is not None else [s.name for s in _float_inputs(g, rank)]
    spec = next((s for s in g.inputs if s.name in names), None) if len(names) == 1 else None
    return spec if spec is not None and len(spec.shape) == rank else None


def _input_list(g: ArchGraph) -> list[tuple]:
    return [(s.name, s.dtype, list(s.shape)) for s in g.inputs]


def _set_input(g: ArchGraph, spec: TensorSpec, shape: list, dims: list[str]) -> str:
    """Give input ``spec`` (and its node) ``shape`` and ``dims``; returns the input node's id."""
    inp = g.input_node(spec.name)
    spec.shape, g.nodes[inp].shape, spec.dims = list(shape), list(shape), dims
    return inp


def _recount(g: ArchGraph) -> ArchGraph:
    """``g`` validated, its ``meta["num_nodes"]`` (where it has one) refreshed after an input pass."""
    if "num_nodes" in g.meta:
        g.meta["num_nodes"] = len(g.nodes)
    return g.validate()


def _primary_input(g: ArchGraph, token: bool, rank: int) -> str:
    """Name of the input the task feeds: int64 token ids of rank 2, or a float tensor of ``rank``."""
    specs = g.inputs
    if token:
        cands = [s for s in specs if s.dtype in ("int64", "int32") and len(s.shape) == 2]
        pref = [s for s in cands if s.name in ("input_ids", "ids", "tokens", "x")]
    else:
        cands = _float_inputs(g, rank)
        pref = [s for s in cands if s.name in ("pixel_values", "x", "images", "input", "inputs", "input_values")]
    pick = (pref or cands or [None])[0]
    if pick is None:
        kind = "int64 token ids (B, T)" if token else f"a float input of rank {rank} (batch + {rank - 1} dims)"
        have = [(s.name, s.dtype, list(s.shape)) for s in specs]
        raise _fail(g, f"the task needs {kind}, but the graph's inputs are {have}")
    return pick.name


def _walk_back(g: ArchGraph, nid: str, through: set[str]) -> list[str]:
    path = [nid]
    while g.nodes[path[-1]].op in through and g.predecessors(path[-1]):
        path.append(g.predecessors(path[-1])[0])
    return path


def _primary_output(g: ArchGraph, token: bool) -> tuple[str | None, bool]:
    """(node id of the logits, True) when the graph has a head, else (features node, False)."""
    keys = g.output_keys or []
    if g.output_kind == "dict":
        for k in keys:
            if k == "logits" or k.startswith("logits."):
                return g.outputs[keys.index(k)], True
        for k in (_TOKEN_FEATURE_KEYS if token else _FEATURE_KEYS):
            if k in keys:
                return g.outputs[keys.index(k)], False
        floats = [o for o in g.outputs if str(g.nodes[o].dtype).startswith(("float", "bfloat"))]
        return (floats[0] if floats else None), False
    return g.outputs[0], True


def _head_layer(g: ArchGraph, out: str) -> str | None:
    for nid in _walk_back(g, out, _HEAD_PASS):
        if g.nodes[nid].op == "linear" or g.nodes[nid].op.startswith("conv"):
            return nid if g.nodes[nid].params else None
    return None


def _set_out_size(g: ArchGraph, nid: str, n: int) -> None:
    node = g.nodes[nid]
    w = node.params["weight"]
    transposed = "transpose" in node.op
    if transposed:
        groups = node.attrs.get("groups", 1) or 1
        if n % groups:
            raise _fail(g, f"head {nid!r} ({node.op}) has groups={groups}, which does not divide {n}")
        node.params["weight"] = [w[0], n // groups, *w[2:]]
    else:
        node.params["weight"] = [n, *w[1:]]
    if "bias" in node.params:
        node.params["bias"] = [n]


def _token_embeddings(g: ArchGraph, prim_node: str) -> list[str]:
    out = []
    for n in g.nodes.values():
        if n.op == "embedding" and "weight" in n.params:
            idx = g.predecessors(n.id)
            if idx and _walk_back(g, idx[0], _INDEX_PASS)[-1] == prim_node:
                out.append(n.id)
    return out


def _resize_vocab(g: ArchGraph, embeddings: list[str], head: str | None, vocab: int) -> list[str]:
    """Token tables (and everything sharing their weight) and the LM head to ``vocab`` rows."""
    changed = []
    shared = shared_names(g)
    for e in embeddings:
        node = g.nodes[e]
        d = node.params["weight"][1]
        node.params["weight"] = [vocab, d]
        pad = node.attrs.get("padding_idx")
        if isinstance(pad, int) and pad >= vocab:
            node.attrs["padding_idx"] = -1
        changed.append(e)
        for nid, role in shared.get(node.param_name("weight"), []):
            other = g.nodes[nid]
            if nid == e or role != "weight" or other.params[role] != [vocab, d] and other.op not in ("linear",
                                                                                                     "embedding"):
                continue
            if other.op == "embedding":  # e.g. a decoder's table shared with the encoder's
                other.params["weight"] = [vocab, d]
            else:
                _set_out_size(g, nid, vocab)
            changed.append(nid)
    if head is not None and head not in changed:
        _set_out_size(g, head, vocab)
        changed.append(head)
    return changed


def _grow_positions(g: ArchGraph, tokens: list[str], old_len: int, new_len: int) -> list[str]:
    """Position tables (embeddings indexed by positions made in the graph, not read from an input)
    get rows for a longer sequence: ``rows + (new_len - old_len)``, keeping any offset they had."""
    changed = []
    for n in g.nodes.values():
        if n.op != "embedding" or n.id in tokens or "weight" not in n.params or new_len <= old_len:
            continue
        stack, seen, from_input = list(g.predecessors(n.id)), set(), False
        while stack and not from_input:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            from_input = g.nodes[p].op == "input"
            stack.extend(g.predecessors(p))
        rows, d = n.params["weight"]
        if not from_input and rows < new_len + 2:
            n.params["weight"] = [rows + new_len - old_len, d]
            changed.append(n.id)
    return changed


def _fill_inputs(g: ArchGraph, prim: str, old_shape: list[int], sub: dict[int, int]) -> list[str]:
    """Replace every non-primary input by a constant made from the primary one (or of a fixed size)."""
    b = GraphBuilder.extend(g)
    pnode = g.input_node(prim)
    changed = []
    for spec in [s for s in g.inputs if s.name != prim]:
        nid = g.input_node(spec.name)
        is_mask = "mask" in spec.name
        if list(spec.shape) == old_shape and spec.name.endswith("input_ids") and spec.dtype == g.inputs[0].dtype:
            new = pnode  # decoder_input_ids and the like: the same tokens
            changed += rewire(g, {nid: new})
            g.remove_nodes([nid])
            g.inputs = [s for s in g.inputs if s.name != spec.name]
            continue
        if list(spec.shape) == old_shape:
            new = b.op("ones_like" if is_mask else "zeros_like", pnode, dtype=spec.dtype)
        else:
            size = [old_shape[0]] + [sub.get(d, d) for d in spec.shape[1:]]
            new = b.op("ones" if is_mask else "zeros", size=size, dtype=spec.dtype)
        changed += rewire(g, {nid: new})
        g.remove_nodes([nid])
        g.inputs = [s for s in g.inputs if s.name != spec.name]
        changed.append(new)
    return changed


def _resize_input(g: ArchGraph, pnode: str, old_shape: list[int]) -> list[str]:
    """Interpolate the new input back to the spatial size the graph was built for."""
    b = GraphBuilder.extend(g)
    rank = len(old_shape) - 2
    op = {1: "upsample_linear1d", 2: "upsample_bilinear2d"}.get(rank)
    if op is None:
        raise _fail(g, f"cannot resize a {rank}-d input back to {old_shape[2:]}")
    with b.scope("resize_input"):
        new = b.op(op, pnode, output_size=list(old_shape[2:]), align_corners=False)
    return rewire(g, {pnode: new}, exclude=[new]) + [new]


def _attach_head(g: ArchGraph, feats: str, n: int, token: bool) -> str:
    b = GraphBuilder.extend(g)
    shape = g.nodes[feats].shape
    if not isinstance(shape, list) or not shape or isinstance(shape[0], list):
        raise _fail(g, f"output {feats!r} is not one tensor; no head can be attached")
    if token:
        if len(shape) != 3:
            raise _fail(g, f"its features {feats!r} have shape {shape}, not (B, T, D): no per-token LM head fits")
        return b.op("linear", feats, out_features=n, bias=False, scope="lm_head")
    x = feats
    if len(shape) > 2:
        x = b.op("mean", feats, dim=list(range(1, len(shape) - 1)) if len(shape) == 3 else list(range(2, len(shape))))
    return b.op("linear", x, out_features=n, scope="classifier")


def _concrete(dims: Sequence) -> bool:
    return all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims)


def projectable(have: object, want: Sequence) -> bool:
    """Whether :func:`project_output` can take a tensor of shape ``have`` to ``want``: the same batch dim and

    * the same rank (2 to 4): for ranks 2 and 3 the same dims but the last; for rank 4 (``(B, C, H, W)``) any
      channels, and any spatial size when ``want``'s is concrete;
    * or any ranks with concrete sizes after the batch dim on both sides (flattened, then a linear layer).
    """
    want = list(want)
    if not isinstance(have, list) or not have or not want or have[0] != want[0]:
        return False
    if any(isinstance(d, list) for d in have):
        return False
    return _same_rank(have, want) or (len(have) >= 2 and len(want) >= 2 and _concrete(have[1:])
                                      and _concrete(want[1:]))


def _same_rank(have: list, want: list) -> bool:
    """Whether a pool/1x1-conv (rank 4) or a linear on the last dim (ranks 2, 3) takes ``have`` to ``want``."""
    if len(have) != len(want) or not 2 <= len(want) <= 4:
        return False
    if len(want) == 4:  # a 1x1 conv needs a concrete channel dim to read
        return (have[1] == want[1] or _concrete(have[1:2])) and (have[2:] == want[2:] or _concrete(want[2:]))
    return have[1:-1] == want[1:-1] and (have[-1] == want[-1] or _concrete(have[-1:]))


def _project(b: GraphBuilder, x: str, have: list, want: list, scope: str) -> str:
    if _same_rank(have, want):
        if len(want) == 4:
            if have[2:] != want[2:]:
                x = b.op("adaptive_avg_pool2d", x, output_size=want[2:], scope=f"{scope}.pool")
            if have[1] != want[1]:
                x = b.op("conv2d", x, out_channels=want[1], kernel_size=1, scope=f"{scope}.conv")
        elif have[-1] != want[-1]:
            x = b.op("linear", x, out_features=want[-1], scope=f"{scope}.linear")
        return x
    if len(have) > 2:
        x = b.op("flatten", x, start_dim=1, scope=f"{scope}.flatten")
    x = b.op("linear", x, out_features=math.prod(want[1:]), scope=f"{scope}.linear")
    return b.op("reshape", x, shape=[-1, *want[1:]], scope=f"{scope}.reshape") if len(want) > 2 else x


def project_output(graph: ArchGraph, node: str | Sequence[str], shape: Sequence) -> ArchGraph:
    """A copy of ``graph`` ending at ``node`` and then the smallest projection to ``shape``.

    An image tensor ``(B, C, H, W)`` gets an adaptive average pool when its spatial size differs and a 1x1
    convolution when its channels do; ``(B, D)`` and ``(B, T, D)`` get a linear layer on the last dim; other
    tensors with concrete sizes are flattened after the batch dim, then a linear layer and a reshape give
    ``shape``. Several nodes are each projected and the projections added. Nodes that no longer reach the
    output are dropped.

    Raises:
        GraphError: a node's shape cannot be projected to ``shape`` (:func:`projectable`).
    """
    g = graph.copy()
    nodes, want = ([node] if isinstance(node, str) else list(node)), list(shape)
    if not nodes:
        raise GraphError(f"{g.name!r}: project_output needs at least one node")
    for nid in nodes:
        if not projectable(g.nodes[nid].shape, want):
            raise GraphError(f"{g.name!r}: node {nid!r} of shape {g.nodes[nid].shape} cannot be projected to {want}")
    b = GraphBuilder.extend(g)
    ends = [_project(b, nid, list(g.nodes[nid].shape), want, "project" if len(nodes) == 1 else f"project.{k}")
            for k, nid in enumerate(nodes)]
    x = ends[0]
    for y in ends[1:]:
        x = b.op("add", x, y, scope="project")
    g.set_outputs([x])
    eliminate_dead_code(g)
    return g


def query_input(graph: ArchGraph, shape: Sequence) -> str | None:
    """The token-id input of ``graph`` whose length an output of ``shape`` ``(B, T, E)`` follows (an input
    ``(B, T)`` of integers with a value range), when :func:`attend_output` can take a node to ``shape`` from it."""
    want = list(shape)
    if len(want) != 3 or not _concrete(want[2:]):
        return None
    return next((s.name for s in graph.inputs if list(s.shape) == want[:2] and s.dtype.startswith("int")
                 and s.range is not None and s.name in graph.nodes), None)


def attendable(have: object, want: Sequence) -> bool:
    """Whether :func:`attend_output` can take features of shape ``have`` to ``want``: both ``(B, ., D)`` with
    the same batch dim and a concrete width."""
    want = list(want)
    return (isinstance(have, list) and len(have) == 3 and len(want) == 3 and have[0] == want[0]
            and not any(isinstance(d, list) for d in have) and _concrete(have[2:]) and _concrete(want[2:]))


def attend_output(graph: ArchGraph, node: str, ids: str, shape: Sequence) -> ArchGraph:
    """A copy of ``graph`` ending in a one-layer decoder from token-id input ``ids`` to ``node``'s features.

    For an output ``(B, T, E)`` that follows the length of ``ids`` ``(B, T)`` while ``node`` has another
    length ``(B, S, D)`` (an encoder's): the ids are embedded (``D`` wide), attend to ``node`` with one
    cross-attention head (queries from the embeddings, keys and values from ``node``), and a linear layer gives
    ``E``. Nodes that no longer reach the output are dropped.

    Raises:
        GraphError: ``ids`` is not a token-id input of length ``shape[1]``, or ``node`` is not ``(B, S, D)``.
    """
    g = graph.copy()
    want = list(shape)
    if query_input(g, want) != ids:
        raise GraphError(f"{g.name!r}: {ids!r} is not a token-id input (B, T) that an output {want} follows")
    spec = next(s for s in g.inputs if s.name == ids)
    have = g.nodes[node].shape
    if not attendable(have, want):
        raise GraphError(f"{g.name!r}: node {node!r} of shape {have} cannot be attended to for an output {want}")
    width = int(have[2])  # type: ignore[index]
    b = GraphBuilder.extend(g)
    q = b.op("embedding", ids, num_embeddings=int(spec.range[1]), embedding_dim=width,  # type: ignore[index]
             scope="decode.embed")
    k = b.op("linear", node, out_features=width, scope="decode.key")
    v = b.op("linear", node, out_features=width, scope="decode.value")
    x = b.op("scaled_dot_product_attention", b.op("linear", q, out_features=width, scope="decode.query"), k, v,
             attn_mask=None, is_causal=False, scope="decode.attn")
    x = b.op("add", q, x, scope="decode")
    g.set_outputs([b.op("linear", x, out_features=want[2], scope="decode.out")])
    eliminate_dead_code(g)
    return g


def retarget(graph: ArchGraph, input_shape: Sequence[int], num_classes: int | None = None,
             vocab_size: int | None = None, fill_inputs: bool = True) -> ArchGraph:
    """A copy of ``graph`` put on a task with inputs of ``input_shape`` (no batch dim).

    Args:
        graph: any architecture (left untouched).
        input_shape: one example's shape: ``(C, H, W)`` images, ``(C, L)`` signals, ``(T,)`` tokens.
        num_classes: outputs of the classifier head (image/signal tasks).
        vocab_size: token vocabulary (token tasks): the token embedding, the LM head and the
            ids' ``range`` change to it; ``input_shape = (T,)`` sets the sequence length.
        fill_inputs: replace inputs other than the task's (masks, token types) by constants.

    Returns:
        the retargeted graph, validated, returning the logits: ``(B, num_classes)`` for a classifier,
        ``(B, T, vocab_size)`` for a language model. The last linear or conv layer is resized to the
        classes or vocabulary; when what follows it cannot take the new size (a reshape or a grouped
        conv that needs the old one), it keeps its size and a new head is attached to the output instead
        (``meta["retarget"]["new_head"]``).

    Raises:
        GraphError: the graph cannot take the task (no matching input, a layer or size that
            cannot follow, no features to attach a head to), saying which and why.

    Example:
        >>> g2 = retarget(g, (1, 28, 28), num_classes=10)
        >>> g2.to_module()(*g2.example_inputs()).shape
        torch.Size([2, 10])
    """
    shape = [int(d) for d in input_shape]
    token = vocab_size is not None
    if token and len(shape) != 1:
        raise _fail(graph, f"a token task's input_shape is (T,), got {tuple(shape)}")
    if any(d < 1 for d in shape):
        raise _fail(graph, f"input_shape dims must be >= 1, got {tuple(shape)}")
    if not token and len(shape) == 2 and not _float_inputs(graph, 3) and len(_float_inputs(graph, 4)) == 1:
        return _signal_from_image(graph, shape, num_classes, fill_inputs)
    return _retarget(graph, shape, num_classes, vocab_size, fill_inputs)


def _retarget(graph: ArchGraph, shape: list[int], num_classes: int | None, vocab_size: int | None,
              fill_inputs: bool, may_resize: bool = True) -> ArchGraph:
    """:func:`retarget` once the input's rank matches the task's (``may_resize=False``: an image network that
    cannot take the new size is refused rather than given a resize of its input)."""
    token = vocab_size is not None
    prim = _primary_input(graph, token, len(shape) + 1)
    old_shape = list(next(s for s in graph.inputs if s.name == prim).shape)
    first = 1 if token else 2  # channels follow through the layers, not by substitution
    sub: dict[int, int] = {}
    dims = dict(graph.dims)
    for o, n in zip(old_shape[first:], [old_shape[0], *shape][first:]):
        if isinstance(o, str):  # a symbolic dim (the sequence length T): only its example size changes
            if not o.isidentifier():
                raise _fail(graph, f"input {prim!r} dim {o!r} is an expression of other dims; cannot set it to {n}")
            if n < 2:
                raise _fail(graph, f"input {prim!r} dim {o!r} is symbolic and needs an example size >= 2, got {n}")
            dims[o] = n
        elif o != n:
            sub[o] = n
    # other inputs' symbols of the same example size follow too (a decoder's length S with the encoder's T),
    # as equal concrete sizes do through the substitution map
    moved = {graph.dims[o]: dims[o] for o in old_shape[first:] if isinstance(o, str) and o in graph.dims}
    for sym, size in graph.dims.items():
        if sym not in old_shape and size in moved and sym != old_shape[0]:
            dims[sym] = moved[size]
    keep = {d for d in old_shape[:first] if isinstance(d, int)}
    # sizes a capture left concrete although they follow a symbolic dim (its old example size): tried if needed
    # (they take the new example size, so the result runs at that length)
    frozen = {old: new for old, new in moved.items() if old != new and old > 1 and old not in keep}
    resize_input, new_head, disabled, tried = False, False, set(), set()
    error: GraphError | None = None
    last: tuple[str, str] | None = None  # (failing node, node disabled for it)
    for _ in range(MAX_ATTEMPTS):
        resize = Resize(sub, keep, disabled, old_dims=graph.dims, new_dims=dims)
        try:
            g = _attempt(graph, prim, shape, num_classes, vocab_size, fill_inputs, resize, resize_input, new_head)
            break
        except _Failed as e:
            error = e.error
            if last is not None and last[0] == e.error.node:  # disabling it did not help: put it back
                disabled.discard(last[1])
            more = resize.derived()
            blame = _blame(e.graph, e.error.node, resize.applied, disabled | tried)
            last = None
            if more:  # sizes that turned out to follow the input (a token count): substitute them too
                sub = sub | more
            elif frozen and not frozen.items() <= sub.items():  # concrete copies of a symbolic dim's size
                sub = sub | frozen
            elif blame is not None:  # a size substituted by coincidence (a rotary dim equal to the length)
                disabled.add(blame)
                tried.add(blame)
                last = (e.error.node, blame)
            elif may_resize and not token and not resize_input and old_shape[2:] != shape[1:] and all(
                    isinstance(d, int) for d in old_shape[2:]):
                resize_input, sub, disabled = True, {}, set()  # cannot take the new size: resize the input
            elif not new_head and (num_classes is not None or token):
                new_head = True  # a head whose size the rest cannot follow (reshaped, grouped): keep it, add one
            else:
                raise _fail(graph, str(error)) from None
    else:
        raise _fail(graph, f"gave up after {MAX_ATTEMPTS} attempts: {error}")
    g.meta["retarget"] = {"input_shape": shape, "num_classes": num_classes, "vocab_size": vocab_size}
    if resize_input:
        g.meta["retarget"]["resized_input_to"] = old_shape[2:]
    if new_head:
        g.meta["retarget"]["new_head"] = True
    for key, value in (("num_params", lambda: g.num_params), ("flops", lambda: g.infer().flops),
                       ("num_nodes", lambda: len(g.nodes))):
        if key in g.meta:
            g.meta[key] = value()
    return g


def _signal_from_image(graph: ArchGraph, shape: list[int], num_classes: int | None,
                       fill_inputs: bool) -> ArchGraph:
    """An image network on a ``(C, L)`` signal task: retargeted to ``(C, 1, L)`` images, then reading the signal
    through an ``unsqueeze`` (:func:`image_as_signal`). One whose layers cannot take a height of 1 (a 16x16 patch
    embedding, a 2x2 pool) is refused: resizing the signal into the image it was built for would stretch one row
    into many."""
    image = [shape[0], 1, shape[1]]
    try:
        g = _retarget(graph, image, num_classes, None, fill_inputs, may_resize=False)
    except GraphError as e:
        raise _fail(graph, f"an image network on a {tuple(shape)} signal reads it as a {tuple(image)} image, "
                           f"which it cannot take: {str(e).split(': ', 1)[-1]}") from None
    g = image_as_signal(g)
    g.meta["retarget"] = {**g.meta["retarget"], "input_shape": shape, "as_image": image}
    return g


def _attempt(graph: ArchGraph, prim: str, shape: list[int], num_classes: int | None, vocab_size: int | None,
             fill_inputs: bool, resize: Resize, resize_input: bool, new_head: bool = False) -> ArchGraph:
    g = graph.copy()
    token = vocab_size is not None
    spec = next(s for s in g.inputs if s.name == prim)
    pnode = g.input_node(prim)
    old_shape = list(spec.shape)
    spec.shape = [old_shape[0]] + [o if isinstance(o, str) else n for o, n in zip(old_shape[1:], shape)]
    g.dims = dict(resize.new_dims)
    changed = [pnode]
    out, has_head = _primary_output(g, token)
    head = _head_layer(g, out) if out is not None and has_head and not new_head else None
    if token:
        spec.range = [0, int(vocab_size)]  # type: ignore[arg-type]
        embeddings = _token_embeddings(g, pnode)
        if not embeddings:
            raise _fail(g, f"no embedding reads the token input {prim!r}; cannot change its vocabulary")
        old_vocab = g.nodes[embeddings[0]].params["weight"][0]
        if head is not None and g.nodes[head].params["weight"][0] != old_vocab and g.nodes[head].op == "linear":
            head = None  # the last linear does not predict tokens
        changed += _resize_vocab(g, embeddings, head, int(vocab_size))  # type: ignore[arg-type]
        t_old, t_new = concrete(old_shape[1], resize.old_dims), concrete(spec.shape[1], resize.new_dims)
        changed += _grow_positions(g, embeddings, t_old, t_new)
    elif head is not None and num_classes is not None:
        _set_out_size(g, head, int(num_classes))
        changed.append(head)
    if fill_inputs:
        changed += _fill_inputs(g, prim, old_shape, resize.sub)
    if resize_input:
        changed += _resize_input(g, pnode, old_shape)
    try:
        reinfer(g, changed, adapt=resize, everything=True)
    except ReinferError as e:
        raise _Failed(g, ReinferError(f"cannot follow input {prim!r} {old_shape} -> {spec.shape}: {e}", e.node))
    n_out = vocab_size if token else num_classes
    if head is None and out is not None and n_out is not None:
        out = _attach_head(g, out, int(n_out), token)
    if out is None:
        raise _fail(g, f"no output to predict from: outputs are {g.output_keys or g.outputs}")
    out_shape = g.nodes[out].shape
    if not isinstance(out_shape, list) or not out_shape or out_shape[0] != spec.shape[0]:
        raise _fail(g, f"its output {out!r} of shape {out_shape} does not keep the batch dim of input "
                       f"{prim!r} {spec.shape} (the model mixes examples of a batch)")
    if not token and len(out_shape) > 2:  # per-position logits (B, ..., classes): average them
        out = GraphBuilder.extend(g).op("mean", out, dim=list(range(1, len(out_shape) - 1)))
    g.set_outputs([out], kind="tensor")
    eliminate_dead_code(g)
    check_shared_params(g)
    g.validate()
    return g
