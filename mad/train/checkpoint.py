"""Training checkpoints: safetensors weights, a weights-only torch file of optimizer state, a JSON of progress.

A checkpoint is a folder::

    model.safetensors   the model's state dict (parameters and persistent buffers)
    state.pt            optimizer, LR scheduler, grad scaler and torch RNG states; torch.save of plain
                        tensors, numbers and dicts, read back with torch.load(weights_only=True)
    trainer.json        format version, step, the run's configuration, loss and eval curves, seconds,
                        Python's RNG state
    graph.json          the graph trained (when a graph was trained), so the model can be rebuilt

Nothing is pickled. Files are written under temporary names and renamed, so an interrupted save leaves the
previous checkpoint readable.

Example:
    >>> path = save_checkpoint("run/checkpoint", model, optimizer, scheduler, {"step": 10})
    >>> ckpt = load_checkpoint("run")            # a run folder holding checkpoint/ works too
    >>> ckpt.meta["step"]
    10
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from .objective import TrainError

__all__ = ["CHECKPOINT_VERSION", "Checkpoint", "save_checkpoint", "load_checkpoint", "find_checkpoint"]

CHECKPOINT_VERSION = 1
MODEL_FILE, STATE_FILE, META_FILE, GRAPH_FILE = "model.safetensors", "state.pt", "trainer.json", "graph.json"


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: Any = None, scheduler: Any = None,
                    meta: dict[str, Any] | None = None, graph: Any = None, scaler: Any = None) -> Path:
    """Write a checkpoint folder at ``path`` (created if needed) and return it.

    Args:
        path: the checkpoint folder.
        model: the (unwrapped) model; its state dict goes to ``model.safetensors``.
        optimizer, scheduler, scaler: objects with ``state_dict()``, or ``None``.
        meta: JSON-serialisable progress and configuration (``step``, curves, ``config``).
        graph: the :class:`~mad.graph.ArchGraph` trained, or ``None``.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MODEL_FILE}.tmp"
    save_model(model, str(tmp))
    os.replace(tmp, folder / MODEL_FILE)
    state = {"rng": _rng_state()}
    for key, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is not None:
            state[key] = obj.state_dict()
    tmp = folder / f".{STATE_FILE}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / STATE_FILE)
    if graph is not None:
        tmp = folder / f".{GRAPH_FILE}.tmp"
        graph.to_json(tmp)
        os.replace(tmp, folder / GRAPH_FILE)
    doc = {"format": "mad.train.checkpoint", "version": CHECKPOINT_VERSION, **(meta or {}),
           "python_rng": _py_rng_json()}
    tmp = folder / f".{META_FILE}.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, folder / META_FILE)
    return folder


def _py_rng_json() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def find_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint folder at ``path``: the folder itself, or its ``checkpoint/`` subfolder (a run folder)."""
    p = Path(path).expanduser()
    for cand in (p, p / "checkpoint"):
        if (cand / META_FILE).is_file() and (cand / MODEL_FILE).is_file():
            return cand
    if not p.exists():
        raise TrainError(f"checkpoint not found: {p}")
    raise TrainError(f"{p} is not a training checkpoint (no {META_FILE} and {MODEL_FILE} in it or in "
                     f"{p / 'checkpoint'}); pass the folder fit() or `mad train` saved")


@dataclass
class Checkpoint:
    """A checkpoint read back: its folder, ``trainer.json`` as ``meta``, and ``state.pt`` as ``state``."""

    path: Path
    meta: dict[str, Any]
    state: dict[str, Any]

    def load_model(self, model: nn.Module) -> None:
        """Copy the saved weights into ``model`` (same architecture; strict)."""
        try:
            missing, unexpected = load_model(model, str(self.path / MODEL_FILE), strict=False)
        except RuntimeError as e:
            raise TrainError(f"{self.path / MODEL_FILE} does not fit the model: {str(e).splitlines()[0][:300]}; "
                             "resume with the same graph or module") from None
        if missing or unexpected:
            raise TrainError(f"{self.path / MODEL_FILE} does not fit the model (missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}); resume with the same graph or module")

    def restore_rng(self) -> None:
        """Set torch's (and CUDA's) and Python's RNGs to their saved states."""
        rng = self.state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        py = self.meta.get("python_rng")
        if py:
            random.setstate((py[0], tuple(py[1]), py[2]))

    def graph(self):
        """The graph saved with the checkpoint, or ``None``."""
        from mad.graph import ArchGraph

        f = self.path / GRAPH_FILE
        return ArchGraph.from_json(f) if f.is_file() else None


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the checkpoint at ``path`` (a checkpoint folder or a run folder holding ``checkpoint/``)."""
    folder = find_checkpoint(path)
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except json.JSONDecodeError as e:
        raise TrainError(f"{folder / META_FILE}: malformed JSON ({e.msg} at line {e.lineno})") from None
    if meta.get("format") != "mad.train.checkpoint" or meta.get("version") != CHECKPOINT_VERSION:
        raise TrainError(f"{folder / META_FILE}: not a version-{CHECKPOINT_VERSION} mad training checkpoint "
                         f"(format {meta.get('format')!r}, version {meta.get('version')!r})")
    state: dict[str, Any] = {}
    if (folder / STATE_FILE).is_file():
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    return Checkpoint(folder, meta, state)
