"""Finding runs of repeated blocks in a node sequence (the layers of a deep network), for compression.

A block of ``length`` node records repeats when every later copy has the same
ops, attrs and ties and each input reference either points ``length`` nodes
further (into the previous copy, or inside the copy) or to the same node
before the first copy (a *pinned* reference: a shared rotary table, a mask).
"""

from __future__ import annotations

from .assemble import NodeRec

__all__ = ["find_repeat"]


def find_repeat(recs: list[NodeRec], keys: list[tuple], i: int, max_len: int = 2048) -> tuple | None:
    """The repeated block starting at ``i`` that saves most nodes: ``(length, times, pins)`` or None."""
    best = None
    n = len(recs)
    for j in range(i + 1, min(n, i + max_len + 1)):
        if keys[j] != keys[i]:
            continue
        length = j - i
        if i + 2 * length > n:
            break
        times, pins = _copies(recs, keys, i, length)
        if times >= 2 and (best is None or (times - 1) * length > (best[1] - 1) * best[0]):
            best = (length, times, pins)
    if best is None or (best[1] - 1) * best[0] < 3:
        return None
    return best


def _copies(recs: list[NodeRec], keys: list[tuple], start: int, length: int) -> tuple[int, dict[int, set[int]]]:
    """How many consecutive copies of ``recs[start:start+length]`` there are, and which refs are pinned."""
    pins: dict[int, set[int]] | None = None
    times = 1
    while start + (times + 1) * length <= len(recs):
        base = start + (times - 1) * length
        nxt = base + length
        cand: dict[int, set[int]] = {}
        ok = True
        for p in range(length):
            a, b = recs[base + p], recs[nxt + p]
            if keys[base + p] != keys[nxt + p] or a.ties != b.ties and any(
                    b.ties[r] != a.ties[r] + length for r in a.ties):
                ok = False
                break
            if a.ties and any(a.ties[r] < start for r in a.ties):
                ok = False
                break
            for port, (sa, sb) in enumerate(zip(a.refs, b.refs)):
                if sb == sa + length:
                    continue
                if sb == sa and sa < start:
                    cand.setdefault(start + p, set()).add(port)
                    continue
                ok = False
                break
            if not ok:
                break
        if not ok or (pins is not None and cand != pins):
            break
        pins = cand
        times += 1
    return times, pins or {}


