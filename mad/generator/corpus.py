"""Training examples of the generator: (prompt texts, constraint tokens, graph tokens) per graph.

A corpus is built once from the MAD dataset's ``train`` split plus, optionally,
extra graphs of the random space (``extra_random``) drawn at the image shapes
and vocabularies of the offline tasks, so prompts for 8x8, 28x28 or 32x32
inputs and character vocabularies have data behind them. Each graph gets its
dataset description and ``paraphrases`` researcher-style rewrites
(:func:`~mad.generator.paraphrase.paraphrase`), its true constraints
(:func:`~mad.generator.constraints.constraints_of`) as condition tokens, and
its uncompressed token sequence, cropped to ``max_len`` (a long graph still
teaches its first ``max_len`` tokens).

Condition tokens (:func:`condition_tokens`) are words such as
``modality=image``, ``norm=batch_norm``, ``act=gelu``, ``residual=yes``,
``params<=2^17`` (budgets as powers of two, rounded up).
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import random
from dataclasses import dataclass
from typing import Any, Iterable


from mad.graph import ArchGraph

from .constraints import Constraints, constraints_of

__all__ = ["Example", "condition_tokens", "graph_example", "build_corpus", "random_rows", "RANDOM_SETTINGS",
           "op_arities", "op_input_kinds"]

log = logging.getLogger(__name__)

# the offline tasks' inputs: the random space is sampled at these so prompts for them have data
RANDOM_SETTINGS: tuple[dict[str, Any], ...] = (
    {"modality": "image", "image_shape": (1, 28, 28), "num_classes": 10, "max_params": 2_000_000},
    {"modality": "image", "image_shape": (1, 8, 8), "num_classes": 10, "max_params": 500_000},
    {"modality": "image", "image_shape": (3, 32, 32), "num_classes": 10, "max_params": 3_000_000},
    {"modality": "sequence", "vocab_size": 128, "seq_len": 64, "max_params": 3_000_000},
    {"modality": "sequence", "vocab_size": 256, "seq_len": 32, "max_params": 3_000_000},
)


@dataclass
class Example:
    """One graph of the corpus."""

    tokens: list[str]
    texts: list[str]
    cond: list[str]
    source: str
    wl_hash: str


def _bucket(n: int) -> int:
    return max(0, math.ceil(math.log2(max(n, 1))))


def condition_tokens(c: Constraints) -> list[str]:
    """The condition words of a set of constraints (fields left ``None`` give none)."""
    out: list[str] = []
    for key, v in c.to_dict().items():
        if v is None:
            continue
        if key in ("max_params", "max_flops"):
            out.append(f"{key[4:]}<=2^{_bucket(int(v))}")
        elif key == "input_shape":
            shape = [str(d) for d in v]
            out.append(f"in_rank={len(shape)}")
            if len(shape) == 3:
                out += [f"in_ch={shape[0]}", f"in_hw={shape[1]}x{shape[2]}"]
            elif len(shape) == 2:
                out.append(f"in_ch={shape[0]}")
        elif key in ("num_classes", "vocab_size", "hidden_size"):
            out.append(f"{key}~2^{_bucket(int(v))}")
        elif isinstance(v, (list, tuple, set, frozenset)):
            out += [f"{key}={x}" for x in sorted(map(str, v))]
        elif isinstance(v, bool):
            out.append(f"{key}={'yes' if v else 'no'}")
        else:
            out.append(f"{key}={v}")
    return out


def graph_example(g: ArchGraph, description: str | None = None, *, source: str = "", seed: int = 0,
                  paraphrases: int = 3, max_len: int = 768, flops: int | None = None, tokenizer: Any = None,
                  wl: str | None = None) -> Example:
    """The training example of graph ``g``, as the corpus makes it.

    Args:
        g: the graph.
        description: its first prompt text; ``None``: :func:`~mad.data.describe.describe` of ``g``.
        source: where it came from (kept in the example).
        seed: seeds the paraphrases.
        paraphrases: rewritten prompts added after the description.
        max_len: its token sequence is cropped to this.
        flops: its FLOPs if known (computed otherwise).
        tokenizer: an uncompressed :class:`~mad.tokenizer.GraphTokenizer` (the default one if ``None``).
        wl: its WL hash if known.

    Raises:
        Exception: whatever tokenizing or analysing ``g`` raises (the corpus skips such graphs).
    """
    from .paraphrase import paraphrase

    tok = tokenizer or _TOK
    if tok is None:
        from mad.tokenizer import GraphTokenizer

        tok = GraphTokenizer.load("default", compress=False)
    tokens = tok.tokens(g)
    c = constraints_of(g, flops=flops)
    if description is None:
        from mad.data.describe import describe

        description = describe(g)
    rng = random.Random(seed)
    texts = [description] + [paraphrase(description, c, rng) for _ in range(paraphrases)]
    return Example(tokens[:max_len], texts, condition_tokens(c), source, wl or g.wl_hash())


def _example(args: tuple) -> Example | None:
    graph_json, description, source, wl, flops, seed, paraphrases, max_len = args
    try:
        g = ArchGraph.from_json(graph_json)
        return graph_example(g, description, source=source, seed=seed, paraphrases=paraphrases, max_len=max_len,
                             flops=flops, wl=wl)
    except Exception as e:  # noqa: BLE001 - a graph the corpus cannot read is skipped, and said so
        log.warning("corpus: skipped %s: %s", source, str(e).splitlines()[0][:200])
        return None


_TOK = None


def _init() -> None:
    global _TOK
    from mad.tokenizer import GraphTokenizer

    _TOK = GraphTokenizer.load("default", compress=False)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # forked workers share 2 cores: one thread each
    _init()


def random_rows(start: int, count: int, seed: int = 0) -> list[tuple[str, str, str, str, int]]:
    """``(graph json, description, source, wl hash, FLOPs)`` of random-space graphs ``start..start+count`` of the
    :data:`RANDOM_SETTINGS` cycle (seeds derive from ``seed``); a seed with no graph in range is skipped."""
    from mad.data.describe import describe
    from mad.data.random_space import RandomSpaceConfig, sample

    out = []
    for i in range(start, start + count):
        setting = RANDOM_SETTINGS[i % len(RANDOM_SETTINGS)]
        s = seed * 1_000_003 + i
        try:
            g = sample(s, RandomSpaceConfig(**setting))
        except Exception:  # noqa: BLE001
            continue
        out.append((g.to_json(), describe(g), f"extra-random/{s}", g.wl_hash(), int(g.meta["flops"])))
    return out


def build_corpus(rows: Iterable[dict[str, Any]], extra_random: int = 0, paraphrases: int = 3, max_len: int = 768,
                 seed: int = 0, workers: int = 1, progress: bool = True) -> list[Example]:
    """Examples from dataset ``rows`` (dicts with ``graph``, ``description``, ``id``, ``wl_hash``) plus
    ``extra_random`` random-space graphs."""
    from tqdm.auto import tqdm

    items = [(r["graph"], r["description"], r["id"], r["wl_hash"], int(r["flops"])) for r in rows]
    if extra_random:
        chunks = [(i, min(500, extra_random - i), seed + 1) for i in range(0, extra_random, 500)]
        with _pool(workers) as pool:
            it = pool.imap(_slice_args, chunks) if pool else map(_slice_args, chunks)
            for part in tqdm(it, total=len(chunks), desc="random graphs", disable=not progress):
                items += part
    args = [(gj, d, src, wl, fl, seed * 7919 + i, paraphrases, max_len) for i, (gj, d, src, wl, fl) in enumerate(items)]
    out: list[Example] = []
    with _pool(workers) as pool:
        it = pool.imap(_example, args, chunksize=16) if pool else map(_example, args)
        for ex in tqdm(it, total=len(args), desc="corpus", disable=not progress):
            if ex is not None:
                out.append(ex)
    return out


def _slice_args(a: tuple[int, int, int]) -> list[tuple[str, str, str, str, int]]:
    return random_rows(*a)


class _pool:
    """A fork pool of ``workers`` processes (or None for one), closed on exit."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = None

    def __enter__(self):
        if self.workers > 1:
            self.pool = mp.get_context("fork").Pool(self.workers, initializer=_init_worker)
        else:
            _init()
        return self.pool

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.terminate()


