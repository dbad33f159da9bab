"""Display model of a picture: boxes (nodes or collapsed blocks), edges between them, nested clusters.

Collapsing by scope depth, folding of ``getitem`` nodes into edge labels and
reference boxes for wide fan-out are decided here; :mod:`.dot` and
:mod:`.fallback` only draw the result.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..arch_graph import ArchGraph, Node
from ..ops import UnknownOpError, get_op
from .labels import _SHORT, human, op_detail, shape_text
from .style import _kind

log = logging.getLogger(__name__)

MAX_UNITS = 300  # boxes drawn before an automatic collapse kicks in
MAX_FANOUT = 6  # a box feeding more boxes than this gets reference boxes instead of edges


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
