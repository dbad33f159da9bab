"""Architectures put on a task for GHN training and evaluation: dataset graphs retargeted with ``tasks.fit``
(:func:`task_pool`) and, for training, fresh graphs drawn from the random architecture space (:func:`space_pool`).

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

__all__ = ["MODALITIES", "screen", "task_pool", "space_pool", "ordered_rows"]

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
    done, fh = _open_cache(cache)
    rows = ordered_rows(splits, MODALITIES.get(task, ("image", "vision")), seed)
    out = [(i, ArchGraph.from_json(done[i])) for i, _ in rows if done.get(i)]
    todo = [(i, t) for i, t in rows if i not in done]
    size = 8 * max(1, workers)
    chunks = (list(_jobs(todo[k:k + size], task, max_mflops, max_nodes)) for k in range(0, len(todo), size))
    return _collect(out, n, chunks, _screen_job, fh, workers, f"pool {task}" if progress else None)


def _open_cache(cache: str | Path | None) -> tuple[dict[str, str | None], Any]:
    """The screening results already in the JSONL file ``cache`` (id -> graph JSON, or None for a graph that did not
    qualify) and the file opened for appending (None without a cache)."""
    done: dict[str, str | None] = {}
    if not cache:
        return done, None
    cache = Path(cache)
    if cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["id"]] = rec.get("graph")
    cache.parent.mkdir(parents=True, exist_ok=True)
    return done, cache.open("a")


def _collect(out: list[tuple[str, ArchGraph]], n: int, chunks: Iterator[list[tuple]], fn, fh, workers: int,
             desc: str | None) -> list[tuple[str, ArchGraph]]:
    """Run the screening ``fn`` over job ``chunks`` (in ``workers`` processes) until ``out`` holds ``n`` graphs;
    every result is appended to ``fh`` as it comes, so an interrupted build continues where it stopped."""
    if len(out) >= n:
        if fh:
            fh.close()
        return out[:n]
    bar = None
    if desc:
        from tqdm import tqdm

        bar = tqdm(total=n, initial=len(out), desc=desc, unit="graph")
    try:
        pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init) if workers > 1 else None
        try:
            for jobs in chunks:
                if len(out) >= n:
                    break
                for row_id, text, reason in (pool.imap(fn, jobs) if pool else map(fn, jobs)):
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


SPACE_SEED = 10_000_000  # first random-space seed of space_pool, far from the dataset's own random/ seeds


def _space_config(task: str, max_mflops: float):
    """The random space :func:`space_pool` draws ``task``'s graphs from: image networks at the task's input shape (an
    image task) under its FLOPs cap, sequence models for a language-modelling task."""
    from mad.data.random_space import RandomSpaceConfig
    from mad.train.objective import TaskSpec

    spec = TaskSpec.of(task)
    if spec.is_lm:
        return RandomSpaceConfig(modality="sequence")
    kw = {}
    if len(spec.input_shape) == 3:
        kw = dict(image_shape=tuple(spec.input_shape), num_classes=spec.num_outputs)
    return RandomSpaceConfig(modality="image", max_flops=int(max_mflops * 1e6 * RandomSpaceConfig.batch_size), **kw)


def _space_job(job: tuple[int, str, float, int, frozenset]) -> tuple[str, str | None, str]:
    from mad.data.random_space import RandomSpaceError, sample

    seed, task, max_mflops, max_nodes, held = job
    try:
        raw = sample(seed, _space_config(task, max_mflops))
    except RandomSpaceError as e:
        return f"space/{seed}", None, str(e)[:200]
    if raw.wl_hash() in held:
        return f"space/{seed}", None, "one of the dataset's held-out graphs"
    g, reason = screen(raw, task, max_mflops, max_nodes)
    return f"space/{seed}", None if g is None else g.to_json(), reason


def space_pool(task: str, n: int, cache: str | Path | None = None, max_mflops: float = 15.0, max_nodes: int = 400,
               seed: int = 0, workers: int = 1, progress: bool = False) -> list[tuple[str, ArchGraph]]:
    """Up to ``n`` ``(id, retargeted graph)`` pairs for ``task`` drawn fresh from the random architecture space
    (:func:`_space_config`: image networks, sequence models for a language-modelling task), seeds
    ``SPACE_SEED + 1_000_000 * seed + k``, screened as :func:`task_pool` screens dataset graphs. A sample that is one
    of the dataset's ``validation`` or ``test`` graphs (same WL hash) is skipped, so held-out graphs stay unseen.
    ``cache`` (JSONL) makes the build resumable and the pool reproducible, as in :func:`task_pool`."""
    done, fh = _open_cache(cache)
    out = [(i, ArchGraph.from_json(t)) for i, t in done.items() if t][:n]
    first, size = SPACE_SEED + 1_000_000 * seed + len(done), 8 * max(1, workers)
    limit = 50 * n + 1000  # tries before giving up on a task the space hardly fits

    def chunks() -> Iterator[list[tuple]]:  # the held-out hashes are read only when a graph is to be drawn
        held = frozenset(ArchGraph.from_json(t).wl_hash() for _, t in ordered_rows(
            ("validation", "test"), MODALITIES.get(task, ("image", "vision")), seed))
        for k in range(0, limit, size):
            yield [(first + j, task, max_mflops, max_nodes, held) for j in range(k, k + size)]

    return _collect(out, n, chunks(), _space_job, fh, workers, f"space pool {task}" if progress else None)


def describe(pool: list[tuple[str, ArchGraph]]) -> dict[str, Any]:
    return {"graphs": len(pool), "zoo": sum(i.startswith("zoo/") for i, _ in pool),
            "random": sum(i.startswith("random/") for i, _ in pool),
            "space": sum(i.startswith("space/") for i, _ in pool)}
