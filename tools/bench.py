"""``toonsync bench``: latency of every stage and end to end, across backends and precisions.

One registry of cases (``case_specs`` + ``build_case``, in ``toonsync.tools.cases``) is shared by ``toonsync bench``
(this module, no pytest needed) and the pytest-benchmark suite in ``benchmarks/``, so both measure the same code
under the same stable names:

======================================  ===========================================================
``frontend.logmel.40ms``                streaming log-mel of one 40 ms chunk (``MelStream``)
``model.<m>.<backend>.<prec>.b<N>``     one 40 ms step of ``N`` streams, state carried (``m`` =
                                        ``audio2motion`` or the fused ``audio2motion_pcm``)
``model.audio2motion.torch-eager.fp32.b<N>``  the same step of the training checkpoint in torch
                                        eager (a child process: torch never enters the runtime)
``renderer.draw.<size>``                one avatar frame drawn
``renderer.onnx.<size>``                the same frame by the ONNX warp renderer (render.onnx), 256 and 512
``encode.h264.<size>``                  one frame into the H.264 encoder (``Mp4Writer``)
``e2e.stream_frame.<size>``             streaming steady state: 40 ms of audio in, one drawn frame
                                        out (mel + model + motion + emotion + draw)
``e2e.render_offline.<S>s``             a full offline ``render`` of an ``S`` s clip to MP4
``e2e.stream_realtime.<C>ms``           ``runtime.stream`` fed in real time in ``C`` ms chunks:
                                        chunk arrival -> frame drawn latency
``startup.face_prepare``                photo -> avatar (dlib landmarks), predictor already loaded
``startup.model_load.<backend>.<prec>`` ``load_model`` (sha256 check + session creation)
``startup.cold_first_frame``            a fresh process: interpreter start -> first frame drawn
======================================  ===========================================================

Every case records p50/p90/p99/max ms, frames/s, real-time factor (compute / audio duration), the
process CPU % while it ran (all threads: thread pools that spin show up here) and the process's
peak RSS during the case (Linux lets a process reset its high-water mark). Ratios are against the
baselines measured in the same run (onnxruntime fp32 on the same backend, torch eager). The JSON
layout is ``benchmarks/bench.schema.json`` (``toonsync-bench/2``); figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

import numpy as np

from toonsync.runtime.assets import DEMO_FACE, DEMO_SPEECH, asset
from toonsync.runtime.errors import ModelError, ToonsyncError
from toonsync.runtime.mel import SAMPLE_RATE
from toonsync.runtime.progress import Progress
from toonsync.runtime.sysinfo import cpu_model, loadavg, machine_info

from .cases import BenchContext, build_case, case_specs
from .lengths import cost_vs_length, long_audio
from .measure import (
    FRAME_MS,
    _case_peak_mb,
    _quiet,
    _r,
    _reset_peak,
    available_backends,
    measure,
    peak_rss_mb,
    resolve_precisions,
    summarize,
)
from .sweep import thread_sweep

log = logging.getLogger(__name__)

SCHEMA = "toonsync-bench/2"
# the figures docs/benchmarks.md holds the product to: value op target
TARGETS = {
    "per_frame_compute_ms": ("<=", 20.0),  # at the default 512 x 512
    "per_frame_compute_ms_256": ("<=", 12.0),
    "offline_rtf": ("<=", 0.25),
    "onnxruntime_vs_torch_eager": (">=", 2.0),
    "int8_vs_fp32": (None, None),
    "stream_p99_latency_ms": ("<=", 150.0),
    "peak_rss_mb": ("<=", 400.0),
}


# -- torch eager (a child process) --------------------------------------------------------------------
def torch_baseline(frames: int, batches: Iterable[int], threads: Iterable[int] = (1, 0)) -> dict | None:
    """Run ``toonsync.tools.bench_torch`` in a child (torch never enters this process); None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    cmd = [
        sys.executable,
        "-m",
        "toonsync.tools.bench_torch",
        "--frames",
        str(frames),
        "--batch",
        *map(str, batches),
        "--threads",
        *map(str, threads),
    ]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        log.warning("torch baseline timed out")
        return None
    if r.returncode != 0:
        log.warning("torch baseline failed: %s", (r.stderr.strip().splitlines() or ["?"])[-1])
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


