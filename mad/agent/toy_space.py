"""A tiny tabular space with a known optimum: an example of plugging a space into the search, and what the
strategies are tested on (no training: :meth:`ToySpace.evaluate` looks the value up)."""

from __future__ import annotations

import random
from typing import Any

from .space import Candidate, SearchSpace

__all__ = ["ToySpace"]


class ToySpace(SearchSpace):
    """Genotypes are ``length`` choices among ``choices`` values; the value of one is the share of positions that
    match a hidden target, with a smooth bonus for neighbours (so mutation helps and random search is slow).

    Args:
        length, choices: the genotype's size (``choices ** length`` architectures).
        seed: draws the hidden target.

    Example:
        >>> s = ToySpace()
        >>> c = s.sample(random.Random(0))
        >>> 0.0 <= s.evaluate(c)["value"] <= 1.0
        True
    """

    name = "toy"
    metric = "value"
    higher_is_better = True

    def __init__(self, length: int = 8, choices: int = 5, seed: int = 0) -> None:
        if length < 1 or choices < 2:
            raise ValueError(f"need length >= 1 and choices >= 2, got {length}, {choices}")
        self.length, self.choices, self.seed = length, choices, seed
        rng = random.Random(seed)
        self.target = [rng.randrange(choices) for _ in range(length)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "length": self.length, "choices": self.choices, "seed": self.seed}

    def sample(self, rng: random.Random) -> Candidate:
        return Candidate("random", [rng.randrange(self.choices) for _ in range(self.length)])

    def mutate(self, candidate: Candidate, rng: random.Random) -> Candidate:
        g = list(candidate.genotype)
        i = rng.randrange(self.length)
        g[i] = rng.choice([v for v in range(self.choices) if v != g[i]])
        return Candidate("mutation", g, parent=candidate.key)

    def key(self, candidate: Candidate) -> str:
        return "-".join(str(v) for v in candidate.genotype)

    def costs(self, candidate: Candidate) -> dict[str, Any]:
        return {"num_params": 1000 * (1 + sum(candidate.genotype))}

    def features(self, candidate: Candidate) -> list[float]:
        return [float(v == k) for v in candidate.genotype for k in range(self.choices)]

    def evaluate(self, candidate: Candidate, seed: int = 0) -> dict[str, Any]:
        close = sum(1.0 if v == t else 0.5 if abs(v - t) == 1 else 0.0 for v, t in zip(candidate.genotype, self.target))
        return {"status": "completed", "value": close / self.length, "test_value": close / self.length}

    def optimum(self) -> float:
        return 1.0
