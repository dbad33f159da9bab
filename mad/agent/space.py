"""What a search explores: :class:`Candidate`, the :class:`SearchSpace` protocol and the default
:class:`GraphSpace` (the random architecture space at a task's shapes, mutated gene by gene).

A space turns random draws into candidates and candidates into new candidates (``sample``, ``mutate``),
gives each a graph (``to_graph``) and a key that decides duplicates (``key``). A space that can score a
candidate itself (a tabular benchmark) also implements ``evaluate``; every other candidate is trained
with :func:`mad.train.fit` by the search.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
import random
from dataclasses import dataclass, field
from typing import Any

from mad.graph import ArchGraph

__all__ = ["Candidate", "SearchSpace", "GraphSpace", "SpaceError", "task_metric"]


class SpaceError(ValueError):
    """A search space cannot serve the request (unknown task, no architecture within the constraints)."""


def task_metric(task: str, task_options: dict[str, Any] | None = None) -> tuple[str, bool]:
    """The validation metric a search on ``task`` optimises and whether higher is better."""
    from mad.data import tasks

    info = tasks.info(task, **(task_options or {}))
    return ("val_accuracy", True) if info.task_type == "classification" else ("val_bpc", False)


@dataclass
class Candidate:
    """One architecture proposed during a search.

    Args:
        proposer: who made it: ``"random"``, ``"mutation"``, ``"generator"``, ``"edit"``, ``"seed"`` (a
            user's starting graph) or a space's own word.
        genotype: the space's description of it (JSON values; the random space's hyperparameters), or ``None``
            for a bare graph.
        graph: its :class:`ArchGraph` (``None`` until the space builds it, for spaces without graphs).
        parent: the key of the candidate it was derived from (mutation, edit), else ``None``.
        key: what decides duplicates (the graph's WL hash, or a space's own key); set by the search.
        info: everything measured about it (costs, scores, training figures), JSON values.
    """

    proposer: str
    genotype: Any = None
    graph: ArchGraph | None = None
    parent: str | None = None
    key: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class SearchSpace(ABC):
    """The interface every search space implements (subclass it and implement ``sample`` and ``mutate``).

    Methods:
        sample(rng) -> Candidate: a fresh random candidate.
        mutate(candidate, rng) -> Candidate: a neighbour (``parent`` set to the candidate's key).
        to_graph(candidate) -> ArchGraph | None: its graph on the task (``None``: the space has no graphs).
        key(candidate) -> str: the duplicate key (default: the graph's WL hash).
        costs(candidate) -> dict: ``num_params``, ``flops`` (what hard constraints are checked against).
        evaluate(candidate, seed) -> dict | None: ``{"value": ..., ...}`` when the space scores candidates
            itself (tabular benchmarks); ``None`` (the default): the search trains the graph.

    Attributes:
        name: the space's name in records; ``metric`` and ``higher_is_better``: what ``evaluate`` returns.
    """

    name = "space"
    metric = "value"
    higher_is_better = True

    @abstractmethod
    def sample(self, rng: random.Random) -> Candidate:
        """A fresh random candidate."""

    @abstractmethod
    def mutate(self, candidate: Candidate, rng: random.Random) -> Candidate:
        """A neighbour of ``candidate`` (its ``parent`` set to the candidate's key)."""

    def to_graph(self, candidate: Candidate) -> ArchGraph | None:
        return candidate.graph

    def key(self, candidate: Candidate) -> str:
        g = self.to_graph(candidate)
        if g is None:
            return json.dumps(candidate.genotype, sort_keys=True)
        return g.wl_hash()

    def costs(self, candidate: Candidate) -> dict[str, Any]:
        g = self.to_graph(candidate)
        if g is None:
            return {}
        from mad.graph.descriptors import activation_elements

        flops = g.meta.get("flops")
        if flops is None:
            flops = g.infer().flops
        return {"num_params": g.num_params, "flops": int(flops), "activations": activation_elements(g)}

    def evaluate(self, candidate: Candidate, seed: int = 0) -> dict[str, Any] | None:
        return None

    def describe(self) -> dict[str, Any]:
        """JSON description of the space (saved with a run)."""
        return {"name": self.name}


class GraphSpace(SearchSpace):
    """The default space: the random architecture space drawn at a task's shapes, with regularized-evolution
    mutations on its genotype (one gene per mutation, :func:`mad.data.random_space.mutate`) and graph edits
    (activation swaps, one block more or fewer, a residual block) on candidates that have no genotype (generated or
    user graphs).

    Args:
        task: a task name (``mad.data.tasks.names()``); the modality, input shape and classes or vocabulary
            follow from it. A language-modelling task only gets causal models.
        max_params, max_flops: hard limits; candidates over them are redrawn (``sample``/``mutate`` try
            ``tries`` times).
        task_options: the task's options (``{"seq_len": 32}``).
        space: other :class:`~mad.data.random_space.RandomSpaceConfig` fields (``widths``, ``num_layers``...).
        tries: draws per ``sample``/``mutate`` call before giving up.

    Example:
        >>> s = GraphSpace("mnist5k", max_params=100_000)
        >>> c = s.sample(random.Random(0))
        >>> s.costs(c)["num_params"] <= 100_000, s.mutate(c, random.Random(1)).parent == s.key(c)
        (True, True)
    """

    name = "graph"

    def __init__(self, task: str, max_params: int | None = None, max_flops: int | None = None,
                 task_options: dict[str, Any] | None = None, space: dict[str, Any] | None = None,
                 tries: int = 50) -> None:
        from mad.data import tasks
        from mad.data.random_space import RandomSpaceConfig

        self.task, self.task_options = task, dict(task_options or {})
        try:
            info = tasks.info(task, **self.task_options)
        except Exception as e:  # noqa: BLE001 - an unknown task or option is the caller's input
            raise SpaceError(str(e)) from None
        self.metric, self.higher_is_better = task_metric(task, self.task_options)
        self.lm = info.task_type == "language_modeling"
        self.signal: tuple[int, ...] | None = None
        opts: dict[str, Any] = dict(space or {})
        if self.lm:
            opts.update(modality="sequence", vocab_size=info.vocab_size, seq_len=info.input_shape[0])
        else:
            shape = tuple(info.input_shape)
            if len(shape) not in (2, 3):
                raise SpaceError(f"task {task!r} has inputs {shape}; the graph space draws classifiers for "
                                 "(C, H, W) images and (C, L) signals, and language models for token sequences")
            self.signal = shape if len(shape) == 2 else None  # (C, L) is drawn as a (C, 1, L) image
            image = (shape[0], 1, shape[1]) if self.signal else shape
            opts.update(modality="image", image_shape=image, num_classes=info.num_classes)
        opts.update(max_params=max_params, max_flops=max_flops, max_tries=tries)
        self.cfg = RandomSpaceConfig(**opts).check()
        self.max_params, self.max_flops, self.tries = max_params, max_flops, tries
        self.space_options = dict(space or {})

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, "task_options": self.task_options,
                "max_params": self.max_params, "max_flops": self.max_flops, "space": self.space_options}

    # ------------------------------------------------------------------ building
    def within(self, g: ArchGraph) -> bool:
        """Whether a graph of this space (``to_graph``, ``adopt``: its meta holds its costs) keeps to the space's
        parameter and FLOPs limits."""
        if self.max_params is not None and g.meta["num_params"] > self.max_params:
            return False
        return self.max_flops is None or g.meta["flops"] <= self.max_flops

    def _build(self, hp: dict[str, Any]) -> ArchGraph:
        from mad.data.random_space import build

        return self._finish(build(hp, self.cfg))

    def _finish(self, g: ArchGraph) -> ArchGraph:
        """A drawn graph on the task's input: a (C, L) signal gains an ``unsqueeze`` to the (C, 1, L) image the
        space drew for it."""
        if self.signal is None:
            return g
        from mad.graph.passes import image_as_signal

        return image_as_signal(g)  # it recounts meta["num_nodes"], which every drawn graph has

    def sample(self, rng: random.Random) -> Candidate:
        from mad.data.random_space import RandomSpaceError, sample

        for _ in range(self.tries):
            try:
                g = self._finish(sample(rng.randrange(2**31), self.cfg))
            except RandomSpaceError:
                continue
            hp = g.meta["hparams"]
            if self.lm and not hp.get("causal", True):  # a language model must not read the next token
                hp = {**copy.deepcopy(hp), "causal": True}
                g = self._build(hp)
                if not self.within(g):
                    continue
            return Candidate("random", {"hparams": hp}, g)
        raise SpaceError(f"no architecture of the space for {self.task} within max_params={self.max_params}, "
                         f"max_flops={self.max_flops} after {self.tries} draws; raise the limits")

    def mutate(self, candidate: Candidate, rng: random.Random) -> Candidate:
        from mad.data.random_space import RandomSpaceError, mutate

        parent = candidate.key
        hp = (candidate.genotype or {}).get("hparams") if isinstance(candidate.genotype, dict) else None
        if hp is None:
            return self._edit(candidate, rng)
        keep = {"causal"} if self.lm else set()
        for _ in range(self.tries):
            child, gene = mutate(hp, rng, self.cfg, keep=keep)
            try:
                g = self._build(child)
            except RandomSpaceError:
                continue
            if self.within(g):
                return Candidate("mutation", {"hparams": child, "gene": gene}, g, parent=parent)
        return self._edit(candidate, rng)

    def _edit(self, candidate: Candidate, rng: random.Random) -> Candidate:
        """A neighbour of a graph without a genotype: one edit, drawn among the graph's possible ones.

        The edits: one activation swapped for another, one block more or fewer in its repeated block families
        (:func:`~mad.graph.passes.set_depth`), a residual block after its last feature map
        (:func:`~mad.graph.passes.add_residual`). They are tried in a random order; the first that the graph
        takes and that fits the limits wins. A graph that takes none gets a fresh draw instead.
        """
        from mad.graph.passes import add_residual, block_families, replace_activation, set_depth

        g = self.to_graph(candidate)
        if g is not None:
            acts = sorted({n.op for n in g.nodes.values() if n.op in _SWAPPABLE})
            edits = []
            for old in acts:
                new = rng.choice([a for a in _SWAPPABLE if a != old])
                edits.append((f"{old}->{new}", lambda h, o=old, n=new: replace_activation(h, o, n)))
            fam = block_families(g)
            depth = sum(len(v) for v in fam.values())
            if fam:
                edits.append((f"depth {depth}->{depth + 1}", lambda h: set_depth(h, depth + 1)))
                if depth > len(fam):
                    edits.append((f"depth {depth}->{depth - 1}", lambda h: set_depth(h, depth - 1)))
            edits.append(("residual", add_residual))
            rng.shuffle(edits)
            for name, edit in edits:
                try:
                    child = edit(g)
                except Exception:  # noqa: BLE001 - an edit the graph cannot take: try another
                    continue
                child.meta["num_params"], child.meta["flops"] = child.num_params, child.infer().flops
                if self.within(child):
                    return Candidate("edit", {"edit": name}, child, parent=candidate.key)
        fresh = self.sample(rng)  # nothing to edit: a fresh draw stands in
        fresh.parent = candidate.key
        return fresh

    def to_graph(self, candidate: Candidate) -> ArchGraph | None:
        if candidate.graph is None and isinstance(candidate.genotype, dict) and "hparams" in candidate.genotype:
            candidate.graph = self._build(candidate.genotype["hparams"])
        return candidate.graph

    def adopt(self, graph: ArchGraph, proposer: str) -> Candidate:
        """A candidate from a graph made elsewhere (the generator, a user's model), put on the task."""
        from mad.data import tasks

        g = tasks.fit(graph, self.task, **self.task_options)
        g.meta["num_params"], g.meta["flops"] = g.num_params, g.infer().flops
        g.meta.setdefault("family", f"{proposer}-{'transformer' if self.lm else 'classifier'}")
        g.meta.setdefault("modality", "sequence" if self.lm else "image")  # the random space's words
        if self.lm:  # a language model that reads the next token has no meaningful figure: refuse it here
            import torch

            from mad.train import sees_future

            x = torch.randint(0, self.cfg.vocab_size, (1, min(16, self.cfg.seq_len)),
                              generator=torch.Generator().manual_seed(0))
            if sees_future(g.to_module(), x, self.cfg.vocab_size):
                raise SpaceError(f"{g.name} is not causal: its logits depend on later tokens")
        return Candidate(proposer, None, g)


_SWAPPABLE = ("relu", "gelu", "silu", "hardswish", "tanh")
