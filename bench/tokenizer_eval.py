"""Graph tokenizer over the shipped dataset: tokens per graph, exact round trips, the 7B Llama config.

    python bench/tokenizer_eval.py                 # every shipped graph, plus Llama-2-7B at full size
    python bench/tokenizer_eval.py --every 10      # a quick look at one graph in ten

For every graph: the token count with repeated blocks compressed (the default) and without, whether
``decode(encode(g))`` gives back the same WL hash, and the seconds to encode and decode. Writes
``bench/results/tokenizer_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mad.data import load_default  # noqa: E402
from mad.graph import ArchGraph  # noqa: E402
from mad.tokenizer import GraphTokenizer  # noqa: E402

OUT = Path(__file__).parent / "results" / "tokenizer_eval.json"
LIMIT = 2048


def _stats(x: list[int]) -> dict[str, float]:
    a = np.array(x)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": int(a.max()),
            "mean": round(float(a.mean()), 1), f"share_le_{LIMIT}": round(float((a <= LIMIT).mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=1, help="Take one graph in N.")
    ap.add_argument("--no-llama", action="store_true", help="Skip the full-size Llama config.")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    tok = GraphTokenizer.load("default")
    flat = GraphTokenizer(tok.vocab, compress=False)
    ds = load_default()
    short, long, exact, enc_s, dec_s, fails = [], [], 0, [], [], []
    by_source: dict[str, list[int]] = {"random": [], "zoo": []}
    t_all = time.time()
    for split in ds:
        d = ds[split].select_columns(["id", "graph"])
        for i in range(0, len(d), args.every):
            row = d[i]
            g = ArchGraph.from_json(row["graph"])
            t0 = time.perf_counter()
            ids = tok.encode(g)
            t1 = time.perf_counter()
            try:
                ok = tok.decode(ids).wl_hash() == g.wl_hash()
            except Exception as e:  # noqa: BLE001 - counted and named
                ok = False
                fails.append(f"{row['id']}: {str(e).splitlines()[0][:200]}")
            t2 = time.perf_counter()
            exact += ok
            short.append(len(ids))
            long.append(len(flat.encode(g)))
            enc_s.append(t1 - t0)
            dec_s.append(t2 - t1)
            by_source["random" if row["id"].startswith("random/") else "zoo"].append(len(ids))
    res = {
        "graphs": len(short), "every": args.every, "exact_round_trips": exact, "failures": fails[:20],
        "tokens": _stats(short), "tokens_uncompressed": _stats(long),
        "tokens_by_source": {k: _stats(v) for k, v in by_source.items() if v},
        "compression": round(float(np.sum(long) / np.sum(short)), 3),
        "encode_ms_median": round(1000 * float(np.median(enc_s)), 2),
        "decode_ms_median": round(1000 * float(np.median(dec_s)), 2),
        "vocab": len(tok.vocab), "vocab_version": tok.vocab.version, "seconds": round(time.time() - t_all, 1),
        "hardware": {"cpu": platform.processor() or platform.machine()},
    }
    if not args.no_llama:
        from mad.code2graph import from_hf

        g = from_hf("llama", device="meta", small=False)
        ids = tok.encode(g)
        res["llama_7b"] = {"nodes": len(g.nodes), "params": g.num_params, "tokens": len(ids),
                           "tokens_uncompressed": len(flat.encode(g)),
                           "exact": tok.decode(ids).wl_hash() == g.wl_hash(), "fits": len(ids) <= LIMIT}
    print(json.dumps(res, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
