"""Training the graph transformer: next-token prediction and masked recovery over the corpus.

``mad generator train --out ckpt/`` (or :func:`train`) builds the corpus
(:mod:`mad.generator.corpus`, cached in ``out/corpus.jsonl``), then trains with
AdamW and cosine decay through ``accelerate`` (CUDA when present). Each step is
one length-bucketed batch in one of two modes:

- causal (``1 - mlm_rate`` of the steps): predict every graph token from the
  prompt and the tokens before it; this is suggestion and completion;
- masked (``mlm_rate``): 15% of the nodes have their op and keys replaced by
  ``<mask>`` and 10% of the input references too (their edges are removed from
  the structure bias as well); the model sees the whole sequence and recovers
  them: masked op, attr and edge recovery.

Prompts are dropped at random (each condition token with ``cond_drop``, the
sentence with ``text_drop``), so the model also samples without them.

Everything needed to resume is saved every ``save_every`` steps and on
Ctrl-C: ``model.safetensors``, ``config.json``, ``optim.pt`` and ``record.json``
(steps, data, hardware, seconds, loss curve) in ``out``. A folder without
``optim.pt`` (a copy of the shipped checkpoint) continues from its record's
step with a fresh optimizer: that is how the shipped generator's last
segment ran, on a GPU with ``batch_tokens=8192``.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .corpus import Example
from .model import GeneratorConfig, GraphTransformer
from .structure import buckets, token_structure

__all__ = ["TrainConfig", "train", "Batcher", "load_corpus", "save_checkpoint", "WEIGHTS", "CONFIG", "RECORD"]

log = logging.getLogger(__name__)
WEIGHTS, CONFIG, RECORD, OPTIM, CORPUS = "model.safetensors", "config.json", "record.json", "optim.pt", "corpus.jsonl"
HASHES = "train_hashes.txt"  # WL hashes of the training graphs (novelty is measured against them)
MASK_NODES, MASK_REFS = 0.15, 0.10


@dataclass
class TrainConfig:
    """A training run (saved in the record).

    Args:
        steps: optimisation steps.
        lr, warmup, weight_decay: AdamW with linear warm-up and cosine decay.
        batch_tokens: graph tokens per batch (batches are bucketed by length).
        mlm_rate: share of steps in masked mode.
        cond_drop, text_drop: prompt dropout.
        extra_random: random-space graphs added to the dataset's train split.
        paraphrases: rewritten prompts per graph.
        max_train_graphs: cap on dataset rows (None: all).
        model: :class:`GeneratorConfig` fields other than the vocabularies.
        seed: everything random derives from it.
        save_every: checkpoint period in steps.
        eval_every: held-out loss period in steps.
        zoo_repeat: times each converted model (``zoo/`` source) appears per epoch, to weigh the real
            architectures against the far more numerous random-space graphs.
    """

    steps: int = 4500
    lr: float = 1e-3
    warmup: int = 60
    weight_decay: float = 0.01
    batch_tokens: int = 4096
    mlm_rate: float = 0.5
    cond_drop: float = 0.3
    text_drop: float = 0.15
    extra_random: int = 3000
    paraphrases: int = 3
    max_train_graphs: int | None = None
    model: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    save_every: int = 100
    eval_every: int = 250
    zoo_repeat: int = 1


# ------------------------------------------------------------------------------------------ corpus cache
def load_corpus(path: Path) -> list[Example]:
    return [Example(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _save_corpus(path: Path, examples: list[Example]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        for e in examples:
            f.write(json.dumps(asdict(e)) + "\n")
    tmp.replace(path)


# ------------------------------------------------------------------------------------------ batching
class Batcher:
    """Turns examples into model inputs: length-bucketed batches, prompt dropout, masking.

    Args:
        examples: the corpus.
        vocab: graph token text -> id.
        cond_vocab: condition token text -> id (0 is padding).
        text_encoder: maps prompt texts to vectors.
        cfg: the model config (prefix length, max length).
        tcfg: the training config (token budget, dropout rates).
    """

    def __init__(self, examples: list[Example], vocab: dict[str, int], cond_vocab: dict[str, int], text_encoder,
                 cfg: GeneratorConfig, tcfg: TrainConfig, seed: int = 0) -> None:
        self.ex = examples
        self.vocab = vocab
        self.cond_vocab = cond_vocab
        self.text_encoder = text_encoder
        self.cfg = cfg
        self.tcfg = tcfg
        self.rng = random.Random(seed)
        self.ids = [np.array([vocab[t] for t in e.tokens[: cfg.max_len]], dtype=np.int64) for e in examples]
        self._text_cache: dict[str, torch.Tensor] = {}

    def pack(self, order: list[int]) -> list[list[int]]:
        """Consecutive runs of ``order`` (example indices), each padded batch under the token budget."""
        out, cur, longest = [], [], 0
        for i in order:
            n = len(self.ids[i]) + self.cfg.prefix_len
            if cur and max(longest, n) * (len(cur) + 1) > self.tcfg.batch_tokens:
                out.append(cur)
                cur, longest = [], 0
            cur.append(i)
            longest = max(longest, n)
        if cur:
            out.append(cur)
        return out

    def batches(self) -> list[list[int]]:
        """One epoch of index batches, each under the token budget, in random order (converted models
        ``zoo_repeat`` times)."""
        idx = [i for i, e in enumerate(self.ex) for _ in range(self.tcfg.zoo_repeat if e.source.startswith("zoo/")
                                                              else 1)]
        out = self.pack(sorted(idx, key=lambda i: (len(self.ids[i]), self.rng.random())))
        self.rng.shuffle(out)
        return out

    def text(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in texts if t not in self._text_cache]
        if missing:
            vecs = self.text_encoder.encode(missing)
            for t, v in zip(missing, vecs):
                self._text_cache[t] = v
        return torch.stack([self._text_cache[t] for t in texts])

    def make(self, idx: list[int], masked: bool, train: bool = True) -> dict[str, torch.Tensor]:
        """Model inputs (and targets) of examples ``idx``."""
        cfg, rng = self.cfg, self.rng
        t_max = max(len(self.ids[i]) for i in idx)
        b, p = len(idx), cfg.prefix_len
        tokens = np.full((b, t_max), self.vocab["<pad>"], dtype=np.int64)
        target = np.full((b, t_max), -100, dtype=np.int64)
        role = np.zeros((b, t_max), dtype=np.int64)
        depth = np.zeros((b, t_max), dtype=np.int64)
        keep = np.zeros((b, p + t_max), dtype=bool)
        # the relation buckets feed only the structure bias: (b, P+T, P+T) int64 is most of a batch's bytes
        bucket = np.zeros((b, p + t_max, p + t_max), dtype=np.int64) if cfg.structure_bias else None
        cond = np.zeros((b, cfg.max_cond), dtype=np.int64)
        texts = []
        for r, i in enumerate(idx):
            e, ids = self.ex[i], self.ids[i]
            toks = e.tokens[: len(ids)]
            n = len(ids)
            hide: set[int] = set()
            if masked:
                s0 = token_structure(toks)
                n_nodes = len(s0.parents)
                pick = {k for k in range(n_nodes) if rng.random() < MASK_NODES} if train else set()
                if not train:  # evaluation: a fixed 15% of the nodes, inputs kept
                    pick = {k for k in range(n_nodes) if (k * 7919 + i) % 100 < 15 and k > 0}
                hidden = [t for t in range(n) if s0.node[t] in pick and s0.role[t] in (3, 4)]
                if train:
                    hidden += [t for t in range(n) if s0.role[t] == 2 and toks[t].startswith("@")
                               and rng.random() < MASK_REFS]
                hide = {t for t in hidden if s0.role[t] == 2}
                row = ids.copy()
                row[hidden] = self.vocab["<mask>"]
                tokens[r, :n] = row
                target[r, hidden] = ids[hidden]
            else:
                tokens[r, :n] = ids
                target[r, : n - 1] = ids[1:]
            s = token_structure(toks, hide=hide)
            role[r, :n], depth[r, :n] = s.role, s.depth
            keep[r, : p] = True
            keep[r, p: p + n] = True
            if bucket is not None:
                bucket[r] = buckets(s, p, t_max)
            conds = [c for c in e.cond if c in self.cond_vocab]
            if train:
                conds = [] if rng.random() < self.tcfg.cond_drop / 2 else [
                    c for c in conds if rng.random() >= self.tcfg.cond_drop]
            conds = conds[: cfg.max_cond]
            cond[r, : len(conds)] = [self.cond_vocab[c] for c in conds]
            keep[r, 1: 1 + cfg.max_cond] = cond[r] > 0
            if train:
                texts.append("" if rng.random() < self.tcfg.text_drop else rng.choice(e.texts))
            else:
                texts.append(e.texts[0])
        pos = np.broadcast_to(np.arange(t_max), (b, t_max)).copy()
        out = {"tokens": torch.from_numpy(tokens), "target": torch.from_numpy(target),
               "pos": torch.from_numpy(pos), "role": torch.from_numpy(role), "depth": torch.from_numpy(depth),
               "text": self.text(texts), "cond": torch.from_numpy(cond), "keep": torch.from_numpy(keep),
               "masked": torch.tensor(masked)}
        if bucket is not None:
            out["bucket"] = torch.from_numpy(bucket)
        return out


def logits_of(model: GraphTransformer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, T, V) logits of ``model`` on a :class:`Batcher` batch, in the batch's mode (causal or masked)."""
    return model(batch["tokens"], batch["pos"], batch["role"], batch["depth"], batch["text"], batch["cond"],
                 batch.get("bucket"), batch["keep"], masked=bool(batch["masked"]))


