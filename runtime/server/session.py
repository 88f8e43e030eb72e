"""One WebSocket connection of the kiosk: its ``Stream``, a bounded inbound queue, its processing task."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..mel import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..streaming import Stream
from .avatars import lip_gap, mouth_box
from .config import AUDIO_FORMATS, EMOTION_CHOICES, FLAG_IDLE, FRAME_HEADER, FRAME_MAGIC, FRAME_S
from .draw_pool import Look

if TYPE_CHECKING:
    from .app import KioskServer


log = logging.getLogger(__name__)


def _finite(doc: Any) -> Any:
    """``doc`` with every non-finite float (an overflowing ``1e999``, a NaN statistic) as null: valid JSON."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_finite(v) for v in doc]
    return doc


def _no_constants(name: str) -> None:
    """``json.loads`` hook: NaN, Infinity and -Infinity are not JSON (browsers cannot parse them back)."""
    raise ValueError(f"{name} is not JSON")


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
        self.stream = Stream(
            server.model,
            entry.avatar.neutral,
            None,
            seed=self.cfg.seed,
            emotion=None if self.emotion == "auto" else self.emotion,
            mouth_gain=self.cfg.mouth_gain,
            head_motion=self.cfg.head_motion,
        )
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
            await self.ws.send_text(json.dumps(_finite(doc), allow_nan=False))

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
            await self.send_json(
                {
                    "type": "error",
                    "code": "too_many_errors",
                    "message": f"more than {self.cfg.max_bad_messages} bad messages; closing",
                }
            )
            raise _Closing(1008, "too many bad messages")

    # -- main ----------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.ws.accept()
        self.server.metrics.streams_total += 1
        await self.send_json(
            {
                "type": "hello",
                **self.server.info(),
                "avatar": "default",
                "emotion": self.emotion,
                "mouth_box": mouth_box(self.look.neutral),
            }
        )
        tasks = {
            asyncio.create_task(self._receive(), name="ws-receive"),
            asyncio.create_task(self._process(), name="ws-process"),
        }
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
            elif e is not None and (
                type(e).__name__.startswith(("WebSocketDisconnect", "ClientDisconnected", "ConnectionClosed"))
                or isinstance(e, OSError)
            ):
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
                await self.send_json(
                    {
                        "type": "error",
                        "code": "idle_timeout",
                        "message": f"no message for {self.cfg.idle_timeout_s:g} s; closing",
                    }
                )
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
            return await self.error(
                "message_too_large",
                f"audio message of {len(data)} bytes; the limit is {self.cfg.max_audio_bytes} (send 20-100 ms chunks)",
            )
        if self.stopped:
            return await self.error("stopped", 'this stream was stopped; send {"type": "start"} to begin again')
        dt = AUDIO_FORMATS[self.fmt]
        if not data or len(data) % dt.itemsize:
            return await self.error(
                "bad_audio",
                f"{len(data)} bytes is not a whole, non-zero number of {self.fmt} "
                f"samples ({dt.itemsize} bytes each, little-endian)",
            )
        pcm = np.frombuffer(data, dt)
        if self.fmt == "s16":
            x = pcm.astype(np.float32) / 32768.0
        else:
            x = pcm.astype(np.float32)
            if not np.isfinite(x).all() or float(np.abs(x).max()) > 4.0:
                return await self.error(
                    "bad_audio",
                    "float32 samples must be finite and in [-1, 1] "
                    '(is this int16 data? then send {"type": "start", "format": "s16"})',
                )
        secs = x.size / self.rate
        if self._audio_t0 is None:
            self._audio_t0 = now
        if self._audio_in_s + secs > now - self._audio_t0 + self.cfg.max_audio_ahead_s:
            return await self.error(
                "too_fast",
                f"audio is arriving faster than real time (more than "
                f"{self.cfg.max_audio_ahead_s:g} s ahead); chunk dropped",
            )
        self._audio_in_s += secs
        try:
            self.queue.put_nowait(("audio", x, self.rate, now, self.seq))
        except asyncio.QueueFull:
            await self.error("overloaded", "the server is behind; audio chunk dropped")

    async def _on_text(self, text: str) -> None:
        if len(text) > self.cfg.max_text_bytes or len(text.encode()) > self.cfg.max_text_bytes:
            return await self.error("message_too_large", f"text message over {self.cfg.max_text_bytes} bytes")
        try:
            doc = json.loads(text, parse_constant=_no_constants)
        except (ValueError, RecursionError):  # not JSON, or NaN / Infinity, or nested too deep
            return await self.error(
                "bad_json", 'text messages must be JSON objects like {"type": "start"}; audio goes in binary messages'
            )
        if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
            return await self.error("bad_json", 'a JSON object with a string "type" was expected')
        kind = doc["type"]
        if kind == "ping":
            t = doc.get("t")
            return await self.send_json(
                {"type": "pong", "t": t if isinstance(t, (int, float)) else None, "server_time": time.time()}
            )
        if kind not in ("start", "config", "stop"):
            return await self.error(
                "unknown_type", f"unknown message type {kind[:40]!r}; accepted: start, config, stop, ping"
            )
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
            raise InputError(
                f"unknown field(s) {sorted(str(k)[:30] for k in unknown)[:5]}; accepted: format, "
                "sample_rate, emotion, avatar, seed"
            )
        opts: dict[str, Any] = {}
        if kind == "start":
            fmt = doc.get("format", "s16")
            if fmt not in AUDIO_FORMATS:
                raise InputError(
                    f"unknown audio format {str(fmt)[:20]!r}; accepted: s16 (int16 little-endian), "
                    "f32 (float32 little-endian)"
                )
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
                from ..emotion import emotion_schedule

                emotion_schedule(emo, 1)
            opts["emotion"] = emo
        if "avatar" in doc or kind == "start":
            aid = doc.get("avatar", self.avatar_id)
            if self.server.avatars.get(aid) is None:
                raise InputError('unknown avatar id (upload a photo to POST /api/avatar first, or use "default")')
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
            head = FRAME_HEADER.pack(
                FRAME_MAGIC,
                f.index,
                seq,
                self.dropped,
                FLAG_IDLE if idle else 0,
                ts,
                ms,
                float(f.mouth[0]),
                lip_gap(f.landmarks),
            )
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
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "underruns": self.underruns,
            "fps": round(recent / min(2.0, max(now - self._t_start, 1e-3)), 2),
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
            "latency_p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
            "audio_s": round(self.stream.samples_in / SAMPLE_RATE, 3),
            "queue": self.queue.qsize(),
            "active_streams": self.server.active,
        }

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
                out.append(
                    {
                        "type": "error",
                        "code": "bad_audio" if kind == "audio" else "bad_config",
                        "message": e.for_kiosk(),
                    }
                )
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
            self.stream = Stream(
                self.server.model,
                entry.avatar.neutral,
                None,
                seed=opts["seed"],
                mouth_gain=self.cfg.mouth_gain,
                head_motion=self.cfg.head_motion,
            )
            self._ins.clear()
            self._ins_before = 0
            self._flushed = False
        elif aid != self.avatar_id:  # live avatar swap: the audio state carries on
            self.stream.neutral = np.asarray(entry.avatar.neutral, np.float32)
        self.avatar_id, self.look = aid, entry.look
        if "emotion" in opts:
            self.emotion = opts["emotion"]
            self.stream.set_emotion(None if self.emotion == "auto" else self.emotion)
        out.append(
            {
                "type": "ready" if kind == "start" else "configured",
                "avatar": aid,
                "emotion": self.emotion,
                "format": self.fmt,
                "sample_rate": self.rate,
                "mouth_box": mouth_box(entry.avatar.neutral),
            }
        )

    def _client_time(self, k: int) -> tuple[float, bool]:
        """Frame k -> (seconds of client audio before it, whether it lies in fed silence)."""
        pos = k * SAMPLES_PER_FRAME
        while self._ins and self._ins[0][0] + self._ins[0][1] <= pos:
            self._ins_before += self._ins.popleft()[1]
        idle = bool(self._ins) and self._ins[0][0] <= pos
        cpos = pos - self._ins_before - ((pos - self._ins[0][0]) if idle else 0)
        return max(cpos, 0) / SAMPLE_RATE, idle
