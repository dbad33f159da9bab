"""One self-contained HTML page about one or more search runs (their folders, see :mod:`.records`).

The page holds, with every picture inline (PNG as base64, architecture drawings as SVG):

- a table of the runs: task, strategy, seed, evaluations, best value (and its test value), minutes;
- the best value so far against evaluations, one line per run, coloured by strategy (with the mean per
  strategy when several runs of a strategy share a task), one panel per task;
- the Pareto front of value against parameters over the trained candidates (log scale), front highlighted;
- the GHN score (and the strategy's prediction, when it has one) against the trained value, with Kendall's tau;
- the mean trained value per round of each proposer (does the generator get better across rounds?), the
  proposers' counts, and what the strategy learned each round (generator fine-tune losses);
- the five best architectures of each run: a drawing and their PyTorch code (the genotype when the space
  has no graphs);
- the most frequent training errors.

Runs without results, without graphs (tabular spaces) or with failed trainings are shown with what they have.

Example:
    >>> write_report([Path("runs/evo-s0"), Path("runs/random-s0")], Path("compare.html"))
    PosixPath('compare.html')
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import logging
import math
import re
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import RecordsError, RunRecords, fitness
from .search import pareto_front as _front

__all__ = ["RunView", "load_run", "run_summary", "write_report", "kendall_tau", "pareto_front"]

log = logging.getLogger(__name__)

TOP = 5  # architectures shown per run
_SCORES = (("ghn_value", "GHN score"), ("predicted", "predicted value"))


# ----------------------------------------------------------------- reading a run
@dataclass
class RunView:
    """A run folder as the report reads it.

    Attributes:
        trained: the trained candidates (journal rows with a result) in evaluation order, each with ``n``
            (1-based evaluation number) and ``fitness`` added.
        rounds: the journal's ``round`` events.
    """

    folder: Path
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    trained: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    higher_is_better: bool
    metric: str
    label: str = ""
    minutes: float | None = None

    @property
    def task(self) -> str:
        return str(self.settings.get("task", "?"))

    @property
    def strategy(self) -> str:
        s = self.settings.get("strategy", "?")
        if isinstance(s, dict):
            name = s.get("name", json.dumps(s, sort_keys=True))
            off = [k for k in ("ghn", "generator") if k in s and not s[k]]  # the loop's ablations keep apart
            s = name + "".join(f"-no{k}" for k in off)
        return str(s)

    @property
    def seed(self) -> Any:
        return self.settings.get("seed")

    @property
    def evals(self) -> int:
        return len(self.trained)

    def ok(self) -> list[dict[str, Any]]:
        """The trained candidates with a value (failures left out)."""
        return [r for r in self.trained if math.isfinite(r["fitness"])]

    def best(self) -> dict[str, Any] | None:
        return max(self.ok(), key=lambda r: (r["fitness"], -r["n"]), default=None)

    def top(self, n: int = TOP) -> list[dict[str, Any]]:
        return sorted(self.ok(), key=lambda r: (-r["fitness"], r["n"]))[:n]

    def best_so_far(self) -> list[float | None]:
        """After each evaluation, the best value so far (``None`` until the first success)."""
        out: list[float | None] = []
        best: dict[str, Any] | None = None
        for r in self.trained:
            if math.isfinite(r["fitness"]) and (best is None or r["fitness"] > best["fitness"]):
                best = r
            out.append(None if best is None else _value(best))
        return out


def _value(r: dict[str, Any]) -> float | None:
    return _num((r.get("result") or {}).get("value"))


def _direction(settings: dict[str, Any]) -> tuple[str, bool]:
    """(metric name, higher is better) of a run: its settings' own, else the task's."""
    metric = settings.get("metric")
    if settings.get("higher_is_better") is not None:
        return str(metric or "value"), bool(settings["higher_is_better"])
    from .space import task_metric

    options = settings.get("task_options") or (settings.get("train") or {}).get("task_options") or None
    try:
        name, hib = task_metric(str(settings.get("task")), options)
    except Exception:  # noqa: BLE001 - an unknown task still gets a report
        try:
            name, hib = task_metric(str(settings.get("task")))
        except Exception:  # noqa: BLE001
            log.warning("cannot tell the metric of task %r; assuming higher is better", settings.get("task"))
            name, hib = "value", True
    return str(metric or name), hib


def _trained(rows: list[dict[str, Any]], higher_is_better: bool) -> list[dict[str, Any]]:
    """The trained rows in evaluation order, one per evaluation (a row whose result was merged in only because
    it shares its round and key with the trained one is left out)."""
    by_eval: dict[int, dict[str, Any]] = {}
    loose = []
    for r in rows:
        if r.get("result") is None:
            continue
        i = r.get("eval_index")
        if isinstance(i, int):
            if i not in by_eval or (r.get("selected") and not by_eval[i].get("selected")):
                by_eval[i] = r
        else:
            loose.append(r)
    taken = {(r.get("round"), r.get("key")) for r in by_eval.values()}
    loose = [r for r in loose if (r.get("round"), r.get("key")) not in taken]
    out = []
    for n, r in enumerate([by_eval[i] for i in sorted(by_eval)] + loose, 1):
        r = dict(r)
        r["n"] = n
        r["fitness"] = fitness(_value(r), higher_is_better)
        out.append(r)
    return out


def _seconds(t: Any) -> float | None:
    if isinstance(t, (int, float)) and math.isfinite(t):
        return float(t)
    if isinstance(t, str):
        try:
            return _dt.datetime.fromisoformat(t).timestamp()
        except ValueError:
            return None
    return None


def _minutes(settings: dict[str, Any], events: list[dict[str, Any]]) -> float | None:
    """The run's duration from its events' times (clock times, or seconds since the start)."""
    times = [s for s in (_seconds(e.get("time")) for e in events) if s is not None]
    if not times:
        return None
    if max(times) < 1e8:  # seconds since the start of the run
        return max(times) / 60
    start = _seconds(settings.get("created"))
    start = start if start is not None and start <= min(times) else min(times)
    return (max(times) - start) / 60


def load_run(folder: str | Path) -> RunView:
    """Read a run folder.

    Raises:
        RecordsError: ``folder`` is not a run folder (no ``run.json``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordsError(f"{folder} is not a search run folder (no such folder)")
    rec = RunRecords(folder)
    settings = rec.settings()
    metric, hib = _direction(settings)
    events = rec.events()
    rows = _rows(events)
    rounds = [e for e in events if e.get("event") == "round"]
    return RunView(folder, settings, rows, _trained(rows, hib), rounds, hib, metric,
                   label=folder.name or str(folder), minutes=_minutes(settings, events))


def _rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:meth:`RunRecords.rows` from already-read events, tolerant of events without the usual keys."""
    results = {}
    rows = []
    for e in events:
        kind = e.get("event")
        if kind == "candidate":
            rows.append(dict(e))
        elif kind == "result":
            results[(e.get("round"), e.get("key"))] = e
    for r in rows:
        res = results.get((r.get("round"), r.get("key")))
        r["result"] = (res.get("result") or {}) if res else None
        if res and r.get("eval_index") is None and res.get("eval_index") is not None and r.get("selected"):
            r["eval_index"] = res["eval_index"]
    return rows


def run_summary(run: RunView | str | Path) -> dict[str, Any]:
    """The figures of a run as JSON values: folder, task, strategy, seed, evals, best, best_test, minutes."""
    view = run if isinstance(run, RunView) else load_run(run)
    best = view.best()
    return {
        "folder": str(view.folder),
        "task": view.task,
        "strategy": view.strategy,
        "seed": view.seed,
        "metric": view.metric,
        "higher_is_better": view.higher_is_better,
        "proposed": len(view.rows),
        "evals": view.evals,
        "failed": sum(1 for r in view.trained if not math.isfinite(r["fitness"])),
        "best": _value(best) if best else None,
        "best_test": _num((best.get("result") or {}).get("test_value")) if best else None,
        "best_key": best.get("key") if best else None,
        "minutes": view.minutes,
    }


# ----------------------------------------------------------------- statistics
def kendall_tau(x: list[float], y: list[float]) -> float | None:
    """Kendall's tau-b of two equally long sequences; ``None`` with fewer than two pairs or a constant one."""
    if len(x) != len(y) or len(x) < 2:
        return None
    from scipy.stats import kendalltau

    tau = float(kendalltau(x, y)[0])
    return None if tau != tau else tau


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool = True) -> list[int]:
    """Indices of the points ``(cost, value)`` that no other point beats (no more cost and a better value),
    in order of cost."""
    front = _front([(-cost, fitness(value, higher_is_better)) for cost, value in points])
    return sorted(front, key=lambda i: points[i][0])


