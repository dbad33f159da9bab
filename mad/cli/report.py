"""``mad report``: one self-contained HTML page about one or more search runs.

    mad report RUN [RUN ...] [-o report.html] [--json]

Each RUN is a search's run folder (it holds ``run.json`` and ``journal.jsonl``). The page (default
``RUN/report.html`` of the first run) compares the runs: best value so far, the Pareto front of value against
parameters, GHN scores against trained values, the proposers round by round, and each run's best
architectures with their drawings and PyTorch code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import CliError, _busy, _command, _emit_json, _first_line, _human, _stdout

__all__ = ["report_command"]


@_command
def report_command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN...", help="Search run folders (with run.json).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="FILE", help="The HTML file (default: report.html in the first run)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the path and a summary of each run as JSON.")] = False,
) -> None:
    """Write an HTML report of search runs: progress, Pareto front, GHN scores, proposers, best architectures."""
    from mad.agent.records import RecordsError
    from mad.agent.report import load_run, run_summary, write_report

    for folder in runs:
        if not folder.exists():
            raise CliError(f"run folder not found: {folder}")
        if not folder.is_dir():
            raise CliError(f"{folder} is a file, not a search run folder")
        if not (folder / "run.json").is_file():
            raise CliError(f"{folder} is not a search run folder (no run.json)")
    try:
        views = [load_run(folder) for folder in runs]
        with _busy(f"Writing the report of {len(runs)} run{'s' if len(runs) != 1 else ''}…"):
            path = write_report(views, out)
    except RecordsError as e:
        raise CliError(_first_line(e)) from None
    summaries = [run_summary(v) for v in views]
    if as_json:
        _emit_json({"path": str(path), "bytes": path.stat().st_size, "runs": summaries})
        return
    console = _stdout()
    for s in summaries:
        best = "no value yet" if s["best"] is None else f"best {s['metric']} {s['best']:.4g}"
        console.print(f"{s['folder']}: {s['strategy']} on {s['task']}, {s['evals']} evaluations, {best}", markup=False)
    console.print(f"wrote [bold]{escape(str(path))}[/bold] ({_human(path.stat().st_size)}B)")
