"""``toonsync bench``: latency of every stage and end to end, across backends and precisions.

One registry of cases (``case_specs`` + ``build_case``) is shared by ``toonsync bench`` (this module,
no pytest needed) and the pytest-benchmark suite in ``benchmarks/``, so both measure the same code
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

import contextlib
import dataclasses
import datetime as _dt
import gc
import importlib.util
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toonsync.runtime.assets import DEMO_FACE, DEMO_SPEECH, asset
from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.backend import LoadedModel, available_providers, load_model, model_dir
from toonsync.runtime.errors import ModelError, ToonsyncError
from toonsync.runtime.motion import decoder_inputs
from toonsync.runtime.mel import MELS_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME, MelStream, log_mel

log = logging.getLogger(__name__)

SCHEMA = "toonsync-bench/2"
FRAME_MS = 1000.0 * SAMPLES_PER_FRAME / SAMPLE_RATE  # 40 ms
PRECISION_CHOICES = ("fp32", "fp16", "int8")
# the issue's targets (docs/benchmarks.md): value op target
TARGETS = {
    "per_frame_compute_ms": ("<=", 12.0),
    "offline_rtf": ("<=", 0.25),
    "onnxruntime_vs_torch_eager": (">=", 2.0),
    "int8_vs_fp32": (None, None),
    "stream_p99_latency_ms": ("<=", 150.0),
    "peak_rss_mb": ("<=", 400.0),
}
NOISE = 0.10  # --compare: changes within ±10 % of p50 are reported as unchanged
# toonsync-bench/1 case names -> /2 names (so --compare works against older JSON files)
V1_ALIASES = {"logmel_per_frame": "frontend.logmel.40ms", "draw_per_frame": "renderer.draw.256",
              "audio2motion_per_frame_fp32": "model.audio2motion.cpu.fp32.b1",
              "audio2motion_per_frame_int8": "model.audio2motion.cpu.int8.b1",
              "audio2motion_per_frame_fp16": "model.audio2motion.cpu.fp16.b1",
              "audio2motion_per_frame_torch_eager": "model.audio2motion.torch-eager.fp32.b1"}


from toonsync.runtime.sysinfo import cpu_model, loadavg, machine_info


# -- measuring -------------------------------------------------------------------------------------
def _status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak RSS of this process so far (over every case, even after per-case resets). From VmHWM where
    Linux has it: ``ru_maxrss`` survives exec, so it can report the RSS of whatever spawned us."""
    hwm = _status_kb("VmHWM")
    if hwm is None:
        import resource

        return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, _PEAK["overall_mb"])
    return max(hwm / 1024.0, _PEAK["overall_mb"])


_PEAK = {"overall_mb": 0.0}