# ----------------------------------------------------------------- pictures
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _panels(n: int, cols: int, width: float, height: float):
    """A figure of ``n`` panels, ``cols`` to a row, each ``width`` x ``height`` inches; returns it and its axes."""
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = _figure(width * cols, height * rows)
    return fig, [fig.add_subplot(rows, cols, k + 1) for k in range(n)]


def _colors(names: list[str], fixed: dict[str, str] | None = None) -> dict[str, Any]:
    """A colour per name: ``fixed`` ones first, the others in turn from the rest of ``tab10``."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    fixed = fixed or {}
    used = set(fixed.values())
    free = [cmap(i) for i in range(10) if f"C{i}" not in used]
    out, k = {}, 0
    for name in names:
        if name in fixed:
            out[name] = fixed[name]
        else:
            out[name] = free[k % len(free)]
            k += 1
    return out


# the proposers keep their colours from run to run
_PROPOSER_COLORS = {"random": "C0", "mutation": "C1", "generator": "C2", "edit": "C4", "seed": "C5"}


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _tasks(runs: list[RunView]) -> dict[tuple[str, bool, str], list[RunView]]:
    groups: dict[tuple[str, bool, str], list[RunView]] = {}
    for v in runs:
        groups.setdefault((v.task, v.higher_is_better, v.metric), []).append(v)
    return groups


def _best_so_far_plot(runs: list[RunView], colors: dict[str, Any]) -> str | None:
    groups = {k: vs for k, vs in _tasks(runs).items() if any(v.ok() for v in vs)}
    if not groups:
        return None
    fig, axes = _panels(len(groups), 2, 6.2, 3.8)
    for ax, ((task, hib, metric), views) in zip(axes, groups.items()):
        by_strategy: dict[str, list[RunView]] = defaultdict(list)
        for v in views:
            by_strategy[v.strategy].append(v)
        for strategy, vs in by_strategy.items():
            color = colors[strategy]
            several = len(vs) > 1
            curves = [v.best_so_far() for v in vs]
            for v, curve in zip(vs, curves):
                xs = [i + 1 for i, y in enumerate(curve) if y is not None]
                ys = [y for y in curve if y is not None]
                label = None if several else f"{strategy} ({v.label})"
                ax.step(xs, ys, where="post", color=color, alpha=0.35 if several else 0.95,
                        linewidth=0.9 if several else 1.6, label=label)
            if several:
                length = min(len(c) for c in curves)
                xs, ys = [], []
                for i in range(length):
                    vals = [c[i] for c in curves if c[i] is not None]
                    if vals:
                        xs.append(i + 1)
                        ys.append(sum(vals) / len(vals))
                ax.step(xs, ys, where="post", color=color, linewidth=2.2,
                        label=f"{strategy}: mean of {len(vs)} runs")
        ax.set_title(f"{task}: best {metric} so far ({'higher' if hib else 'lower'} is better)", fontsize=10)
        ax.set_xlabel("evaluations")
        _integer_ticks(ax.xaxis)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right" if hib else "upper right")
    return _png(fig, "best value so far against evaluations")


def _pareto_plot(runs: list[RunView], colors: dict[str, Any]) -> str | None:
    groups = {}
    for key, views in _tasks(runs).items():
        pts = [(v, r) for v in views for r in v.ok()
               if _num((r.get("costs") or {}).get("num_params")) and (r.get("costs") or {})["num_params"] > 0]
        if pts:
            groups[key] = pts
    if not groups:
        return None
    fig, axes = _panels(len(groups), 2, 6.2, 3.8)
    for ax, ((task, hib, metric), pts) in zip(axes, groups.items()):
        xy = [(float(r["costs"]["num_params"]), _value(r)) for _, r in pts]
        seen = set()
        for (v, _), (x, y) in zip(pts, xy):
            label = v.strategy if v.strategy not in seen else None
            seen.add(v.strategy)
            ax.scatter([x], [y], s=14, color=colors[v.strategy], alpha=0.6, label=label, linewidths=0)
        front = pareto_front(xy, hib)
        fx, fy = [xy[i][0] for i in front], [xy[i][1] for i in front]
        ax.step(fx, fy, where="post", color="black", linewidth=1.2, label="Pareto front")
        ax.scatter(fx, fy, s=42, facecolors="none", edgecolors="black", linewidths=1.2)
        ax.set_xscale("log")
        ax.set_title(f"{task}: {metric} against parameters", fontsize=10)
        ax.set_xlabel("parameters")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return _png(fig, "Pareto front of value against parameters")


def _score_pairs(runs: list[RunView], score: str) -> dict[tuple[str, bool, str], list[tuple[RunView, float, float]]]:
    out = {}
    for key, views in _tasks(runs).items():
        pts = [(v, float(s), _value(r)) for v in views for r in v.ok()
               if (s := _num((r.get("scores") or {}).get(score))) is not None]
        if len(pts) >= 2:
            out[key] = pts
    return out


def _score_plot(runs: list[RunView], colors: dict[str, Any]) -> tuple[str | None, list[list[str]]]:
    panels = [(score, name, key, pts) for score, name in _SCORES for key, pts in _score_pairs(runs, score).items()]
    if not panels:
        return None, []
    fig, axes = _panels(len(panels), 2, 5.4, 3.8)
    table = []
    for ax, (score, name, (task, _, metric), pts) in zip(axes, panels):
        seen = set()
        for v, s, y in pts:
            ax.scatter([s], [y], s=14, color=colors[v.strategy], alpha=0.7, linewidths=0,
                       label=v.strategy if v.strategy not in seen else None)
            seen.add(v.strategy)
        tau = kendall_tau([p[1] for p in pts], [p[2] for p in pts])
        ax.set_title(f"{task}: {name} against {metric} (tau {_fmt(tau)}, n={len(pts)})", fontsize=10)
        ax.set_xlabel(f"{name} ({score})")
        ax.set_ylabel(f"trained {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        table.append([task, name, str(len(pts)), _fmt(tau)])
        for v in {id(p[0]): p[0] for p in pts}.values():
            mine = [p for p in pts if p[0] is v]
            table.append([f"{task} / {v.label}", name, str(len(mine)),
                          _fmt(kendall_tau([p[1] for p in mine], [p[2] for p in mine]))])
    return _png(fig, "scores against trained values"), table


def _rounds_plot(runs: list[RunView]) -> str | None:
    views = [v for v in runs if v.ok()]
    if not views:
        return None
    fig, axes = _panels(len(views), 3, 4.6, 3.4)
    proposers = sorted({r.get("proposer", "?") for v in views for r in v.ok()})
    colors = _colors(proposers, _PROPOSER_COLORS)
    for ax, v in zip(axes, views):
        per: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in v.ok():
            per[r.get("proposer", "?")][int(r.get("round") or 0)].append(_value(r))
        for proposer, by_round in sorted(per.items()):
            xs = sorted(by_round)
            ys = [sum(by_round[x]) / len(by_round[x]) for x in xs]
            ax.plot(xs, ys, "o-", color=colors[proposer], markersize=3.5, linewidth=1.2,
                    label=f"{proposer} ({sum(len(b) for b in by_round.values())})")
        ax.set_title(f"{v.label}: {v.strategy} on {v.task}", fontsize=9)
        ax.set_xlabel("round")
        _integer_ticks(ax.xaxis)
        ax.set_ylabel(f"mean trained {v.metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig, "mean trained value per round by proposer")


def _svg(g: Any) -> str | None:
    """The inline SVG drawing of a graph, or ``None`` when it cannot be drawn."""
    try:
        from mad.graph.render import render

        with tempfile.TemporaryDirectory() as tmp:
            text = render(g, Path(tmp) / "graph.svg").read_text(encoding="utf-8")
    except Exception as e:  # noqa: BLE001 - a drawing is optional
        log.warning("cannot draw a graph: %s", e)
        return None
    start = text.find("<svg")
    return text[start:] if start >= 0 else None


def _code(g: Any) -> tuple[str | None, str | None]:
    """(PyTorch source, class name) of a graph; (None, error) when it cannot be generated."""
    try:
        code = g.to_code()
    except Exception as e:  # noqa: BLE001 - the code is optional
        return None, f"{type(e).__name__}: {e}"
    m = re.search(r"^class (\w+)\(", code, re.M)
    return code, m.group(1) if m else None


# ----------------------------------------------------------------- HTML pieces
def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        return None
    return float(v)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "–"
        if v.is_integer() and abs(v) >= 1e4:
            return f"{int(v):,}"
        return f"{v:.{digits}g}"
    return str(v)


def _human(n: Any) -> str:
    n = _num(n)
    if n is None:
        return "–"
    from mad.graph.render import human

    return human(n)


def _e(v: Any) -> str:
    return html.escape(str(v))


def _table(head: list[str], rows: list[list[Any]], cls: str = "") -> str:
    out = [(f'<table class="{cls}">' if cls else "<table>") + "<thead><tr>"
           + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix or "value": d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, name))
        elif isinstance(v, list):
            out[name] = json.dumps(v) if len(json.dumps(v)) <= 60 else f"[{len(v)} items]"
        else:
            out[name] = v
    return out


def _runs_table(runs: list[RunView]) -> str:
    rows = []
    for v in runs:
        s = run_summary(v)
        rows.append([v.label, v.task, v.strategy, _fmt(v.seed), f"{s['evals']}" + (f" ({s['failed']} failed)"
                     if s["failed"] else ""), s["proposed"], f"{v.metric} ({'↑' if v.higher_is_better else '↓'})",
                     _fmt(s["best"]), _fmt(s["best_test"]), _fmt(s["minutes"], 3), str(v.folder)])
    return _table(["run", "task", "strategy", "seed", "evaluations", "proposed", "metric", "best", "test of best",
                   "minutes", "folder"], rows, "runs")


def _settings_block(runs: list[RunView]) -> str:
    parts = []
    for v in runs:
        text = json.dumps(v.settings, indent=1, default=str, sort_keys=True)
        parts.append(f"<details><summary>settings of {_e(v.label)}</summary><pre>{_e(text)}</pre></details>")
    return "".join(parts)


def _proposer_table(v: RunView) -> str:
    counts: dict[str, Counter] = defaultdict(Counter)
    best: dict[str, dict[str, Any]] = {}
    for r in v.rows:
        counts[r.get("proposer", "?")][str(r.get("status", "?"))] += 1
    for r in v.trained:
        p = r.get("proposer", "?")
        counts[p]["trained"] += 1
        if not math.isfinite(r["fitness"]):
            counts[p]["failed"] += 1
        elif p not in best or r["fitness"] > best[p]["fitness"]:
            best[p] = r
    rows = []
    for p in sorted(counts):
        c = counts[p]
        ok = [_value(r) for r in v.ok() if r.get("proposer", "?") == p]
        rows.append([p, sum(c[s] for s in c if s not in ("trained", "failed")), c["trained"], c["failed"],
                     c["rejected"], c["duplicate"], _fmt(sum(ok) / len(ok)) if ok else "–",
                     _fmt(_value(best[p])) if p in best else "–"])
    return _table(["proposer", "proposed", "trained", "failed", "rejected", "duplicate", f"mean {v.metric}",
                   f"best {v.metric}"], rows)


def _learn_table(v: RunView) -> str:
    rows = [(e.get("round"), _flatten(e.get("learn"))) for e in v.rounds if e.get("learn")]
    if not rows:
        return ""
    keys: list[str] = []
    for _, d in rows:
        keys += [k for k in d if k not in keys]
    body = [[_fmt(r)] + [_fmt(d.get(k)) for k in keys] for r, d in rows]
    return f"<p>What {_e(v.strategy)} learned each round:</p>" + _table(["round"] + keys, body, "small")


def _arch_section(v: RunView) -> str:
    top = v.top(TOP)
    if not top:
        return f"<p>{_e(v.label)}: no trained architecture with a value.</p>"
    parts = []
    for rank, r in enumerate(top, 1):
        res, costs = r.get("result") or {}, r.get("costs") or {}
        facts = [f"{v.metric} {_fmt(_value(r))}"]
        if _num(res.get("test_value")) is not None:
            facts.append(f"test {_fmt(_num(res.get('test_value')))}")
        facts += [f"{_human(costs.get(k))} {name}" for k, name in (("num_params", "params"), ("flops", "FLOPs"))
                  if _num(costs.get(k)) is not None]
        facts.append(f"{r.get('proposer', '?')} in round {r.get('round')}, evaluation {r['n']}")
        head = f"#{rank}: {', '.join(facts)}"
        body = [f"<p class='key'>key {_e(r.get('key'))}" + (f", parent {_e(r['parent'])}" if r.get("parent") else "")
                + "</p>"]
        graph = r.get("graph")
        if graph:
            from mad.graph import ArchGraph

            try:
                g = ArchGraph.from_json(graph)
            except Exception as e:  # noqa: BLE001 - a drawing and code are optional
                log.warning("cannot draw a graph: %s", e)
                svg, code, name = None, None, f"{type(e).__name__}: {e}"
            else:
                svg, (code, name) = _svg(g), _code(g)
            body.append(f"<div class='pic'>{svg}</div>" if svg else "<p>(no drawing)</p>")
            if code is not None:
                body.append(f"<details><summary>PyTorch code ({_e(name or 'module')})</summary>"
                            f"<pre class='code'>{_e(code)}</pre></details>")
            else:
                body.append(f"<p>(no code: {_e(name)})</p>")
        if r.get("genotype") is not None:
            text = json.dumps(r["genotype"], indent=1, default=str)
            body.append(f"<details {'open' if not graph else ''}><summary>genotype</summary>"
                        f"<pre>{_e(text)}</pre></details>")
        parts.append(f"<details class='arch' {'open' if rank == 1 else ''}><summary>{_e(head)}</summary>"
                     + "".join(body) + "</details>")
    return "".join(parts)


def _errors(v: RunView) -> str:
    errs = Counter()
    for r in v.trained:
        if not math.isfinite(r["fitness"]):
            res = r.get("result") or {}
            errs[str(res.get("error") or res.get("status") or "no value")[:200]] += 1
    if not errs:
        return ""
    rows = [[n, e] for e, n in errs.most_common(8)]
    return f"<h3>{_e(v.label)}</h3>" + _table(["count", "error"], rows, "small")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1280px;
color:#222;padding:0 16px}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}table.small{font-size:12px}
img{max-width:100%}pre{background:#f8f8f8;padding:8px;overflow:auto;font-size:12px;max-height:560px}
details.arch{border:1px solid #ddd;border-radius:4px;padding:6px 10px;margin:6px 0}
details.arch>summary{cursor:pointer;font-weight:600}
.pic{max-height:720px;overflow:auto;border:1px solid #eee;margin:6px 0}
.key{font-family:monospace;font-size:12px;color:#666}.note{color:#666;font-size:13px}
"""


