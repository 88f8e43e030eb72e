"""``toonsync bench`` v0: per-stage latency (p50/p90/p99/max ms) and end-to-end real-time factor.

Cases: log-mel of one 40 ms frame, audio2motion per 40 ms frame (batch 1, streaming state carried),
avatar draw per frame, H.264+AAC encode, and a full offline render of a ``seconds``-long clip.
"""
from __future__ import annotations

import importlib
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from .audio_io import load_audio
from .demo import DEMO_FACE, DEMO_SPEECH, asset
from .mel import MELS_PER_FRAME, SAMPLES_PER_FRAME, log_mel
from .errors import ModelError
from .pipeline import Animator, render
from .streaming import AudioModel
from .prepare import load_face


log = logging.getLogger(__name__)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p90_ms": round(float(np.percentile(a, 90)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "max_ms": round(float(a.max()), 3), "fps": round(1e3 / float(np.percentile(a, 50)), 1)}


def _time(fn, n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _torch_baseline(mel4: np.ndarray, frames: int) -> dict | None:
    try:
        mod = importlib.import_module("training.bench_torch")
    except ImportError:
        return None
    return _stats(mod.audio2motion_per_frame_ms(mel4, frames, threads=1))


def run_bench(backend: str = "auto", seconds: float = 10.0, frames: int = 200,
              precisions: tuple[str, ...] = ("fp32", "int8")) -> dict:
    speech = load_audio(asset(DEMO_SPEECH))
    reps = int(np.ceil(seconds * 16000 / speech.size))
    clip = np.tile(speech, reps)[: int(seconds * 16000)]
    animator = Animator(backend)
    avatar = load_face(asset(DEMO_FACE))
    renderer = avatar.renderer(256)
    cases: dict[str, dict] = {}

    chunk = clip[: SAMPLES_PER_FRAME]
    cases["logmel_per_frame"] = _stats(_time(lambda: log_mel(chunk), frames))
    mel = log_mel(clip)[:MELS_PER_FRAME]
    for prec in ("auto", *precisions):
        try:
            am = animator.audio_model if prec == "auto" else AudioModel(backend, prec)
        except ModelError as e:
            log.info("skipping %s: %s", prec, e)
            continue
        state = am.initial_state()

        def step(am=am):
            nonlocal state
            _, state = am.run(mel, state)

        name = "audio2motion_per_frame" if prec == "auto" else f"audio2motion_per_frame_{prec}"
        cases[name] = {**_stats(_time(step, frames)), "backend": am.model.backend.name, "precision": am.model.precision}
    motion = animator.animate(clip[: SAMPLES_PER_FRAME * frames], avatar.neutral)
    i = iter(range(10**9))
    cases["draw_per_frame"] = _stats(_time(
        lambda: (k := next(i) % motion.n_frames,
                 renderer.draw(motion.landmarks[k], motion.pose[k], float(motion.blink[k]), motion.emotion[k])),
        frames))
    with tempfile.TemporaryDirectory() as td:
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            res = render(avatar, clip, Path(td) / "b.mp4", animator=animator)
            runs.append((time.perf_counter() - t) * 1e3)
    total = float(np.median(runs))
    cases["render_offline"] = {"clip_s": seconds, "frames": res.frames, "median_ms": round(total, 1),
                               "ms_per_frame": round(total / res.frames, 3), "rtf": round(total / (seconds * 1e3), 4),
                               "realtime_factor": round(seconds * 1e3 / total, 2), "stages_ms": res.timings_ms}
    per_frame = sum(cases[k]["p50_ms"] for k in ("logmel_per_frame", "audio2motion_per_frame", "draw_per_frame"))
    rss = peak_rss_mb()  # before the torch baseline loads torch into this process
    torch_case = _torch_baseline(mel, frames)
    if torch_case:
        cases["audio2motion_per_frame_torch_eager"] = {**torch_case, "backend": "torch eager", "precision": "fp32"}
    ratios = {}
    ort32 = cases.get("audio2motion_per_frame_fp32")
    if ort32 and torch_case:
        ratios["onnxruntime_fp32_vs_torch_eager"] = round(torch_case["p50_ms"] / ort32["p50_ms"], 2)
    if ort32 and "audio2motion_per_frame_int8" in cases:
        ratios["int8_vs_fp32"] = round(ort32["p50_ms"] / cases["audio2motion_per_frame_int8"]["p50_ms"], 2)
    return {
        "schema": "toonsync-bench/1",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "backend": animator.model.backend.name, "precision": animator.model.precision},
        "cases": cases,
        "ratios": ratios,
        "per_frame_compute": {"p50_ms": round(per_frame, 3), "budget_ms": 40.0, "headroom": round(40.0 / per_frame, 2)},
        "peak_rss_mb": round(rss, 1),
    }


def print_report(rep: dict) -> None:
    print(f"machine: {rep['machine']}")
    print(f"{'case':36s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s} {'fps':>8s}")
    for name, c in rep["cases"].items():
        if "p50_ms" in c:
            print(f"{name:36s} {c['p50_ms']:8.2f} {c['p90_ms']:8.2f} {c['p99_ms']:8.2f} {c['max_ms']:8.2f} {c['fps']:8.0f}")
    r = rep["cases"]["render_offline"]
    print(f"render_offline: {r['clip_s']:.0f} s clip, {r['frames']} frames in {r['median_ms'] / 1e3:.2f} s "
          f"= {r['ms_per_frame']:.2f} ms/frame, {r['realtime_factor']:.1f}x real time")
    s = rep["per_frame_compute"]
    print(f"per-frame compute p50 {s['p50_ms']:.2f} ms of the 40 ms budget ({s['headroom']:.1f}x headroom); "
          f"offline RTF {r['rtf']:.3f}; peak RSS {rep['peak_rss_mb']:.0f} MB")
    for k, v in rep["ratios"].items():
        print(f"ratio {k}: {v:.2f}x")


def run_stream_bench(backend: str = "auto", chunk_ms: float = 20.0) -> dict:
    """Stream the demo speech through ``runtime.stream`` in real time (as a live microphone would deliver it)
    and report fps, audio->frame latency p50/p99, drops and A/V sync."""
    from .live import WavSource, stream
    from .streaming import AudioModel

    model = AudioModel(backend)
    avatar = load_face(asset(DEMO_FACE))
    stats = stream(WavSource(asset(DEMO_SPEECH), realtime=True, chunk_ms=chunk_ms), avatar, sink=lambda f: None,
                   model=model)
    return {"schema": "toonsync-bench-stream/0",
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "backend": model.model.backend.name},
            "chunk_ms": chunk_ms, "lookahead_ms": 80.0, **stats.summary()}


def print_stream_report(rep: dict) -> None:
    print(f"machine: {rep['machine']}")
    print(f"stream {rep['audio_s']:.2f} s of speech in {rep['chunk_ms']:.0f} ms chunks, real time: "
          f"{rep['frames']} frames at {rep['fps']:.2f} fps, dropped {rep['dropped']}, underruns {rep['underruns']}")
    print(f"audio->frame latency (chunk arrival -> frame drawn): p50 {rep['latency_p50_ms']:.1f} ms, "
          f"p99 {rep['latency_p99_ms']:.1f} ms, max {rep['latency_max_ms']:.1f} ms "
          f"(+ {rep['lookahead_ms']:.0f} ms model look-ahead); A/V sync {rep['av_sync_ms']:.0f} ms")
