"""A closed-form readout on top of predicted parameters: the output layer refitted by ridge regression.

``GHN.predict(..., readout=True)`` keeps every predicted parameter except the final ``linear`` layer's, which is
replaced by the ridge-regression solution from the features the predicted network computes on a few labelled
training batches of the task (one-hot targets, then one temperature chosen to minimise the cross-entropy on
those batches). No gradient step is taken; it costs one forward pass per batch and a ``d x d`` solve. Scores
with it are reported separately from pure predictions.

The logits layer's input is also what a GHN trained with ``head_norm`` standardizes (:func:`standardize` over the
batch in training; :func:`fold_head_norm` folds its statistics on the batch-norm batches into the layer at
prediction, reading no labels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from mad.graph import ArchGraph

__all__ = ["readout_layer", "readout_weight_name", "fit_readout", "refit_readout", "ridge", "apply_ridge",
           "loo_ridge_error", "standardize", "fold_head_norm"]

_PASS = {"reshape", "view", "flatten", "contiguous", "dropout", "identity", "clone", "to", "type_as", "getitem"}


def readout_layer(g: ArchGraph, module: nn.Module, num_outputs: int) -> tuple[nn.Linear | None, str]:
    """The ``nn.Linear`` that produces the logits (through reshapes and dropout only), or ``(None, why not)``."""
    if not g.outputs:
        return None, "graph has no outputs"
    nid = g.outputs[0]
    while g.nodes[nid].op in _PASS and len(g.predecessors(nid)) >= 1:
        nid = g.predecessors(nid)[0]
    node = g.nodes[nid]
    if node.op != "linear" or "weight" not in node.params or node.params["weight"][0] != num_outputs:
        return None, f"the logits come from {node.op!r}, not a linear layer with {num_outputs} outputs"
    fqn = node.param_name("weight")
    prefix = fqn.rpartition(".")[0]
    try:
        layer = module.get_submodule(prefix)
    except AttributeError:
        return None, f"{prefix!r} is not a submodule"
    if not isinstance(layer, nn.Linear):
        return None, f"{prefix!r} is a {type(layer).__name__}, not nn.Linear"
    shared = sum(p is layer.weight for _, p in module.named_parameters(remove_duplicate=False))
    if shared > 1:
        return None, "the output weight is tied to another parameter (e.g. the token embedding)"
    return layer, ""


def readout_weight_name(g: ArchGraph, module: nn.Module, num_outputs: int) -> str | None:
    """The state-dict name of the logits layer's weight (:func:`readout_layer`), or ``None`` when there is none."""
    layer, _ = readout_layer(g, module, num_outputs)
    if layer is None:
        return None
    return next((n for n, p in module.named_parameters() if p is layer.weight), None)


class _Inputs(TorchFunctionMode):
    """Records the input of every ``linear`` call with weight ``w`` (module or functional call alike); with
    ``standardize``, that input is first standardized over the batch (:func:`standardize`), as the GHN's
    ``head_norm`` trains its output layers."""

    def __init__(self, w: torch.Tensor, detach: bool = True, standardize: bool = False):
        super().__init__()
        self.w, self.detach, self.standardize, self.feats = w, detach, standardize, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        w = args[1] if len(args) > 1 else kwargs.get("weight")
        if w is self.w and isinstance(args[0], torch.Tensor):
            x = args[0]
            if self.standardize:
                bias = args[2] if len(args) > 2 else kwargs.get("bias")
                x = standardize(x, center=bias is not None)
                args = (x, *args[1:])
            x = x.detach() if self.detach else x
            self.feats.append(x.reshape(-1, x.shape[-1]))
        return func(*args, **kwargs)


HEAD_EPS = 1e-5  # added to the variance, as batch norm does


def standardize(x: torch.Tensor, center: bool = True) -> torch.Tensor:
    """``x`` ``(..., d)`` with each feature divided by its standard deviation over all the leading dims (and its
    mean subtracted first with ``center``; without a bias an output layer cannot undo a shift)."""
    mu, sd = _moments(x.reshape(-1, x.shape[-1]))
    return ((x - mu) if center else x) / sd


def _moments(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and deviation of ``(n, d)`` rows, as :func:`standardize` and :func:`fold_head_norm` use them
    (the population variance plus :data:`HEAD_EPS`)."""
    return flat.mean(0), (flat.var(0, unbiased=False) + HEAD_EPS).sqrt()


@torch.no_grad()
def fold_head_norm(g: ArchGraph, module: nn.Module, inputs: list[torch.Tensor], num_outputs: int) -> bool:
    """Fold the standardization of the logits layer's input (:func:`standardize`, statistics over ``inputs``, with
    ``module`` as it is: batch-norm statistics already recomputed) into that layer's weight and bias, so the module
    computes what a GHN trained with ``head_norm`` predicted its output layer for. No labels are read. Returns
    whether there was such a layer."""
    from mad.train.objective import module_device

    layer, _ = readout_layer(g, module, num_outputs)
    if layer is None or not inputs:
        return False
    dev = module_device(module)
    feats = _head_inputs(module, layer, [x.to(dev) for x in inputs])
    if not feats:
        return False
    mu, sd = _moments(torch.cat(feats).double())
    W = layer.weight.double() / sd
    if layer.bias is not None:
        layer.bias.copy_((layer.bias.double() - W @ mu).to(layer.bias))
    layer.weight.copy_(W.to(layer.weight))
    return True


@torch.no_grad()
def _head_inputs(module: nn.Module, layer: nn.Linear, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The inputs ``layer`` receives, ``(n, d)`` per call, while ``module`` (in eval mode) runs on ``inputs``."""
    grab = _Inputs(layer.weight)
    was = module.training
    module.eval()
    try:
        with grab:
            for x in inputs:
                module(x)
    finally:
        module.train(was)
    return grab.feats


