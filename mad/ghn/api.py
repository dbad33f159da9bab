"""``GHN``: load a trained graph hypernetwork, predict every parameter of a model or graph for a task, and
score architectures by the quality of their predicted parameters.

    >>> ghn = mad.ghn.load("default")
    >>> net = ghn.predict(graph, task="mnist5k")        # an nn.Module with predicted parameters
    >>> ghn.score([g1, g2], task="mnist5k")             # accuracy of the predicted parameters, no training
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mad.graph import ArchGraph

from .encode import GraphInput, collate, encode
from .model import GHNConfig, GHNModel, task_features
from .readout import refit_readout

__all__ = ["GHN", "load", "DEFAULT_DIR", "evaluate", "materialise", "recalibrate_batch_norm", "fill_parameters",
           "GHNError"]

log = logging.getLogger(__name__)
DEFAULT_DIR = Path(__file__).parent / "checkpoints" / "default"
WEIGHTS, CONFIG, RECORD = "model.safetensors", "config.json", "record.json"


class GHNError(ValueError):
    """A GHN checkpoint or an input cannot be used; the message says what to do."""


def _device(device: Any = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def fill_parameters(module: nn.Module, params: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy predicted tensors into ``module``'s parameters of the same names; returns (numel filled, numel of all
    parameters)."""
    own = dict(module.named_parameters())
    filled = 0
    with torch.no_grad():
        for name, t in params.items():
            p = own.get(name)
            if p is None or tuple(p.shape) != tuple(t.shape):
                continue
            p.copy_(t.to(p))
            filled += p.numel()
    return filled, sum(p.numel() for p in own.values())


