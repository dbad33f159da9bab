"""Shared pieces of the ``mad`` command: one-line user errors, output consoles, JSON, graph loading."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

__all__ = ["CliError", "_busy", "_check_task", "_command", "_emit_json", "_first_line", "_human", "_load_graph",
           "_stdout", "_stderr"]

log = logging.getLogger("mad.cli")


class CliError(Exception):
    """An error in what the user gave; printed as one line, exit code ``code`` (2 by default)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class _State:
    debug: bool = False


_state = _State()


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:600]


def _classify(e: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception escaping a command."""
    from mad.graph import GraphError, UnknownOpError

    if isinstance(e, CliError):
        return e.code, _first_line(e)
    if isinstance(e, FileNotFoundError):
        return 2, _first_line(e) if e.filename is None else f"file not found: {e.filename}"
    if isinstance(e, (GraphError, UnknownOpError)):
        return 2, _first_line(e)
    if isinstance(e, (IsADirectoryError, PermissionError)):
        return 2, f"cannot use {e.filename}: {e.strerror}"
    if isinstance(e, json.JSONDecodeError):
        return 2, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}"
    return 1, f"{type(e).__name__}: {_first_line(e)} (run `mad --debug ...` for the traceback)"


def _command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; turn exceptions into one red ``error:`` line and an exit code."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _stderr().print(Text("error: interrupted", style="bold red"))
            raise typer.Exit(130)
        except Exception as e:
            if _state.debug:
                raise
            code, message = _classify(e)
            _stderr().print(Text(f"error: {message}", style="bold red"))
            raise typer.Exit(code) from None

    return run


@contextlib.contextmanager
def _busy(message: str) -> Iterator[None]:
    """A spinner on stderr while long work runs; library output on stdout goes to stderr meanwhile."""
    console = _stderr()
    with contextlib.redirect_stdout(sys.stderr), console.status(message, spinner="dots"):
        yield


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _human(n: float) -> str:
    from mad.graph.render import human

    return human(n)


# ----------------------------------------------------------------- global options
def _version(value: bool) -> None:
    if value:
        from mad import __version__

        typer.echo(f"mad {__version__}")
        raise typer.Exit()


def _setup_logging(verbose: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger("mad")
    for h in list(logger.handlers):
        if getattr(h, "_mad_cli", False):
            logger.removeHandler(h)
    handler = RichHandler(console=_stderr(), show_time=False, show_path=False, markup=False)
    handler._mad_cli = True  # type: ignore[attr-defined]
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)


def _check_task(task: str) -> None:
    """A one-line user error unless ``task`` is a known task name."""
    from mad.data import tasks

    if task not in tasks.names():
        raise CliError(f"unknown task {task!r}; use one of {', '.join(tasks.names())}")


# ----------------------------------------------------------------- loading graphs
def _load_graph(path: Path, shapes: bool = True):
    """Read, validate and (with ``shapes``) shape-check a graph file; returns (graph, summary)."""
    from mad.graph import ArchGraph, GraphError, validate
    from mad.graph.interpreter import interpret

    if not path.exists():
        raise CliError(f"graph file not found: {path}")
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a graph JSON file")
    try:
        g = ArchGraph.from_json(path)
    except GraphError as e:
        message = _first_line(e)
        raise CliError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text file; expected a graph JSON written by `mad convert`") from None
    try:
        validate(g, shapes=False)
        summary = interpret(g, update=True, check=True) if shapes else None
    except GraphError as e:
        raise CliError(f"{path}: invalid graph: {_first_line(e)}") from None
    return g, summary
