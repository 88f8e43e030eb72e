"""``toonsync serve``: a kiosk web app — the browser's microphone drives the avatar live.

An ASGI app (Starlette + uvicorn) serves a small page (``runtime/web/``: HTML, JS, an AudioWorklet)
and a WebSocket endpoint ``/ws``. The page captures the microphone (or plays a WAV), sends 16 kHz
PCM over the WebSocket and draws the JPEG frames that come back; the protocol is documented in
``docs/kiosk.md`` and in :data:`FRAME_HEADER`.

* One ``AudioModel`` per server (shared; one intra-op thread), one ``Stream`` per WebSocket
  connection. The audio side (resampling, mel, inference, motion) runs in a thread pool, drawing and
  JPEG encoding in one worker process per core (``spawn``; the GIL would cap one process at about a
  core), so the event loop stays responsive. Embedding the app in a script therefore needs the usual
  ``if __name__ == "__main__":`` guard (or ``ServerConfig(draw_processes=0)``: draw in threads).
* Per-connection work is bounded: a bounded inbound queue, audio coalesced when behind, frames
  dropped (counted) beyond ``max_backlog`` so latency stays bounded; audio faster than real time
  (beyond ``max_audio_ahead_s``) is refused.
* Limits: ``max_streams`` concurrent streams (beyond: a ``busy`` message and close code 1013),
  message sizes (an ``error`` message; the connection survives), an origin check (cross-site pages
  cannot open the socket), a Host check (DNS rebinding), an idle timeout, a cap on bad messages.
* Uploaded photos are decoded in memory (format sniffed, 10 MB cap) and kept in memory under a
  random id; nothing the client sends is ever used as a file system path. The page and its scripts
  are read once from the package at start-up and served from memory.
* ``/healthz`` (JSON) and ``/metrics`` (Prometheus text: active streams, fps, latency histogram,
  drops, bad messages).

Importing this module needs only numpy: Starlette/uvicorn are imported when an app is built
(``pip install starlette uvicorn websockets``).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import ipaddress
import json
import logging
import os
import secrets
import socket
import struct
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .errors import ImageTooLarge, InputError, ToonsyncError, UnsupportedImageFormat
from .mel import SAMPLE_RATE, SAMPLES_PER_FRAME
from .streaming import AudioModel, Stream

log = logging.getLogger(__name__)

PROTOCOL = "toonsync-kiosk/1"
FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE
#: server -> client binary frame: this header, then the JPEG bytes.
#: magic b"TSF1", frame index, seq (binary audio messages received when the frame's audio was
#: complete), frames dropped so far, flags (bit 0: idle frame drawn from fed silence), timestamp
#: (seconds of *client* audio before the frame starts), server latency (ms, audio message arrival
#: -> JPEG ready), mouth_open (model output), lip_gap (inner-lip gap / mouth width, from landmarks).
FRAME_HEADER = struct.Struct("<4sIIIIffff")
FRAME_MAGIC = b"TSF1"
FLAG_IDLE = 1
AUDIO_FORMATS = {"s16": np.dtype("<i2"), "f32": np.dtype("<f4")}
EMOTION_CHOICES = ("auto", "neutral", "happy", "sad", "angry", "fearful", "disgusted")
BAD_MESSAGE_CODES = ("message_too_large", "bad_json", "unknown_type", "bad_config", "bad_audio", "too_fast",
                     "overloaded", "stopped")
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WEB_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
             "/app.js": ("app.js", "text/javascript; charset=utf-8"),
             "/pcm-worklet.js": ("pcm-worklet.js", "text/javascript; charset=utf-8"),
             "/style.css": ("style.css", "text/css; charset=utf-8")}
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
       "script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@dataclass
class ServerConfig:
    """Everything ``toonsync serve`` can tune (defaults suit a 2-core kiosk)."""

    face: Any = None  # photo path, .avatar path, Avatar or RGB array (the operator's, never the client's); None = bundled demo face
    size: int = 256
    jpeg_quality: int = 80
    backend: str = "auto"
    precision: str = "auto"
    emotion: str = "auto"
    seed: int = 0
    max_streams: int = 8
    max_backlog: int = 2  # frames ready beyond this are dropped (not drawn) so latency stays bounded
    idle_timeout_s: float = 60.0  # no message from the client for this long -> close
    idle_feed_after_s: float = 0.3  # no audio for this long -> feed silence (the avatar keeps breathing)
    max_text_bytes: int = 4096
    max_audio_bytes: int = 32768  # one binary message (1 s of s16 at 16 kHz)
    ws_max_size: int = 1 << 20  # protocol-level cap (uvicorn closes with 1009 beyond it)
    max_audio_ahead_s: float = 2.0  # audio may run this far ahead of real time
    max_bad_messages: int = 50  # then the connection is closed (1008)
    max_upload_bytes: int = 10 * 1024 * 1024
    max_avatars: int = 32  # uploaded avatars kept in memory (LRU)
    stats_every_s: float = 1.0
    queue_size: int = 256  # inbound messages per connection
    workers: int | None = None  # audio/inference threads (default: CPU count)
    draw_processes: int | None = None  # drawing processes (default: CPU count if >= 2, else 0 = threads)
    allowed_origins: tuple[str, ...] = ()  # besides same-origin; "*" allows any
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")  # Host header check; "*" allows any


# -- metrics -----------------------------------------------------------------------------------
class Metrics:
    """Counters, gauges and a latency histogram in Prometheus text format (updated on the event loop)."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self._t_mono = time.monotonic()
        self.streams_total = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.frames = 0
        self.dropped = 0
        self.underruns = 0
        self.audio_s = 0.0
        self.bad: collections.Counter[str] = collections.Counter()
        self.uploads: collections.Counter[str] = collections.Counter()
        self.buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        self.lat_sum = 0.0
        self.lat_count = 0
        self._window: collections.deque[tuple[float, int]] = collections.deque()  # (t, frames) batches

    def observe_frames(self, latencies_ms: list[float]) -> None:
        now = time.monotonic()
        self.frames += len(latencies_ms)
        if latencies_ms:
            self._window.append((now, len(latencies_ms)))
        for ms in latencies_ms:
            s = ms / 1e3
            self.lat_sum += s
            self.lat_count += 1
            for i, b in enumerate(LATENCY_BUCKETS_S):
                if s <= b:
                    self.buckets[i] += 1
                    break
            else:
                self.buckets[-1] += 1

    def fps(self, window_s: float = 5.0) -> float:
        now = time.monotonic()
        while self._window and self._window[0][0] < now - window_s:
            self._window.popleft()
        n = sum(k for _, k in self._window)
        return n / min(window_s, max(now - self._t_mono, 1e-3))

    def render(self, active: int, max_streams: int) -> str:
        fps = self.fps()
        out = []

        def metric(name, kind, help_, rows):
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in rows:
                lab = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
                out.append(f"{name}{lab} {value:.6g}" if isinstance(value, float) else f"{name}{lab} {value}")

        metric("toonsync_streams_active", "gauge", "WebSocket streams open now.", [({}, active)])
        metric("toonsync_streams_max", "gauge", "Configured maximum of concurrent streams.", [({}, max_streams)])
        metric("toonsync_streams_total", "counter", "Streams accepted since start.", [({}, self.streams_total)])
        metric("toonsync_streams_rejected_total", "counter", "Connections refused, by reason.",
               [({"reason": r}, self.rejected[r]) for r in ("busy", "origin", "host")])
        metric("toonsync_frames_total", "counter", "Frames drawn and sent.", [({}, self.frames)])
        metric("toonsync_frames_dropped_total", "counter", "Frames dropped (not drawn) to keep latency bounded.",
               [({}, self.dropped)])
        metric("toonsync_underruns_total", "counter", "Frames of silence fed because no audio arrived.",
               [({}, self.underruns)])
        metric("toonsync_audio_seconds_total", "counter", "Client audio consumed (16 kHz seconds).",
               [({}, float(self.audio_s))])
        metric("toonsync_fps", "gauge", "Frames sent per second over the last 5 s, all streams.", [({}, float(fps))])
        metric("toonsync_stream_fps", "gauge", "Mean frames per second per active stream (last 5 s).",
               [({}, float(fps / active) if active else 0.0)])
        out.append("# HELP toonsync_frame_latency_seconds Audio message arrival to JPEG frame ready.")
        out.append("# TYPE toonsync_frame_latency_seconds histogram")
        cum = 0
        for b, n in zip(LATENCY_BUCKETS_S, self.buckets):
            cum += n
            out.append(f'toonsync_frame_latency_seconds_bucket{{le="{b}"}} {cum}')
        out.append(f'toonsync_frame_latency_seconds_bucket{{le="+Inf"}} {self.lat_count}')
        out.append(f"toonsync_frame_latency_seconds_sum {self.lat_sum:.6g}")
        out.append(f"toonsync_frame_latency_seconds_count {self.lat_count}")
        metric("toonsync_bad_messages_total", "counter", "Client messages answered with an error, by code.",
               [({"code": c}, self.bad[c]) for c in sorted(set(BAD_MESSAGE_CODES) | set(self.bad))])
        metric("toonsync_avatar_uploads_total", "counter", "Photo uploads, by result.",
               [({"result": r}, self.uploads[r]) for r in ("ok", "rejected")])
        metric("toonsync_uptime_seconds", "gauge", "Seconds since the server started.",
               [({}, float(time.time() - self.t0))])
        return "\n".join(out) + "\n"


