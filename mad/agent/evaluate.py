"""Trained evaluations: train a candidate's graph briefly with :func:`mad.train.fit` and report its figures,
in this process, a local process pool, or on a Ray cluster.

Every candidate of a search trains with the same :class:`TrainSettings` (steps, batch, learning rate, seed),
so a result depends only on the architecture; results can be cached across runs by that identity
(``cache_dir``), which is how a benchmark gives every strategy the same figures for the same graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .records import error_text

__all__ = ["TrainSettings", "Evaluator", "train_graph", "measure_latency", "EXECUTORS"]

log = logging.getLogger(__name__)

EXECUTORS = ("local", "serial", "ray")


@dataclass(frozen=True)
class TrainSettings:
    """How every candidate is trained (the same for all, so results compare).

    Args:
        steps, batch_size, lr: :func:`mad.train.fit` options; ``seed`` seeds the init and the data order.
        task_options: the task's options (``{"seq_len": 32}``).
    """

    steps: int = 100
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    task_options: tuple[tuple[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["task_options"] = dict(self.task_options)
        return d


def measure_latency(module, inputs: tuple, repeats: int = 5) -> float:
    """Median milliseconds of one forward pass (no grad) after one warm-up call."""
    import torch

    with torch.no_grad():
        module(*inputs)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            module(*inputs)
            times.append(time.perf_counter() - t0)
    return 1000 * sorted(times)[len(times) // 2]


def train_graph(graph_json: str, task: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Train one graph (JSON) on ``task`` and return its figures (JSON values).

    ``value`` is the validation metric (accuracy, or bits per character for language modelling);
    ``test_value`` the same on the test split; ``latency_ms`` the forward time at batch 1 on this process's
    device. A graph that cannot train gets ``status: "failed"`` and the error, never an exception.
    """
    import torch

    from mad.graph import ArchGraph
    from mad.train import fit

    t0 = time.perf_counter()
    out: dict[str, Any] = {"status": "failed", "value": None, "test_value": None}
    try:
        g = ArchGraph.from_json(graph_json)
        r = fit(g, task, steps=settings["steps"], batch_size=settings["batch_size"], lr=settings["lr"],
                seed=settings["seed"], eval_every=0, progress=False, device="cpu" if not torch.cuda.is_available()
                else None, task_options=settings.get("task_options") or None)
        lm = r.task_type == "language_modeling"
        out.update(status=r.status, value=r.val_bpc if lm else r.val_accuracy,
                   test_value=r.test_bpc if lm else r.test_accuracy, val_loss=r.val_loss,
                   train_seconds=r.train_seconds, params=r.params, sees_future=r.sees_future)
        if lm and r.sees_future:  # a model that reads the next token has no comparable figure
            out.update(status="failed", value=None, test_value=None,
                       error="the model's logits depend on later tokens (not causal)")
        try:
            module = r.model.eval()
            dev = next(module.parameters()).device
            out["latency_ms"] = measure_latency(module, g.example_inputs(seed=0, device=dev, dims={"B": 1}))
        except Exception:  # noqa: BLE001 - latency is a figure, not a requirement
            out["latency_ms"] = None
    except Exception as e:  # noqa: BLE001 - a candidate that cannot train is a result, not a crash
        out["error"] = error_text(e)
    out["seconds"] = time.perf_counter() - t0
    return out


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


class Evaluator:
    """Runs trained evaluations, a few at a time.

    Args:
        task: the task name.
        settings: the :class:`TrainSettings` of every candidate.
        workers: parallel trainings (``local``: processes of one thread each; ``ray``: tasks).
        executor: ``"local"`` (a process pool, the default), ``"serial"`` (in this process) or ``"ray"``
            (``pip install 'mad[ray]'``; connects to ``RAY_ADDRESS`` or starts a local Ray).
        cache_dir: reuse results of identical (graph, task, settings) from this folder, and store new ones.
    """

    def __init__(self, task: str, settings: TrainSettings, workers: int = 1, executor: str = "local",
                 cache_dir: str | Path | None = None) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        self.task, self.settings, self.workers, self.executor = task, settings, max(1, int(workers)), executor
        self.cache = Path(cache_dir) if cache_dir else None
        self._pool: ProcessPoolExecutor | None = None
        self._ray = None

    def _cache_path(self, key: str) -> Path | None:
        if self.cache is None:
            return None
        ident = json.dumps({"key": key, "task": self.task, **self.settings.as_dict()}, sort_keys=True)
        return self.cache / f"{hashlib.sha1(ident.encode()).hexdigest()[:20]}.json"

    def _submit(self, graph_json: str) -> Callable[[], dict[str, Any]]:
        args = (graph_json, self.task, self.settings.as_dict())
        if self.executor == "serial" or self.workers == 1 and self.executor == "local":
            return lambda: train_graph(*args)
        if self.executor == "ray":
            ray = self._ray_module()
            ref = self._ray_train.remote(*args)
            return lambda: ray.get(ref)
        if self._pool is None:
            import torch

            # a process that has touched CUDA (the GHN on a GPU) cannot fork workers that use it
            method = "spawn" if torch.cuda.is_initialized() else "fork"
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context(method),
                                             initializer=_init_worker)
        fut: Future = self._pool.submit(train_graph, *args)

        def wait() -> dict[str, Any]:
            try:
                return fut.result()
            except BrokenProcessPool as e:  # a worker died (out of memory, a crash): retry once in a new pool
                self.close()
                try:
                    return self._submit(graph_json)()
                except BrokenProcessPool:
                    self.close()
                    return {"status": "failed", "value": None, "test_value": None, "transient": True,
                            "error": f"the training process died twice ({e})"}
        return wait

    def _ray_module(self):
        if self._ray is None:
            try:
                import ray
            except ImportError:
                raise ValueError("executor 'ray' needs Ray: pip install 'mad[ray]' (or ray) first") from None
            if not ray.is_initialized():
                ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False)
            self._ray = ray
            self._ray_train = ray.remote(num_cpus=1)(train_graph)  # exported once
        return self._ray

    def run(self, jobs: list[tuple[str, str]], done: Callable[[int, dict[str, Any]], None]) -> None:
        """Train ``jobs`` (``(key, graph JSON)``), calling ``done(index, result)`` as each finishes
        (in submission order), so a kill loses only the trainings still running."""
        waits: list[tuple[int, Path | None, Callable[[], dict[str, Any]] | dict[str, Any]]] = []
        for i, (key, graph_json) in enumerate(jobs):
            path = self._cache_path(key)
            if path is not None and path.exists():
                waits.append((i, None, {**json.loads(path.read_text()), "cached": True}))
            else:
                waits.append((i, path, self._submit(graph_json)))
        for i, path, w in waits:
            res = w if isinstance(w, dict) else w()
            if path is not None and not res.get("cached") and _cacheable(res):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(res))
                os.replace(tmp, path)
            done(i, res)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _cacheable(res: dict[str, Any]) -> bool:
    """A result that depends only on (graph, task, settings): completed or diverged runs and failures of the
    model itself; not a dead worker, an interrupted run or a lack of memory."""
    if res.get("transient") or res.get("status") == "interrupted":
        return False
    err = res.get("error") or ""
    return res.get("status") != "failed" or not any(w in err for w in ("MemoryError", "KeyboardInterrupt",
                                                                        "CUDA", "BrokenProcessPool",
                                                                        "TrainInterrupted"))
