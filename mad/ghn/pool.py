"""Architectures put on a task for GHN training and evaluation: dataset graphs retargeted with ``tasks.fit``.

A graph qualifies for a task when it retargets, runs, costs at most ``max_mflops`` per example, has at most
``max_nodes`` nodes, and (language modelling) its logits at a position do not depend on later tokens (a
bidirectional encoder trained on next-token prediction copies the answer from its input).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
from pathlib import Path
from typing import Any, Iterator

from mad.graph import ArchGraph

__all__ = ["MODALITIES", "screen", "task_pool", "ordered_rows"]

log = logging.getLogger(__name__)

# which dataset modalities each task draws from (an image net cannot read token ids, and so on)
MODALITIES = {
    "mnist5k": ("image", "vision"),
    "digits": ("image", "vision"),
    "cifar10": ("image", "vision"),
    "mnist1d": ("image", "vision", "sequence", "time-series", "audio"),
    "chars": ("text", "sequence"),
}


def screen(g: ArchGraph, task: str, max_mflops: float = 15.0, max_nodes: int = 400) -> tuple[ArchGraph | None, str]:
    """``(graph retargeted to task, "")`` or ``(None, reason it does not qualify)``."""
    from mad.train import proxies

    if len(g.nodes) > max_nodes:
        return None, f"{len(g.nodes)} nodes > {max_nodes}"
    fitted, mflops, reason = proxies.screen(g, task)
    if mflops is None:
        return None, reason
    if mflops > max_mflops:
        return None, f"{mflops:.1f} MFLOPs > {max_mflops}"
    return fitted, ""


def ordered_rows(splits: tuple[str, ...], modalities: tuple[str, ...], seed: int = 0,
                 path: str | None = None) -> list[tuple[str, str]]:
    """``(row id, graph json)`` of the shipped dataset's ``splits`` with one of ``modalities``, in a fixed
    pseudo-random order (hash of seed and id)."""
    from mad.data.default import load_default

    dd = load_default(path)
    rows = []
    for split in splits:
        for r in dd[split].select_columns(["id", "modality", "graph"]):
            if r["modality"] in modalities:
                rows.append((r["id"], r["graph"]))
    return sorted(rows, key=lambda r: hashlib.sha1(f"{seed}:{r[0]}".encode()).hexdigest())


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)


def _screen_job(job: tuple[str, str, str, float, int]) -> tuple[str, str | None, str]:
    row_id, text, task, max_mflops, max_nodes = job
    g, reason = screen(ArchGraph.from_json(text), task, max_mflops, max_nodes)
    return row_id, None if g is None else g.to_json(), reason


def _jobs(rows, task, max_mflops, max_nodes) -> Iterator[tuple]:
    for row_id, text in rows:
        yield row_id, text, task, max_mflops, max_nodes


def task_pool(task: str, n: int, splits: tuple[str, ...] = ("train",), cache: str | Path | None = None,
              max_mflops: float = 15.0, max_nodes: int = 400, seed: int = 0, workers: int = 1,
              progress: bool = False) -> list[tuple[str, ArchGraph]]:
    """Up to ``n`` ``(row id, retargeted graph)`` pairs for ``task`` from the dataset's ``splits``.

    With ``cache`` (a JSONL file), qualifying graphs are appended as they are found and read back next time, so
    an interrupted pool build continues where it stopped.
    """
    done: dict[str, str | None] = {}
    cache = Path(cache) if cache else None
    if cache and cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["id"]] = rec.get("graph")
    rows = ordered_rows(splits, MODALITIES.get(task, ("image", "vision")), seed)
    out = [(i, ArchGraph.from_json(done[i])) for i, _ in rows if done.get(i)]
    todo = [(i, t) for i, t in rows if i not in done]
    bar = None
    if progress and len(out) < n:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=min(len(out), n), desc=f"pool {task}", unit="graph")
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
    fh = cache.open("a") if cache else None
    try:
        chunk = 8 * max(1, workers)
        pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init) if workers > 1 else None
        try:
            while len(out) < n and todo:
                batch, todo = todo[:chunk], todo[chunk:]
                jobs = list(_jobs(batch, task, max_mflops, max_nodes))
                results = pool.imap(_screen_job, jobs) if pool else map(_screen_job, jobs)
                for row_id, text, reason in results:
                    if fh:
                        fh.write(json.dumps({"id": row_id, "graph": text, "reason": reason}) + "\n")
                        fh.flush()
                    if text and len(out) < n:
                        out.append((row_id, ArchGraph.from_json(text)))
                        if bar:
                            bar.update(1)
        finally:
            if pool:
                pool.terminate()
    finally:
        if fh:
            fh.close()
        if bar:
            bar.close()
    return out[:n]


def describe(pool: list[tuple[str, ArchGraph]]) -> dict[str, Any]:
    return {"graphs": len(pool), "zoo": sum(i.startswith("zoo/") for i, _ in pool),
            "random": sum(i.startswith("random/") for i, _ in pool)}
