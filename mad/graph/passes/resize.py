"""Size-bearing attrs that follow new input shapes: the adapt hook of ``retarget``.

A captured graph records sizes it was traced with as plain ints: a
``view``'s target shape, an ``arange``'s end, a ``slice``'s end, an
``expand``'s sizes, a mask's ``zeros`` shape. When ``retarget`` changes the
input (sequence length, image size), :class:`Resize` rewrites those attrs
node by node, before each is re-inferred:

- ``view``/``reshape``/``unflatten``: structurally, by aligning the old
  input and output shapes into groups of dims with equal products (a
  merged group takes the new product; a split group keeps its constant
  factors);
- ``expand``: non-broadcast entries follow the input; the others, like
  ``arange``/``slice``/creation sizes, through a substitution map of the
  dims that changed (old size -> new size, e.g. ``{8: 64}`` for a
  sequence length);
- learned tables added to a sequence (a ``parameter`` node broadcast
  against tokens, e.g. ViT position embeddings) are resized when the token
  count no longer broadcasts.

Then :func:`~mad.graph.passes.adapt.follow_layers` re-derives layer
parameter shapes. Values equal to a changed size by coincidence are a
known weak spot of the substitution map; symbolic dims remove the need.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..arch_graph import ArchGraph, Node
from ..symbolic import concrete
from .adapt import follow_layers
from .reinfer import ReinferError

__all__ = ["Resize", "align", "SIZE_RULES"]

BIG = 2**62  # slice ends like sys.maxsize mean "to the end"


def align(a: list[int], b: list[int]) -> list[tuple[list[int], list[int]]] | None:
    """Group dims of shapes ``a`` and ``b`` (equal numel) into runs with equal products.

    Returns ``[(dims of a, dims of b), ...]`` or ``None`` when they do not align.
    """
    if 0 in a or 0 in b or math.prod(a) != math.prod(b):
        return None
    groups = []
    i = j = 0
    while i < len(a) or j < len(b):
        gi, gj = [], []
        pa = pb = 1
        if i < len(a):
            pa, gi, i = a[i], [i], i + 1
        if j < len(b):
            pb, gj, j = b[j], [j], j + 1
        while pa != pb:
            if pa < pb and i < len(a):
                pa, i = pa * a[i], i + 1
                gi.append(i - 1)
            elif pb < pa and j < len(b):
                pb, j = pb * b[j], j + 1
                gj.append(j - 1)
            else:
                return None
        groups.append((gi, gj))
    return groups


def _is_int_list(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in x)


class Resize:
    """The adapt hook: rewrite size attrs for new input shapes, then let layers follow.

    Args:
        sub: old size -> new size of every dim the retarget changed.
    """

    def __init__(self, sub: dict[int, int], keep: set[int] | None = None, disabled: set[str] | None = None,
                 old_dims: dict[str, int] | None = None, new_dims: dict[str, int] | None = None) -> None:
        self.sub = {k: v for k, v in sub.items() if k != v and k > 1}
        self.old_dims = dict(old_dims or {})  # example sizes of the dim symbols before / after
        self.new_dims = dict(new_dims if new_dims is not None else self.old_dims)
        self.g: ArchGraph | None = None
        self.keep = set(keep or ())  # sizes never derived (e.g. channel counts)
        self.disabled = set(disabled or ())  # nodes whose attrs must not be substituted
        self.applied: list[str] = []  # nodes whose attrs were substituted, in visiting order
        self.seen: dict[int, set[int]] = {}
        self.stable: set[int] = set()
        self._site = ""

    def observe(self, old: Any, new: Any) -> None:
        """Record how each concrete dim of a changed value moved (old size -> new size), or that it stayed.

        Symbolic dims are skipped: sizes that follow them are symbolic too."""
        if old == new or not isinstance(old, list) or not isinstance(new, list) or len(old) != len(new):
            return
        for a, b in zip(old, new):
            if not isinstance(a, int) or not isinstance(b, int) or isinstance(a, bool) or isinstance(b, bool):
                continue
            if a == b:
                self.stable.add(a)
            else:
                self.seen.setdefault(a, set()).add(b)

    def derived(self) -> dict[int, int]:
        """Size changes seen on the way that are unambiguous: the size always moved the same way and
        never stayed anywhere (e.g. a token count 17 -> 10 behind a patch embedding)."""
        return {a: next(iter(bs)) for a, bs in self.seen.items()
                if len(bs) == 1 and a not in self.stable and a not in self.keep and a not in self.sub and a > 1}

    def s(self, v: Any) -> Any:
        """``v`` through the substitution map (``-n`` as ``-sub[n]``), unless this node is disabled."""
        if not isinstance(v, int) or isinstance(v, bool) or v == -1 or self._site in self.disabled:
            return v
        new = self.sub.get(v, v) if v >= 0 else -self.sub.get(-v, -v)
        if new != v and (not self.applied or self.applied[-1] != self._site):
            self.applied.append(self._site)
        return new

    def guess(self, node: Node) -> Any:
        """A value-dependent node's new shape: its recorded one through the substitution map."""
        if isinstance(node.shape, list) and not any(isinstance(d, list) for d in node.shape):
            return [self.sub.get(d, d) if isinstance(d, int) else d for d in node.shape]
        return node.shape

    @staticmethod
    def _c(x: Any, dims: dict[str, int]) -> Any:
        try:
            return concrete(x, dims)
        except Exception:  # noqa: BLE001 - an expression over an unknown symbol: leave it to the shape rule
            return None

    def __call__(self, g: ArchGraph, node: Node, in_specs: list[tuple[Any, Any]], old_in: list[Any]) -> None:
        new_sym = [s for s, _ in in_specs]
        for o, n in zip(old_in, new_sym):
            self.observe(o, n)
        new_in = [self._c(x, self.new_dims) for x in new_sym]
        old_c = [self._c(x, self.old_dims) for x in old_in]
        rule = SIZE_RULES.get(node.op)
        self._site, self.g = node.id, g
        if rule is not None:
            rule(self, node, new_in, old_c, self._c(node.shape, self.old_dims))
        elif node.op in _BROADCAST and len(in_specs) >= 2 and new_in != old_c:
            _fit_tables(g, node, new_in, new_sym)
        follow_layers(g, node, in_specs, old_in)

    # ---------------------------------------------------------------- view-like
    def new_view(self, old_in: list[int], old_out: list[int], new_in: list[int]) -> list[int] | None:
        """The new target shape of a view from ``old_in -> old_out`` when its input becomes ``new_in``."""
        if len(old_in) != len(new_in):
            return None
        groups = align(old_in, old_out)
        if groups is None:
            return None
        out = list(old_out)
        for gi, gj in groups:
            old_g, new_g = [old_in[i] for i in gi], [new_in[i] for i in gi]
            if old_g == new_g:
                continue
            n = math.prod(new_g)
            if len(gj) == 1:
                out[gj[0]] = n
            elif len(gj) == 0:
                if n != 1:
                    return None
            elif len(gi) == len(gj) and all(old_in[i] == old_out[j] for i, j in zip(gi, gj)):
                for i, j in zip(gi, gj):  # same dims, one-to-one
                    out[j] = new_in[i]
            else:
                cand = [self.s(old_out[j]) for j in gj]
                if math.prod(cand) != n:
                    cand = self._split(n, [old_out[j] for j in gj])
                if cand is None:
                    return None
                for j, v in zip(gj, cand):
                    out[j] = v
        return out

    def _split(self, n: int, old: list[int]) -> list[int] | None:
        if len(set(old)) == 1:  # a square grid: equal factors
            r = round(n ** (1 / len(old)))
            if r ** len(old) == n:
                return [r] * len(old)
        for k in range(len(old)):  # one factor absorbs the change
            rest = math.prod(old[:k] + old[k + 1:])
            if rest and n % rest == 0:
                return old[:k] + [n // rest] + old[k + 1:]
        return None


Rule = Callable[["Resize", Node, list, list, Any], None]


def _keep_symbols(attr: list, new: list[int]) -> list:
    """The new sizes, keeping ``-1`` and symbolic entries (they follow the dim symbols by themselves)."""
    return [v if isinstance(v, str) or v == -1 else o for v, o in zip(attr, new)]


def _sized(v: Any) -> bool:
    return isinstance(v, list) and all((isinstance(x, int) and not isinstance(x, bool)) or isinstance(x, str)
                                       for x in v)


def _view(attr: str) -> Rule:
    def rule(r: Resize, node: Node, new_in: list, old_in: list, old_out: Any) -> None:
        size = node.attrs.get(attr)
        if not _sized(size) or not _is_int_list(old_out) or not _is_int_list(old_in[0]):
            return
        out = r.new_view(old_in[0], old_out, new_in[0]) if _is_int_list(new_in[0]) else None
        if out is None:
            raise ReinferError(f"node {node.id!r} ({node.op}, scope {node.scope!r}): cannot re-derive {attr} "
                               f"{size} (input {old_in[0]} -> {new_in[0]})", node.id)
        node.attrs[attr] = _keep_symbols(size, out)

    return rule


def _unflatten(r: Resize, node: Node, new_in: list, old_in: list, old_out: Any) -> None:
    d, sizes = node.attrs.get("dim"), node.attrs.get("sizes")
    if not isinstance(d, int) or not _sized(sizes) or not _is_int_list(new_in[0]) or not _is_int_list(old_out):
        return
    old_d, new_d = old_in[0][d], new_in[0][d]
    if old_d != new_d:
        k = d % len(new_in[0])
        out = r.new_view([old_d], old_out[k:k + len(sizes)], [new_d])
        if out is None:
            raise ReinferError(f"node {node.id!r} (unflatten): cannot split {new_d} like {sizes}", node.id)
        node.attrs["sizes"] = _keep_symbols(sizes, out)


def _expand(r: Resize, node: Node, new_in: list, old_in: list, old_out: Any) -> None:
    size = node.attrs.get("size")
    x = new_in[0]
    if not _sized(size) or not _is_int_list(x):
        return
    lead = len(size) - len(x)
    out = []
    for k, v in enumerate(size):
        i = k - lead
        if isinstance(v, str) or v == -1:
            out.append(v)
        elif i >= 0 and x[i] != 1:
            out.append(x[i])  # follows a real input dim
        else:
            out.append(r.s(v))  # a broadcast dim: a size from the trace
    node.attrs["size"] = out


def _sizes(*attrs: str) -> Rule:
    def rule(r: Resize, node: Node, new_in: list, old_in: list, old_out: Any) -> None:
        for a in attrs:
            v = node.attrs.get(a)
            if isinstance(v, list):
                node.attrs[a] = [r.s(x) for x in v]
            elif isinstance(v, int) and not isinstance(v, bool):
                node.attrs[a] = r.s(v)

    return rule


def _grow_table(r: Resize, node: Node, d: int, end: str) -> None:
    """A learned table sliced to a symbolic length must hold the example length and the probes beyond it."""
    g = r.g
    preds = g.predecessors(node.id) if g is not None else []
    if not preds or g.nodes[preds[0]].op != "parameter":
        return
    table = g.nodes[preds[0]]
    data = table.params.get("data")
    try:
        need = int(concrete(end, r.new_dims))
    except Exception:  # noqa: BLE001
        return
    if isinstance(data, list) and -len(data) <= d < len(data) and data[d] < need + 16:
        data = list(data)
        data[d] = max(2 * need, need + 16)
        table.params["data"] = data
        table.attrs.pop("value", None)
        table.shape = data


def _slice(r: Resize, node: Node, new_in: list, old_in: list, old_out: Any) -> None:
    d = node.attrs.get("dim", 0)
    if isinstance(node.attrs.get("end"), str) and isinstance(d, int):
        _grow_table(r, node, d, node.attrs["end"])
    x_old, x_new = old_in[0], new_in[0]
    if not _is_int_list(x_old) or not _is_int_list(x_new) or not isinstance(d, int):
        return
    old_n, new_n = x_old[d], x_new[d]
    for a in ("start", "end"):
        v = node.attrs.get(a)
        if not isinstance(v, int) or isinstance(v, bool) or v >= BIG:
            continue
        if old_n != new_n and v == old_n:
            node.attrs[a] = new_n  # x[:, :n] over the whole dim stays whole
        else:
            node.attrs[a] = r.s(v)


def _select(r: Resize, node: Node, new_in: list, old_in: list, old_out: Any) -> None:
    d, i = node.attrs.get("dim", 0), node.attrs.get("index")
    if isinstance(i, int) and i > 0 and _is_int_list(old_in[0]) and _is_int_list(new_in[0]):
        if i == old_in[0][d] - 1:
            node.attrs["index"] = new_in[0][d] - 1  # the last position stays last


def _split_sizes(r: Resize, node: Node, new_in: list, old_in: list, old_out: Any) -> None:
    d, sizes = node.attrs.get("dim", 0), node.attrs.get("split_sizes")
    if not _is_int_list(sizes) or not _is_int_list(new_in[0]):
        return
    n = new_in[0][d]
    if sum(sizes) == n:
        return
    cand = [r.s(v) for v in sizes]
    if sum(cand) != n:
        k = max(range(len(sizes)), key=lambda i: sizes[i])  # the largest part absorbs the change
        cand = list(sizes)
        cand[k] += n - sum(sizes)
    if min(cand) < 0:
        raise ReinferError(f"node {node.id!r} (split_with_sizes): cannot split {n} like {sizes}", node.id)
    node.attrs["split_sizes"] = cand


SIZE_RULES: dict[str, Rule] = {
    "view": _view("size"),
    "_unsafe_view": _view("size"),
    "reshape": _view("shape"),
    "unflatten": _unflatten,
    "expand": _expand,
    "slice": _slice,
    "select": _select,
    "split_with_sizes": _split_sizes,
    "narrow": _sizes("length"),
    "arange": _sizes("end"),
    "arange_start": _sizes("start", "end"),
    "arange_start_step": _sizes("start", "end"),
    "linspace": _sizes("steps"),
    "eye": _sizes("n", "m"),
    **{op: _sizes("size") for op in ("zeros", "ones", "full", "empty", "rand", "randn", "new_zeros", "new_ones",
                                     "new_full", "new_empty")},
    **{op: _sizes("output_size") for op in ("upsample_nearest1d", "upsample_nearest2d", "upsample_bilinear2d",
                                            "upsample_bicubic2d", "upsample_linear1d", "upsample_bilinear2d_aa")},
}

_BROADCAST = {"add", "sub", "mul", "div", "add_", "mul_", "where", "maximum", "minimum", "masked_fill", "eq_tensor",
              "lt_tensor", "gt_tensor", "bitwise_and", "bitwise_or", "and", "or", "logical_and", "logical_or"}
_PASS_THROUGH = {"slice", "unsqueeze", "expand", "to_dtype", "to_dtype_layout", "_to_copy", "clone", "detach",
                 "alias", "dropout", "contiguous", "type_as", "to_device", "lift_fresh_copy"}


def _broadcasts(shapes: list[Any]) -> bool:
    try:
        torch.broadcast_shapes(*[torch.Size(s) for s in shapes if _is_int_list(s)])
        return True
    except RuntimeError:
        return False


def _chain_to_table(g: ArchGraph, nid: str) -> list[str] | None:
    """[parameter node, ..., nid] when ``nid`` is a parameter seen through shape-preserving/slicing ops."""
    chain = [nid]
    while g.nodes[chain[-1]].op != "parameter":
        n = g.nodes[chain[-1]]
        preds = g.predecessors(n.id)
        if n.op not in _PASS_THROUGH or len(preds) != 1:
            return None
        chain.append(preds[0])
    return chain[::-1]


def _fit_tables(g: ArchGraph, node: Node, new_in: list, new_sym: list) -> None:
    """Resize a learned table (e.g. position embeddings) that no longer broadcasts against the tokens.

    Only against concrete dims: a table cannot follow a symbolic length (slice it instead)."""
    if any(x is None for x in new_in) or _broadcasts(new_in):
        return
    preds = g.predecessors(node.id)
    for k, p in enumerate(preds):
        chain = _chain_to_table(g, p)
        other = [s for j, s in enumerate(new_in) if j != k and _is_int_list(s)]
        if chain is None or not other or not _is_int_list(new_in[k]):
            continue
        table = g.nodes[chain[0]]
        data, mine, theirs = table.params["data"], new_in[k], other[0]
        if len(chain) > 1 or len(data) != len(mine) or len(theirs) < len(mine):
            continue  # only a table added as it is is resized
        theirs = theirs[len(theirs) - len(mine):]  # broadcasting aligns trailing dims
        j = next(j for j in range(len(new_in)) if j != k and _is_int_list(new_in[j]))
        sym = new_sym[j][len(new_sym[j]) - len(mine):]
        if any(isinstance(x, str) and m != t and m != 1 and t != 1 for x, m, t in zip(sym, mine, theirs)):
            continue
        new = [t if (m != t and m != 1 and t != 1) else d for d, m, t in zip(data, mine, theirs)]
        if new == data:
            continue
        table.params["data"] = new
        table.attrs.pop("value", None)  # a stored value of the old size no longer fits
        table.shape = new
        new_in[k] = new
        if _broadcasts(new_in):
            return
    # leave it to the shape rule to report the mismatch



