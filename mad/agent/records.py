"""A search's run folder: its settings, an append-only journal, and the candidate table.

Layout of a run folder::

    run.json          the settings (task, strategy, budget, constraints, training, seed)
    journal.jsonl     one event per line, flushed and fsynced as it happens:
                        {"event": "proposing", ...}   a round's proposals begin
                        {"event": "candidate", ...}   a proposal (trained or not), with its graph and scores
                        {"event": "result", ...}      the training figures of a selected candidate
                        {"event": "proposed", ...}    every proposal of the round is written above
                        {"event": "round", ...}       a finished round (and what the strategy learned)
    data/             the candidates as a HuggingFace ``datasets`` table (split ``train``; the MAD dataset's
                      columns plus the search's), rewritten every minute and at the end: ``mad dataset info RUN``
                      reads it; ``candidates.parquet`` holds the same table as one Parquet file
    generator/        the loop's fine-tuned generator (when it has one)

The journal is the truth: a killed search resumes from it (:meth:`RunRecords.open`), and the table is made
from it. A line cut short by a kill is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RunRecords", "History", "Trial", "RecordsError", "fitness", "error_text"]

VERSION = 1


class RecordsError(ValueError):
    """A run folder that cannot be used (another search's settings, a newer format, unreadable)."""


def error_text(e: BaseException, limit: int = 300) -> str:
    """``"Type: first line of the message"`` (cut to ``limit`` characters), as errors are recorded."""
    text = str(e)
    return f"{type(e).__name__}: {text.splitlines()[0][:limit] if text else ''}"


def fitness(value: float | None, higher_is_better: bool) -> float:
    """A value to maximise: the metric, negated when lower is better; ``-inf`` for a failed run."""
    if value is None or value != value:
        return float("-inf")
    return float(value) if higher_is_better else -float(value)


@dataclass
class Trial:
    """A trained candidate as the strategies see it."""

    key: str
    round: int
    eval_index: int
    proposer: str
    value: float | None
    fitness: float
    candidate: dict[str, Any]  # the journal's candidate event (graph JSON, genotype, scores, costs)
    result: dict[str, Any]

    @classmethod
    def of(cls, row: dict[str, Any], higher_is_better: bool) -> "Trial":
        """The trial of a journal row (see :meth:`RunRecords.rows`) that has its result."""
        value = row["result"].get("value")
        return cls(row["key"], row["round"], row["eval_index"], row["proposer"], value,
                   fitness(value, higher_is_better), row, row["result"])


@dataclass
class History:
    """What a search has done so far: the trained candidates in evaluation order and every key seen."""

    higher_is_better: bool = True
    trials: list[Trial] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    @property
    def evals(self) -> int:
        return len(self.trials)

    def best(self) -> Trial | None:
        return max(self.trials, key=lambda t: t.fitness, default=None)

    def top(self, n: int) -> list[Trial]:
        return sorted(self.trials, key=lambda t: (-t.fitness, t.eval_index))[:n]


class RunRecords:
    """Reads and writes one run folder (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.journal = self.folder / "journal.jsonl"
        self._fh = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, folder: str | Path, settings: dict[str, Any], resume: bool = False) -> "RunRecords":
        """Open ``folder`` for a search with ``settings``: a new run, or (``resume``) the same run continued.

        Raises:
            RecordsError: ``folder`` holds a run and ``resume`` is false, or it holds a run with other
                settings, or a newer format.
        """
        rec = cls(folder)
        path = rec.folder / "run.json"
        if path.exists():
            old = json.loads(path.read_text())
            if not resume:
                raise RecordsError(f"{rec.folder} already holds a search; pass --resume to continue it or "
                                   "choose another --out")
            if old.get("version", 0) > VERSION:
                raise RecordsError(f"{path}: written by a newer version (format {old['version']})")
            settings = json.loads(json.dumps(settings, default=str))  # as run.json holds them (tuples are lists)
            mine = {k: v for k, v in settings.items() if k not in _FREE}
            theirs = {k: v for k, v in old.items() if k not in _FREE and k != "version"}
            diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            if diff:
                raise RecordsError(f"{rec.folder}: --resume with other settings than the run has ({', '.join(diff)}); "
                                   "use the run's settings or another --out")
        else:
            rec.folder.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, json.dumps({"version": VERSION, **settings}, indent=1, default=str))
        return rec

    def settings(self) -> dict[str, Any]:
        path = self.folder / "run.json"
        if not path.exists():
            raise RecordsError(f"{self.folder} is not a search run folder (no run.json)")
        return json.loads(path.read_text())

    # ------------------------------------------------------------------ the journal
    def events(self) -> list[dict[str, Any]]:
        """Every complete event of the journal, in order (a torn last line is dropped)."""
        if not self.journal.exists():
            return []
        out = []
        for line in self.journal.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def append(self, event: dict[str, Any]) -> None:
        if self._fh is None:
            self._repair()
            self._fh = open(self.journal, "a", encoding="utf-8")
        self._fh.write(json.dumps(event, default=_json_default) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _repair(self) -> None:
        """Cut a torn last line (a kill during a write) so that new events start on a line of their own."""
        if self.journal.exists():
            data = self.journal.read_bytes()
            if data and not data.endswith(b"\n"):
                self.journal.write_bytes(data[: data.rfind(b"\n") + 1])

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # ------------------------------------------------------------------ reading back
    def rows(self, events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """One row per candidate: its candidate event merged with its result (if trained). ``events``: the
        journal, when the caller has read it already."""
        results = {}
        rows: list[dict[str, Any]] = []
        writing: dict[int, list[dict[str, Any]]] = {}  # a round's proposals until its "proposed" mark
        for e in self.events() if events is None else events:
            kind = e.get("event")
            if kind == "proposing":  # a round cut short while proposing was begun again: drop the torn part
                writing[e["round"]] = []
            elif kind == "candidate":
                writing.setdefault(e["round"], []).append(dict(e))
            elif kind == "proposed":
                rows += writing.pop(e["round"], [])
            elif kind == "result":
                results[(e["round"], e["key"])] = e
        for r in rows:
            res = results.get((r["round"], r["key"]))
            r["result"] = res["result"] if res else None
        return rows

    def history(self, higher_is_better: bool, rows: list[dict[str, Any]] | None = None) -> History:
        """The trained candidates (in evaluation order) and every key proposed so far (``rows``: from
        :meth:`rows`, when the caller has them)."""
        h = History(higher_is_better)
        rows = self.rows() if rows is None else rows
        h.seen.update(r["key"] for r in rows)
        for r in sorted((r for r in rows if r["result"] is not None), key=lambda r: r["eval_index"]):
            h.trials.append(Trial.of(r, higher_is_better))
        return h

    def write_table(self) -> Path | None:
        """Rewrite ``data/`` and ``candidates.parquet`` from the journal (atomically); ``None`` when there is
        nothing to write."""
        import datasets

        rows = [table_row(r) for r in self.rows()]
        if not rows:
            return None
        was = datasets.utils.logging.is_progress_bar_enabled()
        datasets.utils.logging.disable_progress_bar()
        try:
            return self._write(datasets, rows)
        finally:
            if was:
                datasets.utils.logging.enable_progress_bar()

    def _write(self, datasets, rows: list[dict[str, Any]]) -> Path:
        table = datasets.Dataset.from_list(rows)
        nested = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))
        if table.features["input_shape"] != nested:  # spaces without graphs leave it empty: keep the MAD type
            table = table.cast_column("input_shape", nested)
        pq = self.folder / "candidates.parquet"
        table.to_parquet(str(pq.with_suffix(".tmp")))
        os.replace(pq.with_suffix(".tmp"), pq)
        tmp, final, old = self.folder / "data.tmp", self.folder / "data", self.folder / "data.old"
        shutil.rmtree(tmp, ignore_errors=True)
        datasets.DatasetDict({"train": table}).save_to_disk(str(tmp))
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return final


# settings that may change between a run and its resumption (they do not change what is computed)
_FREE = {"workers", "executor", "progress", "evals", "minutes", "created"}


def table_row(r: dict[str, Any]) -> dict[str, Any]:
    """A candidate as a row of the run table: the MAD dataset's columns, then the search's."""
    g = r.get("graph") or ""
    meta = r.get("meta") or {}
    res = r.get("result") or {}
    costs, scores = r.get("costs") or {}, r.get("scores") or {}
    return {
        "id": f"r{r['round']:04d}-{r['seq']:03d}",
        "source": f"agent:{r['proposer']}",
        "family": meta.get("family", ""),
        "modality": meta.get("modality", ""),
        "input_shape": meta.get("input_shape", []),
        "graph": g,
        "num_nodes": int(meta.get("num_nodes", 0)),
        "num_edges": int(meta.get("num_edges", 0)),
        "num_params": int(costs.get("num_params") or 0),
        "flops": int(costs.get("flops") or 0),
        "wl_hash": r["key"],
        "description": meta.get("description", ""),
        "split": "train",
        "round": int(r["round"]),
        "proposer": r["proposer"],
        "parent": r.get("parent") or "",
        "status": r.get("status", ""),
        "selected": bool(r.get("selected")),
        "eval_index": int(r["eval_index"]) if r.get("eval_index") is not None else -1,
        "value": _float(res.get("value")),
        "test_value": _float(res.get("test_value")),
        "train_seconds": _float(res.get("train_seconds")),
        "ghn_value": _float(scores.get("ghn_value")),
        "predicted": _float(scores.get("predicted")),
        "genotype": json.dumps(r.get("genotype")) if r.get("genotype") is not None else "",
    }


def _float(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (set, tuple)):
        return list(v)
    return str(v)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
