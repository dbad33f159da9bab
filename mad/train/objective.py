"""What a task asks of a model: its input, its outputs, its loss and metric; and putting a model on it.

:class:`TaskSpec` turns ``tasks.info(name)`` into the training objective:

==================  ===========================  =========================================  ================
task type           model output (logits)        loss                                       metric
==================  ===========================  =========================================  ================
classification      ``(N, num_classes)``         cross-entropy                              accuracy
language_modeling   ``(N, T, vocab_size)``       next-token cross-entropy (mean per token)  bits per char
==================  ===========================  =========================================  ================

:func:`prepare_model` puts a graph or module on a task: a graph is shape-checked against the task
(input shape without batch, input dtype, output classes / vocabulary), retargeted with
``mad.data.tasks.fit`` when it does not fit, and built with
``g.to_module()``; a module is used as it is. Both are then run on one small task batch, and any
mismatch raises :class:`TrainError` saying what differs and what to do.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mad.data import tasks
from mad.graph import ArchGraph

__all__ = ["TaskSpec", "TrainError", "Prepared", "logits_of", "prepare_model", "graph_mismatches", "count_params",
           "module_device", "sees_future"]

log = logging.getLogger("mad.train")


class TrainError(ValueError):
    """A model does not fit a task, or a training option is not valid; the message says what to do."""


@dataclass(frozen=True)
class TaskSpec:
    """The training objective of one task, read from ``tasks.info``.

    Args:
        name: task name (one of ``tasks.names()``).
        task_type: ``"classification"`` or ``"language_modeling"``.
        input_shape: one input without the batch dim, e.g. ``(1, 28, 28)`` or ``(64,)``.
        input_dtype: ``torch.float32`` (images) or ``torch.int64`` (tokens).
        num_outputs: classes (classification) or vocabulary size (language modelling).
        options: task options passed to ``tasks.load`` (``seq_len``, ``text_file``, ...).
        data_dir: folder of user data (``cifar10``), or ``None``.

    Shapes:
        :meth:`loss` takes logits ``(N, C)`` and labels ``(N,)``, or logits ``(N, T, V)`` and
        targets ``(N, T)``; :meth:`sums` returns ``(loss summed over items, correct, items)``.

    Example:
        >>> spec = TaskSpec.of("digits")
        >>> spec.num_outputs, spec.metric
        (10, 'accuracy')
    """

    name: str
    task_type: str
    input_shape: tuple[int, ...]
    input_dtype: torch.dtype
    num_outputs: int
    options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None

    @classmethod
    def of(cls, task: str, options: dict[str, Any] | None = None) -> "TaskSpec":
        """The spec of task ``task``; ``options`` may hold ``data_dir`` besides the task's own options."""
        opts = dict(options or {})
        data_dir = opts.pop("data_dir", None)
        try:
            info = tasks.info(task, **opts)
        except tasks.TaskError as e:
            raise TrainError(str(e)) from None
        lm = info.task_type == "language_modeling"
        n_out = info.vocab_size if lm else info.num_classes
        return cls(info.name, info.task_type, tuple(info.input_shape), info.input_dtype, int(n_out), opts,
                   None if data_dir is None else str(data_dir))

    @property
    def is_lm(self) -> bool:
        return self.task_type == "language_modeling"

    @property
    def metric(self) -> str:
        """``"accuracy"`` (higher is better) or ``"bits_per_char"`` (lower is better)."""
        return "bits_per_char" if self.is_lm else "accuracy"

    def expected_output(self, n: int) -> tuple[int, ...]:
        """The logits shape for ``n`` inputs: ``(n, C)`` or ``(n, T, V)``."""
        return (n, self.input_shape[0], self.num_outputs) if self.is_lm else (n, self.num_outputs)

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (per example, or per token for language modelling), computed in float32."""
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def sums(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``[loss summed over items, correct predictions, items]`` (items: examples or tokens), float64."""
        flat, target = logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1)
        total = F.cross_entropy(flat, target, reduction="sum")
        correct = (flat.argmax(-1) == target).sum()
        return torch.stack([total.double(), correct.double(), torch.tensor(target.numel(), dtype=torch.float64,
                                                                           device=total.device)])

    def figures(self, sums: torch.Tensor) -> dict[str, float]:
        """Mean loss and the metric from :meth:`sums`: ``{"loss", "accuracy"}`` or ``{"loss", "bpc"}``."""
        total, correct, n = (float(v) for v in sums.cpu())
        loss = total / max(n, 1.0)
        if self.is_lm:
            return {"loss": loss, "bpc": loss / math.log(2)}
        return {"loss": loss, "accuracy": correct / max(n, 1.0)}

    def describe_input(self) -> str:
        kind = "token ids" if self.is_lm else "float"
        return f"{self.input_shape} {kind}"


