"""The one search code path: rounds of propose -> admit (deduplicate, hard limits) -> train -> record -> learn,
for every strategy, with one budget accounting (trained evaluations and/or wall-clock minutes).

A round asks the strategy for candidates, writes every proposal to the journal, marks the round proposed,
trains the selected ones (in parallel), writes each result as it arrives, lets the strategy learn and marks
the round done. A killed search resumes from the journal: a round that was proposed keeps its candidates
and only trains those without a result, a round that was not is proposed again (the same way, since the
round's random stream and the strategy's state depend only on the seed and the history).
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mad.graph import ArchGraph

from .evaluate import Evaluator, TrainSettings, measure_latency
from .records import History, RunRecords, Trial, error_text
from .space import Candidate, GraphSpace, SearchSpace
from .strategies import SearchContext, Strategy, make_strategy

__all__ = ["search", "SearchResult", "SearchError", "pareto_front"]

log = logging.getLogger(__name__)


class SearchError(ValueError):
    """A search that cannot start (bad budget, task, strategy or run folder); the message says what to change."""


@dataclass
class SearchResult:
    """What :func:`search` returns.

    Args:
        folder: the run folder; ``status``: ``"completed"`` (budget spent), ``"interrupted"`` (Ctrl-C; resume
            with ``resume=True``) or ``"exhausted"`` (the strategy found nothing new to train).
        evals: trained evaluations in total; ``rounds``: rounds done; ``seconds``: wall time over all segments.
        best: the best trained candidate (``key``, ``value``, ``test_value``, ``proposer``, ``eval_index``,
            ``round``, ``graph`` JSON), or ``None``.
        curve: ``(evaluation, best value so far)`` after each trained evaluation.
    """

    folder: Path
    status: str
    evals: int
    rounds: int
    seconds: float
    metric: str
    higher_is_better: bool
    best: dict[str, Any] | None = None
    curve: list[tuple[int, float | None]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("status", "evals", "rounds", "seconds", "metric", "higher_is_better",
                                           "curve")}
        d["folder"] = str(self.folder)
        d["best"] = {k: v for k, v in (self.best or {}).items() if k != "graph"} or None
        return d


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (both maximised)."""
    front = []
    for i, (a, b) in enumerate(points):
        if not any((c >= a and d >= b) and (c > a or d > b) for j, (c, d) in enumerate(points) if j != i):
            front.append(i)
    return front


def curve_of(history: History) -> list[tuple[int, float | None]]:
    best, out = None, []
    for t in history.trials:
        if best is None or t.fitness > best.fitness:
            best = t
        out.append((t.eval_index, best.value if best.fitness > -math.inf else None))
    return out


