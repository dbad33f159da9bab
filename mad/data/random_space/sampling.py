"""Rejection sampling over the random space: :func:`sample` and :func:`sample_many`."""

from __future__ import annotations

import logging
import random
from typing import Any, Iterator

from mad.graph import ArchGraph, GraphBuilder, GraphError

from .config import SPACE_VERSION, RandomSpaceConfig, RandomSpaceError

__all__ = ["sample", "sample_many", "finish"]

log = logging.getLogger(__name__)


def finish(b: GraphBuilder, out: str, family: str, modality: str, hp: dict[str, Any]) -> ArchGraph:
    """Declare the output and describe the sample in ``graph.meta`` (FLOPs as the builder summed them)."""
    b.output(out)
    g = b.graph
    g.meta.update(
        {
            "family": family,
            "modality": modality,
            "space_version": SPACE_VERSION,
            "hparams": hp,
            "num_params": g.num_params,
            "flops": b.flops,
            "num_nodes": len(g.nodes),
        }
    )
    return g


def _in_range(value: int, lo: int, hi: int | None) -> bool:
    return value >= lo and (hi is None or value <= hi)


def sample(seed: int, cfg: RandomSpaceConfig | None = None, validate: bool = False) -> ArchGraph:
    """One architecture of the space, reproducible from ``seed``.

    Draws candidates from a ``random.Random(seed)`` stream until one has
    ``min_params <= params <= max_params`` and ``min_flops <= flops <= max_flops``.
    Every candidate is grown with :class:`~mad.graph.GraphBuilder`, so each node's
    shape and FLOPs are known as it is added and no interpreter walk is needed per try.

    Args:
        seed: any int; equal seeds (and configs) give identical graphs and JSON.
        cfg: the space (default :class:`RandomSpaceConfig()`).
        validate: also run ``g.validate()`` (the interpreter re-checks every shape).

    Returns:
        the graph, with ``meta``: ``family`` (``random-cnn``/``random-transformer``),
        ``modality``, ``hparams``, ``num_params``, ``flops``, ``seed``, ``tries``.

    Raises:
        RandomSpaceError: no candidate within the ranges after ``cfg.max_tries`` tries.

    Example:
        >>> sample(3).to_json() == sample(3).to_json()
        True
    """
    from .cnn import sample_image_classifier
    from .transformer import sample_sequence_model

    cfg = (cfg or RandomSpaceConfig()).check()
    rng = random.Random(seed)
    seen: list[tuple[int, int]] = []
    for attempt in range(1, cfg.max_tries + 1):
        modality = cfg.modality if cfg.modality != "any" else rng.choice(["image", "sequence"])
        try:
            g = sample_image_classifier(rng, cfg) if modality == "image" else sample_sequence_model(rng, cfg)
        except GraphError as e:  # a genotype the builder rejects (never expected): say which
            raise RandomSpaceError(f"sample(seed={seed}) try {attempt}: the {modality} space built an invalid "
                                   f"graph: {e}") from e
        params, flops = g.meta["num_params"], g.meta["flops"]
        if _in_range(params, cfg.min_params, cfg.max_params) and _in_range(flops, cfg.min_flops, cfg.max_flops):
            g.name = f"{g.meta['family']}-{seed}"
            g.meta["seed"] = seed
            g.meta["tries"] = attempt
            if validate:
                g.validate()
            return g
        log.debug("sample(seed=%s) try %d: %s with %d params, %d FLOPs is out of range", seed, attempt,
                  g.meta["family"], params, flops)
        seen.append((params, flops))
    p = sorted(s[0] for s in seen)
    f = sorted(s[1] for s in seen)
    raise RandomSpaceError(
        f"sample(seed={seed}): no architecture within params [{cfg.min_params}, {cfg.max_params}] and "
        f"FLOPs [{cfg.min_flops}, {cfg.max_flops}] after {cfg.max_tries} tries (candidates had params "
        f"{p[0]}..{p[-1]}, FLOPs {f[0]}..{f[-1]}); widen RandomSpaceConfig.min_params/max_params/min_flops/"
        "max_flops, change widths/d_models/depth ranges, or raise max_tries"
    )


def sample_many(n: int, cfg: RandomSpaceConfig | None = None, start: int | None = None,
                validate: bool = False) -> Iterator[ArchGraph]:
    """``sample(seed, cfg)`` for seeds ``start, start + 1, ...`` (default ``cfg.seed``), ``n`` graphs."""
    cfg = (cfg or RandomSpaceConfig()).check()
    first = cfg.seed if start is None else start
    for seed in range(first, first + n):
        yield sample(seed, cfg, validate=validate)
