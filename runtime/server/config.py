"""The kiosk's wire protocol constants and ``ServerConfig`` (everything ``toonsync serve`` can tune)."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..mel import SAMPLE_RATE, SAMPLES_PER_FRAME
from ..mouth import MOUTH_GAIN
from ..options import RenderOptions

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
BAD_MESSAGE_CODES = (
    "message_too_large",
    "bad_json",
    "unknown_type",
    "bad_config",
    "bad_audio",
    "too_fast",
    "overloaded",
    "stopped",
)
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WEB_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/edit.js": ("edit.js", "text/javascript; charset=utf-8"),
    "/pcm-worklet.js": ("pcm-worklet.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
    "script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


# the fields a server shares with RenderOptions (the rest of RenderOptions is for offline renders)
RENDER_FIELDS = ("size", "seed", "emotion", "backend", "precision", "max_backlog", "mouth_gain", "head_motion")


@dataclass
class ServerConfig:
    """Everything ``toonsync serve`` can tune (defaults suit a 2-core kiosk).

    ``size``, ``backend``, ``precision``, ``emotion``, ``seed`` and ``max_backlog`` are the rendering options every
    entry point shares: they are validated as a ``RenderOptions`` (``options``) when the config is made."""

    # the default avatar: photo path, .avatar path, Avatar or RGB array (the operator's, never a client's);
    # None = the bundled demo face
    face: Any = None
    size: int = 512
    jpeg_quality: int = 80
    backend: str = "auto"
    precision: str = "auto"
    emotion: str = "auto"
    seed: int = 0
    mouth_gain: float = MOUTH_GAIN  # how wide the drawn mouth opens (RenderOptions.mouth_gain)
    head_motion: float = 1.0  # 0 = a still head (RenderOptions.head_motion)
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
    max_connections: int = 512  # open connections beyond the streams (idle ones are cheap; each is guarded)
    max_connections_per_client: int = 128  # per client address: one host cannot hold them all
    header_timeout_s: float = 10.0  # a connection must send its request headers within this
    allowed_origins: tuple[str, ...] = ()  # besides same-origin; "*" allows any
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")  # Host header check; "*" allows any

    def __post_init__(self) -> None:
        self.options  # noqa: B018  (validates: a typed InputError naming what is accepted)

    @property
    def options(self) -> RenderOptions:
        """The rendering options of the server's streams."""
        return RenderOptions(**{k: getattr(self, k) for k in RENDER_FIELDS})

    @classmethod
    def from_options(cls, options: RenderOptions, **fields: Any) -> ServerConfig:
        """A config streaming with ``options`` (their size, seed, emotion, backend, precision, max_backlog)."""
        return cls(**{k: getattr(options, k) for k in RENDER_FIELDS}, **fields)