def loss_of(model: GraphTransformer, batch: dict[str, torch.Tensor], logits: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of ``model`` (or of its ``logits``, already computed) at the batch's targets."""
    logits = logits_of(model, batch) if logits is None else logits
    tgt = batch["target"]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
    with torch.no_grad():
        sel = tgt != -100
        acc = (logits.argmax(-1)[sel] == tgt[sel]).float().mean().item() if sel.any() else 0.0
    return loss, {"loss": loss.item(), "acc": acc}


# ------------------------------------------------------------------------------------------ checkpoints
def save_checkpoint(model: GraphTransformer, out: Path, extra: dict[str, Any], record: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None, step: int | None = None) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k != "head.weight"}
    save_file(state, str(out / (WEIGHTS + ".tmp")), metadata={"format": "mad.generator"})
    (out / (WEIGHTS + ".tmp")).replace(out / WEIGHTS)
    (out / CONFIG).write_text(json.dumps({"model": model.cfg.to_dict(), **extra}, indent=1))
    (out / RECORD).write_text(json.dumps(record, indent=1))
    if optimizer is not None:
        torch.save({"optimizer": optimizer.state_dict(), "step": step}, out / (OPTIM + ".tmp"))
        (out / (OPTIM + ".tmp")).replace(out / OPTIM)


