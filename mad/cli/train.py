"""``mad train``: train a graph or model on a task, with a progress bar, a results table and a loss-curve PNG.

    mad train GRAPH_OR_MODEL --task mnist5k --steps 500 [--batch-size 64] [--lr 1e-3] [-o run/] [--json]
    mad train graph.json --task chars --option seq_len=32 --resume run/
    mad train graph.json --task mnist5k --init ghn        # start from parameters the GHN predicts

GRAPH_OR_MODEL is a graph JSON file (from ``mad convert``) or anything ``mad convert`` accepts: a HuggingFace
model type (converted to a graph), ``path/file.py:ClassName[:args]`` (the module is instantiated and trained
as it is) or an ``.onnx`` file. The run folder (``-o``, default ``runs/NAME-TASK-TIME``) receives
``checkpoint/``, ``result.json`` and ``loss_curve.png``. Ctrl-C saves a checkpoint there and prints how to
resume (exit code 130). ``--init`` starts from other weights than the seeded init: ``ghn`` (predicted by the
shipped graph hypernetwork for the task), ``ghn:DIR`` (another GHN checkpoint) or a safetensors file
(``mad ghn predict -o FILE``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .common import CliError, _check_task, _command, _emit_json, _first_line, _load_graph, _stderr, _stdout
from .convert import _convert_hf, _import_file, _split_args, _split_source, parse_sets

__all__ = ["train_command"]


def _load_model(source: str, overrides: dict[str, Any]):
    """A graph (JSON file, HF model type, ONNX file) or a module (``file.py:Class[:args]``) named by ``source``."""
    if source.lower().endswith(".json"):
        if overrides:
            raise CliError("--set applies to HF model types and file.py:Class sources, not to graph files")
        g, _ = _load_graph(Path(source), shapes=False)
        return g
    kind, parts = _split_source(source)
    if kind == "hf":
        return _convert_hf(parts["model_type"], overrides, None)
    if kind == "onnx":
        from mad.graph.onnx_io import OnnxImportError, from_onnx

        if overrides:
            raise CliError("--set does not apply to ONNX files")
        if not parts["path"].exists():
            raise CliError(f"file not found: {parts['path']}")
        try:
            return from_onnx(parts["path"])
        except OnnxImportError as e:
            raise CliError(f"{parts['path']}: {_first_line(e)}") from e
    import torch

    module = _import_file(parts["path"])
    cls = getattr(module, parts["cls"], None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise CliError(f"{parts['path']} has no torch.nn.Module class {parts['cls']!r}")
    args, kwargs = _split_args(parts["args"])
    kwargs.update(overrides)
    try:
        return cls(*args, **kwargs)
    except Exception as e:
        raise CliError(f"cannot instantiate {parts['cls']}({parts['args'] or ''}): {type(e).__name__}: "
                       f"{_first_line(e)}") from e


def _table(r) -> Table:
    t = Table(title=f"{r.model_name} on {r.task}", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("status", r.status + (f"  (step {r.steps}/{r.steps_requested})" if r.status != "completed" else ""))
    t.add_row("steps", f"{r.steps:,} at batch {r.config.get('batch_size')}, lr {r.config.get('lr')}, "
                       f"{r.config.get('optimizer')} / {r.config.get('schedule')}")
    t.add_row("params", f"{r.params:,}")
    if r.config.get("init"):
        t.add_row("init", str(r.config["init"]))
    t.add_row("time", f"{r.seconds:.1f} s  ({r.steps_per_s:.1f} steps/s on {r.device})")
    if r.final_loss is not None:
        t.add_row("train loss", f"{r.final_loss:.4f}  (last step)")
    for split in ("val", "test"):
        loss = getattr(r, f"{split}_loss")
        if loss is None:
            continue
        if r.metric == "bits_per_char":
            t.add_row(f"{split}", f"loss {loss:.4f}, [bold]{getattr(r, f'{split}_bpc'):.4f} bits/char[/bold]")
        else:
            t.add_row(f"{split}", f"loss {loss:.4f}, [bold]accuracy {getattr(r, f'{split}_accuracy'):.2%}[/bold]")
    if r.checkpoint:
        t.add_row("checkpoint", r.checkpoint)
    return t


@_command
def train_command(
    model: Annotated[str, typer.Argument(metavar="GRAPH_OR_MODEL", help="Graph JSON, HF model type, "
                                         "path/file.py:ClassName[:args] or file.onnx.")],
    task: Annotated[str, typer.Option("--task", "-t", help="Task: digits, mnist5k, mnist1d, chars, cifar10.")]
    = "mnist5k",
    steps: Annotated[int, typer.Option(min=0, help="Optimizer steps.")] = 500,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Examples per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    optimizer: Annotated[str, typer.Option(help="adamw, adam or sgd.")] = "adamw",
    schedule: Annotated[str, typer.Option(help="cosine, linear or constant (after linear warmup).")] = "cosine",
    warmup: Annotated[int | None, typer.Option(min=0, help="Warmup steps (default 5% of steps).")] = None,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0, help="Decoupled weight decay.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Seed of init, dropout and data order.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: accelerate's choice).")] = None,
    mixed_precision: Annotated[str | None, typer.Option("--mixed-precision", help="no, fp16 or bf16.")] = None,
    eval_every: Annotated[int | None, typer.Option("--eval-every", min=0, help="Validation every N steps.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="DIR", help="Run folder "
                                                "(default runs/NAME-TASK-TIME).")] = None,
    resume: Annotated[Path | None, typer.Option(metavar="DIR", help="Continue from this checkpoint or run "
                                                "folder.")] = None,
    init: Annotated[str | None, typer.Option(metavar="ghn|ghn:DIR|FILE", help="Start from parameters predicted "
                                             "by the shipped GHN ('ghn'), by a GHN checkpoint ('ghn:DIR'), or "
                                             "from a safetensors state dict (mad ghn predict -o FILE).")] = None,
    options: Annotated[list[str] | None, typer.Option("--option", metavar="KEY=VALUE", help="Task option, e.g. "
                                                      "seq_len=32 (repeatable).")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", metavar="DIR", help="User data (cifar10).")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Config field / constructor "
                                                   "argument of the model (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the FitResult as JSON on stdout.")] = False,
) -> None:
    """Train a graph or model on a task; prints a results table and writes a loss-curve PNG."""
    from mad.graph import ArchGraph
    from mad.train import TrainError, TrainInterrupted, fit
    from mad.train.checkpoint import find_checkpoint
    from mad.train.plot import plot_curves

    _check_task(task)
    task_options = parse_sets(options or [])
    if data_dir is not None:
        task_options["data_dir"] = str(data_dir)
    obj = _load_model(model, parse_sets(sets or []))
    name = re.sub(r"[^\w.-]", "_", obj.name if isinstance(obj, ArchGraph) else type(obj).__name__)
    try:
        if output is not None:
            run_dir = output
        elif resume is not None:  # continue in the run folder the checkpoint belongs to
            ckpt = find_checkpoint(resume)
            run_dir = ckpt.parent if ckpt.name == "checkpoint" else ckpt
        else:
            run_dir = Path("runs") / f"{name}-{task}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = fit(obj, task, steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule,
                     warmup=warmup, weight_decay=weight_decay, device=device, mixed_precision=mixed_precision,
                     seed=seed, eval_every=eval_every, resume=resume, init=init, out_dir=run_dir,
                     progress=not as_json, task_options=task_options)
    except TrainInterrupted as e:
        _stderr().print(_table(e.result))
        _stderr().print(f"interrupted at step {e.result.steps}/{steps}: continue with the same command and "
                        f"--resume {run_dir}")
        raise typer.Exit(130) from None
    except TrainError as e:
        raise CliError(str(e)) from None
    plot = plot_curves(result, run_dir / "loss_curve.png")
    if as_json:
        _emit_json({**result.as_dict(), "run_dir": str(run_dir), "plot": str(plot)})
        return
    out = _stdout()
    out.print(_table(result))
    out.print(f"wrote [bold]{run_dir}[/bold]: result.json, checkpoint/, {plot.name}")
