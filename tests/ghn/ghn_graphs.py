"""Graphs the GHN tests share."""

from __future__ import annotations

from mad.data import tasks
from mad.data.random_space.sampling import sample
from mad.graph import ArchGraph


def digits_graphs(n: int) -> list[ArchGraph]:
    """The first ``n`` random-space architectures that can be put on digits (convs, norms, linears, some free
    parameters)."""
    out = []
    for seed in range(20 * n):
        try:
            out.append(tasks.fit(sample(seed), "digits"))
        except Exception:  # noqa: BLE001 - some random-space graphs cannot take 8x8 inputs
            continue
        if len(out) == n:
            return out
    raise AssertionError(f"only {len(out)} random-space graphs fit digits")
