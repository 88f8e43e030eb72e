"""Kiosk avatar editing (runtime/server/styles.py): an avatar's attributes, and restyled copies under new ids.

HTTP only, through Starlette's TestClient: ``GET /api/avatar/{id}/attributes`` and ``POST /api/avatar/{id}/style``
with their refusals (400 not a JSON object or over 16 KiB, 403 cross-origin, 404 unknown avatar, 409 an avatar
animated from its own drawing, 422 a bad attribute or value naming what is accepted, 503 too many at once).
"""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the kiosk server needs `pip install starlette uvicorn websockets`")

from toonsync.runtime.avatar_attributes import attributes_of  # noqa: E402
from toonsync.runtime.avatar_style import FACIAL_HAIR, HAIR_LENGTHS, HAIR_STYLES  # noqa: E402
from toonsync.runtime.server import AvatarEntry, ServerConfig, create_app, make_look  # noqa: E402
from toonsync.runtime.server.styles import MAX_STYLE_BODY  # noqa: E402

ID = re.compile(r"[A-Za-z0-9_-]{16}")


@pytest.fixture(scope="module")
def client(model, avatar):
    from starlette.testclient import TestClient

    app = create_app(ServerConfig(allowed_hosts=("testserver",), draw_processes=0), model=model, avatar=avatar)
    return TestClient(app)


@pytest.fixture(scope="module")
def drawn_id(client, data_dir) -> str:
    """A drawn character in the kiosk's store (its own points, so no landmark model is needed)."""
    from toonsync.runtime.prepare import avatar_from_drawing

    pts = np.array(json.loads((data_dir / "drawn_character.json").read_text())["landmarks"], np.float32)
    av = avatar_from_drawing(str(data_dir / "drawn_character.png"), pts)
    assert av.base is not None
    srv = client.app.state.kiosk
    return srv.avatars.add(AvatarEntry(av, make_look(av, srv.config.size)))


def pixels(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG")
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)


def restyle(client, aid: str, overrides: dict, **kw):
    return client.post(f"/api/avatar/{aid}/style", json=overrides, **kw)