def _reset_peak() -> bool:
    """Start a new per-case high-water mark (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        _PEAK["overall_mb"] = max(_PEAK["overall_mb"], hwm / 1024.0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _case_peak_mb() -> float:
    hwm = _status_kb("VmHWM")
    if hwm is None:
        return peak_rss_mb()
    _PEAK["overall_mb"] = max(_PEAK["overall_mb"], hwm / 1024.0)
    return hwm / 1024.0


@dataclass
class Measurement:
    samples_ms: list[float]
    cpu_pct: float
    wall_s: float
    peak_rss_mb: float
    results: list = field(default_factory=list, repr=False)


def measure(fn: Callable[[], Any], rounds: int, warmup: int = 0, keep_results: bool = False,
            cpu_window_s: float = 0.3) -> Measurement:
    """Pedantic timing: ``warmup`` untimed calls, then ``rounds`` timed calls one by one (GC paused).

    CPU % is process CPU time / wall time (all threads). Other threads' CPU time is only accounted at
    scheduler ticks, so when the timed rounds take less than ``cpu_window_s`` more untimed calls run
    until the window is long enough to give a meaningful figure."""
    for _ in range(warmup):
        fn()
    _reset_peak()
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    out, res = [], []
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            t = time.perf_counter()
            r = fn()
            out.append((time.perf_counter() - t) * 1e3)
            if keep_results:
                res.append(r)
        while time.perf_counter() - w0 < cpu_window_s:
            fn()
        wall = time.perf_counter() - w0
        cpu = time.process_time() - c0
    finally:
        if was:
            gc.enable()
    return Measurement(out, 100.0 * cpu / wall if wall > 0 else 0.0, wall, _case_peak_mb(), res)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def summarize(samples_ms: Iterable[float], frames_per_call: float = 1.0, audio_ms_per_call: float | None = FRAME_MS,
              cpu_pct: float | None = None, peak_rss: float | None = None) -> dict:
    a = np.asarray(list(samples_ms), np.float64)
    p50 = float(np.percentile(a, 50))
    return {"n": int(a.size), "mean_ms": _r(a.mean()), "p50_ms": _r(p50), "p90_ms": _r(np.percentile(a, 90)),
            "p99_ms": _r(np.percentile(a, 99)), "max_ms": _r(a.max()),
            "fps": _r(frames_per_call * 1e3 / p50, 1) if frames_per_call and p50 > 0 else None,
            "rtf": _r(p50 / audio_ms_per_call, 4) if audio_ms_per_call else None,
            "cpu_pct": _r(cpu_pct, 1), "peak_rss_mb": _r(peak_rss, 1)}


@contextlib.contextmanager
def _quiet(*names: str):
    """Silence per-call INFO logs of the code under test (``rendered 250 frames ...``) while timing it."""
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old):
            lg.setLevel(lv)


# -- backends, precisions ----------------------------------------------------------------------------
def available_backends() -> list[str]:
    """Backends usable here, CPU first: cpu, cuda (onnxruntime CUDA EP), tensorrt (engines or ORT's TRT EP)."""
    out = ["cpu"]
    prov = available_providers()
    if "CUDAExecutionProvider" in prov:
        out.append("cuda")
    from toonsync.runtime.trt_backend import trt_unavailable_reason

    if trt_unavailable_reason() is None or "TensorrtExecutionProvider" in prov:
        out.append("tensorrt")
    return out


def available_precisions(name: str = "audio2motion") -> list[str]:
    d = model_dir()
    return [p for p in PRECISION_CHOICES if (d / f"{name}.{p}.onnx").is_file()]


def resolve_precisions(precision: str | Iterable[str]) -> list[str]:
    """``all`` -> every precision with a model file; one precision -> it plus the fp32 baseline."""
    have = available_precisions()
    if isinstance(precision, str):
        want = have if precision == "all" else [precision]
    else:
        want = list(precision)
    for p in want:
        if p not in PRECISION_CHOICES:
            raise ToonsyncError(f"unknown precision {p!r}; accepted: {', '.join(PRECISION_CHOICES)}, all")
    return sorted({"fp32", *want}, key=PRECISION_CHOICES.index)


def _secs(s: float) -> str:
    return f"{s:g}s"


# -- context (shared inputs, loaded models) ------------------------------------------------------------
class BenchContext:
    """The inputs every case uses: the demo speech tiled to ``seconds``, the demo avatar, loaded models."""

    def __init__(self, seconds: float = 10.0, size: int = 256, backend: str = "auto", precision: str = "auto"):
        from toonsync.runtime.prepare import load_face

        self.seconds, self.size = float(seconds), int(size)
        self.backend, self.precision = backend, precision
        self.speech = load_audio(asset(DEMO_SPEECH))
        self.clip = self.tile(self.seconds)
        mel = log_mel(self.speech)
        t = mel.shape[0] // MELS_PER_FRAME
        self.mel_frames = mel[: t * MELS_PER_FRAME].reshape(t, MELS_PER_FRAME, -1)  # [T, 4, 80]
        n = self.speech.size // SAMPLES_PER_FRAME
        self.pcm_frames = self.speech[: n * SAMPLES_PER_FRAME].reshape(n, SAMPLES_PER_FRAME)
        self.avatar = load_face(asset(DEMO_FACE))
        self.renderer = self.avatar.renderer(self.size)
        self.tmp = Path(tempfile.mkdtemp(prefix="toonsync-bench-"))
        self._models: dict[tuple, LoadedModel] = {}
        self._audio_models: dict[tuple, Any] = {}
        self._animator = None
        self._motion = None
        self._closers: list[Callable[[], None]] = []

    def tile(self, seconds: float) -> np.ndarray:
        n = max(SAMPLES_PER_FRAME, round(seconds * SAMPLE_RATE))
        reps = int(np.ceil(n / self.speech.size))
        return np.tile(self.speech, reps)[:n].astype(np.float32)

    def model(self, name: str, backend: str, precision: str) -> LoadedModel:
        key = (name, backend, precision)
        if key not in self._models:
            self._models[key] = load_model(name, precision, backend)
        return self._models[key]

    def audio_model(self, backend: str | None = None, precision: str | None = None):
        from toonsync.runtime.streaming import AudioModel

        key = (backend or self.backend, precision or self.precision)
        if key not in self._audio_models:
            self._audio_models[key] = AudioModel(*key)
        return self._audio_models[key]

    @property
    def animator(self):
        from toonsync.runtime.pipeline import Animator

        if self._animator is None:
            an = Animator.__new__(Animator)  # share the already-loaded audio model
            an.audio_model = self.audio_model()
            an.model = an.audio_model.model
            self._animator = an
        return self._animator

    @property
    def motion(self):
        if self._motion is None:
            self._motion = self.animator.animate(self.speech, self.avatar.neutral)
        return self._motion

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.append(fn)

    def close(self) -> None:
        for fn in reversed(self._closers):
            with contextlib.suppress(Exception):
                fn()
        self._closers.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- the case registry ---------------------------------------------------------------------------------
@dataclass
class CaseSpec:
    name: str
    stage: str  # frontend | model | renderer | encode | e2e | startup
    kind: str  # what build_case builds
    rounds: int
    warmup: int
    frames_per_call: float = 1.0
    audio_ms_per_call: float | None = FRAME_MS  # None: no real-time factor
    backend: str = ""
    precision: str = ""
    batch: int = 1
    params: dict = field(default_factory=dict)

    def info(self) -> dict:
        return {"stage": self.stage, "backend": self.backend, "precision": self.precision, "batch": self.batch,
                "frames_per_call": self.frames_per_call, **self.params}


def case_specs(backends: Iterable[str] = ("cpu",), precisions: Iterable[str] = ("fp32", "int8"), batch: int = 16,
               seconds: float = 10.0, frames: int = 200, size: int = 256, quick: bool = False,
               cold: bool = True, streams: Iterable[int] = ()) -> list[CaseSpec]:
    """The in-process cases (and the cold-start child) in the order ``toonsync bench`` runs them.

    ``streams``: multi-stream cases for these stream counts N -- one call is one 40 ms tick of N live
    streams (a chunk into each, then a frame out of each, motion only), with the model run once for all
    (``batched``: ``AudioModel.step_many``) or once per stream (``sequential``); ``rtf`` = tick / 40 ms."""
    warm = max(5, frames // 20)
    brounds = max(5, frames // 2)
    few = 1 if quick else 5
    n_frames = int(np.ceil(seconds * SAMPLE_RATE / SAMPLES_PER_FRAME))
    specs = [CaseSpec("frontend.logmel.40ms", "frontend", "logmel", frames, warm)]
    for be in backends:
        for prec in precisions:
            for b in sorted({1, batch}):
                specs.append(CaseSpec(f"model.audio2motion.{be}.{prec}.b{b}", "model", "a2m", frames if b == 1 else brounds,
                                      warm, frames_per_call=b, audio_ms_per_call=FRAME_MS * b, backend=be,
                                      precision=prec, batch=b, params={"model": "audio2motion"}))
        specs.append(CaseSpec(f"model.audio2motion_pcm.{be}.fp32.b1", "model", "a2m_pcm", frames, warm,
                              backend=be, precision="fp32", params={"model": "audio2motion_pcm"}))
        if (model_dir() / "motion.onnx.json").is_file():  # the transformer motion decoder, when it ships
            for prec in sorted({"fp32", "fp16" if be in ("cuda", "tensorrt") else "fp32"}):
                specs.append(CaseSpec(f"model.motion.{be}.{prec}.b1", "model", "motion", frames, warm, backend=be,
                                      precision=prec, params={"model": "motion"}))
    specs += [
        CaseSpec(f"renderer.draw.{size}", "renderer", "draw", frames, warm, params={"size": size}),
        *[CaseSpec(f"renderer.onnx.{s}", "renderer", "draw", frames, warm, params={"size": s, "engine": "onnx"})
          for s in sorted({size, 512})],
        CaseSpec(f"encode.h264.{size}", "encode", "encode", frames, max(warm, 30), params={"size": size}),
        CaseSpec(f"e2e.stream_frame.{size}", "e2e", "stream_frame", frames, max(warm, 5), params={"size": size}),
        CaseSpec(f"e2e.render_offline.{_secs(seconds)}", "e2e", "render", few, 0 if quick else 1,
                 frames_per_call=n_frames, audio_ms_per_call=seconds * 1e3, params={"clip_s": seconds, "size": size}),
        CaseSpec("startup.face_prepare", "startup", "face", 2 if quick else 5, 1, frames_per_call=0,
                 audio_ms_per_call=None),
    ]
    for be in backends:
        for prec in precisions:
            specs.append(CaseSpec(f"startup.model_load.{be}.{prec}", "startup", "model_load", 2 if quick else 5, 1,
                                  frames_per_call=0, audio_ms_per_call=None, backend=be, precision=prec,
                                  params={"model": "audio2motion"}))
    for n in sorted(set(streams)):
        for mode in ("sequential", "batched"):
            specs.append(CaseSpec(f"multistream.{mode}.n{n}", "multistream", "multistream", brounds if n > 4 else frames,
                                  warm, frames_per_call=n, params={"streams": n, "mode": mode}))
    if cold:  # a photo (dlib's predictor loads on first use) and a prepared .avatar bundle (the kiosk case)
        for face in ("photo", "avatar"):
            specs.append(CaseSpec(f"startup.cold_first_frame.{face}", "startup", "cold", 1 if quick else 3, 0,
                                  frames_per_call=0, audio_ms_per_call=None, params={"face": face, "render": True}))
    return specs


def _a2m_step(lm: LoadedModel, ctx: BenchContext, batch: int, pcm: bool) -> Callable[[], None]:
    cfg = lm.card.get("config", {})
    hidden, kctx = int(cfg.get("hidden", 128)), int(cfg.get("kernel", 5)) - 1
    src = ctx.pcm_frames if pcm else ctx.mel_frames
    t = src.shape[0]
    offs = np.arange(batch) * 37  # each stream of the batch at another point of the speech
    key = "pcm" if pcm else "mel"
    inputs = [np.ascontiguousarray(src[(offs + k) % t]) for k in range(t)]
    z = np.zeros
    state = {"mel_ctx": z((batch, 80, kctx), np.float32), "h": z((1, batch, hidden), np.float32),
             "c": z((1, batch, hidden), np.float32)}
    if pcm:
        state["pcm_ctx"] = z((batch, 240), np.float32)
    k = 0

    def step() -> None:
        nonlocal k
        out = lm.run({key: inputs[k % t], **state})
        for s in state:
            state[s] = out[f"{s}_out"]
        k += 1

    return step


def _motion_step(lm: LoadedModel, ctx: BenchContext) -> Callable[[], None]:
    cfg = lm.card.get("config", {})
    a2m = ctx.model("audio2motion", "cpu", "fp32")  # real speech embeddings of the demo clip
    acfg = a2m.card["config"]
    z = np.zeros
    out = a2m.run({"mel": ctx.mel_frames.reshape(1, -1, ctx.mel_frames.shape[-1]),
                   "mel_ctx": z((1, 80, acfg["kernel"] - 1), np.float32), "h": z((1, 1, acfg["hidden"]), np.float32),
                   "c": z((1, 1, acfg["hidden"]), np.float32)})
    names = set(lm.card.get("inputs", {}))
    feeds = [{k: v for k, v in f.items() if k in names}
             for f in decoder_inputs(out["embedding"].shape[1], out["embedding"][0], out["mouth"][0])]
    state = {"cache": z((cfg["layers"], 1, cfg["window"] - 1, cfg["d_model"]), np.float32)}
    k = 0

    def step() -> None:
        nonlocal k
        state["cache"] = lm.run({**feeds[k % len(feeds)], **state})["cache_out"]
        k += 1

    return step


def build_case(spec: CaseSpec, ctx: BenchContext) -> Callable[[], Any]:
    """A zero-argument callable that does one call's work of ``spec`` (shared with the pytest suite)."""
    k = spec.kind
    if k == "logmel":
        ms, chunk = MelStream(), ctx.clip[:SAMPLES_PER_FRAME].copy()
        return lambda: ms.accept(chunk)
    if k in ("a2m", "a2m_pcm"):
        lm = ctx.model(spec.params["model"], spec.backend, spec.precision)
        return _a2m_step(lm, ctx, spec.batch, pcm=k == "a2m_pcm")
    if k == "motion":
        return _motion_step(ctx.model("motion", spec.backend, spec.precision), ctx)
    if k == "draw":
        m = ctx.motion
        engine = spec.params.get("engine")  # the render.onnx warp renderer (runtime.warp_renderer)
        r = ctx.avatar.renderer(spec.params["size"], engine) if engine else ctx.renderer
        it = iter(range(10**12))

        def draw():
            i = next(it) % m.n_frames
            return r.draw(m.landmarks[i], m.pose[i], float(m.blink[i]), m.emotion[i])

        return draw
    if k == "encode":
        from toonsync.runtime.video import Mp4Writer

        m, r = ctx.motion, ctx.renderer
        imgs = [r.draw(m.landmarks[i], m.pose[i], float(m.blink[i]), m.emotion[i]) for i in range(min(50, m.n_frames))]
        w = Mp4Writer(ctx.tmp / f"enc{len(ctx._closers)}.mp4", audio=False)
        ctx.on_close(w.abort)
        it = iter(range(10**12))
        return lambda: w.add_frame(imgs[next(it) % len(imgs)])
    if k == "stream_frame":
        from toonsync.runtime.streaming import Stream

        s = Stream(ctx.audio_model(), ctx.avatar.neutral, ctx.renderer, seed=0)
        chunks = list(ctx.pcm_frames)
        it = iter(range(10**12))

        def frame():
            s.accept_audio(chunks[next(it) % len(chunks)])
            while s.ready():
                s.step()

        return frame
    if k == "multistream":
        from toonsync.runtime.streaming import Stream

        n, batched = spec.params["streams"], spec.params["mode"] == "batched"
        am = ctx.audio_model()
        streams = [Stream(am, ctx.avatar.neutral, seed=i, defer=batched) for i in range(n)]
        chunks = ctx.pcm_frames
        offs = np.arange(n) * 37  # each stream at another point of the speech
        it = iter(range(10**12))

        def tick():
            k = next(it)
            for s, o in zip(streams, offs):
                s.accept_audio(chunks[(o + k) % len(chunks)])
            return am.step_many(streams, draw=False)

        return tick
    if k == "render":
        from toonsync.runtime.pipeline import render

        clip = ctx.tile(spec.params["clip_s"])
        out = ctx.tmp / "render.mp4"

        def run():
            with _quiet("toonsync.runtime.pipeline"):
                return render(ctx.avatar, clip, out, animator=ctx.animator, size=spec.params.get("size", 256))

        return run
    if k == "face":
        from toonsync.runtime.prepare import load_face

        path = asset(DEMO_FACE)
        return lambda: load_face(path)
    if k == "model_load":
        return lambda: load_model(spec.params["model"], spec.precision, spec.backend)
    if k == "cold":
        wav = ctx.tmp / "cold.wav"
        if not wav.exists():
            import soundfile as sf

            sf.write(str(wav), ctx.clip, SAMPLE_RATE, subtype="PCM_16")
        face = asset(DEMO_FACE)
        if spec.params.get("face") == "avatar":
            face = ctx.tmp / "demo.avatar"
            if not face.exists():
                ctx.avatar.save(face)
        out = ctx.tmp / "cold.mp4" if spec.params.get("render", True) else None
        return lambda: cold_start(wav, face, ctx.backend, ctx.precision, out, size=ctx.size)
    raise ValueError(f"unknown case kind {k!r}")


# -- cold start (a child process) ------------------------------------------------------------------------
_COLD_CHILD = r"""
import json, resource, sys, time
t0 = float(sys.argv[1]); mono = time.monotonic; m = {"python_ms": (mono() - t0) * 1e3}
from toonsync.runtime.pipeline import Animator, render
from toonsync.runtime.streaming import Stream
from toonsync.runtime.prepare import load_face
from toonsync.runtime.audio_io import load_audio
m["import_ms"] = (mono() - t0) * 1e3
an = Animator(sys.argv[4], sys.argv[5]); m["model_ms"] = (mono() - t0) * 1e3
av = load_face(sys.argv[3]); m["face_ms"] = (mono() - t0) * 1e3
pcm = load_audio(sys.argv[2]); m["audio_ms"] = (mono() - t0) * 1e3
s = Stream(an.audio_model, av.neutral, av.renderer(int(sys.argv[7])))
i = 0
while not s.ready():
    s.accept_audio(pcm[i:i + 640]); i += 640
f = s.step(); assert f.image is not None
m["first_frame_ms"] = (mono() - t0) * 1e3
if sys.argv[6] != "-":
    t1 = mono(); res = render(av, pcm, sys.argv[6], animator=an, size=int(sys.argv[7]))
    m["render_ms"] = (mono() - t1) * 1e3; m["render_frames"] = res.frames
ru = resource.getrusage(resource.RUSAGE_SELF)
m["cpu_s"] = ru.ru_utime + ru.ru_stime
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the parent's RSS
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
m["peak_rss_mb"] = float(hwm[0].split()[1]) / 1024.0 if hwm else ru.ru_maxrss / 1024.0
m["backend"] = an.model.backend.name; m["precision"] = an.model.precision
print(json.dumps(m))
"""


def cold_start(speech: Path, face: Path, backend: str = "auto", precision: str = "auto", render_to: Path | None = None,
               size: int = 256) -> dict:
    """Spawn a fresh interpreter; time process start -> first drawn frame (then, with ``render_to``, a full
    offline render of ``speech`` in the same process, for its peak RSS). Milestones are ms since spawn."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _COLD_CHILD, repr(t0), str(speech), str(face), backend, precision,
                        str(render_to) if render_to else "-", str(size)], capture_output=True, text=True, env=env,
                       timeout=300, check=False)
    wall = (time.monotonic() - t0) * 1e3
    if r.returncode != 0:
        raise ToonsyncError(f"cold-start child failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    m = json.loads(r.stdout.strip().splitlines()[-1])
    m["process_ms"] = wall
    return m


# -- torch eager (a child process) --------------------------------------------------------------------
def torch_baseline(frames: int, batches: Iterable[int], threads: Iterable[int] = (1, 0)) -> dict | None:
    """Run ``toonsync.tools.bench_torch`` in a child (torch never enters this process); None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    cmd = [sys.executable, "-m", "toonsync.tools.bench_torch", "--frames", str(frames), "--batch", *map(str, batches),
           "--threads", *map(str, threads)]
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
def stream_realtime(ctx: BenchContext, chunk_ms: float = 20.0, seconds: float | None = None):
    """``runtime.stream`` of the clip delivered in real time; returns (StreamStats, cpu %, peak RSS)."""
    import soundfile as sf

    from toonsync.runtime.live import WavSource, stream

    wav = ctx.tmp / f"stream{seconds or ctx.seconds:g}.wav"
    sf.write(str(wav), ctx.tile(seconds or ctx.seconds), SAMPLE_RATE, subtype="PCM_16")
    _reset_peak()
    c0, w0 = time.process_time(), time.perf_counter()
    st = stream(WavSource(wav, realtime=True, chunk_ms=chunk_ms), ctx.avatar, sink=lambda f: None,
                model=ctx.audio_model(), size=ctx.size)
    cpu = 100.0 * (time.process_time() - c0) / (time.perf_counter() - w0)
    return st, cpu, _case_peak_mb()


# -- cost vs clip length -----------------------------------------------------------------------------
def cost_vs_length(ctx: BenchContext, lengths: Iterable[float], reps: int = 3) -> dict:
    """Offline render time for several clip lengths: linear in the audio, flat per frame."""
    from toonsync.runtime.pipeline import render

    pts = []
    for s in lengths:
        clip = ctx.tile(s)
        ms = []
        for _ in range(reps):
            t = time.perf_counter()
            with _quiet("toonsync.runtime.pipeline"):
                res = render(ctx.avatar, clip, ctx.tmp / "len.mp4", animator=ctx.animator, size=ctx.size)
            ms.append((time.perf_counter() - t) * 1e3)
        med = float(np.median(ms))
        pts.append({"clip_s": _r(s, 3), "frames": res.frames, "ms": _r(med, 1), "ms_per_frame": _r(med / res.frames),
                    "rtf": _r(med / (s * 1e3), 4), "runs_ms": [_r(x, 1) for x in ms]})
    x = np.array([p["clip_s"] for p in pts], np.float64)
    y = np.array([p["ms"] for p in pts], np.float64)
    fit = {}
    if len(pts) >= 2:
        slope, icpt = np.polyfit(x, y, 1)
        pred = slope * x + icpt
        ss = float(((y - y.mean()) ** 2).sum())
        per = np.array([p["ms_per_frame"] for p in pts])
        fit = {"ms_per_audio_s": _r(slope, 1), "fixed_ms": _r(icpt, 1),
               "r2": _r(1 - float(((y - pred) ** 2).sum()) / ss, 4) if ss > 0 else None,
               "ms_per_frame_spread": _r(float(per.max() / per.min()), 3)}
    return {"points": pts, "fit": fit}


# -- thread settings sweep -------------------------------------------------------------------------------
THREAD_CONFIGS = [
    {"name": "ort-default", "intra": 0, "inter": 0, "spinning": None, "parallel": False},  # ORT's own defaults
    {"name": "intra1", "intra": 1, "inter": 1, "spinning": "0", "parallel": False},
    {"name": "intra2-spin", "intra": 2, "inter": 1, "spinning": "1", "parallel": False},
    {"name": "intra2-nospin", "intra": 2, "inter": 1, "spinning": "0", "parallel": False},
    {"name": "parallel-inter2", "intra": 1, "inter": 2, "spinning": "1", "parallel": True},
]


class _SweepBackend:
    """An onnxruntime CPU session with explicit thread settings (the sweep's stand-in for OrtBackend)."""

    def __init__(self, path: Path, cfg: dict):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.intra_op_num_threads = cfg["intra"]
        so.inter_op_num_threads = cfg["inter"]
        if cfg["parallel"]:
            so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        if cfg["spinning"] is not None:
            so.add_session_config_entry("session.intra_op.allow_spinning", cfg["spinning"])
            so.add_session_config_entry("session.inter_op.allow_spinning", cfg["spinning"])
        self._s = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self.name = f"onnxruntime:CPUExecutionProvider[{cfg['name']}]"
        self.input_names = [i.name for i in self._s.get_inputs()]
        self.output_names = [o.name for o in self._s.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self._s.run(self.output_names, {k: inputs[k] for k in self.input_names})))


def _two_streams(am, ctx: BenchContext, frames: int) -> dict:
    """Two conversations on two threads over one shared model (a small server): per-frame latency, fps."""
    from toonsync.runtime.streaming import Stream

    chunks = list(ctx.pcm_frames)
    lat: list[list[float]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(j: int) -> None:
        s = Stream(am, ctx.avatar.neutral, ctx.avatar.renderer(ctx.size), seed=j)
        for i in range(5):
            s.accept_audio(chunks[(i + 50 * j) % len(chunks)])
            while s.ready():
                s.step()
        barrier.wait()
        for i in range(frames):
            t = time.perf_counter()
            s.accept_audio(chunks[(i + 5 + 50 * j) % len(chunks)])
            while s.ready():
                s.step()
            lat[j].append((time.perf_counter() - t) * 1e3)

    ths = [threading.Thread(target=worker, args=(j,)) for j in range(2)]
    c0, w0 = time.process_time(), time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    wall = time.perf_counter() - w0
    st = summarize(lat[0] + lat[1], cpu_pct=100.0 * (time.process_time() - c0) / wall)
    st["fps_total"] = _r(2 * frames / wall, 1)
    return st


def _paced_cpu(step: Callable[[], None], seconds: float) -> float:
    """CPU % of one stream drawn at 25 fps in real time (what an idle-spinning thread pool costs)."""
    n = max(1, int(seconds * 1e3 / FRAME_MS))
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        step()
        delay = w0 + (i + 1) * FRAME_MS / 1e3 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return 100.0 * (time.process_time() - c0) / (time.perf_counter() - w0)


@contextlib.contextmanager
def _busy(n: int):
    """``n`` busy-loop child processes: another program hogging cores, as on a kiosk running its UI."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.2 if n else 0.0)
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def thread_sweep(ctx: BenchContext, frames: int = 300, repeats: int = 3, batch: int = 16,
                 configs: list[dict] | None = None, paced_s: float = 2.0, cpu_window_s: float = 0.3,
                 busy: Iterable[int] = (0, 1)) -> dict:
    """Intra-op threads x inter-op threads x spinning x execution mode, on the cases that decide a small CPU:
    one model step (b1 and b``batch``), one streamed frame (model + draw), two concurrent streams, and the
    CPU % of one real-time stream; each with the machine otherwise idle and with ``n`` busy-loop processes
    (``busy``). Repeated ``repeats`` times in rotating order; medians reported."""
    return {"precision": ctx.audio_model("cpu").model.precision, "frames": frames, "repeats": repeats,
            "batch": batch, "conditions": {
                ("idle" if n == 0 else f"{n} busy core{'s' if n > 1 else ''}"):
                    _sweep_once(ctx, frames, repeats, batch, configs or THREAD_CONFIGS, paced_s, cpu_window_s, n)
                for n in busy}}


def _sweep_once(ctx: BenchContext, frames: int, repeats: int, batch: int, configs: list[dict], paced_s: float,
                cpu_window_s: float, busy: int) -> dict:
    from toonsync.runtime.streaming import AudioModel, Stream

    d = model_dir()
    prec = ctx.audio_model("cpu").model.precision
    runs: dict[str, list[dict]] = {c["name"]: [] for c in configs}
    load0 = loadavg()
    with _busy(busy):
        for rep in range(repeats):
            order = configs[rep % len(configs):] + configs[: rep % len(configs)]
            for cfg in order:
                row: dict[str, Any] = {}
                ams = {}
                for p in sorted({"fp32", prec}):
                    am = AudioModel("cpu", p)
                    am.model = dataclasses.replace(am.model, backend=_SweepBackend(d / f"audio2motion.{p}.onnx", cfg))
                    ams[p] = am
                    for b in (1, batch):
                        m = measure(_a2m_step(am.model, ctx, b, False), frames if b == 1 else max(5, frames // 2), 20,
                                    cpu_window_s=cpu_window_s)
                        row[f"model_{p}_b{b}"] = summarize(m.samples_ms, b, FRAME_MS * b, m.cpu_pct)
                s = Stream(ams[prec], ctx.avatar.neutral, ctx.renderer, seed=0)
                chunks = list(ctx.pcm_frames)
                it = iter(range(10**12))

                def frame(s=s, chunks=chunks, it=it):
                    s.accept_audio(chunks[next(it) % len(chunks)])
                    while s.ready():
                        s.step()

                m = measure(frame, frames, 10, cpu_window_s=cpu_window_s)
                row["stream_frame"] = summarize(m.samples_ms, cpu_pct=m.cpu_pct)
                row["two_streams"] = _two_streams(ams[prec], ctx, frames)
                row["paced_cpu_pct"] = _r(_paced_cpu(frame, paced_s), 1)
                runs[cfg["name"]].append(row)
                log.info("threads %-16s busy %d rep %d: stream frame p50 %.2f ms, two streams p50 %.2f ms, "
                         "paced CPU %.0f %%", cfg["name"], busy, rep + 1, row["stream_frame"]["p50_ms"],
                         row["two_streams"]["p50_ms"], row["paced_cpu_pct"])
    out: dict[str, Any] = {"busy_processes": busy, "loadavg_start": load0, "loadavg_end": loadavg(), "configs": {}}
    for cfg in configs:
        rows = runs[cfg["name"]]
        med: dict[str, Any] = {"settings": {k: cfg[k] for k in ("intra", "inter", "spinning", "parallel")}}
        for key in rows[0]:
            if isinstance(rows[0][key], dict):
                med[key] = {f: _r(float(np.median([r[key][f] for r in rows if r[key][f] is not None])), 3)
                            for f in ("p50_ms", "p99_ms", "cpu_pct") if rows[0][key].get(f) is not None}
                if "fps_total" in rows[0][key]:
                    med[key]["fps_total"] = _r(float(np.median([r[key]["fps_total"] for r in rows])), 1)
            else:
                med[key] = _r(float(np.median([r[key] for r in rows])), 1)
        out["configs"][cfg["name"]] = med
    return out


def print_thread_sweep(sw: dict, file=None) -> None:
    b = sw["batch"]
    cols = list(dict.fromkeys([("model_fp32_b1", "model fp32 b1"), (f"model_{sw['precision']}_b1", f"model {sw['precision']} b1"),
                               (f"model_fp32_b{b}", f"model fp32 b{b}"), ("stream_frame", "stream frame"),
                               ("two_streams", "2 streams")]))
    print(f"\nthread settings (median of {sw['repeats']} repeats): p50 / p99 ms (process CPU %); "
          "paced = CPU % of one stream drawn at 25 fps in real time", file=file)
    for cond, cd in sw["conditions"].items():
        print(f"-- {cond} (load average {cd['loadavg_start']} -> {cd['loadavg_end']})", file=file)
        print(f"{'config':16s} {'intra':>5s} {'inter':>5s} {'spin':>5s} {'mode':>5s}"
              + "".join(f"{h:>24s}" for _, h in cols) + f"{'paced':>7s}", file=file)
        for name, c in cd["configs"].items():
            st = c["settings"]
            spin = {None: "dflt", "0": "no", "1": "yes"}.get(st["spinning"], str(st["spinning"]))
            cells = "".join(f"{c[k]['p50_ms']:>9.3f} /{c[k]['p99_ms']:>7.3f} ({c[k]['cpu_pct']:>3.0f}%)" for k, _ in cols)
            print(f"{name:16s} {st['intra'] or 'dflt':>5} {st['inter'] or 'dflt':>5} {spin:>5s} "
                  f"{'par' if st['parallel'] else 'seq':>5s}{cells}{c['paced_cpu_pct']:>6.0f}%", file=file)


# -- the whole run -------------------------------------------------------------------------------------
def _ratio(base: dict | None, case: dict | None) -> float | None:
    if not base or not case or not base.get("p50_ms") or not case.get("p50_ms"):
        return None
    return _r(base["p50_ms"] / case["p50_ms"], 2)


def run_bench(backend: str = "auto", seconds: float = 10.0, frames: int = 200,
              precisions: str | Iterable[str] = "all", *, batch: int = 16, quick: bool = False, torch: bool = True,
              cold: bool = True, realtime: bool = True, lengths: bool = True, chunk_ms: float = 20.0,
              size: int = 256, sweep: bool = False, streams: Iterable[int] = (1, 4, 16, 64),
              progress: Callable[[str], None] | None = None, command: str | None = None) -> dict:
    """Run every case; returns the report (``toonsync-bench/2``, see ``benchmarks/bench.schema.json``).

    ``backend``: ``auto`` measures the models on every backend available here (cpu, cuda, tensorrt) and
    the end-to-end cases on the runtime's automatic choice; a named backend measures only it.
    ``precisions``: ``all`` or a list; fp32 is always measured (the baseline of the ratios).
    ``quick``: one round of the heavy cases (a smoke run, for CI)."""
    t_start, load0 = time.perf_counter(), loadavg()
    if backend not in ("auto", "cpu", "cuda", "tensorrt"):
        raise ToonsyncError(f"unknown backend {backend!r}; accepted: auto, cpu, cuda, tensorrt")
    if seconds <= 0 or frames < 1 or batch < 1:
        raise ToonsyncError("--seconds, --frames and --batch must be positive")
    precs = resolve_precisions(precisions)
    single = None if isinstance(precisions, str) and precisions == "all" else (
        precisions if isinstance(precisions, str) else None)
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
        for spec in specs:
            say(f"bench {spec.name} ({spec.rounds} rounds)")
            try:
                fn = build_case(spec, ctx)
                with _quiet("toonsync.runtime.backend"):
                    m = measure(fn, spec.rounds, spec.warmup, keep_results=spec.kind in ("cold", "render"),
                                cpu_window_s=0.0 if spec.kind == "cold" else 0.05 if quick else 0.3)
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
            c = {**spec.info(), **summarize(m.samples_ms, spec.frames_per_call, spec.audio_ms_per_call, m.cpu_pct,
                                            m.peak_rss_mb)}
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
                c["milestones_ms"] = {k: _r(float(np.median([r[k] for r in kids])), 1)
                                      for k in ("python_ms", "import_ms", "model_ms", "face_ms", "audio_ms",
                                                "first_frame_ms", "render_ms") if k in kids[0]}
                c.update(render_clip_s=seconds, child_peak_rss_mb=_r(rss, 1),
                         child_cpu_s=_r(float(np.median([r["cpu_s"] for r in kids])), 2),
                         backend=kids[0]["backend"], precision=kids[0]["precision"])
            cases[spec.name] = c
            samples[spec.name] = [round(x, 4) for x in m.samples_ms]
        if torch:
            say("bench torch eager baseline (child process)")
            tb = torch_baseline(frames, sorted({1, batch}))
            if tb is None:
                skipped.append({"case": "model.audio2motion.torch-eager.fp32.*",
                                "reason": "torch is not installed (pip install toonsync[train])"
                                if importlib.util.find_spec("torch") is None else "the torch child process failed"})
            else:
                for b in sorted({1, batch}):
                    tried = [t for t in tb["cases"] if t["batch"] == b]
                    best = min(tried, key=lambda t: float(np.mean(t["samples_ms"])))  # tails count too
                    name = f"model.audio2motion.torch-eager.fp32.b{b}"
                    cases[name] = {"stage": "model", "backend": "torch-eager", "precision": "fp32", "batch": b,
                                   "frames_per_call": b, "model": "audio2motion",
                                   "backend_name": f"torch {tb['torch']} eager", "threads": best["threads"],
                                   "threads_tried": {str(t["threads"]): _r(float(np.percentile(t["samples_ms"], 50)))
                                                     for t in tried},
                                   **summarize(best["samples_ms"], b, FRAME_MS * b, best["cpu_pct"], tb["peak_rss_mb"])}
                    samples[name] = best["samples_ms"]
                if tb.get("motion"):
                    m = tb["motion"]
                    name = "model.motion.torch-eager.fp32.b1"
                    cases[name] = {"stage": "model", "backend": "torch-eager", "precision": "fp32", "batch": 1,
                                   "frames_per_call": 1, "model": "motion", "backend_name": f"torch {tb['torch']} eager",
                                   "threads": m["threads"], **summarize(m["samples_ms"], 1, FRAME_MS, m["cpu_pct"],
                                                                       tb["peak_rss_mb"])}
                    samples[name] = m["samples_ms"]
        if realtime:
            say(f"bench e2e.stream_realtime.{chunk_ms:g}ms ({seconds:g} s of speech in real time)")
            st, cpu, rss = stream_realtime(ctx, chunk_ms)
            s = st.summary()
            name = f"e2e.stream_realtime.{chunk_ms:g}ms"
            c = {"stage": "e2e", "batch": 1, "frames_per_call": 1, "chunk_ms": chunk_ms, "clip_s": seconds,
                 **primary, **summarize(st.latencies_ms, 0, None, cpu, rss)}
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
        sw = None
        if sweep:
            say("bench thread settings sweep")
            sw = thread_sweep(ctx, frames=frames if quick else max(frames, 300), repeats=1 if quick else 3,
                              batch=batch, paced_s=0.2 if quick else 2.0, cpu_window_s=0.05 if quick else 0.3)
        ratios = _ratios(cases, backends, precs, batch)
        rep = {
            "schema": SCHEMA,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "options": {"backend": backend, "precision": precisions if isinstance(precisions, str) else list(precisions),
                        "precisions": precs, "backends": backends, "seconds": seconds, "frames": frames,
                        "batch": batch, "size": size, "chunk_ms": chunk_ms, "quick": quick, "streams": streams},
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
    """The issue's headline figures, each with its target and whether it is met."""
    cases, ratios = rep["cases"], rep["ratios"]

    def get(prefix: str) -> dict | None:
        return next((c for n, c in cases.items() if n.startswith(prefix)), None)

    out: dict[str, dict] = {}

    def put(key, value, unit, source, note=""):
        op, target = TARGETS[key]
        met = None
        if value is not None and target is not None:
            met = value <= target if op == "<=" else value >= target
        out[key] = {"value": value, "unit": unit, "op": op, "target": target, "met": met, "source": source,
                    "note": note}

    sf = get("e2e.stream_frame.")
    put("per_frame_compute_ms", sf and sf["p50_ms"], "ms", "e2e.stream_frame (p50)",
        sf and f"p99 {sf['p99_ms']} ms; mel + model + motion + draw of one 40 ms frame, H.264 encode not included")
    ro = get("e2e.render_offline.")
    put("offline_rtf", ro and ro["rtf"], "x", "e2e.render_offline (p50 / clip length)",
        ro and f"{ro['clip_s']:g} s clip to MP4, {ro['p50_ms'] / ro['frames']:.2f} ms per frame incl. H.264")
    put("onnxruntime_vs_torch_eager", ratios.get("onnxruntime_fp32_vs_torch_eager"), "x",
        "model.audio2motion.cpu.fp32.b1 vs torch-eager b1 (p50)",
        "torch at its best thread count (lowest mean); int8: "
        f"{ratios.get('onnxruntime_int8_vs_torch_eager')}x" if "onnxruntime_fp32_vs_torch_eager" in ratios
        else "torch not installed")
    put("int8_vs_fp32", ratios.get("int8_vs_fp32"), "x", "model.audio2motion.cpu.int8.b1 vs fp32 b1 (p50)",
        f"b{rep['options']['batch']}: {ratios.get('int8_vs_fp32_b' + str(rep['options']['batch']))}x")
    sr = get("e2e.stream_realtime.")
    put("stream_p99_latency_ms", sr and sr["audio_to_frame_p99_ms"], "ms", "e2e.stream_realtime",
        sr and f"p99 chunk arrival -> frame drawn {sr['p99_ms']} ms + {sr['lookahead_ms']:g} ms model look-ahead + "
               f"{sr['chunk_ms']:g} ms chunk buffering")
    cs = [c for n, c in cases.items() if n.startswith("startup.cold_first_frame.") and c.get("child_peak_rss_mb")]
    if cs:
        put("peak_rss_mb", max(c["child_peak_rss_mb"] for c in cs), "MB", "startup.cold_first_frame.* children (a "
            f"fresh process: load, first frame, {cs[0]['render_clip_s']:g} s offline render)",
            f"bench process itself (every model and case loaded): {rep['peak_rss_mb']} MB")
    else:
        put("peak_rss_mb", rep["peak_rss_mb"], "MB", "bench process", "")
    return out


# -- output --------------------------------------------------------------------------------------------
def _f(x, fmt: str, width: int) -> str:
    return f"{'-':>{width}s}" if x is None else f"{x:{width}{fmt}}"


def print_report(rep: dict, file=None) -> None:
    """The product table: per case p50/p90/p99/max ms, frames/s, RTF, CPU %, peak RSS, speed-ups."""
    p = lambda *a: print(*a, file=file)
    m = rep["machine"]
    th = m.get("threads", {}).get("onnxruntime", {})
    p(f"machine: {m['cpu']}, {m['cores']} cores ({m.get('physical_cores')} physical), "
      f"{m.get('memory_mb') or 0:.0f} MB, GPU: {', '.join(m.get('gpus') or []) or 'none'}; "
      f"onnxruntime {m['versions']['onnxruntime']} {th}; load avg {m.get('loadavg_start')} -> {m.get('loadavg_end')}")
    p(f"runtime default: {rep['runtime']['backend']} {rep['runtime']['precision']}")
    hdr = (f"{'case':42s} {'p50':>8s} {'p90':>8s} {'p99':>8s} {'max':>8s} {'frames/s':>9s} {'RTF':>7s} "
           f"{'CPU%':>5s} {'RSS MB':>7s}  speed-up")
    p(hdr)
    p("-" * len(hdr))
    stage = None
    for name, c in rep["cases"].items():
        if c.get("stage") != stage:
            stage = c.get("stage")
        sp = ", ".join(f"{v:.2f}x vs {k.replace('_', ' ')}" for k, v in (c.get("speedup") or {}).items())
        p(f"{name:42s} {_f(c['p50_ms'], '.3f', 8)} {_f(c['p90_ms'], '.3f', 8)} {_f(c['p99_ms'], '.3f', 8)} "
          f"{_f(c['max_ms'], '.3f', 8)} {_f(c.get('fps'), '.0f', 9)} {_f(c.get('rtf'), '.4f', 7)} "
          f"{_f(c.get('cpu_pct'), '.0f', 5)} {_f(c.get('peak_rss_mb'), '.0f', 7)}  {sp}")
    for name, cs in rep["cases"].items():
        if name.startswith("startup.cold_first_frame."):
            p(f"{name} milestones (ms since process spawn, median): {cs['milestones_ms']}")
    for name, c in rep["cases"].items():
        if name.startswith("e2e.stream_realtime."):
            p(f"{name}: {c['frames']} frames at {c['fps']:.2f} fps, dropped {c['dropped']}, underruns "
              f"{c['underruns']}, A/V sync {c['av_sync_ms']:.0f} ms; audio->frame p99 {c['audio_to_frame_p99_ms']} ms "
              f"(= p99 {c['p99_ms']} + {c['lookahead_ms']:g} look-ahead + {c['chunk_ms']:g} chunk); CPU {c['cpu_pct']:.0f} %")
    cvl = rep.get("cost_vs_length")
    if cvl:
        pts = "; ".join(f"{q['clip_s']:g} s: {q['ms']:.0f} ms ({q['ms_per_frame']:.2f} ms/frame)" for q in cvl["points"])
        p(f"cost vs clip length: {pts}")
        if cvl["fit"]:
            f = cvl["fit"]
            p(f"  linear fit: {f['fixed_ms']:.0f} ms + {f['ms_per_audio_s']:.0f} ms per audio second (r2 {f['r2']}); "
              f"ms/frame max/min {f['ms_per_frame_spread']}")
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
        p(f"  {k:28s} {_f(v, '.3f' if h['unit'] != 'MB' else '.0f', 10)} {h['unit']:3s} {tgt:>10s}  {status}{gap}  "
          f"[{h['source']}] {h['note'] or ''}")
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
        rows.append({"case": name, "old_p50_ms": o["p50_ms"], "new_p50_ms": c["p50_ms"],
                     "old_p99_ms": o.get("p99_ms"), "new_p99_ms": c.get("p99_ms"), "speedup": _r(sp, 3),
                     "verdict": verdict})
    heads = []
    for k, h in new.get("headline", {}).items():
        oh = old.get("headline", {}).get(k)
        if oh and oh.get("value") is not None and h.get("value") is not None:
            heads.append({"figure": k, "old": oh["value"], "new": h["value"]})
    return {"old_created": old.get("created"), "old_machine": (old.get("machine") or {}).get("cpu"),
            "noise": noise, "cases": rows, "only_old": sorted(set(oc) - set(nc)), "only_new": sorted(set(nc) - set(oc)),
            "headline": heads, "regressions": [r["case"] for r in rows if r["verdict"] == "slower"]}


def print_compare(cmp: dict, file=None) -> None:
    p = lambda *a: print(*a, file=file)
    p(f"\ncompare with the run of {cmp['old_created']} on {cmp['old_machine']} "
      f"(speed-up = old p50 / new p50; within ±{cmp['noise']:.0%} = same)")
    p(f"{'case':42s} {'old p50':>9s} {'new p50':>9s} {'old p99':>9s} {'new p99':>9s} {'speed-up':>9s}  verdict")
    for r in cmp["cases"]:
        p(f"{r['case']:42s} {r['old_p50_ms']:9.3f} {r['new_p50_ms']:9.3f} {_f(r['old_p99_ms'], '.3f', 9)} "
          f"{_f(r['new_p99_ms'], '.3f', 9)} {r['speedup']:8.2f}x  {r['verdict']}")
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
    stages = ["frontend.logmel.40ms", *[n for n in rep["cases"] if n.startswith(("renderer.", "encode."))],
              *[n for n in rep["cases"] if n.endswith(f".b{b}") and n.startswith("model.audio2motion.")],
              *[n for n in rep["cases"] if n.startswith("e2e.stream_frame.")]]
    box(ax[0, 1], stages, f"stages per frame, batch {b}, and the whole streamed frame")
    sr = [n for n in rep["cases"] if n.startswith("e2e.stream_realtime.")]
    if sr and smp.get(sr[0]):
        c = rep["cases"][sr[0]]
        x = np.sort(np.asarray(smp[sr[0]]))
        ax[1, 0].plot(x, np.arange(1, x.size + 1) / x.size)
        for q in ("p50_ms", "p99_ms"):
            ax[1, 0].axvline(c[q], ls="--", lw=0.8, color="gray")
            ax[1, 0].text(c[q], 0.05, q[:3], fontsize=8)
        ax[1, 0].set_xlabel(f"chunk arrival -> frame drawn, ms (+ look-ahead {c['lookahead_ms']:g} ms + "
                            f"chunk {c['chunk_ms']:g} ms)")
        ax[1, 0].set_ylabel("fraction of frames")
        ax[1, 0].set_title(f"live stream in real time: {c['frames']} frames, {c['fps']:.2f} fps, "
                           f"dropped {c['dropped']}", fontsize=10)
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
            a.plot(xx, cvl["fit"]["fixed_ms"] + cvl["fit"]["ms_per_audio_s"] * xx, "-", lw=1,
                   label=f"fit {cvl['fit']['fixed_ms']:.0f} + {cvl['fit']['ms_per_audio_s']:.0f} ms/s (r2 {cvl['fit']['r2']})")
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
    fig.suptitle(f"toonsync bench {rep['created']}: {m['cpu']}, {m['cores']} cores, GPU: "
                 f"{', '.join(m.get('gpus') or []) or 'none'}; runtime {rep['runtime']['backend']} "
                 f"{rep['runtime']['precision']}", fontsize=10)
    fig.tight_layout()
    with atomic_path(Path(path), suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)


# -- live streaming only (``toonsync bench --stream``) -------------------------------------------------------
def run_stream_bench(backend: str = "auto", chunk_ms: float = 20.0) -> dict:
    """Stream the demo speech through ``runtime.stream`` in real time (as a live microphone would deliver it)
    and report fps, audio->frame latency p50/p99, drops and A/V sync."""
    from toonsync.runtime.live import WavSource, stream
    from toonsync.runtime.prepare import load_face
    from toonsync.runtime.streaming import AudioModel

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
