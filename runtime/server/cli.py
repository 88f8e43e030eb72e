"""Running the kiosk: ``toonsync serve`` / ``python -m toonsync.runtime.server``, and ``BackgroundServer``
(a real uvicorn server in a thread, for tests and embedding)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import threading
import time

from ..errors import InputError, ToonsyncError
from ..options import RenderOptions
from .app import create_app
from .config import ServerConfig
from .guard import guarded_h11

log = logging.getLogger(__name__)


def _uvicorn_config(app, cfg: ServerConfig, host: str, port: int, access_log: bool = False):
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        ws_max_size=cfg.ws_max_size,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=3,
        limit_concurrency=cfg.max_streams + cfg.max_connections,
        http=guarded_h11(cfg.header_timeout_s, cfg.max_connections_per_client),
        ws_per_message_deflate=False,
    )  # JPEG frames do not compress: deflate only burns CPU


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
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="toonsync-uvicorn", daemon=True
        )
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


def add_serve_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``toonsync`` sub-commands (cli.py wires ``cmd_serve``)."""
    s = subparsers.add_parser(
        "serve",
        help="kiosk web app: the browser's microphone drives the avatar live",
        description="Serve the kiosk page and its WebSocket (see docs/kiosk.md).",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    face = s.add_mutually_exclusive_group()
    face.add_argument("--face", help="face photo for the default avatar (default: the bundled demo face)")
    face.add_argument("--avatar", help="prepared .avatar bundle for the default avatar")
    s.add_argument("--max-streams", type=int, default=8, help="concurrent streams before 'busy' (default 8)")
    s.add_argument("--jpeg-quality", type=int, default=80, help="JPEG quality of the frames (default 80)")
    s.add_argument("--idle-timeout", type=float, default=60.0, help="close a socket silent for this long (s)")
    s.add_argument("--workers", type=int, help="inference threads (default: CPU count)")
    s.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept pages from this origin (e.g. https://kiosk.example); repeatable",
    )
    s.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="also accept this Host name (needed when serving beyond loopback); repeatable; '*' = any",
    )
    s.add_argument("--access-log", action="store_true", help="log every HTTP request")
    RenderOptions.add_arguments(
        s, "size", "emotion", "seed", "backend", "precision", "max_backlog", "mouth_gain", "head_motion"
    )
    return s


def config_from_args(a: argparse.Namespace) -> ServerConfig:
    hosts = ["127.0.0.1", "localhost", "::1"] + list(a.allow_host)
    if not _is_loopback(a.host) and a.host not in ("0.0.0.0", "::"):
        hosts.append(a.host)
    if a.host in ("0.0.0.0", "::") and not a.allow_host:
        log.warning(
            "listening on all interfaces: add --allow-host NAME for each name clients use "
            "(only loopback names are accepted now)"
        )
    if not 1 <= a.port <= 65535:
        raise InputError(f"--port must be 1..65535, got {a.port}")
    if not 1 <= a.jpeg_quality <= 100:
        raise InputError(f"--jpeg-quality must be 1..100, got {a.jpeg_quality}")
    return ServerConfig.from_options(
        RenderOptions.from_namespace(a),
        face=a.avatar or a.face,
        jpeg_quality=a.jpeg_quality,
        max_streams=a.max_streams,
        idle_timeout_s=a.idle_timeout,
        workers=a.workers,
        allowed_origins=tuple(a.allow_origin),
        allowed_hosts=tuple(hosts),
    )


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