def ridge(X: torch.Tensor, y: torch.Tensor, num_outputs: int, bias: bool, strength: float = 1e-2) -> torch.Tensor:
    """Ridge regression of one-hot ``y`` on features ``X`` (``(n, d)``): ``(d [+1], num_outputs)``, differentiable.
    The penalty is ``strength`` times the mean diagonal of ``X^T X``."""
    if bias:
        X = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)], 1)
    Y = F.one_hot(y, num_outputs).to(X.dtype)
    A = X.T @ X
    lam = strength * A.diagonal().mean().detach().clamp(min=1e-12)
    return torch.linalg.solve(A + lam * torch.eye(A.shape[0], dtype=A.dtype, device=A.device), X.T @ Y)


def loo_ridge_error(X: torch.Tensor, y: torch.Tensor, num_outputs: int, strength: float = 1.0) -> torch.Tensor:
    """Mean squared leave-one-out error of ridge regression of one-hot ``y`` on features ``X`` (``(n, d)``, with a
    free intercept), differentiable in ``X``: how well a linear output layer fitted in closed form to the other
    ``n - 1`` examples predicts each one. Computed in the dual (an ``n x n`` solve, cheap for a training batch), with
    the penalty ``strength`` times the mean squared norm of the centered rows; chance is about ``1 - 1/classes``."""
    X = X.reshape(-1, X.shape[-1]).double()
    n = X.shape[0]
    X = X - X.mean(0, keepdim=True)
    Y = F.one_hot(y.reshape(-1), num_outputs).to(X.dtype)
    Y = Y - Y.mean(0, keepdim=True)
    K = X @ X.T
    lam = strength * K.diagonal().mean().detach().clamp(min=1e-12)
    H = torch.linalg.solve(K + lam * torch.eye(n, dtype=X.dtype, device=X.device), K)  # hat matrix (symmetric)
    resid = (Y - H @ Y) / (1 - H.diagonal()).clamp(min=1e-3)[:, None]
    return resid.pow(2).sum(1).mean().float()


def apply_ridge(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Scores of features ``X`` under a :func:`ridge` solution (with or without its bias row)."""
    return X @ W[:X.shape[1]] + (W[X.shape[1]] if W.shape[0] > X.shape[1] else 0.0)


@torch.no_grad()
def fit_readout(module: nn.Module, layer: nn.Linear, batches: list[tuple[torch.Tensor, torch.Tensor]],
                num_outputs: int, strength: float = 1e-2) -> dict[str, float]:
    """Refit ``layer`` (inside ``module``) on ``batches`` of (inputs, labels); returns the fit's figures."""
    feats = _head_inputs(module, layer, [x for x, _ in batches])
    if len(feats) != len(batches):
        raise RuntimeError(f"the output layer ran {len(feats)} times on {len(batches)} batches")
    X = torch.cat(feats).double()
    y = torch.cat([t.reshape(-1) for _, t in batches]).to(X.device)
    W = ridge(X, y, num_outputs, layer.bias is not None, strength)
    scores = apply_ridge(X, W)
    best = (float("inf"), 1.0)
    for s in torch.logspace(0, 3, 25).tolist():
        ce = F.cross_entropy((s * scores).float(), y).item()
        best = min(best, (ce, s))
    ce, s = best
    d = layer.weight.shape[1]
    layer.weight.copy_((s * W[:d]).T.to(layer.weight))
    if layer.bias is not None:
        layer.bias.copy_((s * W[d]).to(layer.bias))
    return {"fit_loss": ce, "temperature": s, "examples": int(y.numel())}


def refit_readout(g: ArchGraph, module: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                  num_outputs: int) -> dict[str, float | str]:
    """Find the logits layer of ``module`` (built from ``g``) and refit it on ``batches`` (moved to the module's
    device); ``{"skipped": why}`` when there is no separate linear output layer."""
    from mad.train.objective import module_device

    layer, why = readout_layer(g, module, num_outputs)
    if layer is None:
        return {"skipped": why}
    dev = module_device(module)
    return fit_readout(module, layer, [(x.to(dev), y.to(dev)) for x, y in batches], num_outputs)
