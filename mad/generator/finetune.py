"""Fine-tuning a loaded generator on a handful of graphs (e.g. an architecture search's best ones so far).

:func:`finetune` (or :meth:`Generator.finetune <mad.generator.api.Generator.finetune>`) turns each graph into a
training example the way the corpus does (:func:`~mad.generator.corpus.graph_example`: its uncompressed tokens
cropped to the model's ``max_len``, its true constraints as condition tokens, its description and two
paraphrases as prompts), then runs a few AdamW steps of the training objective
(:func:`~mad.generator.train.loss_of`: next-token steps and, at ``mlm_rate``, masked steps) with a short warm-up
and a constant learning rate. With ``anchor`` > 0 a penalty holds the predictions near the starting model's:
``anchor`` times KL(start || tuned) of the next-token (or masked-token) distributions at the targets, so the
tuned model learns the graphs without narrowing what it samples elsewhere as much.
:func:`blend` does the same after the fact, in weight space: it moves a fine-tuned generator part of the way
back toward the model it started from (an interpolation of the two weight sets), which keeps much of what
the fine-tune taught while giving back some of the diversity it took.
The generator's weights change in place; its ``record["finetune"]`` says how,
and the WL hashes of the graphs it learned join its ``train_hashes`` (novelty is measured against them), so a
saved checkpoint keeps that history.

Example:
    >>> gen = load("default")
    >>> result = gen.finetune(best_graphs, steps=20)    # best_graphs: e.g. a search's top-scoring graphs
    >>> result["loss_after"] < result["loss_before"]
    True
"""

from __future__ import annotations

import copy
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mad.graph import ArchGraph

from .corpus import Example, graph_example
from .train import Batcher, TrainConfig, _to, logits_of, loss_of

if TYPE_CHECKING:
    from .api import Generator

__all__ = ["blend", "finetune"]

log = logging.getLogger(__name__)
PARAPHRASES = 2
WARMUP = 5  # steps of linear warm-up (at most a fifth of the run)
WEIGHT_DECAY = 0.01
CLIP = 1.0


