"""The shipped default MAD dataset: ``load_default()`` reads it offline.

It ships inside the package (``mad/data/mad_default/``, so an installed wheel has it too)
as one zstd-compressed Parquet file per split plus ``stats.json``; the
dataset card ``datasets/README.md`` says how to rebuild it exactly
(:data:`DEFAULT_CONFIG`, ``python datasets/build_default.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .builder import SPLITS, BuildConfig, with_all_splits

__all__ = ["DEFAULT_CONFIG", "DEFAULT_DIR", "load_default", "export_parquet", "default_stats"]

DEFAULT_DIR = Path(__file__).resolve().parent / "mad_default"

# every zoo type with two sampled variants, plus 3,000 random-space graphs
DEFAULT_CONFIG = BuildConfig(zoo_types=["all"], variants=2, random_count=3000, seed=0, shard_size=64)


def export_parquet(dd: Any, out_dir: str | Path, stats: dict[str, Any] | None = None) -> Path:
    """Write each split of a ``DatasetDict`` as ``<split>.parquet`` (zstd) under ``out_dir``."""
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        table = dd[split].with_format("arrow")[:]  # only the selected rows
        pq.write_table(table, out / f"{split}.parquet", compression="zstd", compression_level=19)
    if stats is not None:
        (out / "stats.json").write_text(json.dumps(stats, indent=1))
    return out


def load_default(path: str | Path | None = None):
    """The default MAD dataset as a ``datasets.DatasetDict`` keyed by split (no network).

    Args:
        path: another directory written by :func:`export_parquet`.

    Example:
        >>> dd = load_default()
        >>> sorted(dd)
        ['ood', 'test', 'train', 'validation']
    """
    import datasets
    import pyarrow.parquet as pq

    root = Path(path) if path is not None else DEFAULT_DIR
    files = {s: root / f"{s}.parquet" for s in SPLITS}
    missing = [str(f) for f in files.values() if not f.exists()]
    if missing:
        raise FileNotFoundError(
            f"default dataset files missing: {missing}; build a dataset with `mad dataset build OUT` "
            "(or, in a source checkout, rebuild the default with `python datasets/build_default.py`)"
        )
    parts = {s: datasets.Dataset(pq.read_table(f)) for s, f in files.items() if pq.read_metadata(f).num_rows}
    return with_all_splits(datasets.DatasetDict(parts))


def default_stats(path: str | Path | None = None) -> dict[str, Any]:
    root = Path(path) if path is not None else DEFAULT_DIR
    return json.loads((root / "stats.json").read_text())
