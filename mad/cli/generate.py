"""``mad suggest``, ``mad complete``, ``mad edit`` and ``mad generator train``: architectures from the generator.

    mad suggest "PROMPT" -n 5 [--input 1x28x28 --classes 10 --vocab 128 --max-params 100k] -o DIR [--json]
    mad complete GRAPH --cut-after SCOPE_OR_NODE [--fraction 0.5] -n 3 -o DIR [--prompt TEXT] [--json]
    mad edit GRAPH "INSTRUCTION" -o OUT.json [--json]
    mad generator train --out ckpt/ [--steps 4500] [--minutes 80] [--zoo-repeat 3] [--batch-tokens 8192]
        [--structure-bias] [--kv-heads 1] [--lr 1e-3]

Each result is written as ``<name>.json`` (the graph), ``<name>.py`` (PyTorch code) and
``<name>.svg`` (a picture); a table says parameters, FLOPs, family and why it matches.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from .common import CliError, _busy, _command, _emit_json, _human, _load_graph, _stdout

__all__ = ["suggest", "complete", "edit", "generator_app"]

_GEN_OPT = typer.Option("--generator", metavar="DIR", help="Generator checkpoint folder, or 'default' (shipped).")
_SEED = typer.Option(help="Sampling seed.")
_DEVICE = typer.Option(help="cpu or cuda (default: CUDA when present).")
_NO_PICTURE = typer.Option("--no-picture", help="Skip the pictures.")
_JSON = typer.Option("--json", help="Print the results as JSON.")
generator_app = typer.Typer(help="The graph generator: train it (suggest/complete/edit use it).", no_args_is_help=True)


def _load_gen(where: str, device: str | None):
    from mad.generator import GeneratorError, load

    try:
        return load(where, device=device)
    except GeneratorError as e:
        raise CliError(str(e)) from None


def _count(text: str | None, what: str) -> int | None:
    """``100k``, ``2.5M``, ``1e6`` or ``100000`` -> int."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kKmMgGbB]?)\s*", text)
    if not m:
        raise CliError(f"--{what} {text!r}: give a count like 100000, 100k or 2.5M")
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = re.split(r"[x,×]", text.strip().lower())
    if not parts or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise CliError(f"--input {text!r}: give the shape of one example, e.g. 1x28x28 (image) or 64 (tokens)")
    return tuple(int(p) for p in parts)


def _write(graphs: list, out: Path, picture: bool = True) -> list[dict[str, Any]]:
    """Write each graph's JSON, code and picture to ``out``; rows for the table / JSON."""
    from mad.data.describe import analyze
    from mad.graph.interpreter import interpret

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, g in enumerate(graphs):
        stem = f"{k + 1:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', g.name)}"
        g.to_json(out / f"{stem}.json")
        files = {"graph": str(out / f"{stem}.json")}
        (out / f"{stem}.py").write_text(g.to_code())
        files["code"] = str(out / f"{stem}.py")
        if picture:
            try:
                from mad.graph.render import render

                files["picture"] = str(render(g, out / f"{stem}.svg"))
            except Exception as e:  # noqa: BLE001 - a picture is a nicety; the graph and code are written
                files["picture_error"] = str(e).splitlines()[0][:200]
        info = g.meta.get("generator", {})
        try:
            flops = interpret(g).flops
        except Exception:  # noqa: BLE001
            flops = None
        try:
            family = analyze(g).family
        except Exception:  # noqa: BLE001
            family = None
        rows.append({"name": g.name, "params": g.num_params, "flops": flops, "nodes": len(g.nodes), "family": family,
                     "adherence": info.get("adherence"), "why": info.get("why", []),
                     "missed": [k2 for k2, ok in info.get("checks", {}).items() if not ok],
                     "ranked_by": info.get("ranked_by"), "quality": info.get("quality"), "files": files})
    return rows


def _table(rows: list[dict[str, Any]], title: str) -> None:
    t = Table(title=title)
    expected = any(r.get("quality") for r in rows)
    for col in ("#", "params", "FLOPs", "nodes", "family", "meets") + (("expected",) if expected else ()) + (
            "why it matches",):
        t.add_column(col)
    for k, r in enumerate(rows):
        why = ", ".join(r["why"]) or "-"
        if r["missed"]:
            why += f" (misses {', '.join(r['missed'])})"
        meets = "-" if r["adherence"] is None else f"{r['adherence']:.0%}"
        cells = [str(k + 1), _human(r["params"]), _human(r["flops"]) if r["flops"] is not None else "?",
                 str(r["nodes"]), str(r["family"] or "?"), meets]
        if expected:
            q = r.get("quality") or {}
            cells.append("-" if q.get("estimate") is None else f"{q['task']} {q['estimate']:.3g}")
        t.add_row(*cells, why)
    _stdout().print(t)


