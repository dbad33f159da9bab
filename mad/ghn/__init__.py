"""Graph hypernetwork: predict every parameter of an unseen architecture for a task, and score architectures
without training them.

    >>> import mad.ghn
    >>> ghn = mad.ghn.load("default")
    >>> module = ghn.predict(graph, task="mnist5k")
    >>> ghn.score(graph, task="mnist5k")["accuracy"]

See :mod:`mad.ghn.model` for the network, :mod:`mad.ghn.train` for training and ``bench/ghn_eval.py`` for the
figures.
"""

from .api import DEFAULT_DIR, GHN, GHNError, evaluate, load
from .encode import GraphInput, encode, param_slots
from .model import GHNConfig, GHNModel

__all__ = ["DEFAULT_DIR", "GHN", "GHNConfig", "GHNError", "GHNModel", "GraphInput", "encode", "evaluate", "load",
           "param_slots", "train", "train_config"]


def train(*args, **kwargs):
    """See :func:`mad.ghn.train.train`."""
    from .train import train as _train

    return _train(*args, **kwargs)


def train_config(**kwargs):
    """A :class:`mad.ghn.train.TrainConfig` (the options of a GHN training run)."""
    from .train import TrainConfig

    return TrainConfig(**kwargs)
