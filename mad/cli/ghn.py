"""``mad ghn``: train a graph hypernetwork, predict parameters with it, score architectures without training.

    mad ghn train --tasks mnist5k,digits,mnist1d,chars --archs default --out ckpt/ [--steps 6000] [--minutes 120]
    mad ghn predict GRAPH_OR_MODEL --task mnist5k -o weights.safetensors [--ghn default]
    mad ghn score GRAPH_OR_MODEL... --task mnist5k [--ghn default] [--json]

GRAPH_OR_MODEL is anything ``mad train`` accepts: a graph JSON file, a HuggingFace model type,
``path/file.py:ClassName[:args]`` or an ``.onnx`` file. A graph that does not fit the task is retargeted to it.
``train`` continues the run in ``--out`` if it has a checkpoint (``--fresh`` starts over); Ctrl-C saves one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import CliError, _busy, _check_task, _command, _emit_json, _human, _stdout
from .train import _load_model

__all__ = ["ghn_app"]

ghn_app = typer.Typer(help="Graph hypernetwork: predict parameters, score architectures without training.",
                      no_args_is_help=True)

_GHN_OPT = typer.Option("--ghn", metavar="DIR", help="GHN checkpoint folder, or 'default' (shipped).")


def _load_ghn(where: str, device: str | None):
    from mad.ghn import GHNError, load

    try:
        return load(where, device=device)
    except GHNError as e:
        raise CliError(str(e)) from None


@ghn_app.command("train")
@_command
def train_cmd(
    tasks_: Annotated[str, typer.Option("--tasks", help="Comma-separated tasks.")] = "mnist5k,digits,mnist1d,chars",
    archs: Annotated[str, typer.Option(help="Architectures: 'default' (the shipped dataset's training split).")]
    = "default",
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Run folder; the GHN is written there.")]
    = Path("ckpt"),
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 6000,
    minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this many minutes.")] = None,
    meta_batch: Annotated[int, typer.Option("--meta-batch", min=1, help="Architectures per step.")] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, cosine).")] = 3e-4,
    graphs: Annotated[int | None, typer.Option(min=2, help="Training graphs per task (default: per-task "
                                                "defaults, 300 mnist5k, 250 chars, 150 others).")] = None,
    eval_every: Annotated[int, typer.Option("--eval-every", min=1, help="Validate every N steps.")] = 500,
    quality_graphs: Annotated[int | None, typer.Option("--quality-graphs", min=0, help="Graphs per task trained for "
                                                        "100 steps to calibrate the quality estimate (default 200 "
                                                        "mnist5k, 120 chars; 0: none).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes that retarget the graphs.")] = 1,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: CUDA when present).")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore a checkpoint in --out and start over.")] = False,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    head_norm: Annotated[bool, typer.Option("--head-norm/--no-head-norm", help="Predict classification heads for "
                                            "their input standardized over the batch (folded in at prediction from "
                                            "the batch-norm batches; bench/ghn_head_norm.py), as the shipped GHN "
                                            "does.")] = True,
    readout_loss: Annotated[float, typer.Option("--readout-loss", min=0.0, help="Weight of the leave-one-out error "
                                                "of a closed-form output layer on each classification net's "
                                                "head input, added to its loss (bench/ghn_recipes.py; 0: off, as "
                                                "the shipped GHN).")] = 0.0,
    space_graphs: Annotated[int, typer.Option("--space-graphs", min=0, help="Fresh random-space graphs added to each "
                                              "task's training graphs (mad.ghn.pool.space_pool; 0: none, as the "
                                              "shipped GHN).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training record as JSON.")] = False,
) -> None:
    """Train a GHN on dataset graphs retargeted to the tasks."""
    from mad.ghn.model import GHNConfig
    from mad.ghn.train import TrainConfig, train

    names = [t.strip() for t in tasks_.split(",") if t.strip()]
    for t in names:
        _check_task(t)
    if archs != "default":
        raise CliError(f"--archs {archs!r}: only 'default' (the shipped dataset) is supported")
    cfg = TrainConfig(tasks=names, steps=steps, meta_batch=meta_batch, lr=lr, eval_every=eval_every, seed=seed,
                      readout_loss=readout_loss, space_graphs={t: space_graphs for t in names} if space_graphs else {})
    if quality_graphs is not None:
        cfg.quality_graphs = {t: quality_graphs for t in cfg.quality_tasks}
    if graphs is not None:
        cfg.graphs, cfg.default_graphs = {}, graphs
    try:
        record = train(cfg, out, model_config=GHNConfig(tasks=names, head_norm=head_norm),
                       resume=not fresh, minutes=minutes, device=device, workers=workers, progress=not as_json)
    except ValueError as e:
        raise CliError(str(e)) from None
    if as_json:
        _emit_json(record)
        return
    o = _stdout()
    o.print(f"{record['status']} at step {record['steps']} in {record['train_seconds']:.0f} s; "
            f"GHN written to [bold]{out}[/bold]")
    if record["evals"]:
        o.print(f"last validation: {record['evals'][-1]}")
    if record["status"] == "interrupted":
        raise typer.Exit(130)


@ghn_app.command("predict")
@_command
def predict_cmd(
    model: Annotated[str, typer.Argument(metavar="GRAPH_OR_MODEL", help="Graph JSON, HF model type, "
                                         "path/file.py:ClassName[:args] or file.onnx.")],
    task: Annotated[str, typer.Option("--task", "-t", help="Task the parameters are for.")] = "mnist5k",
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the weights (safetensors).")]
    = Path("weights.safetensors"),
    ghn: Annotated[str, _GHN_OPT] = "default",
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: CUDA when present).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a summary as JSON.")] = False,
) -> None:
    """Predict every parameter of a model for a task and save its state dict (buffers included)."""
    import torch
    from safetensors.torch import save_file

    _check_task(task)
    obj = _load_model(model, {})
    h = _load_ghn(ghn, device)
    with _busy("predicting parameters"):
        module = h.predict(obj, task)
    # every name gets its own contiguous copy (one copy, also from a GPU): safetensors refuses tensors that share
    # memory, so tied weights (an embedding shared with the output layer) are written under each of their names
    state = {k: v.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
             for k, v in module.state_dict().items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(output))
    info = {k: v for k, v in module.ghn_info.items() if k != "graph"}
    summary = {"output": str(output), "task": task, "tensors": len(state), **info}
    if as_json:
        _emit_json(summary)
        return
    _stdout().print(f"wrote [bold]{output}[/bold]: {len(state)} tensors, {info['predicted_params']:,} of "
                    f"{info['params']:,} parameters predicted ({info['predicted_share']:.1%}) in "
                    f"{info['seconds']:.2f} s")


@ghn_app.command("score")
@_command
def score_cmd(
    models: Annotated[list[str], typer.Argument(metavar="GRAPH_OR_MODEL...", help="Graphs or models to score.")],
    task: Annotated[str, typer.Option("--task", "-t", help="Task to score on.")] = "mnist5k",
    ghn: Annotated[str, _GHN_OPT] = "default",
    split: Annotated[str, typer.Option(help="Split the predicted parameters are evaluated on.")] = "val",
    max_examples: Annotated[int, typer.Option("--max-examples", min=1, help="Examples evaluated.")] = 500,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: CUDA when present).")] = None,
    readout: Annotated[bool, typer.Option("--readout", help="Refit the output layer in closed form first.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score architectures on a task without training them: the metric of their predicted parameters and the
    GHN's estimate of the metric after brief training."""
    from mad.train.objective import TaskSpec

    _check_task(task)
    objs = [_load_model(m, {}) for m in models]
    h = _load_ghn(ghn, device)
    with _busy(f"scoring {len(objs)} architecture(s)"):
        scores = h.score(objs, task, split=split, max_examples=max_examples, readout=readout)
    for s, src in zip(scores, models):
        s["source"] = src
    if all("error" in s for s in scores):
        raise CliError(f"no model could be scored: {scores[0]['source']}: {scores[0]['error']}")
    if as_json:
        _emit_json(scores)
        return
    lm = TaskSpec.of(task).is_lm
    est = h.calibrated(task) or {}
    steps = (h.record.get("quality") or {}).get("steps")
    long = (est.get("long") or {}).get("steps")  # the long-horizon stage's run, where the estimator has one
    t = Table(title=f"GHN scores on {task} ({split}, no training)", title_justify="left")
    for col in ("model", "params", "bits/char" if lm else "accuracy", "loss",
                f"expected after {steps} steps" if steps else "expected after training",
                *([f"after {long} steps"] if long else []), "seconds"):
        t.add_column(col, justify="left" if col == "model" else "right")
    fmt = (lambda v: f"{v:.3f}") if lm else (lambda v: f"{v:.1%}")
    for s in scores:
        if "error" in s:
            t.add_row(s["source"], "", "error", "", s["error"][:80], *([""] if long else []), "")
            continue
        qs = [s["quality"], *([s["quality_long"]] if long else [])]
        t.add_row(s["source"], _human(s["params"]), fmt(s["bpc"] if lm else s["accuracy"]), f"{s['loss']:.3f}",
                  *["n/a" if q is None else fmt(q) for q in qs], f"{s['seconds_predict'] + s['seconds_eval']:.2f}")
    _stdout().print(t)
