"""Kiosk server against malformed clients: unparseable origins and non-JSON numbers are refused cleanly, and
the server keeps serving."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette", reason="the kiosk server needs `pip install starlette uvicorn websockets`")
pytest.importorskip("uvicorn", reason="the kiosk server needs `pip install starlette uvicorn websockets`")
pytest.importorskip("websockets", reason="the kiosk server tests need `pip install websockets`")

from websockets.exceptions import InvalidStatus  # noqa: E402

from .test_server import RECV_S, assert_alive, avatar, make_server, model, recv_json, server, start, ws_open  # noqa: E402, F401


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
