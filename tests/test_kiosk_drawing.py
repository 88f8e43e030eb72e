"""Kiosk drawings (runtime/server/drawings.py): upload a drawing, refit its points from dragged handles, use it.

HTTP only, through Starlette's TestClient. The landmark model is replaced by the points of
tests/data/drawn_character.json, so these tests check the server, not the model.
"""

from __future__ import annotations

import base64
import json
import re

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the kiosk server needs `pip install starlette uvicorn websockets`")

from toonsync.runtime import anime_landmarks  # noqa: E402
from toonsync.runtime.anime_landmarks import DrawingFit  # noqa: E402
from toonsync.runtime.errors import ModelError, NoFaceError  # noqa: E402
from toonsync.runtime.landmark_edit import HANDLES  # noqa: E402
from toonsync.runtime.server import ServerConfig, SharedAudioModel, create_app  # noqa: E402
from toonsync.runtime.server.drawings import MAX_DRAWINGS, WORK_SIDE  # noqa: E402

EVIL = {"origin": "https://evil.example"}


@pytest.fixture(scope="module")
def client(frontal_face):
    from starlette.testclient import TestClient

    from toonsync.runtime.prepare import load_face

    app = create_app(
        ServerConfig(allowed_hosts=("testserver",), draw_processes=0),
        model=SharedAudioModel("cpu"),
        avatar=load_face(frontal_face),
    )
    return TestClient(app)


@pytest.fixture(scope="module")
def drawing(data_dir) -> tuple[bytes, np.ndarray]:
    pts = json.loads((data_dir / "drawn_character.json").read_text())["landmarks"]
    return (data_dir / "drawn_character.png").read_bytes(), np.array(pts, np.float32)


@pytest.fixture
def fit(monkeypatch, drawing):
    """The landmark model answers with the JSON points, scaled to the image it is given (or ``fit.error``)."""
    pts = drawing[1]

    class Fake:
        confidence, error, calls = 0.9, None, 0

        def __call__(self, image):
            self.calls += 1
            if self.error is not None:
                raise self.error
            s = image.shape[1] / 360.0  # the JSON is for the 360 x 400 drawing
            return DrawingFit(pts * s, self.confidence, (0, 0, image.shape[1], image.shape[0]))

    fake = Fake()
    monkeypatch.setattr(anime_landmarks, "fit_drawing_landmarks", fake)
    return fake


def upload(client, body: bytes, **kw):
    return client.post("/api/drawing", content=body, **kw)


