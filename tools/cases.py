"""The benchmark case registry shared by ``toonsync bench`` and the pytest-benchmark suite: ``case_specs``
names every case, ``build_case`` turns one into a callable over a ``BenchContext`` (shared inputs, loaded models)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toonsync.runtime.assets import DEMO_FACE, DEMO_SPEECH, asset
from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.backend import LoadedModel, load_model, model_dir
from toonsync.runtime.mel import MELS_PER_FRAME, SAMPLE_RATE, SAMPLES_PER_FRAME, MelStream, log_mel
from toonsync.runtime.motion import decoder_inputs

from .cold import cold_start
from .measure import FRAME_MS, _quiet, _secs

log = logging.getLogger(__name__)


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
        self._renderers: dict[int, Any] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="toonsync-bench-"))
        self._models: dict[tuple, LoadedModel] = {}
        self._audio_models: dict[tuple, Any] = {}
        self._animator = None
        self._motion = None
        self._closers: list[Callable[[], None]] = []

    def renderer_at(self, size: int):
        """The demo avatar's procedural renderer at ``size`` (one per size)."""
        if size == self.size:
            return self.renderer
        if size not in self._renderers:
            self._renderers[size] = self.avatar.renderer(size)
        return self._renderers[size]

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
    """One benchmark case: its stable name, stage, what to build, rounds, warm-up and parameters."""

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
        return {
            "stage": self.stage,
            "backend": self.backend,
            "precision": self.precision,
            "batch": self.batch,
            "frames_per_call": self.frames_per_call,
            **self.params,
        }


def case_specs(
    backends: Iterable[str] = ("cpu",),
    precisions: Iterable[str] = ("fp32", "int8"),
    batch: int = 16,
    seconds: float = 10.0,
    frames: int = 200,
    size: int = 256,
    quick: bool = False,
    cold: bool = True,
    streams: Iterable[int] = (),
) -> list[CaseSpec]:
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
                specs.append(
                    CaseSpec(
                        f"model.audio2motion.{be}.{prec}.b{b}",
                        "model",
                        "a2m",
                        frames if b == 1 else brounds,
                        warm,
                        frames_per_call=b,
                        audio_ms_per_call=FRAME_MS * b,
                        backend=be,
                        precision=prec,
                        batch=b,
                        params={"model": "audio2motion"},
                    )
                )
        specs.append(
            CaseSpec(
                f"model.audio2motion_pcm.{be}.fp32.b1",
                "model",
                "a2m_pcm",
                frames,
                warm,
                backend=be,
                precision="fp32",
                params={"model": "audio2motion_pcm"},
            )
        )
        if (model_dir() / "motion.onnx.json").is_file():  # the transformer motion decoder, when it ships
            for prec in sorted({"fp32", "fp16" if be in ("cuda", "tensorrt") else "fp32"}):
                specs.append(
                    CaseSpec(
                        f"model.motion.{be}.{prec}.b1",
                        "model",
                        "motion",
                        frames,
                        warm,
                        backend=be,
                        precision=prec,
                        params={"model": "motion"},
                    )
                )
    specs += [
        *[
            CaseSpec(f"renderer.draw.{s}", "renderer", "draw", frames, warm, params={"size": s})
            for s in sorted({size, 256, 512})
        ],
        *[
            CaseSpec(f"renderer.onnx.{s}", "renderer", "draw", frames, warm, params={"size": s, "engine": "onnx"})
            for s in sorted({size, 512})
        ],
        CaseSpec(f"encode.h264.{size}", "encode", "encode", frames, max(warm, 30), params={"size": size}),
        *[
            CaseSpec(f"e2e.stream_frame.{s}", "e2e", "stream_frame", frames, max(warm, 5), params={"size": s})
            for s in sorted({size, 256, 512})
        ],
        CaseSpec(
            f"e2e.render_offline.{_secs(seconds)}",
            "e2e",
            "render",
            few,
            0 if quick else 1,
            frames_per_call=n_frames,
            audio_ms_per_call=seconds * 1e3,
            params={"clip_s": seconds, "size": size},
        ),
        CaseSpec(
            "startup.face_prepare", "startup", "face", 2 if quick else 5, 1, frames_per_call=0, audio_ms_per_call=None
        ),
    ]
    for be in backends:
        for prec in precisions:
            specs.append(
                CaseSpec(
                    f"startup.model_load.{be}.{prec}",
                    "startup",
                    "model_load",
                    2 if quick else 5,
                    1,
                    frames_per_call=0,
                    audio_ms_per_call=None,
                    backend=be,
                    precision=prec,
                    params={"model": "audio2motion"},
                )
            )
    for n in sorted(set(streams)):
        for mode in ("sequential", "batched"):
            specs.append(
                CaseSpec(
                    f"multistream.{mode}.n{n}",
                    "multistream",
                    "multistream",
                    brounds if n > 4 else frames,
                    warm,
                    frames_per_call=n,
                    params={"streams": n, "mode": mode},
                )
            )
    if cold:  # a photo (dlib's predictor loads on first use) and a prepared .avatar bundle (the kiosk case)
        for face in ("photo", "avatar"):
            specs.append(
                CaseSpec(
                    f"startup.cold_first_frame.{face}",
                    "startup",
                    "cold",
                    1 if quick else 3,
                    0,
                    frames_per_call=0,
                    audio_ms_per_call=None,
                    params={"face": face, "render": True},
                )
            )
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
    state = {
        "mel_ctx": z((batch, 80, kctx), np.float32),
        "h": z((1, batch, hidden), np.float32),
        "c": z((1, batch, hidden), np.float32),
    }
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
    out = a2m.run(
        {
            "mel": ctx.mel_frames.reshape(1, -1, ctx.mel_frames.shape[-1]),
            "mel_ctx": z((1, 80, acfg["kernel"] - 1), np.float32),
            "h": z((1, 1, acfg["hidden"]), np.float32),
            "c": z((1, 1, acfg["hidden"]), np.float32),
        }
    )
    names = set(lm.card.get("inputs", {}))
    feeds = [
        {k: v for k, v in f.items() if k in names}
        for f in decoder_inputs(out["embedding"].shape[1], out["embedding"][0], out["mouth"][0])
    ]
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
        r = ctx.avatar.renderer(spec.params["size"], engine) if engine else ctx.renderer_at(spec.params["size"])
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

        s = Stream(ctx.audio_model(), ctx.avatar.neutral, ctx.renderer_at(spec.params["size"]), seed=0)
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
