"""The generator's public face: ``gen = mad.generator.load("default")``, then suggest, complete, edit.

- :meth:`Generator.suggest` reads a prompt into constraints
  (:func:`~mad.generator.prompt.parse_prompt`; keyword arguments win), starts
  a graph at the requested input, samples ``oversample * n`` candidates with
  constrained decoding (:class:`~mad.generator.sample.Sampler`), puts each on
  the task with ``retarget`` (input shape, classes or vocabulary), checks it
  (``validate``, ``to_module``, forward and backward at batch 1 and 4, the
  parameter budget) and returns the best ``n`` distinct ones, ranked by the
  share of the prompt's constraints they meet, then (``rank="auto"``) by the
  metric the GHN's quality estimate expects after brief training when the
  request fits a task it is calibrated on, else by the model's
  log-likelihood per token. When fewer than ``n`` distinct candidates pass,
  up to two more rounds are sampled.
- :meth:`Generator.complete` continues a partial graph (any graph cut
  anywhere, e.g. by :func:`mad.graph.passes.cut`), in rounds the same way.
- :meth:`Generator.edit` runs a recognised instruction as a graph pass
  (:mod:`mad.generator.edit`); for any other instruction that names a scope of
  the graph, it regenerates the graph from that scope on, prompted by the
  instruction.

Every returned graph carries ``meta["generator"]``: the prompt, the checks
and which constraints it meets (``why``), its log-likelihood and sample seed, how it was ranked
(``ranked_by``) and, ranked by quality, the estimate (``quality``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from pathlib import Path
from typing import Any

import torch

from mad.graph import ArchGraph, GraphBuilder, GraphError
from mad.graph.passes import GATED, block_families

from .constraints import Constraints, check, flops_of, share_met
from .edit import EditSpec, apply_edit
from .layers import name_blocks
from .model import GeneratorConfig, GraphTransformer
from .train import HASHES

__all__ = ["Generator", "GeneratorError", "load", "load_weights", "output_rule", "runs", "vit_stem"]

log = logging.getLogger(__name__)
DEFAULT_DIR = Path(__file__).parent / "checkpoints" / "default"
IMAGE_DEFAULT = (3, 32, 32)
SEQ_DEFAULT = 32


def _attends(g: ArchGraph) -> bool:
    return any(n.op == "scaled_dot_product_attention" for n in g.nodes.values())


def _attention_kind(c: Constraints, g: ArchGraph) -> Any:
    if not _attends(g):  # a conv net: an attention cell (multi-head)
        return EditSpec("add_attention", {}) if c.attention in ("any", "multi-head") else None
    n = {"multi-query": 1, "grouped-query": "grouped", "multi-head": "all"}.get(c.attention or "")
    return None if n is None else EditSpec("set_kv_heads", {"n": n})


def _family(c: Constraints, g: ArchGraph) -> Any:
    """A hybrid: an attention cell on a conv net's feature map; a ViT: a transformer block (attention and MLP
    of the requested kinds) on the tokens of its patch embedding."""
    if _attends(g) or c.family not in ("hybrid", "vit"):
        return None
    if c.family == "hybrid":
        return EditSpec("add_attention", {})
    acts = sorted(c.activations or ())
    kw: dict[str, Any] = {"tokens": True, "mlp": c.mlp if c.mlp in GATED else acts[0] if len(acts) == 1 else "gelu"}
    if c.num_heads:
        kw["heads"] = int(c.num_heads)
    if c.norm in ("layer_norm", "rms_norm"):
        kw["norm"] = c.norm
    return EditSpec("add_attention", kw)


def _one_activation(c: Constraints, g: ArchGraph) -> Any:
    return EditSpec("replace_activation", {"old": None, "new": next(iter(c.activations))}) \
        if c.activations and len(c.activations) == 1 else None


def _gated_mlp(c: Constraints, g: ArchGraph) -> Any:
    return EditSpec("replace_activation", {"old": None, "new": c.mlp}) if c.mlp not in (None, "plain") else None


def _rotary(c: Constraints, g: ArchGraph) -> Any:
    return EditSpec("add_rotary", {}) if c.position == "rotary" and _attends(g) else None


def _downsampling(c: Constraints, g: ArchGraph) -> Any:
    return EditSpec("add_downsampling", {}) if c.downsampling else None


def _residual(c: Constraints, g: ArchGraph) -> Any:
    return EditSpec("add_residual", {}) if c.residual else None


def _depth(c: Constraints, g: ArchGraph) -> Any:
    return EditSpec("set_depth", {"n": int(c.depth)}) if c.depth else None


def _fewer_blocks(c: Constraints, g: ArchGraph) -> Any:
    """Over the FLOPs budget: the repeated blocks cut in proportion to the excess (each family keeps one)."""
    families = block_families(g)
    blocks = sum(len(v) for v in families.values())
    if not c.max_flops or blocks <= len(families):
        return None
    n = max(len(families), int(blocks * c.max_flops / max(1, flops_of(g))))
    return EditSpec("set_depth", {"n": n}) if n < blocks else None


# an unmet check -> the edit that may put it in (None: none for this request and graph), tried in this order
REPAIRS: dict[str, Any] = {"family": _family, "attention": _attention_kind, "depth": _depth, "mlp": _gated_mlp,
                           "activations": _one_activation, "position": _rotary, "downsampling": _downsampling,
                           "residual": _residual, "max_flops": _fewer_blocks}
PROJECT_TRIES = 12  # nodes of a failed completion tried, latest first, as the start of a projection to the output


RANKINGS = ("auto", "quality", "likelihood")  # how suggest() orders candidates that meet the request equally


class GeneratorError(ValueError):
    """A request the generator cannot serve (bad checkpoint, prompt, or graph); the message says what to do."""


def _check_rank(rank: str) -> None:
    if rank not in RANKINGS:
        raise GeneratorError(f"rank must be one of {', '.join(RANKINGS)}, got {rank!r}")


def load_weights(model: GraphTransformer, path: str | Path) -> None:
    """Load ``model.safetensors`` into ``model`` (strict; the tied output head is the token embedding)."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "head.weight"]
    if missing or unexpected:
        raise GeneratorError(f"{path}: weights do not fit this generator config (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")