def _examples(gen: "Generator", graphs: list[ArchGraph], texts: list[str | None], seed: int
              ) -> tuple[list[Example], int]:
    """The training examples of ``graphs`` and how many graphs gave none."""
    vocab = gen.tokenizer.vocab.ids
    out, skipped = [], 0
    for i, (g, text) in enumerate(zip(graphs, texts)):
        try:
            if not getattr(g, "nodes", None):
                raise ValueError("not a graph with nodes")
            description = text or (g.meta.get("description") if isinstance(g.meta, dict) else None)
            ex = graph_example(g, description, source=f"finetune/{i}", seed=seed * 7919 + i, paraphrases=PARAPHRASES,
                               max_len=gen.cfg.max_len, tokenizer=gen.tokenizer)
            unknown = [t for t in ex.tokens if t not in vocab]
            if unknown:
                raise ValueError(f"tokens outside the generator's vocabulary: {unknown[:3]}")
            if len(ex.tokens) < 2:
                raise ValueError("fewer than two tokens")
        except Exception as e:  # noqa: BLE001 - a graph that cannot be tokenized is skipped, and said so
            log.warning("finetune: skipped graph %d (%s): %s", i, getattr(g, "name", "?"),
                        str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
            skipped += 1
            continue
        out.append(ex)
    return out, skipped


@torch.no_grad()
def _next_token_loss(model, batcher: Batcher, device: Any) -> float:
    """Mean next-token loss per target token over all of ``batcher``'s examples (full prompts, no dropout)."""
    chunks = batcher.pack(sorted(range(len(batcher.ex)), key=lambda i: len(batcher.ids[i])))
    total, count = 0.0, 0
    for idx in chunks:
        batch = _to(batcher.make(idx, masked=False, train=False), device)
        k = int((batch["target"] != -100).sum())
        loss, _ = loss_of(model, batch)
        total += float(loss) * k
        count += k
    return total / max(1, count)


def _drift(logits: torch.Tensor, start: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean KL(start || tuned) of the token distributions at the batch's targets (``logits``: the tuned
    model's)."""
    sel = batch["target"] != -100
    if not bool(sel.any()):
        return logits.sum() * 0.0
    with torch.no_grad():
        ref = torch.log_softmax(logits_of(start, batch)[sel].float(), dim=-1)
    return F.kl_div(torch.log_softmax(logits[sel].float(), dim=-1), ref, log_target=True, reduction="batchmean")


def finetune(gen: "Generator", graphs: list[ArchGraph], texts: list[str | None] | None = None, steps: int = 20,
             lr: float = 3e-4, batch_tokens: int = 4096, mlm_rate: float = 0.25, seed: int = 0,
             progress: bool = False, anchor: float = 0.0) -> dict[str, Any]:
    """Fine-tune ``gen``'s model in place on ``graphs``; see the module docstring.

    Args:
        gen: a loaded :class:`~mad.generator.api.Generator`.
        graphs: the graphs to learn (a graph that cannot be tokenized is skipped and counted).
        texts: a prompt per graph (``None`` entries allowed); by default each graph's ``meta["description"]``
            or, without one, its description read off the graph (:func:`~mad.data.describe.describe`).
        steps: AdamW steps (0 only measures the loss).
        lr: the learning rate after a short linear warm-up.
        batch_tokens: graph tokens per batch.
        mlm_rate: share of the steps in masked mode.
        seed: seeds the paraphrases, the batch order, the masking and the prompt dropout.
        progress: show a progress bar over the steps (for long runs).
        anchor: weight of the KL penalty toward the starting model's predictions (0: none; it costs a forward
            pass of a frozen copy per step).

    Returns:
        ``{"steps", "graphs" (used), "skipped", "loss_before", "loss_after", "seconds"}``; the losses are the mean
        next-token loss on the used graphs in eval mode, before and after. The same (plus ``lr``, ``mlm_rate``
        and ``seed``) is appended to ``gen.record["finetune"]``; the used graphs' WL hashes join
        ``gen.train_hashes``.

    Raises:
        ValueError: no graphs, ``texts`` of another length, a bad setting, or no graph that could be tokenized.
    """
    graphs = list(graphs or [])
    if not graphs:
        raise ValueError("finetune() needs at least one graph; pass the graphs to learn from")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not 0.0 <= mlm_rate <= 1.0:
        raise ValueError(f"mlm_rate must be in [0, 1], got {mlm_rate!r}")
    if batch_tokens < 1:
        raise ValueError(f"batch_tokens must be >= 1, got {batch_tokens!r}")
    if not (isinstance(anchor, (int, float)) and math.isfinite(anchor) and anchor >= 0):
        raise ValueError(f"anchor must be a finite number >= 0, got {anchor!r}")
    texts = [None] * len(graphs) if texts is None else list(texts)
    if len(texts) != len(graphs):
        raise ValueError(f"texts has {len(texts)} entries for {len(graphs)} graphs; give one per graph (or None)")

    started = time.perf_counter()
    examples, skipped = _examples(gen, graphs, texts, seed)
    if not examples:
        raise ValueError(f"none of the {len(graphs)} graphs could be tokenized; nothing to fine-tune on")
    tcfg = TrainConfig(steps=steps, lr=lr, batch_tokens=batch_tokens, mlm_rate=mlm_rate, seed=seed)
    vocab = gen.tokenizer.vocab.ids
    batcher = Batcher(examples, vocab, gen.cond_vocab, gen.text_encoder, gen.cfg, tcfg, seed=seed)
    model, device = gen.model, gen.device
    warmup = min(WARMUP, max(1, steps // 5))
    done, losses = 0, []
    try:
        model.eval()
        loss_before = _next_token_loss(model, batcher, device)  # draws nothing from its rng
        if steps:
            opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY, betas=(0.9, 0.98))
            start = copy.deepcopy(model).eval().requires_grad_(False) if anchor else None
            model.train()
            epoch: list[list[int]] = []
            with tqdm(total=steps, desc="finetune", disable=not progress) as bar:
                for step in range(steps):
                    if not epoch:
                        epoch = batcher.batches()
                    idx = epoch.pop()
                    masked = batcher.rng.random() < mlm_rate
                    batch = batcher.make(idx, masked=masked)
                    if masked and not bool((batch["target"] != -100).any()):  # nothing got masked: a causal step
                        batch = batcher.make(idx, masked=False)
                    for group in opt.param_groups:
                        group["lr"] = lr * min(1.0, (step + 1) / warmup)
                    batch = _to(batch, device)
                    logits = logits_of(model, batch)
                    loss, m = loss_of(model, batch, logits)
                    if start is not None:  # m["loss"] stays the cross-entropy (the figure the record keeps)
                        loss = loss + anchor * _drift(logits, start, batch)
                    opt.zero_grad(set_to_none=True)
                    if not math.isfinite(loss.item()):
                        log.warning("finetune: step %d has a non-finite loss; skipped", step)
                        bar.update(1)
                        continue
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
                    opt.step()
                    losses.append(m["loss"])
                    done += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{m['loss']:.3f}")
            model.eval()
        loss_after = _next_token_loss(model, batcher, device)
    finally:
        model.eval()
    seconds = time.perf_counter() - started
    out = {"steps": done, "graphs": len(examples), "skipped": skipped, "loss_before": round(loss_before, 4),
           "loss_after": round(loss_after, 4), "seconds": round(seconds, 2)}
    entry = {**out, "lr": lr, "mlm_rate": mlm_rate, "seed": seed, **({"anchor": anchor} if anchor else {})}
    if losses:
        entry["train_loss"] = round(float(np.mean(losses)), 4)
    gen.record.setdefault("finetune", []).append(entry)
    gen.train_hashes = sorted(set(gen.train_hashes) | {e.wl_hash for e in examples})
    log.info("finetune: %d steps on %d graphs (%d skipped), next-token loss %.4f -> %.4f in %.1f s", done,
             len(examples), skipped, loss_before, loss_after, seconds)
    return out


@torch.no_grad()
def blend(gen: "Generator", other: "Generator", weight: float, note: str = "") -> dict[str, Any]:
    """Interpolate ``gen``'s weights toward ``other``'s in place: ``(1 - weight) * gen + weight * other``.

    Both must be the same model (configuration, condition vocabulary and tokenizer); with ``gen`` a fine-tuned
    generator and ``other`` the one it was tuned from, ``weight`` is the share of the fine-tune given back.
    ``gen.record["blend"]`` gets an entry (``weight``, ``note`` saying what ``other`` is, and the relative size
    of the change), and ``other``'s training hashes join ``gen.train_hashes`` (novelty is measured against
    everything either has learned).

    Raises:
        ValueError: a weight outside [0, 1] or two models that differ in shape or vocabulary.
    """
    if not (isinstance(weight, (int, float)) and 0.0 <= float(weight) <= 1.0):
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}")
    if other.cfg != gen.cfg or other.cond_list != gen.cond_list:
        raise ValueError("blend() needs two generators of the same configuration and condition vocabulary")
    if other.tokenizer.vocab.version != gen.tokenizer.vocab.version:
        raise ValueError("blend() needs two generators of the same tokenizer version")
    mine, theirs = gen.model.state_dict(), other.model.state_dict()
    if mine.keys() != theirs.keys() or any(mine[k].shape != theirs[k].shape for k in mine):
        raise ValueError("blend() needs two models with the same parameters and shapes")
    # all new values first: tied parameters (the head and the token table) share one tensor under two names
    new = {k: torch.lerp(v.float(), theirs[k].to(v.device).float(), float(weight))
           for k, v in mine.items() if v.is_floating_point()}
    moved = sum(float((new[k] - mine[k].float()).pow(2).sum()) for k in new)
    total = sum(float(mine[k].float().pow(2).sum()) for k in new)
    for k, v in new.items():
        mine[k].copy_(v.to(mine[k].dtype))
    gen.model.eval()
    entry = {"weight": float(weight), "note": note, "relative_change": round(math.sqrt(moved / max(total, 1e-30)), 6)}
    gen.record.setdefault("blend", []).append(entry)
    gen.train_hashes = sorted(set(gen.train_hashes) | set(other.train_hashes))
    return entry