# -- live streaming in real time ---------------------------------------------------------------------
def stream_realtime(ctx: BenchContext, chunk_ms: float = 20.0, seconds: float | None = None) -> tuple:
    """``runtime.stream`` of the clip delivered in real time; returns (StreamStats, cpu %, peak RSS)."""
    import soundfile as sf

    from toonsync.runtime.live import WavSource, stream

    wav = ctx.tmp / f"stream{seconds or ctx.seconds:g}.wav"
    sf.write(str(wav), ctx.tile(seconds or ctx.seconds), SAMPLE_RATE, subtype="PCM_16")
    _reset_peak()
    c0, w0 = time.process_time(), time.perf_counter()
    st = stream(
        WavSource(wav, realtime=True, chunk_ms=chunk_ms),
        ctx.avatar,
        sink=lambda f: None,
        model=ctx.audio_model(),
        size=ctx.size,
    )
    cpu = 100.0 * (time.process_time() - c0) / (time.perf_counter() - w0)
    return st, cpu, _case_peak_mb()


# -- the whole run -------------------------------------------------------------------------------------
def _ratio(base: dict | None, case: dict | None) -> float | None:
    if not base or not case or not base.get("p50_ms") or not case.get("p50_ms"):
        return None
    return _r(base["p50_ms"] / case["p50_ms"], 2)


