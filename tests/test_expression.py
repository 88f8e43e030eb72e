"""How the motion is shown: the drawn mouth opening (``mouth_gain``) and the head motion (``head_motion``),
applied once in ``Stream`` so that what ``toonsync motion`` writes is what a render draws."""

from __future__ import annotations

import numpy as np
import pytest

from toonsync.runtime.errors import InputError
from toonsync.runtime.mouth import (
    DEAD_ZONE,
    MOUTH_GAIN,
    OPEN_LIMIT,
    PARTED,
    ROUND_LIMIT,
    SHUT_FROM,
    SHUT_TO,
    drawn_mouth,
    drawn_opening,
    mouth_basis,
    shape_closures,
)
from toonsync.runtime.options import RenderOptions


def test_drawn_opening_is_flat_at_closed_steep_above_and_limited():
    x = np.linspace(0.0, 0.5, 501, dtype=np.float32)
    np.testing.assert_array_equal(drawn_opening(x, 1.0), x)  # gain 1: the model's opening as it is
    np.testing.assert_allclose(drawn_opening(x, 0.5), 0.5 * x, rtol=1e-6)
    y = drawn_opening(x, 2.5)
    assert np.all(np.diff(y) >= 0)  # monotonic: a wider model mouth is never drawn narrower
    assert y[10] < x[10]  # a near-closed mouth (0.01) is drawn more closed, not opened
    d = DEAD_ZONE * (1 - 1 / 2.5)
    slope = np.diff(y[-100:]).mean() / np.diff(x[-100:]).mean()
    assert slope == pytest.approx(2.5, rel=0.02) and y[-1] == pytest.approx(2.5 * (0.5 - d), rel=0.01)
    assert drawn_opening(np.float32(5.0), 4.0) == pytest.approx(OPEN_LIMIT)
    assert drawn_opening(np.float32(-0.02), 2.5) == pytest.approx(-0.02)  # lips pressed: as they are


