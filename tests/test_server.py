"""Kiosk server (runtime/server/): WebSocket protocol, limits, bad messages, uploads, health, metrics.

WebSocket tests run against a real uvicorn server on 127.0.0.1 (a free port, started in a fixture)
with bounded receive timeouts; HTTP-only checks use Starlette's TestClient. No test asserts on
wall-clock durations; every loop is bounded in time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the kiosk server needs `pip install starlette uvicorn websockets`")
pytest.importorskip("uvicorn", reason="the kiosk server needs `pip install starlette uvicorn websockets`")
pytest.importorskip("websockets", reason="the kiosk server tests need `pip install websockets`")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from toonsync.runtime.errors import InputError  # noqa: E402
from toonsync.runtime.server import (  # noqa: E402
    FLAG_IDLE,
    FRAME_HEADER,
    FRAME_MAGIC,
    BackgroundServer,
    ServerConfig,
    add_serve_parser,
    config_from_args,
    create_app,
    lip_gap,
)

RECV_S = 15.0  # a bound on every single receive


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def speech(speech_wav):
    import soundfile as sf

    a, sr = sf.read(str(speech_wav), dtype="int16")
    assert sr == 16000
    return a


@pytest.fixture(scope="module")
def server(model, avatar):
    """The default configuration (drawing in worker processes where there are >= 2 cores)."""
    app = create_app(
        ServerConfig(max_streams=4, max_audio_ahead_s=4.0, idle_feed_after_s=30.0), model=model, avatar=avatar
    )
    with BackgroundServer(app) as srv:
        yield srv


@pytest.fixture
def make_server(model, avatar):
    """Variant configurations (drawing in threads: no worker processes to start)."""
    started = []

    def make(**kw):
        kw.setdefault("draw_processes", 0)
        srv = BackgroundServer(create_app(ServerConfig(**kw), model=model, avatar=avatar))
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def client(model, avatar):
    from starlette.testclient import TestClient

    app = create_app(ServerConfig(allowed_hosts=("testserver",), draw_processes=0), model=model, avatar=avatar)
    return TestClient(app)


# -- helpers -----------------------------------------------------------------------------------
def ws_open(srv, **kw):
    return connect(srv.ws_url, open_timeout=RECV_S, close_timeout=5, max_size=1 << 22, **kw)


def recv(ws, timeout: float = RECV_S):
    """A JSON message as a dict, or a frame as (header tuple, jpeg bytes)."""
    m = ws.recv(timeout=timeout)
    if isinstance(m, bytes):
        head = FRAME_HEADER.unpack_from(m)
        assert head[0] == FRAME_MAGIC
        return head, m[FRAME_HEADER.size :]
    return json.loads(m)


def recv_json(ws, kind: str, budget_s: float = 30.0) -> dict:
    """Skip frames and other messages until a JSON message of ``kind`` (bounded)."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        m = recv(ws)
        if isinstance(m, dict) and m["type"] == kind:
            return m
    raise AssertionError(f"no {kind!r} message within {budget_s} s")


def start(ws, **opts) -> dict:
    hello = recv_json(ws, "hello")
    assert hello["protocol"] == "toonsync-kiosk/1"
    ws.send(json.dumps({"type": "start", **opts}))
    return recv_json(ws, "ready")


def assert_alive(ws) -> None:
    ws.send(json.dumps({"type": "ping", "t": 1.5}))
    assert recv_json(ws, "pong")["t"] == 1.5


def run_until_stopped(ws, budget_s: float = 60.0):
    """Frames and the final stats after a stop message (bounded)."""
    frames, errors = [], []
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        m = recv(ws)
        if isinstance(m, tuple):
            frames.append(m)
        elif m["type"] == "error":
            errors.append(m)
        elif m["type"] == "stopped":
            return frames, errors, m["stats"]
    raise AssertionError("no 'stopped' within the budget")