def _page(runs: list[RunView]) -> str:
    strategies = list(dict.fromkeys(v.strategy for v in runs))
    colors = _colors(strategies)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = (f"Search report: {runs[0].label}" if len(runs) == 1
             else f"Search report: {len(runs)} runs ({', '.join(strategies)})")
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
           f"<style>{_CSS}</style></head><body>", f"<h1>{_e(title)}</h1><p class='note'>written {now}</p>",
           "<h2>Runs</h2>", _runs_table(runs), _settings_block(runs)]

    out.append("<h2>Best so far</h2>")
    pic = _best_so_far_plot(runs, colors)
    out.append(pic or "<p>No trained candidate has a value yet.</p>")

    pic = _pareto_plot(runs, colors)
    if pic:
        out += ["<h2>Value against parameters</h2>",
                "<p class='note'>Trained candidates; the Pareto front (fewest parameters for a value) in black.</p>",
                pic]

    pic, taus = _score_plot(runs, colors)
    if pic:
        out += ["<h2>Scores against trained values</h2>", pic,
                _table(["task / run", "score", "pairs", "Kendall tau"], taus, "small")]

    out.append("<h2>Proposers</h2>")
    pic = _rounds_plot(runs)
    if pic:
        out += ["<p class='note'>Mean trained value of each proposer's candidates per round "
                "(number of trained candidates in brackets).</p>", pic]
    for v in runs:
        out += [f"<h3>{_e(v.label)} ({_e(v.strategy)})</h3>", _proposer_table(v), _learn_table(v)]

    out.append(f"<h2>Top {TOP} architectures</h2>")
    for v in runs:
        out += [f"<h3>{_e(v.label)} ({_e(v.strategy)} on {_e(v.task)})</h3>", _arch_section(v)]

    errors = "".join(_errors(v) for v in runs)
    if errors:
        out += ["<h2>Training errors</h2>", errors]
    out.append("</body></html>")
    return "\n".join(out)