def run_bench(
    backend: str = "auto",
    seconds: float = 10.0,
    frames: int = 200,
    precisions: str | Iterable[str] = "all",
    *,
    batch: int = 16,
    quick: bool = False,
    torch: bool = True,
    cold: bool = True,
    realtime: bool = True,
    lengths: bool = True,
    chunk_ms: float = 20.0,
    size: int = 512,
    sweep: bool = False,
    streams: Iterable[int] = (1, 4, 16, 64),
    long_minutes: float | None = None,
    uploads: bool = False,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict:
    """Run every case; returns the report (``toonsync-bench/2``, see ``benchmarks/bench.schema.json``).

    ``backend``: ``auto`` measures the models on every backend available here (cpu, cuda, tensorrt) and
    the end-to-end cases on the runtime's automatic choice; a named backend measures only it.
    ``precisions``: ``all`` or a list; fp32 is always measured (the baseline of the ratios).
    ``quick``: one round of the heavy cases (a smoke run, for CI). ``long_minutes``: also render that much
    audio in a fresh process (``long_audio``)."""
    t_start, load0 = time.perf_counter(), loadavg()
    if backend not in ("auto", "cpu", "cuda", "tensorrt"):
        raise ToonsyncError(f"unknown backend {backend!r}; accepted: auto, cpu, cuda, tensorrt")
    if seconds <= 0 or frames < 1 or batch < 1:
        raise ToonsyncError("--seconds, --frames and --batch must be positive")
    precs = resolve_precisions(precisions)
    single = (
        None
        if isinstance(precisions, str) and precisions == "all"
        else (precisions if isinstance(precisions, str) else None)
    )
    e2e_prec = single if single in precs else "auto"
    backends = available_backends() if backend == "auto" else [backend]
    say = progress or (lambda msg: log.info("%s", msg))
    ctx = BenchContext(seconds, size, backend, e2e_prec)
    try:
        am = ctx.audio_model()  # the runtime's own choice: fails here (typed) for an unavailable backend
        primary = {"backend": am.model.backend.name, "precision": am.model.precision}
        settings = dict(getattr(am.model.backend, "thread_settings", {}) or {})
        cases: dict[str, dict] = {}
        samples: dict[str, list[float]] = {}
        skipped: list[dict] = []
        streams = sorted({int(n) for n in streams})
        if any(n < 1 for n in streams):
            raise ToonsyncError("--streams must be positive stream counts, e.g. 1,4,16,64")
        specs = case_specs(backends, precs, batch, seconds, frames, size, quick, cold, streams)
        bar = Progress("bench", len(specs), "cases")
        for spec in bar.over(specs, lambda sp: f"{sp.name} ({sp.rounds} rounds)"):
            if not bar.shown:
                say(f"bench {spec.name} ({spec.rounds} rounds)")
            try:
                fn = build_case(spec, ctx)
                with _quiet("toonsync.runtime.backend"):
                    m = measure(
                        fn,
                        spec.rounds,
                        spec.warmup,
                        keep_results=spec.kind in ("cold", "render"),
                        cpu_window_s=0.0 if spec.kind == "cold" else 0.05 if quick else 0.3,
                    )
            except (ModelError, ToonsyncError) as e:
                if spec.kind == "cold":
                    raise
                skipped.append({"case": spec.name, "reason": str(e).splitlines()[0][:300]})
                log.info("skipping %s: %s", spec.name, e)
                continue
            except Exception as e:  # an execution provider that loads but cannot run a graph (e.g. fp16 on CPU)
                if spec.stage != "model" and spec.stage != "startup":
                    raise
                skipped.append({"case": spec.name, "reason": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"})
                log.info("skipping %s: %s", spec.name, e)
                continue
            c = {
                **spec.info(),
                **summarize(m.samples_ms, spec.frames_per_call, spec.audio_ms_per_call, m.cpu_pct, m.peak_rss_mb),
            }
            if spec.stage == "model":
                be = spec.backend
                lm = ctx.model(spec.params["model"], be, spec.precision)
                c["backend_name"] = lm.backend.name
            if spec.kind == "render":
                res = m.results[-1]
                c.update(primary, frames=res.frames, stages_ms=res.timings_ms)
            if spec.kind == "stream_frame":
                c.update(primary)
            if spec.kind == "cold":  # time to the first frame as the child saw it (spawn -> frame drawn)
                kids = m.results
                m.samples_ms = [r["first_frame_ms"] for r in kids]
                rss = max(r["peak_rss_mb"] for r in kids)
                c.update(summarize(m.samples_ms, 0, None, None, rss))
                c["milestones_ms"] = {
                    k: _r(float(np.median([r[k] for r in kids])), 1)
                    for k in (
                        "python_ms",
                        "import_ms",
                        "model_ms",
                        "face_ms",
                        "audio_ms",
                        "first_frame_ms",
                        "render_ms",
                    )
                    if k in kids[0]
                }
                c.update(
                    render_clip_s=seconds,
                    child_peak_rss_mb=_r(rss, 1),
                    child_cpu_s=_r(float(np.median([r["cpu_s"] for r in kids])), 2),
                    backend=kids[0]["backend"],
                    precision=kids[0]["precision"],
                )
            cases[spec.name] = c
            samples[spec.name] = [round(x, 4) for x in m.samples_ms]
        if torch:
            say("bench torch eager baseline (child process)")
            tb = torch_baseline(frames, sorted({1, batch}))
            if tb is None:
                skipped.append(
                    {
                        "case": "model.audio2motion.torch-eager.fp32.*",
                        "reason": "torch is not installed (pip install toonsync[train])"
                        if importlib.util.find_spec("torch") is None
                        else "the torch child process failed",
                    }
                )
            else:
                for b in sorted({1, batch}):
                    tried = [t for t in tb["cases"] if t["batch"] == b]
                    best = min(tried, key=lambda t: float(np.mean(t["samples_ms"])))  # tails count too
                    name = f"model.audio2motion.torch-eager.fp32.b{b}"
                    cases[name] = {
                        "stage": "model",
                        "backend": "torch-eager",
                        "precision": "fp32",
                        "batch": b,
                        "frames_per_call": b,
                        "model": "audio2motion",
                        "backend_name": f"torch {tb['torch']} eager",
                        "threads": best["threads"],
                        "threads_tried": {
                            str(t["threads"]): _r(float(np.percentile(t["samples_ms"], 50))) for t in tried
                        },
                        **summarize(best["samples_ms"], b, FRAME_MS * b, best["cpu_pct"], tb["peak_rss_mb"]),
                    }
                    samples[name] = best["samples_ms"]
                if tb.get("motion"):
                    m = tb["motion"]
                    name = "model.motion.torch-eager.fp32.b1"
                    cases[name] = {
                        "stage": "model",
                        "backend": "torch-eager",
                        "precision": "fp32",
                        "batch": 1,
                        "frames_per_call": 1,
                        "model": "motion",
                        "backend_name": f"torch {tb['torch']} eager",
                        "threads": m["threads"],
                        **summarize(m["samples_ms"], 1, FRAME_MS, m["cpu_pct"], tb["peak_rss_mb"]),
                    }
                    samples[name] = m["samples_ms"]
        if realtime:
            say(f"bench e2e.stream_realtime.{chunk_ms:g}ms ({seconds:g} s of speech in real time)")
            st, cpu, rss = stream_realtime(ctx, chunk_ms)
            s = st.summary()
            name = f"e2e.stream_realtime.{chunk_ms:g}ms"
            c = {
                "stage": "e2e",
                "batch": 1,
                "frames_per_call": 1,
                "chunk_ms": chunk_ms,
                "clip_s": seconds,
                **primary,
                **summarize(st.latencies_ms, 0, None, cpu, rss),
            }
            c["fps"] = s["fps"]
            c["lookahead_ms"] = ctx.audio_model().lookahead * FRAME_MS
            c["audio_to_frame_p99_ms"] = _r(c["p99_ms"] + c["lookahead_ms"] + chunk_ms, 1)
            c.update({k: s[k] for k in ("frames", "dropped", "underruns", "av_sync_ms", "wall_s")})
            cases[name] = c
            samples[name] = [round(x, 4) for x in st.latencies_ms]
        cvl = None
        if lengths:
            ls = [seconds / 2, seconds] if quick else [seconds / 4, seconds / 2, seconds, 2 * seconds]
            say(f"bench cost vs clip length {', '.join(f'{x:g}' for x in ls)} s")
            cvl = cost_vs_length(ctx, ls, 1 if quick else 3)
        long = None
        if long_minutes:
            say(f"bench long audio: {long_minutes:g} min render vs 10 s (fresh processes)")
            long = long_audio(ctx, long_minutes)
        ups = None
        if uploads:
            from .uploads import upload_peaks

            say("bench kiosk uploads: peak RSS of the server under its heaviest single uploads")
            ups = upload_peaks(ctx.tmp)
        sw = None
        if sweep:
            say("bench thread settings sweep")
            sw = thread_sweep(
                ctx,
                frames=frames if quick else max(frames, 300),
                repeats=1 if quick else 3,
                batch=batch,
                paced_s=0.2 if quick else 2.0,
                cpu_window_s=0.05 if quick else 0.3,
            )
        ratios = _ratios(cases, backends, precs, batch)
        rep = {
            "schema": SCHEMA,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "options": {
                "backend": backend,
                "precision": precisions if isinstance(precisions, str) else list(precisions),
                "precisions": precs,
                "backends": backends,
                "seconds": seconds,
                "frames": frames,
                "batch": batch,
                "size": size,
                "chunk_ms": chunk_ms,
                "quick": quick,
                "streams": streams,
            },
            "machine": machine_info(settings),
            "runtime": primary,
            "cases": cases,
            "ratios": ratios,
            "skipped": skipped,
            "samples_ms": samples,
        }
        if cvl is not None:
            rep["cost_vs_length"] = cvl
        if sw is not None:
            rep["threads"] = sw
        if long is not None:
            rep["long_audio"] = long
        if ups is not None:
            rep["uploads"] = ups
        rep["peak_rss_mb"] = _r(peak_rss_mb(), 1)
        rep["headline"] = headline(rep)
        rep["machine"]["loadavg_start"], rep["machine"]["loadavg_end"] = load0, loadavg()
        rep["wall_s"] = _r(time.perf_counter() - t_start, 1)
        return rep
    finally:
        ctx.close()


def _ratios(cases: dict, backends: list[str], precs: list[str], batch: int) -> dict:
    out: dict[str, float] = {}
    for b in sorted({1, batch}):
        sfx = "" if b == 1 else f"_b{b}"
        torch_c = cases.get(f"model.audio2motion.torch-eager.fp32.b{b}")
        cpu32 = cases.get(f"model.audio2motion.cpu.fp32.b{b}")
        for prec in precs:
            c = cases.get(f"model.audio2motion.cpu.{prec}.b{b}")
            if (r := _ratio(torch_c, c)) is not None:
                out[f"onnxruntime_{prec}_vs_torch_eager{sfx}"] = r
            if prec != "fp32" and (r := _ratio(cpu32, c)) is not None:
                out[f"{prec}_vs_fp32{sfx}"] = r
        for be in backends:
            if be == "cpu":
                continue
            for prec in precs:
                if (r := _ratio(cpu32, cases.get(f"model.audio2motion.{be}.{prec}.b{b}"))) is not None:
                    out[f"{be}_{prec}_vs_cpu_fp32{sfx}"] = r
    for name, c in cases.items():  # batched multi-stream ticks vs one model call per stream
        if name.startswith("multistream.batched."):
            n = name.rsplit(".", 1)[1]
            if (r := _ratio(cases.get(f"multistream.sequential.{n}"), c)) is not None:
                out[f"multistream_batched_vs_sequential_{n}"] = r
                c["speedup"] = {"sequential": r}
    if (r := _ratio(cases.get("model.motion.torch-eager.fp32.b1"), cases.get("model.motion.cpu.fp32.b1"))) is not None:
        out["motion_onnxruntime_fp32_vs_torch_eager"] = r
    # every model case also carries its own speed-ups against the same-run baselines
    for c in cases.values():
        if c.get("stage") != "model" or c.get("backend") == "torch-eager":
            continue
        vs = {}
        base = cases.get(f"model.{c['model']}.{c['backend']}.fp32.b{c['batch']}")
        if c["precision"] != "fp32" and (r := _ratio(base, c)) is not None:
            vs["fp32"] = r
        torch_name = "motion" if c["model"] == "motion" else "audio2motion"  # the fused graph vs the same network
        if (r := _ratio(cases.get(f"model.{torch_name}.torch-eager.fp32.b{c['batch']}"), c)) is not None:
            vs["torch_eager"] = r
        c["speedup"] = vs
    return out


def headline(rep: dict) -> dict:
    """The headline figures (docs/benchmarks.md), each with its target and whether it is met."""
    cases, ratios = rep["cases"], rep["ratios"]

    def get(prefix: str) -> dict | None:
        return next((c for n, c in cases.items() if n.startswith(prefix)), None)

    out: dict[str, dict] = {}

    def put(key, value, unit, source, note=""):
        op, target = TARGETS[key]
        met = None
        if value is not None and target is not None:
            met = value <= target if op == "<=" else value >= target
        out[key] = {
            "value": value,
            "unit": unit,
            "op": op,
            "target": target,
            "met": met,
            "source": source,
            "note": note,
        }

    for key, size in (("per_frame_compute_ms", 512), ("per_frame_compute_ms_256", 256)):
        sf = cases.get(f"e2e.stream_frame.{size}")
        put(
            key,
            sf and sf["p50_ms"],
            "ms",
            f"e2e.stream_frame.{size} (p50)",
            sf
            and f"p99 {sf['p99_ms']} ms; mel + model + motion + draw of one 40 ms {size} x {size} frame, H.264 "
            "encode not included",
        )
    ro = get("e2e.render_offline.")
    put(
        "offline_rtf",
        ro and ro["rtf"],
        "x",
        "e2e.render_offline (p50 / clip length)",
        ro and f"{ro['clip_s']:g} s clip to MP4, {ro['p50_ms'] / ro['frames']:.2f} ms per frame incl. H.264",
    )
    put(
        "onnxruntime_vs_torch_eager",
        ratios.get("onnxruntime_fp32_vs_torch_eager"),
        "x",
        "model.audio2motion.cpu.fp32.b1 vs torch-eager b1 (p50)",
        f"torch at its best thread count (lowest mean); int8: {ratios.get('onnxruntime_int8_vs_torch_eager')}x"
        if "onnxruntime_fp32_vs_torch_eager" in ratios
        else "torch not installed",
    )
    put(
        "int8_vs_fp32",
        ratios.get("int8_vs_fp32"),
        "x",
        "model.audio2motion.cpu.int8.b1 vs fp32 b1 (p50)",
        f"b{rep['options']['batch']}: {ratios.get('int8_vs_fp32_b' + str(rep['options']['batch']))}x",
    )
    sr = get("e2e.stream_realtime.")
    put(
        "stream_p99_latency_ms",
        sr and sr["audio_to_frame_p99_ms"],
        "ms",
        "e2e.stream_realtime",
        sr
        and f"p99 chunk arrival -> frame drawn {sr['p99_ms']} ms + {sr['lookahead_ms']:g} ms model look-ahead + "
        f"{sr['chunk_ms']:g} ms chunk buffering",
    )
    cs = [c for n, c in cases.items() if n.startswith("startup.cold_first_frame.") and c.get("child_peak_rss_mb")]
    if cs:
        put(
            "peak_rss_mb",
            max(c["child_peak_rss_mb"] for c in cs),
            "MB",
            "startup.cold_first_frame.* children (a "
            f"fresh process: load, first frame, {cs[0]['render_clip_s']:g} s offline render)",
            f"bench process itself (every model and case loaded): {rep['peak_rss_mb']} MB",
        )
    else:
        put("peak_rss_mb", rep["peak_rss_mb"], "MB", "bench process", "")
    return out


# -- live streaming only (``toonsync bench --stream``) -------------------------------------------------------
def run_stream_bench(backend: str = "auto", chunk_ms: float = 20.0) -> dict:
    """Stream the demo speech through ``runtime.stream`` in real time (as a live microphone would deliver it)
    and report fps, audio->frame latency p50/p99, drops and A/V sync."""
    from toonsync.runtime.live import WavSource, stream
    from toonsync.runtime.prepare import load_face
    from toonsync.runtime.streaming import AudioModel

    model = AudioModel(backend)
    avatar = load_face(asset(DEMO_FACE))
    stats = stream(
        WavSource(asset(DEMO_SPEECH), realtime=True, chunk_ms=chunk_ms), avatar, sink=lambda f: None, model=model
    )
    return {
        "schema": "toonsync-bench-stream/0",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "backend": model.model.backend.name},
        "chunk_ms": chunk_ms,
        "lookahead_ms": 80.0,
        **stats.summary(),
    }


def print_stream_report(rep: dict) -> None:
    print(f"machine: {rep['machine']}")
    print(
        f"stream {rep['audio_s']:.2f} s of speech in {rep['chunk_ms']:.0f} ms chunks, real time: "
        f"{rep['frames']} frames at {rep['fps']:.2f} fps, dropped {rep['dropped']}, underruns {rep['underruns']}"
    )
    print(
        f"audio->frame latency (chunk arrival -> frame drawn): p50 {rep['latency_p50_ms']:.1f} ms, "
        f"p99 {rep['latency_p99_ms']:.1f} ms, max {rep['latency_max_ms']:.1f} ms "
        f"(+ {rep['lookahead_ms']:.0f} ms model look-ahead); A/V sync {rep['av_sync_ms']:.0f} ms"
    )