# -- avatars -----------------------------------------------------------------------------------
def mouth_box(neutral: np.ndarray) -> list[float]:
    """Canvas box (x0, y0, x1, y1 in 0..1) around the mouth with room for head motion."""
    m = np.asarray(neutral, np.float32)[48:68]
    (x0, y0), (x1, y1) = m.min(0), m.max(0)
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 1.6, (y1 - y0) * 2.2 + 0.04
    return [round(float(np.clip(v, 0, 1)), 4) for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)]


def lip_gap(landmarks: np.ndarray) -> float:
    """Inner-lip opening (62 <-> 66) over mouth width (48 <-> 54): ~0 closed, ~0.3 wide open."""
    L = landmarks
    return float(np.linalg.norm(L[66] - L[62]) / max(float(np.linalg.norm(L[54] - L[48])), 1e-6))


_warn_lock = threading.Lock()


def avatar_from_bytes(data: bytes, max_bytes: int = 10 * 1024 * 1024):
    """Uploaded image bytes -> (Avatar, [warning messages]) entirely in memory (never via a path).

    Size and format are checked from the bytes before decoding (``image_io.decode_image``); the pixel
    cap applies from the header. Raises ``ImageTooLarge`` / ``UnsupportedImageFormat`` / ``NoFaceError``.
    """
    from .image_io import decode_image
    from .prepare import avatar_from_image

    if len(data) > max_bytes:
        raise ImageTooLarge(f"the photo is {len(data) / 2**20:.1f} MiB; the cap is {max_bytes / 2**20:.0f} MiB")
    if not data:
        raise UnsupportedImageFormat("the upload is empty; send the photo's bytes (PNG, JPEG, BMP or WebP)")
    rgb = decode_image(data, "uploaded photo")
    with _warn_lock, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        avatar = avatar_from_image(rgb, "array")
    avatar.meta["source"] = "upload"
    return avatar, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@dataclass
class AvatarEntry:
    avatar: Any
    look: Look


class _AvatarStore:
    """Avatars by server-made random id (LRU-bounded); "default" is the operator's face."""

    def __init__(self, default: AvatarEntry, limit: int):
        self._d: collections.OrderedDict[str, AvatarEntry] = collections.OrderedDict(default=default)
        self.limit = max(1, int(limit))

    def add(self, entry: AvatarEntry) -> str:
        aid = secrets.token_urlsafe(12)
        self._d[aid] = entry
        while len(self._d) > self.limit + 1:  # never evict the default
            k = next(k for k in self._d if k != "default")
            del self._d[k]
        return aid

    def get(self, aid: Any) -> AvatarEntry | None:
        if not isinstance(aid, str) or aid not in self._d:
            return None
        if aid != "default":
            self._d.move_to_end(aid)
        return self._d[aid]


