"""Regenerate the README's benchmark table from bench/results/*.json.

    python bench/report.py          # rewrites the block between the bench markers in README.md
    python bench/report.py --print  # prints it instead

Each results file is summarised by the formatter registered for its name;
a file without one is listed with its scalar ``summary`` fields.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "n/a"


def _num(x: Any, unit: str = "") -> str:
    if isinstance(x, float):
        return f"{x:.2f}{unit}"
    return f"{x}{unit}" if x is not None else "n/a"


def _zoo(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = d.get("summary", {})
    if not s:
        return []
    inst = max(s.get("instantiable", 0), 1)
    ok = s.get("validate_ok", 0)
    med = lambda key: (s.get(key) or {}).get("median")  # noqa: E731
    rows = [
        ("model types / instantiable / eager forward ok",
         f"{s.get('types')} / {s.get('instantiable')} / {s.get('forward_ok')}", ""),
        ("converted + validated, of instantiable", f"{_pct(ok / inst)} ({ok})", ">= 90%"),
        ("converted + validated, of forward-ok", _pct(ok / max(s.get("forward_ok", 0), 1)), ""),
        ("round trip with equal outputs, of instantiable",
         f"{_pct(s.get('roundtrip_ok', 0) / inst)} ({s.get('roundtrip_ok')})", ">= 80%"),
        ("baseline: bare torch.export ok, of forward-ok", _pct(s.get("rate_bare_export_of_forward")), ""),
        ("ours, of bare-export-ok", _pct(s.get("capture_ok", 0) / max(s.get("bare_export_ok", 0), 1)), ""),
        ("median capture + validate (s)", _num(med("capture_validate_s")), "<= 1.5 s"),
        ("median (capture + validate) / bare export", _num(med("capture_validate_over_bare_export")), "<= 1.5x"),
        ("median bare torch.export (s)", _num((s.get("time_s", {}).get("bare_export") or {}).get("median")), ""),
        ("median nodes per graph", _num((s.get("nodes") or {}).get("median")), ""),
    ]
    if "other_batch_ok" in s:
        rows.append(("round-trip-ok graphs equal to the source at batch 1 and 4",
                     f"{_pct(s.get('rate_other_batch_of_roundtrip'))} ({s['other_batch_ok']})", ""))
        rows.append(("... of which with a symbolic sequence dim", str(s.get("symbolic_seq")), ""))
    if s.get("onnx_tried"):
        rows.append(("baseline: torch.onnx.export (dynamo) ok, of forward-ok",
                     f"{_pct(s['onnx_ok'] / s['onnx_tried'])} ({s['onnx_ok']}/{s['onnx_tried']})", ""))
        onnx_t = (s.get("time_s", {}).get("onnx") or {}).get("median")
        rows.append(("median torch.onnx.export (s)", _num(onnx_t), ""))
    return rows


def _meta7b(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = d.get("summary", {})
    return [
        ("7B Llama config on meta: capture + validate (s)", _num(s.get("meta_7b_seconds")), "<= 30 s"),
        ("... peak memory (GiB, imports included)", _num(s.get("meta_7b_peak_gib")), "<= 2 GiB"),
        ("... parameters (billion) / nodes", f"{s.get('meta_7b_params_billion')} / {s.get('meta_7b_nodes')}", ""),
    ]


def _dataset(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for part, target_key, target in (("zoo", "projected_minutes_for_5000", "5,000 in <= 30 min"),
                                     ("random", "projected_minutes_for_50000", "50,000 in <= 30 min")):
        p = d.get(part)
        if not p:
            continue
        rows.append((f"{part}: graphs/s (2 workers)", _num(p.get("graphs_per_second")), ""))
        rows.append((f"{part}: projected minutes", _num(p.get(target_key)), target))
        rows.append((f"{part}: validity of written rows", _pct(p.get("validity_fraction")), "100%"))
        rows.append((f"{part}: distinct WL hashes", _pct(p.get("distinct_wl_fraction")), ""))
        rows.append((f"{part}: MB on disk per 1,000 graphs", _num(p.get("disk_mb_per_1000")), ""))
        if p.get("memory_growth"):
            growth = ", ".join(f"{g['graphs']}: {g['peak_rss_mb']:.0f} MB" for g in p["memory_growth"])
            rows.append((f"{part}: peak RSS by graph count", growth, "flat"))
    return rows


def _features(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = d.get("summary", {})
    return [
        ("graphs / nodes of the shipped dataset", f"{s.get('graphs')} / {s.get('nodes')}", ""),
        ("to_pyg + from_pyg over all of them (s)",
         f"{_num(s.get('round_trip_seconds'))} ({_num(s.get('to_pyg_seconds'))} + {_num(s.get('from_pyg_seconds'))})",
         ""),
        ("per graph (ms)", _num(s.get("ms_per_graph")), ""),
        ("exact round trip (same JSON, same WL hash)", _pct(s.get("exact_round_trip_fraction")), "100%"),
        ("nodes with anything in the side band", _pct(s.get("nodes_with_side_band_fraction")), ""),
    ]


def _builder(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (f"GraphBuilder: grow a {d.get('nodes'):,}-node graph (s)", _num(d.get("grow_seconds")),
         f"< {d.get('target_grow_seconds')} s"),
        ("... per node (µs); first / last 1,000 nodes (ms)",
         f"{_num(d.get('us_per_node'))}; {_num(d.get('first_1000_ms'))} / {_num(d.get('last_1000_ms'))}", "flat"),
        ("... build() with full validation (s)", _num(d.get("build_validate_seconds")), ""),
    ]


def _retarget(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    every = (d.get("config") or {}).get("every", 1)
    rows = []
    for part, what in (("image", "image graphs -> 1x28x28/10 and 3x32x32/10"), ("text", "text/sequence graphs -> chars")):
        p = d.get(part) or {}
        sample = "all graphs" if every == 1 else f"every {every}th graph"
        rows.append((f"{what} ({sample}; fwd + bwd run)", f"{_pct(p.get('share'))} of {p.get('graphs')}",
                     ">= 90%"))
    return rows


def _ir_learning(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = d.get("summary", {})
    sh = d.get("shipped", {})
    return [
        ("hand-written nets equal to the source at batch 1 and 8, and in train mode",
         f"{s.get('hand_written_ok')} / {s.get('hand_written')}", "all"),
        ("shipped zoo graphs that run at batch 1 and 4",
         f"{_pct(s.get('zoo_rate_batch_1_and_4'))} of {(sh.get('zoo') or {}).get('graphs')}", ">= 95%"),
        ("... baseline: the same graphs with the batch frozen at its example size",
         _pct(s.get("zoo_baseline_frozen_rate")), ""),
        ("shipped random-space graphs that run at batch 1 and 4",
         f"{_pct(s.get('random_rate_batch_1_and_4'))} of {(sh.get('random') or {}).get('graphs')}", ""),
    ]


def _train_cpu(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    sp, dg = d.get("mnist5k_speed", {}), d.get("digits", {})
    g, m = sp.get("graph", {}), sp.get("module", {})
    return [
        ("mnist5k small CNN, batch 64, 1 thread: steps/s as graph / as module",
         f"{_num(g.get('steps_per_s'))} / {_num(m.get('steps_per_s'))}", ""),
        (f"digits CNN: val accuracy after {dg.get('steps')} steps ({_num(dg.get('seconds'))} s)",
         _pct(dg.get("val_accuracy")), "> 90%"),
    ]


def _train_baselines(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    setup = d.get("setup", {})
    rows = []
    for task, s in (d.get("summary") or {}).items():
        lm = s.get("metric") == "bits_per_char"
        fmt = (lambda v: _num(v)) if lm else _pct  # noqa: E731
        steps = [e for e in setup.get("eval_steps", []) if f"step_{e}" in s]
        what = "val bits/char" if lm else "val accuracy"
        rows.append((f"{task}: {s.get('completed')} held-out graphs, mean {what} at steps "
                     f"{' / '.join(map(str, steps))}",
                     " / ".join(fmt(s[f"step_{e}"]["mean"]) for e in steps), ""))
        if steps:
            last = s[f"step_{steps[-1]}"]
            rows.append((f"{task}: best / median {what} at step {steps[-1]}",
                         f"{fmt(last['best'])} / {fmt(last['median'])}", ""))
        rows.append((f"{task}: seconds per step (median, batch {setup.get('batch_size')}, 1 thread)",
                     _num((s.get("seconds_per_step") or {}).get("median")), ""))
        taus = s.get("kendall_tau_vs_final") or {}
        rows.append((f"{task}: Kendall tau vs the final figure (proxies; early validation)",
                     ", ".join(f"{k} {_num(v)}" for k, v in taus.items()), "GHN must beat"))
    return rows


def _ghn_eval(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for task, s in (d.get("summary") or {}).items():
        lm = s.get("metric") == "bits_per_char"
        fmt = (lambda v: _num(v)) if lm else _pct  # noqa: E731
        m = s.get("mean", {})
        what = "val bits/char" if lm else "val accuracy"
        rows.append((f"{task}: {s.get('graphs')} held-out graphs, mean {what}: GHN-predicted / default init / "
                     "10 / 100 / 1000 AdamW steps",
                     " / ".join(fmt(m.get(k)) for k in ("ghn", "default_init", "steps_10", "steps_100",
                                                        "steps_1000")),
                     "" if lm else "GHN >= 100 steps"))
        if lm:
            rows.append((f"{task}: share of the default-init -> 100-step gap the GHN closes (of the means; "
                         "median over graphs)",
                         f"{_pct(s.get('gap_closed_vs_100_steps'))}; {_pct(s.get('gap_closed_per_graph_median'))}",
                         ">= 50%"))
        rows.append((f"{task}: GHN prediction + closed-form output layer (not a pure prediction)",
                     fmt(m.get("ghn_readout")), ""))
        ft = s.get("finetune", {})
        steps = ft.get("steps")
        rows.append((f"{task}: fine-tuned from the GHN, mean {what} at 10 / 100 / {steps} steps",
                     " / ".join(fmt(m.get(f"ghn_finetune_{e}")) for e in (10, 100, steps)), ""))
        rows.append((f"{task}: graphs reaching the 1000-step figure within {steps} steps from the GHN; median "
                     "steps to reach it, GHN / default",
                     f"{ft.get('reached_1000_step_metric')} of {s.get('graphs')}; "
                     f"{ft.get('median_steps_to_reach_ghn')} / {ft.get('median_steps_to_reach_default')}",
                     "<= 1/5 of the steps" if not lm else ""))
        taus = s.get("kendall_tau_vs_1000_steps") or {}
        rows.append((f"{task}: Kendall tau vs the 1000-step figure",
                     ", ".join(f"{k} {_num(v)}" for k, v in taus.items()), ">= 0.6, above every proxy"))
        taus = s.get("kendall_tau_vs_100_steps") or {}
        if taus:  # the steps the quality estimate's labels are trained for
            rows.append((f"{task}: Kendall tau vs the 100-step figure (the quality estimate's labels)",
                         ", ".join(f"{k} {_num(v)}" for k, v in taus.items()), ""))
    speed = d.get("speed_cpu") or []
    if speed:
        rows.append(("seconds per prediction on CPU (parameters / whole module), by #params",
                     "; ".join(f"{r['params']:,}: {_num(r['params_s'])} / {_num(r['predict_s'])}"
                               for r in sorted(speed, key=lambda r: r["params"])), "<= 1 s up to 10M"))
    gpu = d.get("speed_gpu") or {}
    if gpu.get("rows"):
        when = ", the GHN shipped before this one" if gpu.get("earlier_checkpoint") else ""
        rows.append((f"the same on a GPU ({gpu.get('device')}, torch {gpu.get('torch')}{when})",
                     "; ".join(f"{r['params']:,}: {_num(r['params_s'])} / {_num(r['predict_s'])}"
                               for r in sorted(gpu["rows"], key=lambda r: r["params"])), ""))
    cov = d.get("coverage") or {}
    if cov:
        rows.append(("shipped dataset: parameters predicted (by count) of those the graphs compute with / of all "
                     "the modules hold; layer-op roles predicted",
                     f"{_pct(cov.get('predicted_share_of_used'))} / {_pct(cov.get('predicted_share'))}; "
                     f"{_pct(cov.get('layer_roles_predicted', 0) / max(cov.get('layer_roles', 0), 1))}",
                     ">= 99%; 100%"))
    g = d.get("ghn") or {}
    if g:
        rows.append(("GHN: parameters / training steps / training time (hardware)",
                     f"{g.get('params'):,} / {g.get('steps')} / {_num((g.get('train_seconds') or 0) / 60)} min "
                     f"({(g.get('hardware') or {}).get('device')})", "<= 3 h on 2 CPU cores"))
    return rows


def _ghn_calibrate(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    pools, cv, held = d.get("pools") or {}, d.get("cross_validated_kendall_tau") or {}, d.get("held_out") or {}
    before, after = held.get("kendall_tau_before") or {}, held.get("kendall_tau_after") or {}
    rows = [
        (f"{d.get('task')} quality estimate: labelled graphs (100 AdamW steps each), by pool",
         ", ".join(f"{k} {v.get('labelled')}" for k, v in pools.items()) + f"; {d.get('labels')} in all", ""),
        ("Kendall tau of out-of-fold estimates on the labels: 5-fold / leave-one-family-out",
         f"{_num(cv.get('kfold5'))} / {_num(cv.get('leave_family_out'))}", ""),
    ]
    raw = cv.get("metric_target")
    if raw:
        rows[-1] = ("Kendall tau of out-of-fold estimates on the labels: 5-fold / leave-one-family-out, ridge on the "
                    "labels' normal scores (the estimate) and, same run, on the raw metric",
                    f"{_num(cv.get('kfold5'))} / {_num(cv.get('leave_family_out'))} (raw metric "
                    f"{_num(raw.get('kfold5'))} / {_num(raw.get('leave_family_out'))})", "")
    for key, what in (("without_predicted_metric", "without"), ("with_predicted_metric", "with")):
        if cv.get(key):  # the same labels, the estimator's features with or without the predicted metric
            rows.append((f"the same, {what} the metric of the GHN's predicted parameters as a feature",
                         f"{_num(cv[key].get('kfold5'))} / {_num(cv[key].get('leave_family_out'))}", ""))
    if cv.get("trees"):  # the tree estimator on the same labels, and which of the two was fitted
        rows.append(("the same, extra-trees on structure, costs and the predicted parameters' metric (fitted: "
                     f"{cv.get('chosen')})",
                     f"{_num(cv['trees'].get('kfold5'))} / {_num(cv['trees'].get('leave_family_out'))}", ""))
    if any("predicted_metric_mean" in v for v in pools.values()):  # what 100 steps reach, and what prediction does
        rows.append(("mean metric after 100 AdamW steps / of the GHN's predicted parameters, by pool",
                     ", ".join(f"{k} {_num(v.get('mean_metric'))} / {_num(v.get('predicted_metric_mean'))}"
                               for k, v in pools.items()), ""))
    if held.get("graphs"):  # only tasks with held-out graphs (bench/train_baselines.py's selection)
        rows.append((f"Kendall tau on the {held.get('graphs')} held-out graphs vs 1000 / 100 steps, previous fit -> "
                     "this one", f"{_num(before.get('vs_1000_steps'))} / {_num(before.get('vs_100_steps'))} -> "
                     f"{_num(after.get('vs_1000_steps'))} / {_num(after.get('vs_100_steps'))}",
                     ">= 0.6 vs 1000 steps" if d.get("task") == "mnist5k" else ""))
    long = d.get("long_horizon")
    if long:  # the stage fitted on graphs trained longer
        cvl = long.get("cross_validated_kendall_tau") or {}
        rows.append((f"long-horizon stage: {long.get('graphs')} of those graphs trained {long.get('steps')} steps; "
                     "Kendall tau vs their long figure of their 100-step figure / of the estimate (out of fold)",
                     f"{_num(long.get('kendall_tau_brief_label_vs_long'))} / "
                     f"{_num(long.get('kendall_tau_estimate_vs_long'))}", ""))
        rows.append(("the stage's inputs beside the estimate: 20 x 5-fold Kendall tau vs the long figure, by "
                     f"inputs (fitted: {long.get('chosen')})", ", ".join(f"{k} {_num(v)}" for k, v in cvl.items()),
                     ""))
        la = after.get("long") or {}
        if la:
            rows.append((f"Kendall tau of the long-horizon estimate on the {held.get('graphs')} held-out graphs vs "
                         "1000 / 100 steps", f"{_num(la.get('vs_1000_steps'))} / {_num(la.get('vs_100_steps'))}",
                         ">= 0.6 vs 1000 steps"))
    return rows


def _ghn_decoders(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s, st = d.get("summary", {}), d.get("setup", {})
    return [(f"one GHN fitted per architecture ({st.get('graphs')} {st.get('task')} graphs, {st.get('steps')} steps): "
             "train loss over the last 30 steps, tiled / CP decoder / the net trained directly (chance "
             f"{_num(s.get('chance'))})",
             " / ".join(_num(s.get(f"last30_train_loss_{k}")) for k in ("tiled", "cp", "direct")), "")]


def _tokenizer(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    t, u, ll = d.get("tokens", {}), d.get("tokens_uncompressed", {}), d.get("llama_7b", {})
    rows = [("graphs (of the shipped dataset) / exact round trips (same WL hash)",
             f"{d.get('graphs')} / {d.get('exact_round_trips')}", "all"),
            ("tokens per graph, repeats compressed: median / p95 / max",
             f"{_num(t.get('median'))} / {_num(t.get('p95'))} / {t.get('max')}", ""),
            ("... share of graphs within 2,048 tokens", _pct(t.get("share_le_2048")), ">= 95%"),
            ("tokens per graph, uncompressed: median / p95", f"{_num(u.get('median'))} / {_num(u.get('p95'))}", ""),
            ("median encode / decode (ms)", f"{_num(d.get('encode_ms_median'))} / {_num(d.get('decode_ms_median'))}",
             "")]
    if ll:
        rows.append(("Llama-2-7B config (full size): tokens compressed / uncompressed, exact",
                     f"{ll.get('tokens')} / {ll.get('tokens_uncompressed')}, {ll.get('exact')}", "<= 2048"))
    return rows


def _generator(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    ck = d.get("checkpoints", {})
    for name, c in ck.items():
        rec = c.get("record") or {}
        rows.append((f"checkpoint {name}: structure bias / params / steps / train s",
                     f"{c.get('structure_bias')} / {c.get('params')} / {rec.get('steps')} / {rec.get('seconds')}", ""))
        for ft in rec.get("finetune") or []:
            data = ft.get("data") or {}
            kept = sum((data.get("kept_per_pool") or {}).values())
            rows.append((f"checkpoint {name} then fine-tuned: steps / lr / graphs kept (100-step mnist5k acc >= "
                         f"{data.get('min_acc')}) x {data.get('repeat')} + train-split replay / s",
                         f"{ft.get('steps')} / {ft.get('lr')} / {kept} + {data.get('replay_train_split')} / "
                         f"{ft.get('seconds')}", ""))
        for bl in rec.get("blend") or []:
            rows.append((f"checkpoint {name} then blended: share of the fine-tune given back (weights (1 - w) * "
                         "tuned + w * start) / relative weight change", f"{bl.get('weight')} / "
                         f"{bl.get('relative_change')}", ""))
    ab = d.get("structure_bias_ablation")
    if ab and ab.get("steps"):
        w, wo = ab.get("with_bias", {}), ab.get("without_bias", {})
        rows.append((f"structure bias ablation at steps {ab['steps']}: held-out loss with / without (s per step)",
                     f"{w.get('val_loss')} / {wo.get('val_loss')} ({w.get('seconds_per_step')} / "
                     f"{wo.get('seconds_per_step')})", f"kept: {ab.get('kept')}"))
    for split, per in d.get("masked_op", {}).items():
        m = per.get("main", {})
        txt = f"{_pct(m.get('top1'))} vs {_pct(m.get('baseline_top1'))}"
        if "ablation" in per:
            txt += f" (ablation {_pct(per['ablation'].get('top1'))})"
        rows.append((f"masked-op top-1 on {split} ({m.get('nodes')} nodes; the op's arity known) vs "
                     "most-frequent-op-in-context (masked neighbours unseen)", txt,
                     ">= 90% (test), > baseline (ood)"))
    for name, g in d.get("generation", {}).items():
        closed = f"; {g['closed_earlier']} valid after closing earlier" if "closed_earlier" in g else ""
        rows.append((f"{name}: valid / unique / novel ({g.get('sampled')} samples over the prompt set{closed})",
                     f"{_pct(g.get('validity'))} / {_pct(g.get('uniqueness'))} / {_pct(g.get('novelty'))}",
                     ">= 99.5% / 95% / 80%"))
        st = g.get("stats_vs_test", {})
        ref = st.get("reference_train_vs_test", {})
        rows.append((f"{name}: op-histogram JS / log-nodes KS vs test (train vs test)",
                     f"{_num(st.get('op_hist_js'))} / {_num(st.get('log_nodes_ks'))} ({_num(ref.get('op_hist_js'))} / "
                     f"{_num(ref.get('log_nodes_ks'))})", ""))
    for cut, c in d.get("completion", {}).items():
        proj = f"; {c['projected_to_output']} ended by a projection" if "projected_to_output" in c else ""
        rows.append((f"completion of zoo models cut at {cut}: valid / right output / op-histogram cosine "
                     f"({c.get('tried')} graphs{proj})",
                     f"{_pct(c.get('valid'))} / {_pct(c.get('right_output'))} / {_num(c.get('op_hist_cosine'))}",
                     ">= 95% valid with the right output"))
    a = d.get("adherence")
    if a:
        rows.append(("prompt adherence: constraints met / prompts with a result meeting all",
                     f"{_pct(a.get('constraints_met'))} / {a.get('prompts_with_a_fully_met_result')} of "
                     f"{a.get('prompts')}", ">= 90% / all"))
    sp = d.get("speed")
    if sp:
        procs = f"{sp['workers']} processes" if sp.get("workers", 1) > 1 else f"{sp.get('threads')} threads"
        w = sp.get("with_fit_checks", {})
        passed = f" ({w['valid_le_200_nodes']} of {w['le_200_nodes']} pass the check)" if w.get("le_200_nodes") else ""
        rows.append((f"valid architectures (<= 200 nodes) per second, CPU, {procs}: sampling / "
                     "with compile+forward+backward check",
                     f"{_num(sp.get('valid_per_second_sampling'))} / {_num(sp.get('valid_per_second_with_check'))}"
                     f"{passed}", ">= 20"))
        off = sp.get("without_fit_checks")
        if off:
            rows.append(("the same without the sampler's shape checks (same run): sampling / with check",
                         f"{_num(off.get('valid_per_second_sampling'))} / "
                         f"{_num(off.get('valid_per_second_with_check'))}", "(comparison)"))
        one = sp.get("one_process")
        if one:
            rows.append((f"the same in one process of {sp.get('threads')} threads (same run): sampling / with check",
                         f"{_num(one.get('valid_per_second_sampling'))} / "
                         f"{_num(one.get('valid_per_second_with_check'))}", "(comparison)"))
        m = sp.get("machine")
        if m:
            rows.append(("this CPU, one thread (same run): (128, 192) x (192, 768) product GFLOP/s / one-token "
                         "attention over a 39 MB key cache GB/s", f"{_num(m.get('linear_gflops'))} / "
                         f"{_num(m.get('attention_cache_gbps'))}", "(what the figures above move with)"))
    ds = d.get("decode_step")
    if ds:
        kvs = sorted((int(k.rsplit("_", 1)[1]) for k in ds if k.startswith("kv_heads_")), reverse=True)
        rows.append((f"one cached decoding step, ms per sequence ({ds.get('rows')} sequences over "
                     f"{ds.get('cached_positions')} positions, one thread, shipped sizes, random weights) with "
                     f"{' / '.join(map(str, kvs))} key/value heads (speed-up)",
                     " / ".join(f"{_num(ds[f'kv_heads_{k}']['ms_per_sequence_step'])}" for k in kvs) +
                     " (" + " / ".join(f"{_num(ds[f'kv_heads_{k}']['speedup'])}x" for k in kvs) + ")",
                     "(a model trained with fewer; the shipped one has 6)"))
    tr = d.get("trainability")
    if tr and "generated_auto" in tr:
        rnd = tr["random_space"]
        for rank, label in (("auto", "ranked by the GHN's quality estimate, the default"),
                            ("likelihood", "ranked by likelihood")):
            gen = tr[f"generated_{rank}"]
            rows.append((f"100-step mnist5k val accuracy, {gen.get('graphs')} generated ({label}) / "
                         f"{rnd.get('graphs')} random-space classifiers (ratio)",
                         f"{_pct(gen.get('mean_val_acc'))} / {_pct(rnd.get('mean_val_acc'))} "
                         f"({_num(tr.get(f'ratio_{rank}'))})", ">= 1.0" if rank == "auto" else "(comparison)"))
    return rows


def _agent(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for task, t in d.get("tasks", {}).items():
        st = t.get("strategies", {})
        fmt = _pct if t.get("higher_is_better", True) else _num
        finals = " / ".join(f"{n} {fmt(v.get('final_mean'))}" for n, v in st.items())
        seeds = (f"seeds {t['seed_start']}-{t['seed_start'] + t['seeds'] - 1}" if t.get("seed_start")
                 else f"{t.get('seeds')} seeds")
        rows.append((f"{task}: best {t.get('metric')} after {t.get('evals')} evals, mean of {seeds} "
                     f"({t.get('train', {}).get('steps')} steps each)", finals, "loop best"))
        for name in ("loop", "loop-noghn"):
            v = st.get(name, {})
            target = "<= 33.3%" if name == "loop" else "worse than loop"
            if v.get("fraction_of_evolution_budget") is not None:
                share = _pct(v["fraction_of_evolution_budget"])
                rows.append((f"{task}: {name} evals to reach evolution's final best, per seed (share of the budget)",
                             f"{_num(v.get('evals_to_evolution_best_mean'))} ({share})", target))
            if "mean_curve_fraction_of_evolution_budget" in v:
                at, frac = v["mean_curve_evals_to_evolution_mean_best"], v["mean_curve_fraction_of_evolution_budget"]
                rows.append((f"{task}: {name}'s mean curve, evals to reach evolution's mean final best (share)",
                             "never" if at is None else f"{at} ({_pct(frac)})", target))
        pooled = t.get("pooled", {})
        lp = pooled.get("strategies", {}).get("loop", {})
        if lp.get("fraction_of_evolution_budget") is not None:
            at = lp.get("mean_curve_evals_to_evolution_mean_best")
            rows.append((f"{task}: seeds {' and '.join(pooled['seeds'])} pooled: final best "
                         + " / ".join(f"{n} {fmt(v.get('final_mean'))}" for n, v in pooled["strategies"].items())
                         + "; loop evals to reach evolution's final best, per seed (share); on the mean curves",
                         f"{_num(lp['evals_to_evolution_best_mean'])} ({_pct(lp['fraction_of_evolution_budget'])}); "
                         f"{'never' if at is None else at} ({_pct(lp.get('mean_curve_fraction_of_evolution_budget'))})",
                         "<= 33.3%"))
        lp = st.get("loop", {})
        if lp.get("proposal_value_by_third"):
            rows.append((f"{task}: loop's trained proposals, mean value by thirds of the run",
                         " / ".join(fmt(x) for x in lp["proposal_value_by_third"]), "rising"))
        rows.append((f"{task}: seconds per trained evaluation (all strategies, 2 workers)",
                     _num(t.get("seconds_per_eval")), ""))
    ts = d.get("mnist5k_timed_search")
    if ts:
        limit = f", at most {ts['max_activations']:,} activation elements" if ts.get("max_activations") else ""
        rows.append((f"mnist5k loop search of {ts.get('evals')} evaluations ({ts.get('train', {}).get('steps')} steps "
                     f"each, 2 workers{limit}): minutes, best val accuracy", f"{_num(ts.get('minutes'))}, "
                     f"{_pct(ts.get('best'))}", "<= 60 (200 evals)"))
    if d.get("mnist5k_200_evals_minutes_estimate") is not None and not ts:  # the measured run supersedes it
        rows.append(("mnist5k 200-evaluation search, minutes (estimated from the per-eval rate)",
                     _num(d["mnist5k_200_evals_minutes_estimate"]), "<= 60"))
    tab = d.get("tabular") or {}
    if tab.get("strategies"):
        opt = tab.get("optimum", {})
        rows.append((f"NAS-Bench-Graph {tab.get('dataset')}: val / test-at-best-val after {tab.get('evals')} queries, "
                     f"mean of {tab.get('seeds')} seeds (optimum {_pct(opt.get('best_val'))} / "
                     f"{_pct(opt.get('test_at_best_val'))})",
                     " ; ".join(f"{n} {_pct(v.get('val_mean'))} / {_pct(v.get('test_at_best_val_mean'))}"
                                for n, v in tab["strategies"].items()), ""))
    return rows


def _signal_prompt(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for way, w in d.get("ways", {}).items():
        ask = d.get("requests", {}).get(way)
        what = f"asked for \"{ask['text']}\", {tuple(ask['input_shape'])}" if ask else "the random space's draws"
        rows.append((f"{d.get('task')}: {w.get('graphs')} candidates {what}: validation accuracy after "
                     f"{d.get('train', {}).get('steps')} steps, mean / median / best (share above 50%)",
                     f"{_pct(w.get('mean'))} / {_pct(w.get('median'))} / {_pct(w.get('best'))} "
                     f"({_pct(w.get('share_above_half'))})", "image above signal" if way == "image" else ""))
    return rows


def _ghn_features(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    names = {"default": "PyTorch default init", "ghn": "GHN-predicted parameters",
             "flat": "predicted, singular values flattened"}
    rows = []
    for way, a in d.get("accuracy", {}).items():
        name = names.get(way) or f"predicted + {way.partition('_')[2]} x default init (hidden weights)"
        rows.append((f"{d.get('task')} ({d.get('graphs')} held-out graphs): {name}, val accuracy direct / with the "
                     f"output layer refitted (readout)", f"{_pct(a.get('direct'))} / {_pct(a.get('readout'))}", ""))
    r = d.get("effective_rank", {})
    if r:
        rows.append(("hidden weights' effective rank over their smaller dimension, median: default init / GHN",
                     f"{r['default']['median']:.2f} / {r['ghn']['median']:.2f}", ""))
    return rows


def _ghn_recipes(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for task, h in d.get("held_out", {}).items():
        names = ["checkpoint", *d.get("runs", {})]
        for name in names:
            if name not in h:
                continue
            run = d.get("runs", {}).get(name)
            what = "shipped checkpoint" if run is None else (
                f"recipe {name} ({run.get('steps')} steps on {'+'.join(d.get('tasks', []))})")
            loss = "" if run is None else f"; training loss, last fifth {_num(run['loss_by_fifth'][task][-1])}"
            rows.append((f"{task} ({h.get('graphs')} held-out graphs): {what}, accuracy direct / with the output layer "
                         f"refitted{loss}", f"{_pct(h[name])} / {_pct(h.get(f'{name}_readout'))}", ""))
            fit = d.get("training_fit", {}).get(task, {}).get(name)
            if fit:  # the same figure on graphs it trained on: what it fits, against what it generalises to
                n = d.get("training_fit_graphs", 40)
                rows.append((f"{task}: recipe {name}, accuracy on {n} of its own training graphs ({' / '.join(fit)})",
                             " / ".join(_pct(v) for v in fit.values()), ""))
    return rows


def _ghn_finetune(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s, steps, lr = d.get("summary", {}), d.get("setup", {}).get("steps"), d.get("setup", {}).get("lr", 1e-3)
    names = {"default": "PyTorch default init", "ghn": "GHN prediction (GHN.predict)",
             "ghn_default_head": "GHN prediction, output layer at default init",
             "ghn_plus_default": "GHN prediction + default init (weights)",
             "noise_plus_default": "control: default init + noise of the prediction's norm"}
    rows = []
    for name, curve in s.get("mean", {}).items():
        at = " / ".join(_pct(v) for v in curve.values())
        n = s.get("graphs", 0) - s.get("missing", {}).get(name, 0)  # a start some graphs cannot take
        rows.append((f"{d.get('task')} ({n} held-out graphs), trained at lr {lr:g} from {names.get(name, name)}: "
                     f"val accuracy at steps {' / '.join(curve)}; graphs > 5 points below default init; graphs "
                     f"reaching their 1000-step figure", f"{at}; {s['below_default'].get(name)}; "
                     f"{s['reached_1000_step_figure'].get(name)}", ""))
    for key, c in s.get("paired_at_end", {}).items():
        pair = key.replace("_vs_", " vs ")
        rows.append((f"after {steps} steps at lr {lr:g}, {pair}: wins / losses, mean difference, sign-test p",
                     f"{c['wins']} / {c['losses']}, {100 * c['mean_difference']:+.1f} points, "
                     f"p {_num(c['sign_test_p'])}", ""))
    return rows


# by results file stem; a stem without its own entry takes the entry of its longest prefix that has one, cut at
# an underscore (ghn_calibrate_chars -> ghn_calibrate), else _generic
FORMATTERS: dict[str, Callable[[dict[str, Any]], list[tuple[str, str, str]]]] = {
    "tokenizer_eval": _tokenizer,
    "generator_eval": _generator,
    "agent_eval": _agent,
    "signal_prompt": _signal_prompt,
    "ghn_eval": _ghn_eval,
    "ghn_calibrate": _ghn_calibrate,
    "ghn_decoders": _ghn_decoders,
    "ghn_features": _ghn_features,
    "ghn_finetune": _ghn_finetune,
    "ghn_recipes": _ghn_recipes,
    "ir_builder": _builder,
    "ir_retarget": _retarget,
    "ir_learning": _ir_learning,
    "train_cpu": _train_cpu,
    "train_baselines": _train_baselines,
    "code2graph_zoo": _zoo,
    "code2graph_meta7b": _meta7b,
    "dataset_build": _dataset,
    "features_roundtrip": _features,
}
# results files written by a script of another name
SCRIPTS = {"ghn_eval_space_2000_10000": "bench/ghn_eval.py --ghn out/ghn_recipes/space_2000_10000 --seq 0 "
                                        "--skip-coverage --workers 1 --out "
                                        "bench/results/ghn_eval_space_2000_10000.json (the mnist5k GHN of "
                                        "bench/ghn_recipes.py's space_2000_10000 recipe; timed beside two other jobs, "
                                        "so its speed rows are not a speed measurement)",
           "ghn_eval_dataset_all_10000": "bench/ghn_eval.py --ghn out/ghn_recipes/dataset_all_10000 --seq 0 "
                                         "--skip-coverage --workers 2 --out "
                                         "bench/results/ghn_eval_dataset_all_10000.json (the mnist5k GHN of "
                                         "bench/ghn_recipes.py's dataset_all_10000 recipe; not shipped)",
           "ghn_eval_four_task_20000": "bench/ghn_eval.py --ghn RUN --skip-coverage --workers 1 --out "
                                       "bench/results/ghn_eval_four_task_20000.json, then --quality-only, --speed-only "
                                       "and --coverage-only once its estimates were refitted (speed on an idle "
                                       "machine); RUN from mad ghn train --tasks mnist5k,digits,mnist1d,chars "
                                       "--space-graphs 3000 --steps 20000 (a four-task GHN with 3,000 random-space "
                                       "graphs per task, not shipped)",
           "ghn_calibrate_chars": "bench/ghn_calibrate.py --task chars",
           "ghn_calibrate_mnist1d": "bench/ghn_calibrate.py --task mnist1d",
           "ghn_calibrate_digits": "bench/ghn_calibrate.py --task digits",
           "ghn_finetune_lr_3e-4": "bench/ghn_finetune.py --lr 3e-4 --starts default,ghn --out "
                                   "bench/results/ghn_finetune_lr_3e-4.json",
           "ghn_finetune_lr_3e-3": "bench/ghn_finetune.py --lr 3e-3 --starts default,ghn --out "
                                   "bench/results/ghn_finetune_lr_3e-3.json",
           "ghn_calibrate_mnist1d_new_pools": "bench/ghn_calibrate.py --task mnist1d --out "
                                              "bench/results/ghn_calibrate_mnist1d_new_pools.json (the shipped GHN "
                                              "on mnist1d's pools as drawn now that image networks take 1-D signals, "
                                              "600 graphs; not written: the shipped estimator stays the fit on the "
                                              "550 of ghn_calibrate_mnist1d)",
           "ghn_calibrate_four_task_20000_mnist5k": "bench/ghn_calibrate.py --ghn RUN --long-steps 1000 --long-graphs "
                                                    "140 --write --export, RUN the four-task GHN of "
                                                    "ghn_eval_four_task_20000 (not shipped; beside a chars "
                                                    "labelling job)",
           "ghn_calibrate_four_task_20000_digits": "bench/ghn_calibrate.py --task digits --ghn RUN --write --export "
                                                   "(the four-task GHN, not shipped)",
           "ghn_calibrate_four_task_20000_mnist1d": "bench/ghn_calibrate.py --task mnist1d --ghn RUN --write "
                                                    "--export (the four-task GHN, not shipped)",
           "ghn_calibrate_four_task_20000_chars": "bench/ghn_calibrate.py --task chars --ghn RUN --long-steps 1000 "
                                                  "--long-graphs 150 --write --export (the four-task GHN, not shipped)",
           "agent_eval_digits": "bench/agent_eval.py --tasks digits --seeds 12 --evals 8 --steps 40 --max-params 20000 "
                                "--no-tabular --out bench/results/agent_eval_digits.json (the settings of "
                                "examples/search.py)",
           "agent_eval": "bench/agent_eval.py --seeds 6 --timed-search 200 (the timed search with --max-activations "
                         "10000000)",
           "agent_eval_one_stage": "bench/agent_eval.py --seeds 6 --timed-search 200 --loop-options "
                                   "'{\"two_stage\": false}' --runs out/agent_one_stage "
                                   "--out bench/results/agent_eval_one_stage.json",
           "agent_eval_mnist1d_12": "bench/agent_eval.py --tasks mnist1d --strategies loop,random,evolution "
                                    "--seeds 12 --no-tabular --runs out/agent_m1_12 "
                                    "--out bench/results/agent_eval_mnist1d_12.json",
           "agent_eval_four_task_ghn": "bench/agent_eval.py --tasks TASK --strategies loop,evolution --seeds 6 "
                                       "--no-tabular, TASK each of mnist5k, mnist1d and chars (the loop with the "
                                       "four-task GHN, not shipped; the seeds and settings of agent_eval, whose "
                                       "random, evolution and GHN-free figures do not depend on the GHN)",
           "agent_eval_mnist1d_12_before": "the same with the GHN checkpoint of commit e1534b3 (before head_norm; "
                                           "the mnist1d quality estimate without the predicted parameters' "
                                           "metric)",
           "agent_eval_mnist1d_12_zoo_pool": "the same with the GHN checkpoint of commit 566fa26 (head_norm; its "
                                             "mnist1d pool held 20 zoo graphs and none of the random space's "
                                             "CNNs)",
           "agent_eval_mnist1d_seeds100": "bench/agent_eval.py --tasks mnist1d --strategies random,evolution,loop "
                                          "--seeds 12 --seed-start 100 --no-tabular "
                                          "--pool-with bench/results/agent_eval_mnist1d_12.json "
                                          "--out bench/results/agent_eval_mnist1d_seeds100.json (seeds for choosing "
                                          "loop settings on)",
           "agent_eval_pool4": "bench/agent_eval.py --seeds 6 --no-tabular --loop-options "
                               "'{\"pool\": 4, \"two_stage\": false}' --runs out/agent_pool4 "
                               "--out bench/results/agent_eval_pool4.json",
           "code2graph_zoo_onnx_sample": "bench/code2graph_zoo.py --out bench/results/code2graph_zoo_onnx_sample.json"}


def _generic(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = d.get("summary", d)
    return [(k, _num(v), "") for k, v in s.items() if isinstance(v, (int, float, str))][:12]


def _formatter(stem: str) -> Callable[[dict[str, Any]], list[tuple[str, str, str]]]:
    """The FORMATTERS entry of ``stem`` or of its longest underscore-cut prefix that has one, else _generic."""
    parts = stem.split("_")
    for n in range(len(parts), 0, -1):
        if "_".join(parts[:n]) in FORMATTERS:
            return FORMATTERS["_".join(parts[:n])]
    return _generic


def table() -> str:
    lines = []
    for f in sorted(RESULTS.glob("*.json")):
        d = json.loads(f.read_text())
        rows = _formatter(f.stem)(d)
        if not rows:
            continue
        script = SCRIPTS.get(f.stem, f"bench/{f.stem}.py")
        lines += [f"**{f.stem}** (`{script}`)", "", "| figure | value | target |", "| --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        lines.append("")
    return "\n".join(lines).strip() or "(no results yet: run the benchmarks in bench/)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--print", action="store_true")
    args = ap.parse_args()
    text = table()
    if args.print:
        print(text)
        return
    readme = ROOT / "README.md"
    body = readme.read_text()
    if START not in body or END not in body:
        raise SystemExit(f"README.md lacks the {START} ... {END} markers")
    head, rest = body.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
