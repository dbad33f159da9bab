"""retarget over the shipped MAD dataset: how many architectures can be put on the offline tasks.

    python bench/ir_retarget.py              # every graph (~15 min on 2 cores)
    python bench/ir_retarget.py --every 5    # every 5th graph (~3 min): the default quick run

Image-modality graphs (the random space's CNNs and the zoo's vision models)
are retargeted to both image tasks, 1x28x28 with 10 classes (``mnist5k``)
and 3x32x32 with 10 classes (``cifar10``); text/sequence graphs (the random
space's transformers and the zoo's text models) to ``chars`` (64 tokens, its
vocabulary). A graph counts when every retarget validates and its module
runs forward and backward on example inputs. Targets: >= 90% of each group.

Figures (written to bench/results/ir_retarget.json): the share per group and
per source (random/zoo), how many needed the input-resize fallback, seconds
per graph, and the commonest failure reasons.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

IMAGE_TARGETS = [((1, 28, 28), 10), ((3, 32, 32), 10)]
GROUPS = {"image": ("image", "vision"), "text": ("sequence", "text")}


def _init() -> None:
    import logging

    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)


def _check(job: tuple[str, str, str, int]) -> tuple[str, str, bool, bool, str, float]:
    """(group, source kind, ok, resized, failure reason, seconds) of one graph."""
    group, kind, text, vocab = job
    from mad.graph import ArchGraph
    from mad.graph.passes import retarget

    t0 = time.perf_counter()
    resized, reason = False, ""
    try:
        g = ArchGraph.from_json(text)
        targets = [(s, c, None) for s, c in IMAGE_TARGETS] if group == "image" else [((64,), None, vocab)]
        for shape, classes, v in targets:
            g2 = retarget(g, shape, num_classes=classes, vocab_size=v)
            resized = resized or "resized_input_to" in g2.meta["retarget"]
            out = g2.to_module()(*g2.example_inputs())
            expect = (2, classes) if classes else (2, shape[0], v)
            if tuple(out.shape) != expect:
                raise AssertionError(f"output shape {tuple(out.shape)}, expected {expect}")
            out.float().sum().backward()
        ok = True
    except Exception as e:  # noqa: BLE001 - every failure is a data point
        ok, reason = False, f"{type(e).__name__}: {e}".split("\n")[0]
    return group, kind, ok, resized, reason, time.perf_counter() - t0


def _short(reason: str) -> str:
    """A failure reason without node ids and shapes, so that like failures count together."""
    import re

    reason = re.sub(r"retarget '[^']*': ", "", reason)
    reason = re.sub(r"'[^']*'", "'…'", reason)
    reason = re.sub(r"\[[^\]]*\]", "[…]", reason)
    return reason[:140]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--every", type=int, default=5, help="check every n-th graph of each group (1: all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench/results/ir_retarget.json"))
    args = ap.parse_args()

    from mad.data import load_default, tasks

    vocab = tasks.info("chars").vocab_size
    dd = load_default()
    jobs, seen = [], Counter()
    for split in sorted(dd):
        d = dd[split]
        for src, mod, text in zip(d["source"], d["modality"], d["graph"]):
            group = next((k for k, mods in GROUPS.items() if mod in mods), None)
            if group is None:
                continue
            seen[group] += 1
            if (seen[group] - 1) % args.every == 0:
                jobs.append((group, "random" if src == "random" else "zoo", text, vocab))
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.workers, initializer=_init) as pool:
        results = list(pool.imap_unordered(_check, jobs, chunksize=4))
    secs = time.perf_counter() - t0
    out: dict = {"config": {"every": args.every, "workers": args.workers, "chars_vocab": vocab,
                            "image_targets": [list(s) + [c] for s, c in IMAGE_TARGETS], "text_target": [64, vocab]},
                 "graphs_in_dataset": dict(seen), "seconds": round(secs, 1)}
    for group in GROUPS:
        rows = [r for r in results if r[0] == group]
        part = {"graphs": len(rows), "share": round(sum(r[2] for r in rows) / max(len(rows), 1), 4),
                "resized_input": sum(r[3] for r in rows if r[2]),
                "seconds_per_graph": round(sum(r[5] for r in rows) / max(len(rows), 1), 3)}
        for kind in ("random", "zoo"):
            sub = [r for r in rows if r[1] == kind]
            part[kind] = {"graphs": len(sub), "share": round(sum(r[2] for r in sub) / max(len(sub), 1), 4)}
        part["failures"] = dict(Counter(_short(r[4]) for r in rows if not r[2]).most_common(12))
        part["target_share"] = 0.9
        part["meets_target"] = part["share"] >= 0.9
        out[group] = part
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "failures"} if isinstance(v, dict) else v)
                      for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