def test_closure_head_shuts_the_lips_and_parts_them_on_other_spoken_frames():
    m = np.array([[0.02, 0.3, 0.0], [0.6, 0.0, 0.0], [0.05, 0.1, 0.9], [0.6, 0.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    closed = np.array([0.1, 0.1, 0.1, 0.95, 0.1], np.float32)
    presence = np.array([1.0, 1.0, 1.0, 1.0, 0.0], np.float32)  # the last frame is in a pause (gate gain 0)
    out = shape_closures(m, closed, presence)
    assert out[0, 0] == pytest.approx(PARTED) and out[0, 1] == m[0, 1]  # an S or a T: parted, spread as it was
    assert out[1, 0] == m[1, 0] and out[2, 2] == m[2, 2]  # an open vowel and an F/V bite as they are
    assert out[3, 0] == 0.0 and out[3, 2] == 0.0  # a P the head is sure of: shut, no bite
    assert out[4, 0] == 0.0  # a pause stays closed: the floor follows the silence gate
    ramp = shape_closures(np.tile(m[1], (101, 1)), np.linspace(0, 1, 101), np.ones(101))[:, 0]
    assert np.all(np.diff(ramp) <= 0) and ramp[0] == m[1, 0] and ramp[-1] == 0.0  # closes along a ramp, no jump
    p = np.linspace(0, 1, 101)
    assert np.all(ramp[p <= SHUT_FROM] == m[1, 0]) and np.abs(ramp[p >= SHUT_TO]).max() < 1e-5
    for gain in (0.0, 0.5, 1.0):  # at most 1: the model's mouth as it says it
        np.testing.assert_array_equal(shape_closures(m, closed, presence, gain), m)
    assert shape_closures(m, closed, presence, 2.0)[0, 0] == pytest.approx(PARTED * 2.0 / MOUTH_GAIN)
    assert shape_closures(m, np.full(5, np.nan, np.float32), presence)[1, 0] == m[1, 0]  # NaN: not shut


def test_drawn_mouth_exaggerates_opening_and_rounding_but_not_a_smile_or_a_bite():
    m = np.array([[0.4, -0.3, 0.0], [0.2, 0.5, 0.0], [0.05, 0.1, 0.6], [0.3, -0.9, 0.2]], np.float32)
    np.testing.assert_array_equal(drawn_mouth(m, 1.0), m)  # gain 1: as the model says
    d = drawn_mouth(m, 2.5)
    np.testing.assert_array_equal(d[:, 0], drawn_opening(m[:, 0], 2.5))
    assert d[0, 1] == pytest.approx(-0.75) and d[1, 1] == m[1, 1]  # rounding x gain; a smile as it is
    np.testing.assert_array_equal(d[:, 2], m[:, 2])  # the F/V bite as the model says it
    assert d[3, 1] == pytest.approx(-ROUND_LIMIT)


def test_gain_changes_only_the_mouth_shape_and_motion_equals_the_render(animator, speech_wav, frontal_face):
    from toonsync.runtime.motion_io import animate
    from toonsync.runtime.pipeline import render
    from toonsync.runtime.prepare import load_face

    neutral = load_face(frontal_face).neutral
    raw = animate(speech_wav, face=frontal_face, animator=animator, mouth_gain=1.0)
    shown = animate(speech_wav, face=frontal_face, animator=animator)  # the default, anime-scale
    np.testing.assert_array_equal(raw.mouth, shown.mouth)  # the model's mouth parameters are not touched
    # the two differ by mouth shapes alone: a combination of the mouth basis on every frame
    diff = (shown.landmarks - raw.landmarks).reshape(len(raw.mouth), -1)
    basis = mouth_basis().reshape(3, -1)
    coef = np.linalg.lstsq(basis.T, diff.T, rcond=None)[0]
    np.testing.assert_allclose(coef.T @ basis, diff, atol=1e-6)
    gap = lambda m: m.landmarks[:, [65, 66, 67], 1].mean(1) - m.landmarks[:, [61, 62, 63], 1].mean(1)  # noqa: E731
    assert np.percentile(gap(shown), 90) > 1.8 * np.percentile(gap(raw), 90)  # visibly wider when speaking
    shut = gap(raw) < 1e-4  # drawn shut at gain 1 (a pause, or a closure the model shuts)
    assert shut.mean() > 0.1 and (gap(shown) <= 1e-4)[shut].all()  # ... is shut at any gain
    assert np.allclose(shown.landmarks[:, 17:48], raw.landmarks[:, 17:48])  # brows, nose, eyes stay (the jaw moves)

    # what `toonsync motion` writes is what a render draws (the same options)
    res = render(frontal_face, speech_wav, None, animator=animator, mouth_gain=3.0, head_motion=0.5)
    m = animate(speech_wav, face=frontal_face, animator=animator, mouth_gain=3.0, head_motion=0.5)
    np.testing.assert_array_equal(res.motion.landmarks, m.landmarks)
    np.testing.assert_array_equal(res.motion.pose, m.pose)
    assert neutral.shape == (68, 2)


def test_head_motion_scales_the_pose_and_zero_keeps_the_head_still(animator, speech_wav):
    from toonsync.runtime.motion_io import animate

    one = animate(speech_wav, animator=animator)
    still = animate(speech_wav, animator=animator, head_motion=0.0)
    more = animate(speech_wav, animator=animator, head_motion=2.0)
    assert np.degrees(still.pose).std(0).max() < 0.05 and np.abs(still.pose).max() == 0.0
    from toonsync.runtime.motion import POSE_LIMIT, limit_pose

    raw = POSE_LIMIT * np.arctanh(one.pose / POSE_LIMIT)  # the pose before the soft limit
    np.testing.assert_allclose(more.pose, limit_pose(2 * raw), atol=2e-5)
    assert (np.abs(more.pose) < POSE_LIMIT).all()
    assert np.degrees(one.pose[:, 0]).std() > 0.3  # the default moves
    np.testing.assert_array_equal(still.landmarks, one.landmarks)  # the mouth does not depend on it


def test_knobs_are_validated_and_on_the_command_line():
    from toonsync.cli import build_parser

    for bad in (
        {"mouth_gain": -1},
        {"mouth_gain": 9},
        {"head_motion": 3},
        {"head_motion": "lots"},
        {"mouth_gain": True},
    ):
        with pytest.raises(InputError, match="must be a number in 0.."):
            RenderOptions(**bad)
    assert RenderOptions().mouth_gain == MOUTH_GAIN and RenderOptions().head_motion == 1.0
    for cmd in (
        ["render", "f.jpg", "a.wav", "-o", "o.mp4"],
        ["motion", "a.wav", "-o", "m.json"],
        ["stream", "--wav", "a.wav", "--face", "f.jpg"],
    ):
        a = build_parser().parse_args([*cmd, "--mouth-gain", "1.5", "--head-motion", "0"])
        assert (a.mouth_gain, a.head_motion) == (1.5, 0.0)


def test_mouth_strip_shows_the_mouth_moving(tmp_path, frontal_face, speech_wav):
    import cv2

    from toonsync.tools.figures import mouth_strip

    out = mouth_strip(frontal_face, speech_wav, tmp_path / "strip.png", frames=12, tile=64)
    img = cv2.imread(str(out))
    assert img.shape == (64 + 18, 12 * 64, 3)
    tiles = [img[:64, i * 64 : (i + 1) * 64].astype(np.int16) for i in range(12)]
    assert max(np.abs(t - tiles[0]).mean() for t in tiles[1:]) > 2  # the mouth changes across the strip


@pytest.mark.parametrize("photo", ["demo_face", "grace_hopper"])
def test_each_emotion_is_visible_distinct_and_keeps_closures(photo, frontal_face, data_dir):
    """Brows and mouth move by >= 3 % of the face width for every emotion, each differently; the eyelids
    open or narrow; the inner lips keep their gap (a closed mouth stays closed)."""
    from toonsync.runtime.avatar_geometry import apply_emotion, eye_open_factor
    from toonsync.runtime.motion import emotion_vector
    from toonsync.runtime.mouth import inner_lip_gap
    from toonsync.runtime.prepare import load_face

    neutral = load_face(frontal_face if photo == "demo_face" else data_dir / f"{photo}.jpg").neutral
    width = neutral[16, 0] - neutral[0, 0]
    shown = {}
    for name in ("happy", "sad", "angry", "fearful", "disgusted"):
        v = emotion_vector(name)
        lm = apply_emotion(neutral, v)
        moved = np.linalg.norm(lm - neutral, axis=1) / width
        assert moved[17:27].max() >= 0.03 and moved[48:68].max() >= 0.03, (name, moved[17:27].max(), moved[48:68].max())
        assert abs(eye_open_factor(v) - 1.0) >= 0.2, name
        assert inner_lip_gap(lm) == pytest.approx(inner_lip_gap(neutral), abs=1e-6)
        shown[name] = lm
    names = list(shown)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.linalg.norm(shown[a] - shown[b], axis=1).max() / width >= 0.03, (a, b)
    half = apply_emotion(neutral, 0.5 * emotion_vector("sad"))  # a blend is between: transitions cannot pop
    assert np.abs(half - neutral).max() < np.abs(shown["sad"] - neutral).max()