# -- drawing: a process pool (the GIL would cap one process at ~1 core) -------------------------
@dataclass(frozen=True)
class Look:
    """What draws an avatar's frames, in a form a worker process can rebuild (no photo pixels)."""

    key: str
    style: dict
    neutral: np.ndarray
    size: int


def make_look(avatar, size: int) -> Look:
    import hashlib

    style = avatar.style.to_dict()
    neutral = np.ascontiguousarray(avatar.neutral, np.float32)
    h = hashlib.sha1(json.dumps(style, sort_keys=True, default=str).encode() + neutral.tobytes() + str(size).encode())
    return Look(h.hexdigest()[:16], style, neutral, int(size))


_RENDERERS: collections.OrderedDict[str, Any] = collections.OrderedDict()
_RENDERERS_LOCK = threading.Lock()


def draw_batch(look: Look, quality: int, frames: list[tuple]) -> list[bytes]:
    """Draw + JPEG-encode frames ``(landmarks, pose, blink, emotion)``; runs in a worker process (or a
    thread). Renderers are cached per look; ``AvatarRenderer.draw`` is a pure function of its inputs."""
    import cv2

    from .avatar import AvatarRenderer, AvatarStyle

    with _RENDERERS_LOCK:
        r = _RENDERERS.get(look.key)
        if r is None:
            r = AvatarRenderer(AvatarStyle.from_dict(look.style), look.neutral, look.size)
            _RENDERERS[look.key] = r
            while len(_RENDERERS) > 16:
                _RENDERERS.popitem(last=False)
        else:
            _RENDERERS.move_to_end(look.key)
    q = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    out = []
    for landmarks, pose, blink, emotion in frames:
        img = r.draw(landmarks, pose, blink, emotion)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), q)
        out.append(jpg.tobytes())
    return out


