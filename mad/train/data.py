"""Task data for training: in-memory splits and a deterministic, resumable batch sampler.

The batch of step ``s`` is a function of ``(seed, s)`` alone: epoch ``e = s // steps_per_epoch`` draws one
permutation of the training split from ``torch.Generator().manual_seed(f(seed, e))`` and the step takes its
``s % steps_per_epoch``-th slice (incomplete last batches are dropped). So a run resumed at step ``s`` sees
exactly the batches an uninterrupted run sees, with no sampler state to save, and several processes
(``accelerate launch``) each take their own share of one global batch.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch.utils.data import Dataset, default_collate

from mad.data import tasks

from .objective import TaskSpec, TrainError

__all__ = ["TaskData", "MATERIALISE_LIMIT"]

MATERIALISE_LIMIT = 64_000_000  # elements of a split held as one float tensor; larger splits are read per batch


class _Split:
    """One split: either all inputs/labels as two tensors, or read example by example through the dataset."""

    def __init__(self, ds: Dataset, spec: TaskSpec):
        self.ds = ds
        self.n = len(ds)
        elements = self.n * math.prod(spec.input_shape)
        self.tensors = ds.tensors() if hasattr(ds, "tensors") and elements <= MATERIALISE_LIMIT else None

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tensors is not None:
            x, y = self.tensors
            return x[idx], y[idx]
        return default_collate([self.ds[int(i)] for i in idx])


class TaskData:
    """The train/val/test splits of a task and the batches a run draws from them.

    Args:
        spec: the task.
        seed: seed of the data order.
        batch_size: examples per step and process.
        world: number of processes sharing each step (one global batch of ``batch_size * world``).

    Shapes:
        :meth:`train_batch` -> ``x (batch_size, *input_shape)``, ``y (batch_size,)`` or ``(batch_size, T)``.

    Example:
        >>> data = TaskData(TaskSpec.of("digits"), seed=0, batch_size=32)
        >>> x, y = data.train_batch(0)
        >>> x.shape, y.shape
        (torch.Size([32, 1, 8, 8]), torch.Size([32]))
    """

    def __init__(self, spec: TaskSpec, seed: int = 0, batch_size: int = 64, world: int = 1):
        self.spec = spec
        self.seed = int(seed)
        self.world = int(world)
        self._splits: dict[str, _Split] = {}
        n = self.split("train").n
        if batch_size < 1:
            raise TrainError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size * self.world > n:
            raise TrainError(f"batch_size {batch_size} x {self.world} process(es) exceeds the {n} training examples "
                             f"of task {spec.name!r}; use batch_size <= {n // self.world}")
        self.batch_size = int(batch_size)
        self.steps_per_epoch = n // (self.batch_size * self.world)
        self._perm: tuple[int, torch.Tensor] | None = None

    def split(self, name: str) -> _Split:
        """The split ``name``, loaded on first use."""
        if name not in self._splits:
            try:
                ds = tasks.load(self.spec.name, name, data_dir=self.spec.data_dir, **self.spec.options)
            except tasks.TaskError as e:
                raise TrainError(str(e)) from None
            self._splits[name] = _Split(ds, self.spec)
        return self._splits[name]

    def sample(self, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` training examples (for dry runs)."""
        s = self.split("train")
        return s.take(torch.arange(min(n, s.n)))

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
            self._perm = (epoch, torch.randperm(self.split("train").n, generator=gen))
        return self._perm[1]

    def train_indices(self, step: int, rank: int = 0) -> torch.Tensor:
        """Training-set indices of 0-based step ``step`` for process ``rank``."""
        epoch, j = divmod(step, self.steps_per_epoch)
        gb = self.batch_size * self.world
        start = j * gb + rank * self.batch_size
        return self._permutation(epoch)[start:start + self.batch_size]

    def train_batch(self, step: int, rank: int = 0, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of 0-based step ``step`` for process ``rank``."""
        x, y = self.split("train").take(self.train_indices(step, rank))
        if device is not None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        return x, y

    def random_batch(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` training examples drawn without replacement with ``seed`` (proxies)."""
        s = self.split("train")
        idx = torch.randperm(s.n, generator=torch.Generator().manual_seed(seed))[:n]
        return s.take(idx)

    def eval_batches(self, split: str, batch_size: int, max_batches: int | None = None, rank: int = 0,
                     device: Any = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``split`` in order (the first ``max_batches * batch_size`` examples if given); each process
        gets every ``world``-th example."""
        s = self.split(split)
        stop = s.n if max_batches is None else min(s.n, max_batches * batch_size)
        idx = torch.arange(rank, stop, self.world)
        for chunk in idx.split(batch_size):
            x, y = s.take(chunk)
            yield (x.to(device), y.to(device)) if device is not None else (x, y)
