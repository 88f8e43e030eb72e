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

The package: ``config`` (protocol constants, ``ServerConfig``), ``metrics``, ``avatars`` (uploads), ``drawings``
(drawn characters: fitted points, the adjust-points refit), ``styles`` (an avatar's attributes, restyled copies),
``draw_pool`` (drawing processes), ``session`` (one connection), ``app`` (``KioskServer``, ``create_app``) and
``cli`` (``toonsync serve``, ``BackgroundServer``).

Importing this package needs only numpy: Starlette/uvicorn are imported when an app is built
(``pip install starlette uvicorn websockets``).
"""

from __future__ import annotations

from .app import KioskServer, SharedAudioModel, create_app
from .avatars import AvatarEntry, avatar_from_bytes, lip_gap, mouth_box
from .cli import BackgroundServer, add_serve_parser, cmd_serve, config_from_args, main
from .config import (
    AUDIO_FORMATS,
    BAD_MESSAGE_CODES,
    EMOTION_CHOICES,
    FLAG_IDLE,
    FRAME_HEADER,
    FRAME_MAGIC,
    FRAME_S,
    PROTOCOL,
    ServerConfig,
)
from .draw_pool import Drawer, Look, draw_batch, make_look
from .metrics import Metrics
from .session import Session

__all__ = [
    "AUDIO_FORMATS",
    "BAD_MESSAGE_CODES",
    "EMOTION_CHOICES",
    "FLAG_IDLE",
    "FRAME_HEADER",
    "FRAME_MAGIC",
    "FRAME_S",
    "PROTOCOL",
    "AvatarEntry",
    "BackgroundServer",
    "Drawer",
    "KioskServer",
    "Look",
    "Metrics",
    "ServerConfig",
    "Session",
    "SharedAudioModel",
    "add_serve_parser",
    "avatar_from_bytes",
    "cmd_serve",
    "config_from_args",
    "create_app",
    "draw_batch",
    "lip_gap",
    "main",
    "make_look",
    "mouth_box",
]