def logits_of(out: Any) -> torch.Tensor:
    """The logits among a model's outputs: the tensor itself, ``out["logits"]`` (else the first value) of a
    dict, or the first element of a tuple/list."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) or hasattr(out, "keys"):
        if "logits" in out:
            return out["logits"]
        out = list(out.values())
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TrainError(f"model returned {type(out).__name__}; return a logits tensor (or a dict with 'logits')")


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter (CPU for a module without parameters)."""
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def count_params(module: nn.Module) -> int:
    """Trainable and frozen parameters of ``module``, shared tensors counted once."""
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------- graph checks
def _output_node(g: ArchGraph) -> str:
    if g.output_kind == "dict" and g.output_keys and "logits" in g.output_keys:
        return g.outputs[g.output_keys.index("logits")]
    return g.outputs[0]


def _dims_text(dims: list | tuple) -> str:
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def graph_mismatches(g: ArchGraph, spec: TaskSpec) -> list[str]:
    """What keeps graph ``g`` from training on the task, as phrases; empty when it fits.

    Symbolic dims (``"T"``) match any size; the batch dim must be symbolic so the graph trains at any batch size.
    """
    if not g.inputs:
        return ["graph has no inputs"]
    out: list[str] = []
    if len(g.inputs) > 1:
        out.append(f"graph takes {len(g.inputs)} inputs ({', '.join(s.name for s in g.inputs)}), the task feeds one")
    s = g.inputs[0]
    shape = list(s.shape)
    if not shape:
        return out + [f"graph input {s.name!r} is a scalar"]
    rest = shape[1:]
    if len(rest) != len(spec.input_shape) or any(isinstance(d, int) and d != w for d, w in zip(rest, spec.input_shape)):
        out.append(f"expected input {_dims_text(spec.input_shape)}, graph takes {_dims_text(rest)}")
    if not isinstance(shape[0], str):
        out.append(f"graph input {s.name!r} has a fixed batch size {shape[0]} (capture it with a symbolic batch, "
                   "as mad.code2graph.from_module does)")
    floating = s.dtype.startswith(("float", "bfloat"))
    if spec.is_lm and floating:
        out.append(f"the task feeds token ids (int64), graph input {s.name!r} is {s.dtype}")
    if not spec.is_lm and not floating:
        out.append(f"the task feeds float images, graph input {s.name!r} is {s.dtype}")
    if not g.outputs:
        return out + ["graph has no outputs"]
    node = g.nodes[_output_node(g)]
    oshape = node.shape
    if oshape is None:
        try:
            g.infer()
            oshape = node.shape
        except Exception as e:  # noqa: BLE001 - reported as a mismatch below
            return out + [f"its output shape cannot be inferred ({type(e).__name__}: {str(e).splitlines()[0][:200]})"]
    if not isinstance(oshape, list) or (oshape and isinstance(oshape[0], list)):
        return out + [f"graph output {node.id!r} is not one tensor (shape {oshape})"]
    rank = 3 if spec.is_lm else 2
    what = "vocabulary" if spec.is_lm else "classes"
    if len(oshape) != rank:
        want = "(B, T, vocab)" if spec.is_lm else "(B, classes)"
        out.append(f"output should be {want} logits, graph outputs {_dims_text(oshape)}")
    elif oshape[-1] != spec.num_outputs:
        out.append(f"output has {oshape[-1]} {what}, task has {spec.num_outputs}")
    return out


# ---------------------------------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    """A model ready for a task: the module, the graph it came from (``None`` for a module) and a name."""

    module: nn.Module
    graph: ArchGraph | None
    name: str
    retargeted: bool = False


def _advice(spec: TaskSpec, kind: str = "graph") -> str:
    need = (f"input {_dims_text(spec.input_shape)} {'token ids' if spec.is_lm else 'floats'}, "
            + (f"vocabulary of {spec.num_outputs}" if spec.is_lm else f"{spec.num_outputs} classes"))
    if kind != "graph":
        return f"change the module to take task {spec.name!r} batches ({need}), or capture it and train the graph"
    return f"retarget it with mad.data.tasks.fit(graph, {spec.name!r}) or build the model for the task ({need})"


