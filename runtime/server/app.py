"""The kiosk server's shared state (``KioskServer``) and its ASGI app (``create_app``: page, ``/ws``, photo
uploads, drawings whose points a visitor adjusts (``drawings``), restyled avatars (``styles``), health and
metrics)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ImageTooLarge, InputError, InvalidLandmarks, ModelError, ToonsyncError, UnsupportedImageFormat
from ..mel import SAMPLE_RATE
from ..streaming import AudioModel
from ..tts import NoTTSEngine, available_engines, speak_wav
from .avatars import AvatarEntry, _AvatarStore, avatar_from_bytes, avatar_from_drawing_points, mouth_box
from .config import AUDIO_FORMATS, CSP, EMOTION_CHOICES, FRAME_HEADER, FRAME_S, PROTOCOL, WEB_FILES, ServerConfig
from .draw_pool import Drawer, make_look
from .drawings import (
    BadRequest,
    Drawing,
    DrawingStore,
    drawing_doc,
    drawing_from_bytes,
    points_doc,
    refit_request,
    use_request,
)
from .metrics import Metrics
from .session import Session
from .styles import MAX_STYLE_BODY, NOT_EDITABLE, attributes_doc, editable, restyle, style_doc, style_request

MAX_SAY_CHARS = 300  # typed text a kiosk visitor can have spoken (about 20 s of speech)

log = logging.getLogger(__name__)


# -- the server --------------------------------------------------------------------------------
class SharedAudioModel(AudioModel):
    """The ``AudioModel`` every stream of a server shares, with a single-threaded onnxruntime session.

    Many streams run in parallel, so intra-op threads buy nothing, and onnxruntime's default thread
    pool spin-waits after every tiny call: measured on the 2-core box, one real-time stream cost 0.63
    cores with the default session and 0.11 with one thread. (Newer ``runtime.backend`` versions make
    one non-spinning thread the default; then nothing is reloaded here.)
    """

    def __init__(self, backend: str = "auto", precision: str = "auto", threads: int = 1):
        from ..backend import OrtBackend, load_model

        super().__init__(backend, precision)
        be = self.model.backend
        if threads and isinstance(be, OrtBackend) and getattr(be, "thread_settings", {}).get("intra_op") != threads:
            self.model = load_model("audio2motion", self.model.precision, backend, threads=threads)


def _web_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "web"


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
        from ..prepare import load_face

        self.config = cfg = config or ServerConfig()
        if not 1 <= cfg.max_streams <= 1024:
            raise InputError(f"max_streams must be 1..1024, got {cfg.max_streams}")
        if not 64 <= cfg.size <= 1024 or cfg.size % 2:
            raise InputError(f"frame size must be even and 64..1024, got {cfg.size}")
        if cfg.emotion not in (None, "auto"):
            from ..emotion import emotion_schedule

            emotion_schedule(cfg.emotion, 1)
        face = cfg.face
        if avatar is None:
            if face is None:
                from ..assets import __file__ as _assets

                face = Path(_assets).parent / "demo_face.jpg"
            avatar = load_face(face)
        self.model = model or SharedAudioModel(cfg.backend, cfg.precision)
        self.avatars = _AvatarStore(AvatarEntry(avatar, make_look(avatar, cfg.size)), cfg.max_avatars)
        self.drawings = DrawingStore()  # uploaded drawings whose points are being adjusted
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(
            max_workers=cfg.workers or max(2, os.cpu_count() or 2), thread_name_prefix="toonsync-serve"
        )
        self.upload_lock = asyncio.Lock()
        self.say_lock = asyncio.Lock()  # typed text spoken by a TTS engine: one at a time
        self.uploads_waiting = 0
        self.style_lock = asyncio.Lock()  # restyled avatars: one drawn at a time (the streams share the thread pool)
        self.styles_waiting = 0
        self.active = 0
        web = _web_dir()
        self.files = {route: ((web / name).read_bytes(), mime) for route, (name, mime) in WEB_FILES.items()}
        from ..assets import __file__ as _assets

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
        log.info(
            "kiosk server ready: model %s (%s), max %d streams, %d px frames, drawing in %s",
            self.model.model.path.name,
            self.model.model.backend.name,
            cfg.max_streams,
            cfg.size,
            f"{procs} processes" if procs else "threads",
        )

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
        try:  # urlsplit and .port raise on malformed origins (bad port, bad IPv6 literal): those are refused
            u = urlsplit(origin)
            hostname, port = u.hostname, u.port
        except ValueError:
            return False
        if u.scheme not in ("http", "https") or not hostname:
            return False
        default = "443" if u.scheme == "https" else "80"
        h_host, h_port = _split_host(headers.get("host", ""))
        return hostname.lower() == h_host and str(port or default) == (h_port or default)

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
        return {
            "protocol": PROTOCOL,
            "sample_rate": SAMPLE_RATE,
            "formats": sorted(AUDIO_FORMATS),
            "fps": 25,
            "frame_format": "jpeg",
            "frame_header": FRAME_HEADER.format,
            "size": c.size,
            "lookahead_ms": round(self.model.lookahead * FRAME_S * 1e3, 1),
            "emotions": list(EMOTION_CHOICES),
            "max_streams": c.max_streams,
            "max_audio_bytes": c.max_audio_bytes,
            "max_text_bytes": c.max_text_bytes,
            "max_upload_bytes": c.max_upload_bytes,
            "idle_timeout_s": c.idle_timeout_s,
            "say": bool(available_engines()),
            "max_say_chars": MAX_SAY_CHARS,
        }


# -- the ASGI app ------------------------------------------------------------------------------
def create_app(
    config: ServerConfig | None = None,
    *,
    model: AudioModel | None = None,
    avatar: Any = None,
    server: KioskServer | None = None,
) -> Any:
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
    sec_headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    def static(route: str):
        body, mime = srv.files[route]

        async def handler(request: Request) -> Response:
            return Response(body, media_type=mime, headers=sec_headers)

        return handler

    async def sample_wav(request: Request) -> Response:
        return Response(srv.sample_wav, media_type="audio/wav", headers=sec_headers)

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "protocol": PROTOCOL,
                "active_streams": srv.active,
                "max_streams": cfg.max_streams,
                "model": srv.model.model.path.name,
                "backend": srv.model.model.backend.name,
                "uptime_s": round(time.time() - srv.metrics.t0, 1),
            }
        )

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(
            srv.metrics.render(srv.active, cfg.max_streams), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def info(request: Request) -> Response:
        return JSONResponse(srv.info())

    def err(status: int, code: str, message: str) -> Response:
        return JSONResponse({"error": code, "message": message}, status_code=status)

    def refuse(status: int, code: str, message: str) -> Response:  # an upload refused (counted)
        srv.metrics.uploads["rejected"] += 1
        return err(status, code, message)

    async def read_body(request: Request, limit: int) -> bytes | None:
        """The request's body, or None as soon as it passes ``limit`` bytes (Content-Length or not)."""
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
        return bytes(body)

    async def guarded(fn, *args) -> Any:
        """``fn(*args)`` in the thread pool, one at a time (face detection and fitting are ~1 s of CPU); the
        errors a visitor can cause come back as a JSON ``Response`` (never a traceback)."""
        try:
            async with srv.upload_lock:
                return await asyncio.get_running_loop().run_in_executor(srv.executor, fn, *args)
        except ImageTooLarge as e:
            return refuse(413, "too_large", e.for_kiosk())
        except UnsupportedImageFormat as e:
            return refuse(415, "unsupported_format", e.for_kiosk())
        except InputError as e:  # NoFaceError, InvalidLandmarks and friends
            return refuse(422, type(e).__name__, e.for_kiosk())
        except (NotImplementedError, ModelError) as e:  # a model this kiosk does not have
            log.warning("%s: a model is missing (%s)", getattr(fn, "__name__", fn), e or type(e).__name__)
            return refuse(503, "unavailable", "this kiosk cannot do that right now; please try another picture later")

    async def receive_image(request: Request, what: str, fn) -> Any:
        """Checks an image upload (origin, size, uploads in flight), reads it and runs ``fn(body, limit)``
        through ``guarded``; a refusal comes back as a ``Response``."""
        if not srv.origin_ok(request.headers):
            return refuse(403, "origin", "cross-origin uploads are not allowed")
        limit = cfg.max_upload_bytes
        too_large = f"{what} up to {limit / 2**20:.3g} MB are accepted"
        cl = request.headers.get("content-length")
        if cl is not None and (not cl.isdigit() or int(cl) > limit):
            return refuse(413, "too_large", too_large)
        if srv.uploads_waiting >= 4:  # bounds the memory held by uploads too (4 x 10 MB)
            return refuse(503, "busy", f"too many {what} are being processed; try again in a moment")
        srv.uploads_waiting += 1
        try:
            body = await read_body(request, limit)
            if body is None:
                return refuse(413, "too_large", too_large)
            log.info("%s upload of %d bytes", what, len(body))
            return await guarded(fn, body, limit)
        finally:
            srv.uploads_waiting -= 1

    async def avatar_answer(av: Any, warns: list[str]) -> Response:
        """A new avatar stored under a new id -> the JSON the page switches to it with. It is drawn once first:
        one that cannot be drawn (points that do not form a face) is answered 422 and never stored."""
        entry = AvatarEntry(av, make_look(av, cfg.size))
        try:
            preview = await asyncio.get_running_loop().run_in_executor(srv.executor, srv.preview_png, entry)
        except Exception as e:  # noqa: BLE001  (a renderer error on these points; the server stays up)
            log.warning("an avatar could not be drawn: %s: %s", type(e).__name__, e)
            srv.metrics.uploads["rejected"] += 1
            return err(422, "InvalidLandmarks", "these points do not form a face that can be drawn; move them")
        aid = srv.avatars.add(entry)
        srv.metrics.uploads["ok"] += 1
        log.info("new avatar %s (%s)", aid[:6], av.meta.get("kind", "photo"))
        return JSONResponse(
            {
                "avatar": aid,
                "preview": "data:image/png;base64," + base64.b64encode(preview).decode(),
                "warnings": warns,
                "mouth_box": mouth_box(av.neutral),
                "fallback": av.meta.get("fallback"),
                "yaw_deg": av.meta.get("yaw_deg"),
            }
        )

    async def upload(request: Request) -> Response:
        got = await receive_image(request, "photos", avatar_from_bytes)
        return got if isinstance(got, Response) else await avatar_answer(*got)

    async def drawing_upload(request: Request) -> Response:
        """A drawing's bytes -> its id, the image (long side <= 768 px) and the fitted points (its pixels)."""
        got = await receive_image(request, "drawings", drawing_from_bytes)
        if isinstance(got, Response):
            return got
        return JSONResponse(drawing_doc(srv.drawings.add(got), got))

    async def drawing_request(request: Request, parse) -> tuple[Drawing, Any] | Response:
        """The drawing a refit/use request names and ``parse(body JSON, drawing)``; origin checked, body <= 64 KiB,
        a body that is not what ``parse`` takes answered 400 (not JSON, wrong keys) or 422 (bad points)."""
        if not srv.origin_ok(request.headers):
            return err(403, "origin", "cross-origin requests are not allowed")
        d = srv.drawings.get(request.path_params["did"])
        if d is None:
            return err(404, "not_found", "unknown drawing id (drawings are kept a short while); upload it again")
        body = await read_body(request, 1 << 16)
        if body is None:
            return err(413, "too_large", "a points request is at most 64 KiB")
        try:
            return d, parse(json.loads(body.decode("utf-8")), d)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return err(400, "bad_request", "the body is not JSON (or nests too deep)")
        except BadRequest as e:
            return err(400, "bad_request", str(e))
        except InvalidLandmarks as e:
            return err(422, "InvalidLandmarks", str(e))

    async def drawing_refit(request: Request) -> Response:
        """``{"moved": {handle: [x, y]}}`` -> the refitted points and handles (nothing is stored)."""
        got = await drawing_request(request, lambda body, d: points_doc(refit_request(body, d)))
        return got if isinstance(got, Response) else JSONResponse(got[1])

    async def drawing_use(request: Request) -> Response:
        """``{"points": [[x, y] * 68]}`` -> an avatar of the drawing, answered like a photo upload."""
        got = await drawing_request(request, use_request)
        if isinstance(got, Response):
            return got
        made = await guarded(avatar_from_drawing_points, got[0].image, got[1])
        return made if isinstance(made, Response) else await avatar_answer(*made)

    async def say(request: Request) -> Response:
        """Typed text -> the speech as a WAV (the page plays it into the stream like a WAV file)."""
        if not srv.origin_ok(request.headers):
            return err(403, "origin", "cross-origin requests are not allowed")
        body = await read_body(request, 8 * MAX_SAY_CHARS)
        if body is None:
            return err(413, "too_large", f"please type at most {MAX_SAY_CHARS} characters")
        try:
            text = json.loads(body.decode("utf-8"))["text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return err(400, "bad_request", 'send {"text": "what to say"}')
        if len(text.strip()) > MAX_SAY_CHARS:
            return err(413, "too_large", f"please type at most {MAX_SAY_CHARS} characters")
        if srv.say_lock.locked():
            return err(503, "busy", "another text is being spoken; try again in a moment")
        async with srv.say_lock:
            try:
                wav = await asyncio.get_running_loop().run_in_executor(srv.executor, speak_wav, text)
            except NoTTSEngine:
                return err(503, "unavailable", "speaking typed text is not available on this kiosk")
            except InputError as e:
                return err(422, "bad_text", e.for_kiosk())
        return Response(wav, media_type="audio/wav", headers=sec_headers)

    async def preview(request: Request) -> Response:
        entry = srv.avatars.get(request.path_params["aid"])
        if entry is None:
            return err(404, "not_found", "unknown avatar id")
        png = await asyncio.get_running_loop().run_in_executor(srv.executor, srv.preview_png, entry)
        return Response(png, media_type="image/png", headers=sec_headers)

    async def attributes(request: Request) -> Response:
        """An avatar's attributes, the editor's choices and whether it can be edited (``styles.attributes_doc``)."""
        entry = srv.avatars.get(request.path_params["aid"])
        if entry is None:
            return err(404, "not_found", "unknown avatar id")
        return JSONResponse(attributes_doc(entry.avatar))

    async def style(request: Request) -> Response:
        """A JSON object of attribute overrides -> a restyled copy of the avatar, stored under a new id like an
        upload (the avatar it is made from never changes): ``{"avatar_id", "attributes", "describe", ...}``."""
        if not srv.origin_ok(request.headers):
            return err(403, "origin", "cross-origin requests are not allowed")
        entry = srv.avatars.get(request.path_params["aid"])
        if entry is None:
            return err(404, "not_found", "unknown avatar id (avatars are kept a short while); upload the photo again")
        if not editable(entry.avatar):
            return err(409, "not_editable", NOT_EDITABLE)
        body = await read_body(request, MAX_STYLE_BODY)
        if body is None:
            return err(400, "bad_request", f"a style request is a JSON object of at most {MAX_STYLE_BODY >> 10} KiB")
        try:
            overrides = style_request(body)
        except BadRequest as e:
            return err(400, "bad_request", str(e))
        except InputError as e:
            return err(422, "bad_attribute", str(e))

        def make() -> AvatarEntry:  # in the thread pool: the new look's preview is drawn (and cached) once
            av = restyle(entry.avatar, overrides)
            made = AvatarEntry(av, make_look(av, cfg.size))
            srv.preview_png(made)
            return made

        if srv.styles_waiting >= 4:
            return err(503, "busy", "too many avatars are being edited at once; try again in a moment")
        srv.styles_waiting += 1
        try:
            async with srv.style_lock:
                made = await asyncio.get_running_loop().run_in_executor(srv.executor, make)
        except InputError as e:  # an unknown attribute or a bad value, naming what is accepted
            return err(422, "bad_attribute", str(e))
        except Exception:  # a renderer error on these attributes: answered, logged, the server stays up
            log.exception("a restyled avatar could not be drawn")
            return err(500, "internal", "the avatar could not be drawn with these attributes")
        finally:
            srv.styles_waiting -= 1
        aid = srv.avatars.find_restyled(made.look.key) or srv.avatars.add(made)
        srv.avatars.get(aid)  # the most recently used now
        log.info("restyled avatar %s (%s)", aid[:6], ", ".join(made.avatar.meta["overridden"]) or "no change")
        return JSONResponse(style_doc(aid, made.avatar))

    async def ws_endpoint(ws: WebSocket) -> None:
        if not srv.origin_ok(ws.headers):
            srv.metrics.rejected["origin"] += 1
            log.warning("websocket refused: origin %r not allowed", ws.headers.get("origin"))
            await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        if srv.active >= cfg.max_streams:
            srv.metrics.rejected["busy"] += 1
            await ws.accept()
            await ws.send_text(
                json.dumps(
                    {
                        "type": "busy",
                        "max_streams": cfg.max_streams,
                        "message": f"all {cfg.max_streams} avatars are busy; please try again in a moment",
                    }
                )
            )
            await ws.close(code=1013, reason="busy")
            return
        srv.active += 1
        try:
            await Session(srv, ws).run()
        finally:
            srv.active -= 1

    @contextlib.asynccontextmanager
    async def lifespan(app):
        srv.upload_lock, srv.style_lock = asyncio.Lock(), asyncio.Lock()
        yield
        srv.close()

    routes = [Route(r, static(r)) for r in WEB_FILES] + [
        Route("/sample.wav", sample_wav),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/info", info),
        Route("/api/avatar", upload, methods=["POST"]),
        Route("/api/say", say, methods=["POST"]),
        Route("/api/drawing", drawing_upload, methods=["POST"]),
        Route("/api/drawing/{did}/refit", drawing_refit, methods=["POST"]),
        Route("/api/drawing/{did}/use", drawing_use, methods=["POST"]),
        Route("/api/avatar/{aid}/preview.png", preview),
        Route("/api/avatar/{aid}/attributes", attributes),
        Route("/api/avatar/{aid}/style", style, methods=["POST"]),
        WebSocketRoute("/ws", ws_endpoint),
    ]
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
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 400,
                            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)
