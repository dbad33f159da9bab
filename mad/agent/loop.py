"""The MAD loop: generate -> score with the GHN -> train the most promising -> learn, as a :class:`Strategy`.

Each round it builds a pool of ``pool`` x k candidates from three proposers: the generator (conditioned on the
user's prompt, or on the task when there is none), mutations and edits of the elites (the best trained so far),
and fresh random-space draws for exploration. Every admissible candidate is scored without training: the GHN
predicts its parameters and the task's validation split scores them, and a surrogate (:mod:`.surrogate`),
refit each round on the search's own trained results, turns graph features, the parent's result and the GHN
scores into a predicted fitness. The GHN is calibrated there. Where it has a quality estimate for the task, the
surrogate starts from it: its trees fit what the estimate gets wrong, so the first rounds follow the estimate;
from 8 results on, 4-fold cross-validation on the trained results picks between that, the features with the
GHN scores as extra columns, and the features alone. The k with the best optimistic prediction (mean +
``explore`` x spread across the ensemble) are trained. After every ``finetune_every`` rounds the generator is
fine-tuned on the best trained graphs, so it proposes more of what worked.

With ``ghn=False`` it is the same loop without GHN scores (the ablation of the benchmark).
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Any

from .records import History, error_text
from .space import Candidate
from .strategies import SearchContext, Strategy, candidate_of, register_strategy
from .surrogate import Surrogate, graph_features

__all__ = ["MADLoop", "task_prompt"]

log = logging.getLogger(__name__)


@register_strategy("loop")
class MADLoop(Strategy):
    """Generate, score, train the best, learn.

    Args:
        pool: candidates scored per trained one.
        shares: ``(generator, mutation, random)`` shares of the pool once there are trained results (the first
            round has no elites: generator and random share it).
        elites: how many of the best trained candidates are mutated.
        ghn: score candidates with the GHN (``"default"`` or a checkpoint folder; ``False``: no GHN).
        generator: ``"default"``, a checkpoint folder, or ``False`` (no generator proposals).
        finetune_every, finetune_steps, finetune_top: fine-tune the generator every this many rounds, this many
            steps, on this many of the best trained graphs (``finetune_every=0``: never).
        explore: weight of the surrogate's spread in the selection score.
        ghn_examples: validation examples the GHN's predicted parameters are scored on (250, as many as the
            shipped quality estimators read the same figure on: then it is measured once per candidate).
        max_siblings: children of one parent trained in a round at most, while other candidates are left
            (0: no limit). A round's best predictions are often near-copies of one elite; spreading them over
            several elites explores more for the same evaluations.
        gen_seconds: time the generator may take per round (it proposes fewer when slow, so a search with the
            generator is reproducible only where it never runs out of time; a resumed round is replayed from
            the journal either way).
        two_stage: draw and score half the pool first, then give the other half's slots to the proposers in
            proportion to their shares times how often their first-half candidates ranked in its top quarter
            (from the second round on without the GHN's quality estimate for the task, whose absence leaves the
            first round unranked).
    """

    def __init__(self, pool: int = 8, shares: tuple[float, float, float] = (0.25, 0.5, 0.25), elites: int = 5,
                 ghn: str | bool = "default", generator: str | bool = "default", finetune_every: int = 2,
                 finetune_steps: int = 6, finetune_top: int = 6, explore: float = 0.5,
                 ghn_examples: int = 250, gen_seconds: float = 8.0, max_siblings: int = 0,
                 two_stage: bool = True) -> None:
        if pool < 1 or elites < 1:
            raise ValueError(f"pool and elites must be >= 1, got {pool}, {elites}")
        if max_siblings < 0:
            raise ValueError(f"max_siblings must be >= 0 (0: no limit), got {max_siblings}")
        if len(shares) != 3 or any(s < 0 for s in shares) or sum(shares) <= 0:
            raise ValueError(f"shares must be three non-negative numbers (generator, mutation, random), got {shares}")
        self.pool, self.shares, self.elites = pool, tuple(float(s) for s in shares), elites
        self.ghn_name, self.gen_name = ghn, generator
        self.finetune_every, self.finetune_steps, self.finetune_top = finetune_every, finetune_steps, finetune_top
        self.explore, self.ghn_examples, self.gen_seconds = explore, ghn_examples, gen_seconds
        self.max_siblings = max_siblings
        self.two_stage = bool(two_stage)
        self._gen_left = gen_seconds  # the generator's time left in the round (propose() resets it)
        self.ghn = self.gen = None
        self.surrogate: Surrogate | None = None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "pool": self.pool, "shares": list(self.shares), "elites": self.elites,
                "ghn": self.ghn_name, "generator": self.gen_name, "finetune_every": self.finetune_every,
                "finetune_steps": self.finetune_steps, "finetune_top": self.finetune_top, "explore": self.explore,
                "ghn_examples": self.ghn_examples, "gen_seconds": self.gen_seconds,
                **({"max_siblings": self.max_siblings} if self.max_siblings else {}),
                "two_stage": self.two_stage}

    # ------------------------------------------------------------------ set-up and resume
    def start(self, ctx: SearchContext, history: History) -> None:
        super().start(ctx, history)
        self.surrogate = Surrogate(seed=ctx.seed)
        graphs = hasattr(ctx.space, "adopt")  # a space of graphs (the GHN and the generator need graphs)
        if self.ghn_name and graphs:
            import mad.ghn

            self.ghn = mad.ghn.load(str(self.ghn_name))
            if ctx.task not in self.ghn.record.get("tasks", [ctx.task]):
                log.warning("the GHN was not trained on %s; its scores may mean little there", ctx.task)
        if self.gen_name and graphs:
            import mad.generator

            saved = self._saved_generators(ctx.last_round)
            self.gen = mad.generator.load(str(saved[-1]) if saved else str(self.gen_name))

    def _gen_dir(self) -> Path:
        return self.ctx.folder / "generator"

    def _saved_generators(self, last_round: int) -> list[Path]:
        """Fine-tuned generators of finished rounds (a round cut short redoes its fine-tuning)."""
        root = self._gen_dir()
        found = sorted(root.glob("round-*")) if root.exists() else []
        return [p for p in found if int(p.name.split("-")[1]) <= last_round and (p / "done").exists()]

    # ------------------------------------------------------------------ proposing
    def _prompt(self) -> tuple[str, dict[str, Any]]:
        space = self.ctx.space
        return task_prompt(self.ctx.task, dict(getattr(space, "task_options", {})),
                           getattr(space, "max_params", None), self.ctx.prompt, getattr(space, "max_flops", None))

    def _generated(self, n: int, rng: random.Random) -> list[Candidate]:
        """Up to ``n`` admissible generated candidates, two at a time, within the round's ``gen_seconds``."""
        if self.gen is None or n <= 0:
            return []
        text, kw = self._prompt()
        out: list[Candidate] = []
        t0, budget = time.perf_counter(), self._gen_left
        for _ in range(n):
            left = budget - (time.perf_counter() - t0)
            if len(out) >= n or left <= 0:
                break
            try:
                graphs = self.gen.suggest(text, n=min(2, n - len(out)), seed=rng.randrange(2**20), oversample=1,
                                          max_len=256, seconds=left, rank="likelihood", **kw)  # the loop scores
            except Exception as e:  # noqa: BLE001 - a generator that finds nothing leaves the pool to the others
                log.info("generator proposed nothing: %s", str(e).splitlines()[0][:200])
                continue
            for g in graphs:
                try:
                    c = self.ctx.space.adopt(g, "generator")
                except Exception:  # noqa: BLE001 - a generated graph that cannot take the task is dropped
                    continue
                if self.ctx.admit(c) is None and all(c.key != o.key for o in out):
                    out.append(c)
        self._gen_left = budget - (time.perf_counter() - t0)  # scoring between the halves is not its time
        return out[:n]

    def _parents(self, history: History, n: int, rng: random.Random) -> list[Candidate]:
        top = [t for t in history.top(self.elites) if t.fitness > -math.inf]
        if not top:
            return []
        weights = [1.0 / (r + 1) for r in range(len(top))]  # the best is mutated most often
        return [candidate_of(t) for t in rng.choices(top, weights=weights, k=n)]

    def propose(self, k: int, history: History, rng: random.Random) -> list[Candidate]:
        size = self.pool * k  # pool >= 1
        self._gen_left = self.gen_seconds  # the generator's time for the whole round
        shares = dict(zip(_KINDS, self.shares))
        if not history.trials:
            shares["mutation"] = 0.0
        first = max(1, size // 2) if self.two_stage else size
        pool = self._score(self._draw(first, shares, history, rng, []), history)
        if size > first:  # two stages: the first half's ranking steers the second half (when it ranks at all)
            ranked = self.surrogate.fitted or self._prior([], pool)[1] is not None
            more = (self._second(size - first, k, pool, shares, history, rng) if pool and ranked
                    else self._draw(size - first, shares, history, rng, pool))
            pool += self._score(more, history, refit=not pool)  # the first half's fit serves this history
        if not pool:
            return []
        order = sorted(range(len(pool)), key=lambda i: -pool[i].info["scores"]["acquisition"])
        picked = self._pick(pool, order, k)
        chosen = set(picked)
        for i in order:
            pool[i].info["selected"] = i in chosen
        return [pool[i] for i in picked] + [pool[i] for i in order if i not in chosen]

    def _draw(self, n: int, shares: dict[str, float], history: History, rng: random.Random,
              have: list[Candidate]) -> list[Candidate]:
        """About ``n`` new candidates, split between the proposers by ``shares``, none a copy of ``have``."""
        total = sum(shares.values()) or 1.0
        n_gen = round(n * shares["generator"] / total)
        n_mut = round(n * shares["mutation"] / total)
        keys = {c.key for c in have}
        out: list[Candidate] = []

        def add(cands: list[Candidate]) -> None:
            for c in cands:
                if c.key not in keys:
                    keys.add(c.key)
                    out.append(c)

        add(self._generated(n_gen, rng))
        add(self.mutants(self._parents(history, n_mut, rng), rng))
        add(self.fresh(n - len(out), rng))
        return out

    def _second(self, n: int, k: int, scored: list[Candidate], shares: dict[str, float], history: History,
                rng: random.Random) -> list[Candidate]:
        """The second half of a round's pool, drawn after the first half is scored: each proposer's share is
        weighted by how often its first-half candidates ranked in that half's top quarter (a Beta(1, 1) mean),
        so a proposer that makes only poor candidates for this task gets fewer slots."""
        top = sorted(scored, key=lambda c: -c.info["scores"]["acquisition"])[:max(k, len(scored) // 4)]
        weights = {}
        for kind, share in shares.items():
            mine = sum(1 for c in scored if _KIND.get(c.proposer, "random") == kind)
            hits = sum(1 for c in top if _KIND.get(c.proposer, "random") == kind)
            weights[kind] = share * (hits + 1) / (mine + 2)
        return self._draw(n, weights, history, rng, scored)

    def _pick(self, pool: list[Candidate], order: list[int], k: int) -> list[int]:
        """The ``k`` pool indices to train, best acquisition first, with at most ``max_siblings`` children of
        one parent while candidates of other parents (or none) are left."""
        if not self.max_siblings:
            return order[:k]
        picked: list[int] = []
        children: dict[str, int] = {}
        for i in order:
            parent = pool[i].parent
            if parent is not None and children.get(parent, 0) >= self.max_siblings:
                continue
            picked.append(i)
            if parent is not None:
                children[parent] = children.get(parent, 0) + 1
            if len(picked) == k:
                return picked
        chosen = set(picked)
        return picked + [i for i in order if i not in chosen][: k - len(picked)]

    # ------------------------------------------------------------------ scoring
    def _ghn_scores(self, cands: list[Candidate]) -> list[Candidate]:
        """Score ``cands`` with the GHN; returns those it could run (a graph that fails to run with predicted
        parameters at the evaluation batch size would fail training too, and leaves the pool)."""
        if self.ghn is None:
            return cands
        graphs = [self.ctx.space.to_graph(c) for c in cands]
        t0 = time.perf_counter()
        try:
            scores = self.ghn.score(graphs, self.ctx.task, max_examples=self.ghn_examples)
        except Exception:  # noqa: BLE001 - one graph that cannot run stops a batch: score them one by one
            scores = []
            for g in graphs:
                try:
                    scores.append(self.ghn.score(g, self.ctx.task, max_examples=self.ghn_examples))
                except Exception as e:  # noqa: BLE001 - recorded and dropped from the pool
                    scores.append({"error": error_text(e, 200)})
        kept = []
        for c, s in zip(cands, scores):
            if "error" in s:
                log.info("GHN could not score %s: %s", c.key, s["error"])
                continue
            value = s.get("accuracy", s.get("bpc"))
            c.info.setdefault("scores", {}).update(ghn_value=value, ghn_loss=s.get("loss"),
                                                   ghn_quality=s.get("quality"))
            kept.append(c)
        log.debug("GHN scored %d candidates in %.1f s", len(cands), time.perf_counter() - t0)
        return kept

    def _features(self, c: Candidate, parent_fit: dict[str, float], mean_fit: float) -> list[float]:
        space = self.ctx.space
        own = getattr(space, "features", None)
        base = own(c) if own is not None else graph_features(space.to_graph(c), c.info.get("costs"))
        pf = parent_fit.get(c.parent) if c.parent else None
        kind = _KIND.get(c.proposer, "random")  # which proposer made it: the surrogate learns which ones pay off
        x = [*base, *[float(kind == k) for k in ("generator", "mutation", "random")],
             1.0 if pf is not None else 0.0, pf if pf is not None else mean_fit]
        if self.ghn is not None:
            s = c.info.get("scores", {})
            sign = 1.0 if self.ctx.higher_is_better else -1.0
            x += [sign * (s.get("ghn_value") if s.get("ghn_value") is not None else 0.0),
                  -(s.get("ghn_loss") if s.get("ghn_loss") is not None else 10.0),
                  sign * (s.get("ghn_quality") if s.get("ghn_quality") is not None else 0.0)]
        return x

    def _prior(self, done: list[Candidate], pool: list[Candidate]) -> tuple[list[float] | None, list[float] | None]:
        """The GHN's quality estimate as fitness (higher is better) for the trained and the pooled candidates,
        ``(None, None)`` when the GHN gives none for this task (a candidate without one gets their mean)."""
        if self.ghn is None:
            return None, None
        sign = 1.0 if self.ctx.higher_is_better else -1.0
        vals = [[c.info.get("scores", {}).get("ghn_quality") for c in cs] for cs in (done, pool)]
        known = [v for vs in vals for v in vs if v is not None and math.isfinite(v)]
        if not known:
            return None, None
        fill = sum(known) / len(known)
        done_p, pool_p = ([sign * (v if v is not None and math.isfinite(v) else fill) for v in vs] for vs in vals)
        return done_p, pool_p

    def _score(self, pool: list[Candidate], history: History, refit: bool = True) -> list[Candidate]:
        """Scores and acquisition values of the pool's members (those the GHN could not run are dropped);
        ``refit=False`` keeps the surrogate fitted on this history earlier in the round."""
        if not pool:
            return pool
        pool = self._ghn_scores(pool)
        if not pool:
            return pool
        done = list(history.trials)
        fits = [t.fitness for t in done if t.fitness > -math.inf]
        mean_fit = sum(fits) / len(fits) if fits else 0.0
        parent_fit = {t.key: t.fitness if t.fitness > -math.inf else mean_fit for t in done}
        x_pool = [self._features(c, parent_fit, mean_fit) for c in pool]
        done_c = [_as_candidate(t) for t in done]
        prior_done, prior_pool = self._prior(done_c, pool)
        if refit:
            x_done = [self._features(c, parent_fit, mean_fit) for c in done_c]
            ghn_cols = list(range(len(x_pool[0]) - 3, len(x_pool[0]))) if self.ghn is not None else None
            self.surrogate.fit(x_done, [t.fitness for t in done], optional=ghn_cols, prior=prior_done)
        if self.surrogate.fitted:
            mean, std = self.surrogate.predict(x_pool, prior=prior_pool)
            sign = 1.0 if self.ctx.higher_is_better else -1.0  # predicted in the metric's units
            cal = self.surrogate.calibration
            for c, m, s in zip(pool, mean, std):
                c.info.setdefault("scores", {}).update(predicted=float(sign * m), spread=float(s),
                                                       acquisition=float(m + self.explore * s),
                                                       ghn_used=cal.get("optional_used"))
            return pool
        # no trained results yet: the GHN's quality estimate ranks the pool. Without one (no GHN, or a task it has
        # no estimate for) the proposers take turns: the raw metric of the predicted parameters is not trusted to
        # rank on its own (on digits, before it had an estimate, it picked worse than taking turns), and the
        # surrogate keeps it later only where the search's own results show that it ranks.
        turn: dict[str, int] = {}
        for c, p in zip(pool, prior_pool or [None] * len(pool)):
            kind = _KIND.get(c.proposer, "random")
            turn[kind] = turn.get(kind, 0) + 1
            c.info.setdefault("scores", {})["acquisition"] = float(p) if p is not None else -float(turn[kind])
        return pool

    # ------------------------------------------------------------------ learning
    def learn(self, round: int, history: History) -> dict[str, Any]:
        info: dict[str, Any] = {"surrogate": dict(self.surrogate.calibration)} if self.surrogate.calibration else {}
        if self.gen is None or not self.finetune_every or round % self.finetune_every:
            return info
        best = [t for t in history.top(self.finetune_top) if t.fitness > -math.inf and t.candidate.get("graph")]
        if not best:
            return info
        from mad.graph import ArchGraph

        text, kw = self._prompt()
        graphs = [_as_asked(ArchGraph.from_json(t.candidate["graph"]), kw.get("input_shape")) for t in best]
        try:
            r = self.gen.finetune(graphs, texts=[text] * len(graphs), steps=self.finetune_steps,
                                  seed=self.ctx.seed * 1000 + round)
        except Exception as e:  # noqa: BLE001 - a failed fine-tuning keeps the generator as it was
            log.warning("generator fine-tuning failed: %s", e)
            return {"finetune_error": str(e)[:300]}
        folder = self._gen_dir() / f"round-{round:04d}"
        shutil.rmtree(folder, ignore_errors=True)
        self.gen.save(folder)
        (folder / "done").write_text("")
        for old in sorted(self._gen_dir().glob("round-*"))[:-2]:  # keep the two newest
            shutil.rmtree(old, ignore_errors=True)
        info["finetune"] = {k: r[k] for k in ("steps", "graphs", "loss_before", "loss_after", "seconds") if k in r}
        return info


def task_prompt(task: str, task_options: dict[str, Any] | None = None, max_params: int | None = None,
                prompt: str | None = None, max_flops: int | None = None) -> tuple[str, dict[str, Any]]:
    """The generator's prompt for ``task`` (``prompt`` when given, else a sentence naming the task's inputs and
    classes) and the ``suggest()`` constraints that make its graphs fit the task and the search's limits (the
    sampler keeps both budgets node by node).

    A ``(C, L)`` signal task is asked for as ``C x 1 x L`` images, which :meth:`GraphSpace.adopt` reads the
    signal into through an ``unsqueeze``, as the random space draws its signal classifiers: on mnist1d the
    generator's own 1-D networks (small transformers, audio-style feature extractors) trained far worse at the
    search's 50 steps than its image networks put on the signal."""
    from mad.data import tasks

    info = tasks.info(task, **(task_options or {}))
    limits = {"max_params": max_params, "max_flops": max_flops}
    if info.task_type == "classification":
        shape = tuple(info.input_shape)
        if len(shape) == 2:  # a (C, L) signal is asked for as a (C, 1, L) image, as the random space draws it
            shape = (shape[0], 1, shape[1])
        kind = "grayscale" if shape[0] == 1 else "color" if shape[0] == 3 else f"{shape[0]}-channel"
        text = prompt or f"an image classifier for {shape[1]}x{shape[2]} {kind} images with {info.num_classes} classes"
        return text, {"input_shape": shape, "num_classes": info.num_classes, **limits}
    text = prompt or "a small causal character-level language model"
    return text, {"input_shape": tuple(info.input_shape), "vocab_size": info.vocab_size, **limits}


_KINDS = ("generator", "mutation", "random")
_KIND = {"generator": "generator", "mutation": "mutation", "edit": "mutation", "random": "random", "seed": "random"}


def _as_asked(g, shape: tuple[int, ...] | None):
    """``g`` as the generator is asked for it (:func:`task_prompt`): on a signal task, asked for as ``C x 1 x L``
    images, an image network that reads the signal through an ``unsqueeze`` is that image network again (the
    graph is kept as it is when it is not one)."""
    if shape is None or len(shape) != 3 or shape[1] != 1 or len(g.inputs[0].shape) != 3:
        return g
    from mad.graph import GraphError
    from mad.graph.passes import signal_as_image

    try:
        return signal_as_image(g)
    except GraphError:
        return g


def _as_candidate(t) -> Candidate:
    """A trained record as a candidate with its recorded costs and scores (for the surrogate's features)."""
    c = candidate_of(t)
    c.info["costs"] = dict(t.candidate.get("costs") or {})
    c.info["scores"] = dict(t.candidate.get("scores") or {})
    return c
