"""Kiosk server against malformed and hostile clients: unparseable origins, non-JSON numbers, idle and slow
connections, one address holding many; bounded in count and time, on loopback. The server keeps serving."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("starlette", reason="the kiosk server needs `pip install starlette uvicorn websockets`")
pytest.importorskip("uvicorn", reason="the kiosk server needs `pip install starlette uvicorn websockets`")
pytest.importorskip("websockets", reason="the kiosk server tests need `pip install websockets`")

from websockets.exceptions import InvalidStatus  # noqa: E402

from .test_server import RECV_S, assert_alive, make_server, recv_json, server, start, ws_open  # noqa: E402, F401


def test_malformed_origins_are_refused_not_crashing(make_server):  # noqa: F811 (the fixture)
    """Origins whose port or host cannot be parsed are refused like any foreign origin (403), and the server
    keeps serving."""
    srv = make_server()
    host, port = srv.url.split("//")[1].split(":")
    for bad in (f"http://{host}:abc", f"http://{host}:{port}.evil.com", "http://[::1", "http://:99999"):
        with pytest.raises(InvalidStatus) as e:
            ws_open(srv, origin=bad)
        assert e.value.response.status_code == 403, bad
    with ws_open(srv) as ws:
        start(ws)
        assert_alive(ws)


def test_non_finite_numbers_never_reach_the_browser(server):  # noqa: F811 (the fixture)
    """NaN / Infinity are not JSON: refused coming in, and an overflowing number is echoed as null."""
    with ws_open(server) as ws:
        start(ws)
        ws.send('{"type": "ping", "t": NaN}')
        assert recv_json(ws, "error")["code"] == "bad_json"
        ws.send('{"type": "ping", "t": 1e999}')
        raw = None
        while raw is None:
            m = ws.recv(timeout=RECV_S)
            if isinstance(m, str) and '"pong"' in m:
                raw = m
        assert "NaN" not in raw and "Infinity" not in raw and json.loads(raw)["t"] is None
        assert_alive(ws)


def _idle_sockets(srv, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection((srv.host, srv.port), timeout=5)
        out.append(s)
    return out


def _closed_by_server(s: socket.socket, within_s: float) -> bool:
    s.settimeout(within_s)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def _healthz(srv) -> int:
    with urllib.request.urlopen(srv.url + "/healthz", timeout=10) as r:
        return r.status


def test_idle_and_slow_connections_cannot_starve_healthz(make_server):  # noqa: F811 (the fixture)
    """80 sockets that connect and say nothing (more than the streams + 64 that once took the server down) and a
    client trickling its headers: /healthz keeps answering, and the server closes them at the header timeout."""
    srv = make_server(max_streams=2, header_timeout_s=1.0, max_connections=200, max_connections_per_client=500)
    idle = _idle_sockets(srv, 80)
    slow = socket.create_connection((srv.host, srv.port), timeout=5)
    slow.sendall(b"GET /healthz HTTP/1.1\r\n")
    try:
        assert _healthz(srv) == 200
        t0 = time.monotonic()
        for _ in range(6):  # a byte every 0.3 s: the header never completes within the timeout
            time.sleep(0.3)
            with contextlib.suppress(OSError):
                slow.sendall(b"X")
        assert _closed_by_server(slow, 3.0) and time.monotonic() - t0 < 5.0
        assert all(_closed_by_server(s, 3.0) for s in idle)
        assert _healthz(srv) == 200
    finally:
        for s in [*idle, slow]:
            s.close()


def test_one_address_cannot_hold_every_connection(make_server):  # noqa: F811 (the fixture)
    srv = make_server(header_timeout_s=30.0, max_connections_per_client=5)
    held = _idle_sockets(srv, 5)
    extra = socket.create_connection((srv.host, srv.port), timeout=5)
    try:
        assert _closed_by_server(extra, 3.0)  # the 6th from the same address is closed at once
        assert not any(_closed_by_server(s, 0.2) for s in held)  # the first 5 are kept (until their timeout)
    finally:
        for s in [*held, extra]:
            s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # once they are gone, the address is welcome again
        with contextlib.suppress(OSError):
            if _healthz(srv) == 200:
                break
        time.sleep(0.1)
    assert _healthz(srv) == 200


def _post(srv, body: bytes) -> int:
    req = urllib.request.Request(
        srv.url + "/api/avatar", data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_bomb_uploads_are_refused_from_their_headers(server, tmp_path):  # noqa: F811 (the fixture)
    """A 16-bit RGBA PNG that would decode to 288 MB and a JPEG whose 12000x12000 frame header hides after
    130 KB of metadata: both 413 before any pixel is decoded; the server keeps answering."""
    from .catalogue import _jpeg_late_sof, _png_header

    for body in (_png_header(6000, 6000, 16, 6), _jpeg_late_sof(tmp_path, 12000, 12000, 130_000).read_bytes()):
        assert _post(server, body) == 413
    assert _healthz(server) == 200


def test_a_client_that_never_reads_does_not_hold_the_server(server, speech_wav):  # noqa: F811 (the fixture)
    """A client streams audio but never reads its frames: the server drops what it cannot send (bounded per
    connection) and keeps serving others."""
    import numpy as np
    import soundfile as sf

    pcm, _ = sf.read(str(speech_wav), dtype="int16")
    with ws_open(server) as ws:
        start(ws)
        t0 = time.monotonic()
        for i in range(0, min(pcm.size, 16000 * 4), 1600):  # 4 s of audio in 100 ms messages, faster than real time
            ws.send(np.ascontiguousarray(pcm[i : i + 1600]).tobytes())
            time.sleep(0.02)
        assert _healthz(server) == 200 and time.monotonic() - t0 < 30
        with ws_open(server) as other:  # another client is served meanwhile
            start(other)
            assert_alive(other)


def test_server_memory_under_the_heaviest_uploads(tmp_path):
    """A fresh server process: a 49 MP photo (the pixel cap) and a 22 MP 16-bit RGBA PNG (an 8 MB upload) are
    decoded and searched within 600 MB; the bombs are refused from their headers without a byte more."""
    from toonsync.tools.uploads import upload_peaks

    rep = upload_peaks(tmp_path)
    photo, deep = rep["1-png-49mp"], rep["2-png-16bit-rgba-22mp"]
    png_bomb, jpeg_bomb = rep["3-png-16bit-rgba-bomb"], rep["4-jpeg-late-size-bomb"]
    assert photo["status"] == deep["status"] == 422 and png_bomb["status"] == jpeg_bomb["status"] == 413
    assert photo["peak_rss_mb"] <= 600 and deep["peak_rss_mb"] <= 600, rep
    assert jpeg_bomb["peak_rss_mb"] - deep["peak_rss_mb"] < 20, rep