def _worker_init(parent: int) -> None:
    """Drawing processes leave when their server dies, even by SIGKILL (they would block forever)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="toonsync-parent-watch", daemon=True).start()


class Drawer:
    """Draws frames in ``processes`` worker processes (spawned once), or in the thread pool when 0."""

    def __init__(self, processes: int, quality: int, threads: ThreadPoolExecutor):
        self.processes, self.quality, self.threads = int(processes), int(quality), threads
        self.pool = None
        self.broken = 0
        if self.processes > 0:
            self._start()

    def _start(self) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(self.processes, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                        initargs=(os.getpid(),))

    def warm(self, look: Look, timeout_s: float = 60.0) -> None:
        """Start every worker and build the default renderer there before the first client comes."""
        if self.pool is None:
            return
        frame = (look.neutral, np.zeros(3, np.float32), 0.0, None)
        futs = [self.pool.submit(draw_batch, look, self.quality, [frame]) for _ in range(self.processes)]
        for f in futs:
            f.result(timeout=timeout_s)

    async def draw(self, look: Look, frames: list[tuple]) -> list[bytes]:
        from concurrent.futures.process import BrokenProcessPool

        loop = asyncio.get_running_loop()
        if self.pool is not None:
            try:
                return await loop.run_in_executor(self.pool, draw_batch, look, self.quality, frames)
            except BrokenProcessPool:  # a worker died (killed, out of memory): restart the pool once per event
                self.broken += 1
                log.error("a drawing process died; restarting the pool (%d so far)", self.broken)
                old, self.pool = self.pool, None
                old.shutdown(wait=False, cancel_futures=True)
                if self.broken <= 5:
                    self._start()
        return await loop.run_in_executor(self.threads, draw_batch, look, self.quality, frames)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)  # joins the workers (they finish <= 1 batch)
            self.pool = None


# -- the server --------------------------------------------------------------------------------
class SharedAudioModel(AudioModel):
    """The ``AudioModel`` every stream of a server shares, with a single-threaded onnxruntime session.

    Many streams run in parallel, so intra-op threads buy nothing, and onnxruntime's default thread
    pool spin-waits after every tiny call: measured on the 2-core box, one real-time stream cost 0.63
    cores with the default session and 0.11 with one thread. (Newer ``runtime.backend`` versions make
    one non-spinning thread the default; then nothing is reloaded here.)
    """

    def __init__(self, backend: str = "auto", precision: str = "auto", threads: int = 1):
        from .backend import OrtBackend, load_model

        super().__init__(backend, precision)
        be = self.model.backend
        if threads and isinstance(be, OrtBackend) and getattr(be, "thread_settings", {}).get("intra_op") != threads:
            self.model = load_model("audio2motion", self.model.precision, backend, threads=threads)


def _web_dir() -> Path:
    return Path(__file__).resolve().parent / "web"


def _split_host(hostport: str) -> tuple[str, str]:
    """'example.com:80' / '[::1]:8000' -> (hostname lower-case, port or '')."""
    try:
        u = urlsplit("//" + hostport)
        return (u.hostname or "").lower(), str(u.port or "")
    except ValueError:
        return "", ""


class KioskServer:
    """Shared state of one server: model, default avatar, avatars, thread pool, metrics, limits."""

    def __init__(self, config: ServerConfig | None = None, *, model: AudioModel | None = None, avatar=None):
        from .prepare import load_face

        self.config = cfg = config or ServerConfig()
        if not 1 <= cfg.max_streams <= 1024:
            raise InputError(f"max_streams must be 1..1024, got {cfg.max_streams}")
        if not 64 <= cfg.size <= 1024 or cfg.size % 2:
            raise InputError(f"frame size must be even and 64..1024, got {cfg.size}")
        if cfg.emotion not in (None, "auto"):
            from .emotion import emotion_schedule

            emotion_schedule(cfg.emotion, 1)
        face = cfg.face
        if avatar is None:
            if face is None:
                from .assets import __file__ as _assets

                face = Path(_assets).parent / "demo_face.jpg"
            avatar = load_face(face)
        self.model = model or SharedAudioModel(cfg.backend, cfg.precision)
        self.avatars = _AvatarStore(AvatarEntry(avatar, make_look(avatar, cfg.size)), cfg.max_avatars)
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(max_workers=cfg.workers or max(2, os.cpu_count() or 2),
                                           thread_name_prefix="toonsync-serve")
        self.upload_lock = asyncio.Lock()
        self.uploads_waiting = 0
        self.active = 0
        web = _web_dir()
        self.files = {route: ((web / name).read_bytes(), mime) for route, (name, mime) in WEB_FILES.items()}
        from .assets import __file__ as _assets

        self.sample_wav = (Path(_assets).parent / "demo_speech.wav").read_bytes()
        self._previews: dict[str, bytes] = {}
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        procs = cfg.draw_processes if cfg.draw_processes is not None else (cores if cores >= 2 else 0)
        self.drawer = Drawer(procs, cfg.jpeg_quality, self.executor)
        try:
            self.drawer.warm(self.avatars.get("default").look)
        except BaseException:
            self.close()
            raise
        log.info("kiosk server ready: model %s (%s), max %d streams, %d px frames, drawing in %s",
                 self.model.model.path.name, self.model.model.backend.name, cfg.max_streams, cfg.size,
                 f"{procs} processes" if procs else "threads")

    def close(self) -> None:
        self.drawer.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- request checks ------------------------------------------------------------------------
    def host_ok(self, headers) -> bool:
        allowed = self.config.allowed_hosts
        if "*" in allowed:
            return True
        host, _ = _split_host(headers.get("host", ""))
        return host in {h.lower().strip("[]") for h in allowed}

    def origin_ok(self, headers) -> bool:
        """Same-origin, listed in ``allowed_origins``, or no Origin at all (not a browser)."""
        origin = headers.get("origin")
        if origin is None:
            return True
        allowed = self.config.allowed_origins
        if "*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}:
            return True
        try:
            u = urlsplit(origin)
        except ValueError:
            return False
        if u.scheme not in ("http", "https") or not u.hostname:
            return False
        default = "443" if u.scheme == "https" else "80"
        h_host, h_port = _split_host(headers.get("host", ""))
        return u.hostname.lower() == h_host and str(u.port or default) == (h_port or default)

    def preview_png(self, entry: AvatarEntry) -> bytes:
        import cv2

        key = entry.look.key
        if key not in self._previews:
            img = entry.avatar.renderer(self.config.size).draw(entry.avatar.neutral)
            ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            if len(self._previews) > 4 * self.config.max_avatars:
                self._previews.clear()
            self._previews[key] = png.tobytes()
        return self._previews[key]

    def info(self) -> dict:
        c = self.config
        return {"protocol": PROTOCOL, "sample_rate": SAMPLE_RATE, "formats": sorted(AUDIO_FORMATS), "fps": 25,
                "frame_format": "jpeg", "frame_header": FRAME_HEADER.format, "size": c.size,
                "lookahead_ms": round(self.model.lookahead * FRAME_S * 1e3, 1), "emotions": list(EMOTION_CHOICES),
                "max_streams": c.max_streams, "max_audio_bytes": c.max_audio_bytes,
                "max_text_bytes": c.max_text_bytes, "max_upload_bytes": c.max_upload_bytes,
                "idle_timeout_s": c.idle_timeout_s}


class _Closing(Exception):
    """The session decided to end (code, reason)."""


class Session:
    """One WebSocket connection: its own ``Stream``, a bounded inbound queue, a processing task.

    The receiving task validates messages and queues them; the processing task takes everything
    queued (audio coalesced when behind), runs the audio side in the thread pool (one job at a time
    per session: the stream's state is never touched concurrently), drops frames beyond
    ``max_backlog``, has the rest drawn by the ``Drawer`` and sends them in order.
    """

    def __init__(self, server: KioskServer, ws):
        self.server, self.ws, self.cfg = server, ws, server.config
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=self.cfg.queue_size)
        self.send_lock = asyncio.Lock()
        self.seq = 0  # binary messages received since the connection opened (the client counts the same)
        self.bad = 0
        self._err_times: collections.deque[float] = collections.deque(maxlen=10)
        self.fmt = "s16"
        self.rate = SAMPLE_RATE
        self.emotion = self.cfg.emotion
        self.stopped = False
        self._audio_t0: float | None = None
        self._audio_in_s = 0.0
        # owned by the processing side (the thread-pool job and the processing task, never both at once)
        entry = server.avatars.get("default")
        self.avatar_id, self.look = "default", entry.look
        self.stream = Stream(server.model, entry.avatar.neutral, None, seed=self.cfg.seed,
                                  emotion=None if self.emotion == "auto" else self.emotion)
        self._ready_seq: collections.deque[int] = collections.deque()  # seq that completed each ready frame
        self._ins: collections.deque[tuple[int, int]] = collections.deque()  # fed silence (stream pos, samples)
        self._ins_before = 0
        self._flushed = False
        self.frames = self.dropped = self.underruns = self.audio_samples = 0
        self._reported = (0, 0, 0)  # dropped, underruns, audio samples already added to the metrics
        self.latencies: collections.deque[float] = collections.deque(maxlen=250)
        self._sent_times: collections.deque[float] = collections.deque(maxlen=100)
        self._t_start = self._last_stats = time.monotonic()

    # -- sending -------------------------------------------------------------------------------
    async def send_json(self, doc: dict) -> None:
        async with self.send_lock:
            await self.ws.send_text(json.dumps(doc))

    async def send_bytes(self, data: bytes) -> None:
        async with self.send_lock:
            await self.ws.send_bytes(data)

    async def error(self, code: str, message: str) -> None:
        """Answer a bad message; the connection survives unless there were too many."""
        self.bad += 1
        self.server.metrics.bad[code] += 1
        log.debug("ws error %s: %s", code, message)
        now = time.monotonic()
        if len(self._err_times) < self._err_times.maxlen or now - self._err_times[0] > 1.0:  # <= 10 replies/s
            self._err_times.append(now)
            await self.send_json({"type": "error", "code": code, "message": message})
        if self.bad > self.cfg.max_bad_messages:
            await self.send_json({"type": "error", "code": "too_many_errors",
                                  "message": f"more than {self.cfg.max_bad_messages} bad messages; closing"})
            raise _Closing(1008, "too many bad messages")

    # -- main ----------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.ws.accept()
        self.server.metrics.streams_total += 1
        await self.send_json({"type": "hello", **self.server.info(), "avatar": "default", "emotion": self.emotion,
                              "mouth_box": mouth_box(self.look.neutral)})
        tasks = {asyncio.create_task(self._receive(), name="ws-receive"),
                 asyncio.create_task(self._process(), name="ws-process")}
        code, reason = 1000, "bye"
        done: set = set()
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            e = t.exception()
            if isinstance(e, _Closing):
                code, reason = e.args
            elif e is not None and (type(e).__name__.startswith(("WebSocketDisconnect", "ClientDisconnected",
                                                                  "ConnectionClosed")) or isinstance(e, OSError)):
                code = None  # the client went away
            elif e is not None:
                log.error("kiosk session failed: %s: %s", type(e).__name__, e, exc_info=e)
                code, reason = 1011, "internal error"
                try:
                    await self.send_json({"type": "error", "code": "internal", "message": "internal server error"})
                except Exception:  # noqa: BLE001 - the socket may be gone already
                    pass
        if code is not None:
            try:
                await self.ws.close(code=code, reason=reason)
            except Exception:  # noqa: BLE001 - already gone
                pass

    async def _receive(self) -> None:
        while True:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), timeout=self.cfg.idle_timeout_s)
            except asyncio.TimeoutError:
                await self.send_json({"type": "error", "code": "idle_timeout",
                                      "message": f"no message for {self.cfg.idle_timeout_s:g} s; closing"})
                raise _Closing(1000, "idle timeout") from None
            if msg["type"] == "websocket.disconnect":
                raise _Closing(None, "")
            if msg.get("bytes") is not None:
                await self._on_audio(msg["bytes"])
            elif msg.get("text") is not None:
                await self._on_text(msg["text"])

    async def _on_audio(self, data: bytes) -> None:
        self.seq += 1
        now = time.perf_counter()
        if len(data) > self.cfg.max_audio_bytes:
            return await self.error("message_too_large", f"audio message of {len(data)} bytes; the limit is "
                                    f"{self.cfg.max_audio_bytes} (send 20-100 ms chunks)")
        if self.stopped:
            return await self.error("stopped", 'this stream was stopped; send {"type": "start"} to begin again')
        dt = AUDIO_FORMATS[self.fmt]
        if not data or len(data) % dt.itemsize:
            return await self.error("bad_audio", f"{len(data)} bytes is not a whole, non-zero number of {self.fmt} "
                                    f"samples ({dt.itemsize} bytes each, little-endian)")
        pcm = np.frombuffer(data, dt)
        if self.fmt == "s16":
            x = pcm.astype(np.float32) / 32768.0
        else:
            x = pcm.astype(np.float32)
            if not np.isfinite(x).all() or float(np.abs(x).max()) > 4.0:
                return await self.error("bad_audio", "float32 samples must be finite and in [-1, 1] "
                                        "(is this int16 data? then send {\"type\": \"start\", \"format\": \"s16\"})")
        secs = x.size / self.rate
        if self._audio_t0 is None:
            self._audio_t0 = now
        if self._audio_in_s + secs > now - self._audio_t0 + self.cfg.max_audio_ahead_s:
            return await self.error("too_fast", f"audio is arriving faster than real time (more than "
                                    f"{self.cfg.max_audio_ahead_s:g} s ahead); chunk dropped")
        self._audio_in_s += secs
        try:
            self.queue.put_nowait(("audio", x, self.rate, now, self.seq))
        except asyncio.QueueFull:
            await self.error("overloaded", "the server is behind; audio chunk dropped")

    async def _on_text(self, text: str) -> None:
        if len(text) > self.cfg.max_text_bytes or len(text.encode()) > self.cfg.max_text_bytes:
            return await self.error("message_too_large", f"text message over {self.cfg.max_text_bytes} bytes")
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return await self.error("bad_json", 'text messages must be JSON objects like {"type": "start"}; '
                                    "audio goes in binary messages")
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            return await self.error("bad_json", 'a JSON object with a string "type" was expected')
        kind = doc["type"]
        if kind == "ping":
            t = doc.get("t")
            return await self.send_json({"type": "pong", "t": t if isinstance(t, (int, float)) else None,
                                         "server_time": time.time()})
        if kind not in ("start", "config", "stop"):
            return await self.error("unknown_type", f"unknown message type {kind[:40]!r}; accepted: start, config, "
                                    "stop, ping")
        if kind == "stop":
            self.stopped = True
            return await self.queue.put(("stop",))
        try:
            opts = self._check_options(doc, kind)
        except InputError as e:
            return await self.error("bad_config", str(e))
        if kind == "start":
            self.stopped = False
            self.fmt, self.rate = opts["format"], opts["sample_rate"]
            self._audio_t0, self._audio_in_s = None, 0.0
        await self.queue.put((kind, opts))

    def _check_options(self, doc: dict, kind: str) -> dict:
        unknown = set(doc) - {"type", "format", "sample_rate", "emotion", "avatar", "seed"}
        if unknown:
            raise InputError(f"unknown field(s) {sorted(str(k)[:30] for k in unknown)[:5]}; accepted: format, "
                             "sample_rate, emotion, avatar, seed")
        opts: dict[str, Any] = {}
        if kind == "start":
            fmt = doc.get("format", "s16")
            if fmt not in AUDIO_FORMATS:
                raise InputError(f"unknown audio format {str(fmt)[:20]!r}; accepted: s16 (int16 little-endian), "
                                 "f32 (float32 little-endian)")
            rate = doc.get("sample_rate", SAMPLE_RATE)
            if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 48000:
                raise InputError(f"sample_rate must be an integer 8000..48000 (16000 preferred), got {str(rate)[:20]}")
            seed = doc.get("seed", self.cfg.seed)
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
                raise InputError("seed must be an integer 0..2^31-1")
            opts.update(format=fmt, sample_rate=rate, seed=seed)
        elif {"format", "sample_rate", "seed"} & set(doc):
            raise InputError("format, sample_rate and seed can only be set by a start message")
        if "emotion" in doc or kind == "start":
            emo = doc.get("emotion", self.emotion)
            if not isinstance(emo, str) or len(emo) > 200:
                raise InputError(f"emotion must be a string; accepted: {', '.join(EMOTION_CHOICES)} or a schedule")
            if emo != "auto":
                from .emotion import emotion_schedule

                emotion_schedule(emo, 1)
            opts["emotion"] = emo
        if "avatar" in doc or kind == "start":
            aid = doc.get("avatar", self.avatar_id)
            if self.server.avatars.get(aid) is None:
                raise InputError("unknown avatar id (upload a photo to POST /api/avatar first, or use \"default\")")
            opts["avatar"] = aid
        return opts

    # -- processing ----------------------------------------------------------------------------
    async def _process(self) -> None:
        srv = self.server
        starving = False
        while True:
            idle_ok = not self.stopped and not self._flushed
            timeout = (FRAME_S if starving else self.cfg.idle_feed_after_s) if idle_ok else None
            try:
                items = [await asyncio.wait_for(self.queue.get(), timeout)]
                starving = False
                while len(items) < 128 and not self.queue.empty():
                    items.append(self.queue.get_nowait())
            except asyncio.TimeoutError:  # no audio: feed a frame of silence, the avatar keeps breathing
                starving = True
                items = [("silence",)]
            out = await self.loop.run_in_executor(srv.executor, self._job, items)
            m, (d0, u0, a0) = srv.metrics, self._reported
            m.dropped += self.dropped - d0
            m.underruns += self.underruns - u0
            m.audio_s += (self.audio_samples - a0) / SAMPLE_RATE
            self._reported = (self.dropped, self.underruns, self.audio_samples)
            await self._emit(out)
            if time.monotonic() - self._last_stats >= self.cfg.stats_every_s:
                self._last_stats = time.monotonic()
                await self.send_json({"type": "stats", **self.stats()})

    async def _emit(self, out: list) -> None:
        """Draw the frames of a job (grouped by look) and send everything in order."""
        m = self.server.metrics
        groups: list[tuple[Look, list[int]]] = []
        for i, o in enumerate(out):
            if isinstance(o, tuple):
                if not groups or groups[-1][0] is not o[1]:
                    groups.append((o[1], []))
                groups[-1][1].append(i)
        jpgs: dict[int, bytes] = {}
        for look, idx in groups:
            frames = [(out[i][0].landmarks, out[i][0].pose, out[i][0].blink, out[i][0].emotion) for i in idx]
            jpgs.update(zip(idx, await self.server.drawer.draw(look, frames)))
        lat: list[float] = []
        for i, o in enumerate(out):
            if isinstance(o, dict):
                if o.get("type") == "stopped":
                    o["stats"] = self.stats()
                await self.send_json(o)
                continue
            f, _, seq, ts, idle = o
            ms = (time.perf_counter() - f.accepted_at) * 1e3
            head = FRAME_HEADER.pack(FRAME_MAGIC, f.index, seq, self.dropped, FLAG_IDLE if idle else 0, ts, ms,
                                     float(f.mouth[0]), lip_gap(f.landmarks))
            await self.send_bytes(head + jpgs[i])
            self.frames += 1
            self.latencies.append(ms)
            lat.append(ms)
            self._sent_times.append(time.monotonic())
        m.observe_frames(lat)

    def stats(self) -> dict:
        lat = np.asarray(self.latencies, np.float64)
        now = time.monotonic()
        recent = sum(1 for t in self._sent_times if t > now - 2.0)
        return {"frames": self.frames, "dropped": self.dropped, "underruns": self.underruns,
                "fps": round(recent / min(2.0, max(now - self._t_start, 1e-3)), 2),
                "latency_p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
                "latency_p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
                "audio_s": round(self.stream.samples_in / SAMPLE_RATE, 3), "queue": self.queue.qsize(),
                "active_streams": self.server.active}

    def _job(self, items: list) -> list:
        """Thread pool, one job per session at a time: apply the queued messages to the stream; returns
        dicts to send and ``(Frame, Look, seq, client_time, idle)`` tuples to draw, in order."""
        out: list = []
        pending = False  # audio accepted whose frames were not collected yet
        for it in items:
            kind = it[0]
            try:
                if kind in ("audio", "silence"):
                    if self._flushed:
                        continue
                    n0 = self.stream.samples_in
                    if kind == "audio":
                        _, x, rate, arrived, seq = it
                        self.stream.accept_audio(x, rate, arrived_at=arrived)
                        self.audio_samples += self.stream.samples_in - n0
                    else:
                        seq = self.seq
                        self._ins.append((n0, SAMPLES_PER_FRAME))
                        self.stream.accept_audio(np.zeros(SAMPLES_PER_FRAME, np.float32), SAMPLE_RATE)
                        self.underruns += 1
                    self._ready_seq.extend([seq] * (self.stream.ready() - len(self._ready_seq)))
                    pending = True
                    continue
                if pending:
                    self._collect(out, final=False)
                    pending = False
                if kind == "stop":
                    if not self._flushed:
                        self.stream.flush()
                        self._flushed = True
                        self._ready_seq.extend([self.seq] * (self.stream.ready() - len(self._ready_seq)))
                        self._collect(out, final=True)
                    out.append({"type": "stopped"})
                elif kind in ("start", "config"):
                    self._configure(kind, it[1], out)
            except InputError as e:  # e.g. audio the resampler refuses: answer, keep the session
                out.append({"type": "error", "code": "bad_audio" if kind == "audio" else "bad_config",
                            "message": str(e)})
        if pending:
            self._collect(out, final=False)
        return out

    def _collect(self, out: list, final: bool) -> None:
        """Ready frames -> ``out``; beyond ``max_backlog`` the oldest are dropped (motion state stays exact)."""
        st = self.stream
        while st.ready():
            seq = self._ready_seq.popleft() if self._ready_seq else self.seq
            if not final and st.ready() > self.cfg.max_backlog:
                f = st.skip()
                self._client_time(f.index)
                self.dropped += 1
                continue
            f = st.step(draw=False)
            ts, idle = self._client_time(f.index)
            out.append((f, self.look, seq, ts, idle))

    def _configure(self, kind: str, opts: dict, out: list) -> None:
        aid = opts.get("avatar", self.avatar_id)
        entry = self.server.avatars.get(aid)
        if entry is None:  # evicted meanwhile
            out.append({"type": "error", "code": "bad_config", "message": "that avatar is no longer available"})
            return
        if kind == "start":
            self._ready_seq.clear()
            self.stream = Stream(self.server.model, entry.avatar.neutral, None, seed=opts["seed"])
            self._ins.clear()
            self._ins_before = 0
            self._flushed = False
        elif aid != self.avatar_id:  # live avatar swap: the audio state carries on
            self.stream.neutral = np.asarray(entry.avatar.neutral, np.float32)
        self.avatar_id, self.look = aid, entry.look
        if "emotion" in opts:
            self.emotion = opts["emotion"]
            self.stream.set_emotion(None if self.emotion == "auto" else self.emotion)
        out.append({"type": "ready" if kind == "start" else "configured", "avatar": aid, "emotion": self.emotion,
                    "format": self.fmt, "sample_rate": self.rate, "mouth_box": mouth_box(entry.avatar.neutral)})

    def _client_time(self, k: int) -> tuple[float, bool]:
        """Frame k -> (seconds of client audio before it, whether it lies in fed silence)."""
        pos = k * SAMPLES_PER_FRAME
        while self._ins and self._ins[0][0] + self._ins[0][1] <= pos:
            self._ins_before += self._ins.popleft()[1]
        idle = bool(self._ins) and self._ins[0][0] <= pos
        cpos = pos - self._ins_before - ((pos - self._ins[0][0]) if idle else 0)
        return max(cpos, 0) / SAMPLE_RATE, idle


# -- the ASGI app ------------------------------------------------------------------------------
def create_app(config: ServerConfig | None = None, *, model: AudioModel | None = None, avatar=None, server=None):
    """The Starlette app; ``app.state.kiosk`` is the ``KioskServer`` (models loaded once, here)."""
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, PlainTextResponse, Response
        from starlette.routing import Route, WebSocketRoute
        from starlette.websockets import WebSocket
    except ImportError as e:
        raise ToonsyncError(f"the kiosk server needs `pip install starlette uvicorn websockets` ({e})") from None
    import contextlib

    srv = server or KioskServer(config, model=model, avatar=avatar)
    cfg = srv.config
    sec_headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                   "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

    def static(route: str):
        body, mime = srv.files[route]

        async def handler(request: Request) -> Response:
            return Response(body, media_type=mime, headers=sec_headers)
        return handler

    async def sample_wav(request: Request) -> Response:
        return Response(srv.sample_wav, media_type="audio/wav", headers=sec_headers)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "protocol": PROTOCOL, "active_streams": srv.active,
                             "max_streams": cfg.max_streams, "model": srv.model.model.path.name,
                             "backend": srv.model.model.backend.name,
                             "uptime_s": round(time.time() - srv.metrics.t0, 1)})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(srv.metrics.render(srv.active, cfg.max_streams),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    async def info(request: Request) -> Response:
        return JSONResponse(srv.info())

    def err(status: int, code: str, message: str) -> Response:
        return JSONResponse({"error": code, "message": message}, status_code=status)

    async def upload(request: Request) -> Response:
        if not srv.origin_ok(request.headers):
            srv.metrics.uploads["rejected"] += 1
            return err(403, "origin", "cross-origin uploads are not allowed")
        limit = cfg.max_upload_bytes
        cl = request.headers.get("content-length")
        if cl is not None and (not cl.isdigit() or int(cl) > limit):
            srv.metrics.uploads["rejected"] += 1
            return err(413, "too_large", f"photos up to {limit / 2**20:.3g} MB are accepted")
        if srv.uploads_waiting >= 4:  # bounds the memory held by uploads too (4 x 10 MB)
            srv.metrics.uploads["rejected"] += 1
            return err(503, "busy", "too many photos are being processed; try again in a moment")
        srv.uploads_waiting += 1
        try:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    srv.metrics.uploads["rejected"] += 1
                    return err(413, "too_large", f"photos up to {limit / 2**20:.3g} MB are accepted")
            async with srv.upload_lock:  # face detection is ~1 s of CPU: one at a time
                av, warns = await asyncio.get_running_loop().run_in_executor(
                    srv.executor, avatar_from_bytes, bytes(body), limit)
        except ImageTooLarge as e:
            srv.metrics.uploads["rejected"] += 1
            return err(413, "too_large", str(e))
        except UnsupportedImageFormat as e:
            srv.metrics.uploads["rejected"] += 1
            return err(415, "unsupported_format", str(e))
        except InputError as e:  # NoFaceError and friends
            srv.metrics.uploads["rejected"] += 1
            return err(422, type(e).__name__, str(e))
        finally:
            srv.uploads_waiting -= 1
        entry = AvatarEntry(av, make_look(av, cfg.size))
        aid = srv.avatars.add(entry)
        srv.metrics.uploads["ok"] += 1
        preview = await asyncio.get_running_loop().run_in_executor(srv.executor, srv.preview_png, entry)
        log.info("new avatar %s from an upload of %d bytes", aid[:6], len(body))
        return JSONResponse({"avatar": aid, "preview": "data:image/png;base64," + base64.b64encode(preview).decode(),
                             "warnings": warns, "mouth_box": mouth_box(av.neutral),
                             "fallback": av.meta.get("fallback"), "yaw_deg": av.meta.get("yaw_deg")})

    async def preview(request: Request) -> Response:
        entry = srv.avatars.get(request.path_params["aid"])
        if entry is None:
            return err(404, "not_found", "unknown avatar id")
        png = await asyncio.get_running_loop().run_in_executor(srv.executor, srv.preview_png, entry)
        return Response(png, media_type="image/png", headers=sec_headers)

    async def ws_endpoint(ws: WebSocket) -> None:
        if not srv.origin_ok(ws.headers):
            srv.metrics.rejected["origin"] += 1
            log.warning("websocket refused: origin %r not allowed", ws.headers.get("origin"))
            await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        if srv.active >= cfg.max_streams:
            srv.metrics.rejected["busy"] += 1
            await ws.accept()
            await ws.send_text(json.dumps({"type": "busy", "max_streams": cfg.max_streams,
                                           "message": f"all {cfg.max_streams} avatars are busy; please try again "
                                                      "in a moment"}))
            await ws.close(code=1013, reason="busy")
            return
        srv.active += 1
        try:
            await Session(srv, ws).run()
        finally:
            srv.active -= 1

    @contextlib.asynccontextmanager
    async def lifespan(app):
        srv.upload_lock = asyncio.Lock()
        yield
        srv.close()

    routes = [Route(r, static(r)) for r in WEB_FILES] + [
        Route("/sample.wav", sample_wav), Route("/healthz", healthz), Route("/metrics", metrics),
        Route("/api/info", info), Route("/api/avatar", upload, methods=["POST"]),
        Route("/api/avatar/{aid}/preview.png", preview), WebSocketRoute("/ws", ws_endpoint)]
    inner = Starlette(routes=routes, lifespan=lifespan)
    inner.state.kiosk = srv
    return _HostGuard(inner, srv)


class _HostGuard:
    """ASGI wrapper refusing requests whose Host header is not allowed (DNS-rebinding defence)."""

    def __init__(self, app, srv: KioskServer):
        self.app, self.srv = app, srv
        self.state = app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if not self.srv.host_ok(headers):
                self.srv.metrics.rejected["host"] += 1
                if scope["type"] == "http":
                    body = b"Invalid host header\n"
                    await send({"type": "http.response.start", "status": 400,
                                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
                    await send({"type": "http.response.body", "body": body})
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)


# -- running it --------------------------------------------------------------------------------
def _uvicorn_config(app, cfg: ServerConfig, host: str, port: int, access_log: bool = False):
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, ws_max_size=cfg.ws_max_size, ws_ping_interval=20.0,
                          ws_ping_timeout=20.0, log_config=None, access_log=access_log, lifespan="on",
                          timeout_graceful_shutdown=3, limit_concurrency=cfg.max_streams + 64,
                          ws_per_message_deflate=False)  # JPEG frames do not compress: deflate only burns CPU


class BackgroundServer:
    """A real uvicorn server in a thread on an OS-chosen free port of 127.0.0.1 (tests, embedding)."""

    def __init__(self, app, host: str = "127.0.0.1", start_timeout_s: float = 30.0):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        srv = app.state.kiosk
        self.server = uvicorn.Server(_uvicorn_config(app, srv.config, host, self.port))
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="toonsync-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the kiosk server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``toonsync`` sub-commands (cli.py wires ``cmd_serve``)."""
    s = subparsers.add_parser("serve", help="kiosk web app: the browser's microphone drives the avatar live",
                              description="Serve the kiosk page and its WebSocket (see docs/kiosk.md).")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    face = s.add_mutually_exclusive_group()
    face.add_argument("--face", help="face photo for the default avatar (default: the bundled demo face)")
    face.add_argument("--avatar", help="prepared .avatar bundle for the default avatar")
    s.add_argument("--max-streams", type=int, default=8, help="concurrent streams before 'busy' (default 8)")
    s.add_argument("--size", type=int, default=256, help="frame size in pixels (default 256)")
    s.add_argument("--jpeg-quality", type=int, default=80, help="JPEG quality of the frames (default 80)")
    s.add_argument("--emotion", default="auto", help="default emotion: auto, a name, or a schedule")
    s.add_argument("--idle-timeout", type=float, default=60.0, help="close a socket silent for this long (s)")
    s.add_argument("--max-backlog", type=int, default=2, help="frames allowed to queue before dropping (default 2)")
    s.add_argument("--workers", type=int, help="inference threads (default: CPU count)")
    s.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="also accept pages from this origin (e.g. https://kiosk.example); repeatable")
    s.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                   help="also accept this Host name (needed when serving beyond loopback); repeatable; '*' = any")
    s.add_argument("--access-log", action="store_true", help="log every HTTP request")
    s.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    s.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8", "fp16"])
    return s


