"""Benchmark: code2graph over the whole HuggingFace model zoo.

For every model type of ``mad.code2graph.hf_zoo.model_types()`` (or ``--types``):
build the tiny model and its inputs, run it eagerly, capture it with
``mad.code2graph.from_module``, validate the graph, rebuild it with
``to_module()``, load the original weights and compare outputs on fresh inputs.
The same models also go through the baselines: bare ``torch.export.export``
(non-strict) and ``torch.onnx.export(..., dynamo=True)``.

Each model runs in its own forked process with a time limit, so a crash or a hang
loses one row. Results are written after every model; ``--resume`` skips the
types already in ``--out``.

Usage:
    python bench/code2graph_zoo.py --limit 20 --workers 2 --timeout 120
    python bench/code2graph_zoo.py --types bert,gpt2,llama --no-onnx
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench.code2graph_zoo")

RTOL = 1e-3  # round trip passes when max |a - b| <= RTOL * max(1, max |a|)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}"[:300]


def _leaves(out: Any) -> dict[str, Any]:
    from mad.code2graph.capture import flatten_output

    return flatten_output(out)


def _compare(ref: Any, got: Any) -> tuple[float, float, list[str]]:
    """Max abs error and max |ref| over the tensor leaves both outputs share; keys missing from ``got``."""
    a, b = _leaves(ref), _leaves(got)
    missing = [k for k in a if k not in b]
    err, scale = 0.0, 0.0
    for k, t in a.items():
        if k not in b:
            continue
        u = b[k]
        if t.shape != u.shape:
            raise ValueError(f"output {k!r}: shape {tuple(u.shape)} != {tuple(t.shape)}")
        if t.numel() == 0:
            continue
        t, u = t.detach().double(), u.detach().double()
        err = max(err, float((t - u).abs().max()))
        scale = max(scale, float(t.abs().max()))
    return err, scale, missing


# ----------------------------------------------------------------------------- child side


def _main_task(model_type: str, opts: dict[str, Any], send) -> None:
    """Build, forward, bare export, our capture and round trip of one type; ``send`` gets partial rows."""
    import torch

    from mad.code2graph import hf_zoo

    row: dict[str, Any] = {"type": model_type}

    def stage(name: str, reason: str | None = None) -> None:
        row["status"] = "ok" if reason is None else name
        if reason is not None:
            row["reason"] = reason
        send(dict(row))

    try:
        t0 = time.perf_counter()
        model, inputs = hf_zoo.build(model_type, seed=opts["seed"])
        row["build_s"] = round(time.perf_counter() - t0, 3)
        row["params"] = sum(p.numel() for p in model.parameters())
        row["inputs"] = {k: list(v.shape) for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        row["instantiated"] = True
        t0 = time.perf_counter()
        with torch.no_grad():
            model(**inputs)
        row["forward_s"] = round(time.perf_counter() - t0, 3)
        row["forward_ok"] = True
    except hf_zoo.ZooError as e:
        row["instantiated"] = e.stage not in ("config", "instantiate")
        return stage(e.stage, e.reason)
    except Exception as e:  # noqa: BLE001
        return stage("forward", _one_line(e))
    send(dict(row, status="running"))

    def bare_export() -> None:
        if not opts["export"]:
            return
        t0 = time.perf_counter()
        try:
            torch.export.export(model, args=(), kwargs=inputs, strict=False)
            row["export_ok"] = True
        except Exception as e:  # noqa: BLE001
            row["export_ok"] = False
            row["export_reason"] = _one_line(e)
        row["export_s"] = round(time.perf_counter() - t0, 3)
        send(dict(row, status="running"))

    # The first trace of a model in a process pays one-off warm-up costs; an untimed warm-up
    # export goes first so that the timed bare export and the timed capture both run warm.
    if not opts["capture"]:
        bare_export()
        return stage("ok")
    try:
        from mad.code2graph.capture import CaptureStats, from_module
    except ImportError as e:
        bare_export()
        return stage("capture", f"mad.code2graph.capture unavailable: {e}")
    if opts["export"]:
        try:
            torch.export.export(model, args=(), kwargs=inputs, strict=False)
        except Exception:  # noqa: BLE001 - the timed run below records the failure
            pass
    bare_export()
    stats = CaptureStats()
    t0 = time.perf_counter()
    try:
        g = from_module(model, (), inputs, name=model_type, source=f"hf:{model_type}", stats=stats)
    except Exception as e:  # noqa: BLE001
        row["capture_s"] = round(time.perf_counter() - t0, 3)
        return stage("capture", _one_line(e))
    row["capture_s"] = round(time.perf_counter() - t0, 3)
    row["capture_export_s"] = round(stats.export_s, 3)
    row["capture_convert_s"] = round(stats.convert_s, 3)
    row["nodes"] = len(g.nodes)
    row["aten_nodes"] = stats.aten_nodes
    send(dict(row, status="running"))
    t0 = time.perf_counter()
    try:
        g.validate()
    except Exception as e:  # noqa: BLE001
        row["validate_s"] = round(time.perf_counter() - t0, 3)
        return stage("validate", _one_line(e))
    row["validate_s"] = round(time.perf_counter() - t0, 3)
    try:
        m2 = g.to_module()
        m2.load_state_dict(model.state_dict())
        fresh = hf_zoo.example_inputs(model, model.config, seed=opts["seed"] + 1)
        changed = [k for k, v in inputs.items()
                   if isinstance(v, torch.Tensor) and (k not in fresh or fresh[k].shape != v.shape)]
        if changed:
            raise ValueError(f"fresh inputs {changed} differ in shape from the captured ones")
        names = [s.name for s in g.inputs]
        with torch.no_grad():
            want = model(**fresh)
            got = m2(**{k: v for k, v in fresh.items() if k in names})
        err, scale, missing = _compare(want, got)
    except Exception as e:  # noqa: BLE001
        return stage("roundtrip", _one_line(e))
    row["roundtrip_max_abs_err"] = err
    row["roundtrip_ref_max"] = scale
    if missing:
        row["roundtrip_missing"] = missing[:10]
    if not math.isfinite(err) or err > RTOL * max(1.0, scale) or missing:
        return stage("roundtrip", f"outputs differ: max abs err {err:.3g} (ref max {scale:.3g}), missing {missing[:5]}")
    row["symbols"] = sorted(g.dims)
    row["other_batch"] = _other_batches(g, model, m2, fresh)
    return stage("ok")


def _other_batches(g: Any, model: Any, m2: Any, fresh: dict[str, Any]) -> dict[str, Any]:
    """Outputs at batch 1 and 4 (inputs whose dim 0 is the symbol B cut or tiled), against the source."""
    import torch

    batched = {s.name for s in g.inputs if s.shape and s.shape[0] == "B"}
    if not batched:
        return {"ok": False, "reason": "no symbolic batch dim"}
    out: dict[str, Any] = {"ok": True}
    for b in (1, 4):
        x = {}
        for k, v in fresh.items():
            if k in batched and isinstance(v, torch.Tensor):
                reps = -(-b // v.shape[0])
                v = torch.cat([v] * reps)[:b]
            x[k] = v
        try:
            with torch.no_grad():
                want = model(**x)
                got = m2(**{k: v for k, v in x.items() if k in {s.name for s in g.inputs}})
            err, scale, missing = _compare(want, got)
            good = math.isfinite(err) and err <= RTOL * max(1.0, scale) and not missing
            out[str(b)] = "ok" if good else f"outputs differ by {err:.3g}"
        except Exception as e:  # noqa: BLE001
            out[str(b)] = _one_line(e)[:160]
            good = False
        out["ok"] = out["ok"] and good
    return out


def _onnx_task(model_type: str, opts: dict[str, Any], send) -> None:
    import torch

    from mad.code2graph import hf_zoo

    row: dict[str, Any] = {}
    try:
        model, inputs = hf_zoo.build(model_type, seed=opts["seed"])
    except Exception as e:  # noqa: BLE001
        row.update(onnx_ok=False, onnx_reason=_one_line(e))
        return send(row)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prog = torch.onnx.export(model, (), kwargs=inputs, dynamo=True, verbose=False)
                prog.save(os.path.join(d, "m.onnx"))
            row["onnx_ok"] = True
        except Exception as e:  # noqa: BLE001
            row.update(onnx_ok=False, onnx_reason=_one_line(e))
        row["onnx_s"] = round(time.perf_counter() - t0, 3)
    send(row)


_TASKS = {"main": _main_task, "onnx": _onnx_task}


def _child(kind: str, model_type: str, opts: dict[str, Any], conn) -> None:
    import torch

    torch.set_num_threads(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # export failures print whole graphs: keep the parent's terminal and log readable
    os.dup2(devnull, 2)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    try:
        _TASKS[kind](model_type, opts, conn.send)
    except BaseException as e:  # noqa: BLE001
        conn.send({"status": "crash", "reason": _one_line(e), "trace": traceback.format_exc()[-2000:]})
    finally:
        conn.close()
        os._exit(0)


# ----------------------------------------------------------------------------- parent side


class Pool:
    """Runs (kind, type) jobs in forked children, ``workers`` at a time, each under a time limit."""

    def __init__(self, workers: int, opts: dict[str, Any]) -> None:
        self.workers = workers
        self.opts = opts
        self.ctx = mp.get_context("fork")
        self.running: list[dict[str, Any]] = []

    def run(self, jobs: list[tuple[str, str, float]], on_result) -> None:
        pending = list(jobs)
        while pending or self.running:
            while pending and len(self.running) < self.workers:
                kind, mt, limit = pending.pop(0)
                recv, send = self.ctx.Pipe(duplex=False)
                p = self.ctx.Process(target=_child, args=(kind, mt, self.opts, send), daemon=True)
                p.start()
                send.close()
                self.running.append({"kind": kind, "type": mt, "proc": p, "conn": recv, "t0": time.time(),
                                     "limit": limit, "row": {}})
            time.sleep(0.05)
            for job in list(self.running):
                self._drain(job)
                p = job["proc"]
                elapsed = time.time() - job["t0"]
                if not p.is_alive():
                    p.join()
                    self._drain(job)
                    if not job["row"]:
                        job["row"] = {"status": "crash", "reason": f"worker died with exit code {p.exitcode}"}
                    elif job["row"].get("status") == "running":
                        job["row"].update(status="crash", reason=f"worker died with exit code {p.exitcode}")
                elif elapsed > job["limit"]:
                    os.kill(p.pid, signal.SIGKILL)
                    p.join()
                    self._drain(job)
                    row = job["row"]
                    done = row.get("status") == "running"
                    if job["kind"] == "onnx":
                        row.update(onnx_ok=False, onnx_reason=f"timeout after {job['limit']:.0f}s", onnx_s=None)
                    else:
                        row.update(status="timeout", reason=f"timeout after {job['limit']:.0f}s"
                                   + (" (after forward)" if done else ""))
                else:
                    continue
                job["conn"].close()
                self.running.remove(job)
                on_result(job["kind"], job["type"], job["row"])

    @staticmethod
    def _drain(job: dict[str, Any]) -> None:
        conn = job["conn"]
        try:
            while conn.poll():
                job["row"].update(conn.recv())
        except (EOFError, OSError):
            pass


def _group(reason: str) -> str:
    """Failure reason with numbers, quoted names and paths blurred, for grouping."""
    r = re.sub(r"'[^']*'|\"[^\"]*\"", "'_'", reason)
    r = re.sub(r"\d+", "N", r)
    r = re.sub(r"\([^)]*\)", "(..)", r)
    return r[:110]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, round(q * (len(values) - 1)))], 3)


def summarize(rows: dict[str, dict[str, Any]], onnx: bool) -> dict[str, Any]:
    """Counts, rates, timings and failure groups over per-type rows."""
    rs = list(rows.values())
    n = len(rs)
    inst = [r for r in rs if r.get("instantiated")]
    fwd = [r for r in rs if r.get("forward_ok")]
    exp = [r for r in fwd if r.get("export_ok")]
    cap = [r for r in fwd if "nodes" in r]
    val = [r for r in cap if "validate_s" in r and r.get("status") != "validate"]
    ok = [r for r in rs if r.get("status") == "ok"]
    s: dict[str, Any] = {
        "types": n,
        "instantiable": len(inst),
        "forward_ok": len(fwd),
        "bare_export_ok": len(exp),
        "capture_ok": len(cap),
        "validate_ok": len(val),
        "roundtrip_ok": len(ok),
        "rate_forward_of_instantiable": round(len(fwd) / max(1, len(inst)), 4),
        "rate_bare_export_of_forward": round(len(exp) / max(1, len(fwd)), 4),
        "rate_capture_of_forward": round(len(cap) / max(1, len(fwd)), 4),
        "rate_ok_of_instantiable": round(len(ok) / max(1, len(inst)), 4),
        "rate_ok_of_forward": round(len(ok) / max(1, len(fwd)), 4),
    }

    def times(key: str, sel: list[dict[str, Any]]) -> dict[str, Any]:
        v = [r[key] for r in sel if isinstance(r.get(key), (int, float))]
        return {"median": _pct(v, 0.5), "p90": _pct(v, 0.9), "n": len(v)}

    s["time_s"] = {
        "build": times("build_s", inst),
        "forward": times("forward_s", fwd),
        "bare_export": times("export_s", exp),
        "capture": times("capture_s", cap),
        "validate": times("validate_s", val),
    }
    both = [r for r in cap if r.get("export_ok") and r.get("export_s")]
    ratios = [r["capture_s"] / r["export_s"] for r in both]
    s["capture_over_bare_export"] = {"median": _pct(ratios, 0.5), "p90": _pct(ratios, 0.9), "n": len(ratios)}
    both_v = [r for r in both if r.get("validate_s") is not None]
    cv = [r["capture_s"] + r["validate_s"] for r in both_v]
    cv_ratios = [(r["capture_s"] + r["validate_s"]) / r["export_s"] for r in both_v]
    s["capture_validate_s"] = {"median": _pct(cv, 0.5), "p90": _pct(cv, 0.9), "n": len(cv)}
    s["capture_validate_over_bare_export"] = {
        "median": _pct(cv_ratios, 0.5), "p90": _pct(cv_ratios, 0.9), "n": len(cv_ratios)
    }
    s["nodes"] = {"median": _pct([r["nodes"] for r in cap], 0.5), "p90": _pct([r["nodes"] for r in cap], 0.9)}
    ob = [r for r in ok if "other_batch" in r]
    s["other_batch_ok"] = sum(1 for r in ob if r["other_batch"].get("ok"))
    s["rate_other_batch_of_roundtrip"] = round(s["other_batch_ok"] / max(1, len(ob)), 4)
    s["symbolic_seq"] = sum(1 for r in ob if any(x != "B" for x in r.get("symbols", [])))
    errs = [r["roundtrip_max_abs_err"] for r in rs if "roundtrip_max_abs_err" in r]
    s["roundtrip_max_abs_err"] = {"median": _pct(errs, 0.5), "max": max(errs) if errs else None}
    if onnx:
        on = [r for r in fwd if "onnx_ok" in r]
        onok = [r for r in on if r["onnx_ok"]]
        s["onnx_tried"] = len(on)
        s["onnx_ok"] = len(onok)
        s["rate_onnx_of_forward"] = round(len(onok) / max(1, len(on)), 4)
        s["time_s"]["onnx"] = times("onnx_s", onok)
        groups_onnx: dict[str, list[str]] = {}
        for r in on:
            if not r["onnx_ok"]:
                groups_onnx.setdefault(_group(r.get("onnx_reason", "?")), []).append(r["type"])
        s["onnx_failure_groups"] = _sorted_groups(groups_onnx)
    groups: dict[str, list[str]] = {}
    for r in rs:
        if r.get("status") not in ("ok", "running", None):
            groups.setdefault(f"{r['status']}: {_group(r.get('reason', '?'))}", []).append(r["type"])
    s["failure_groups"] = _sorted_groups(groups)
    exp_groups: dict[str, list[str]] = {}
    for r in fwd:
        if r.get("export_ok") is False:
            exp_groups.setdefault(_group(r.get("export_reason", "?")), []).append(r["type"])
    s["bare_export_failure_groups"] = _sorted_groups(exp_groups)
    return s


def _sorted_groups(groups: dict[str, list[str]]) -> list[dict[str, Any]]:
    return [{"reason": k, "count": len(v), "types": sorted(v)}
            for k, v in sorted(groups.items(), key=lambda kv: -len(kv[1]))]


def print_summary(s: dict[str, Any]) -> None:
    print(f"types {s['types']}  instantiable {s['instantiable']}  forward ok {s['forward_ok']}  "
          f"bare export ok {s['bare_export_ok']}  capture ok {s['capture_ok']}  validate ok {s['validate_ok']}  "
          f"round trip ok {s['roundtrip_ok']}")
    print(f"forward/instantiable {s['rate_forward_of_instantiable']:.1%}  "
          f"bare export/forward {s['rate_bare_export_of_forward']:.1%}  "
          f"capture/forward {s['rate_capture_of_forward']:.1%}  ok/instantiable {s['rate_ok_of_instantiable']:.1%}")
    if "onnx_ok" in s:
        print(f"onnx (dynamo) ok {s['onnx_ok']}/{s['onnx_tried']} = {s['rate_onnx_of_forward']:.1%}")
    for k, t in s["time_s"].items():
        print(f"  {k:12s} median {t['median']} s  p90 {t['p90']} s  (n={t['n']})")
    r = s["capture_over_bare_export"]
    print(f"  capture / bare export time: median {r['median']}  p90 {r['p90']}")
    print(f"  nodes: median {s['nodes']['median']}  p90 {s['nodes']['p90']}")
    print("failure groups:")
    for g in s["failure_groups"][:25]:
        print(f"  {g['count']:4d}  {g['reason']}  [{', '.join(g['types'][:6])}{', ...' if g['count'] > 6 else ''}]")
    if s.get("bare_export_failure_groups"):
        print("bare export failure groups:")
        for g in s["bare_export_failure_groups"][:10]:
            print(f"  {g['count']:4d}  {g['reason']}  [{', '.join(g['types'][:6])}]")


def _warm_up(capture: bool) -> None:
    """Run each exporter once on a tiny model before forking, so no child pays the one-time start-up cost
    (otherwise whichever exporter runs first in a child looks slower)."""
    import torch

    from mad.code2graph import hf_zoo

    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, inputs = hf_zoo.build("bert")
        torch.export.export(model, (), inputs, strict=False)
        if capture:
            from mad.code2graph.capture import from_module

            from_module(model, (), inputs).validate()
    logging.disable(logging.NOTSET)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N types")
    ap.add_argument("--types", default=None, help="comma-separated model types (default: all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per type for build+forward+captures")
    ap.add_argument("--onnx-timeout", type=float, default=90.0)
    ap.add_argument("--no-onnx", action="store_true", help="skip the torch.onnx.export baseline")
    ap.add_argument("--no-export", action="store_true", help="skip the bare torch.export baseline")
    ap.add_argument("--no-capture", action="store_true", help="skip mad's capture (baselines only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="keep rows already in --out and skip those types")
    ap.add_argument("--out", default="bench/results/code2graph_zoo.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch
    import transformers

    from mad.code2graph import hf_zoo

    hf_zoo.preload()
    if not args.no_onnx:
        import onnxscript  # noqa: F401
        import torch.onnx
    capture = not args.no_capture
    if capture:
        try:
            import mad.code2graph.capture  # noqa: F401
        except ImportError as e:
            log.warning("mad.code2graph.capture not importable (%s): running the baselines only", e)
            capture = False
    _warm_up(capture)
    types = hf_zoo.model_types()
    if args.types:
        wanted = [t.strip() for t in args.types.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in types]
        if unknown:
            ap.error(f"unknown model types {unknown}")
        types = wanted
    if args.limit:
        types = types[: args.limit]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    if args.resume and out.exists():
        rows = json.loads(out.read_text()).get("per_type", {})
        types = [t for t in types if t not in rows]
    opts = {"seed": args.seed, "export": not args.no_export, "capture": capture}
    config = {"workers": args.workers, "timeout": args.timeout, "onnx": not args.no_onnx,
              "onnx_timeout": args.onnx_timeout, "capture": capture, "export": opts["export"],
              "torch": torch.__version__, "transformers": transformers.__version__, "rtol": RTOL}

    def write() -> None:
        doc = {"config": config, "summary": summarize(rows, not args.no_onnx), "per_type": rows}
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        tmp.replace(out)

    from tqdm import tqdm

    bar = tqdm(total=len(types) * (1 if args.no_onnx else 2), desc="zoo", unit="job", dynamic_ncols=True)
    onnx_jobs: list[tuple[str, str, float]] = []
    pool = Pool(args.workers, opts)
    last_write = [0.0]

    def on_result(kind: str, mt: str, row: dict[str, Any]) -> None:
        if kind == "main":
            rows[mt] = dict(row, type=mt)
            if not args.no_onnx:
                if row.get("forward_ok"):
                    onnx_jobs.append(("onnx", mt, args.onnx_timeout))
                else:
                    bar.update(1)
        else:
            rows.setdefault(mt, {"type": mt}).update(row)
        bar.update(1)
        bar.set_postfix_str(f"{mt}: {rows[mt].get('status')}")
        if time.time() - last_write[0] > 2.0:
            write()
            last_write[0] = time.time()

    try:
        pool.run([("main", t, args.timeout) for t in types], on_result)
        if onnx_jobs:
            pool.run(onnx_jobs, on_result)
    except KeyboardInterrupt:
        log.warning("interrupted: writing what finished")
        for job in pool.running:
            with_suppress_kill(job["proc"].pid)
    finally:
        bar.close()
        write()
    print_summary(summarize(rows, not args.no_onnx))
    print(f"wrote {out}")
    return 0


def with_suppress_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
