"""Printing, comparing (``--compare``: changes beyond the noise band) and plotting ``toonsync bench`` reports."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TextIO

import numpy as np

from toonsync.runtime.errors import ToonsyncError

from .measure import _r, _secs
from .sweep import print_thread_sweep

log = logging.getLogger(__name__)
NOISE = 0.10  # --compare: changes within ±10 % of p50 are reported as unchanged
# toonsync-bench/1 case names -> /2 names (so --compare works against older JSON files)
V1_ALIASES = {
    "logmel_per_frame": "frontend.logmel.40ms",
    "draw_per_frame": "renderer.draw.256",
    "audio2motion_per_frame_fp32": "model.audio2motion.cpu.fp32.b1",
    "audio2motion_per_frame_int8": "model.audio2motion.cpu.int8.b1",
    "audio2motion_per_frame_fp16": "model.audio2motion.cpu.fp16.b1",
    "audio2motion_per_frame_torch_eager": "model.audio2motion.torch-eager.fp32.b1",
}


# -- output --------------------------------------------------------------------------------------------
def _f(x, fmt: str, width: int) -> str:
    return f"{'-':>{width}s}" if x is None else f"{x:{width}{fmt}}"


def print_report(rep: dict, file: TextIO | None = None) -> None:
    """The product table: per case p50/p90/p99/max ms, frames/s, RTF, CPU %, peak RSS, speed-ups."""
    p = lambda *a: print(*a, file=file)
    m = rep["machine"]
    th = m.get("threads", {}).get("onnxruntime", {})
    p(
        f"machine: {m['cpu']}, {m['cores']} cores ({m.get('physical_cores')} physical), "
        f"{m.get('memory_mb') or 0:.0f} MB, GPU: {', '.join(m.get('gpus') or []) or 'none'}; "
        f"onnxruntime {m['versions']['onnxruntime']} {th}; load avg {m.get('loadavg_start')} -> {m.get('loadavg_end')}"
    )
    p(f"runtime default: {rep['runtime']['backend']} {rep['runtime']['precision']}")
    hdr = (
        f"{'case':42s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s} {'frames/s':>9s} {'RTF':>7s} "
        f"{'CPU%':>5s} {'RSS MB':>7s}  speed-up"
    )
    p(hdr)
    p("-" * len(hdr))
    stage = None
    for name, c in rep["cases"].items():
        if c.get("stage") != stage:
            stage = c.get("stage")
        sp = ", ".join(f"{v:.2f}x vs {k.replace('_', ' ')}" for k, v in (c.get("speedup") or {}).items())
        p(
            f"{name:42s} {_f(c['p50_ms'], '.3f', 8)} {_f(c['p90_ms'], '.3f', 8)} {_f(c['p99_ms'], '.3f', 8)} "
            f"{_f(c['max_ms'], '.3f', 8)} {_f(c.get('fps'), '.0f', 9)} {_f(c.get('rtf'), '.4f', 7)} "
            f"{_f(c.get('cpu_pct'), '.0f', 5)} {_f(c.get('peak_rss_mb'), '.0f', 7)}  {sp}"
        )
    for name, cs in rep["cases"].items():
        if name.startswith("startup.cold_first_frame."):
            p(f"{name} milestones (ms since process spawn, median): {cs['milestones_ms']}")
    for name, c in rep["cases"].items():
        if name.startswith("e2e.stream_realtime."):
            p(
                f"{name}: {c['frames']} frames at {c['fps']:.2f} fps, dropped {c['dropped']}, underruns "
                f"{c['underruns']}, A/V sync {c['av_sync_ms']:.0f} ms; "
                f"audio->frame p99 {c['audio_to_frame_p99_ms']} ms (= p99 {c['p99_ms']} + "
                f"{c['lookahead_ms']:g} look-ahead + {c['chunk_ms']:g} chunk); CPU {c['cpu_pct']:.0f} %"
            )
    la = rep.get("long_audio")
    if la:
        for pt in la["points"]:
            p(
                f"long audio {pt['audio_s']:g} s: render {pt['render_s']} s ({pt['ms_per_audio_s']} ms per audio s), "
                f"peak RSS {pt['peak_rss_mb']} MB"
            )
        p(f"long audio: RSS growth {la['rss_growth_mb']} MB, time per audio s x{la['time_per_audio_s_ratio']}")
    for name, u in (rep.get("uploads") or {}).items():
        if isinstance(u, dict):
            p(f"upload {name}: {u['bytes']} bytes -> HTTP {u['status']}, server peak RSS {u['peak_rss_mb']} MB")
    cvl = rep.get("cost_vs_length")
    if cvl:
        pts = "; ".join(
            f"{q['clip_s']:g} s: {q['ms']:.0f} ms ({q['ms_per_frame']:.2f} ms/frame)" for q in cvl["points"]
        )
        p(f"cost vs clip length: {pts}")
        if cvl["fit"]:
            f = cvl["fit"]
            p(
                f"  linear fit: {f['fixed_ms']:.0f} ms + {f['ms_per_audio_s']:.0f} ms per audio second (r2 {f['r2']}); "
                f"ms/frame max/min {f['ms_per_frame_spread']}"
            )
    if rep["ratios"]:
        p("ratios (p50, same run): " + ", ".join(f"{k} {v:.2f}x" for k, v in rep["ratios"].items()))
    for s in rep.get("skipped", []):
        p(f"skipped {s['case']}: {s['reason']}")
    p("headline (target):")
    for k, h in rep["headline"].items():
        v = h["value"]
        tgt = f"{h['op']} {h['target']:g}" if h["target"] is not None else "no target"
        status = "n/a" if h["met"] is None else ("MET" if h["met"] else "MISSED")
        gap = ""
        if v is not None and h["target"]:
            gap = f" ({v / h['target']:.2f} of target)"
        p(
            f"  {k:28s} {_f(v, '.3f' if h['unit'] != 'MB' else '.0f', 10)} {h['unit']:3s} {tgt:>10s}  {status}{gap}  "
            f"[{h['source']}] {h['note'] or ''}"
        )
    if rep.get("threads"):
        print_thread_sweep(rep["threads"])
    p(f"bench wall time {rep['wall_s']:.1f} s; bench process peak RSS {rep['peak_rss_mb']:.0f} MB")


# -- compare -------------------------------------------------------------------------------------------
def _norm_cases(rep: dict) -> dict:
    cases = rep.get("cases", {})
    if str(rep.get("schema", "")).endswith("/1"):
        cases = {V1_ALIASES.get(k, k): v for k, v in cases.items()}
        if "render_offline" in cases:
            r = cases.pop("render_offline")
            cases[f"e2e.render_offline.{_secs(r['clip_s'])}"] = {"p50_ms": r.get("median_ms"), "rtf": r.get("rtf")}
    return cases


def compare_reports(old: dict, new: dict, noise: float = NOISE) -> dict:
    """Speed-up (old p50 / new p50) per case present in both; beyond ±``noise``: faster / slower."""
    oc, nc = _norm_cases(old), _norm_cases(new)
    rows = []
    for name, c in nc.items():
        o = oc.get(name)
        if not o or not o.get("p50_ms") or not c.get("p50_ms"):
            continue
        sp = o["p50_ms"] / c["p50_ms"]
        verdict = "faster" if sp > 1 + noise else "slower" if sp < 1 / (1 + noise) else "same"
        rows.append(
            {
                "case": name,
                "old_p50_ms": o["p50_ms"],
                "new_p50_ms": c["p50_ms"],
                "old_p99_ms": o.get("p99_ms"),
                "new_p99_ms": c.get("p99_ms"),
                "speedup": _r(sp, 3),
                "verdict": verdict,
            }
        )
    heads = []
    for k, h in new.get("headline", {}).items():
        oh = old.get("headline", {}).get(k)
        if oh and oh.get("value") is not None and h.get("value") is not None:
            heads.append({"figure": k, "old": oh["value"], "new": h["value"]})
    return {
        "old_created": old.get("created"),
        "old_machine": (old.get("machine") or {}).get("cpu"),
        "noise": noise,
        "cases": rows,
        "only_old": sorted(set(oc) - set(nc)),
        "only_new": sorted(set(nc) - set(oc)),
        "headline": heads,
        "regressions": [r["case"] for r in rows if r["verdict"] == "slower"],
    }


def print_compare(cmp: dict, file: TextIO | None = None) -> None:
    """The ``--compare`` table: each case's p50 before and after, and whether it changed beyond the noise."""
    p = lambda *a: print(*a, file=file)
    p(
        f"\ncompare with the run of {cmp['old_created']} on {cmp['old_machine']} "
        f"(speed-up = old p50 / new p50; within ±{cmp['noise']:.0%} = same)"
    )
    p(f"{'case':42s} {'old p50':>9s} {'new p50':>9s} {'old p99':>9s} {'new p99':>9s} {'speed-up':>9s}  verdict")
    for r in cmp["cases"]:
        p(
            f"{r['case']:42s} {r['old_p50_ms']:9.3f} {r['new_p50_ms']:9.3f} {_f(r['old_p99_ms'], '.3f', 9)} "
            f"{_f(r['new_p99_ms'], '.3f', 9)} {r['speedup']:8.2f}x  {r['verdict']}"
        )
    for h in cmp["headline"]:
        p(f"  headline {h['figure']}: {h['old']} -> {h['new']}")
    if cmp["only_old"]:
        p(f"  only in the old run: {', '.join(cmp['only_old'])}")
    if cmp["only_new"]:
        p(f"  only in this run: {', '.join(cmp['only_new'])}")
    p(f"  regressions beyond noise: {', '.join(cmp['regressions']) or 'none'}")