def _labels(runs: list[RunView]) -> None:
    """Give each run a distinct label (the folder name, with parents when names repeat)."""
    for depth in range(1, 6):
        labels = ["/".join(v.folder.resolve().parts[-depth:]) for v in runs]
        if len(set(labels)) == len(labels):
            break
    else:
        labels = [f"{i + 1}:{v.folder.name}" for i, v in enumerate(runs)]
    for v, label in zip(runs, labels):
        v.label = label


# ----------------------------------------------------------------- entry point
def write_report(runs: Path | str | list[Path | str | RunView], out: Path | str | None = None) -> Path:
    """Write the HTML report of ``runs`` (run folders, or runs already read with :func:`load_run`) to ``out``
    and return its path.

    ``out`` defaults to ``report.html`` in the first run's folder; an existing folder gets ``report.html``
    inside it.

    Raises:
        RecordsError: a folder is not a run folder.
        ValueError: no runs given.
    """
    items = [runs] if isinstance(runs, (str, Path)) else list(runs)
    if not items:
        raise ValueError("no run folders given")
    views = [r if isinstance(r, RunView) else load_run(r) for r in items]
    _labels(views)
    path = Path(out) if out is not None else views[0].folder / "report.html"
    if path.is_dir():
        path = path / "report.html"
    text = _page(views)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
