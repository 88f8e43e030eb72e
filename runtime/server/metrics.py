"""Prometheus-style counters and the latency histogram of a kiosk server (``/metrics``, ``/healthz``)."""

from __future__ import annotations

import collections
import logging
import time

from .config import BAD_MESSAGE_CODES, LATENCY_BUCKETS_S

log = logging.getLogger(__name__)


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
        metric(
            "toonsync_streams_rejected_total",
            "counter",
            "Connections refused, by reason.",
            [({"reason": r}, self.rejected[r]) for r in ("busy", "origin", "host")],
        )
        metric("toonsync_frames_total", "counter", "Frames drawn and sent.", [({}, self.frames)])
        metric(
            "toonsync_frames_dropped_total",
            "counter",
            "Frames dropped (not drawn) to keep latency bounded.",
            [({}, self.dropped)],
        )
        metric(
            "toonsync_underruns_total",
            "counter",
            "Frames of silence fed because no audio arrived.",
            [({}, self.underruns)],
        )
        metric(
            "toonsync_audio_seconds_total",
            "counter",
            "Client audio consumed (16 kHz seconds).",
            [({}, float(self.audio_s))],
        )
        metric("toonsync_fps", "gauge", "Frames sent per second over the last 5 s, all streams.", [({}, float(fps))])
        metric(
            "toonsync_stream_fps",
            "gauge",
            "Mean frames per second per active stream (last 5 s).",
            [({}, float(fps / active) if active else 0.0)],
        )
        out.append("# HELP toonsync_frame_latency_seconds Audio message arrival to JPEG frame ready.")
        out.append("# TYPE toonsync_frame_latency_seconds histogram")
        cum = 0
        for b, n in zip(LATENCY_BUCKETS_S, self.buckets):
            cum += n
            out.append(f'toonsync_frame_latency_seconds_bucket{{le="{b}"}} {cum}')
        out.append(f'toonsync_frame_latency_seconds_bucket{{le="+Inf"}} {self.lat_count}')
        out.append(f"toonsync_frame_latency_seconds_sum {self.lat_sum:.6g}")
        out.append(f"toonsync_frame_latency_seconds_count {self.lat_count}")
        metric(
            "toonsync_bad_messages_total",
            "counter",
            "Client messages answered with an error, by code.",
            [({"code": c}, self.bad[c]) for c in sorted(set(BAD_MESSAGE_CODES) | set(self.bad))],
        )
        metric(
            "toonsync_avatar_uploads_total",
            "counter",
            "Photo uploads, by result.",
            [({"result": r}, self.uploads[r]) for r in ("ok", "rejected")],
        )
        metric(
            "toonsync_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
            [({}, float(time.time() - self.t0))],
        )
        return "\n".join(out) + "\n"
