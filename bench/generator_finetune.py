"""Fine-tuning the generator on graphs that train well: the labelled mnist5k pools of ``bench/ghn_calibrate.py``.

    python bench/generator_finetune.py --cache ~/.cache/mad/ghn_calibrate --out out/gen_ft
    python bench/generator_eval.py --gen out/gen_ft --out /tmp/gen_ft.json     # then compare with the shipped one

The calibration cache holds four pools of 28x28 image classifiers (dataset graphs, generated graphs, fresh
random-space CNNs) with their validation accuracy on mnist5k after 100 AdamW steps. The graphs that reach at
least ``--min-acc`` are the examples to learn; each becomes a corpus example (its tokens, its true constraints
as condition tokens, its description and paraphrases as prompts: :func:`mad.generator.finetune.finetune`).
Every converted model of the dataset's ``train`` split (``--converted-repeat`` times, as its training weighed
them) and ``--replay`` of its random-space graphs, drawn at random, are mixed in so the generator keeps what
it knew about the rest (transformers, RNNs, mixers, language models). The fine-tuned
checkpoint is written to ``--out`` with the WL hashes of every graph it has now seen added to its training
hashes (novelty is measured against them; ``finetune`` adds them) and a ``record["finetune"]`` entry saying which graphs, how many
steps and what the loss did. The defaults are the settings of the shipped checkpoint's fine-tune.

``--blend W`` then gives back the share ``W`` of the fine-tune in weight space: the weights become
``(1 - W) * tuned + W * start`` (:func:`mad.generator.finetune.blend`), which recovers sampling diversity the
fine-tune took while keeping most of what it taught. ``--tuned DIR`` skips the fine-tune and blends an already
fine-tuned checkpoint with ``--gen`` (no cache needed):

    python bench/generator_finetune.py --tuned out/gen_ft --gen out/gen_start --blend 0.5 --out out/gen_blend

None of the pools contains a held-out graph or a graph the trainability benchmark samples (see
``bench/ghn_calibrate.py``), so ``bench/generator_eval.py``'s trainability part stays a measurement on unseen
samples; it is, though, the same task (mnist5k at 100 steps) the kept graphs were selected on.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ghn_calibrate import _labelled  # noqa: E402


def well_training(cache: Path, min_acc: float) -> tuple[list[tuple[str, str, float]], dict[str, int]]:
    """``[(pool, graph JSON, accuracy), ...]`` of the labelled pool graphs at or above ``min_acc``, and the
    number of labelled graphs per pool."""
    path = cache / "pools.json"
    if not path.exists():
        raise SystemExit(f"no pools in {cache}; run bench/ghn_calibrate.py --cache {cache} first")
    pools = json.loads(path.read_text())
    kept, labelled = [], {}
    for name, rows in pools.items():
        labels = _labelled(cache, name)
        labelled[name] = sum(i in labels for i, _ in rows)
        kept += [(name, text, float(labels[i]["metric"])) for i, text in rows
                 if i in labels and float(labels[i]["metric"]) >= min_acc]
    return kept, labelled


def blend_back(tuned, start, args: argparse.Namespace) -> dict:
    """Give back ``args.blend`` of the fine-tune (:func:`mad.generator.finetune.blend`); the record entry."""
    from mad.generator.finetune import blend

    return blend(tuned, start, args.blend, note=f"toward the fine-tune's starting checkpoint ({args.gen}); "
                 "bench/generator_finetune.py --blend")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="bench/ghn_calibrate.py's cache folder (labelled).")
    ap.add_argument("--out", type=Path, required=True, help="Folder for the fine-tuned checkpoint.")
    ap.add_argument("--gen", default="default", help="The generator to start from (default: the shipped one).")
    ap.add_argument("--min-acc", type=float, default=0.7, help="Keep pool graphs with at least this 100-step "
                    "mnist5k validation accuracy.")
    ap.add_argument("--repeat", type=int, default=2, help="Times each kept graph appears (each with its own "
                    "paraphrases).")
    ap.add_argument("--replay", type=int, default=800, help="Random-space graphs of the train split mixed in.")
    ap.add_argument("--converted-repeat", type=int, default=3, help="Times each converted model of the train "
                    "split is mixed in.")
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--mlm-rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--anchor", type=float, default=0.0, help="Weight of the KL penalty toward the starting "
                    "model's predictions (finetune(anchor=...); 0: none).")
    ap.add_argument("--blend", type=float, default=0.0, help="Share of the fine-tune given back afterwards: "
                    "weights (1 - W) * tuned + W * start (0: none).")
    ap.add_argument("--tuned", type=Path, default=None, help="An already fine-tuned checkpoint of --gen: skip the "
                    "fine-tune and only blend (needs --blend).")
    args = ap.parse_args()
    if not 0 <= args.blend <= 1:
        raise SystemExit(f"--blend must be in [0, 1], got {args.blend}")
    if args.tuned is None and args.cache is None:
        raise SystemExit("pass --cache (the labelled pools to fine-tune on) or --tuned (a fine-tuned checkpoint)")
    if args.tuned is not None and not 0 < args.blend <= 1:
        raise SystemExit("--tuned only blends; pass --blend W with 0 < W <= 1")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty; pass a new folder")

    import torch

    from mad.data import load_default
    from mad.generator import load
    from mad.graph import ArchGraph

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    if args.tuned is not None:
        gen = load(args.tuned)
        entry = blend_back(gen, load(args.gen), args)
        gen.save(args.out)
        print(json.dumps(entry))
        return
    kept, labelled = well_training(args.cache, args.min_acc)
    good = [ArchGraph.from_json(t) for _, t, _ in kept]
    train = load_default()["train"]
    rng = random.Random(args.seed)
    sources = train["source"]
    converted = [i for i, s in enumerate(sources) if s != "random"]
    randoms = [i for i, s in enumerate(sources) if s == "random"]
    rows = train.select(sorted(converted + rng.sample(randoms, min(args.replay, len(randoms)))))
    replay = [ArchGraph.from_json(r["graph"]) for r in rows]
    times = [args.converted_repeat if s != "random" else 1 for s in rows["source"]]
    graphs = good * args.repeat + [g for g, k in zip(replay, times) for _ in range(k)]
    texts = [None] * (len(good) * args.repeat) + [d for d, k in zip(rows["description"], times) for _ in range(k)]
    order = list(range(len(graphs)))
    rng.shuffle(order)
    gen = load(args.gen)
    t0 = time.time()
    out = gen.finetune([graphs[i] for i in order], [texts[i] for i in order], steps=args.steps, lr=args.lr,
                       batch_tokens=args.batch_tokens, mlm_rate=args.mlm_rate, seed=args.seed, progress=True,
                       anchor=args.anchor)
    per_pool = {name: sum(p == name for p, _, _ in kept) for name in labelled}
    gen.record["finetune"][-1].update({
        "data": {"source": "bench/ghn_calibrate.py pools, 100-step mnist5k labels",
                 "min_acc": args.min_acc, "kept_per_pool": per_pool, "labelled_per_pool": labelled,
                 "repeat": args.repeat, "replay_train_split": len(replay), "converted_repeat": args.converted_repeat,
                 "batch_tokens": args.batch_tokens},
        "script": "bench/generator_finetune.py", "from": str(args.gen),
        "hardware": {"device": str(gen.device), "cpu": platform.machine(), "threads": torch.get_num_threads()}})
    if args.blend:
        out["blend"] = blend_back(gen, load(args.gen), args)
    gen.save(args.out)
    print(json.dumps({**out, "kept": len(good), "per_pool": per_pool, "replay": len(replay),
                      "wall_seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