def assert_error(r, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["error"] == code and doc["message"], doc
    assert "\n" not in doc["message"] and "Traceback" not in r.text and "--style" not in doc["message"]
    return doc["message"]


def test_attributes_and_choices(client, avatar):
    r = client.get("/api/avatar/default/attributes")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["attributes"] == attributes_of(avatar.style)
    assert doc["editable"] is True
    ch = doc["choices"]
    assert ch["hair_style"] == list(HAIR_STYLES) and ch["hair_length"] == list(HAIR_LENGTHS)
    assert ch["facial_hair"] == list(FACIAL_HAIR) and ch["glasses"] == ["none", "round", "rectangular"]
    assert "blonde" in ch["colour_names"] and "black" in ch["colour_names"]


def test_restyle_makes_a_new_avatar(client, avatar):
    before = client.get("/api/avatar/default/attributes").json()
    original_png = client.get("/api/avatar/default/preview.png").content
    assert before["attributes"]["hair_style"] != "long_wavy" and not before["attributes"]["glasses"]

    r = restyle(client, "default", {"hair_style": "long_wavy", "glasses": "rectangular"})
    assert r.status_code == 200, r.text
    doc = r.json()
    new = doc["avatar_id"]
    assert ID.fullmatch(new) and doc["avatar"] == new and doc["preview"] == f"/api/avatar/{new}/preview.png"
    a = doc["attributes"]
    assert (a["hair_style"], a["hair_length"], a["glasses_shape"]) == ("long_wavy", "long", "rectangular")
    assert a["glasses"] is True
    assert "long_wavy" in doc["describe"] and "glasses (rectangular)" in doc["describe"]
    # what was not overridden is kept
    for key in ("skin_colour", "eye_colour", "hair_colour", "facial_hair", "headwear", "fringe"):
        assert a[key] == before["attributes"][key], key
    got = client.get(f"/api/avatar/{new}/attributes").json()
    assert got["attributes"] == a and got["editable"] is True

    # its preview differs from the original's (long wavy hair and glasses are a lot of pixels)
    new_png = client.get(f"/api/avatar/{new}/preview.png")
    assert new_png.status_code == 200 and new_png.headers["content-type"] == "image/png"
    diff = np.abs(pixels(new_png.content) - pixels(original_png)).max(axis=2)
    assert diff.shape == (512, 512) and (diff > 40).mean() > 0.02, (diff > 40).mean()

    # the original is untouched: attributes, preview, and the object the server holds
    assert client.get("/api/avatar/default/attributes").json() == before
    assert client.get("/api/avatar/default/preview.png").content == original_png
    srv = client.app.state.kiosk
    assert srv.avatars.get("default").avatar.style == avatar.style
    assert srv.avatars.get(new).avatar.meta["overridden"] == ["glasses", "hair_style"]


def test_restyle_of_a_restyle_and_repeats(client):
    first = restyle(client, "default", {"hair": "bob", "hair_colour": "blonde"}).json()
    assert first["attributes"]["hair_style"] == "bob" and first["attributes"]["hair_colour"] == "#dcb866"
    second = restyle(client, first["avatar_id"], {"facial_hair": "beard", "headwear": "#3a66c4", "part": -1})
    assert second.status_code == 200, second.text
    a = second.json()["attributes"]
    assert (a["hair_style"], a["facial_hair"], a["headwear"], a["part"]) == ("bob", "beard", "#3a66c4", -1.0)
    assert client.get(f"/api/avatar/{first['avatar_id']}/attributes").json()["attributes"] == first["attributes"]
    # the same edit again comes back to the look made before: its id, not another place in the store
    again = restyle(client, "default", {"hair": "bob", "hair_colour": "blonde"}).json()
    assert again["avatar_id"] == first["avatar_id"]
    # an empty edit is a copy (a new id: the original is never handed out as an edit)
    same = restyle(client, "default", {}).json()
    assert same["avatar_id"] != "default"
    assert same["attributes"] == client.get("/api/avatar/default/attributes").json()["attributes"]


@pytest.mark.parametrize(
    "overrides, accepted",
    [
        ({"hair_style": "mohawk"}, "long_wavy"),
        ({"hair_length": "waist"}, "bald, short, medium, long"),
        ({"facial_hair": "mutton_chops"}, "stubble, moustache, goatee, beard"),
        ({"fringe": 2}, "0..1"),
        ({"part": "left"}, "-1..1"),
        ({"volume": True}, "0..1"),
        ({"hair_colour": "#12"}, "#rrggbb"),
        ({"skin_colour": "plaid"}, "blonde"),
        ({"headwear": "hat"}, "#rrggbb"),
        ({"glasses_shape": "square"}, "round, rectangular"),
        ({"glasses": "maybe"}, "true or false"),
        ({"hair_style": "long_wavy", "hair_length": "short"}, "its lengths: long"),
        ({"moustache": "yes"}, "accepted: hair, glasses"),
        ({"hair_colour": [1, 2, 3]}, "a string, a number or true/false"),
        ({"hair_style": {"x": 1}}, "a string, a number or true/false"),
    ],
)
def test_bad_values_are_422_naming_what_is_accepted(client, overrides, accepted):
    msg = assert_error(restyle(client, "default", overrides), 422, "bad_attribute")
    assert accepted in msg, msg


@pytest.mark.parametrize("body", [b"[1, 2]", b'"hair=bob"', b"3", b"null", b"{not json", b'{"fringe": NaN}', b"\xff"])
def test_a_body_that_is_not_a_json_object_is_400(client, body):
    assert_error(client.post("/api/avatar/default/style", content=body), 400, "bad_request")


def test_an_oversized_body_is_400(client):
    body = json.dumps({"hair_style": "bob", "hair_colour": "#" + "a" * MAX_STYLE_BODY}).encode()
    msg = assert_error(client.post("/api/avatar/default/style", content=body), 400, "bad_request")
    assert "16 KiB" in msg
    chunks = (b" " * 4096 for _ in range(5))  # no Content-Length: refused while it is read
    assert_error(client.post("/api/avatar/default/style", content=chunks), 400, "bad_request")
    ok = json.dumps({"hair_style": "bob"}).encode() + b" " * (MAX_STYLE_BODY - 32)
    assert client.post("/api/avatar/default/style", content=ok).status_code == 200


def test_unknown_avatar_is_404(client):
    assert_error(client.get("/api/avatar/nope/attributes"), 404, "not_found")
    assert_error(restyle(client, "nope", {"hair_style": "bob"}), 404, "not_found")
    assert client.get("/api/avatar/..%2F..%2Fetc%2Fpasswd/attributes").status_code == 404


def test_cross_origin_restyle_is_403(client):
    r = restyle(client, "default", {"hair_style": "bob"}, headers={"origin": "https://evil.example"})
    assert_error(r, 403, "origin")


def test_too_many_edits_at_once_is_503(client):
    srv = client.app.state.kiosk
    srv.styles_waiting = 4
    try:
        assert_error(restyle(client, "default", {"hair_style": "bob"}), 503, "busy")
    finally:
        srv.styles_waiting = 0
    assert restyle(client, "default", {"hair_style": "bob"}).status_code == 200


def test_a_drawn_avatar_is_not_editable(client, drawn_id):
    doc = client.get(f"/api/avatar/{drawn_id}/attributes").json()
    assert doc["editable"] is False and "hair_style" in doc["attributes"]
    msg = assert_error(restyle(client, drawn_id, {"hair_style": "bob"}), 409, "not_editable")
    assert "own drawing" in msg


def test_restyles_share_the_bounded_store(model, avatar):
    from starlette.testclient import TestClient

    app = create_app(
        ServerConfig(allowed_hosts=("testserver",), draw_processes=0, max_avatars=3), model=model, avatar=avatar
    )
    with TestClient(app) as c:
        ids = [restyle(c, "default", {"volume": v}).json()["avatar_id"] for v in (0.1, 0.3, 0.5, 0.7)]
        assert len(set(ids)) == 4
        assert c.get(f"/api/avatar/{ids[0]}/attributes").status_code == 404  # the least recently used went
        for aid in ["default", *ids[1:]]:
            assert c.get(f"/api/avatar/{aid}/attributes").status_code == 200
