"""set_kv_heads: grouped-query (GQA) and multi-query (MQA) attention by shrinking the key/value projections.

Recognised attention: a ``scaled_dot_product_attention`` node whose key and
value inputs ``(B, H_kv, T, D)`` come, through head-layout and rotary ops
(``transpose``, ``view``/``reshape``, ``mul``/``add``/``cat``/``neg``/``slice``,
dtype casts), from a ``linear`` projection, or from one output of a ``split``
of a fused ``qkv`` linear. That covers the random-space transformers and
vision cells and the captured BERT and Llama graphs. Keys and values already
repeated to the query heads by ops (``expand`` + ``reshape``, as some captures
write GQA) are not recognised.

The edit gives the key and value projections ``n * D`` outputs, sets the
head count of the head-split ``view``/``reshape`` (``-1`` entries infer it),
and sets ``enable_gqa`` on the attention node, which shares each key/value
head among ``H_q / n`` consecutive query heads (as ``repeat_interleave`` would).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arch_graph import ArchGraph, GraphError
from .edits import finish_edit
from .reinfer import reinfer

__all__ = ["set_kv_heads", "attention_projections"]

# ops a key/value passes through between its projection and the attention (followed through input 0)
_PASS = {"transpose", "permute", "view", "reshape", "_unsafe_view", "contiguous", "clone", "add", "mul", "cat", "neg",
         "slice", "to_dtype", "to_dtype_layout", "_to_copy", "type_as", "dropout", "alias"}
_HEAD_SPLIT = {"view": "size", "reshape": "shape", "_unsafe_view": "size"}
_SPLITS = {"split_with_sizes": "split_sizes", "split": "split_size"}


@dataclass
class _Path:
    """How one key or value input of an attention node is made."""

    proj: str  # the linear owning the projection weight
    head_split: str  # the view/reshape making (..., heads, head_dim)
    split: str | None = None  # the split of a fused projection, and which of its outputs
    index: int = 0
    through: list[str] = field(default_factory=list)


def _unrecognised(sdpa: str, role: str, nid: str, why: str) -> GraphError:
    return GraphError(f"set_kv_heads: attention node {sdpa!r}: the {role} input is not recognised at node {nid!r} "
                      f"({why}); set_kv_heads needs keys/values projected by a linear, split into heads by "
                      "view/reshape and transposed to (B, heads, T, head_dim)")


def _trace(g: ArchGraph, sdpa: str, role: str, start: str) -> _Path:
    cur, through, head_split = start, [], None
    while True:
        node = g.nodes[cur]
        if node.op == "linear" and "weight" in node.params:
            if head_split is None:
                raise _unrecognised(sdpa, role, cur, "no view/reshape splits the projection into heads")
            return _Path(cur, head_split, through=through)
        if node.op == "getitem":
            split = g.predecessors(cur)[0]
            src = g.predecessors(split)
            if (g.nodes[split].op not in _SPLITS or head_split is None or not src or g.nodes[src[0]].op != "linear"
                    or "weight" not in g.nodes[src[0]].params):
                raise _unrecognised(sdpa, role, cur, "a getitem that is not one part of a split linear projection")
            return _Path(src[0], head_split, split=split, index=node.attrs["index"], through=through)
        if node.op not in _PASS:
            raise _unrecognised(sdpa, role, cur, f"op {node.op!r} between the projection and the attention")
        if node.op in _HEAD_SPLIT:
            head_split = cur  # the one nearest the projection wins
        through.append(cur)
        preds = g.predecessors(cur)
        if not preds:
            raise _unrecognised(sdpa, role, cur, "it has no input")
        cur = preds[0]


def attention_projections(g: ArchGraph) -> dict[str, dict[str, _Path]]:
    """For each attention node: how its ``key`` and ``value`` are made (raises GraphError if not recognised)."""
    found = {}
    sdpas = [nid for nid in g.topo_order() if g.nodes[nid].op == "scaled_dot_product_attention"]
    if not sdpas:
        raise GraphError(f"set_kv_heads: graph {g.name!r} has no scaled_dot_product_attention node; attention "
                         "written with matmul/softmax is not recognised")
    for nid in sdpas:
        preds = g.predecessors(nid)
        shapes = [g.nodes[p].shape for p in preds[:3]]
        if any(not isinstance(s, list) or len(s) != 4 or not isinstance(s[1], int) for s in shapes):
            raise GraphError(f"set_kv_heads: attention node {nid!r}: query/key/value shapes {shapes} are not "
                             "(B, heads, T, head_dim) with a fixed head count; the pattern is not recognised")
        found[nid] = {role: _trace(g, nid, role, p) for role, p in (("key", preds[1]), ("value", preds[2]))}
    return found


def _set_heads(g: ArchGraph, sdpa: str, path: _Path, heads: int, n: int, head_dim: int) -> None:
    split = g.nodes[path.head_split]
    key = _HEAD_SPLIT[split.op]
    shape, size = split.shape, list(split.attrs.get(key, []))
    ok = isinstance(shape, list) and len(shape) >= 2 and shape[-2:] == [heads, head_dim] and len(size) == len(shape)
    if not ok:
        raise GraphError(f"set_kv_heads: attention node {sdpa!r}: node {path.head_split!r} ({split.op}) makes shape "
                         f"{shape}, not (..., {heads} heads, {head_dim}); the pattern is not recognised")
    if size[-2] != -1:
        size[-2] = n
    split.attrs[key] = size


def set_kv_heads(g: ArchGraph, n: int) -> ArchGraph:
    """A copy of ``g`` whose attention uses ``n`` key/value heads (``n = 1``: multi-query attention).

    Args:
        g: a valid graph (unchanged) with recognised attention (see the module docstring).
        n: key/value heads; must divide every attention node's query heads. ``n`` equal to the
            query heads gives standard multi-head attention.

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``kv_heads`` and ``attention``
        (the attention node ids). Key/value projections have ``n * head_dim`` outputs.

    Shapes:
        keys and values ``(B, H_q, T, D)`` or ``(B, H_kv, T, D)`` become ``(B, n, T, D)``; the
        attention output stays ``(B, H_q, T, D)``.

    Raises:
        GraphError: no attention node, a pattern not recognised (naming the node where tracing
            stopped), or ``n`` not dividing the query heads.

    Example:
        >>> h = set_kv_heads(g, 2)                      # GQA with 2 key/value heads
        >>> h.num_params < g.num_params
        True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise GraphError(f"set_kv_heads: n must be an int >= 1, got {n!r}")
    out = g.copy()
    plans = attention_projections(out)
    changed: list[str] = []
    split_sizes: dict[str, dict[int, int]] = {}  # fused projection's split -> output index -> new size
    resized: dict[str, int] = {}  # plain projection -> new out features
    for sdpa, paths in plans.items():
        q, k = (out.nodes[p].shape for p in out.predecessors(sdpa)[:2])
        heads, kv, head_dim = q[1], k[1], k[3]
        if heads % n:
            divisors = [d for d in range(1, heads + 1) if heads % d == 0]
            raise GraphError(f"set_kv_heads: attention node {sdpa!r} has {heads} query heads, which {n} key/value "
                             f"heads do not divide; choose n among {divisors}")
        for role, path in paths.items():
            _set_heads(out, sdpa, path, kv, n, head_dim)
            if path.split is not None:
                split_sizes.setdefault(path.split, {})[path.index] = n * head_dim
            else:
                proj = out.nodes[path.proj]
                if proj.params["weight"][0] != kv * head_dim:
                    raise GraphError(f"set_kv_heads: attention node {sdpa!r}: the {role} projection {path.proj!r} has "
                                     f"{proj.params['weight'][0]} outputs, not {kv} heads x {head_dim}; the pattern "
                                     "is not recognised")
                resized[path.proj] = n * head_dim
            changed += [path.proj, path.head_split]
        attrs = out.nodes[sdpa].attrs
        if n != heads:
            attrs["enable_gqa"] = True
        else:
            attrs.pop("enable_gqa", None)
        changed.append(sdpa)
    for split, sizes in split_sizes.items():
        node = out.nodes[split]
        if node.op != "split_with_sizes":
            raise GraphError(f"set_kv_heads: node {split!r} splits a fused projection in equal parts ({node.op}); "
                             "only split_with_sizes can give keys/values another size")
        new = list(node.attrs["split_sizes"])
        for index, size in sizes.items():
            new[index] = size
        node.attrs["split_sizes"] = new
        resized[out.predecessors(split)[0]] = sum(new)
        changed.append(split)
    for proj, rows in resized.items():
        node = out.nodes[proj]
        node.params["weight"] = [rows, *node.params["weight"][1:]]
        if "bias" in node.params:
            node.params["bias"] = [rows]
    reinfer(out, changed)
    return finish_edit(out, "set_kv_heads", kv_heads=n, attention=list(plans))
