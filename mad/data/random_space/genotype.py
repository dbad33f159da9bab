"""The genotype of the random space: the hyperparameter dict a graph is built from, for evolutionary search.

A sample's ``meta["hparams"]`` is its genotype: :func:`build` turns one back
into the same graph, :func:`mutate` changes one gene of it (regularized
evolution mutates the genotype, not the graph), :func:`genes` lists the genes
of a modality.

Example:
    >>> from mad.data.random_space import sample
    >>> cfg = RandomSpaceConfig(modality="sequence", vocab_size=64, seq_len=16)
    >>> g = sample(0, cfg)
    >>> build(g.meta["hparams"], cfg).num_params == g.num_params   # the same graph, up to name and sampling meta
    True
    >>> child, gene = mutate(g.meta["hparams"], random.Random(1), cfg, keep={"causal"})
    >>> gene in genes("sequence"), child["causal"] == g.meta["hparams"]["causal"]
    (True, True)
    >>> h = build(child, cfg)
    >>> h.nodes[h.outputs[0]].shape
    ['B', 'T', 64]
"""

from __future__ import annotations

import copy
import random
from collections.abc import Collection
from typing import Any, Callable

from mad.graph import ArchGraph, GraphError

from .cnn import (
    ACTIVATIONS,
    CNN_NORMS,
    DOWNSAMPLES,
    MERGES,
    ORDERS,
    POOLS,
    STEMS,
    build_image_classifier,
    choice,
    draw_head,
    draw_stem,
    max_downsamplings,
    next_width,
    sample_cell,
)
from .config import PARAMETRIC, RandomSpaceConfig, RandomSpaceError
from .transformer import (
    ATTENTIONS,
    MLPS,
    PLACEMENTS,
    POSITIONS,
    RESIDUALS,
    SEQ_NORMS,
    attention_kinds,
    build_sequence_model,
    draw_attention,
    kv_options,
    mlp_hidden,
    width_pairs,
)

__all__ = ["build", "mutate", "genes", "CNN_GENES", "TRANSFORMER_GENES"]

_TRIES = 8  # draws per gene before mutate moves on to another gene


def _modality(hp: Any) -> str:
    """``"image"`` for a CNN genotype (it has ``stages``), ``"sequence"`` for a transformer one (``d_model``)."""
    if isinstance(hp, dict):
        if "stages" in hp:
            return "image"
        if "d_model" in hp:
            return "sequence"
    raise RandomSpaceError(f"not a random-space genotype: expected a dict with 'stages' (image) or 'd_model' "
                           f"(sequence), got {type(hp).__name__} {str(hp)[:80]}")


# values the builders take for a categorical key (an unknown one would silently build as another)
_VALUES: dict[str, dict[str, tuple[Any, ...]]] = {
    "image": {"norm": CNN_NORMS, "activation": ACTIVATIONS, "order": ORDERS, "downsample": DOWNSAMPLES,
              "stem.kind": STEMS, "head.pool": POOLS},
    "sequence": {"attention": ATTENTIONS, "mlp": MLPS, "norm": SEQ_NORMS, "placement": PLACEMENTS,
                 "residual": RESIDUALS, "position": POSITIONS},
}


def _check_values(hp: dict[str, Any], modality: str) -> None:
    """Raise :class:`RandomSpaceError` naming a categorical value the builder does not know."""
    checks = []
    for key, allowed in _VALUES[modality].items():
        outer, _, inner = key.partition(".")
        checks.append((key, hp[outer][inner] if inner else hp[outer], allowed))
    if modality == "image":
        if not isinstance(hp["stages"], list) or not hp["stages"]:
            raise RandomSpaceError(f"its stages must be a non-empty list, got {hp['stages']!r}")
        checks += [(f"stages.{s}.cell.merge", st["cell"]["merge"], MERGES)
                   for s, st in enumerate(hp["stages"])]
    for key, value, allowed in checks:
        if value not in allowed:
            raise RandomSpaceError(f"its {key} is {value!r}; choose from {allowed}")


def genes(modality: str) -> tuple[str, ...]:
    """The gene names :func:`mutate` may change for ``"image"`` or ``"sequence"`` genotypes."""
    if modality == "image":
        return CNN_GENES
    if modality == "sequence":
        return TRANSFORMER_GENES
    raise RandomSpaceError(f"genes: modality must be 'image' or 'sequence', got {modality!r}")


