"""mad.train: train any graph or module on any task (``fit``, on accelerate) and score untrained ones
(zero-cost ``proxies``).

Example:
    >>> from mad.train import fit, proxies
    >>> r = fit(graph, "digits", steps=300)
    >>> r.val_accuracy, r.steps_per_s
    >>> proxies.compute(graph, "digits")   # {"num_params": ..., "flops": ..., "synflow": ..., ...}
"""

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .fit import fit, make_accelerator
from .objective import TaskSpec, TrainError, graph_mismatches, logits_of, prepare_model, sees_future
from .result import FitResult, TrainInterrupted

__all__ = [
    "Checkpoint",
    "FitResult",
    "TaskSpec",
    "TrainError",
    "TrainInterrupted",
    "fit",
    "graph_mismatches",
    "load_checkpoint",
    "logits_of",
    "make_accelerator",
    "prepare_model",
    "proxies",
    "save_checkpoint",
    "sees_future",
]


def __getattr__(name: str):
    if name == "proxies":
        import importlib

        return importlib.import_module(".proxies", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
