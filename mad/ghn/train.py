"""Train a GHN over the dataset's training graphs retargeted to several tasks.

Each step draws one task (by ``task_weights``), a meta-batch of that task's architectures and one batch of its
training data; the GHN predicts every parameter of every architecture, each architecture runs on the batch
with its predicted parameters (``torch.func.functional_call``, batch norm on batch statistics), and the GHN
takes one AdamW step on the mean task loss plus a penalty on the predicted weights' norms (relative to their
fan-in scale), every predicted tensor's share of the loss gradient clipped to ``param_clip`` first. Two options,
off by default and measured by ``bench/ghn_recipes.py``: ``readout_loss`` adds, per classification net, the
leave-one-out error of a closed-form output layer on its head input; ``space_graphs`` adds fresh random-space
graphs to each task's training graphs. Everything a step draws is a function of the seed and the step number,
so a resumed run continues exactly.

The run folder holds ``pools/`` (the retargeted graphs, found once), ``checkpoint/`` (written every
``save_every`` steps, on Ctrl-C and at the end), ``log.jsonl`` (one line per logged step and evaluation) and,
at the end, the GHN itself (``model.safetensors``, ``config.json``, ``record.json``) that :func:`mad.ghn.load`
reads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .api import GHN, evaluate, materialise
from .encode import collate, encode
from .model import GHNConfig, GHNModel, task_features
from .pool import describe, space_pool, task_pool
from .readout import _Inputs, loo_ridge_error, readout_weight_name, refit_readout

__all__ = ["TrainConfig", "train"]

log = logging.getLogger("mad.ghn")


@dataclass
class TrainConfig:
    """What a GHN training run does (saved in the checkpoint and the record)."""

    tasks: list[str] = field(default_factory=lambda: ["mnist5k", "digits", "mnist1d", "chars"])
    steps: int = 6000
    meta_batch: int = 4
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: int = 200
    norm_penalty: float = 1e-3
    clip: float = 1.0
    param_clip: float = 1.0   # per predicted tensor, on its share of the meta-batch loss gradient (0: off)
    # weight of the leave-one-out error of a closed-form (ridge) output layer on the logits layer's input, added to
    # each classification net's loss: predicted hidden layers are trained to be good features on their own (0: off)
    readout_loss: float = 0.0
    graphs: dict[str, int] = field(default_factory=lambda: {"mnist5k": 300, "chars": 250})
    default_graphs: int = 150
    # fresh random-space graphs added to each task's training graphs (mad.ghn.pool.space_pool; none by default)
    space_graphs: dict[str, int] = field(default_factory=dict)
    task_weights: dict[str, float] = field(default_factory=lambda: {"mnist5k": 0.35, "chars": 0.35})
    val_graphs: int = 8
    val_examples: int = 500
    eval_every: int = 500
    save_every: int = 100
    log_every: int = 25
    max_mflops: float = 15.0
    max_nodes: int = 400
    archs: str = "default"
    seed: int = 0
    quality_tasks: list[str] = field(default_factory=lambda: ["mnist5k", "chars"])
    # training graphs per task trained briefly to calibrate the quality estimate
    quality_graphs: dict[str, int] = field(default_factory=lambda: {"mnist5k": 200, "chars": 120})
    quality_steps: int = 100

    def n_graphs(self, task: str) -> int:
        return int(self.graphs.get(task, self.default_graphs))

    def weights(self) -> list[float]:
        rest = max(0.0, 1.0 - sum(self.task_weights.get(t, 0.0) for t in self.tasks))
        free = [t for t in self.tasks if t not in self.task_weights]
        return [self.task_weights.get(t, rest / max(1, len(free))) for t in self.tasks]


_MUST_MATCH = ("tasks", "meta_batch", "batch_size", "graphs", "default_graphs", "seed", "archs", "space_graphs")
_SAVED_BEFORE = {"space_graphs": {}}  # what a checkpoint saved before a setting existed ran with


class _TaskState:
    """One task's spec, data, training graphs (encoded, with their modules) and validation graphs."""

    def __init__(self, task: str, cfg: TrainConfig, folder: Path, device: torch.device, workers: int):
        from mad.train.data import TaskData
        from mad.train.objective import TaskSpec

        self.spec = TaskSpec.of(task)
        self.data = TaskData(self.spec, seed=cfg.seed, batch_size=cfg.batch_size)
        kw = dict(max_mflops=cfg.max_mflops, max_nodes=cfg.max_nodes, seed=cfg.seed, workers=workers, progress=True)
        self.pool = task_pool(task, cfg.n_graphs(task), ("train",), folder / "pools" / f"{task}.jsonl", **kw)
        if cfg.space_graphs.get(task):
            self.pool += space_pool(task, int(cfg.space_graphs[task]), folder / "pools" / f"{task}.space.jsonl", **kw)
        self.val = task_pool(task, cfg.val_graphs, ("validation",), folder / "pools" / f"{task}.val.jsonl", **kw)
        if len(self.pool) < cfg.meta_batch:
            raise ValueError(f"task {task!r}: only {len(self.pool)} training graphs qualify; need >= {cfg.meta_batch}")
        self.enc = [encode(g) for _, g in self.pool]
        self.modules = [g.to_module(device) for _, g in self.pool]
        # the logits layer's weight of each training graph, for a head_norm GHN (None: the logits come from
        # elsewhere, or a language model)
        self.heads = [None if self.spec.is_lm else readout_weight_name(g, m, self.spec.num_outputs)
                      for (_, g), m in zip(self.pool, self.modules)]
        self.val_enc = [encode(g) for _, g in self.val]
        self.features = task_features(self.spec.input_shape, self.spec.num_outputs, self.spec.is_lm)
        self.broken: set[int] = set()