def build(hp: dict[str, Any], cfg: RandomSpaceConfig | None = None, modality: str | None = None,
          name: str | None = None) -> ArchGraph:
    """The graph of genotype ``hp``: the graph :func:`~mad.data.random_space.sample` builds from it.

    Args:
        hp: a genotype, e.g. a sample's ``meta["hparams"]`` or a :func:`mutate` result; it is not changed
            (a deep copy, with each CNN stage's ``resolution`` written by the builder, becomes ``meta["hparams"]``).
        cfg: the space the genotype belongs to (its ``image_shape``, ``num_classes``, ``vocab_size``, ``seq_len``,
            ``batch_size``, ... are not part of ``hp``); default :class:`RandomSpaceConfig()`.
        modality: ``"image"`` or ``"sequence"``; default: what ``hp``'s keys say.
        name: the graph's name (default its family, ``random-cnn`` or ``random-transformer``).

    Returns:
        the graph, with ``meta``: ``family``, ``modality``, ``space_version``, ``hparams``, ``num_params``,
        ``flops``, ``num_nodes`` (no ``seed``/``tries``; the parameter and FLOP ranges of ``cfg`` are not enforced).
        Equal genotypes give identical JSON.

    Raises:
        RandomSpaceError: ``hp`` is not a genotype of ``modality`` (a missing key, an unknown categorical value
            or cell op, a value of the wrong type) or builds an invalid graph (e.g. more pooling downsamplings than
            the input size allows).
    """
    cfg = (cfg or RandomSpaceConfig()).check()
    modality = modality or _modality(hp)
    if modality not in ("image", "sequence"):
        raise RandomSpaceError(f"build: modality must be 'image' or 'sequence', got {modality!r}")
    if not isinstance(hp, dict):
        raise RandomSpaceError(f"build: a genotype is a dict, got {type(hp).__name__}")
    hp = copy.deepcopy(hp)
    what = f"build: the {modality} genotype"
    try:
        _check_values(hp, modality)
        g = build_image_classifier(hp, cfg) if modality == "image" else build_sequence_model(hp, cfg)
    except RandomSpaceError as e:  # an unknown categorical value or cell op
        raise RandomSpaceError(f"{what} is invalid: {e}") from e
    except KeyError as e:
        raise RandomSpaceError(f"{what} lacks the key {e}") from e
    except GraphError as e:
        raise RandomSpaceError(f"{what} gives an invalid graph: {e}") from e
    except (TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError) as e:
        raise RandomSpaceError(f"{what} is malformed: {type(e).__name__}: {e}") from e
    if name is not None:
        g.name = name
    return g


# ---- genes: each edits a (deep-copied) genotype in place and says whether it could ----

_Gene = Callable[[dict[str, Any], random.Random, RandomSpaceConfig], bool]


def _other(rng: random.Random, values: Collection[Any], current: Any) -> tuple[bool, Any]:
    options = [v for v in values if v != current]
    return (True, rng.choice(options)) if options else (False, current)


def _set_other(hp: dict[str, Any], key: str, values: Collection[Any], rng: random.Random) -> bool:
    ok, hp[key] = _other(rng, values, hp[key])
    return ok


# image genes