def _lr(step: int, tcfg: TrainConfig) -> float:
    if step < tcfg.warmup:
        return tcfg.lr * (step + 1) / tcfg.warmup
    frac = (step - tcfg.warmup) / max(1, tcfg.steps - tcfg.warmup)
    return tcfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def train(tcfg: TrainConfig, out: str | Path, resume: bool = False, minutes: float | None = None,
          workers: int = 1, progress: bool = True, device: Any = None) -> Path:
    """Build (or reuse) the corpus and train; returns ``out``. See the module docstring."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from mad.data import load_default
    from mad.graph import ArchGraph
    from mad.tokenizer import GraphTokenizer

    from .corpus import build_corpus
    from .text_encoder import TextEncoder

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg.seed)
    tok = GraphTokenizer.load("default", compress=False)
    ds = load_default()
    corpus_path = out / CORPUS
    rows = ds["train"] if tcfg.max_train_graphs is None else ds["train"].select(
        range(min(tcfg.max_train_graphs, len(ds["train"]))))
    if corpus_path.exists():
        examples = load_corpus(corpus_path)
    else:
        examples = build_corpus(rows, extra_random=tcfg.extra_random, paraphrases=tcfg.paraphrases,
                                max_len=GeneratorConfig(1, 1, **tcfg.model).max_len, seed=tcfg.seed,
                                workers=workers, progress=progress)
        _save_corpus(corpus_path, examples)
    val_path = out / ("val_" + CORPUS)
    if val_path.exists():
        val = load_corpus(val_path)
    else:
        vrows = ds["validation"].select(range(min(200, len(ds["validation"]))))
        val = build_corpus(vrows, paraphrases=0, max_len=GeneratorConfig(1, 1, **tcfg.model).max_len,
                           seed=tcfg.seed + 1, workers=workers, progress=False)
        _save_corpus(val_path, val)
    counts = Counter(c for e in examples for c in e.cond)
    cond_list = ["<none>"] + sorted(c for c, k in counts.items() if k >= 2)
    if resume and (out / CONFIG).exists():
        saved = json.loads((out / CONFIG).read_text())
        cfg = GeneratorConfig.from_dict(saved["model"])
        cond_list = saved["cond_vocab"]
    else:
        cfg = GeneratorConfig(vocab_size=len(tok.vocab), cond_vocab=len(cond_list), **tcfg.model)
    cond_vocab = {c: i for i, c in enumerate(cond_list)}
    text_encoder = TextEncoder(dim=cfg.text_dim)
    model = GraphTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay, betas=(0.9, 0.98))
    step0, curve = 0, []
    record: dict[str, Any] = {}
    if resume and (out / WEIGHTS).exists():
        from .api import load_weights

        load_weights(model, out / WEIGHTS)
        st = torch.load(out / OPTIM, weights_only=True) if (out / OPTIM).exists() else None
        record = json.loads((out / RECORD).read_text()) if (out / RECORD).exists() else {}
        if st is not None:
            opt.load_state_dict(st["optimizer"])
            step0 = int(st["step"])
        else:  # a shipped checkpoint (no optimizer state): continue its schedule from its step, Adam afresh
            step0 = int(record.get("steps", 0))
        curve = record.get("curve", [])
    acc = Accelerator(cpu=device == "cpu")
    model, opt = acc.prepare(model, opt)
    batcher = Batcher(examples, tok.vocab.ids, cond_vocab, text_encoder, cfg, tcfg, seed=tcfg.seed + step0)
    val_batcher = Batcher(val, tok.vocab.ids, cond_vocab, text_encoder, cfg, tcfg, seed=0)
    from .corpus import op_arities, op_input_kinds

    extra = {"cond_vocab": cond_list, "text_encoder": text_encoder.config(), "tokenizer": "default",
             "tokenizer_version": tok.vocab.version, "op_arity": op_arities(examples),
             "op_inputs": op_input_kinds(ArchGraph.from_json(r["graph"]) for r in rows)}
    started = time.time()
    prev_seconds = float(record.get("seconds", 0.0))
    record.setdefault("segments", []).append({"from_step": step0, "train": asdict(tcfg)})  # a resumed run may
    record.update({                                                                         # change settings
        "train": asdict(tcfg), "corpus": {"examples": len(examples), "dataset_train": sum(
            not e.source.startswith("extra-random/") for e in examples), "extra_random": sum(
            e.source.startswith("extra-random/") for e in examples),
            "tokens": int(sum(len(e.tokens) for e in examples))},
        "params": sum(p.numel() for p in acc.unwrap_model(model).parameters()),
        "hardware": {"device": str(acc.device), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available()
                     else None, "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()},
    })

    def save(step: int) -> None:
        record.update({"steps": step, "seconds": round(prev_seconds + time.time() - started, 1), "curve": curve})
        save_checkpoint(acc.unwrap_model(model), out, extra, record, opt, step)

    def evaluate() -> dict[str, float]:
        model.eval()
        res: dict[str, list[float]] = {"val_loss": [], "val_mask_acc": []}
        with torch.no_grad():
            idx = list(range(len(val)))
            for k in range(0, len(idx), 16):
                part = idx[k: k + 16]
                _, m = loss_of(model, _to(val_batcher.make(part, masked=False, train=False), acc.device))
                res["val_loss"].append(m["loss"])
                _, m = loss_of(model, _to(val_batcher.make(part, masked=True, train=False), acc.device))
                res["val_mask_acc"].append(m["acc"])
        model.train()
        return {k: round(float(np.mean(v)), 4) for k, v in res.items()}

    step = step0
    epoch: list[list[int]] = []
    bar = tqdm(total=tcfg.steps, initial=step0, desc="generator", disable=not progress)
    model.train()
    try:
        while step < tcfg.steps:
            if minutes is not None and time.time() - started > minutes * 60:
                log.info("time budget of %.1f min reached at step %d", minutes, step)
                break
            if not epoch:
                epoch = batcher.batches()
            masked = batcher.rng.random() < tcfg.mlm_rate
            batch = _to(batcher.make(epoch.pop(), masked=masked), acc.device)
            for g in opt.param_groups:
                g["lr"] = _lr(step, tcfg)
            loss, m = loss_of(model, batch)
            opt.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            bar.update(1)
            if step % 10 == 0:
                curve.append({"step": step, "mode": "masked" if masked else "causal", **m,
                              "s": round(prev_seconds + time.time() - started, 1)})
                bar.set_postfix(loss=f"{m['loss']:.3f}")
            if step % tcfg.eval_every == 0 or step == tcfg.steps:
                ev = evaluate()
                curve.append({"step": step, **ev})
                log.info("step %d %s", step, ev)
            if step % tcfg.save_every == 0:
                save(step)
    except KeyboardInterrupt:
        log.warning("interrupted at step %d; saving", step)
        save(step)
        raise
    finally:
        bar.close()
    record["final_eval"] = evaluate()
    save(step)
    (out / HASHES).write_text("\n".join(sorted({e.wl_hash for e in examples})) + "\n")
    return out


def _to(batch: dict[str, torch.Tensor], device: Any) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}
