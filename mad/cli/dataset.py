"""``mad dataset``: build, inspect and draw MAD datasets.

    mad dataset build OUT [--zoo all|bert,gpt2] [--variants N] [--random N] [--workers 2]
    mad dataset info DIR|default
    mad dataset show DIR|default ID [-o graph.svg] [--depth N]

``default`` names the dataset shipped in ``mad/data/mad_default``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .common import CliError, _busy, _command, _emit_json, _human, _stdout

__all__ = ["dataset_app"]

dataset_app = typer.Typer(help="Build, inspect and draw MAD datasets.", no_args_is_help=True)


def _open(where: str) -> Any:
    from mad.data.builder import load
    from mad.data.default import load_default

    if where == "default":
        return load_default()
    p = Path(where)
    if not p.exists():
        raise CliError(f"dataset not found: {p} (build one with `mad dataset build {p}`)")
    try:
        return load(p)
    except FileNotFoundError as e:
        raise CliError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - an unreadable directory is the user's input
        raise CliError(f"{p}: not a MAD dataset directory ({type(e).__name__})") from None


@dataset_app.command("build")
@_command
def build_cmd(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="Output directory (resumed if it holds a build).")],
    zoo: Annotated[str, typer.Option(help="'all', 'none' or comma-separated transformers model types.")] = "none",
    variants: Annotated[int, typer.Option(min=0, help="Extra sampled variants per zoo type.")] = 0,
    random_count: Annotated[int, typer.Option("--random", min=0, help="Random-space graphs.")] = 0,
    seed: Annotated[int, typer.Option(help="Master seed.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    shard_size: Annotated[int, typer.Option(min=1, help="Graphs per shard (unit of resume).")] = 128,
    ood_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Zoo families held out as 'ood'.")] = 0.1,
    overwrite: Annotated[bool, typer.Option(help="Start over instead of resuming.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Build a MAD dataset (HuggingFace datasets, Arrow) with progress, workers and resume."""
    import json

    from mad.data.builder import BuildConfig, BuildError, build

    zoo_types: list[str] = []
    if zoo == "all":
        zoo_types = ["all"]
    elif zoo not in ("", "none"):
        from mad.code2graph.hf_zoo import model_types

        zoo_types = [t.strip() for t in zoo.split(",") if t.strip()]
        known = set(model_types())
        bad = [t for t in zoo_types if t not in known]
        if bad:
            raise CliError(f"unknown zoo model types: {', '.join(bad)} (see transformers' config mapping)")
    if not zoo_types and not random_count:
        raise CliError("nothing to build: give --zoo and/or --random")
    cfg = BuildConfig(zoo_types=zoo_types, variants=variants, random_count=random_count, seed=seed,
                      workers=workers, shard_size=shard_size, ood_fraction=ood_fraction)
    try:
        build(cfg, out, progress=not as_json, overwrite=overwrite)
    except BuildError as e:
        raise CliError(str(e)) from None
    stats = json.loads((out / "stats.json").read_text())
    if as_json:
        _emit_json({"path": str(out), **stats})
        return
    _stdout().print(
        f"wrote [bold]{out}[/bold]: {sum(stats['splits'].values())} graphs "
        f"({', '.join(f'{k} {v}' for k, v in stats['splits'].items())}); "
        f"{stats['duplicates_dropped']} duplicates dropped, {stats['failures']} specs failed "
        f"(see {out / 'failures.json'})"
    )


@dataset_app.command("info")
@_command
def info_cmd(
    where: Annotated[str, typer.Argument(metavar="DIR", help="A built dataset directory, or 'default'.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Statistics of a dataset: splits, families, modalities, sizes, diversity, op histogram."""
    from rich.table import Table

    from mad.data.stats import dataset_stats

    dd = _open(where)
    with _busy("Reading graphs…"):
        stats = dataset_stats(dd)
    if as_json:
        _emit_json(stats)
        return
    t = Table(title=f"MAD dataset {where}", show_header=False)
    t.add_row("rows", f"{stats['rows']:,}")
    t.add_row("splits", ", ".join(f"{k} {v:,}" for k, v in stats["splits"].items()))
    t.add_row("families", f"{stats['families']:,} (top: {', '.join(list(stats['top_families'])[:5])})")
    t.add_row("modalities", ", ".join(f"{k} {v}" for k, v in stats["by_modality"].items()))
    t.add_row("sources", ", ".join(f"{k} {v}" for k, v in stats["by_source"].items()))
    for key in ("num_params", "num_nodes", "flops"):
        s = stats[key]
        if s:
            t.add_row(key, f"min {_human(s['min'])}, median {_human(s['median'])}, max {_human(s['max'])}")
    t.add_row("distinct WL hashes", f"{stats['distinct_wl_fraction']:.1%}")
    t.add_row("top ops", ", ".join(f"{k} {v:,}" for k, v in list(stats["op_histogram"].items())[:12]))
    _stdout().print(t)


@dataset_app.command("show")
@_command
def show_cmd(
    where: Annotated[str, typer.Argument(metavar="DIR", help="A built dataset directory, or 'default'.")],
    row_id: Annotated[str, typer.Argument(metavar="ID", help="Row id, e.g. zoo/bert/v0 or random/17.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="Picture to write.")] = None,
    depth: Annotated[int | None, typer.Option("--depth", "-d", min=0, metavar="N", help="Collapse depth.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Draw one graph of a dataset and print its row."""
    from mad.data.stats import find_row
    from mad.graph import ArchGraph
    from mad.graph.render import render

    dd = _open(where)
    try:
        row = find_row(dd, row_id)
    except KeyError as e:
        raise CliError(str(e.args[0])) from None
    g = ArchGraph.from_json(row["graph"])
    output = output or Path(row_id.replace("/", "_") + ".svg")
    with _busy(f"Drawing {len(g)} nodes…"):
        path = render(g, output, depth=depth)
    fields = {k: v for k, v in row.items() if k != "graph"}
    if as_json:
        _emit_json({**fields, "picture": str(path)})
        return
    _stdout().print(f"[bold]{row_id}[/bold] ({row['split']}): {row['description']}")
    _stdout().print(f"wrote [bold]{path}[/bold]")