@torch.no_grad()
def recalibrate_batch_norm(module: nn.Module, batches: list[torch.Tensor]) -> int:
    """Recompute the running statistics of every batch-norm layer of ``module`` as the plain average over
    ``batches`` (the statistics the predicted weights produce); returns the number of layers reset."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or not batches:
        return 0
    saved = [(m, m.momentum) for m in norms]
    was_training = module.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the mean over the batches
    module.train()
    try:
        for x in batches:
            module(x)
    finally:
        for m, mom in saved:
            m.momentum = mom
        module.train(was_training)
    return len(norms)


def materialise(g: ArchGraph, params: dict[str, torch.Tensor], bn_inputs: list[torch.Tensor],
                module: nn.Module | None = None, device: Any = None,
                norm_head: int | None = None) -> tuple[nn.Module, int, int]:
    """``module`` (or ``g``'s rebuilt module on ``device``) with ``params`` copied in, batch-norm statistics
    recomputed on ``bn_inputs`` and in eval mode; also the numel filled and the numel of all its parameters.
    ``norm_head``: the class count of a GHN trained with ``head_norm``, whose logits layer then gets the statistics
    of its input on ``bn_inputs`` folded in (:func:`mad.ghn.readout.fold_head_norm`)."""
    from mad.train.objective import module_device

    from .readout import fold_head_norm

    module = module if module is not None else g.to_module(device)
    filled, total = fill_parameters(module, params)
    dev = module_device(module)
    recalibrate_batch_norm(module, [x.to(dev) for x in bn_inputs])
    module.eval()
    if norm_head:
        fold_head_norm(g, module, bn_inputs, norm_head)
    return module, filled, total


@torch.no_grad()
def evaluate(module: nn.Module, task: str, split: str = "val", max_examples: int | None = 500,
             batch_size: int = 250, data: Any = None) -> dict[str, float]:
    """``{"loss", "accuracy"}`` (classification) or ``{"loss", "bpc"}`` of ``module`` (eval mode) on a split.
    ``data``: the task's :class:`~mad.train.data.TaskData`, when the caller has one (else it is made)."""
    from mad.train.data import TaskData
    from mad.train.objective import TaskSpec, logits_of, module_device

    spec = TaskSpec.of(task)
    data = data if data is not None else TaskData(spec, batch_size=min(64, batch_size))
    dev = module_device(module)
    was = module.training
    module.eval()
    sums = torch.zeros(3, dtype=torch.float64)
    n_batches = None if max_examples is None else -(-max_examples // batch_size)
    try:
        for x, y in data.eval_batches(split, batch_size, n_batches, device=dev):
            sums += spec.sums(logits_of(module(x)), y).cpu()
    finally:
        module.train(was)
    return spec.figures(sums)


class GHN:
    """A trained graph hypernetwork and the task data it scores with.

    Args:
        model: the :class:`GHNModel`.
        record: its training record (data, steps, hardware, figures).
        device: where to run (CUDA when present by default).
    """

    def __init__(self, model: GHNModel, record: dict[str, Any] | None = None, device: Any = None):
        self.device = _device(device)
        self.model = model.to(self.device).eval()
        self.record = record or {}

    @property
    def config(self) -> GHNConfig:
        return self.model.config

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, name_or_path: str | Path = "default", device: Any = None) -> "GHN":
        """``"default"`` (the shipped checkpoint) or a folder with ``model.safetensors`` and ``config.json``."""
        from safetensors.torch import load_file

        folder = DEFAULT_DIR if str(name_or_path) == "default" else Path(name_or_path)
        if folder.is_file():
            folder = folder.parent
        if (folder / "checkpoint" / WEIGHTS).exists() and not (folder / WEIGHTS).exists():
            folder = folder / "checkpoint"  # a training run folder that has not finished yet
        if (folder / WEIGHTS).exists() and (folder / CONFIG).exists():
            config = GHNConfig.from_dict(json.loads((folder / CONFIG).read_text()))
        elif (folder / WEIGHTS).exists() and (folder / "trainer.json").exists():  # a training checkpoint
            config = GHNConfig.from_dict(json.loads((folder / "trainer.json").read_text())["model_config"])
        else:
            raise GHNError(f"{folder} is not a GHN checkpoint: it needs {WEIGHTS} and {CONFIG} "
                           "(write one with `mad ghn train --out DIR`)")
        model = GHNModel(config)
        state = load_file(str(folder / WEIGHTS))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise GHNError(f"{folder / WEIGHTS} does not match its config: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
        from .quality import read_record

        try:
            record = read_record(folder)
        except (OSError, ValueError) as e:
            raise GHNError(f"{folder}: {e}") from e
        return cls(model, record, device)

    def save(self, folder: str | Path, record: dict[str, Any] | None = None) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(folder / WEIGHTS))
        (folder / CONFIG).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        if record is not None or self.record:
            from .quality import write_record

            write_record(folder, record if record is not None else self.record)
        return folder

    # ------------------------------------------------------------------ prediction
    def _task(self, task: str):
        from mad.train.objective import TaskSpec

        spec = TaskSpec.of(task)
        if spec.name not in self.config.tasks:
            log.warning("the GHN was not trained on task %r (trained on %s); predictions use only its input "
                        "shape and classes", spec.name, ", ".join(self.config.tasks))
        return spec

    @torch.no_grad()
    def predict_encoded(self, encoded: list[GraphInput], task: str, chunk: int = 8):
        """Predicted parameters (``state-dict name -> tensor``) and pooled embeddings ``(d,)`` of encoded graphs."""
        spec = self._task(task)
        tf = task_features(spec.input_shape, spec.num_outputs, spec.is_lm)
        params, pooled_all = [], []
        for i in range(0, len(encoded), chunk):
            part = encoded[i:i + chunk]
            batch = collate(part).to(self.device)
            ids = self.model.task_ids([spec.name] * len(part)).to(self.device)
            out, pooled, _ = self.model(batch, ids, tf[None].repeat(len(part), 1).to(self.device), penalty=False)
            params.extend(out)
            pooled_all.extend(pooled.cpu())
        return params, pooled_all

    def _norm_head(self, spec) -> int | None:
        """The class count whose logits layer gets its input statistics folded in (a ``head_norm`` GHN on a
        classification task), else ``None``."""
        return spec.num_outputs if self.config.head_norm and not spec.is_lm else None

    def calibrated(self, task: str) -> dict[str, Any] | None:
        """The quality estimator fitted for ``task`` (its ``higher_is_better``, label range...), or ``None``."""
        return (self.record.get("quality") or {}).get("tasks", {}).get(task)

    @torch.no_grad()
    def estimate(self, models: list[ArchGraph | nn.Module], task: str, chunk: int = 16,
                 long: bool = False) -> list[float | None]:
        """The learned quality estimate alone: the metric each model is expected to reach on ``task`` after brief
        training (the record's ``quality.steps`` AdamW steps), from the encoder's pooled embedding (a tree
        estimator: the graph's structure instead, :func:`mad.ghn.quality.tree_rows`) and the model's size, and
        where the task's estimator reads it, the metric of the predicted parameters on a few validation examples
        (:meth:`predicted_metrics`). Tens of milliseconds per graph without that figure, about
        a tenth of a second with it. ``None`` for every model when the estimator was not calibrated on ``task``.
        ``long``: the metric expected after the longer run of the estimator's long-horizon stage instead
        (:meth:`quality`; ``None`` for every model where it has none).

        Raises:
            GHNError: a model that cannot take the task.
        """
        return self.estimates(models, task, chunk)[1 if long else 0]

    @torch.no_grad()
    def estimates(self, models: list[ArchGraph | nn.Module], task: str,
                  chunk: int = 16) -> tuple[list[float | None], list[float | None]]:
        """:meth:`estimate` and :meth:`estimate` with ``long=True`` together, each model decoded and measured once."""
        spec = self._task(task)
        if self.calibrated(spec.name) is None:
            return [None] * len(models), [None] * len(models)
        from .quality import embeddings

        graphs = [self._graph_for(m, spec)[0] for m in models]
        if self.calibrated(spec.name).get("predicted"):  # the parameters are needed: decode once, with the embedding
            params, pooled = self.predict_encoded([encode(g) for g in graphs], spec.name)
            return self._qualities(graphs, pooled, spec.name, params)
        if self.calibrated(spec.name).get("estimator") == "trees":  # reads the structure, not the embedding
            return self._qualities(graphs, [], spec.name)
        return self._qualities(graphs, list(embeddings(self.model, graphs, spec.name, chunk)), spec.name)

    @torch.no_grad()
    def quality(self, graphs: list[ArchGraph], pooled: list[torch.Tensor], task: str,
                params: list[dict[str, torch.Tensor]] | None = None,
                metrics: list[float] | None = None, long: bool = False) -> list[float | None]:
        """The learned estimate of each graph's metric after brief training (``None`` when the estimator was not
        calibrated on ``task``); ``pooled`` are the graphs' pooled embeddings from :meth:`predict_encoded`. An
        estimator that reads the metric of the predicted parameters has it measured here
        (:meth:`predicted_metrics`, as its record says, on ``params`` when the caller has them), unless the caller
        measured it that way already (``metrics``). ``long``: the estimate of the metric after the longer run of
        the estimator's long-horizon stage instead (its ``long.steps`` steps; ``None`` where it has none)."""
        return self._qualities(graphs, pooled, task, params, metrics)[1 if long else 0]

    def _qualities(self, graphs: list[ArchGraph], pooled: list[torch.Tensor], task: str,
                   params: list[dict[str, torch.Tensor]] | None = None,
                   metrics: list[float] | None = None) -> tuple[list[float | None], list[float | None]]:
        """:meth:`quality` after brief training and after the long-horizon stage's run, computed together."""
        from .quality import clip_long, feature_rows, forest_predict, long_rows, to_metric, tree_columns, tree_rows

        est = self.calibrated(task)
        none: list[float | None] = [None] * len(graphs)
        if not est or not graphs:
            return none, none
        reads = est.get("predicted")
        if not reads:
            metrics = None
        elif metrics is None:
            metrics = self.predicted_metrics(graphs, task, params=params, **reads)
        trees = est.get("estimator") == "trees"
        X = tree_rows(graphs, task, metrics) if trees else feature_rows(graphs, pooled, task, metrics)
        width = len(est["columns"]) if trees else len(est["coef"])
        if X.shape[1] != width:
            raise GHNError(f"the quality estimator for {task!r} reads {width} features, but this GHN "
                           f"gives {X.shape[1]}: refit it for this GHN (bench/ghn_calibrate.py --task {task})")
        if trees:
            z = forest_predict(est["forest"], X)
        else:
            z = X @ torch.tensor(est["coef"], dtype=torch.float64) + est["intercept"]
        if est.get("target") == "normal_scores":  # back to the metric, the order kept (see mad.ghn.quality)
            brief = [float(v) for v in to_metric(z, est)]
        else:  # a linear estimate can leave the range it was fitted on for graphs unlike its calibration set: clip it
            hi = est.get("label_max", 1.0 if est["higher_is_better"] else float("inf"))
            brief = [float(v) for v in z.clamp(est.get("label_min", 0.0), hi)]
        stage = est.get("long")
        if not stage:
            return brief, none
        rows = clip_long(long_rows(z, X if trees else tree_rows(graphs, task, metrics), stage["columns"],
                                   tree_columns(metrics is not None)), stage)
        z_long = rows @ torch.tensor(stage["coef"], dtype=torch.float64) + stage["intercept"]
        return brief, [float(v) for v in to_metric(z_long, stage)]

    @torch.no_grad()
    def predicted_metrics(self, graphs: list[ArchGraph], task: str, examples: int = 250, bn_batches: int = 8,
                          split: str = "val", params: list[dict[str, torch.Tensor]] | None = None,
                          modules: list[nn.Module] | None = None) -> list[float]:
        """The metric (accuracy, or bits per character) of each graph's predicted parameters on the first
        ``examples`` examples of ``split``, batch-norm statistics recomputed on the task's first ``bn_batches``
        training batches, whatever a caller of :meth:`predict` asked for: the figure a quality estimator may read
        (NaN for a graph whose prediction cannot run). ``params``: the graphs' predicted parameters, when the caller
        has them (else they are predicted here); ``modules``: the graphs' modules with those parameters and those
        batch-norm statistics already in place (:func:`materialise`), when the caller has built them."""
        from mad.train.data import TaskData

        spec = self._task(task)
        data = TaskData(spec, batch_size=64)
        if modules is None:
            if params is None:
                params, _ = self.predict_encoded([encode(g) for g in graphs], spec.name)
            xs = [data.train_batch(i)[0] for i in range(bn_batches)]
        key = "bpc" if spec.is_lm else "accuracy"
        out = []
        for k, g in enumerate(graphs):
            try:
                module = modules[k] if modules is not None else materialise(
                    g, params[k], xs, device=self.device, norm_head=self._norm_head(spec))[0]
                out.append(float(evaluate(module, spec.name, split, examples, data=data)[key]))
            except Exception as e:  # noqa: BLE001 - the estimate reads a failed prediction as the worst metric
                log.info("predicted parameters of %s do not run on %s: %s", g.name, spec.name, str(e)[:200])
                out.append(float("nan"))
        return out

    def _graph_for(self, model: ArchGraph | nn.Module, spec) -> tuple[ArchGraph, nn.Module | None]:
        """The graph to encode (retargeted if it does not fit) and the module to fill (None: build it)."""
        from mad.train.objective import graph_mismatches

        if isinstance(model, ArchGraph):
            if graph_mismatches(model, spec):
                from mad.data import tasks

                try:
                    return tasks.fit(model, spec.name, **spec.options), None
                except Exception as e:  # noqa: BLE001
                    raise GHNError(f"graph {model.name!r} does not fit task {spec.name!r} and cannot be "
                                   f"retargeted: {str(e).splitlines()[0][:300]}") from e
            return model, None
        if isinstance(model, nn.Module):
            from mad.code2graph.capture import from_module
            from mad.train.data import TaskData

            x = TaskData(spec, batch_size=2).sample(2)[0]
            try:
                g = from_module(model, (x,))
            except Exception as e:  # noqa: BLE001
                raise GHNError(f"cannot capture {type(model).__name__} on task {spec.name!r} inputs "
                               f"{tuple(x.shape)}: {str(e).splitlines()[0][:300]}") from e
            return g, model
        raise GHNError(f"can only predict for an ArchGraph or a torch.nn.Module, got {type(model).__name__}")

    def predict(self, model: ArchGraph | nn.Module, task: str, bn_batches: int = 8, readout: bool = False) -> nn.Module:
        """``model`` with every parameter predicted for ``task``.

        An ``nn.Module`` comes back as the same object with its parameters overwritten; a graph comes back as its
        rebuilt module (retargeted to the task first if it does not fit). Batch-norm running statistics are
        recomputed on ``bn_batches`` training batches of the task. With ``readout``, the output layer is then
        refitted in closed form on those batches (:mod:`mad.ghn.readout`; no gradient steps, but no longer a pure
        prediction). The module is in eval mode; ``module.ghn_info`` holds the share of parameters predicted,
        the readout fit and the seconds taken.
        """
        return self.predict_many([model], task, bn_batches, readout)[0]

    def predict_many(self, models: list[ArchGraph | nn.Module], task: str, bn_batches: int = 8,
                     readout: bool = False) -> list[nn.Module]:
        """:meth:`predict` for several models at once (their graphs go through the GHN in batches)."""
        spec = self._task(task)
        t0 = time.perf_counter()
        return self._predict_pairs([self._graph_for(m, spec) for m in models], spec, bn_batches, readout, t0)

    def _predict_pairs(self, pairs: list[tuple[ArchGraph, nn.Module | None]], spec, bn_batches: int, readout: bool,
                       t0: float, pooled_out: list | None = None) -> list[nn.Module]:
        """The modules of ``pairs`` with predicted parameters; with ``pooled_out`` (a list the graphs' pooled
        embeddings are appended to) the quality estimate is left to the caller (``ghn_info["quality"]`` None)."""
        from mad.train.data import TaskData

        encoded = [encode(g) for g, _ in pairs]
        graphs = [g for g, _ in pairs]
        params, pooled = self.predict_encoded(encoded, spec.name)
        data = TaskData(spec, batch_size=64)
        batches = [data.train_batch(i) for i in range(max(bn_batches, 8 if readout else 0))]
        xs = [x for x, _ in batches[:bn_batches]]
        built, own = [], []  # (module, filled, total) and the seconds each build took
        for (g, mod), p in zip(pairs, params):
            t1 = time.perf_counter()
            built.append(materialise(g, p, xs, mod, self.device, self._norm_head(spec)))
            own.append(time.perf_counter() - t1)
        if pooled_out is None:
            reads = (self.calibrated(spec.name) or {}).get("predicted")
            # the estimator's figure is measured on these modules (before any readout refit) where their batch-norm
            # statistics come from as many batches as it asks for, else on modules of its own
            metrics = (self.predicted_metrics(graphs, spec.name, modules=[m for m, _, _ in built], **reads)
                       if reads and reads["bn_batches"] == bn_batches else None)
            quality, quality_long = self._qualities(graphs, pooled, spec.name, params, metrics=metrics)
        else:
            pooled_out.extend(pooled)
            quality = quality_long = [None] * len(pairs)
        seconds = (time.perf_counter() - t0 - sum(own)) / max(1, len(pairs))
        out = []
        for g, (module, filled, total), q, q_long, t_build in zip(graphs, built, quality, quality_long, own):
            t1 = time.perf_counter()
            fitted = refit_readout(g, module, batches, spec.num_outputs) if readout else None
            module.ghn_info = {"predicted_params": filled, "params": total, "readout": fitted,
                               "predicted_share": filled / total if total else 1.0, "quality": q,
                               "quality_long": q_long,
                               "seconds": seconds + t_build + time.perf_counter() - t1, "graph": g}
            out.append(module)
        return out

    # ------------------------------------------------------------------ scoring
    def score(self, models: ArchGraph | nn.Module | list, task: str, split: str = "val",
              max_examples: int | None = 500, readout: bool = False) -> dict[str, Any] | list[dict[str, Any]]:
        """How good each architecture is on ``task`` without training it: the metric of its predicted parameters
        on ``split`` (accuracy, or bits per character for language modelling), the loss, the GHN's learned quality
        estimate (``quality``: the metric it expects after brief training; ``None`` for tasks it was not calibrated
        on), the estimate after a longer run where the estimator has a long-horizon stage (``quality_long``, else
        ``None``: :meth:`quality`) and the seconds taken. One dict per model (a dict for a single model); in a
        list, a model that cannot take the task gets ``{"name", "task", "error"}`` instead of stopping the others.
        ``readout`` refits the output layer in closed form first (see :meth:`predict`)."""
        single = not isinstance(models, (list, tuple))
        items = [models] if single else list(models)
        spec = self._task(task)
        t0 = time.perf_counter()
        out: list[dict[str, Any] | None] = [None] * len(items)
        good = []
        for k, m in enumerate(items):  # in a list, a model that cannot take the task does not stop the others
            try:
                good.append((k, self._graph_for(m, spec)))
            except GHNError as e:
                if single:
                    raise
                out[k] = {"name": getattr(m, "name", type(m).__name__), "task": task, "error": str(e)}
        scored = self._score([p for _, p in good], spec, split, max_examples, readout, t0)
        for (k, _), s in zip(good, scored):
            out[k] = s
        return out[0] if single else out  # type: ignore[return-value]

    def _score(self, pairs: list, spec, split: str, max_examples: int | None, readout: bool, t0: float) -> list:
        from mad.train.data import TaskData

        task = spec.name
        if not pairs:
            return []
        data = TaskData(spec, batch_size=64)
        reads = (self.calibrated(task) or {}).get("predicted")
        # the figure the estimator reads is the one measured here: measure it once, then estimate
        same = bool(reads) and not readout and reads == {"examples": max_examples, "bn_batches": 8, "split": split}
        pooled: list | None = [] if same else None
        out = []
        for module in self._predict_pairs(pairs, spec, 8, readout, t0, pooled):
            t0 = time.perf_counter()
            figures = evaluate(module, task, split, max_examples, data=data)
            info = module.ghn_info
            out.append({"name": info["graph"].name, "task": task, **figures,
                        "quality": info["quality"], "quality_long": info["quality_long"], "params": info["params"],
                        "predicted_share": info["predicted_share"], "readout": info["readout"],
                        "seconds_predict": info["seconds"], "seconds_eval": time.perf_counter() - t0})
        if same:
            t0 = time.perf_counter()
            key = "bpc" if spec.is_lm else "accuracy"
            quality, quality_long = self._qualities([g for g, _ in pairs], pooled, task, metrics=[s[key] for s in out])
            for s, q, q_long in zip(out, quality, quality_long):
                s["quality"], s["quality_long"] = q, q_long
                s["seconds_eval"] += (time.perf_counter() - t0) / len(out)
        return out


def load(name_or_path: str | Path = "default", device: Any = None) -> GHN:
    """Load a GHN: ``"default"`` (shipped) or a checkpoint folder."""
    return GHN.load(name_or_path, device)
