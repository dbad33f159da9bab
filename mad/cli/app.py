"""The ``mad`` Typer app: global options and the table of commands (each command lives in its own module)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from .common import _state, _version, _setup_logging
from .convert import convert
from .dataset import dataset_app
from .generate import complete, edit, generator_app, suggest
from .ghn import ghn_app
from .inspect import info, show, code, ops
from .search import search_command
from .report import report_command
from .train import train_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="mad",
    help="mad: model architectures as graphs. Convert, inspect and draw models; suggest, complete and edit "
         "architectures; predict their parameters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, show_default=False, help="More logging (-vv for debug).")
    ] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False,
) -> None:
    """mad: model architectures as graphs. Convert, inspect and draw models; suggest, complete and edit
    architectures; predict their parameters."""
    _state.debug = debug or os.environ.get("MAD_DEBUG", "") not in ("", "0")
    _setup_logging(verbose)


for _fn in (info, show, code, ops, convert, suggest, complete, edit):
    app.command()(_fn)
app.add_typer(dataset_app, name="dataset")
app.add_typer(ghn_app, name="ghn")
app.add_typer(generator_app, name="generator")
app.command("train")(train_command)
app.command("search")(search_command)
app.command("report")(report_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``mad`` console script."""
    app(args=argv, prog_name="mad")