def _stem(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    side = min(cfg.image_shape[1:])
    stem = draw_stem(rng, side)
    # a stride that leaves too few pixels for the stages' downsamplings is not an option
    if stem == hp["stem"] or len(hp["stages"]) > 1 + max_downsamplings(side // stem["stride"]):
        return False
    hp["stem"] = stem
    return True


def _head(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    hp["head"] = draw_head(rng)
    return True


def _stage_width(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    stages = hp["stages"]
    s = rng.randrange(len(stages))
    lo = stages[s - 1]["width"] if s > 0 else 0
    hi = stages[s + 1]["width"] if s + 1 < len(stages) else float("inf")
    ok, stages[s]["width"] = _other(rng, [w for w in sorted(set(cfg.widths)) if lo <= w <= hi], stages[s]["width"])
    return ok


def _stage_cells(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    st = rng.choice(hp["stages"])
    ok, st["cells"] = _other(rng, range(cfg.cells_per_stage[0], cfg.cells_per_stage[1] + 1), st["cells"])
    return ok


def _cell(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    rng.choice(hp["stages"])["cell"] = sample_cell(rng, cfg)
    return True


def _cell_op(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    st = rng.choice(hp["stages"])
    cell = st["cell"] = copy.deepcopy(st["cell"])  # this stage only, also where the cell was shared
    i = rng.randrange(len(cell["nodes"]))
    others_learn = any(nd["op"] in PARAMETRIC for j, nd in enumerate(cell["nodes"]) if j != i)
    options = {op: w for op, w in cfg.cell_ops.items()
               if w > 0 and op != cell["nodes"][i]["op"] and (others_learn or op in PARAMETRIC)}
    if not options:
        return False
    cell["nodes"][i]["op"] = choice(rng, options)
    return True


def _depth(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    stages = hp["stages"]
    side = min(cfg.image_shape[1:]) // hp["stem"]["stride"]
    can_add = len(stages) < min(cfg.num_stages[1], 1 + max_downsamplings(side))
    can_remove = len(stages) > max(1, cfg.num_stages[0])
    if not (can_add or can_remove):
        return False
    if can_add and (not can_remove or rng.random() < 0.5):
        last = stages[-1]
        width = next_width(rng, sorted(set(cfg.widths)), last["width"])  # >= the last width
        stages.append({"width": width, "cells": last["cells"], "cell": last["cell"]})
    else:
        stages.pop()
    return True


# sequence genes

def _width(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    ok, (d_model, head_dim) = _other(rng, width_pairs(cfg), (hp["d_model"], hp["head_dim"]))
    if not ok:
        return False
    heads = d_model // head_dim
    attention, kv_heads = draw_attention(rng, heads)
    hp.update(d_model=d_model, head_dim=head_dim, heads=heads, attention=attention, kv_heads=kv_heads,
              mlp_hidden=mlp_hidden(hp["mlp"], hp["mlp_ratio"], d_model))
    return True


def _num_layers(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    return _set_other(hp, "num_layers", range(cfg.num_layers[0], cfg.num_layers[1] + 1), rng)


def _attention(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    heads = hp["heads"]
    options = [(kind, kv) for kind in attention_kinds(heads)
               for kv in ({"mha": [heads], "mqa": [1]}.get(kind) or kv_options(heads))
               if (kind, kv) != (hp["attention"], hp["kv_heads"])]
    if not options:
        return False
    kind = rng.choice(list(dict.fromkeys(k for k, _ in options)))  # a kind, then its kv_heads
    hp["attention"], hp["kv_heads"] = rng.choice([o for o in options if o[0] == kind])
    return True


def _mlp(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    ok, (kind, ratio) = _other(rng, [(m, r) for m in MLPS for r in cfg.mlp_ratios], (hp["mlp"], hp["mlp_ratio"]))
    hp.update(mlp=kind, mlp_ratio=ratio, mlp_hidden=mlp_hidden(kind, ratio, hp["d_model"]))
    return ok


def _placement(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig) -> bool:
    ok = _set_other(hp, "placement", PLACEMENTS, rng)
    hp["embed_norm"] = hp["placement"] == "post" and rng.random() < 0.5  # as transformer_hparams draws it
    return ok


def _choose(key: str, values: Collection[Any]) -> _Gene:
    """The gene that sets ``key`` to another of ``values``."""
    return lambda hp, rng, cfg: _set_other(hp, key, values, rng)


_CNN_MUTATIONS: dict[str, _Gene] = {
    "norm": _choose("norm", CNN_NORMS),
    "activation": _choose("activation", ACTIVATIONS),
    "order": _choose("order", ORDERS),
    "stem": _stem,
    "downsample": _choose("downsample", DOWNSAMPLES),
    "head": _head,
    "stage_width": _stage_width,
    "stage_cells": _stage_cells,
    "cell": _cell,
    "cell_op": _cell_op,
    "depth": _depth,
}
_TRANSFORMER_MUTATIONS: dict[str, _Gene] = {
    "width": _width,
    "num_layers": _num_layers,
    "attention": _attention,
    "fused_qkv": _choose("fused_qkv", (False, True)),
    "causal": _choose("causal", (False, True)),
    "mlp": _mlp,
    "norm": _choose("norm", SEQ_NORMS),
    "placement": _placement,
    "residual": _choose("residual", RESIDUALS),
    "position": _choose("position", POSITIONS),
    "bias": _choose("bias", (False, True)),
    "tie_embeddings": _choose("tie_embeddings", (False, True)),
}
CNN_GENES = tuple(_CNN_MUTATIONS)
TRANSFORMER_GENES = tuple(_TRANSFORMER_MUTATIONS)


def _genotype(hp: dict[str, Any], modality: str) -> dict[str, Any]:
    """A deep copy without what the builder derives (a stage's ``resolution``); shared cells stay shared."""
    hp = copy.deepcopy(hp)
    if modality == "image":
        for st in hp["stages"]:
            st.pop("resolution", None)
    return hp


def mutate(hp: dict[str, Any], rng: random.Random, cfg: RandomSpaceConfig | None = None,
           keep: Collection[str] = ()) -> tuple[dict[str, Any], str]:
    """A child genotype that differs from ``hp`` in exactly one gene, and that gene's name.

    The gene is drawn uniformly from :func:`genes` less ``keep``; one that cannot change (a single possible value,
    e.g. ``num_layers`` when ``cfg.num_layers`` is ``(4, 4)``) or whose draws keep giving the same genotype gives way
    to another. The child is always different from ``hp``; ``hp`` itself is not changed. The result depends only on
    ``hp``, ``cfg`` and the state of ``rng``.

    Image genes (values from ``cfg`` and the choice lists of :func:`~.cnn.cnn_hparams`):
        ``norm``, ``activation``, ``order``, ``downsample``: another value. ``stem``: a newly drawn stem whose stride
        still leaves room for every stage's downsampling. ``head``: a newly drawn head. ``stage_width``: one stage
        takes another width of ``cfg.widths`` between its neighbours' (widths never shrink). ``stage_cells``: one
        stage takes another cell count in ``cfg.cells_per_stage``. ``cell``: one stage gets a newly drawn cell.
        ``cell_op``: one node of one stage's cell takes another op of ``cfg.cell_ops`` (the cell keeps an op with
        parameters). ``cell`` and ``cell_op`` change that one stage only, also where stages shared the cell.
        ``depth``: a stage is appended (sharing the last stage's cell and cell count, at a width drawn as
        ``cnn_hparams`` draws the next stage's) while ``cfg.num_stages`` and the input size allow another halving,
        or the last stage is removed (staying within ``cfg.num_stages`` and above 0).
    Sequence genes:
        ``width``: ``d_model``, ``head_dim``, ``heads`` and the attention kind / ``kv_heads`` drawn again together
        (``mlp_hidden`` recomputed). ``num_layers``: another count in ``cfg.num_layers``. ``attention``: another
        kind / ``kv_heads`` for the current heads. ``mlp``: another kind and ratio (``mlp_hidden`` recomputed).
        ``placement``: pre- or post-norm, ``embed_norm`` drawn again (only post-norm models have one).
        ``fused_qkv``, ``causal``, ``norm``, ``residual``, ``position``, ``bias``, ``tie_embeddings``: the other value.

    Args:
        hp: a genotype (a sample's ``meta["hparams"]``, a ``build`` or ``mutate`` result).
        rng: the random stream (its state advances).
        cfg: the space (default :class:`RandomSpaceConfig()`); pass the one ``hp`` was drawn from.
        keep: gene names never changed, e.g. ``{"causal"}`` for language modelling (names of either modality).

    Returns:
        ``(child, gene)``; each CNN stage's derived ``resolution`` is left out of the child (``build`` writes it).

    Raises:
        RandomSpaceError: ``hp`` is not a genotype, ``keep`` names an unknown gene, or no gene outside ``keep``
            can change.
    """
    cfg = (cfg or RandomSpaceConfig()).check()
    modality = _modality(hp)
    unknown = sorted(set(keep) - set(CNN_GENES) - set(TRANSFORMER_GENES))
    if isinstance(keep, str) or unknown:
        raise RandomSpaceError(f"mutate: keep must be a collection of gene names, got unknown {unknown or keep!r}; "
                               f"genes are {CNN_GENES} (image) and {TRANSFORMER_GENES} (sequence)")
    table = _CNN_MUTATIONS if modality == "image" else _TRANSFORMER_MUTATIONS
    candidates = [gene for gene in table if gene not in keep]
    try:
        base = _genotype(hp, modality)
        for gene in rng.sample(candidates, len(candidates)):
            for _ in range(_TRIES):
                child = copy.deepcopy(base)
                if table[gene](child, rng, cfg) and child != base:
                    return child, gene
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise RandomSpaceError(f"mutate: the {modality} genotype is malformed: {type(e).__name__}: {e}") from e
    raise RandomSpaceError(f"mutate: no {modality} gene outside keep={sorted(keep)} can change this genotype")