def _summary(t: Trial | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {"key": t.key, "value": t.value, "test_value": t.result.get("test_value"), "proposer": t.proposer,
            "eval_index": t.eval_index, "round": t.round, "graph": t.candidate.get("graph")}


def search(task: str, strategy: str | Strategy = "loop", out: str | Path = "runs/search", *,
           evals: int | None = 50, minutes: float | None = None, space: SearchSpace | None = None,
           round_size: int | None = None, workers: int = 1, executor: str = "local",
           train: TrainSettings | None = None, max_params: int | None = None, max_flops: int | None = None,
           max_latency_ms: float | None = None, max_activations: int | None = None, prompt: str | None = None,
           start: list[ArchGraph] | None = None,
           seed: int = 0, resume: bool = False, progress: bool = True, cache_dir: str | Path | None = None,
           strategy_options: dict[str, Any] | None = None,
           on_eval: Callable[[Trial], Any] | None = None) -> SearchResult:
    """Search ``task`` for the best architecture within a budget; every candidate is recorded in ``out``.

    Args:
        task: a task name (``mad.data.tasks.names()``) for the default space and for training.
        strategy: ``"loop"`` (generate, score with the GHN, train the best, learn), ``"random"``,
            ``"evolution"`` (regularized evolution), or a :class:`Strategy`.
        out: the run folder (see :mod:`mad.agent.records`).
        evals: trained evaluations to spend (``None``: no limit; then ``minutes`` must be given).
        minutes: wall-clock budget; a round is not started after it is spent (a started round finishes).
        space: the search space (default :class:`GraphSpace` on ``task`` within the limits).
        round_size: trainings per round (default ``max(2, workers)``).
        workers, executor: parallel trainings and where (``local`` process pool, ``serial``, ``ray``).
        train: how every candidate is trained (:class:`TrainSettings`).
        max_params, max_flops, max_latency_ms: hard limits; a candidate over one is recorded as rejected and
            never trained (latency: median forward ms at batch 1 on CPU, measured only when this is set).
        max_activations: hard limit on the elements of all nodes' outputs for one example
            (:func:`mad.graph.descriptors.activation_elements`): FLOPs leave out memory traffic, and a graph that
            concatenates its way to tens of thousands of channels trains for minutes a step at a few MFLOPs.
        prompt: what the user asked for (the loop's generator is conditioned on it).
        start: graphs to start from (trained first, then mutated and edited by the loop and evolution).
        seed: everything random derives from it (the same seed and settings give the same run).
        resume: continue the search recorded in ``out`` (its settings must match).
        progress: show a progress bar (round, best so far, Pareto front size).
        cache_dir: reuse trained results of identical (graph, task, training) across runs.
        strategy_options: keyword arguments of the strategy (``{"population": 16}``).
        on_eval: called with each new :class:`Trial`; raising ``KeyboardInterrupt`` there stops the search as
            Ctrl-C does.

    Returns:
        a :class:`SearchResult`.

    Raises:
        SearchError: a bad budget, task, strategy or run folder.

    Example:
        >>> r = search("digits", "evolution", "runs/evo", evals=20, max_params=50_000)
        >>> r.best["value"], r.folder / "journal.jsonl"
    """
    from .records import RecordsError
    from .space import SpaceError

    if evals is None and minutes is None:
        raise SearchError("give a budget: evals (trained evaluations), minutes, or both")
    if evals is not None and evals < 1 or minutes is not None and minutes <= 0:
        raise SearchError(f"the budget must be positive, got evals={evals}, minutes={minutes}")
    train = train or TrainSettings()
    try:
        space = space or GraphSpace(task, max_params=max_params, max_flops=max_flops,
                                    task_options=dict(train.task_options))
        strat = strategy if isinstance(strategy, Strategy) else make_strategy(strategy, **(strategy_options or {}))
    except (SpaceError, ValueError, TypeError) as e:
        raise SearchError(str(e)) from None
    metric, hib = space.metric, space.higher_is_better  # a GraphSpace takes them from its task
    round_size = int(round_size or max(2, workers))
    limits = {"max_params": max_params, "max_flops": max_flops, "max_latency_ms": max_latency_ms}
    if max_activations is not None:  # recorded only when set: runs from before the limit existed still resume
        limits["max_activations"] = max_activations
    settings = {
        "task": task, "strategy": strat.describe(), "space": space.describe(), "seed": seed,
        "round_size": round_size, "train": train.as_dict(), "metric": metric, "higher_is_better": hib,
        "constraints": dict(limits),
        "prompt": prompt, "start": [g.wl_hash() for g in start or []],
        "evals": evals, "minutes": minutes, "workers": workers, "executor": executor,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        records = RunRecords.create(out, settings, resume=resume)
    except RecordsError as e:
        raise SearchError(str(e)) from None
    run = _Run(records, space, strat, task, hib, seed, round_size, train, workers, executor, cache_dir,
               limits, prompt, list(start or []), on_eval)
    try:
        status = run.loop(evals, minutes, progress)
    finally:
        run.close()
    h = run.history
    return SearchResult(records.folder, status, h.evals, run.rounds_done, run.elapsed(), metric, hib,
                        _summary(h.best()), curve_of(h))


class _Run:
    """The state of one search while it runs (see :func:`search`)."""

    def __init__(self, records: RunRecords, space: SearchSpace, strategy: Strategy, task: str, hib: bool,
                 seed: int, round_size: int, train: TrainSettings, workers: int, executor: str,
                 cache_dir, limits: dict[str, Any], prompt: str | None, start: list[ArchGraph],
                 on_eval: Callable[[Trial], Any] | None) -> None:
        self.records, self.space, self.strategy, self.task, self.hib = records, space, strategy, task, hib
        self.seed, self.round_size, self.limits, self.on_eval = seed, round_size, limits, on_eval
        self.evaluator = Evaluator(task, train, workers, executor, cache_dir)
        events = records.events()
        done_rounds = [e["round"] for e in events if e["event"] == "round"]
        self.round = max(done_rounds, default=0) + 1
        self.rounds_done = len(done_rounds)
        self.t0, self.before = time.perf_counter(), max((e.get("time", 0.0) for e in events), default=0.0)
        rows = records.rows(events)
        self.history = records.history(hib, rows)
        proposed = {e["round"] for e in events if e["event"] == "proposed"}
        self.pending = [r for r in rows if r["round"] == self.round and self.round in proposed]
        self.seq = 0
        self.table_at = time.perf_counter()
        ctx = SearchContext(space, task, hib, seed, records.folder, self.admit, prompt, start, self.round - 1)
        self.start = self._adopt_start(start)
        strategy.start(ctx, self.history)

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.t0

    def close(self) -> None:
        self.evaluator.close()
        self.records.close()

    # ------------------------------------------------------------------ admission
    def admit(self, c: Candidate) -> str | None:
        """Set the candidate's key (once: a strategy may have admitted it already) and costs; the reason it
        cannot be trained, or ``None``."""
        if c.key is None:
            c.key = self.space.key(c)
        if c.key in self.history.seen:
            return "duplicate"
        costs = {**c.info.get("costs", {}), **self.space.costs(c)}  # a latency measured before is kept
        c.info["costs"] = costs
        lim = self.limits
        for name, cost in (("max_params", "num_params"), ("max_flops", "flops"), ("max_activations", "activations")):
            v = costs.get(cost)
            if lim.get(name) is not None and v is not None and v > lim[name]:
                return f"{v:,} > {name} {lim[name]:,}"
        if lim["max_latency_ms"] is not None and "latency_ms" not in costs:
            g = self.space.to_graph(c)
            if g is not None:
                try:
                    costs["latency_ms"] = measure_latency(g.to_module().eval(),
                                                          g.example_inputs(seed=0, dims={"B": 1}))
                except Exception as e:  # noqa: BLE001 - a graph that cannot run is not trained
                    return f"cannot run: {error_text(e, 200)}"
        if lim["max_latency_ms"] is not None and costs.get("latency_ms", 0) > lim["max_latency_ms"]:
            return f"latency {costs['latency_ms']:.2f} ms > max_latency_ms {lim['max_latency_ms']}"
        return None

    def _event(self, c: Candidate, status: str, reason: str | None, eval_index: int | None) -> dict[str, Any]:
        g = self.space.to_graph(c)
        meta = {}
        if g is not None:
            meta = {"family": g.meta.get("family", ""), "modality": g.meta.get("modality", ""),
                    "input_shape": [[d if isinstance(d, int) else -1 for d in i.shape] for i in g.inputs],
                    "num_nodes": len(g.nodes), "num_edges": len(g.edges), "name": g.name,
                    "description": g.meta.get("description", "")}
        self.seq += 1
        return {"event": "candidate", "round": self.round, "seq": self.seq, "key": c.key, "proposer": c.proposer,
                "parent": c.parent, "genotype": c.genotype, "graph": g.to_json() if g is not None else None,
                "meta": meta, "costs": c.info.get("costs", {}), "scores": c.info.get("scores", {}),
                "selected": eval_index is not None, "eval_index": eval_index, "status": status, "reason": reason,
                "time": self.elapsed()}

    # ------------------------------------------------------------------ one round
    def _adopt_start(self, graphs: list[ArchGraph]) -> list[Candidate]:
        """The user's starting graphs as candidates on the task (once; a graph that cannot take it is an error)."""
        out = []
        for g in graphs:
            try:
                out.append(self.space.adopt(g, "seed") if hasattr(self.space, "adopt") else Candidate("seed", None, g))
            except Exception as e:  # noqa: BLE001 - the user's input: say which graph and why
                raise SearchError(f"start graph {g.name!r} cannot take the task {self.task}: {e}") from None
        return out

    def _first_round_start(self, k: int) -> list[Candidate]:
        """The user's starting graphs lead the first rounds (those over a hard limit are recorded as rejected)."""
        out = []
        for c in self.start:
            if self.space.key(c) not in self.history.seen and all(o.key != c.key for o in out):
                self.admit(c)
                out.append(c)
        return out[:k]

    def propose(self, k: int) -> list[dict[str, Any]]:
        rng = random.Random(f"{self.seed}:{self.strategy.name}:{self.round}")
        self.seq = 0
        events, chosen, keys = [], 0, set()
        starts = self._first_round_start(k)
        for attempt in range(6):
            cands = starts if attempt == 0 and starts else self.strategy.propose(k - chosen, self.history, rng)
            for c in cands:
                reason = self.admit(c)
                if reason is None and c.key in keys:
                    reason = "duplicate"
                if reason == "duplicate":
                    continue  # a duplicate is not recorded twice
                keys.add(c.key)
                wants = c.info.get("selected", True)
                if reason is None and wants and chosen < k:
                    chosen += 1
                    events.append(self._event(c, "proposed", None, self.history.evals + chosen))
                else:
                    events.append(self._event(c, "rejected" if reason else "scored", reason, None))
            if chosen >= k:
                break
        self.records.append({"event": "proposing", "round": self.round, "time": self.elapsed()})
        for e in events:
            self.records.append(e)
        self.records.append({"event": "proposed", "round": self.round, "time": self.elapsed()})
        for e in events:
            self.history.seen.add(e["key"])
        return [{**e, "result": None} for e in events]

    def train(self, rows: list[dict[str, Any]], progress) -> None:
        todo = sorted((r for r in rows if r["selected"] and r["result"] is None), key=lambda r: r["eval_index"])
        if any(r["graph"] is None for r in todo):  # a space that scores candidates itself (a tabular benchmark)
            for r in todo:
                c = Candidate(r["proposer"], r["genotype"], None, r["parent"], r["key"])
                self._done(r, self.space.evaluate(c, seed=self.seed) or {"status": "failed", "value": None},
                           progress)
            return
        self.evaluator.run([(r["key"], r["graph"]) for r in todo], lambda i, res: self._done(todo[i], res, progress))

    def _done(self, row: dict[str, Any], res: dict[str, Any], progress) -> None:
        row["result"] = res
        self.records.append({"event": "result", "round": row["round"], "key": row["key"],
                             "eval_index": row["eval_index"], "result": res, "time": self.elapsed()})
        t = Trial.of(row, self.hib)
        self.history.trials.append(t)
        self.history.trials.sort(key=lambda x: x.eval_index)
        if progress is not None:
            best = self.history.best()
            front = pareto_front([(x.fitness, -float(x.candidate.get("costs", {}).get("num_params") or 0))
                                  for x in self.history.trials if x.fitness > -math.inf])
            progress.update(1)
            progress.set_postfix(round=self.round, best=None if best is None else _fmt(best.value),
                                 front=len(front))
        if self.on_eval is not None:
            self.on_eval(t)

    def loop(self, evals: int | None, minutes: float | None, show: bool) -> str:
        from tqdm.auto import tqdm

        progress = tqdm(total=evals, initial=self.history.evals, desc="search", unit="eval", disable=not show,
                        dynamic_ncols=True) if show else None
        status = "completed"
        try:
            while True:
                if evals is not None and self.history.evals >= evals and not self.pending:
                    break
                # the clock stops a search between rounds, never before its first (however short the budget)
                if minutes is not None and self.rounds_done and self.elapsed() >= 60 * minutes and not self.pending:
                    break
                k = self.round_size if evals is None else min(self.round_size, evals - self.history.evals)
                rows = self.pending or self.propose(k)
                self.pending = []
                if not any(r["selected"] for r in rows):
                    log.warning("round %d: the strategy proposed nothing new to train; stopping", self.round)
                    status = "exhausted"
                    break
                self.train(rows, progress)
                learned = self.strategy.learn(self.round, self.history)
                best = self.history.best()
                self.records.append({"event": "round", "round": self.round, "time": self.elapsed(),
                                     "evals": self.history.evals, "best": None if best is None else best.value,
                                     "learn": learned})
                self.rounds_done += 1
                self.round += 1
                if time.perf_counter() - self.table_at > 60:  # the table is a view of the journal: now and then
                    self.records.write_table()
                    self.table_at = time.perf_counter()
        except KeyboardInterrupt:
            status = "interrupted"
            log.warning("search interrupted; continue it with resume=True (mad search ... --resume)")
        finally:
            if progress is not None:
                progress.close()
        self.records.write_table()
        return status


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"