def prepare_model(model: ArchGraph | nn.Module, spec: TaskSpec, sample: tuple[torch.Tensor, torch.Tensor],
                  seed: int | None = None) -> Prepared:
    """Check ``model`` against the task (retargeting a graph if possible) and build the module.

    Args:
        model: an :class:`ArchGraph` (retargeted with ``mad.data.tasks.fit`` if it does not fit; built with
            ``g.to_module()`` after ``torch.manual_seed(seed)``) or an
            ``nn.Module`` (used as it is, not copied).
        spec: the task.
        sample: a few task examples ``(x, y)`` for the dry run.
        seed: seed of the parameter init of a graph; ``None`` leaves the global RNG as it is.

    Raises:
        TrainError: the model does not fit the task, and the message says how.
    """
    if isinstance(model, ArchGraph):
        g, retargeted = model, False
        problems = graph_mismatches(g, spec)
        if problems:
            log.info("graph %s does not fit task %s (%s); retargeting", g.name, spec.name, "; ".join(problems))
            try:
                g = tasks.fit(g, spec.name, **spec.options)
            except Exception as e:  # noqa: BLE001 - reported with the mismatch
                raise TrainError(f"graph {model.name!r} does not fit task {spec.name!r}: {'; '.join(problems)}; "
                                 f"retargeting failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from e
            retargeted = True
            problems = graph_mismatches(g, spec)
        if problems:
            raise TrainError(f"graph {g.name!r} does not fit task {spec.name!r}: {'; '.join(problems)}; "
                             f"{_advice(spec)}")
        if seed is not None:
            torch.manual_seed(seed)
        prepared = Prepared(g.to_module(), g, g.name, retargeted)
    elif isinstance(model, nn.Module):
        prepared = Prepared(model, None, type(model).__name__)
    else:
        raise TrainError(f"can only train an ArchGraph or a torch.nn.Module, got {type(model).__name__}")
    dry_run(prepared, spec, sample)
    return prepared


def dry_run(prepared: Prepared, spec: TaskSpec, sample: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Run the model once (eval mode, no grad) on ``sample`` and check the logits shape."""
    m = prepared.module
    kind = "graph" if prepared.graph is not None else "module"
    x = sample[0].to(module_device(m))
    was_training = m.training
    m.eval()
    try:
        with torch.no_grad():
            logits = logits_of(m(x))
    except TrainError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure here is a mismatch with the task
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise TrainError(f"{kind} {prepared.name!r} fails on task {spec.name!r} inputs {tuple(x.shape)} "
                         f"{x.dtype}: {type(e).__name__}: {first}; {_advice(spec, kind)}") from e
    finally:
        m.train(was_training)
    want = spec.expected_output(x.shape[0])
    if tuple(logits.shape) != want:
        what = "vocabulary" if spec.is_lm else "classes"
        raise TrainError(f"{kind} {prepared.name!r} outputs {tuple(logits.shape)} on task {spec.name!r} inputs "
                         f"{tuple(x.shape)}, expected {want} logits ({spec.num_outputs} {what}); "
                         f"{_advice(spec, kind)}")
    if not logits.dtype.is_floating_point:
        raise TrainError(f"{kind} {prepared.name!r} outputs {logits.dtype}, expected float logits")


def sees_future(model: nn.Module, x: torch.Tensor, vocab_size: int, atol: float = 1e-5) -> bool:
    """Whether a token model's logits at a position depend on later tokens (a bidirectional encoder).

    Next-token training of such a model reads the answer from its input, so its loss and bits per character
    mean nothing. The check changes the last token of ``x`` (``(N, T)`` token ids, ``T >= 2``) and compares
    the logits of the earlier positions (eval mode, no grad).
    """
    if x.dim() != 2 or x.shape[1] < 2:
        raise TrainError(f"sees_future needs (N, T >= 2) token ids, got {tuple(x.shape)}")
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % vocab_size
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            a, b = logits_of(model(x)), logits_of(model(y))
    finally:
        model.train(was_training)
    return not torch.allclose(a[:, :-1].float(), b[:, :-1].float(), atol=atol, rtol=1e-4)
