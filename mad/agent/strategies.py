"""Search strategies: what to train next. Random search and regularized evolution live here; the
generate-score-learn loop is :mod:`mad.agent.loop`. All share one interface and one search code path
(:func:`mad.agent.search`), so they spend the same budget the same way.

A strategy is told the :class:`SearchContext` once (``start``), is asked for candidates each round
(``propose``) and is told each round's results (``learn``). Everything it decides is a function of the
context, the history of trained candidates and the round's random stream, so a resumed search makes the
same decisions as an uninterrupted one.
"""

from __future__ import annotations

import logging
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mad.graph import ArchGraph

from .records import History, Trial
from .space import Candidate, SearchSpace

__all__ = ["Strategy", "RandomSearch", "RegularizedEvolution", "SearchContext", "STRATEGIES", "register_strategy",
           "make_strategy", "candidate_of"]

log = logging.getLogger(__name__)

STRATEGIES: dict[str, Callable[..., "Strategy"]] = {}


def register_strategy(name: str):
    """Class decorator: make a strategy available by name (``mad search --strategy NAME``)."""
    def wrap(cls):
        STRATEGIES[name] = cls
        cls.name = name
        return cls
    return wrap


def make_strategy(name: str, **options: Any) -> "Strategy":
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    return STRATEGIES[name](**options)


@dataclass
class SearchContext:
    """What a strategy knows about the search it serves.

    Args:
        space: the search space.
        task: the task name; ``higher_is_better``: the direction of the metric.
        seed: the search's seed; ``folder``: its run folder (a strategy may keep files there).
        admit: ``admit(candidate) -> reason or None``: sets the candidate's key and costs and says why it
            cannot be trained (a duplicate, over a hard limit), ``None`` if it can.
        prompt: the user's prompt, if any; ``start_graphs``: the user's starting graphs, if any.
        last_round: the last finished round (0 for a new search; more when resuming).
    """

    space: SearchSpace
    task: str
    higher_is_better: bool
    seed: int
    folder: Path
    admit: Callable[[Candidate], str | None]
    prompt: str | None = None
    start_graphs: list[ArchGraph] = field(default_factory=list)
    last_round: int = 0


def candidate_of(trial: Trial) -> Candidate:
    """The candidate a trained record describes (graph rebuilt from its JSON)."""
    c = trial.candidate
    g = ArchGraph.from_json(c["graph"]) if c.get("graph") else None
    return Candidate(c["proposer"], c.get("genotype"), g, c.get("parent"), c["key"])


class Strategy(ABC):
    """Base class. Subclasses implement :meth:`propose`; :meth:`start` and :meth:`learn` are optional."""

    name = "strategy"

    def start(self, ctx: SearchContext, history: History) -> None:
        """Called once before the first round (and on resume, with the history so far)."""
        self.ctx = ctx

    @abstractmethod
    def propose(self, k: int, history: History, rng: random.Random) -> list[Candidate]:
        """Candidates for this round, best first. Those with ``info["selected"]`` false were only scored;
        the search trains the first ``k`` admissible selected ones."""

    def learn(self, round: int, history: History) -> dict[str, Any]:
        """After a round's trainings: update what the strategy learns from; returns what to record."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    # shared by the strategies: fresh admissible random candidates
    def fresh(self, n: int, rng: random.Random, proposer: str = "random", tries: int = 4) -> list[Candidate]:
        out: list[Candidate] = []
        for _ in range(n * tries):
            if len(out) == n:
                break
            try:
                c = self.ctx.space.sample(rng)
            except Exception as e:  # noqa: BLE001 - a draw the space cannot make is skipped, not fatal
                log.info("space.sample failed: %s", e)
                continue
            c.proposer = proposer
            if self.ctx.admit(c) is None and all(c.key != o.key for o in out):
                out.append(c)
        return out

    def mutants(self, parents: list[Candidate], rng: random.Random, tries: int = 4) -> list[Candidate]:
        """One admissible mutant per parent (fewer if a parent yields none in ``tries`` attempts)."""
        out: list[Candidate] = []
        for p in parents:
            for _ in range(tries):
                try:
                    c = self.ctx.space.mutate(p, rng)
                except Exception as e:  # noqa: BLE001 - a parent without a neighbour is skipped, not fatal
                    log.info("space.mutate failed: %s", e)
                    break
                if self.ctx.admit(c) is None and all(c.key != o.key for o in out):
                    out.append(c)
                    break
        return out


@register_strategy("random")
class RandomSearch(Strategy):
    """Random search: every candidate a fresh draw from the space."""

    def propose(self, k: int, history: History, rng: random.Random) -> list[Candidate]:
        return self.fresh(k, rng)


@register_strategy("evolution")
class RegularizedEvolution(Strategy):
    """Regularized (aging) evolution: a population of the ``population`` most recently trained candidates;
    each child mutates the best of ``sample_size`` members drawn at random; the oldest member leaves as a
    child enters. Until the population is full, children are random draws.

    Args:
        population: members kept (the most recent trainings).
        sample_size: tournament size.
    """

    def __init__(self, population: int = 16, sample_size: int = 4) -> None:
        if population < 2 or not 1 <= sample_size <= population:
            raise ValueError(f"need population >= 2 and 1 <= sample_size <= population, got {population}, "
                             f"{sample_size}")
        self.population, self.sample_size = population, sample_size

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "population": self.population, "sample_size": self.sample_size}

    def propose(self, k: int, history: History, rng: random.Random) -> list[Candidate]:
        pop = history.trials[-self.population:]
        if len(pop) < self.population:
            return self.fresh(k, rng)
        parents = []
        for _ in range(k):
            contenders = rng.sample(pop, self.sample_size)
            parents.append(candidate_of(max(contenders, key=lambda t: (t.fitness, -t.eval_index))))
        return self.mutants(parents, rng)