_RANK = typer.Option("--rank", help="Order of results that meet the request equally: quality (the GHN's estimate "
                     "of the metric after brief training, on a task the request fits), likelihood, or auto (quality "
                     "when it can).")


@_command
def suggest(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="What you want, in words.")],
    n: Annotated[int, typer.Option("-n", min=1, max=50, help="Architectures to return.")] = 5,
    input_shape: Annotated[str | None, typer.Option("--input", metavar="SHAPE", help="One example's shape, e.g. "
                                                    "1x28x28 or 64 (tokens).")] = None,
    classes: Annotated[int | None, typer.Option("--classes", min=1, help="Output classes.")] = None,
    vocab: Annotated[int | None, typer.Option("--vocab", min=2, help="Token vocabulary (text models).")] = None,
    max_params: Annotated[str | None, typer.Option("--max-params", metavar="N", help="Parameter budget, "
                                                   "e.g. 100k.")] = None,
    max_flops: Annotated[str | None, typer.Option("--max-flops", metavar="N", help="FLOP budget, e.g. 5M.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Folder for the results.")]
    = Path("suggestions"),
    seed: Annotated[int, _SEED] = 0,
    rank: Annotated[str, _RANK] = "auto",
    generator: Annotated[str, _GEN_OPT] = "default",
    device: Annotated[str | None, _DEVICE] = None,
    no_picture: Annotated[bool, _NO_PICTURE] = False,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Suggest architectures for a prompt: graph JSON, PyTorch code and a picture each, ranked."""
    from mad.generator import GeneratorError

    gen = _load_gen(generator, device)
    try:
        with _busy(f"sampling architectures for {prompt!r}"):
            graphs = gen.suggest(prompt, n=n, input_shape=_shape(input_shape), num_classes=classes, vocab_size=vocab,
                                 max_params=_count(max_params, "max-params"), max_flops=_count(max_flops, "max-flops"),
                                 seed=seed, rank=rank)
    except GeneratorError as e:
        raise CliError(str(e)) from None
    rows = _write(graphs, out, picture=not no_picture)
    if as_json:
        _emit_json({"prompt": prompt, "out": str(out), "results": rows})
        return
    _table(rows, f"{len(rows)} architectures for {prompt!r} (in {out})")


@_command
def complete(
    graph: Annotated[Path, typer.Argument(metavar="GRAPH", help="Graph JSON file to cut and complete.")],
    cut_after: Annotated[str | None, typer.Option("--cut-after", metavar="SCOPE_OR_NODE", help="Keep everything "
                                                  "up to this scope or node.")] = None,
    fraction: Annotated[float | None, typer.Option("--fraction", min=0.0, max=1.0, help="Keep this share of the "
                                                   "nodes instead.")] = None,
    n: Annotated[int, typer.Option("-n", min=1, max=50, help="Completions to return.")] = 3,
    prompt: Annotated[str | None, typer.Option("--prompt", help="What the rest should be, in words.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Folder for the results.")]
    = Path("completions"),
    seed: Annotated[int, _SEED] = 0,
    rank: Annotated[str, _RANK] = "auto",
    generator: Annotated[str, _GEN_OPT] = "default",
    device: Annotated[str | None, _DEVICE] = None,
    no_picture: Annotated[bool, _NO_PICTURE] = False,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Cut a graph after a scope or node and let the generator complete it."""
    from mad.generator import GeneratorError
    from mad.generator.constraints import constraints_of
    from mad.graph import GraphError
    from mad.graph.passes import cut

    if (cut_after is None) == (fraction is None):
        raise CliError("give exactly one of --cut-after SCOPE_OR_NODE or --fraction F")
    g, _ = _load_graph(graph)
    try:
        partial = cut(g, after=cut_after, fraction=fraction)
    except GraphError as e:
        raise CliError(str(e)) from None
    c = constraints_of(g)
    gen = _load_gen(generator, device)
    try:
        with _busy(f"completing {graph.name} after {partial.meta['cut']['after']}"):
            graphs = gen.complete(partial, n=n, prompt=prompt, num_classes=c.num_classes, vocab_size=c.vocab_size,
                                  seed=seed, rank=rank)
    except GeneratorError as e:
        raise CliError(str(e)) from None
    rows = _write(graphs, out, picture=not no_picture)
    kept = len(partial.nodes)
    if as_json:
        _emit_json({"graph": str(graph), "cut_after": partial.meta["cut"]["after"], "kept_nodes": kept,
                    "removed_nodes": partial.meta["cut"]["removed"], "out": str(out), "results": rows})
        return
    _table(rows, f"{len(rows)} completions of {graph.name} ({kept} nodes kept, in {out})")


