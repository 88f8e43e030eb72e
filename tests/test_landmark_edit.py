"""Handle-driven adjustment of a drawn face's 68 landmarks (runtime/landmark_edit.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toonsync.runtime.drawing import load_landmarks
from toonsync.runtime.errors import InvalidLandmarks
from toonsync.runtime.landmark_edit import HANDLES, handles, refit

SHAPE = (400, 360, 3)  # tests/data/drawn_character.png


@pytest.fixture(scope="module")
def points(data_dir) -> np.ndarray:
    return np.array(json.loads((data_dir / "drawn_character.json").read_text())["landmarks"], np.float32)


def test_handles_are_where_their_points_are(points):
    h = handles(points)
    assert list(h) == list(HANDLES)
    np.testing.assert_allclose(h["left_eye"], points[36:42].mean(0), atol=1e-4)
    np.testing.assert_allclose(h["right_eye"], points[42:48].mean(0), atol=1e-4)
    assert h["mouth_left"] == tuple(points[48]) and h["mouth_right"] == tuple(points[54])
    assert h["chin"] == tuple(points[8]) and h["nose"] == tuple(points[30])
    assert h["left_brow"] == tuple(points[19]) and h["right_brow"] == tuple(points[24])


def test_no_move_is_identity(points):
    np.testing.assert_array_equal(refit(points, {}), points)
    np.testing.assert_allclose(refit(points, handles(points)), points, atol=1e-3)  # every handle where it is


def test_chin_moves_the_jaw_only(points):
    moved = np.array(handles(points)["chin"]) + (3.0, 20.0)
    out = refit(points, {"chin": moved}, SHAPE)
    np.testing.assert_allclose(out[8], moved, atol=1e-4)
    np.testing.assert_array_equal(out[[0, 16]], points[[0, 16]])
    np.testing.assert_array_equal(out[36:48], points[36:48])  # the eyes
    np.testing.assert_array_equal(out[17:36], points[17:36])  # brows and nose
    dy = out[:17, 1] - points[:17, 1]
    assert np.all(np.diff(dy[:9]) >= 0) and np.all(np.diff(dy[8:]) <= 0)  # falls off from the chin
    assert 0 < out[57, 1] - points[57, 1] < 20  # the lower lip follows a little
    np.testing.assert_array_equal(out[[48, 54]], points[[48, 54]])


def test_both_eyes_by_one_offset_translate_everything(points):
    h = handles(points)
    off = np.array([12.0, -7.0])
    out = refit(points, {"left_eye": np.add(h["left_eye"], off), "right_eye": np.add(h["right_eye"], off)})
    np.testing.assert_allclose(out, points + off, atol=1e-3)


def test_one_eye_apart_scales_about_the_other(points):
    h = handles(points)
    le, re = np.array(h["left_eye"]), np.array(h["right_eye"])
    out = refit(points, {"right_eye": re + (re - le) * 0.2})  # 20 % further apart
    nh = handles(out)
    np.testing.assert_allclose(nh["left_eye"], le, atol=1e-3)
    np.testing.assert_allclose(nh["right_eye"], re + (re - le) * 0.2, atol=1e-3)
    face = np.ptp(out, axis=0) / np.ptp(points, axis=0)
    np.testing.assert_allclose(face, 1.2, rtol=1e-3)  # the whole face scaled


def test_other_handles_land_where_dragged(points):
    h = handles(points)
    moved = {
        "mouth_left": np.add(h["mouth_left"], (-6, 3)),
        "mouth_right": np.add(h["mouth_right"], (5, -2)),
        "nose": np.add(h["nose"], (4, 6)),
        "left_brow": np.add(h["left_brow"], (0, -8)),
        "right_brow": np.add(h["right_brow"], (2, 5)),
    }
    out = refit(points, moved, SHAPE)
    nh = handles(out)
    for name, xy in moved.items():
        np.testing.assert_allclose(nh[name], xy, atol=1e-3, err_msg=name)
    np.testing.assert_array_equal(out[27], points[27])  # the top of the bridge stays
    np.testing.assert_array_equal(out[:17], points[:17])


def test_result_is_finite_inside_and_valid(points):
    h = handles(points)
    out = refit(points, {"chin": (180.0, 1e6), "left_eye": np.add(h["left_eye"], (-30, 10))}, SHAPE)
    assert out.shape == (68, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    assert out[:, 0].max() <= SHAPE[1] - 1 and out[:, 1].max() <= SHAPE[0] - 1 and out.min() >= 0
    load_landmarks(out, SHAPE)  # what avatar_from_drawing checks


@pytest.mark.parametrize(
    "pts, moved, says",
    [
        (None, {"forehead": (1, 2)}, "unknown handle 'forehead'; accepted handles: left_eye"),
        (None, {"chin": (float("nan"), 2)}, "handle 'chin'"),
        (None, {"chin": (1, 2, 3)}, "handle 'chin'"),
        (None, {"chin": "down"}, "handle 'chin'"),
        (None, [("chin", (1, 2))], "mapping of name"),
        (np.zeros((67, 2)), {}, "expected 68 [x, y] points"),
        ("nan", {}, "point 3 is not a finite number"),
    ],
)
def test_bad_input_raises_invalid_landmarks(points, pts, moved, says):
    if pts is None:
        pts = points
    elif isinstance(pts, str):
        pts = points.copy()
        pts[3, 1] = np.nan
    with pytest.raises(InvalidLandmarks) as e:
        refit(pts, moved)
    msg = str(e.value)
    assert says in msg and "\n" not in msg, msg
    if "handle" in says:
        assert all(name in msg for name in HANDLES)


def test_eyes_dragged_onto_each_other_are_refused(points):
    h = handles(points)
    with pytest.raises(InvalidLandmarks, match="eye handles would be"):
        refit(points, {"right_eye": h["left_eye"]})
