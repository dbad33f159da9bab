"""fit(): train any graph or module on any task, with accelerate, checkpoints and exact resume.

The same code runs on a CPU, one GPU (optionally in mixed precision) or several GPUs under
``accelerate launch``: the model and optimizer go through ``Accelerator.prepare``, backward through
``accelerator.backward``, and each process takes its share of every global batch (``batch_size`` is per
process). Data order depends only on ``(seed, step)`` (see :mod:`mad.train.data`), so on one process a run
is bit-for-bit reproducible for a seed on CPU, and a run resumed from a checkpoint continues exactly as the
uninterrupted run would have.

Ctrl-C: the first press finishes the current step, writes a checkpoint (to ``out_dir/checkpoint`` or to a
new temporary folder) and raises :class:`~mad.train.result.TrainInterrupted` (a ``KeyboardInterrupt`` that
carries the partial result and the checkpoint path); a second press aborts at once without a checkpoint.
"""

from __future__ import annotations

import logging
import math
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from mad.graph import ArchGraph

from .checkpoint import load_checkpoint, save_checkpoint
from .data import TaskData
from .objective import (Prepared, TaskSpec, TrainError, count_params, logits_of, module_device, prepare_model,
                        sees_future)
from .optim import default_warmup, make_optimizer, make_scheduler
from .result import FitResult, TrainInterrupted, json_value

__all__ = ["fit", "initialise", "make_accelerator", "EVAL_BATCH"]

log = logging.getLogger("mad.train")

EVAL_BATCH = 256  # examples per evaluation batch (at least batch_size)
_MIXED = (None, "no", "fp16", "bf16", "fp8")
_MUST_MATCH = ("task", "task_options")  # a resumed run must keep these; other changes only warn


def make_accelerator(device: str | None = None, mixed_precision: str | None = None):
    """An ``accelerate.Accelerator`` on ``device`` (``None``: accelerate's choice; ``"cpu"``, ``"cuda"``, ...).

    In a single process, an accelerate state left by an earlier call with another device or precision is reset
    (accelerate keeps one per process); under ``accelerate launch`` the launcher's settings stand.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    if mixed_precision not in _MIXED:
        raise TrainError(f"mixed_precision {mixed_precision!r}: use one of no, fp16, bf16, fp8")
    try:
        want = torch.device(device) if device is not None else None
    except RuntimeError:
        raise TrainError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    kwargs: dict[str, Any] = {}
    if want is not None and want.type == "cpu":
        kwargs["cpu"] = True
    if mixed_precision is not None:
        kwargs["mixed_precision"] = mixed_precision
    if getattr(AcceleratorState, "_shared_state", None) and PartialState().num_processes == 1:
        state = AcceleratorState()
        if (want is not None and state.device.type != want.type) or (
                mixed_precision is not None and state.mixed_precision != mixed_precision):
            AcceleratorState._reset_state(reset_partial_state=True)
    try:
        acc = Accelerator(**kwargs)
    except ValueError as e:
        raise TrainError(f"accelerate cannot use device={device!r}, mixed_precision={mixed_precision!r}: {e}") from e
    if want is not None and acc.device.type != want.type:
        raise TrainError(f"device {device!r} is not available here (accelerate chose {acc.device}); "
                         "pass device=None to use accelerate's default")
    return acc


class _StopRequest:
    """While active (main thread only), the first Ctrl-C sets ``requested``; the second raises at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: stopping after this step and saving a checkpoint (press again to abort without saving)")

    def _restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def __exit__(self, *exc) -> bool:
        self._restore()
        return False