# -- plot ----------------------------------------------------------------------------------------------
def plot_report(rep: dict, path: str | os.PathLike) -> Path:
    """PNG: per-frame latency distributions per backend/precision, per stage, live-stream latency, and the
    cost of an offline render vs clip length (linear in the audio, flat per frame). Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ToonsyncError("--plot needs matplotlib (pip install matplotlib, or toonsync[train])") from None
    from toonsync.runtime.atomic import atomic_path

    smp = rep.get("samples_ms", {})
    fig, ax = plt.subplots(2, 2, figsize=(14, 9))

    def box(a, names, title, log_y=True):
        names = [n for n in names if smp.get(n)]
        if not names:
            a.set_visible(False)
            return
        a.boxplot([smp[n] for n in names], whis=(1, 99), showfliers=True, flierprops={"markersize": 2})
        a.set_xticks(range(1, len(names) + 1))
        a.set_xticklabels([n.split(".", 1)[1] for n in names], rotation=30, ha="right", fontsize=8)
        if log_y:
            a.set_yscale("log")
        a.set_ylabel("ms per call")
        a.set_title(title, fontsize=10)
        a.grid(alpha=0.3, axis="y")

    model_b1 = [n for n in rep["cases"] if n.startswith("model.") and n.endswith(".b1")]
    box(ax[0, 0], model_b1, "model, one 40 ms frame (batch 1): per backend / precision (whiskers p1-p99)")
    b = rep["options"]["batch"]
    stages = [
        "frontend.logmel.40ms",
        *[n for n in rep["cases"] if n.startswith(("renderer.", "encode."))],
        *[n for n in rep["cases"] if n.endswith(f".b{b}") and n.startswith("model.audio2motion.")],
        *[n for n in rep["cases"] if n.startswith("e2e.stream_frame.")],
    ]
    box(ax[0, 1], stages, f"stages per frame, batch {b}, and the whole streamed frame")
    sr = [n for n in rep["cases"] if n.startswith("e2e.stream_realtime.")]
    if sr and smp.get(sr[0]):
        c = rep["cases"][sr[0]]
        x = np.sort(np.asarray(smp[sr[0]]))
        ax[1, 0].plot(x, np.arange(1, x.size + 1) / x.size)
        for q in ("p50_ms", "p99_ms"):
            ax[1, 0].axvline(c[q], ls="--", lw=0.8, color="gray")
            ax[1, 0].text(c[q], 0.05, q[:3], fontsize=8)
        ax[1, 0].set_xlabel(
            f"chunk arrival -> frame drawn, ms (+ look-ahead {c['lookahead_ms']:g} ms + chunk {c['chunk_ms']:g} ms)"
        )
        ax[1, 0].set_ylabel("fraction of frames")
        ax[1, 0].set_title(
            f"live stream in real time: {c['frames']} frames, {c['fps']:.2f} fps, dropped {c['dropped']}", fontsize=10
        )
        ax[1, 0].grid(alpha=0.3)
    else:
        ax[1, 0].set_visible(False)
    cvl = rep.get("cost_vs_length")
    if cvl and cvl["points"]:
        x = np.array([q["clip_s"] for q in cvl["points"]])
        y = np.array([q["ms"] for q in cvl["points"]])
        a = ax[1, 1]
        a.plot(x, y, "o", label="render to MP4 (median)")
        if cvl["fit"]:
            xx = np.linspace(0, x.max() * 1.05, 10)
            fit = cvl["fit"]
            a.plot(
                xx,
                cvl["fit"]["fixed_ms"] + cvl["fit"]["ms_per_audio_s"] * xx,
                "-",
                lw=1,
                label=f"fit {fit['fixed_ms']:.0f} + {fit['ms_per_audio_s']:.0f} ms/s (r2 {fit['r2']})",
            )
        a.set_xlabel("clip length, s")
        a.set_ylabel("total ms")
        a2 = a.twinx()
        a2.plot(x, [q["ms_per_frame"] for q in cvl["points"]], "s--", color="C1", label="ms per frame")
        a2.set_ylabel("ms per frame", color="C1")
        a2.set_ylim(0, max(q["ms_per_frame"] for q in cvl["points"]) * 2)
        a.legend(loc="upper left", fontsize=8)
        a2.legend(loc="lower right", fontsize=8)
        a.set_title("offline render cost vs clip length", fontsize=10)
        a.grid(alpha=0.3)
    else:
        ax[1, 1].set_visible(False)
    m = rep["machine"]
    fig.suptitle(
        f"toonsync bench {rep['created']}: {m['cpu']}, {m['cores']} cores, GPU: "
        f"{', '.join(m.get('gpus') or []) or 'none'}; runtime {rep['runtime']['backend']} "
        f"{rep['runtime']['precision']}",
        fontsize=10,
    )
    fig.tight_layout()
    with atomic_path(Path(path), suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)
