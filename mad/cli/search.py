"""``mad search``: search a task for the best architecture within a budget of trained evaluations or minutes.

    mad search --task mnist5k --evals 200 [--minutes 60] [--max-params 1M] --out runs/x
               [--strategy loop|random|evolution] [--prompt "..."] [--from GRAPH ...] [--resume] [--json]

Every candidate goes to the run folder (``journal.jsonl``, and ``data/`` as a dataset); Ctrl-C stops after
saving, and ``--resume`` continues with nothing lost or repeated. ``mad report RUN`` draws the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import CliError, _check_task, _command, _emit_json, _load_graph, _stdout
from .generate import _count

__all__ = ["search_command"]


@_command
def search_command(
    task: Annotated[str, typer.Option("--task", "-t", help="The task to search for (mad.data.tasks).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The run folder.")] = Path("runs/search"),
    evals: Annotated[int | None, typer.Option("--evals", "-n", help="Trained evaluations to spend.")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Wall-clock budget.")] = None,
    strategy: Annotated[str, typer.Option("--strategy", "-s", help="loop, random or evolution.")] = "loop",
    prompt: Annotated[str | None, typer.Option("--prompt", help="What to look for, in words (the loop's "
                                                                "generator is conditioned on it).")] = None,
    start: Annotated[list[Path] | None, typer.Option("--from", metavar="GRAPH",
                                                     help="A graph JSON to start from (repeatable).")] = None,
    max_params: Annotated[str | None, typer.Option("--max-params", metavar="N", help="Hard limit: 100k, 1M.")] = None,
    max_flops: Annotated[str | None, typer.Option("--max-flops", metavar="N", help="Hard limit on FLOPs.")] = None,
    max_latency: Annotated[float | None, typer.Option("--max-latency-ms", help="Hard limit: forward ms at batch 1 "
                                                                             "on CPU.")] = None,
    max_activations: Annotated[str | None, typer.Option("--max-activations", metavar="N", help="Hard limit on the "
                                                        "elements of all nodes' outputs for one example: 10M.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Training steps per evaluation.")] = 100,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size.")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Training learning rate (AdamW).")] = 3e-3,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Parallel trainings.")] = 2,
    executor: Annotated[str, typer.Option("--executor", help="local (process pool), serial or ray.")] = "local",
    round_size: Annotated[int | None, typer.Option("--round-size", help="Trainings per round "
                                                                        "(default: max(2, workers)).")] = None,
    pool: Annotated[int | None, typer.Option("--pool", help="The loop's candidates scored per trained one "
                                                             "(default 8; more lean harder on the GHN).")] = None,
    max_siblings: Annotated[int | None, typer.Option("--max-siblings", help="The loop's children of one parent "
                                                     "trained per round at most (default: no limit).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of everything random.")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the search recorded in --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search a task for the best architecture: propose, score, train the best, learn (or random / evolution)."""
    from mad.agent import EXECUTORS, STRATEGIES, SearchError, TrainSettings, search

    _check_task(task)
    if strategy not in STRATEGIES:
        raise CliError(f"unknown strategy {strategy!r}; use one of {', '.join(sorted(STRATEGIES))}")
    if executor not in EXECUTORS:
        raise CliError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if evals is None and minutes is None:
        raise CliError("give a budget: --evals N, --minutes M, or both")
    if steps < 1 or batch_size < 1 or workers < 1:
        raise CliError("--steps, --batch-size and --workers must be >= 1")
    loop_options = {k: v for k, v in (("pool", pool), ("max_siblings", max_siblings)) if v is not None}
    for name, v in loop_options.items():
        if strategy != "loop" or v < 1:
            raise CliError(f"--{name.replace('_', '-')} is the loop's and must be >= 1 (got {v} with --strategy "
                           f"{strategy})")
    graphs = [_load_graph(p)[0] for p in start or []]
    try:
        r = search(task, strategy, out, evals=evals, minutes=minutes, workers=workers, executor=executor,
                   round_size=round_size, train=TrainSettings(steps=steps, batch_size=batch_size, lr=lr),
                   max_params=_count(max_params, "max-params"), max_flops=_count(max_flops, "max-flops"),
                   max_latency_ms=max_latency, max_activations=_count(max_activations, "max-activations"),
                   prompt=prompt, start=graphs, seed=seed, resume=resume,
                   progress=not as_json, strategy_options=loop_options or None)
    except SearchError as e:
        raise CliError(str(e)) from None
    if as_json:
        _emit_json(r.as_dict())
        return
    console = _stdout()
    best = r.best
    what = "no trained result" if best is None else (
        f"best {r.metric} {best['value']:.4f} (test {best['test_value']:.4f}) from the {best['proposer']}, "
        f"evaluation {best['eval_index']}" if best["value"] is not None and best.get("test_value") is not None
        else f"best {r.metric} {best['value']}")
    console.print(f"{r.status}: {r.evals} evaluations in {r.rounds} rounds, {r.seconds / 60:.1f} min; {what}",
                  markup=False)
    if r.status == "interrupted":
        console.print(f"continue with: mad search --task {task} --out {out} --resume (and the same options)",
                      markup=False)
    console.print(f"records: {r.folder}/journal.jsonl; report: mad report {r.folder}", markup=False)