def test_upload_refit_use(client, drawing, fit):
    body, pts = drawing
    r = upload(client, body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", doc["drawing"]) and fit.calls == 1
    assert (doc["width"], doc["height"], doc["scale"], doc["confidence"]) == (360, 400, 1.0, 0.9)
    assert doc["warnings"] == []
    np.testing.assert_allclose(doc["points"], pts, atol=0.01)
    assert list(doc["handles"]) == list(HANDLES) and doc["handles"]["chin"] == doc["points"][8]
    png = base64.b64decode(doc["image"].removeprefix("data:image/png;base64,"))
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (400, 360, 3)

    did = doc["drawing"]
    chin = np.add(doc["handles"]["chin"], (0, 20)).tolist()
    r = client.post(f"/api/drawing/{did}/refit", json={"moved": {"chin": chin}})
    assert r.status_code == 200, r.text
    moved = np.array(r.json()["points"])
    np.testing.assert_allclose(moved[8], chin, atol=0.01)
    np.testing.assert_allclose(moved[[0, 16, 36, 45]], pts[[0, 16, 36, 45]], atol=0.01)
    assert r.json()["handles"]["chin"] == moved[8].tolist()
    # every handle sent: those not where they are count as dragged
    full = {**doc["handles"], "chin": chin}
    np.testing.assert_allclose(client.post(f"/api/drawing/{did}/refit", json={"handles": full}).json()["points"], moved)

    r = client.post(f"/api/drawing/{did}/use", json={"points": moved.tolist()})
    assert r.status_code == 200, r.text
    made = r.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", made["avatar"]) and made["preview"].startswith("data:image/png;base64,")
    assert len(made["mouth_box"]) == 4 and isinstance(made["warnings"], list)
    assert client.get(f"/api/avatar/{made['avatar']}/preview.png").content.startswith(b"\x89PNG")
    assert client.post(f"/api/drawing/{did}/use", json={}).status_code == 200  # the fitted points as they are


def test_big_drawing_is_scaled_down_with_its_points(client, drawing, fit):
    img = cv2.imdecode(np.frombuffer(drawing[0], np.uint8), cv2.IMREAD_COLOR)
    big = cv2.resize(img, (1440, 1600), interpolation=cv2.INTER_CUBIC)
    doc = upload(client, cv2.imencode(".png", big)[1].tobytes()).json()
    assert doc["height"] == WORK_SIDE and doc["width"] == round(1440 * WORK_SIDE / 1600)
    assert doc["scale"] == pytest.approx(WORK_SIDE / 1600, abs=1e-4)
    np.testing.assert_allclose(doc["points"], drawing[1] * (doc["width"] / 360, doc["height"] / 400), atol=0.01)
    r = client.post(f"/api/drawing/{doc['drawing']}/use", json={"points": doc["points"]})
    assert r.status_code == 200, r.text


def test_low_confidence_warns(client, drawing, fit):
    fit.confidence = 0.3
    doc = upload(client, drawing[0]).json()
    assert doc["confidence"] == 0.3 and len(doc["warnings"]) == 1 and "0.30" in doc["warnings"][0]


def test_bounded_store(client, drawing, fit):
    ids = [upload(client, drawing[0]).json()["drawing"] for _ in range(MAX_DRAWINGS + 1)]
    assert client.post(f"/api/drawing/{ids[0]}/refit", json={"moved": {}}).status_code == 404
    assert client.post(f"/api/drawing/{ids[-1]}/refit", json={"moved": {}}).status_code == 200
    assert len(client.app.state.kiosk.drawings) == MAX_DRAWINGS


@pytest.mark.parametrize(
    "case",
    "unknown_id bad_json not_an_object no_moved unknown_handle nan_handle bad_points_shape points_outside "
    "points_as_path path_id cross_origin_refit cross_origin_use big_json".split(),
)
def test_refit_and_use_refusals(client, drawing, fit, case):
    did = upload(client, drawing[0]).json()["drawing"]
    kw: dict = {"json": {"moved": {"chin": [180, 340]}}}
    url, status = f"/api/drawing/{did}/refit", None
    if case == "unknown_id":
        url, status = "/api/drawing/nope/refit", 404
    elif case == "path_id":
        url, status = "/api/drawing/..%2F..%2Fetc%2Fpasswd/use", 404
    elif case == "bad_json":
        kw, status = {"content": b"{not json"}, 400
    elif case == "not_an_object":
        kw, status = {"json": [1, 2]}, 400
    elif case == "no_moved":
        kw, status = {"json": {"chin": [1, 2]}}, 400
    elif case == "unknown_handle":
        kw, status = {"json": {"moved": {"ear": [1, 2]}}}, 422
    elif case == "nan_handle":
        kw, status = {"content": b'{"moved": {"chin": [NaN, 2]}}'}, 422
    elif case == "bad_points_shape":
        url, kw, status = f"/api/drawing/{did}/use", {"json": {"points": [[1, 2]] * 67}}, 422
    elif case == "points_outside":
        bad = drawing[1].tolist()
        bad[3] = [5000, 10]
        url, kw, status = f"/api/drawing/{did}/use", {"json": {"points": bad}}, 422
    elif case == "points_as_path":  # a string is never read as a file
        url, kw, status = f"/api/drawing/{did}/use", {"json": {"points": "/etc/passwd"}}, 422
    elif case == "big_json":
        kw, status = {"content": b" " * (1 << 17)}, 413
    else:
        url = url if case.endswith("refit") else f"/api/drawing/{did}/use"
        kw, status = {**kw, "headers": EVIL}, 403
    r = client.post(url, **kw)
    assert r.status_code == status, r.text
    if case == "path_id":  # no route matches: Starlette's own 404
        return
    doc = r.json()
    assert doc["error"] and doc["message"] and "\n" not in doc["message"] and "Traceback" not in r.text
    if case == "unknown_handle":
        assert "accepted handles: left_eye, right_eye" in doc["message"]


@pytest.mark.parametrize("case", "cross_origin too_large garbage no_face no_model no_weights busy".split())
def test_upload_refusals(client, drawing, fit, case):
    body, headers, status = drawing[0], {}, None
    limit = client.app.state.kiosk.config.max_upload_bytes
    if case == "cross_origin":
        headers, status = EVIL, 403
    elif case == "too_large":
        body, status = b"\x89PNG\r\n\x1a\n" + bytes(limit), 413
    elif case == "garbage":
        body, status = b"GIF89a not an accepted format" * 10, 415
    elif case == "no_face":
        fit.error, status = NoFaceError("no drawn face found"), 422
    elif case == "no_model":
        fit.error, status = NotImplementedError(), 503
    elif case == "no_weights":
        fit.error, status = ModelError("model card landmarks.onnx.json not found"), 503
    else:
        client.app.state.kiosk.uploads_waiting, status = 4, 503
    try:
        r = upload(client, body, headers=headers)
    finally:
        client.app.state.kiosk.uploads_waiting = 0
    assert r.status_code == status, r.text
    msg = r.json()["message"]
    assert msg and "\n" not in msg and not re.search(r"--[a-z]|docs/|\.md\b|\.json\b|Error\b", msg), msg
    if case == "no_face":
        assert msg.startswith("No face was found in this drawing")
    if case in ("cross_origin", "too_large", "garbage", "busy"):
        assert fit.calls == 0


def test_chunked_oversize_upload_is_refused(client, fit):
    limit = client.app.state.kiosk.config.max_upload_bytes
    r = upload(client, (b"\x89PNG\r\n\x1a\n" + bytes(1 << 20) for _ in range(limit // (1 << 20) + 1)))
    assert r.status_code == 413 and fit.calls == 0


def test_the_shipped_model_fits_uploads_and_photos_are_refused(client, data_dir, drawing):
    """No fake here: the landmark model fits the drawing; a photo is refused (its pixels would be streamed)."""
    r = upload(client, drawing[0])
    assert r.status_code == 200, r.text
    got, true = np.array(r.json()["points"], np.float32), drawing[1]
    assert np.linalg.norm(got - true, axis=1).mean() / np.linalg.norm(true[36] - true[45]) < 0.12
    r = upload(client, (data_dir / "grace_hopper.jpg").read_bytes())
    assert r.status_code == 422 and r.json()["error"] == "PhotoNotDrawing", r.text
    assert "photo" in r.json()["message"].lower()


def test_hostile_refit_and_use_bodies(client, drawing, fit):
    did = upload(client, drawing[0]).json()["drawing"]
    refit = lambda body: client.post(f"/api/drawing/{did}/refit", content=body)  # noqa: E731
    same = json.dumps({"points": [[5, 5]] * 68, "moved": {"left_eye": [50, 50]}})
    assert refit(same).status_code == 422  # the points' own eyes coincide
    huge = json.dumps({"points": [[1e300, 1e300]] * 68, "moved": {"left_eye": [50, 50]}})
    assert refit(huge).status_code in (400, 422)
    assert refit("[" * 60000).status_code == 400  # nests too deep to parse
    pts = drawing[1].copy()
    pts[:36] = pts[40]  # jaw, brows and nose piled on an eye
    pts[48:] = pts[40]
    r = client.post(f"/api/drawing/{did}/use", content=json.dumps({"points": pts.tolist()}))
    assert r.status_code == 422 and "do not form a face" in r.json()["message"], r.text