def config_from_args(a: argparse.Namespace) -> ServerConfig:
    hosts = ["127.0.0.1", "localhost", "::1"] + list(a.allow_host)
    if not _is_loopback(a.host) and a.host not in ("0.0.0.0", "::"):
        hosts.append(a.host)
    if a.host in ("0.0.0.0", "::") and not a.allow_host:
        log.warning("listening on all interfaces: add --allow-host NAME for each name clients use "
                    "(only loopback names are accepted now)")
    if not 1 <= a.port <= 65535:
        raise InputError(f"--port must be 1..65535, got {a.port}")
    if not 1 <= a.jpeg_quality <= 100:
        raise InputError(f"--jpeg-quality must be 1..100, got {a.jpeg_quality}")
    return ServerConfig(face=a.avatar or a.face, size=a.size, jpeg_quality=a.jpeg_quality, backend=a.backend,
                        precision=a.precision, emotion=a.emotion, max_streams=a.max_streams,
                        max_backlog=max(0, a.max_backlog), idle_timeout_s=a.idle_timeout, workers=a.workers,
                        allowed_origins=tuple(a.allow_origin), allowed_hosts=tuple(hosts))


def cmd_serve(a: argparse.Namespace) -> int:
    """``toonsync serve``: build the app (models load once) and run uvicorn until Ctrl-C."""
    try:
        import uvicorn
    except ImportError as e:
        raise ToonsyncError(f"`toonsync serve` needs `pip install starlette uvicorn websockets` ({e})") from None
    cfg = config_from_args(a)
    app = create_app(cfg)
    if not _is_loopback(a.host):
        log.warning("serving on %s: browsers only allow the microphone on https:// or localhost pages", a.host)
    shown = f"[{a.host}]" if ":" in a.host else a.host
    log.info("kiosk: open http://%s:%d/  (health /healthz, metrics /metrics; Ctrl-C stops)", shown, a.port)
    server = uvicorn.Server(_uvicorn_config(app, cfg, a.host, a.port, a.access_log))
    try:
        server.run()
    finally:
        app.state.kiosk.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m toonsync.runtime.server [serve options]`` (the same options as ``toonsync serve``)."""
    import sys

    p = argparse.ArgumentParser(prog="python -m toonsync.runtime.server")
    p.add_argument("--debug", action="store_true")
    sub = p.add_subparsers(dest="cmd")
    add_serve_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "serve":
        argv = ["serve"] + argv if not argv or argv[0] != "--debug" else ["--debug", "serve"] + argv[1:]
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.INFO, format="%(message)s")
    try:
        return cmd_serve(a)
    except ToonsyncError as e:
        print(f"toonsync serve: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
