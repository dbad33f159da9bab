"""The MAD dataset builder: architecture graphs -> a HuggingFace ``datasets`` dataset.

Sources (a registry, :data:`SOURCES`): ``zoo`` (transformers model types at small
size, plus sampled variants of each) and ``random`` (the random architecture
space). Work is cut into shards of specs; each shard is built (optionally by
several worker processes), checked row by row (every graph validates, compiles
with ``to_module()`` and runs forward) and written atomically as an Arrow file.
An interrupted build resumes from the shards on disk. Finishing memory-maps the
shards, drops duplicates by WL hash, assigns splits and saves a
``datasets.DatasetDict``.

Row columns: see :data:`COLUMNS`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa

__all__ = ["BuildConfig", "build", "make_row", "make_specs", "SOURCES", "COLUMNS", "SPLITS", "load", "BuildError"]

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test", "ood")
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("family", pa.string()),
        ("modality", pa.string()),
        ("input_shape", pa.list_(pa.list_(pa.int64()))),
        ("graph", pa.string()),
        ("num_nodes", pa.int64()),
        ("num_edges", pa.int64()),
        ("num_params", pa.int64()),
        ("flops", pa.int64()),
        ("wl_hash", pa.string()),
        ("description", pa.string()),
    ]
)
COLUMNS = tuple(SCHEMA.names) + ("split",)


class BuildError(RuntimeError):
    """The build cannot go on (bad config, or an output directory from another config)."""


@dataclass
class BuildConfig:
    """What to build.

    Args:
        zoo_types: transformers model types to include (``["all"]`` for every type).
        variants: extra sampled variants per zoo type (each type gives ``1 + variants`` specs).
        random_count: number of random-space graphs.
        seed: master seed; the same config and seed give the same dataset.
        shard_size: specs per shard (the unit of resume and of memory).
        workers: worker processes (1 = in process).
        ood_fraction: fraction of zoo families held out as the ``ood`` split.
        ood_families: explicit held-out families (overrides ``ood_fraction``).
        random_space: keyword arguments of :class:`mad.data.random_space.RandomSpaceConfig`.
    """

    zoo_types: list[str] = field(default_factory=list)
    variants: int = 0
    random_count: int = 0
    seed: int = 0
    shard_size: int = 128
    workers: int = 1
    ood_fraction: float = 0.1
    ood_families: list[str] | None = None
    random_space: dict[str, Any] = field(default_factory=dict)

    def identity(self) -> dict[str, Any]:
        """The fields that decide the dataset's content (workers do not)."""
        d = asdict(self)
        d.pop("workers")
        return d


# ----------------------------------------------------------------- sources
def _zoo_graph(key: str, variant: int, seed: int):
    from mad.code2graph.hf import from_hf

    from .zoo_variants import variant_overrides

    g = from_hf(key, seed=seed, **variant_overrides(key, variant, seed))
    g.meta["family"] = key
    g.meta["variant"] = variant
    return g


def _random_graph(key: str, variant: int, seed: int, space: dict[str, Any] | None = None):
    from .random_space import RandomSpaceConfig, sample

    return sample(seed, RandomSpaceConfig(**(space or {})))


SOURCES: dict[str, Callable[..., Any]] = {"zoo": _zoo_graph, "random": _random_graph}


def make_specs(cfg: BuildConfig) -> list[tuple[str, str, int, int]]:
    """All specs ``(source, key, variant, seed)`` of a build, in a fixed order."""
    types = list(cfg.zoo_types)
    if types == ["all"]:
        from mad.code2graph.hf_zoo import model_types

        types = model_types()
    specs = [("zoo", t, v, cfg.seed) for t in sorted(types) for v in range(1 + cfg.variants)]
    specs += [("random", "random", 0, cfg.seed * 1_000_003 + i) for i in range(cfg.random_count)]
    return specs


def _modality(g) -> str:
    if g.meta.get("modality"):
        return str(g.meta["modality"])
    names = {s.name for s in g.inputs}
    vision = bool(names & {"pixel_values", "pixel_values_videos", "images"})
    audio = bool(names & {"input_features", "input_values", "audio_values"})
    text = bool(names & {"input_ids", "decoder_input_ids", "inputs_embeds"})
    if sum([vision, audio, text]) > 1:
        return "multimodal"
    if vision:
        return "vision"
    if audio:
        return "audio"
    if "past_values" in names:
        return "time-series"
    return "text" if text else "other"