def _float_dtype(d: Any) -> bool:
    return isinstance(d, str) and d.startswith(("float", "bfloat"))


def vit_stem(b: GraphBuilder, x: str, prompt: str = "", width: int | None = None) -> str:
    """A vision transformer's patch embedding on the image ``x`` ``(B, C, H, W)``: a conv with kernel and stride
    ``p``, flattened and transposed to ``(B, H*W/p^2, width)`` tokens (scope ``patch_embed``). ``p`` is the
    prompt's ``PxP patches`` when it names them and they tile the image, else the smallest of 2, 4, 7, 8 that
    tiles it into at most 64 patches; ``width`` defaults to 64."""
    _, _, h, w = b.shape(x)
    named = re.search(r"(\d+)\s*[x×]\s*(\d+)\s*patch", prompt)
    sizes = [int(named.group(1))] if named and named.group(1) == named.group(2) else []
    sizes += [k for k in (2, 4, 7, 8) if (h // k) * (w // k) <= 64] + [1]
    p = next(k for k in sizes if k >= 1 and h % k == 0 and w % k == 0)
    y = b.op("conv2d", x, out_channels=int(width or 64), kernel_size=[p, p], stride=[p, p], scope="patch_embed.proj")
    y = b.op("flatten", y, start_dim=2, scope="patch_embed")
    return b.op("transpose", y, dim0=1, dim1=2, scope="patch_embed")


def output_rule(modality: str):
    """Which nodes may end a graph for a task: a float tensor with the batch dim first and concrete sizes after
    it; for a language model, per-token features ``(B, T, D)``."""
    def ok(node) -> bool:
        sh = node.shape
        if node.op in ("input", "parameter") or not _float_dtype(node.dtype) or not isinstance(sh, list) or not sh:
            return False
        if isinstance(sh[0], list) or sh[0] != "B":
            return False
        if modality == "text":
            return len(sh) == 3 and sh[1] == "T" and isinstance(sh[2], int)
        return len(sh) >= 2 and all(isinstance(d, int) for d in sh[1:])  # a head needs concrete features

    return ok


def _earlier_outputs(g: ArchGraph, output_ok: Any, keep: int) -> list[str]:
    """Nodes of ``g`` after its first ``keep`` (in the order they were emitted) that may end it, latest first,
    other than its current outputs."""
    order = list(g.nodes)
    return [nid for nid in reversed(order[keep:]) if nid not in g.outputs
            and (output_ok(g.nodes[nid]) if output_ok is not None else g.nodes[nid].op not in ("input", "parameter"))]


def _open_ends(g: ArchGraph, keep: int, want: list) -> list[str] | None:
    """Nodes that, each projected to ``want`` and added, end ``g`` keeping all of its first ``keep`` nodes:
    for each of those with no consumer among them (an open end of the partial graph), the latest node after
    them that it leads to and that can be projected (:func:`~mad.graph.passes.projectable`), or the open end
    itself; None when an open end has neither, or when no end is a new node."""
    import networkx as nx

    from mad.graph.passes import projectable

    order = list(g.nodes)
    kept = set(order[:keep])
    dg = nx.DiGraph([(e.src, e.dst) for e in g.edges])
    dg.add_nodes_from(order)
    ok = [n for n in order if g.nodes[n].op not in ("input", "parameter") and projectable(g.nodes[n].shape, want)]
    ends: list[str] = []
    for nid in order[:keep]:
        if g.nodes[nid].op == "parameter" or any(s in kept for s in g.successors(nid)):
            continue
        after = nx.descendants(dg, nid)
        end = next((n for n in reversed(ok) if n in after and n not in kept), nid if nid in ok else None)
        if end is None:
            return None
        if end not in ends:
            ends.append(end)
    before = {f: nx.ancestors(dg, f) for f in ends}
    ends = [e for e in ends if not any(e in before[f] for f in ends if f != e)]
    return ends if any(e not in kept for e in ends) else None


def _downstream_of_failure(g: ArchGraph, why: str) -> set[str]:
    """The node of ``g`` that a failure message names (``node 'x' (op) ...``, as the builder, the run check and
    ``retarget`` say), with everything that reads it; empty when it names none of ``g``'s nodes."""
    bad = next((m for m in re.findall(r"node '([^']+)'", why or "") if m in g.nodes), None)
    if bad is None:
        return set()
    out, todo = {bad}, [bad]
    while todo:
        for nxt in g.successors(todo.pop()):
            if nxt not in out:
                out.add(nxt)
                todo.append(nxt)
    return out


def _must_keep(g: ArchGraph, keep: int) -> set[str]:
    """The first ``keep`` nodes of ``g`` (a partial graph) that a completion must keep: all but free parameters
    none of them reads (a cut can end on a layer's weight before the layer; it computes nothing)."""
    first = list(g.nodes)[:keep]
    kept = set(first)
    return {n for n in first if g.nodes[n].op != "parameter" or any(s in kept for s in g.successors(n))}


def _closed_at(g: ArchGraph, end: str, keep: int) -> ArchGraph | None:
    """``g`` ending at node ``end``, without what no longer reaches the output; None when that would drop one of
    the first ``keep`` nodes (:func:`_must_keep`)."""
    from mad.graph.passes.edit import eliminate_dead_code

    h = g.copy()
    h.set_outputs([end])
    first = _must_keep(g, keep)
    if first & set(eliminate_dead_code(h)):
        return None
    try:
        h.validate()
    except GraphError:
        return None
    return h


def runs(g: ArchGraph) -> str | None:
    """None when ``g`` validates, builds a module, and runs forward and backward at batch 1 and 4 with every
    node's value of the shape and dtype ``g`` records (``ArchModule.run_checked``); else why not.

    The recorded shapes are checked against the kernels that run, at those batch sizes, rather than re-inferred
    on meta tensors (``validate(shapes=False)``): the same check of the shape rules at the sizes that matter, at
    a small part of the cost. It runs on one torch thread (:func:`mad.train.threads.one_thread`: a new graph's
    layers are new shapes, whose set-up costs more on two threads than the small products save)."""
    from mad.graph.validate import validate
    from mad.train.threads import one_thread

    try:
        with one_thread():
            validate(g, shapes=False)
            m = g.to_module()
            for b in (1, 4):
                args = g.example_inputs(seed=0, dims={"B": b})
                out = m.run_checked(*args)
                outs = out if isinstance(out, (tuple, list)) else (out.values() if isinstance(out, dict) else [out])
                loss = sum(o.float().sum() for o in outs if torch.is_tensor(o) and o.is_floating_point())
                if torch.is_tensor(loss) and loss.requires_grad:
                    loss.backward()
        return None
    except Exception as e:  # noqa: BLE001 - any failure makes the graph invalid; say which
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"


class Generator:
    """A trained graph transformer with its tokenizer, prompt encoder and condition vocabulary.

    Args:
        model: the :class:`GraphTransformer`.
        cond_vocab: condition token texts (index 0 is padding).
        record: the training record (shown by ``mad suggest --json`` and the benchmark).
        device: where it runs (default CUDA when present, else CPU).

    Example:
        >>> gen = load("default")
        >>> graphs = gen.suggest("a small CNN for 28x28 grayscale digits with batch norm", n=3)
        >>> graphs[0].meta["generator"]["adherence"]
        1.0
    """

    def __init__(self, model: GraphTransformer, cond_vocab: list[str], record: dict[str, Any] | None = None,
                 device: Any = None, text_encoder: dict[str, Any] | None = None,
                 op_arity: dict[str, list[int]] | None = None, op_inputs: dict[str, list[str]] | None = None) -> None:
        from mad.tokenizer import GraphTokenizer

        from .sample import Sampler
        from .text_encoder import TextEncoder

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg
        self.cond_list = list(cond_vocab)
        self.cond_vocab = {c: i for i, c in enumerate(self.cond_list)}
        self.record = record or {}
        self.tokenizer = GraphTokenizer.load("default", compress=False)
        if len(self.tokenizer.vocab) != self.cfg.vocab_size:
            raise GeneratorError(f"the generator was trained with {self.cfg.vocab_size} graph tokens but the shipped "
                                 f"tokenizer has {len(self.tokenizer.vocab)}; retrain it (mad generator train)")
        te = dict(text_encoder or {"dim": self.cfg.text_dim})
        self.text_encoder = TextEncoder(**te)
        self.op_arity = dict(op_arity or {})
        self.op_inputs = dict(op_inputs or {})
        self.sampler = Sampler(self.model, self.tokenizer, self.device, op_arity=self.op_arity,
                               op_inputs=self.op_inputs)
        self.train_hashes: list[str] = []
        self.quality_ghn: str | Path = "default"  # the GHN whose quality estimate ranks suggestions
        self._ghn: tuple[str, Any] | None = None  # (quality_ghn it was loaded from, the GHN or why it failed)

    @property
    def workers(self) -> int:
        """Processes that share each sampling call of 16 or more samples per process on a CPU
        (:attr:`Sampler.workers <mad.generator.sample.Sampler>`, default 1). On 2 cores, two processes sample
        about 1.8 times as fast as one; a call's results then depend on ``workers`` as well as on its seed."""
        return self.sampler.workers

    @workers.setter
    def workers(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise GeneratorError(f"workers must be an int >= 1, got {n!r}")
        self.sampler.workers = n

    # ------------------------------------------------------------------ persistence
    @classmethod
    def load(cls, name_or_path: str | Path = "default", device: Any = None) -> "Generator":
        """``"default"`` (the shipped checkpoint) or a folder with ``model.safetensors`` and ``config.json``."""
        path = DEFAULT_DIR if str(name_or_path) == "default" else Path(name_or_path)
        cfg_path, weights = path / "config.json", path / "model.safetensors"
        if not cfg_path.exists() or not weights.exists():
            raise GeneratorError(f"no generator checkpoint in {path} (needs config.json and model.safetensors); "
                                 "pass 'default' or a folder written by `mad generator train`")
        saved = json.loads(cfg_path.read_text())
        model = GraphTransformer(GeneratorConfig.from_dict(saved["model"]))
        load_weights(model, weights)
        rec_path = path / "record.json"
        record = json.loads(rec_path.read_text()) if rec_path.exists() else {}
        gen = cls(model, saved["cond_vocab"], record, device, saved.get("text_encoder"), saved.get("op_arity"),
                  saved.get("op_inputs"))
        hashes = path / HASHES
        gen.train_hashes = hashes.read_text().split() if hashes.exists() else []
        return gen

    def save(self, folder: str | Path) -> Path:
        """Write the checkpoint (weights, config, record and the WL hashes of the graphs it learned) to
        ``folder``; :meth:`load` reads it back."""
        from .train import save_checkpoint

        folder = Path(folder)
        save_checkpoint(self.model, folder, {"cond_vocab": self.cond_list, "text_encoder": self.text_encoder.config(),
                                             "tokenizer": "default", "tokenizer_version": self.tokenizer.vocab.version,
                                             "op_arity": self.op_arity, "op_inputs": self.op_inputs}, self.record)
        if self.train_hashes:  # the graphs it has learned: novelty is measured against them
            (folder / HASHES).write_text("\n".join(self.train_hashes) + "\n")
        return folder

    # ------------------------------------------------------------------ conditioning
    def _condition(self, prompt: str | None, c: Constraints) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        from .corpus import condition_tokens

        words = [w for w in condition_tokens(c) if w in self.cond_vocab][: self.cfg.max_cond]
        cond = torch.zeros(self.cfg.max_cond, dtype=torch.long)
        cond[: len(words)] = torch.tensor([self.cond_vocab[w] for w in words], dtype=torch.long)
        text = self.text_encoder.encode([prompt or ""])[0]
        return text, cond, words

    @staticmethod
    def _task(c: Constraints) -> tuple[str, tuple[int, ...], int | None, int | None]:
        """(modality, input shape without batch, classes, vocabulary) a request asks for, with defaults."""
        token = c.modality in ("text",) or (c.modality is None and c.family in ("decoder-only", "encoder-only",
                                                                                   "encoder-decoder"))
        if c.vocab_size is not None:
            token = True
        if token:
            shape = tuple(int(d) for d in c.input_shape) if c.input_shape and all(
                isinstance(d, int) for d in c.input_shape) else (SEQ_DEFAULT,)
            return "text", shape[:1], None, int(c.vocab_size or 256)
        shape = tuple(int(d) for d in c.input_shape) if c.input_shape else IMAGE_DEFAULT
        return "image", shape, int(c.num_classes or 10), None

    def _start_graph(self, modality: str, shape: tuple[int, ...], vocab: int | None, c: Constraints | None = None,
                     prompt: str | None = None) -> list[str]:
        """The tokens every sample starts from: the input; for a vision transformer (``c.family == "vit"``) on
        images also its patch embedding (:func:`vit_stem`), so that the sample goes on over tokens."""
        if modality == "text":
            b = GraphBuilder(dims={"B": 2, "T": int(shape[0])})
            b.input("input_ids", ("B", "T"), dtype="int64", range=[0, int(vocab or 256)])
            b.graph.inputs[-1].dims = ["batch", "seq"]
        else:
            b = GraphBuilder(dims={"B": 2})
            x = b.input("pixel_values", ("B", *shape))
            if len(shape) == 3:
                b.graph.inputs[-1].dims = ["batch", "channels", "height", "width"]
                if c is not None and c.family == "vit":
                    vit_stem(b, x, prompt or "", c.hidden_size)
        return self.tokenizer.prefix_tokens(b.graph)

    # ------------------------------------------------------------------ finishing candidates
    def _finish(self, samples, c: Constraints, task: tuple, prompt: str | None, seed: int,
                words: list[str], output_ok: Any = None, keep: int = 0, earlier: int = 3,
                project: list | None = None) -> list[tuple[tuple, ArchGraph]]:
        """Each finished sample that takes the task, keeps the budget and runs, with its ranking key.

        A sample that fails is closed earlier: at up to ``earlier`` of its previous nodes that ``output_ok``
        accepts (latest first; never among its first ``keep`` nodes, the given partial graph, which must all
        stay), and the first of those that passes is taken instead (``meta["generator"]["closed_earlier"]``);
        when the failure names a node (one that fails to run, or whose shape the task cannot follow), at up to
        ``earlier`` of the nodes that do not read it.
        With ``project`` (an output shape), a sample that still fails, or never reached a node of that shape,
        is closed at the latest of its nodes (up to :data:`PROJECT_TRIES` are tried) that
        :func:`~mad.graph.passes.project_output` takes to it and that then passes, followed by that projection
        (``meta["generator"]["projected"]``); when no one node leads on from every open end of the partial
        graph, at one node per open end, their projections added (:func:`_open_ends`). When the shape follows
        the length of token ids the sample never read (an encoder-decoder cut before its decoder), the latest
        node that passes is followed by a one-layer decoder from those ids instead
        (:func:`~mad.graph.passes.attend_output`).

        Layers are named (:func:`~mad.generator.layers.name_blocks`), and what the graph misses of the request
        and a graph pass can put in (the number of layers, the MLP or attention kind) is put in when the
        result still passes (:meth:`_repair`).
        """
        out = []
        for k, s in enumerate(samples):
            graph = s.graph if s.graph is not None or project is None else self._unfinished(s, keep)
            if graph is None:
                continue
            raw = graph
            g, why = self._take(raw, c, task) if s.graph is not None else (None, s.error or "not finished")
            closed, projected = 0, False
            if g is None and earlier and s.graph is not None:
                g, raw, back = self._close_earlier(graph, output_ok, keep, earlier, c, task)
                closed = back + 1
                after = _downstream_of_failure(graph, why) if g is None else set()
                if after:  # end before the node that fails (a side chain of garbage indices...)
                    g, raw, back = self._close_earlier(
                        graph, lambda n: n.id not in after and (output_ok(n) if output_ok is not None else
                                                                 n.op not in ("input", "parameter")),
                        keep, earlier, c, task)
                    closed = back + 1
            if g is None and project is not None:
                from mad.graph.passes import attend_output, attendable, project_output, projectable, query_input

                g, raw, closed = self._close_earlier(
                    graph, lambda node: node.op not in ("input", "parameter") and projectable(node.shape, project),
                    keep, PROJECT_TRIES, c, task, then=lambda h, end: project_output(h, end, project))
                if g is None:  # no one node leads on from every open end of the partial graph: merge several
                    ends = _open_ends(graph, keep, project)
                    if ends:
                        raw = project_output(graph, ends, project)
                        g, why = self._take(raw, c, task) if _must_keep(graph, keep) <= set(raw.nodes) \
                            else (None, "the projection drops a node of the partial graph")
                ids = query_input(graph, project)
                if g is None and ids is not None:  # the output follows token ids the sample never read: decode
                    g, raw, closed = self._close_earlier(
                        graph, lambda node: node.op not in ("input", "parameter") and attendable(node.shape, project),
                        keep, PROJECT_TRIES, c, task, then=lambda h, end: attend_output(h, end, ids, project))
                projected = g is not None and raw.outputs[0] not in graph.nodes  # type: ignore[union-attr]
            if g is None:
                log.debug("sample %d: %s", k, why)
                continue
            name_blocks(g)
            checks = check(g, c)
            if not all(checks.values()):
                g, checks = self._repair(g, checks, c, task)
            score = share_met(checks)
            n_tok = max(1, len(s.tokens))
            g.name = f"generated-{seed}-{k}"
            g.source = "generated"
            g.meta["generator"] = {"prompt": prompt, "conditions": words, "checks": checks, "adherence": score,
                                   "why": [k2 for k2, ok in checks.items() if ok], "logprob": s.logprob,
                                   "logprob_per_token": s.logprob / n_tok, "seed": seed, "sample": k,
                                   "retries": s.retries, "closed_earlier": closed, "projected": projected,
                                   "raw_hash": raw.wl_hash()}  # type: ignore[union-attr]
            g.meta["num_params"] = g.num_params
            out.append(((score, s.logprob / n_tok), g))
        return out

    def _repair(self, g: ArchGraph, checks: dict[str, bool], c: Constraints,
                task: tuple) -> tuple[ArchGraph, dict[str, bool]]:
        """``g`` with the request's unmet components put in by graph passes (:data:`REPAIRS`: attention in a
        conv net, a transformer block on a patch embedding, the attention kind, the number of layers, the MLP
        kind, a single required activation, rotary positions, a pool where downsampling is asked for and
        missing, a residual conv block where residual connections are asked for, fewer blocks for a FLOPs
        budget), each
        kept when the result runs, keeps the budget and meets more of the request. ``meta["repairs"]`` lists
        those kept."""
        for name in [k for k in REPAIRS if checks.get(k) is False]:
            if checks.get(name):  # an earlier edit put it in
                continue
            spec = REPAIRS[name](c, g)
            if spec is None:
                continue
            try:
                h = apply_edit(g, spec)
            except GraphError:
                continue
            h, _ = self._take(h, c, task)
            if h is None:
                continue
            new = check(h, c)
            if share_met(new) > share_met(checks):
                args = ", ".join(f"{k}={v}" for k, v in spec.kwargs.items())
                h.meta["repairs"] = [*g.meta.get("repairs", []), f"{name}: {spec.name}({args})"]
                g, checks = h, new
        return g, checks

    def _unfinished(self, s: Any, keep: int) -> ArchGraph | None:
        """The nodes an unfinished sample got to (None when it added none to its first ``keep``)."""
        try:
            g = self.tokenizer.assembler(s.tokens).graph
        except Exception:  # noqa: BLE001 - tokens that do not decode: nothing to close
            return None
        return g if len(g.nodes) > keep else None

    def _close_earlier(self, graph: ArchGraph, ends_ok: Any, keep: int, earlier: int, c: Constraints,
                       task: tuple, then: Any = None) -> tuple[ArchGraph | None, ArchGraph | None, int]:
        """(graph, raw graph, k) for ``graph`` closed at the k-th (from 0) of its last ``earlier`` nodes that
        ``ends_ok`` accepts (latest first), optionally followed by ``then(closed, end)``, when that passes
        :meth:`_take`; else (None, None, 0)."""
        for back, end in enumerate(_earlier_outputs(graph, ends_ok, keep)[:earlier]):
            raw = _closed_at(graph, end, keep)
            if raw is not None and then is not None:
                try:
                    raw = then(raw, end)
                except GraphError:
                    continue
            g, _ = self._take(raw, c, task)
            if g is not None:
                return g, raw, back
        return None, None, 0

    @staticmethod
    def _take(graph: ArchGraph | None, c: Constraints, task: tuple) -> tuple[ArchGraph | None, str]:
        """(the graph given the task's head, "") when it takes the task, keeps the budget and runs; else
        (None, why not). A graph that fails only because a ``view`` meets a non-contiguous tensor (strides the
        shape rules do not track) runs canonicalized, with ``reshape`` (``meta["repairs"]``)."""
        from mad.graph.passes import retarget

        if graph is None:
            return None, "the prefix cannot be closed there"
        modality, shape, classes, vocab = task
        try:
            g = graph if classes is None and vocab is None else retarget(
                graph, shape, num_classes=classes if modality != "text" else None,
                vocab_size=vocab if modality == "text" else None)
        except GraphError as e:
            return None, f"cannot take the task: {e}"
        if c.max_params is not None and g.num_params > c.max_params:
            return None, f"over the parameter budget ({g.num_params} > {c.max_params})"
        why_not = runs(g)
        if why_not is not None and "view size is not compatible" in why_not:
            from mad.graph.passes import canonicalize

            h = g.copy()  # a view of a non-contiguous tensor: reshape does the same and copies when it must
            canonicalize(h)
            if runs(h) is None:
                h.meta.setdefault("repairs", []).append("view -> reshape (canonicalize)")
                return h, ""
        if why_not is not None:
            return None, f"does not run: {why_not}"
        return g, ""

    def _sample_rounds(self, n: int, oversample: int, prefix: list[str], text: torch.Tensor, cond: torch.Tensor,
                       rule: Any, seed: int, temperature: float, finish: Any, max_len: int | None = None,
                       max_params: int | None = None, deadline: float | None = None,
                       rounds: int = 3, max_flops: int | None = None) -> list[tuple[tuple, ArchGraph]]:
        """Candidates from rounds of ``n * oversample`` samples (``finish(samples, seed)`` keeps those that pass);
        another round only while fewer than ``n`` distinct candidates survive."""
        cands: list[tuple[tuple, ArchGraph]] = []
        for rnd in range(rounds):
            if deadline is not None and time.perf_counter() > deadline:
                break
            sd = seed * 1000 + rnd
            samples = self.sampler.sample(n * oversample, text, cond, prefix, max_len=max_len or self.cfg.max_len,
                                          temperature=temperature, seed=sd, max_params=max_params, output_ok=rule,
                                          max_flops=max_flops,
                                          deadline=deadline)
            cands += finish(samples, sd)
            if len({g.wl_hash() for _, g in cands}) >= n:
                break
        return cands

    def _ghn_model(self) -> Any:
        """The GHN at :attr:`quality_ghn`, loaded once; a load that failed is not retried on every request."""
        if self._ghn is None or self._ghn[0] != str(self.quality_ghn):
            from mad.ghn import load as load_ghn

            try:
                self._ghn = (str(self.quality_ghn), load_ghn(self.quality_ghn, device=self.device))
            except Exception as e:  # noqa: BLE001 - kept, re-raised to each caller
                self._ghn = (str(self.quality_ghn), e)
        if isinstance(self._ghn[1], Exception):
            raise self._ghn[1]
        return self._ghn[1]

    def _by_quality(self, cands: list[tuple[tuple, ArchGraph]], rank: str) -> list[tuple[tuple, ArchGraph]]:
        """``cands`` re-keyed ``(adherence, expected metric, log-prob per token)`` by the GHN's quality estimate
        (:meth:`mad.ghn.GHN.estimate`) on the task its estimate is calibrated on that most candidates fit as they
        are (one that does not fit it, e.g. a sample with another class count, comes after those that do);
        unchanged when ``rank`` is ``"likelihood"``, or, with ``"auto"``, when no candidate fits such a task or
        there is no GHN."""
        for _, g in cands:
            g.meta["generator"]["ranked_by"] = "likelihood"
        if rank == "likelihood" or not cands:
            return cands
        from mad.train.objective import TaskSpec, graph_mismatches

        task, why = None, ""
        try:
            ghn = self._ghn_model()
            known = [t for t in ghn.config.tasks if ghn.calibrated(t) is not None]
            specs = {t: TaskSpec.of(t) for t in known}
            fits = {t: [i for i, (_, g) in enumerate(cands) if not graph_mismatches(g, specs[t])] for t in known}
            task = max(known, key=lambda t: len(fits[t]), default=None)
            if task is None or not fits[task]:
                task, why = None, f"the request fits none of the tasks its quality estimate knows ({', '.join(known)})"
            else:
                est = dict(zip(fits[task], ghn.estimate([cands[i][1] for i in fits[task]], task)))
        except Exception as e:  # noqa: BLE001 - no estimate: rank by likelihood, or say why
            task, why = None, f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        if task is None:
            if rank == "quality":
                raise GeneratorError(f"cannot rank by quality: {why}; rank by likelihood instead")
            log.debug("ranking by likelihood: %s", why)
            return cands
        sign = 1.0 if ghn.calibrated(task)["higher_is_better"] else -1.0
        steps = (ghn.record.get("quality") or {}).get("steps")
        out = []
        for i, (key, g) in enumerate(cands):
            q = est.get(i)
            g.meta["generator"].update(ranked_by="quality", quality={"task": task, "estimate": q, "steps": steps})
            out.append(((key[0], -math.inf if q is None else sign * q, key[1]), g))
        return out

    @staticmethod
    def _rank(cands: list[tuple[tuple, ArchGraph]], n: int) -> list[ArchGraph]:
        seen: set[str] = set()
        best = []
        for _, g in sorted(cands, key=lambda x: x[0], reverse=True):
            h = g.wl_hash()
            if h in seen:
                continue
            seen.add(h)
            best.append(g)
            if len(best) == n:
                break
        return best

    # ------------------------------------------------------------------ the three requests
    def suggest(self, prompt: str, n: int = 5, input_shape: tuple[int, ...] | None = None,
                num_classes: int | None = None, vocab_size: int | None = None, max_params: int | None = None,
                max_flops: int | None = None, seed: int = 0, temperature: float = 0.9, oversample: int = 3,
                max_len: int | None = None, seconds: float | None = None, rank: str = "auto") -> list[ArchGraph]:
        """``n`` ranked architectures for ``prompt`` (keyword arguments override what the prompt says).

        ``n * oversample`` samples are drawn; the best ``n`` distinct ones come back, ranked by the share of the
        request they meet, then (``rank``):

        * ``"quality"``: the metric they are expected to reach after brief training, as the GHN
          (:attr:`quality_ghn`, the shipped one by default) estimates it on a task the request fits (a 1x28x28,
          10-class request fits ``mnist5k``); ``meta["generator"]["quality"]`` holds the estimate. A request
          that fits no task its estimate knows is an error.
        * ``"likelihood"``: the generator's mean log-probability per token. It favours long repetitive
          stacks (of 28x28 classifiers, plain full-resolution ones over those that downsample).
        * ``"auto"``: ``"quality"`` when the request fits such a task, else ``"likelihood"``.

        ``seconds`` bounds the sampling time (samples unfinished by then are dropped; the result then depends
        on the machine's speed); ``None``: no bound.

        Raises:
            GeneratorError: a bad argument, or no candidate that runs and meets the budget.
        """
        from .prompt import parse_prompt

        if n < 1:
            raise GeneratorError(f"n must be >= 1, got {n}")
        _check_rank(rank)
        over = {k: v for k, v in {"input_shape": tuple(input_shape) if input_shape else None,
                                  "num_classes": num_classes, "vocab_size": vocab_size,
                                  "max_params": max_params, "max_flops": max_flops}.items() if v is not None}
        try:
            c = parse_prompt(prompt or "", **over)
        except (TypeError, ValueError) as e:
            raise GeneratorError(f"cannot read the request: {e}") from None
        task = self._task(c)
        prefix = self._start_graph(task[0], task[1], task[3], c, prompt)
        text, cond, words = self._condition(prompt, c)
        rule = output_rule(task[0])
        deadline = None if seconds is None else time.perf_counter() + seconds
        cands = self._sample_rounds(n, oversample, prefix, text, cond, rule, seed, temperature,
                                    lambda smp, sd: self._finish(smp, c, task, prompt, sd, words, output_ok=rule),
                                    max_len=max_len, max_params=c.max_params, deadline=deadline,
                                    max_flops=c.max_flops)
        if not cands:
            raise GeneratorError(f"no valid architecture found for {prompt!r} within the constraints "
                                 f"(budget {c.max_params}); loosen the budget or raise oversample")
        return self._rank(self._by_quality(cands, rank), n)

    def complete(self, partial: ArchGraph, n: int = 3, prompt: str | None = None, num_classes: int | None = None,
                 vocab_size: int | None = None, output_shape: list | None = None, seed: int = 0,
                 temperature: float = 0.9, oversample: int = 2, rank: str = "auto") -> list[ArchGraph]:
        """``n`` completions of the partial graph ``partial`` (its nodes kept as they are, but a free parameter
        that none of them reads and no new node takes up, such as a weight a cut ended on, is dropped), ranked
        as :meth:`suggest` ranks (``rank``).

        Args:
            partial: a partial graph (e.g. :func:`mad.graph.passes.cut`); its inputs fix the input shape.
            prompt: what the rest should be, in words.
            num_classes, vocab_size: put a classifier or LM head on the result (``retarget``).
            output_shape: instead, end the completion on a node of this shape (e.g. the original
                model's ``['B', 'T', 64]`` hidden states): only such nodes may be the output. A sample
                that reaches none (or whose ending fails) is closed at a late node followed by a projection
                to this shape (:func:`~mad.graph.passes.project_output`; ``meta["generator"]["projected"]``).
        """
        from .prompt import parse_prompt

        _check_rank(rank)
        if not partial.inputs:
            raise GeneratorError("the partial graph has no inputs; cut a graph with mad.graph.passes.cut()")
        prefix = self.tokenizer.prefix_tokens(partial)
        if len(prefix) > self.cfg.max_len - 16:
            raise GeneratorError(f"the partial graph is {len(prefix)} tokens long; this generator continues "
                                 f"graphs of up to {self.cfg.max_len - 16} tokens (cut it earlier)")
        spec = partial.inputs[0]
        token = spec.dtype.startswith("int")
        if token:
            vocab_size = vocab_size or (spec.range[1] if spec.range else 256)
            shape = (int(partial.dims.get("T", SEQ_DEFAULT)),)
        else:
            shape = tuple(int(d) for d in spec.shape[1:])
        c = parse_prompt(prompt or "", input_shape=shape, **({"vocab_size": vocab_size} if token else
                                                              {"num_classes": num_classes or 10}))
        head = output_shape is None
        task = ("text" if token else "image", shape, None if token or not head else (num_classes or 10),
                vocab_size if token and head else None)
        text, cond, words = self._condition(prompt, c)
        project = None if head else list(output_shape)  # type: ignore[arg-type]
        if project is None:
            rule = output_rule(task[0])
        else:
            def rule(node) -> bool:
                return node.shape == project and node.op not in ("input", "parameter")

        keep = len(partial.nodes)
        cands = self._sample_rounds(n, oversample, prefix, text, cond, rule, seed, temperature,
                                    lambda smp, sd: self._finish(smp, c, task, prompt, sd, words, output_ok=rule,
                                                                 keep=keep, project=project))
        if not cands:
            raise GeneratorError("no valid completion found; try another cut or more samples (oversample=)")
        out = self._rank(self._by_quality(cands, rank), n)
        for g in out:
            g.meta["generator"]["completed_from"] = partial.name
            g.meta["generator"]["kept_nodes"] = len(partial.nodes)
        return out

    def edit(self, graph: ArchGraph, instruction: str, seed: int = 0) -> ArchGraph:
        """``graph`` changed as ``instruction`` says (see the module docstring)."""
        from mad.graph.passes import cut

        from .edit import edit_by_instruction

        edited = edit_by_instruction(graph, instruction)
        if edited is not None:
            return edited
        scope = _named_scope(graph, instruction)
        if scope is None:
            raise GeneratorError(
                f"instruction {instruction!r} is not a recognised edit (LoRA, activation swaps, grouped-query "
                "attention, depth) and names no scope of the graph to regenerate; name one, e.g. "
                f"'redesign {_example_scope(graph)}'")
        nodes = [nid for nid in graph.topo_order() if graph.nodes[nid].scope.startswith(scope)]
        order = graph.topo_order()
        first = order.index(nodes[0])
        if first < 1:
            raise GeneratorError(f"scope {scope!r} starts at the graph's input; nothing to keep before it")
        partial = cut(graph, after=order[first - 1])
        from .constraints import constraints_of

        c = constraints_of(graph)
        outs = self.complete(partial, n=1, prompt=instruction, num_classes=c.num_classes, vocab_size=c.vocab_size,
                             seed=seed)
        g = outs[0]
        g.meta["generator"].update({"instruction": instruction, "edit": "regenerate", "scope": scope})
        return g

    # ------------------------------------------------------------------ adapting
    def finetune(self, graphs: list[ArchGraph], texts: list[str | None] | None = None, **kw: Any) -> dict[str, Any]:
        """Fine-tune this generator in place on ``graphs`` (e.g. a search's best-scoring graphs so far).

        Each graph becomes a training example as in the corpus (tokens, its true constraints as condition
        tokens, ``texts[i]`` or its description plus two paraphrases as prompts); then a few AdamW steps of the
        training objective run (next-token and masked steps). The model is back in eval mode afterwards, and
        ``record["finetune"]`` gets an entry and the graphs' WL hashes join :attr:`train_hashes`, so :meth:`save`
        keeps the history.

        Args:
            graphs: the graphs to learn (one that cannot be tokenized is skipped and counted).
            texts: a prompt per graph (``None`` entries use the graph's description).
            **kw: ``steps`` (20), ``lr`` (3e-4), ``batch_tokens`` (4096), ``mlm_rate`` (0.25), ``seed`` (0),
                ``progress`` (False).

        Returns:
            ``{"steps", "graphs", "skipped", "loss_before", "loss_after", "seconds"}``: the losses are the mean
            next-token loss on the used graphs before and after.

        Raises:
            ValueError: no graphs, ``steps < 0``, or no graph that could be tokenized.
        """
        from .finetune import finetune

        return finetune(self, graphs, texts, **kw)


def _named_scope(g: ArchGraph, text: str) -> str | None:
    scopes = {n.scope for n in g.nodes.values() if n.scope}
    words = re.findall(r"[A-Za-z_][\w.]*", text)
    named = [w for w in words if w in scopes or any(s.startswith(w + ".") for s in scopes)]
    return max(named, key=len) if named else None


def _example_scope(g: ArchGraph) -> str:
    scopes = sorted({n.scope for n in g.nodes.values() if n.scope and n.params})
    return scopes[len(scopes) // 2] if scopes else "<scope>"


def load(name_or_path: str | Path = "default", device: Any = None) -> Generator:
    """The shipped generator (``"default"``) or one saved in a folder."""
    return Generator.load(name_or_path, device)