def http_get(srv, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(srv.url + path, timeout=RECV_S) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(srv) -> dict[str, float]:
    status, text = http_get(srv, "/metrics")
    assert status == 200
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def wait_for(pred, budget_s: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {budget_s} s")


def offline_gaps(model, avatar, pcm_int16) -> list[float]:
    from toonsync.runtime.streaming import Stream

    st = Stream(model, avatar.neutral, None)
    st.accept_audio(pcm_int16.astype(np.float32) / 32768.0, 16000)
    st.flush()
    out = []
    while st.ready():
        out.append(lip_gap(st.step(draw=False).landmarks))
    return out


# -- streaming ---------------------------------------------------------------------------------
def test_stream_frames_match_offline_and_mouth_moves(make_server, model, avatar, speech):
    import cv2

    ref = offline_gaps(model, avatar, speech)
    # a backlog that never drops, so every frame can be compared (audio is sent faster than real time)
    srv = make_server(max_backlog=10_000, max_audio_ahead_s=10.0, idle_feed_after_s=30.0)
    with ws_open(srv) as ws:
        ready = start(ws, format="s16", sample_rate=16000)
        assert ready["avatar"] == "default" and len(ready["mouth_box"]) == 4
        for i in range(0, speech.size, 320):  # 20 ms chunks, as fast as possible
            ws.send(speech[i : i + 320].tobytes())
        ws.send(json.dumps({"type": "stop"}))
        frames, errors, stats = run_until_stopped(ws)
        assert_alive(ws)
    assert not errors
    idx = [h[1] for h, _ in frames]
    assert idx == sorted(set(idx))
    assert len(frames) == len(ref) == stats["frames"] and stats["dropped"] == 0
    for head, jpg in frames:
        _, k, seq, dropped, flags, ts, server_ms, mouth_open, gap = head
        assert gap == pytest.approx(ref[k], abs=1e-4)  # chunked through the server == offline
        assert ts == pytest.approx(k * 0.04, abs=1e-6) and not flags & FLAG_IDLE
        assert 1 <= seq <= -(-speech.size // 320) and server_ms >= 0
        img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (512, 512, 3)  # the default render size
    gaps = np.array([h[8] for h, _ in frames])
    assert gaps.std() > 0.02 and gaps.max() > 0.1  # the mouth opens and closes


def test_real_time_stream_metrics_and_health(server, speech):
    with ws_open(server) as ws:
        start(ws)
        wait_for(lambda: metrics(server)["toonsync_streams_active"] >= 1, what="active stream in /metrics")
        t0 = time.monotonic()
        for k, i in enumerate(range(0, 16000, 320)):  # 1 s, paced like a microphone
            time.sleep(max(0.0, t0 + k * 0.02 - time.monotonic()))
            ws.send(speech[i : i + 320].tobytes())
        ws.send(json.dumps({"type": "stop"}))
        frames, errors, stats = run_until_stopped(ws)
        assert frames and not errors and stats["frames"] == len(frames)
    m = wait_for(
        lambda: (lambda d: d if d["toonsync_streams_active"] == 0 else None)(metrics(server)),
        what="stream closed in /metrics",
    )
    assert m["toonsync_frames_total"] >= len(frames)
    assert m['toonsync_frame_latency_seconds_bucket{le="+Inf"}'] == m["toonsync_frame_latency_seconds_count"]
    assert m["toonsync_streams_max"] == 4
    status, body = http_get(server, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_metrics_text_format(client):
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for name, kind in [
        ("toonsync_streams_active", "gauge"),
        ("toonsync_fps", "gauge"),
        ("toonsync_frames_dropped_total", "counter"),
        ("toonsync_frame_latency_seconds", "histogram"),
        ("toonsync_bad_messages_total", "counter"),
    ]:
        assert f"# TYPE {name} {kind}" in text
    buckets = [float(v) for v in re.findall(r'^toonsync_frame_latency_seconds_bucket\{le="[^"]+"\} (\S+)$', text, re.M)]
    assert len(buckets) == 10 and buckets == sorted(buckets)
    for line in text.splitlines():
        assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? \S+', line), line


# -- bad messages ------------------------------------------------------------------------------
NAN_PAIRS = np.array([-5, -3] * 160, np.int16).tobytes()  # as float32: 0xFFFDFFFB = NaN

BAD = [
    ("text garbage", None, "this is not json", "bad_json"),
    ("json array", None, "[1, 2, 3]", "bad_json"),
    ("json without type", None, '{"emotion": "happy"}', "bad_json"),
    ("deep nesting", None, "[" * 2000 + "]" * 2000, "bad_json"),
    ("unknown type", None, '{"type": "launch_missiles"}', "unknown_type"),
    ("unknown dtype", None, '{"type": "start", "format": "f64"}', "bad_config"),
    ("bad rate", None, '{"type": "start", "sample_rate": "fast"}', "bad_config"),
    ("rate out of range", None, '{"type": "start", "sample_rate": 1000000}', "bad_config"),
    ("unknown emotion", None, '{"type": "config", "emotion": "ecstatic"}', "bad_config"),
    ("avatar as a path", None, '{"type": "config", "avatar": "../../etc/passwd"}', "bad_config"),
    ("file path field", None, '{"type": "start", "file": "/etc/passwd"}', "bad_config"),
    ("odd byte count", None, b"\x01\x02\x03", "bad_audio"),
    ("empty binary", None, b"", "bad_audio"),
    ("int16 sent as f32", "f32", NAN_PAIRS, "bad_audio"),
    ("NaN floats", "f32", np.full(320, np.nan, np.float32).tobytes(), "bad_audio"),
    ("huge floats", "f32", np.full(320, 1e30, np.float32).tobytes(), "bad_audio"),
    ("huge audio message", None, bytes(100_000), "message_too_large"),
    ("huge text message", None, "x" * 10_000, "message_too_large"),
]


@pytest.mark.parametrize("name,fmt,payload,code", BAD, ids=[b[0] for b in BAD])
def test_bad_message_answered_and_connection_survives(server, speech, name, fmt, payload, code):
    with ws_open(server) as ws:
        start(ws, format=fmt or "s16")
        ws.send(payload)
        err = recv_json(ws, "error")
        assert err["code"] == code and err["message"]
        assert_alive(ws)
        good = speech[:3200] if fmt != "f32" else (speech[:3200] / 32768.0).astype("<f4")
        ws.send(good.tobytes())  # the stream still works
        ws.send(json.dumps({"type": "stop"}))
        frames, errors, _ = run_until_stopped(ws)
        assert frames and not errors
    assert json.loads(http_get(server, "/healthz")[1])["status"] == "ok"


def test_frame_over_protocol_limit_closes_cleanly(server, speech):
    with ws_open(server) as ws:
        start(ws)
        with pytest.raises(ConnectionClosed) as e:
            ws.send(bytes(2 << 20))  # over ws_max_size (1 MiB): the protocol layer closes with 1009
            for _ in range(100):
                recv(ws)
        # the server answers 1009; if it closed while the 2 MiB were still in flight, the client's side can
        # be reset before it reads that close frame (a race in TCP, not a server fault) -- then rcvd is None
        assert e.value.rcvd is None or e.value.rcvd.code == 1009
    with ws_open(server) as ws:  # the server is unaffected
        start(ws)
        assert_alive(ws)
    assert http_get(server, "/healthz")[0] == 200


def test_too_many_bad_messages_closes_with_1008(make_server):
    srv = make_server(max_bad_messages=5)
    with ws_open(srv) as ws:
        start(ws)
        with pytest.raises(ConnectionClosed) as e:
            for _ in range(20):
                ws.send("garbage")
            for _ in range(100):
                recv(ws)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1008
    with ws_open(srv) as ws:
        start(ws)
        assert_alive(ws)


def test_audio_faster_than_real_time_is_refused(make_server, speech):
    srv = make_server(max_audio_ahead_s=0.5)
    with ws_open(srv) as ws:
        start(ws)
        for i in range(0, speech.size, 1600):
            ws.send(speech[i : i + 1600].tobytes())
        assert recv_json(ws, "error")["code"] == "too_fast"
        assert_alive(ws)


def test_stopped_stream_refuses_audio_until_restarted(server, speech):
    with ws_open(server) as ws:
        start(ws)
        ws.send(speech[:4800].tobytes())
        ws.send(json.dumps({"type": "stop"}))
        frames, _, _ = run_until_stopped(ws)
        ws.send(speech[:320].tobytes())
        assert recv_json(ws, "error")["code"] == "stopped"
        ws.send(json.dumps({"type": "start"}))
        recv_json(ws, "ready")
        ws.send(speech[:4800].tobytes())
        ws.send(json.dumps({"type": "stop"}))
        again, errors, _ = run_until_stopped(ws)
    assert not errors
    # a new stream from frame 0 (the header's drop count is per connection), same audio -> same last frame
    assert again[0][0][1] <= frames[0][0][1] + 3 and again[-1][0][1] == frames[-1][0][1]


# -- limits ------------------------------------------------------------------------------------
def test_busy_beyond_max_streams(make_server):
    srv = make_server(max_streams=1)
    with ws_open(srv) as first:
        start(first)
        with ws_open(srv) as second:
            busy = recv(second)
            assert busy["type"] == "busy" and "busy" in busy["message"] and busy["max_streams"] == 1
            with pytest.raises(ConnectionClosed) as e:
                recv(second)
            assert e.value.rcvd.code == 1013
        assert_alive(first)  # the running stream is unaffected
    assert metrics(srv)['toonsync_streams_rejected_total{reason="busy"}'] == 1
    wait_for(lambda: metrics(srv)["toonsync_streams_active"] == 0, what="slot freed")
    with ws_open(srv) as ws:
        start(ws)


def test_origin_check(make_server):
    srv = make_server(allowed_origins=("https://kiosk.example",))
    with pytest.raises(InvalidStatus) as e:
        ws_open(srv, origin="http://evil.example")
    assert e.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        ws_open(srv, origin="null")
    for ok in (srv.url, "https://kiosk.example"):
        with ws_open(srv, origin=ok) as ws:
            start(ws)
    assert metrics(srv)['toonsync_streams_rejected_total{reason="origin"}'] == 2


def test_host_check(client):
    assert client.get("/healthz").status_code == 200
    r = client.get("/healthz", headers={"host": "attacker.example"})
    assert r.status_code == 400  # DNS rebinding: only configured Host names are served


def test_idle_frames_then_idle_timeout(make_server):
    srv = make_server(idle_timeout_s=2.0, idle_feed_after_s=0.1)
    with ws_open(srv) as ws:
        recv_json(ws, "hello")
        idle, err = [], None
        with pytest.raises(ConnectionClosed) as e:
            for _ in range(500):
                m = recv(ws)
                if isinstance(m, tuple):
                    idle.append(m[0])
                elif m["type"] == "error":
                    err = m
        assert e.value.rcvd.code == 1000
    assert err is not None and err["code"] == "idle_timeout"
    assert len(idle) >= 5 and all(h[4] & FLAG_IDLE for h in idle)  # the avatar kept breathing meanwhile


def test_emotion_override_live(server, speech):
    with ws_open(server) as ws:
        start(ws, emotion="sad")
        ws.send(speech[:8000].tobytes())
        ws.send(json.dumps({"type": "config", "emotion": "happy"}))
        conf = recv_json(ws, "configured")
        assert conf["emotion"] == "happy"
        ws.send(speech[8000:16000].tobytes())
        ws.send(json.dumps({"type": "config", "emotion": "auto"}))
        recv_json(ws, "configured")
        ws.send(speech[16000:32000].tobytes())
        ws.send(speech[32000:].tobytes())
        ws.send(json.dumps({"type": "stop"}))
        frames, errors, _ = run_until_stopped(ws)
    assert frames and not errors


def test_stream_set_emotion(model, avatar, speech):
    from toonsync.runtime.motion import EMOTIONS
    from toonsync.runtime.streaming import Stream

    st = Stream(model, avatar.neutral, None)
    x = speech.astype(np.float32) / 32768.0
    st.accept_audio(x[:16000], 16000)
    while st.ready():
        st.step(draw=False)
    st.set_emotion("happy")
    st.accept_audio(x[16000:], 16000)
    st.flush()
    rows = []
    while st.ready():
        rows.append(st.step(draw=False).emotion)
    hap = np.eye(6, dtype=np.float32)[EMOTIONS.index("HAP")]
    assert np.allclose(rows[-1], hap) and not np.allclose(rows[0], hap)  # cross-faded into the override
    st2 = Stream(model, avatar.neutral, None, emotion="sad")
    st2.accept_audio(x[:8000], 16000)
    st2.set_emotion("auto")  # back to the prosody estimate mid-stream: never runs dry
    st2.accept_audio(x[8000:], 16000)
    st2.flush()
    while st2.ready():
        assert np.isfinite(st2.step(draw=False).emotion).all()
    with pytest.raises(InputError):
        st2.set_emotion("ecstatic")


# -- HTTP: page, uploads -----------------------------------------------------------------------
def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and "toonsync" in r.text and "/app.js" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for path, mime in [
        ("/app.js", "text/javascript"),
        ("/pcm-worklet.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/sample.wav", "audio/wav"),
    ]:
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(mime) and r.content
    info = client.get("/api/info").json()
    assert info["sample_rate"] == 16000 and "s16" in info["formats"] and info["frame_header"] == FRAME_HEADER.format
    for path in ("/server.py", "/../runtime/server.py", "/..%2fserver.py", "/web/app.js", "/etc/passwd"):
        assert client.get(path).status_code == 404  # only a fixed set of in-memory files is served


def test_upload_photo_makes_avatar(client, data_dir):
    r = client.post("/api/avatar", content=(data_dir / "grace_hopper.jpg").read_bytes())
    assert r.status_code == 200, r.text
    doc = r.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", doc["avatar"]) and doc["preview"].startswith("data:image/png;base64,")
    png = client.get(f"/api/avatar/{doc['avatar']}/preview.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get("/api/avatar/default/preview.png").status_code == 200
    assert client.get("/api/avatar/nope/preview.png").status_code == 404
    assert client.get("/api/avatar/..%2F..%2Fetc%2Fpasswd/preview.png").status_code == 404


@pytest.mark.parametrize(
    "case", "no_face garbage path_text too_large too_large_chunked too_many_pixels empty truncated cross_origin".split()
)
def test_upload_refusals(client, data_dir, case):
    import struct
    import zlib

    headers = {}
    if case == "no_face":
        body, status = (data_dir / "no_face_coffee.jpg").read_bytes(), 422
    elif case == "garbage":
        body, status = b"GIF89a not an accepted format" * 10, 415
    elif case == "path_text":
        body, status = b"/etc/passwd", 415
    elif case == "too_large":
        body, status = b"\xff\xd8" + bytes(10 * 1024 * 1024), 413
    elif case == "too_large_chunked":  # no Content-Length: counted while reading
        body, status = (b"\xff\xd8" + bytes(1 << 20) for _ in range(11)), 413
    elif case == "too_many_pixels":
        ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
        chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
        body, status = b"\x89PNG\r\n\x1a\n" + chunk, 413
    elif case == "empty":
        body, status = b"", 415
    elif case == "truncated":
        body, status = (data_dir / "grace_hopper.jpg").read_bytes()[:300], 415
    else:
        body, status = (data_dir / "grace_hopper.jpg").read_bytes(), 403
        headers = {"origin": "https://evil.example"}
    r = client.post("/api/avatar", content=body, headers=headers)
    assert r.status_code == status, r.text
    message = r.json()["message"]
    # a visitor reads it: no command-line flags, file paths, Python names or format lists of the API messages
    assert message and not re.search(r"--[a-z]|docs/|\.md\b|\.json\b|landmarks=|Error\b", message), message
    if case == "no_face":
        assert message.startswith("No face was found in this photo")


def test_uploaded_avatar_streams(server, data_dir, speech):
    req = urllib.request.Request(
        server.url + "/api/avatar",
        data=(data_dir / "grace_hopper.jpg").read_bytes(),
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        doc = json.load(r)
    with ws_open(server) as ws:
        default = start(ws)
        ws.send(json.dumps({"type": "config", "avatar": doc["avatar"]}))  # live swap
        conf = recv_json(ws, "configured")
        assert conf["avatar"] == doc["avatar"] and conf["mouth_box"] != default["mouth_box"]
        ws.send(speech[:8000].tobytes())
        ws.send(json.dumps({"type": "stop"}))
        frames, errors, _ = run_until_stopped(ws)
    assert frames and not errors


# -- CLI, imports, load test -------------------------------------------------------------------
def test_serve_parser_and_config():
    import argparse

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    add_serve_parser(sub)
    flags = "--port 9000 --max-streams 3 --allow-origin https://k.example --idle-timeout 30 --avatar face.avatar"
    a = p.parse_args(["serve", *flags.split()])
    cfg = config_from_args(a)
    assert (a.host, cfg.max_streams, cfg.idle_timeout_s, cfg.face) == ("127.0.0.1", 3, 30.0, "face.avatar")
    assert cfg.allowed_origins == ("https://k.example",) and "127.0.0.1" in cfg.allowed_hosts
    with pytest.raises(InputError):
        config_from_args(p.parse_args(["serve", "--port", "0"]))
    with pytest.raises(SystemExit):
        p.parse_args(["serve", "--face", "a.jpg", "--avatar", "b.avatar"])


def test_server_modules_import_light():
    code = (
        "import sys, toonsync.runtime.server, toonsync.tools.loadtest\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'starlette', 'uvicorn', 'training'))\n"
        "assert not bad, bad\nprint('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_loadtest_smoke(server, tmp_path):
    from toonsync.tools.loadtest import check_loopback, main

    out = tmp_path / "load.json"
    assert (
        main(["--url", server.ws_url, "--clients", "1,2", "--seconds", "1.5", "--no-search", "--json", str(out)]) == 0
    )
    doc = json.loads(out.read_text())
    assert [s["clients"] for s in doc["steps"]] == [1, 2]
    assert all(s["frames"] > 0 and s["errors"] == 0 for s in doc["steps"])
    with pytest.raises(SystemExit):
        check_loopback("ws://example.com:8000/ws")