def check_graph(g, seed: int = 0) -> None:
    """Raise unless ``g`` validates, compiles with ``to_module()`` and runs forward."""
    import torch

    g.validate()
    module = g.to_module()
    with torch.no_grad():
        module(*g.example_inputs(seed=seed))


def make_row(spec: tuple[str, str, int, int], random_space: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build, check and describe one graph; raises on any failure."""
    from mad.graph.symbolic import concrete

    from .describe import describe

    source, key, variant, seed = spec
    maker = SOURCES[source]
    g = maker(key, variant, seed, random_space) if source == "random" else maker(key, variant, seed)
    check_graph(g, seed=seed)
    summary = g.infer()
    family = str(g.meta.get("family") or key)
    row_id = f"zoo/{key}/v{variant}" if source == "zoo" else f"random/{seed}"
    return {
        "id": row_id,
        "source": g.source or source,
        "family": family,
        "modality": _modality(g),
        "input_shape": [concrete(list(s.shape), g.dims) for s in g.inputs],  # symbolic dims at example sizes
        "graph": g.to_json(),
        "num_nodes": summary.num_nodes,
        "num_edges": summary.num_edges,
        "num_params": int(summary.num_params),
        "flops": int(summary.flops),
        "wl_hash": g.wl_hash(),
        "description": describe(g),
    }


# ----------------------------------------------------------------- workers
_SPACE: dict[str, Any] = {}


def _init_worker(space: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(1)
    _SPACE.clear()
    _SPACE.update(space)
    logging.getLogger("transformers").setLevel(logging.ERROR)


SPEC_TIMEOUT_S = 300  # one graph may not hold up a build longer than this


class SpecTimeout(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise SpecTimeout(f"gave up after {SPEC_TIMEOUT_S} s")


def _safe_row(spec: tuple[str, str, int, int]) -> tuple[tuple, dict[str, Any] | None, str | None]:
    import signal
    import threading

    timed = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
    if timed:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(SPEC_TIMEOUT_S)
    try:
        return spec, make_row(spec, _SPACE), None
    except Exception as e:  # noqa: BLE001 - a failed spec is recorded, not fatal
        return spec, None, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    finally:
        if timed:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


def _shards(specs: list, size: int) -> Iterator[tuple[int, list]]:
    for i in range(0, len(specs), size):
        yield i // size, specs[i : i + size]


def _write_shard(path: Path, rows: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as writer:
        writer.write_table(table)
    path.with_suffix(".failures.json").write_text(json.dumps(failures, indent=1))
    os.replace(tmp, path)  # the shard exists only once complete


def _split_of(row_id: str, family: str, ood: set[str], seed: int) -> str:
    if family in ood:
        return "ood"
    h = int(hashlib.sha256(f"{seed}/{row_id}".encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 80 else ("validation" if h < 90 else "test")


def _ood_families(cfg: BuildConfig, families: list[str]) -> set[str]:
    if cfg.ood_families is not None:
        return set(cfg.ood_families)
    zoo = sorted({f for f in families if not f.startswith("random")})
    k = round(cfg.ood_fraction * len(zoo))
    return set(random.Random(cfg.seed).sample(zoo, k)) if k else set()


def build(cfg: BuildConfig, out_dir: str | Path, progress: bool = True, overwrite: bool = False):
    """Build (or resume) the dataset of ``cfg`` into ``out_dir``; returns the ``DatasetDict``.

    Layout: ``out_dir/shards/`` (resumable work), ``out_dir/data/`` (the saved
    ``DatasetDict``), ``out_dir/stats.json``.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    shard_dir = out / "shards"
    manifest = shard_dir / "manifest.json"
    if overwrite and out.exists():
        shutil.rmtree(out)
    shard_dir.mkdir(parents=True, exist_ok=True)
    identity = cfg.identity()
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old != identity:
            raise BuildError(
                f"{out} holds a build of another config ({old}); use a new directory or --overwrite"
            )
    else:
        manifest.write_text(json.dumps(identity, indent=1))
    specs = make_specs(cfg)
    todo = [(i, chunk) for i, chunk in _shards(specs, cfg.shard_size) if not (shard_dir / f"shard_{i:05d}.arrow").exists()]
    done = len(specs) - sum(len(c) for _, c in todo)
    t0 = time.perf_counter()
    bar = tqdm(total=len(specs), initial=done, desc="graphs", disable=not progress, unit="graph")
    pool = None
    if cfg.workers > 1 and todo:
        pool = mp.get_context("fork").Pool(cfg.workers, initializer=_init_worker, initargs=(cfg.random_space,))
    else:
        _init_worker(cfg.random_space)
    timing = shard_dir / "seconds.json"  # build seconds of each finished shard, so resumed builds add up
    seconds = json.loads(timing.read_text()) if timing.exists() else {}
    try:
        for i, chunk in todo:
            t_shard = time.perf_counter()
            rows, failures = [], []
            results = pool.imap(_safe_row, chunk) if pool else map(_safe_row, chunk)
            for spec, row, err in results:
                if row is not None:
                    rows.append(row)
                else:
                    failures.append({"spec": list(spec), "error": err})
                bar.update(1)
            _write_shard(shard_dir / f"shard_{i:05d}.arrow", rows, failures)
            seconds[f"{i:05d}"] = round(time.perf_counter() - t_shard, 2)
            timing.write_text(json.dumps(seconds))
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    build_s = max(time.perf_counter() - t0, sum(seconds.values()))
    return finish(cfg, out, build_s=build_s, progress=progress)


def _read_shards(shard_dir: Path) -> pa.Table:
    tables = []
    for f in sorted(shard_dir.glob("shard_*.arrow")):
        tables.append(pa.ipc.open_file(pa.memory_map(str(f), "r")).read_all())
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def finish(cfg: BuildConfig, out: Path, build_s: float | None = None, progress: bool = True):
    """Dedup, split and save the shards of ``out`` as a ``DatasetDict``."""
    import datasets

    if not progress:
        datasets.disable_progress_bars()
    shard_dir = out / "shards"
    table = _read_shards(shard_dir)
    hashes = table.column("wl_hash").to_pylist()
    ids = table.column("id").to_pylist()
    families = table.column("family").to_pylist()
    seen: set[str] = set()
    keep: list[int] = []
    for i, h in enumerate(hashes):
        if h not in seen:
            seen.add(h)
            keep.append(i)
    ood = _ood_families(cfg, families)
    splits = [_split_of(ids[i], families[i], ood, cfg.seed) for i in range(len(ids))]
    full = datasets.Dataset(table).add_column("split", splits)
    parts = {}
    for s in SPLITS:
        idx = [i for i in keep if splits[i] == s]
        # an empty selection saves as a table that cannot be loaded back; build it from the schema
        if idx:
            parts[s] = full.select(idx)
    dd = with_all_splits(datasets.DatasetDict(parts))
    data_dir = out / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    # empty splits do not survive save/load in datasets; load() puts them back
    datasets.DatasetDict({k: v for k, v in dd.items() if len(v)}).save_to_disk(str(data_dir))
    failures = []
    for f in sorted(shard_dir.glob("shard_*.failures.json")):
        failures.extend(json.loads(f.read_text()))
    stats = {
        "rows_written": len(ids),
        "duplicates_dropped": len(ids) - len(keep),
        "failures": len(failures),
        "splits": {s: len(dd[s]) for s in SPLITS},
        "ood_families": sorted(ood),
        "build_seconds": build_s,
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    (out / "failures.json").write_text(json.dumps(failures, indent=1))
    return dd


def load(path: str | Path):
    """Load a built dataset directory (``out_dir`` or ``out_dir/data``) as a ``DatasetDict``."""
    import datasets

    p = Path(path)
    if (p / "data").is_dir():
        p = p / "data"
    if not p.exists():
        raise FileNotFoundError(f"no dataset at {path}: build one with `mad dataset build`")
    return with_all_splits(datasets.load_from_disk(str(p)))


def with_all_splits(dd):
    """``dd`` with every split of :data:`SPLITS`, empty ones made from the schema."""
    import datasets

    if not len(dd):
        raise ValueError("the dataset has no rows in any split")
    features = next(iter(dd.values())).features
    parts = {s: dd[s] if s in dd else datasets.Dataset.from_dict({c: [] for c in features}, features=features)
             for s in SPLITS}
    return datasets.DatasetDict(parts)
