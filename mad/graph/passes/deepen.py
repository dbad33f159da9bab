"""deepen: more of the repeated blocks (``layers.0, layers.1`` -> ``layers.0 .. layers.3``).

A *block family* is a set of numbered sibling scopes ``<base>.0``, ``<base>.1``...
(``layers.k``, ``encoder.layer.k``, ``blocks.k``, ``stages.s.cells.c``). The
families used are the outermost ones whose blocks all preserve shape (a
block's output has the shape of one of its inputs, see
:func:`~mad.graph.passes.repeat_block`); a family that does not (CNN stages,
which downsample) is looked into for families inside its blocks (their
cells). Each block is followed by copies of itself with fresh parameters.

set_depth: exactly ``n`` blocks over those families, by repeating or removing their last blocks.
"""

from __future__ import annotations

from ..arch_graph import ArchGraph, GraphError
from .blocks import _carried, block_io, block_nodes, remove_block, repeat_block
from .edits import finish_edit

__all__ = ["deepen", "block_families", "set_depth"]


def _families(scopes: set[str], within: str) -> dict[str, list[int]]:
    """Numbered families directly below ``within`` (no numbered scope between): base -> indices."""
    out: dict[str, set[int]] = {}
    for s in scopes:
        if within and not s.startswith(within + "."):
            continue
        parts = s[len(within) + 1:].split(".") if within else s.split(".")
        for i, p in enumerate(parts):
            if p.isdigit():
                base = ".".join([within] * bool(within) + parts[:i]) + "."
                out.setdefault(base, set()).add(int(p))
                break
    return {b: sorted(v) for b, v in sorted(out.items())}


def _repeatable(g: ArchGraph, scope: str) -> bool:
    try:
        ins, outs = block_io(g, block_nodes(g, scope))
        _carried(g, scope, ins, outs, None)
    except GraphError:
        return False
    return True


def block_families(g: ArchGraph) -> dict[str, list[int]]:
    """The block families :func:`deepen` repeats: base (``"layers."``) -> block indices, outermost first.

    Returns an empty dict when the graph has no numbered shape-preserving blocks.
    """
    scopes = {n.scope for n in g.nodes.values() if n.scope and n.op != "input"}
    chosen: dict[str, list[int]] = {}

    def visit(within: str) -> None:
        for base, indices in _families(scopes, within).items():
            if indices and all(_repeatable(g, f"{base}{i}") for i in indices):
                chosen[base] = indices
            else:
                for i in indices:
                    visit(f"{base}{i}")

    visit("")
    return chosen


def deepen(g: ArchGraph, factor: int = 2) -> ArchGraph:
    """A copy of ``g`` with ``factor`` times as many blocks in each repeated block family.

    Every block ``<base>.i`` is followed by ``factor - 1`` copies of itself (fresh parameters,
    same shapes); blocks are renumbered so that names follow execution order
    (``layers.0, layers.1`` become ``layers.0 .. layers.3``, ``layers.1`` being the copy of the
    old ``layers.0``).

    Args:
        g: a valid graph (unchanged).
        factor: an int ``>= 1`` (1 returns an equal copy).

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``factor`` and ``families``
        (base -> number of blocks before the edit).

    Raises:
        GraphError: ``factor < 1``, or ``g`` has no numbered shape-preserving blocks.

    Example:
        >>> h = deepen(g, 2)               # a 2-layer transformer becomes a 4-layer one
        >>> h.meta["edits"][-1]["families"]
        {'blocks.': 2}
    """
    families = _checked_families(g, "deepen", "factor", factor, "; nothing to deepen")
    out = g.copy()
    for base, indices in families.items():
        for i in sorted(indices, reverse=True):  # later siblings are renumbered; go from the last block
            repeat_block(out, f"{base}{i}", factor)
    return finish_edit(out, "deepen", factor=factor, families={b: len(v) for b, v in families.items()})


def _checked_families(g: ArchGraph, edit: str, arg: str, value: object, why: str = "") -> dict:
    """``block_families(g)`` after checking ``value`` (the edit's count argument ``arg``) is an int >= 1 and that
    ``g`` has repeated blocks; a :class:`GraphError` naming ``edit`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GraphError(f"{edit}: {arg} must be an int >= 1, got {value!r}")
    families = block_families(g)
    if not families:
        raise GraphError(f"{edit}: graph {g.name!r} has no repeated blocks (numbered sibling scopes such as "
                         f"'layers.0', 'layers.1' whose output has the shape of their input){why}")
    return families


def set_depth(g: ArchGraph, n: int) -> ArchGraph:
    """A copy of ``g`` with ``n`` blocks in all its repeated block families together.

    One block at a time: while there are too few, the last block of the family with the fewest is repeated
    (a copy with fresh parameters follows it); while there are too many, the last block of the family with
    the most is removed (its users read its carried input), never a family's only block.

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``blocks`` (before) and ``n``.

    Raises:
        GraphError: ``n < 1``, ``g`` has no numbered shape-preserving blocks, or ``n`` is below the number
            of families (each keeps one block).

    Example:
        >>> set_depth(two_layer_gpt, 6).meta["edits"][-1]
        {'pass': 'set_depth', 'blocks': 2, 'n': 6}
    """
    families = _checked_families(g, "set_depth", "n", n)
    if n < len(families):
        raise GraphError(f"set_depth: {len(families)} block families ({', '.join(families)}) keep one block each; "
                         f"n={n} is too few")
    before = sum(len(v) for v in families.values())
    out = g.copy()
    blocks = {b: sorted(v) for b, v in families.items()}
    while sum(len(v) for v in blocks.values()) != n:
        if sum(len(v) for v in blocks.values()) < n:
            base = min(blocks, key=lambda b: (len(blocks[b]), b))
            repeat_block(out, f"{base}{blocks[base][-1]}", 2)  # the copy is <base><last + 1>
            blocks[base].append(blocks[base][-1] + 1)
        else:
            base = max(blocks, key=lambda b: (len(blocks[b]), b))
            remove_block(out, f"{base}{blocks[base].pop()}")
    return finish_edit(out, "set_depth", blocks=before, n=n)