def op_arities(examples: list[Example]) -> dict[str, list[int]]:
    """For every op of the corpus, the numbers of inputs its nodes have (the sampler allows only those)."""
    from .structure import ROLE, token_structure

    seen: dict[str, set[int]] = {}
    for e in examples:
        s = token_structure(e.tokens)
        for t, tok in enumerate(e.tokens):
            if s.role[t] == ROLE["op"] and s.node[t] < len(s.parents):
                seen.setdefault(tok[3:], set()).add(len(s.parents[s.node[t]]))
    return {op: sorted(k) for op, k in sorted(seen.items())}


def op_input_kinds(graphs: Iterable[ArchGraph]) -> dict[str, list[str]]:
    """For every op of ``graphs``, the dtype kinds (:func:`~mad.generator.sample.dtype_kind`) each of its input
    ports had, e.g. ``{"gelu": ["f"], "masked_fill": ["fi", "b"]}``: the sampler allows an op only on inputs of
    kinds it was seen with (a fake tensor accepts ``gelu`` on token ids; the CPU kernel does not)."""
    from .sample import dtype_kind

    seen: dict[str, list[set[str]]] = {}
    for g in graphs:
        ports: dict[str, dict[int, str]] = {}
        for e in g.edges:
            ports.setdefault(e.dst, {})[e.port] = dtype_kind(g.nodes[e.src].dtype)
        for nid, ins in ports.items():
            kinds = seen.setdefault(g.nodes[nid].op, [])
            for k, port in enumerate(sorted(ins)):
                if k == len(kinds):
                    kinds.append(set())
                kinds[k].add(ins[port])
    return {op: ["".join(sorted(k)) for k in kinds] for op, kinds in sorted(seen.items())}
