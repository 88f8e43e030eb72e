"""``toonsync soak``: stream synthetic speech through the full runtime faster than real time and watch
memory (RSS over time), frame count vs audio duration, drops and lost samples."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

from toonsync.runtime.assets import DEMO_FACE, DEMO_SPEECH, asset
from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.live import stream
from toonsync.runtime.mel import SAMPLE_RATE, SAMPLES_PER_FRAME
from toonsync.runtime.prepare import load_face
from toonsync.runtime.streaming import AudioModel

log = logging.getLogger(__name__)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@dataclass
class SoakReport:
    """A soak run: audio sent and consumed, frames, lost samples and the RSS curve."""

    minutes: float
    samples_sent: int
    samples_consumed: int
    frames: int
    frames_expected: int
    dropped: int
    wall_s: float
    draw: bool
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (audio minutes, MB)

    @property
    def rss_growth_mb(self) -> float:
        """Growth after the first 10% (warm-up: allocator pools, caches)."""
        if len(self.rss_mb) < 2:
            return 0.0
        base = self.rss_mb[max(1, len(self.rss_mb) // 10)][1]
        return max(r for _, r in self.rss_mb) - base

    @property
    def lost_samples(self) -> int:
        return self.samples_sent - self.samples_consumed

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "rss_growth_mb": round(self.rss_growth_mb, 2),
            "lost_samples": self.lost_samples,
            "speed_x_realtime": round(self.minutes * 60 / self.wall_s, 1),
        }


def soak(
    minutes: float = 30.0, chunk_ms: float = 200.0, draw: bool = False, backend: str = "auto", samples: int = 60
) -> SoakReport:
    """Feed ``minutes`` of (looped) demo speech in ``chunk_ms`` chunks as fast as possible."""
    speech = load_audio(asset(DEMO_SPEECH))
    total = int(minutes * 60 * SAMPLE_RATE)
    chunk = int(SAMPLE_RATE * chunk_ms / 1000)
    sent = 0

    def source():
        nonlocal sent
        while sent < total:
            i = sent % speech.size
            c = speech[i : i + chunk][: total - sent]
            sent += c.size
            yield c

    rep = SoakReport(minutes, total, 0, 0, -(-total // SAMPLES_PER_FRAME), 0, 0.0, draw)
    every = max(1, rep.frames_expected // samples)
    t0 = time.perf_counter()
    run = stream(source(), load_face(asset(DEMO_FACE)), model=AudioModel(backend), draw=draw)
    for n, _ in enumerate(run, 1):
        if n % every == 0:
            rep.rss_mb.append((round(n * SAMPLES_PER_FRAME / SAMPLE_RATE / 60, 2), round(rss_mb(), 2)))
    rep.wall_s = time.perf_counter() - t0
    rep.frames, rep.dropped = run.stats.frames, run.stats.dropped
    rep.samples_consumed = int(round(run.stats.audio_s * SAMPLE_RATE))
    log.info(
        "soak: %.0f min of audio in %.0f s; %d/%d frames; RSS growth %.1f MB; lost samples %d",
        minutes,
        rep.wall_s,
        rep.frames,
        rep.frames_expected,
        rep.rss_growth_mb,
        rep.lost_samples,
    )
    return rep
