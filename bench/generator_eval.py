"""Generator evaluation: masked-op recovery, validity/uniqueness/novelty, completion, prompt adherence, speed,
trainability, and the structure-bias ablation, in one run.

    python bench/generator_eval.py --gen out/gen_bias --ablation out/gen_nobias     # both checkpoints
    python bench/generator_eval.py                                                  # the shipped one only
    python bench/generator_eval.py --quick --out /tmp/g.json                         # a smoke run

* ``masked_op``: on the ``test`` and ``ood`` splits, 15% of the nodes (fixed by position) have their op and
  attrs replaced by ``<mask>`` (their input references stay); top-1 of the op (among the ops seen with the
  node's number of inputs) against the most frequent op in the same context in the training corpus (the op
  of the node's first input and of its first consumer, backing off to either, then to the most frequent op;
  a neighbour masked too is not seen, as the model does not see it).
* ``generation``: ``--per-prompt`` samples for each of the benchmark prompts (``mad.generator.PROMPTS``).
  Valid: the sample finished, took the task (``retarget``) and compiles, runs forward and backward at batch
  1 and 4, as it is or closed at one of its last 3 admissible earlier nodes (``closed_earlier`` counts
  those; it is what ``suggest`` does). Unique: distinct WL hashes among the valid. Novel: unique ones whose
  raw sample (before the task's head) is not a training graph (dataset ``train`` split and the extra
  random-space graphs).
  Statistics: Jensen-Shannon divergence of op histograms and the KS statistic of log node counts against
  the ``test`` split, with the ``train`` split against ``test`` as the reference.
* ``completion``: zoo models of ``test``/``ood`` cut at 25/50/75% of their nodes (``mad.graph.passes.cut``) and
  completed (one result; 2 samples a round, up to 3 rounds while none passes): valid, right output (the
  original's output shape), how many ended by a projection to that shape (``projected_to_output``: no
  sample reached a node of it), and the cosine similarity of the op histograms of the generated part and the
  removed part.
* ``adherence``: ``suggest(prompt, n=5)`` for every benchmark prompt: the share of constraints met over all
  results, and the share of prompts with at least one result meeting all.
* ``speed``: samples of unconditional image classifiers per second on this CPU (sampling, then the
  compile/forward/backward check) for graphs of at most 200 nodes: three batches of 256 after a warm-up batch,
  each shared by two processes (``Sampler.workers = 2``, one per core; the check likewise), with the
  sampler's shape checks (``mad.generator.fits``) and, in the same run, without them, and in one process of
  two torch threads (batches of 64). ``speed.machine`` measures this CPU on the two kernels a decoding step is
  made of (one thread: a layer's matrix product in GFLOP/s, one-token attention over the cache in GB/s), so
  figures from different machines can be compared.
* ``decode_step``: milliseconds per sequence of one cached decoding step of a model of the shipped sizes with
  6, 3, 2 and 1 key/value heads (``GeneratorConfig.n_kv_heads``; random weights, one thread, 64 sequences over
  320 cached positions): what a generator trained with grouped-query attention would save in the model's part
  of sampling. The shipped one has one key/value head per query head.
* ``trainability``: 100-step mnist5k validation accuracy (``mad.train.fit``, AdamW 1e-3, batch 64, seed 0)
  of generated classifiers against random-space ones of the same budget: for each of 3 seeds, the first 8 of
  ``suggest(prompt, n=96, oversample=1)`` (all 96 samples, ranked) within 20 MFLOPs, ranked as ``suggest``
  does by default (``auto``: by the GHN's quality estimate, since the prompt fits mnist5k) and, in the same
  run, by likelihood; against 24 random-space graphs within the same caps.

Writes ``bench/results/generator_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mad.data import load_default  # noqa: E402
from mad.generator import PROMPTS, Generator, load, runs  # noqa: E402
from mad.generator.api import output_rule  # noqa: E402
from mad.generator.corpus import build_corpus  # noqa: E402
from mad.generator.sample import MAX_REFS, fork_starmap  # noqa: E402
from mad.generator.structure import ROLE, token_structure  # noqa: E402
from mad.generator.train import Batcher, TrainConfig, load_corpus  # noqa: E402
from mad.graph import ArchGraph  # noqa: E402

OUT = Path(__file__).parent / "results" / "generator_eval.json"


# ------------------------------------------------------------------------------------------ masked op
def _node_contexts(tokens: list[str], s=None, hidden=frozenset()) -> list[tuple[str, str | None, str | None]]:
    """(op, first input's op, first consumer's op) of every node of a token sequence (``s``: its
    ``token_structure``); ``-`` where there is none, ``None`` where that node is in ``hidden``."""
    s = token_structure(tokens) if s is None else s
    ops = [tokens[t][3:] for t in range(len(tokens)) if s.role[t] == ROLE["op"]]
    consumer: dict[int, int] = {}
    for i, ps in enumerate(s.parents):
        for p in ps:
            consumer.setdefault(p, i)

    def op_of(j: int | None) -> str | None:
        return "-" if j is None else None if j in hidden else ops[j]

    return [(op, op_of(s.parents[i][0] if s.parents[i] else None), op_of(consumer.get(i))) for i, op in enumerate(ops)]


class ContextBaseline:
    """The most frequent op in the training corpus given the ops around a node (first input's, first
    consumer's), backing off to one of them and then to the most frequent op. A neighbour that is masked too
    is not seen (``None``), as the model does not see it."""

    def __init__(self, corpus) -> None:
        self.tables: dict[str, dict] = {"both": {}, "input": {}, "consumer": {}}
        self.c0: Counter = Counter()
        for e in corpus:
            for op, a, b in _node_contexts(e.tokens):
                self.tables["both"].setdefault((a, b), Counter())[op] += 1
                self.tables["input"].setdefault(a, Counter())[op] += 1
                self.tables["consumer"].setdefault(b, Counter())[op] += 1
                self.c0[op] += 1

    def predict(self, a: str | None, b: str | None) -> str:
        for table, key, seen in (("both", (a, b), a is not None and b is not None), ("input", a, a is not None),
                                 ("consumer", b, b is not None)):
            hit = self.tables[table].get(key) if seen else None
            if hit:
                return hit.most_common(1)[0][0]
        return self.c0.most_common(1)[0][0]


def masked_op(gen: Generator, examples, baseline: ContextBaseline) -> dict[str, float]:
    """Top-1 of masked ops (op and attrs hidden) for the model, its prediction restricted to the ops seen with
    the node's number of inputs (the node's edges stay visible), and for the baseline (which, like the model,
    does not see the ops of neighbours that are masked too)."""
    tok = gen.tokenizer
    b = Batcher(examples, tok.vocab.ids, gen.cond_vocab, gen.text_encoder, gen.cfg, TrainConfig(), seed=0)
    hit = base_hit = total = 0
    gen.model.eval()
    with torch.no_grad():
        for k in range(0, len(examples), 16):
            idx = list(range(k, min(k + 16, len(examples))))
            batch = b.make(idx, masked=True, train=False)
            batch = {kk: v.to(gen.device) for kk, v in batch.items()}
            logits = gen.model(batch["tokens"], batch["pos"], batch["role"], batch["depth"], batch["text"],
                               batch["cond"], batch.get("bucket"), batch["keep"], masked=True)
            logits = logits.cpu()
            tgt = batch["target"].cpu()
            role = batch["role"].cpu()
            for r, i in enumerate(idx):
                toks = examples[i].tokens[: b.ids[i].shape[0]]
                s = token_structure(toks)
                sel = ((tgt[r] >= 0) & (role[r] == ROLE["op"])).nonzero().flatten().tolist()
                ctx = _node_contexts(toks, s, hidden={int(s.node[t]) for t in sel})
                for t in sel:
                    total += 1
                    j = int(s.node[t])
                    allowed = torch.from_numpy(gen.sampler.ops_with[min(len(s.parents[j]), MAX_REFS)])
                    hit += int(logits[r, t].masked_fill(~allowed, float("-inf")).argmax() == tgt[r, t])
                    op, a, c = ctx[j]
                    base_hit += int(baseline.predict(a, c) == op)
    return {"nodes": total, "top1": round(hit / max(total, 1), 4), "baseline_top1": round(base_hit / max(total, 1), 4)}


# ------------------------------------------------------------------------------------------ generation
def _op_hist(graphs) -> Counter:
    c: Counter = Counter()
    for g in graphs:
        c.update(n.op for n in g.nodes.values() if n.op not in ("input",))
    return c


def _js(a: Counter, b: Counter) -> float:
    keys = sorted(set(a) | set(b))
    p = np.array([a[k] for k in keys], float)
    q = np.array([b[k] for k in keys], float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x, y):
        nz = x > 0
        return float((x[nz] * np.log2(x[nz] / y[nz])).sum())

    return round((kl(p, m) + kl(q, m)) / 2, 4)


def _ks(a: list[float], b: list[float]) -> float:
    from scipy.stats import ks_2samp

    return round(float(ks_2samp(a, b).statistic), 4)


def _cos(a: Counter, b: Counter) -> float:
    keys = set(a) | set(b)
    num = sum(a[k] * b[k] for k in keys)
    den = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return num / den if den else 0.0


def generation(gen: Generator, per_prompt: int, train_hashes: set[str], test_graphs, train_graphs,
               seed: int = 0) -> dict:
    from mad.generator.prompt import parse_prompt

    sampled = valid = closed_earlier = 0
    raw_hashes, valid_graphs, errors = [], [], Counter()
    t0 = time.time()
    for k, bp in enumerate(PROMPTS):
        c = parse_prompt(bp.text)
        task = gen._task(c)  # noqa: SLF001 - the same task suggest() would choose
        prefix = gen._start_graph(task[0], task[1], task[3], c, bp.text)  # noqa: SLF001 - as suggest() starts
        text, cond, words = gen._condition(bp.text, c)  # noqa: SLF001
        samples = gen.sampler.sample(per_prompt, text, cond, prefix, max_len=gen.cfg.max_len, temperature=1.0,
                                     seed=seed + k, output_ok=output_rule(task[0]))
        for s in samples:
            sampled += 1
            if s.graph is None:
                errors["unfinished"] += 1
                continue
            fin = gen._finish([s], type(c)(), task, bp.text, seed, words,  # noqa: SLF001 - retarget + runs
                              output_ok=output_rule(task[0]))
            if not fin:
                errors["task or run check"] += 1
                continue
            valid += 1
            meta = fin[0][1].meta["generator"]
            closed_earlier += meta["closed_earlier"] > 0
            raw_hashes.append(meta["raw_hash"])
            valid_graphs.append(fin[0][1])
    uniq = {g.wl_hash(): (g, h) for g, h in zip(valid_graphs, raw_hashes)}
    novel = sum(h not in train_hashes for _, h in uniq.values())
    gens = [g for g, _ in uniq.values()]
    return {
        "sampled": sampled, "valid": valid, "validity": round(valid / max(sampled, 1), 4),
        "uniqueness": round(len(uniq) / max(valid, 1), 4), "novelty": round(novel / max(len(uniq), 1), 4),
        "invalid_reasons": dict(errors), "closed_earlier": closed_earlier, "seconds": round(time.time() - t0, 1),
        "stats_vs_test": {
            "op_hist_js": _js(_op_hist(gens), _op_hist(test_graphs)) if gens else None,
            "log_nodes_ks": _ks([math.log(len(g.nodes)) for g in gens], [math.log(len(g.nodes)) for g in test_graphs])
            if gens else None,
            "reference_train_vs_test": {"op_hist_js": _js(_op_hist(train_graphs), _op_hist(test_graphs)),
                                        "log_nodes_ks": _ks([math.log(len(g.nodes)) for g in train_graphs],
                                                            [math.log(len(g.nodes)) for g in test_graphs])},
        },
    }


def completion(gen: Generator, graphs: list[ArchGraph], fractions=(0.25, 0.5, 0.75), seed: int = 0) -> dict:
    from mad.generator import GeneratorError
    from mad.graph.passes import cut

    out: dict[str, dict] = {}
    for f in fractions:
        tried = valid = right = skipped = projected = 0
        sims = []
        for k, g in enumerate(graphs):
            partial = cut(g, fraction=f)
            if len(gen.tokenizer.prefix_tokens(partial)) > gen.cfg.max_len - 16:
                skipped += 1
                continue
            tried += 1
            want = g.nodes[g.outputs[0]].shape
            try:
                res = gen.complete(partial, n=1, output_shape=want, seed=seed + k)[0]
            except GeneratorError:
                continue
            valid += 1
            right += [res.nodes[o].shape for o in res.outputs][:1] == [want]
            projected += bool(res.meta["generator"].get("projected"))
            new_ops = Counter(n.op for n in list(res.nodes.values())[len(partial.nodes):])
            sims.append(_cos(new_ops, Counter(partial.meta["cut"]["removed_ops"])))
        out[f"{int(f * 100)}%"] = {"tried": tried, "skipped_too_long": skipped,
                                   "valid": round(valid / max(tried, 1), 4),
                                   "right_output": round(right / max(tried, 1), 4),
                                   "projected_to_output": projected,
                                   "op_hist_cosine": round(statistics.mean(sims), 4) if sims else None}
    return out


def adherence(gen: Generator, n: int = 5, seed: int = 0) -> dict:
    from mad.generator import GeneratorError

    met = checked = all_met_prompts = 0
    per = []
    for bp in PROMPTS:
        try:
            graphs = gen.suggest(bp.text, n=n, seed=seed)
        except GeneratorError as e:
            per.append({"prompt": bp.name, "results": 0, "error": str(e)[:200]})
            continue
        scores = []
        for g in graphs:
            ch = g.meta["generator"]["checks"]
            met += sum(ch.values())
            checked += len(ch)
            scores.append(g.meta["generator"]["adherence"])
        best = max(scores) if scores else 0.0
        all_met_prompts += best == 1.0
        per.append({"prompt": bp.name, "results": len(graphs), "mean": round(statistics.mean(scores), 3),
                    "best": best, "missed": sorted({k for g in graphs for k, ok in g.meta["generator"]["checks"].items()
                                                    if not ok})})
    return {"constraints_met": round(met / max(checked, 1), 4), "prompts": len(PROMPTS),
            "prompts_with_a_fully_met_result": all_met_prompts, "per_prompt": per}


def _check_one(g) -> bool:
    return runs(g) is None


def _speed_batch(gen: Generator, n: int, seed: int, workers: int = 1) -> dict:
    from mad.generator.constraints import Constraints

    c = Constraints()
    task = gen._task(c)  # noqa: SLF001
    prefix = gen._start_graph(task[0], task[1], task[3])  # noqa: SLF001
    text, cond, _ = gen._condition("", c)  # noqa: SLF001
    gen.sampler.workers = workers
    t0 = time.time()
    try:
        samples = gen.sampler.sample(n, text, cond, prefix, max_len=gen.cfg.max_len, seed=seed,
                                     output_ok=output_rule(task[0]))
    finally:
        gen.sampler.workers = 1
    t_sample = time.time() - t0
    small = [s.graph for s in samples if s.graph is not None and len(s.graph.nodes) <= 200]
    t1 = time.time()
    if workers > 1:  # the check shares the cores the same way
        ok = fork_starmap(_check_one, [(g,) for g in small], workers, chunksize=4)
    else:
        ok = [_check_one(g) for g in small]
    return {"finished": sum(s.graph is not None for s in samples), "le_200_nodes": len(small),
            "valid_le_200_nodes": sum(ok), "sample_seconds": t_sample, "check_seconds": time.time() - t1,
            "retries": sum(s.retries for s in samples), "nodes": [len(g.nodes) for g in small]}


def _speed_runs(gen: Generator, n: int, seeds: tuple[int, ...], workers: int) -> dict:
    runs_ = [_speed_batch(gen, n, s, workers) for s in seeds]
    tot = {k: sum(r[k] for r in runs_) for k in ("finished", "le_200_nodes", "valid_le_200_nodes",
                                                 "sample_seconds", "check_seconds", "retries")}
    nodes = [x for r in runs_ for x in r["nodes"]]
    return {"batch": n, "workers": workers,
            **{k: round(v, 2) if isinstance(v, float) else v for k, v in tot.items()},
            "valid_per_second_sampling": round(tot["valid_le_200_nodes"] / max(tot["sample_seconds"], 1e-9), 2),
            "valid_per_second_with_check": round(tot["valid_le_200_nodes"] / max(
                tot["sample_seconds"] + tot["check_seconds"], 1e-9), 2),
            "mean_nodes": round(statistics.mean(nodes), 1) if nodes else None}


def machine_reference(seconds: float = 2.0) -> dict:
    """How fast this CPU runs the two kernels a decoding step is made of, on one thread: a (128, 192) x (192, 768)
    matrix product (GFLOP/s; the model's layers) and one-token attention over a (768, 400, 32) key cache (GB/s
    read; the cache). Samples per second move with them from machine to machine."""
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, w = torch.randn(128, 192), torch.randn(768, 192)
        q, k = torch.randn(768, 1, 32), torch.randn(768, 400, 32)

        def rate(fn, work: float) -> float:
            fn()
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                fn()
                reps += 1
            return round(work * reps / (time.perf_counter() - t0) / 1e9, 2)

        return {"threads": 1, "linear_gflops": rate(lambda: F.linear(a, w), 2 * 128 * 192 * 768),
                "attention_cache_gbps": rate(lambda: torch.bmm(q, k.transpose(1, 2)), 4 * k.numel())}
    finally:
        torch.set_num_threads(threads)


def decode_step(gen: Generator, rows: int = 64, cached: int = 320, steps: int = 100,
                kv_heads: tuple[int, ...] = (6, 3, 2, 1)) -> dict:
    """Milliseconds per sequence of one cached decoding step (one thread) of a model of the shipped generator's sizes
    with fewer key/value heads (``GeneratorConfig.n_kv_heads``, grouped-query attention; random weights: the
    figure is the cost, not the quality): ``rows`` sequences over a cache of ``cached`` positions, growing by one
    per step. A step reads the whole cache; fewer heads make it that many times smaller."""
    from mad.generator.model import GeneratorConfig, GraphTransformer, KVCache

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict = {"rows": rows, "cached_positions": cached, "steps": steps, "threads": 1,
                 "model": {k: getattr(gen.cfg, k) for k in ("d_model", "n_layers", "n_heads", "d_ff")}}
    try:
        for kv in kv_heads:
            cfg = GeneratorConfig.from_dict({**gen.cfg.to_dict(), "n_kv_heads": kv})
            m = GraphTransformer(cfg).eval()
            gen_ = torch.Generator().manual_seed(0)
            with torch.no_grad():
                cache = KVCache(cfg.n_layers)
                bucket = torch.zeros(rows, cached, cached, dtype=torch.long) if m.bias is not None else None
                m.step(torch.randn(rows, cached, cfg.d_model, generator=gen_), bucket,
                       torch.ones(cached, cached, dtype=torch.bool).tril()[None].expand(rows, -1, -1), cache)
                t0 = time.perf_counter()
                for i in range(steps):
                    size = cached + i + 1
                    bq = torch.zeros(rows, 1, size, dtype=torch.long) if m.bias is not None else None
                    m.step(torch.randn(rows, 1, cfg.d_model, generator=gen_), bq,
                           torch.ones(rows, 1, size, dtype=torch.bool), cache, head=False)
                ms = (time.perf_counter() - t0) / steps / rows * 1e3
            out[f"kv_heads_{kv}"] = {"ms_per_sequence_step": round(ms, 4)}
        base = out[f"kv_heads_{kv_heads[0]}"]["ms_per_sequence_step"]
        for kv in kv_heads:
            out[f"kv_heads_{kv}"]["speedup"] = round(base / out[f"kv_heads_{kv}"]["ms_per_sequence_step"], 2)
    finally:
        torch.set_num_threads(threads)
    return out


def speed(gen: Generator, n: int = 256, seeds: tuple[int, ...] = (0, 1, 2), workers: int = 2) -> dict:
    """Valid graphs per second over batches of ``n`` unconditional image classifiers (after a warm-up batch)
    drawn by ``workers`` processes (``Sampler.workers``; the check shares them too): with the shape checks of
    :mod:`mad.generator.fits` and, in the same run, without them (each from a cold shape cache), and in one
    process of all the torch threads, batches of 64 (the setting before ``workers``)."""
    out: dict = {"batch": n, "seeds": list(seeds), "threads": torch.get_num_threads(), "workers": workers,
                 "machine": machine_reference()}
    from mad.graph import interpreter

    for name, fits in (("with_fit_checks", True), ("without_fit_checks", False)):
        gen.sampler.fits = fits
        interpreter._SHAPE_CACHE.clear()  # noqa: SLF001 - each setting starts from the same cold shape cache
        _speed_batch(gen, 8, seed=99)  # warm-up: PyTorch's meta kernels, the samplers' caches
        out[name] = _speed_runs(gen, n, seeds, workers)
    gen.sampler.fits = True
    out["one_process"] = _speed_runs(gen, 64, seeds, 1)
    out.update({k: out["with_fit_checks"][k] for k in ("valid_per_second_sampling", "valid_per_second_with_check",
                                                        "mean_nodes")})
    out["speedup_from_fit_checks"] = round(out["with_fit_checks"]["valid_per_second_sampling"] / max(
        out["without_fit_checks"]["valid_per_second_sampling"], 1e-9), 2)
    out["speedup_from_workers"] = round(out["valid_per_second_sampling"] / max(
        out["one_process"]["valid_per_second_sampling"], 1e-9), 2)
    return out


def trainability(gen: Generator, n: int = 8, seeds: tuple[int, ...] = (0, 1, 2), steps: int = 100) -> dict:
    from mad.data.random_space import RandomSpaceConfig, sample
    from mad.train import fit
    from mad.train.proxies import screen

    def usable(graphs, k):
        out = []
        for g in graphs:
            fitted, mflops, why = screen(g, "mnist5k")
            if fitted is not None and mflops is not None and mflops <= 20:
                out.append(fitted)
            if len(out) == k:
                break
        return out

    done: dict[str, float] = {}  # WL hash -> accuracy: a graph both rankings pick is trained once

    def accuracy(g) -> float:
        h = g.wl_hash()
        if h not in done:
            r = fit(g, "mnist5k", steps=steps, batch_size=64, lr=1e-3, seed=0, eval_every=0, progress=False,
                    device="cpu")
            done[h] = float(r.val_accuracy)
        return done[h]

    def summary(per_seed: dict) -> dict:
        accs = [a for v in per_seed.values() for a in v]
        return {"graphs": len(accs), "mean_val_acc": round(statistics.mean(accs), 4) if accs else None,
                "per_seed": {str(k): {"mean_val_acc": round(statistics.mean(v), 4) if v else None,
                                      "accs": [round(a, 4) for a in v]} for k, v in per_seed.items()}}

    prompt = "a convolutional network for 28x28 grayscale digits, 10 classes, under 200k parameters"
    res: dict = {"prompt": prompt, "seeds": list(seeds)}
    for rank in ("auto", "likelihood"):
        per_seed = {}
        for seed in seeds:  # few samples fit the FLOPs cap: rank 12x as many, take the first that fit
            graphs = usable(gen.suggest(prompt, n=12 * n, seed=seed, oversample=1, rank=rank), n)
            per_seed[seed] = [accuracy(g) for g in graphs]
        res[f"generated_{rank}"] = summary(per_seed)
    cfg = RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=200_000)
    rnd = usable((sample(s, cfg) for s in range(1000, 1000 + 10 * n * len(seeds))), n * len(seeds))
    res["random_space"] = summary({"all": [accuracy(g) for g in rnd]})
    r = res["random_space"]["mean_val_acc"]
    for rank in ("auto", "likelihood"):
        g = res[f"generated_{rank}"]["mean_val_acc"]
        res[f"ratio_{rank}"] = round(g / r, 3) if g and r else None
    res["ratio"] = res["ratio_auto"]
    return res


def ablation(main: Generator, other: Path) -> dict:
    """Held-out loss and masked accuracy of two runs at the steps both evaluated, and their seconds per step."""
    rec = json.loads((other / "record.json").read_text())
    cfg = json.loads((other / "config.json").read_text())["model"]

    def evals(r):
        return {c["step"]: c for c in r.get("curve", []) if "val_loss" in c}

    def per_step(r):
        pts = [c for c in r.get("curve", []) if "mode" in c]
        return round(pts[-1]["s"] / pts[-1]["step"], 3) if pts else None

    a, b = evals(main.record), evals(rec)
    steps = sorted(set(a) & set(b))
    key = {True: "with_bias", False: "without_bias"}
    return {"steps": steps,
            key[main.cfg.structure_bias]: {"val_loss": [a[k]["val_loss"] for k in steps],
                                           "val_mask_acc": [a[k]["val_mask_acc"] for k in steps],
                                           "seconds_per_step": per_step(main.record)},
            key[cfg["structure_bias"]]: {"val_loss": [b[k]["val_loss"] for k in steps],
                                         "val_mask_acc": [b[k]["val_mask_acc"] for k in steps],
                                         "seconds_per_step": per_step(rec), "steps_trained": rec.get("steps")},
            "kept": key[main.cfg.structure_bias]}


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gen", default="default", help="Generator checkpoint (default: the shipped one).")
    ap.add_argument("--ablation", default=None, help="The run folder of the same training with the structure bias "
                    "switched the other way: held-out figures compared at equal steps.")
    ap.add_argument("--per-prompt", type=int, default=40)
    ap.add_argument("--completion-graphs", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="Few graphs everywhere (a smoke run).")
    ap.add_argument("--skip", default="", help="Comma-separated parts to skip.")
    ap.add_argument("--update", action="store_true", help="Merge into the results file instead of replacing it "
                    "(with --skip, to rerun some parts).")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(2)
    skip = set(args.skip.split(",")) - {""}
    random.seed(0)
    ds = load_default()
    gens = {"main": load(args.gen, device="cpu")}
    limit = 30 if args.quick else None
    max_len = gens["main"].cfg.max_len

    def rows(split):
        d = ds[split]
        return d if limit is None else d.select(range(min(limit, len(d))))

    res: dict = {"checkpoints": {k: {"path": str(args.gen if k == "main" else args.ablation),
                                     "structure_bias": g.cfg.structure_bias, "params": g.model.num_parameters(),
                                     "record": {kk: g.record.get(kk) for kk in ("steps", "seconds", "corpus",
                                                                                 "hardware", "final_eval",
                                                                                 "finetune", "blend")}}
                                 for k, g in gens.items()},
                 "hardware": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}}
    if args.ablation:
        res["structure_bias_ablation"] = ablation(gens["main"], Path(args.ablation))
        print(json.dumps(res["structure_bias_ablation"]), flush=True)
    t_all = time.time()
    train_corpus, train_hashes = [], set()
    if not {"masked_op", "generation"} <= skip:  # the parts that need them
        corpus_path = Path(args.gen) / "corpus.jsonl"
        train_corpus = load_corpus(corpus_path) if corpus_path.exists() else build_corpus(
            rows("train"), paraphrases=0, max_len=max_len, progress=False)
        train_hashes = {e.wl_hash for e in train_corpus} | set(ds["train"]["wl_hash"])
        for g in gens.values():  # a shipped checkpoint lists the hashes of every graph it was trained on
            train_hashes |= set(g.train_hashes)
    if "masked_op" not in skip:
        baseline = ContextBaseline(train_corpus)
        res["masked_op"] = {}
        for split in ("test", "ood"):
            ex = build_corpus(rows(split), paraphrases=0, max_len=max_len, progress=False)
            res["masked_op"][split] = {k: masked_op(g, ex, baseline) for k, g in gens.items()}
        print(json.dumps(res["masked_op"]), flush=True)
    test_graphs = [ArchGraph.from_json(r["graph"]) for r in rows("test")]
    train_graphs = [ArchGraph.from_json(r["graph"]) for r in ds["train"].select(range(0, len(ds["train"]), 8))]
    if "generation" not in skip:
        per = 2 if args.quick else args.per_prompt
        res["generation"] = {k: generation(g, per, train_hashes, test_graphs, train_graphs) for k, g in gens.items()}
        print(json.dumps(res["generation"]), flush=True)
    main_gen = gens["main"]
    if "completion" not in skip:
        zoo = [ArchGraph.from_json(r["graph"]) for split in ("test", "ood") for r in rows(split)
               if not r["id"].startswith("random/")]
        zoo = [g for g in zoo if len(g.nodes) <= 400][: 4 if args.quick else args.completion_graphs]
        res["completion"] = completion(main_gen, zoo)
        print(json.dumps(res["completion"]), flush=True)
    if "adherence" not in skip:
        res["adherence"] = adherence(main_gen)
        print(json.dumps({k: v for k, v in res["adherence"].items() if k != "per_prompt"}), flush=True)
    if "speed" not in skip:
        res["speed"] = speed(main_gen, n=32 if args.quick else 256, seeds=(0,) if args.quick else (0, 1, 2))
        print(json.dumps(res["speed"]), flush=True)
    if "decode_step" not in skip:
        res["decode_step"] = decode_step(main_gen, steps=20 if args.quick else 100)
        print(json.dumps(res["decode_step"]), flush=True)
    if "trainability" not in skip:
        res["trainability"] = trainability(main_gen, n=2 if args.quick else 8, seeds=(0,) if args.quick else (0, 1, 2))
        print(json.dumps(res["trainability"]), flush=True)
    res["seconds"] = round(time.time() - t_all, 1)
    took = res["seconds"]
    if args.update and args.out.exists():  # "seconds" stays that of the full run that made the file
        res = json.loads(args.out.read_text()) | {k: v for k, v in res.items() if k != "seconds"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(f"wrote {args.out} in {took:.0f} s")


if __name__ == "__main__":
    main()