@_command
def edit(
    graph: Annotated[Path, typer.Argument(metavar="GRAPH", help="Graph JSON file.")],
    instruction: Annotated[str, typer.Argument(metavar="INSTRUCTION", help="e.g. 'add LoRA of rank 8 to the last "
                                               "layer'.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="FILE", help="Edited graph JSON (default: "
                                             "GRAPH with an -edited suffix).")] = None,
    seed: Annotated[int, _SEED] = 0,
    generator: Annotated[str, _GEN_OPT] = "default",
    device: Annotated[str | None, _DEVICE] = None,
    as_json: Annotated[bool, _JSON] = False,
) -> None:
    """Edit a graph by instruction: recognised edits run as graph passes, others regenerate the named scope."""
    from mad.generator import GeneratorError
    from mad.generator.edit import edit_by_instruction
    from mad.graph import GraphError

    g, _ = _load_graph(graph)
    out = out or graph.with_name(graph.stem + "-edited.json")
    try:  # a recognised edit is a graph pass and needs no generator; anything else regenerates a scope
        h = edit_by_instruction(g, instruction)
        if h is None:
            h = _load_gen(generator, device).edit(g, instruction, seed=seed)
    except (GraphError, GeneratorError) as e:
        raise CliError(str(e)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    h.to_json(out)
    code = out.with_suffix(".py")
    code.write_text(h.to_code())
    summary = {"graph": str(graph), "instruction": instruction, "out": str(out), "code": str(code),
               "params_before": g.num_params, "params_after": h.num_params, "nodes_before": len(g.nodes),
               "nodes_after": len(h.nodes), "edit": (h.meta.get("edits") or [{}])[-1].get("pass")
               if h.meta.get("edits") else h.meta.get("generator", {}).get("edit")}
    if as_json:
        _emit_json(summary)
        return
    _stdout().print(f"wrote [bold]{out}[/bold] and {code}: {len(g.nodes)} -> {len(h.nodes)} nodes, "
                    f"{_human(g.num_params)} -> {_human(h.num_params)} parameters")


@generator_app.command("train")
@_command
def train_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Run folder; the generator is written "
                                      "there.")] = Path("ckpt-generator"),
    steps: Annotated[int, typer.Option(min=1, help="Optimizer steps (the shipped generator: 14836, resumed "
                                       "from 5500).")] = 4500,
    batch_tokens: Annotated[int, typer.Option("--batch-tokens", min=256, help="Graph tokens per batch (the "
                                              "shipped generator: 4096 on CPU, then 8192 on a GPU).")] = 4096,
    minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this many minutes.")] = None,
    extra_random: Annotated[int, typer.Option("--extra-random", min=0, help="Random-space graphs added to the "
                                              "dataset's train split.")] = 3000,
    zoo_repeat: Annotated[int, typer.Option("--zoo-repeat", min=1, help="Times each converted model appears per "
                                            "epoch (weighs them against the random-space graphs).")] = 1,
    structure_bias: Annotated[bool, typer.Option("--structure-bias/--no-structure-bias", help="Attention bias from "
                                                 "the graph's edges (the shipped decoder has none: it trained "
                                                 "better without in the same steps).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Processes building the corpus.")] = 1,
    device: Annotated[str | None, _DEVICE] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Ignore a checkpoint in --out and start over.")] = False,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (linear warm-up, cosine decay).")] = 1e-3,
    kv_heads: Annotated[int | None, typer.Option("--kv-heads", min=1, help="Key/value heads (grouped-query "
                                                 "attention: a smaller decoding cache, faster sampling on a "
                                                 "CPU); default: one per query head.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training record as JSON.")] = False,
) -> None:
    """Train the graph generator on the dataset (next-token and masked recovery)."""
    import json

    from mad.generator.train import RECORD, TrainConfig, train

    model = {"structure_bias": structure_bias, **({"n_kv_heads": kv_heads} if kv_heads else {})}
    cfg = TrainConfig(steps=steps, extra_random=extra_random, seed=seed, zoo_repeat=zoo_repeat, lr=lr,
                      batch_tokens=batch_tokens, model=model)
    train(cfg, out, resume=not fresh, minutes=minutes, workers=workers, progress=not as_json, device=device)
    record = json.loads((out / RECORD).read_text())
    if as_json:
        _emit_json(record)
        return
    _stdout().print(f"trained to step {record['steps']} in {record['seconds']:.0f} s; generator written to "
                    f"[bold]{out}[/bold]; last evaluation {record.get('final_eval')}")
