"""How the loop asks the generator for signal classifiers: as 1-D networks, or as one-pixel-high image networks.

    python bench/signal_prompt.py                       # mnist1d, 3 seeds x 24 graphs per way (~6 min on 2 cores)
    python bench/signal_prompt.py --seeds 1 --graphs 4 --out /tmp/s.json   # a smoke run

For a ``(C, L)`` signal task the loop (``mad.agent.loop.task_prompt``) asks the generator for ``C x 1 x L``
images, which the search space reads the signal into through an ``unsqueeze`` (``retarget``,
``passes.image_as_signal``). This compares, on the same seeds:

* ``signal``: the sentence and input shape of the task itself ("a classifier for 1-D signals of length 40",
  ``(1, 40)``), the loop's request before;
* ``image``: the loop's request now ("an image classifier for 1x40 grayscale images", ``(1, 1, 40)``);
* ``random``: the random space's draws (``GraphSpace.sample``), the loop's other fresh proposals.

Each way draws ``--graphs`` distinct admissible candidates per seed (the agent benchmark's limits: 50k parameters,
20 MFLOPs; two samples per ``suggest`` call, as the loop draws them) and trains each with the agent benchmark's
recipe (``mad.train.fit`` through ``mad.agent.evaluate.train_graph``: 50 steps, batch 64, lr 3e-3). Reported per
way: mean, median and best validation accuracy, the share above 50%, the generator's seconds per candidate.

Writes ``bench/results/signal_prompt.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).parent / "results" / "signal_prompt.json"
MAX_PARAMS, MAX_FLOPS = 50_000, 20_000_000


def requests(task: str) -> dict[str, tuple[str, dict]]:
    """The two ways of asking: the task's own signal shape, and the loop's image request."""
    from mad.agent.loop import task_prompt
    from mad.data import tasks

    info = tasks.info(task)
    image_text, image_kw = task_prompt(task, max_params=MAX_PARAMS, max_flops=MAX_FLOPS)
    signal_text = f"a classifier for 1-D signals of length {info.input_shape[-1]} with {info.num_classes} classes"
    return {"signal": (signal_text, {**image_kw, "input_shape": tuple(info.input_shape)}),
            "image": (image_text, image_kw)}


def draw(way: str, task: str, n: int, seed: int, gen, ask: dict) -> tuple[list, float]:
    """``n`` distinct admissible candidates of one way, and the generator's seconds."""
    from mad.agent import GraphSpace

    space = GraphSpace(task, max_params=MAX_PARAMS, max_flops=MAX_FLOPS)
    rng = random.Random(seed)
    out, keys, seconds = [], set(), 0.0
    for _ in range(50 * n):
        if len(out) >= n:
            break
        if way == "random":
            graphs = [space.sample(rng).graph]
        else:
            text, kw = ask[way]
            t0 = time.perf_counter()
            try:
                graphs = gen.suggest(text, n=2, seed=rng.randrange(2**20), oversample=1, max_len=256,
                                     rank="likelihood", **kw)
            except Exception:  # noqa: BLE001 - a request that found nothing this time: the next seed
                graphs = []
            seconds += time.perf_counter() - t0
            adopted = []
            for g in graphs:
                try:
                    adopted.append(space.adopt(g, "generator").graph)
                except Exception:  # noqa: BLE001 - one the task cannot take is not a candidate (as in the loop)
                    pass
            graphs = [g for g in adopted if space.within(g)]
        for g in graphs:
            h = g.wl_hash()
            if h not in keys and len(out) < n:
                keys.add(h)
                out.append(g)
    return out, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="mnist1d")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--graphs", type=int, default=24, help="candidates per way and seed")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    import torch

    import mad.generator
    from mad.agent.evaluate import TrainSettings, train_graph

    torch.set_num_threads(1)
    gen = mad.generator.load("default", device="cpu")
    ask = requests(args.task)
    settings = TrainSettings(steps=50, batch_size=64, lr=3e-3).as_dict()
    res: dict = {"task": args.task, "seeds": args.seeds, "graphs_per_seed": args.graphs,
                 "requests": {k: {"text": t, "input_shape": list(kw["input_shape"])} for k, (t, kw) in ask.items()},
                 "train": settings, "max_params": MAX_PARAMS, "max_flops": MAX_FLOPS, "ways": {},
                 "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
                 "date": time.strftime("%Y-%m-%d")}
    for way in ("signal", "image", "random"):
        values, seconds, drawn = [], 0.0, 0
        for seed in range(args.seeds):
            graphs, sec = draw(way, args.task, args.graphs, seed, gen, ask)
            seconds, drawn = seconds + sec, drawn + len(graphs)
            for g in graphs:
                r = train_graph(g.to_json(), args.task, settings)
                values.append(r["value"] if r["value"] is not None else 0.0)  # a failed training counts as 0
        res["ways"][way] = {
            "graphs": drawn, "mean": statistics.fmean(values), "median": statistics.median(values),
            "best": max(values), "share_above_half": sum(v > 0.5 for v in values) / len(values),
            "generator_seconds_per_graph": seconds / drawn if way != "random" else None, "values": values}
        w = res["ways"][way]
        print(f"{way}: {drawn} graphs, mean {w['mean']:.3f}, median {w['median']:.3f}, best {w['best']:.3f}, "
              f"above 50% {w['share_above_half']:.2f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