def _as_json(d: dict) -> Any:
    """``d`` as it reads back from JSON (tuples become lists), to compare saved settings with given ones."""
    return json.loads(json.dumps(d))


def _schedule(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _step(model: GHNModel, st: _TaskState, idx: list[int], step: int, cfg: TrainConfig, device, accelerator):
    """One GHN step on the architectures ``idx``. Each architecture's loss gradient is taken at its predicted
    tensors first and every tensor's gradient is clipped to norm ``cfg.param_clip`` there, before the single
    backward pass through the GHN: a net whose gradients explode (a LayerNorm over an all-zero image patch
    divides by sqrt(eps) at each layer, 1e10 at the stem of some nets) would otherwise swamp the meta-batch
    and, through AdamW's second moments, stall every later step."""
    from mad.train.objective import logits_of

    batch = collate([st.enc[i] for i in idx]).to(device)
    ids = model.task_ids([st.spec.name] * len(idx)).to(device)
    out, _, penalty = model(batch, ids, st.features[None].repeat(len(idx), 1).to(device))
    x, y = st.data.train_batch(step, device=device)
    head_norm = getattr(model, "module", model).config.head_norm
    # (task loss, predicted tensors, leave-one-out error of a closed-form output layer or None) per working net
    found: list[tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]] = []
    for i, params in zip(idx, out):
        err = None
        mod = st.modules[i]
        mod.train()
        head = st.heads[i] if (head_norm or cfg.readout_loss) else None
        # a head_norm GHN predicts the logits layer for its input standardized over the batch
        grab = (_Inputs(params[head], detach=False, standardize=head_norm) if head in params
                else contextlib.nullcontext())
        try:
            with grab:
                loss = st.spec.loss(logits_of(torch.func.functional_call(mod, params, (x,))), y)
            if cfg.readout_loss and head in params and len(grab.feats) == 1:
                err = loo_ridge_error(grab.feats[0], y, st.spec.num_outputs)
        except Exception as e:  # noqa: BLE001 - one graph failing must not stop the run
            log.warning("task %s graph %s fails with predicted parameters (%s); dropped", st.spec.name,
                        st.pool[i][0], str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
            st.broken.add(i)
            continue
        if torch.isfinite(loss) and (err is None or torch.isfinite(err)):
            found.append((loss, params, err))
    if not found:
        return None
    surrogate, clipped = cfg.norm_penalty * penalty, 0
    for loss, params, err in found:
        if err is not None:
            loss = loss + cfg.readout_loss * err
        names = [k for k, t in params.items() if t.requires_grad]
        grads = torch.autograd.grad(loss / len(found), [params[k] for k in names], allow_unused=True)
        for k, gr in zip(names, grads):
            if gr is None:
                continue
            gr = torch.nan_to_num(gr, nan=0.0, posinf=0.0, neginf=0.0)
            norm = float(gr.norm())
            if cfg.param_clip and norm > cfg.param_clip:
                gr, clipped = gr * (cfg.param_clip / norm), clipped + 1
            surrogate = surrogate + (params[k] * gr).sum()
    accelerator.backward(surrogate)
    task_loss = torch.stack([loss.detach() for loss, _, _ in found])
    figures = {"loss": task_loss.mean().item(), "penalty": penalty.item(), "clipped": clipped}
    errors = [err.detach() for _, _, err in found if err is not None]
    if errors:  # the leave-one-out error of a closed-form output layer, trained with weight readout_loss
        figures["ridge"] = torch.stack(errors).mean().item()
    return figures


@torch.no_grad()
def evaluate_tasks(ghn_model: GHNModel, states: dict[str, _TaskState], cfg: TrainConfig, device) -> dict[str, Any]:
    """Mean validation metric of the predicted parameters on each task's validation graphs."""
    ghn = GHN(ghn_model, device=device)
    was = ghn_model.training
    ghn_model.eval()
    out = {}
    try:
        for task, st in states.items():
            params, _ = ghn.predict_encoded(st.val_enc, task)
            batches = [st.data.train_batch(i) for i in range(8)]
            xs = [x for x, _ in batches[:4]]
            figures, fitted = [], []
            max_ex = cfg.val_examples if not st.spec.is_lm else max(64, cfg.val_examples // 4)
            for (_, g), p in zip(st.val, params):
                module, _, _ = materialise(g, p, xs, device=device, norm_head=ghn._norm_head(st.spec))
                figures.append(evaluate(module, task, "val", max_ex, data=st.data))
                if "skipped" in refit_readout(g, module, batches, st.spec.num_outputs):
                    fitted.append(figures[-1])
                else:
                    fitted.append(evaluate(module, task, "val", max_ex, data=st.data))
            key = "bpc" if st.spec.is_lm else "accuracy"
            n = max(1, len(figures))
            out[task] = {key: sum(f[key] for f in figures) / n, f"{key}_readout": sum(f[key] for f in fitted) / n,
                         "graphs": len(figures)}
    finally:
        ghn_model.train(was)
    return out


def calibrate(model: GHNModel, states: dict[str, "_TaskState"], cfg: TrainConfig, folder: Path,
              progress: bool = True) -> dict[str, Any] | None:
    """Train ``cfg.quality_graphs`` training graphs per quality task briefly (labels cached in ``folder/labels``)
    and fit the quality estimator on them (:mod:`mad.ghn.quality`)."""
    from .quality import collect_labels, fit_quality

    data, label_seconds = {}, {}
    for task in cfg.quality_tasks:
        n = int(cfg.quality_graphs.get(task, 0))
        if task not in states or n <= 0:
            continue
        pool = states[task].pool[:n]
        labels = collect_labels(task, pool, folder / "labels" / f"{task}.jsonl", cfg.quality_steps, progress)
        metric = {r["id"]: r.get("metric") for r in labels}
        data[task] = [(g, metric.get(i)) for i, g in pool]
        label_seconds[task] = round(sum(r.get("seconds", 0.0) for r in labels), 1)
    if not data:
        return None
    try:
        stats = fit_quality(model, data, seed=cfg.seed)
    except ValueError as e:
        log.warning("quality head not calibrated: %s", e)
        return None
    stats["steps"] = cfg.quality_steps
    stats["label_seconds"] = label_seconds
    return stats


def train(cfg: TrainConfig, out: str | Path, model_config: GHNConfig | None = None, resume: bool = True,
          minutes: float | None = None, device: str | None = None, workers: int = 1,
          progress: bool = True, run_steps: int | None = None) -> dict[str, Any]:
    """Train a GHN into the folder ``out`` (continuing the run there if it has a checkpoint and ``resume``).

    Returns the training record (also written to ``out/record.json``); ``record["status"]`` is ``"completed"``,
    ``"time_limit"`` (``minutes`` or ``run_steps``, the steps this call may take, ran out) or ``"interrupted"``.
    """
    from mad.train.checkpoint import load_checkpoint, save_checkpoint
    from mad.train.fit import _StopRequest, make_accelerator

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    accelerator = make_accelerator(device)
    dev = accelerator.device
    t_start = time.perf_counter()
    ckpt_dir = folder / "checkpoint"
    if not resume:  # start over; the pools (retargeted graphs) and quality labels stay valid
        import shutil

        shutil.rmtree(ckpt_dir, ignore_errors=True)
        (folder / "log.jsonl").unlink(missing_ok=True)
    start, seconds_before, history = 0, 0.0, []
    prev = None
    if resume and (ckpt_dir / "trainer.json").exists():
        prev = load_checkpoint(ckpt_dir)
        old = prev.meta.get("train_config", {})
        diff = [k for k in _MUST_MATCH if old.get(k, _SAVED_BEFORE.get(k)) != _as_json(asdict(cfg)).get(k)]
        if diff:
            raise ValueError(f"{ckpt_dir} was trained with other {', '.join(diff)}; resume with the same settings "
                             f"or pass another --out")
        saved = GHNConfig.from_dict(prev.meta["model_config"])
        if model_config is not None:  # the tasks come from cfg, compared above
            had, given = _as_json(saved.to_dict()), _as_json(model_config.to_dict())
            diff = [k for k in had if k != "tasks" and given.get(k) != had[k]]
            if diff:
                raise ValueError(f"{ckpt_dir} was trained with other model settings ({', '.join(diff)}); resume with "
                                 f"the same ones (or none) or pass another --out")
        model_config = saved
    model_config = model_config or GHNConfig(tasks=list(cfg.tasks))
    model_config.tasks = list(cfg.tasks)
    torch.manual_seed(cfg.seed)
    model = GHNModel(model_config)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, cfg))
    if prev is not None:
        prev.load_model(model)
        start = int(prev.meta["step"])
        opt.load_state_dict(prev.state["optimizer"])
        sched.load_state_dict(prev.state["scheduler"])
        seconds_before = float(prev.meta.get("seconds", 0.0))
        history = prev.meta.get("evals", [])
        log.info("resuming %s at step %d", folder, start)
    model, opt = accelerator.prepare(model, opt)
    raw = accelerator.unwrap_model(model)
    t_pool = time.perf_counter()
    states = {t: _TaskState(t, cfg, folder, dev, workers) for t in cfg.tasks}
    pool_seconds = time.perf_counter() - t_pool
    weights = cfg.weights()
    deadline = None if minutes is None else time.perf_counter() + 60 * minutes
    logf = (folder / "log.jsonl").open("a")
    status, step = "completed", start

    def save() -> None:
        meta = {"step": step, "seconds": seconds_before + time.perf_counter() - t_loop,
                "train_config": asdict(cfg), "model_config": raw.config.to_dict(), "evals": history}
        save_checkpoint(ckpt_dir, raw, opt, sched, meta=meta)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc="ghn", unit="step")
    t_loop = time.perf_counter()
    window: list[dict] = []
    model.train()
    try:
        with _StopRequest() as stop:
            while step < cfg.steps:
                if stop.requested:
                    status = "interrupted"
                    break
                if (deadline is not None and time.perf_counter() > deadline) or (
                        run_steps is not None and step >= start + run_steps):
                    status = "time_limit"
                    break
                rng = random.Random(cfg.seed * 1_000_003 + step)
                task = rng.choices(cfg.tasks, weights)[0]
                st = states[task]
                live = [i for i in range(len(st.pool)) if i not in st.broken]
                idx = rng.sample(live, min(cfg.meta_batch, len(live)))
                opt.zero_grad(set_to_none=True)
                figures = _step(model, st, idx, step, cfg, dev, accelerator)
                if figures is not None:
                    if cfg.clip:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.clip)
                    opt.step()
                    window.append({"task": task, **figures})
                sched.step()
                step += 1
                if bar:
                    bar.update(1)
                    if window:
                        bar.set_postfix(loss=f"{window[-1]['loss']:.3f}", task=task)
                if step % cfg.log_every == 0 and window:
                    rec = {"step": step, "seconds": round(time.perf_counter() - t_loop + seconds_before, 1),
                           "lr": sched.get_last_lr()[0]}
                    for t in cfg.tasks:
                        ls = [w["loss"] for w in window if w["task"] == t]
                        if ls:
                            rec[f"loss/{t}"] = sum(ls) / len(ls)
                        rs = [w["ridge"] for w in window if w["task"] == t and "ridge" in w]
                        if rs:
                            rec[f"ridge/{t}"] = sum(rs) / len(rs)
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                    window = []
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    ev = {"step": step, **evaluate_tasks(raw, states, cfg, dev)}
                    history.append(ev)
                    logf.write(json.dumps({"eval": ev}) + "\n")
                    logf.flush()
                    log.info("step %d: %s", step, ev)
                if step % cfg.save_every == 0:
                    save()
            save()
    finally:
        logf.close()
        if bar:
            bar.close()
    seconds = seconds_before + time.perf_counter() - t_loop
    quality = None
    if status != "interrupted":
        t_q = time.perf_counter()
        quality = calibrate(raw, states, cfg, folder, progress)
        if quality is not None:
            quality["seconds"] = round(time.perf_counter() - t_q, 1)
    record = {
        "status": status, "steps": step, "train_config": asdict(cfg), "model_config": raw.config.to_dict(),
        "ghn_params": sum(p.numel() for p in raw.parameters()),
        "data": {t: {**describe(st.pool), "val_graphs": len(st.val), "dropped": len(st.broken)}
                 for t, st in states.items()},
        "train_seconds": round(seconds, 1), "pool_seconds": round(pool_seconds, 1),
        "wall_seconds_this_run": round(time.perf_counter() - t_start, 1),
        "hardware": {"device": str(dev), "cuda": torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
                     "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.machine(),
                     "torch": torch.__version__},
        "evals": history,
        "quality": quality,
    }
    GHN(raw, record).save(folder, record)
    from .quality import split_forests

    return split_forests(record)[0]  # JSON-ready: a tree estimator's forest is in the folder's quality.safetensors