def _evaluate(model: nn.Module, data: TaskData, spec: TaskSpec, accelerator, split: str, batch_size: int,
              max_batches: int | None) -> dict[str, float]:
    dtype = torch.float32 if accelerator.device.type == "mps" else torch.float64
    sums = torch.zeros(3, dtype=dtype, device=accelerator.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for x, y in data.eval_batches(split, batch_size, max_batches, accelerator.process_index, accelerator.device):
            sums += spec.sums(logits_of(model(x)), y).to(dtype)
    model.train(was_training)
    if accelerator.num_processes > 1:
        sums = accelerator.reduce(sums, reduction="sum")
    return spec.figures(sums)


def initialise(prepared: Prepared, spec: TaskSpec, init: str | Path | Mapping[str, torch.Tensor]) -> str:
    """Load ``init`` (see :func:`fit`) into ``prepared.module``; returns the label :func:`fit` records for it.

    Raises:
        TrainError: the file, the GHN or the weights do not fit the model (the message says which).
    """
    module = prepared.module
    if isinstance(init, str) and (init == "ghn" or init.startswith("ghn:")):
        from mad.ghn import GHNError, load

        where = init.partition(":")[2] or "default"
        try:
            ghn = load(where, device=module_device(module))
            # a graph's module is predicted from the (retargeted) graph it was built from, a module in place
            predicted = ghn.predict(prepared.graph if prepared.graph is not None else module, spec.name)
        except GHNError as e:
            raise TrainError(f"init={init!r}: {e}") from None
        info = predicted.ghn_info
        log.info("init: %s predicted %d of %d parameters for %s in %.2f s", init, info["predicted_params"],
                 info["params"], spec.name, info["seconds"])
        label = f"ghn:{where}"
        if predicted is module:  # filled in place
            return label
        state = predicted.state_dict()
    elif isinstance(init, (str, Path)):
        path = Path(init)
        if not path.is_file():
            raise TrainError(f"init={str(init)!r}: no such file (a safetensors state dict, e.g. from "
                             "`mad ghn predict MODEL -o FILE`, or 'ghn' / 'ghn:DIR' for predicted parameters)")
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
            raise TrainError(f"init={str(init)!r} is not a safetensors file: {str(e).splitlines()[0][:200]}") from e
        label = str(path)
    elif isinstance(init, Mapping):
        state, label = init, "state_dict"
    else:
        raise TrainError(f"init must be 'ghn', 'ghn:DIR', a safetensors file or a state dict, got "
                         f"{type(init).__name__}")
    own = module.state_dict()
    tied: dict[tuple, list[str]] = {}  # names of one tensor (weights tied in the model): any one of them will do
    for k, v in own.items():
        if v.numel():
            tied.setdefault((v.data_ptr(), tuple(v.shape), v.stride()), []).append(k)
    alias = {k: next((n for n in names if n in state), k) for names in tied.values() for k in names}
    missing = [k for k in own if alias.get(k, k) not in state]
    extra = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        what = [f"{len(missing)} missing ({', '.join(missing[:3])})" if missing else "",
                f"{len(extra)} not in the model ({', '.join(extra[:3])})" if extra else "",
                f"{len(shapes)} of another shape ({', '.join(shapes[:3])})" if shapes else ""]
        raise TrainError(f"init={label!r} does not match {prepared.name} on {spec.name}: tensors "
                         f"{'; '.join(w for w in what if w)}")
    module.load_state_dict({k: state[alias.get(k, k)] for k in own})
    return label


def _check_resume(meta: dict[str, Any], config: dict[str, Any], path) -> None:
    old = meta.get("config", {})
    for key in _MUST_MATCH:
        if old.get(key) != config.get(key):
            raise TrainError(f"checkpoint {path} was trained with {key}={old.get(key)!r}, this run has "
                             f"{config.get(key)!r}; resume with the same {key}")
    changed = [k for k in config if k not in _MUST_MATCH and k in old and old[k] != config[k]]
    if changed:
        log.warning("resuming %s with changed options (%s): the run will differ from an uninterrupted one; the "
                    "optimizer keeps the checkpoint's learning rate and weight decay", path,
                    ", ".join(f"{k}: {old[k]!r} -> {config[k]!r}" for k in changed))


def fit(model: ArchGraph | nn.Module, task: str, steps: int = 500, batch_size: int = 64, lr: float = 1e-3,
        optimizer: str = "adamw", schedule: str = "cosine", warmup: int | None = None, weight_decay: float = 0.01,
        grad_clip: float | None = 1.0, device: str | None = None, mixed_precision: str | None = None, seed: int = 0,
        eval_every: int | Sequence[int] | None = None, eval_batches: int | None = None,
        resume: str | Path | None = None, init: str | Path | Mapping[str, torch.Tensor] | None = None,
        out_dir: str | Path | None = None, progress: bool = True, task_options: dict[str, Any] | None = None,
        callback: Callable[[int, float], Any] | None = None) -> FitResult:
    """Train a graph or module on a task and report validation and test figures.

    Args:
        model: an :class:`ArchGraph` (built with ``g.to_module()`` after ``torch.manual_seed(seed)``; retargeted
            with ``mad.data.tasks.fit`` if it does not fit the task) or an ``nn.Module``
            (trained in place). Either must take ``(N, *input_shape)`` inputs and return logits ``(N, classes)``
            or ``(N, T, vocab)`` (or a tuple / dict with ``"logits"`` first).
        task: a name from ``mad.data.tasks.names()``; it decides the loss (cross-entropy, next-token
            cross-entropy) and the metric (accuracy, bits per character).
        steps: optimizer steps in total (a resumed run continues up to ``steps``).
        batch_size: examples per step and process.
        lr, optimizer, schedule, warmup, weight_decay: see :mod:`mad.train.optim`; ``warmup=None`` is 5% of
            ``steps`` (at most 100).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        device: ``None`` (accelerate's choice: the GPU if any), ``"cpu"``, ``"cuda"``.
        mixed_precision: ``None`` (accelerate's configuration), ``"no"``, ``"fp16"``, ``"bf16"``.
        seed: seeds the parameter init of a graph, dropout and the data order.
        eval_every: evaluate on the validation split every this many steps (``None``: ``steps // 10``;
            ``0``: only at the end), or after each step of a list (``[0, 10, 100]``; ``0``: before the first
            step). The final evaluation always covers the whole validation and test splits.
        eval_batches: batches of 256 examples per periodic evaluation (``None``: the whole split).
        resume: a checkpoint folder (or a run folder holding ``checkpoint/``) to continue from.
        init: the weights to start from instead of the seeded init: ``"ghn"`` (parameters predicted for the task
            by the shipped graph hypernetwork, :meth:`mad.ghn.GHN.predict`) or ``"ghn:DIR"`` (a GHN checkpoint
            folder), a safetensors file of a state dict (as ``mad ghn predict -o FILE`` writes) or a state dict.
            Every parameter and persistent buffer of the model must be in it with its shape. Recorded as
            ``config["init"]``; a resumed run starts from its checkpoint's weights and keeps the label of the run
            it continues.
        out_dir: folder for ``checkpoint/`` and ``result.json`` at the end (and on Ctrl-C).
        progress: show a progress bar (tqdm, on stderr) with the loss and the latest validation figure.
        task_options: options of the task (``{"seq_len": 32}`` for ``chars``; ``data_dir`` for ``cifar10``).
        callback: called as ``callback(step, loss)`` after every step (and its evaluation); raising
            ``KeyboardInterrupt`` in it stops the run like Ctrl-C.

    Returns:
        a :class:`FitResult`.

    Raises:
        TrainError: the model does not fit the task, or an option is not valid (the message says which).
        TrainInterrupted: Ctrl-C; ``.result`` is the partial result, ``.checkpoint`` where it was saved.

    Example:
        >>> g = from_module(SmallCNN(), (torch.randn(2, 1, 8, 8),))
        >>> r = fit(g, "digits", steps=300, progress=False)
        >>> r.val_accuracy > 0.9
        True
    """
    t_call = time.perf_counter()
    if not isinstance(steps, int) or steps < 0:
        raise TrainError(f"steps must be an int >= 0, got {steps!r}")
    spec = TaskSpec.of(task, task_options)
    accelerator = make_accelerator(device, mixed_precision)
    rank, world = accelerator.process_index, accelerator.num_processes
    data = TaskData(spec, seed, batch_size, world)
    warmup = default_warmup(steps) if warmup is None else int(warmup)
    if isinstance(eval_every, (list, tuple, range)):
        eval_at = sorted({int(s) for s in eval_every})
        if any(s < 0 for s in eval_at):
            raise TrainError(f"eval_every steps must be >= 0, got {list(eval_every)}")
        eval_every = eval_at
        due = set(eval_at).__contains__
    else:
        eval_every = max(1, steps // 10) if eval_every is None else int(eval_every)
        due = (lambda s, n=eval_every: bool(n) and s > 0 and s % n == 0)
    eval_bs = max(batch_size, EVAL_BATCH)
    config = {"task": spec.name, "task_options": {**spec.options, **({"data_dir": spec.data_dir} if spec.data_dir
                                                                       else {})},
              "steps": steps, "batch_size": batch_size, "lr": lr, "optimizer": optimizer, "schedule": schedule,
              "warmup": warmup, "weight_decay": weight_decay, "grad_clip": grad_clip, "seed": seed,
              "eval_every": eval_every, "eval_batches": eval_batches, "mixed_precision": accelerator.mixed_precision,
              "processes": world}
    config = json_value(config)  # as saved in checkpoints, so a resumed run compares equal

    prepared: Prepared = prepare_model(model, spec, data.sample(2), seed=seed)
    if prepared.graph is None:
        torch.manual_seed(seed)
    module = prepared.module
    if init is not None and resume is None:
        config["init"] = initialise(prepared, spec, init)
    elif init is not None:
        log.info("resuming from %s: its weights are used, init=%r is not", resume, init)
    leaks = None
    if spec.is_lm:
        leaks = sees_future(module, data.sample(2)[0].to(module_device(module)), spec.num_outputs)
        if leaks:
            log.warning("%s sees later tokens (a bidirectional model): next-token training on %s can copy the "
                        "answer from its input, so its loss and bits per character are not a language model's",
                        prepared.name, spec.name)
    opt = make_optimizer(optimizer, module, lr, weight_decay)
    sched = make_scheduler(opt, schedule, steps, warmup)
    step, loss_curve, eval_curve, train_seconds = 0, [], [], 0.0
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        _check_resume(ckpt.meta, config, ckpt.path)
        if "init" in ckpt.meta.get("config", {}):
            config["init"] = ckpt.meta["config"]["init"]
        ckpt.load_model(module)
        step = int(ckpt.meta["step"])
        loss_curve = [(int(s), float(v)) for s, v in ckpt.meta.get("loss_curve", [])]
        eval_curve = list(ckpt.meta.get("eval_curve", []))
        train_seconds = float(ckpt.meta.get("train_seconds", 0.0))
        log.info("resuming from %s at step %d", ckpt.path, step)
    module, opt = accelerator.prepare(module, opt)
    if ckpt is not None:
        if "optimizer" in ckpt.state:
            opt.load_state_dict(ckpt.state["optimizer"])
        if "scheduler" in ckpt.state:
            sched.load_state_dict(ckpt.state["scheduler"])
        if "scaler" in ckpt.state and accelerator.scaler is not None:
            accelerator.scaler.load_state_dict(ckpt.state["scaler"])
        ckpt.restore_rng()
    params = count_params(module)
    log.info("training %s (%d params) on %s for %d steps, batch %d x %d, on %s", prepared.name, params, spec.name,
             steps, batch_size, world, accelerator.device)

    def result(status: str, checkpoint: Path | None, run_steps: int, run_seconds: float,
               final: dict[str, dict[str, float]]) -> FitResult:
        val, test = final.get("val", {}), final.get("test", {})
        return FitResult(
            spec.name, spec.task_type, spec.metric, prepared.name, status, step, steps,
            val_loss=val.get("loss"), val_accuracy=val.get("accuracy"), val_bpc=val.get("bpc"),
            test_loss=test.get("loss"), test_accuracy=test.get("accuracy"), test_bpc=test.get("bpc"),
            loss_curve=list(loss_curve), eval_curve=list(eval_curve), seconds=time.perf_counter() - t_call,
            train_seconds=train_seconds, steps_per_s=run_steps / run_seconds if run_seconds > 0 else 0.0,
            params=params, device=str(accelerator.device), seed=seed, config=config,
            checkpoint=None if checkpoint is None else str(checkpoint), retargeted=prepared.retargeted,
            sees_future=leaks,
            model=accelerator.unwrap_model(module, keep_fp32_wrapper=False))

    def save(folder: Path) -> Path:
        meta = {"step": step, "config": config, "loss_curve": loss_curve, "eval_curve": eval_curve,
                "train_seconds": train_seconds, "model_name": prepared.name, "params": params}
        if accelerator.is_main_process:
            save_checkpoint(folder, accelerator.unwrap_model(module), opt.optimizer, sched, meta, prepared.graph,
                            accelerator.scaler)
        accelerator.wait_for_everyone()
        return folder

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, initial=step, desc=f"{prepared.name} on {spec.name}", unit="step", dynamic_ncols=True,
               disable=not progress or not accelerator.is_local_main_process)
    postfix: dict[str, str] = {}
    run_steps, run_seconds, in_step, status = 0, 0.0, False, "completed"
    stop = _StopRequest()
    module.train()
    if step == 0 and due(0) and steps > 0:
        figs = _evaluate(module, data, spec, accelerator, "val", eval_bs, eval_batches)
        eval_curve.append({"step": 0, **figs})
    try:
        with stop:
            while step < steps:
                t0 = time.perf_counter()
                x, y = data.train_batch(step, rank, accelerator.device)
                in_step = True
                loss = spec.loss(logits_of(module(x)), y)
                opt.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                if grad_clip:
                    accelerator.clip_grad_norm_(module.parameters(), grad_clip)
                opt.step()
                sched.step()
                step += 1
                in_step = False
                lv = loss.detach()
                lv = float(accelerator.reduce(lv, reduction="mean") if world > 1 else lv)
                dt = time.perf_counter() - t0
                run_steps, run_seconds, train_seconds = run_steps + 1, run_seconds + dt, train_seconds + dt
                loss_curve.append((step, lv))
                if not math.isfinite(lv):
                    status = "diverged"
                    log.warning("%s on %s: the loss is %s at step %d; stopping (lower the learning rate?)",
                                prepared.name, spec.name, lv, step)
                    break
                if due(step) and step < steps:
                    figs = _evaluate(module, data, spec, accelerator, "val", eval_bs, eval_batches)
                    eval_curve.append({"step": step, **figs})
                    postfix["val"] = f"{figs['bpc']:.3f} bpc" if spec.is_lm else f"{figs['accuracy']:.1%}"
                if callback is not None:
                    callback(step, lv)
                postfix["loss"] = f"{lv:.4f}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
                stopping = stop.requested
                if world > 1:
                    flag = torch.tensor(float(stopping), device=accelerator.device)
                    stopping = bool(accelerator.reduce(flag, reduction="sum") > 0)
                if stopping:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        bar.close()
        if in_step:
            log.error("aborted in the middle of step %d: no checkpoint written", step + 1)
            raise
        folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="mad-train-"))
        path = save(folder / "checkpoint")
        res = result("interrupted", path, run_steps, run_seconds, {"val": eval_curve[-1] if eval_curve else {}})
        if accelerator.is_main_process:
            res.to_json(folder / "result.json")
        log.warning("interrupted at step %d/%d; checkpoint saved to %s", step, steps, path)
        raise TrainInterrupted(res) from None
    finally:
        bar.close()

    final = {s: _evaluate(module, data, spec, accelerator, s, eval_bs, None) for s in ("val", "test")}
    if not eval_curve or eval_curve[-1]["step"] != step:
        eval_curve.append({"step": step, **final["val"]})
    path = None
    if out_dir is not None:
        path = save(Path(out_dir) / "checkpoint")
    res = result(status, path, run_steps, run_seconds, final)
    if out_dir is not None and accelerator.is_main_process:
        res.to_json(Path(out_dir) / "result.json")
    log.info("%s on %s: %s after %d steps (%.1f steps/s)", prepared.name, spec.name,
             f"val {spec.metric} {res.value:.4f}" if res.value is not None else "no figure", step, res.steps_per_s)
    return res
