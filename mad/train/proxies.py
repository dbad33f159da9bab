"""Zero-cost proxies: cheap scores of an untrained graph or module on one batch of a task.

Every proxy takes ``(graph_or_module, task)`` and works the same on image classifiers and on token language
models. A graph is checked against the task (and retargeted with ``mad.data.tasks.fit`` if needed), exactly as
:func:`mad.train.fit` does, then built with ``g.to_module()`` after ``torch.manual_seed(seed)``; a module is
deep-copied, so the caller's module is never changed. Each proxy gets a fresh model, so results do not depend
on the order in which they run, and the same ``seed`` gives the same numbers.

==========  ==========================================================================================
proxy       definition
==========  ==========================================================================================
num_params  parameter count (the graph's own ``num_params`` for a graph).
flops       FLOPs of one forward pass on one example (batch 1, and the task's sequence length), from
            ``g.infer()``; a module is captured with ``mad.code2graph.from_module`` first (``None``
            when capture fails).
synflow     SynFlow (Tanaka et al. 2020): parameters replaced by their absolute values, float64, eval
            mode, one all-ones input (token models: the first example's tokens); the score is
            ``sum |theta * dR/dtheta|`` for ``R = sum(output)``. Data-free for image tasks.
naswot      NASWOT (Mellor et al. 2021): for a batch of N inputs in eval mode, each example's binary code
            is the sign pattern (``> 0``) of the inputs of every ReLU-like activation (relu, relu6 /
            hardtanh, leaky_relu, prelu, elu, selu, celu, gelu, silu, mish, hardswish, softplus); the score
            is ``log|det K|`` with ``K_ij`` = number of units where examples i and j agree. A model with no
            such activation (linear or attention-only) uses the sign pattern of the features entering its
            last matrix multiply (the head's input). ``-inf`` when two examples share a code.
grad_norm   sum over parameter tensors of the L2 norm of the gradient of the task loss on one batch
            (train mode; dropout seeded), as in Abdelfattah et al. 2021.
==========  ==========================================================================================

Example:
    >>> scores = compute(graph, "digits", batch_size=64, seed=0)
    >>> sorted(scores)
    ['flops', 'grad_norm', 'naswot', 'num_params', 'synflow']
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from mad.graph import ArchGraph

from .data import TaskData
from .objective import TaskSpec, TrainError, count_params, logits_of, module_device, prepare_model

__all__ = ["PROXIES", "ProxyInput", "register_proxy", "compute", "num_params", "flops", "synflow", "naswot",
           "grad_norm", "naswot_score", "screen", "ACTIVATIONS"]

log = logging.getLogger("mad.train")

PROXIES: dict[str, Callable[["ProxyInput"], float | int | None]] = {}

aten = torch.ops.aten
ACTIVATIONS = {getattr(aten, n) for n in (
    "relu", "relu_", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "_prelu_kernel", "prelu", "elu", "elu_",
    "selu", "selu_", "celu", "celu_", "gelu", "gelu_", "silu", "silu_", "mish", "mish_", "hardswish", "hardswish_",
    "softplus") if hasattr(aten, n)}
_MATMULS = {aten.mm: 0, aten.addmm: 1, aten.bmm: 0, aten.matmul: 0}  # op -> position of the features argument


def register_proxy(name: str):
    """Register ``fn(ProxyInput) -> number`` as proxy ``name`` (used by :func:`compute`)."""
    def wrap(fn):
        PROXIES[name] = fn
        return fn
    return wrap


@dataclass
class ProxyInput:
    """What a proxy sees: the (checked) graph or module, the task and one batch.

    Args:
        graph: the graph (after retargeting), or ``None`` for a module.
        module: the module (the caller's; proxies work on :meth:`fresh` copies).
        spec: the task.
        x, y: one batch of the training split, ``(N, *input_shape)`` and labels/targets.
        seed: seed of the parameter init of graphs and of dropout.
    """

    graph: ArchGraph | None
    module: nn.Module
    spec: TaskSpec
    x: torch.Tensor
    y: torch.Tensor
    seed: int = 0

    @classmethod
    def make(cls, model: ArchGraph | nn.Module, task: str, batch_size: int = 64, seed: int = 0,
             task_options: dict[str, Any] | None = None) -> "ProxyInput":
        spec = TaskSpec.of(task, task_options)
        data = TaskData(spec, seed=seed, batch_size=1)
        x, y = data.random_batch(batch_size, seed)
        prepared = prepare_model(model, spec, (x[:2], y[:2]), seed=seed)
        return cls(prepared.graph, prepared.module, spec, x, y, seed)

    def fresh(self) -> nn.Module:
        """A new model: the graph built again with ``torch.manual_seed(seed)``, or a deep copy of the module."""
        if self.graph is not None:
            torch.manual_seed(self.seed)
            return self.graph.to_module()
        return copy.deepcopy(self.module)


# ---------------------------------------------------------------------------------------------- proxies
@register_proxy("num_params")
def _num_params(inp: ProxyInput) -> int:
    return inp.graph.num_params if inp.graph is not None else count_params(inp.module)


@register_proxy("flops")
def _flops(inp: ProxyInput) -> int | None:
    g = inp.graph
    if g is None:
        from mad.code2graph import from_module

        try:
            g = from_module(copy.deepcopy(inp.module).cpu(), (inp.x[:2].cpu(),))
        except Exception as e:  # noqa: BLE001 - capture is best effort for a module
            log.warning("flops: cannot capture %s (%s: %s)", type(inp.module).__name__, type(e).__name__,
                        str(e).splitlines()[0][:200] if str(e) else "")
            return None
    g = g.copy()
    batch_sym = g.inputs[0].shape[0] if g.inputs and g.inputs[0].shape else None
    if isinstance(batch_sym, str) and batch_sym.isidentifier():
        g.dims[batch_sym] = 1
    if inp.spec.is_lm and len(g.inputs[0].shape) > 1:
        seq = g.inputs[0].shape[1]
        if isinstance(seq, str) and seq.isidentifier():
            g.dims[seq] = inp.spec.input_shape[0]
    flops_b = g.infer().flops
    return int(flops_b if isinstance(batch_sym, str) else flops_b / max(1, int(batch_sym or 1)))


@register_proxy("synflow")
def _synflow(inp: ProxyInput) -> float:
    m = inp.fresh()
    m.eval()
    try:
        m64 = m.double()
        return _synflow_score(m64, inp, torch.float64)
    except (RuntimeError, TypeError) as e:  # an op without float64 support: stay in float32
        log.info("synflow in float64 failed (%s); using float32", str(e).splitlines()[0][:120] if str(e) else e)
        return _synflow_score(inp.fresh().eval(), inp, torch.float32)


def _synflow_score(m: nn.Module, inp: ProxyInput, dtype: torch.dtype) -> float:
    dev = module_device(m)
    with torch.no_grad():
        for p in m.parameters():
            p.abs_()
    m.zero_grad(set_to_none=True)
    if inp.spec.is_lm:
        x = inp.x[:1].to(dev)
    else:
        x = torch.ones((1, *inp.spec.input_shape), dtype=dtype, device=dev)
    logits_of(m(x)).sum().backward()
    total = sum(float((p.grad.double() * p.detach().double()).abs().sum())
                for p in m.parameters() if p.grad is not None)
    return float(total)


class _SignRecorder(TorchDispatchMode):
    """Records ``input > 0`` of activation ops, and the features entering the last matrix multiply."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.kernel: torch.Tensor | None = None
        self.units = 0
        self.last_features: torch.Tensor | None = None

    def add(self, t: torch.Tensor) -> None:
        if not isinstance(t, torch.Tensor) or not t.dtype.is_floating_point or t.numel() % self.n or t.numel() == 0:
            return
        c = (t.detach() > 0).reshape(self.n, -1).double()
        k = c @ c.T + (1 - c) @ (1 - c).T
        self.kernel = k if self.kernel is None else self.kernel + k
        self.units += c.shape[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = getattr(func, "overloadpacket", None)
        if packet in ACTIVATIONS and args:
            self.add(args[0])
        elif packet in _MATMULS and len(args) > _MATMULS[packet]:
            self.last_features = args[_MATMULS[packet]]
        return func(*args, **kwargs)


def naswot_score(model: nn.Module, x: torch.Tensor) -> float:
    """NASWOT ``log|det K|`` of ``model`` on the batch ``x`` (eval mode, no grad); see the module docstring."""
    rec = _SignRecorder(x.shape[0])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), rec:
            model(x)
    finally:
        model.train(was_training)
    if rec.kernel is None:
        if rec.last_features is None:
            raise TrainError(f"naswot: {type(model).__name__} has neither an activation nor a matrix multiply to "
                             "read binary codes from")
        rec.add(rec.last_features)
    if rec.kernel is None:
        raise TrainError("naswot: no activation holds a whole number of features per example")
    sign, logdet = torch.linalg.slogdet(rec.kernel)
    return float(logdet) if float(sign) > 0 else -math.inf


@register_proxy("naswot")
def _naswot(inp: ProxyInput) -> float:
    m = inp.fresh()
    return naswot_score(m, inp.x.to(module_device(m)))


@register_proxy("grad_norm")
def _grad_norm(inp: ProxyInput) -> float:
    m = inp.fresh()
    m.train()
    dev = module_device(m)
    torch.manual_seed(inp.seed)
    m.zero_grad(set_to_none=True)
    inp.spec.loss(logits_of(m(inp.x.to(dev))), inp.y.to(dev)).backward()
    return float(sum(float(p.grad.double().norm()) for p in m.parameters() if p.grad is not None))


# ---------------------------------------------------------------------------------------------- public API
def compute(model: ArchGraph | nn.Module, task: str, names: list[str] | None = None, batch_size: int = 64,
            seed: int = 0, task_options: dict[str, Any] | None = None) -> dict[str, float | int | None]:
    """Proxies ``names`` (default: all of :data:`PROXIES`) of ``model`` on one batch of ``task``.

    Args:
        model: a graph or module that fits the task (see :func:`mad.train.fit`).
        task: a task name.
        names: proxies to compute, in order; unknown names raise :class:`TrainError`.
        batch_size: examples in the batch (naswot's N, grad_norm's batch); at most the training split's size.
        seed: seeds the batch choice, the parameter init of graphs and dropout.
        task_options: options of the task.

    Returns:
        ``{name: value}``; ``flops`` may be ``None`` (module that cannot be captured), ``naswot`` ``-inf``.
    """
    names = list(PROXIES) if names is None else list(names)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise TrainError(f"unknown proxies {', '.join(unknown)}; known: {', '.join(PROXIES)}")
    inp = ProxyInput.make(model, task, batch_size, seed, task_options)
    return {n: PROXIES[n](inp) for n in names}


def _one(name: str):
    def proxy(model: ArchGraph | nn.Module, task: str, batch_size: int = 64, seed: int = 0,
              task_options: dict[str, Any] | None = None):
        return compute(model, task, [name], batch_size, seed, task_options)[name]

    proxy.__name__ = name
    proxy.__doc__ = f"The ``{name}`` proxy of a graph or module on one batch of ``task`` (see the module docstring)."
    return proxy


synflow = _one("synflow")
naswot = _one("naswot")
grad_norm = _one("grad_norm")
flops = _one("flops")


def screen(g: ArchGraph, task: str) -> tuple[ArchGraph | None, float | None, str]:
    """Put ``g`` on ``task`` and measure it: ``(retargeted graph, MFLOPs per example, "")``, or ``(graph or None,
    None, reason it cannot be used)``. A token model whose logits depend on later tokens (a bidirectional
    encoder) cannot serve as a language model: next-token training would let it copy the answer from its input.
    """
    from mad.data import tasks

    from .objective import sees_future

    try:
        fitted = tasks.fit(g, task)
        info = tasks.info(task)
        if info.task_type == "language_modeling":
            x = torch.randint(0, info.vocab_size, (2, info.input_shape[0]), generator=torch.Generator().manual_seed(0))
            if sees_future(fitted.to_module(), x, info.vocab_size):
                return fitted, None, "sees later tokens"
        return fitted, flops(fitted, task, batch_size=2) / 1e6, ""
    except Exception as e:  # noqa: BLE001 - a graph that cannot take the task is a data point
        return None, None, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


def num_params(model: ArchGraph | nn.Module, task: str | None = None, **kwargs: Any) -> int:
    """Parameter count: ``g.num_params`` for a graph, unique parameters for a module (``task`` is not needed)."""
    if task is None:
        return model.num_params if isinstance(model, ArchGraph) else count_params(model)
    return compute(model, task, ["num_params"], **kwargs)["num_params"]
