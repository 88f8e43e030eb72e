"""The landmark model for drawn faces: its training data, window geometry, the shipped model on drawings (the
bundled one, the same drawing turned and small in a big canvas, real drawings from Debian packages when
installed), the photo/drawing decision, the framing of the whole head, ``toonsync landmarks`` and the bundle's
``source_landmarks``."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from toonsync.runtime.anime_landmarks import (
    FLIP,
    fit_drawing_landmarks,
    flat_share,
    looks_drawn,
    mirror_points,
    preview,
    to_image,
    window_transform,
)
from toonsync.runtime.drawing import frame_drawing
from toonsync.runtime.errors import DrawingFallbackWarning, InputError, NoFaceError, PhotoNotDrawing
from toonsync.runtime.image_io import load_image

DATA = Path(__file__).resolve().parent / "data"
DRAWN = DATA / "drawn_character.png"
LABELLED = DATA / "drawings_labelled.json"


def truth() -> np.ndarray:
    return np.asarray(json.loads((DATA / "drawn_character.json").read_text())["landmarks"], np.float32)


def nme(pred: np.ndarray, true: np.ndarray, idx=slice(None)) -> float:
    return float(np.linalg.norm(pred[idx] - true[idx], axis=1).mean() / np.linalg.norm(true[36] - true[45]))


def test_flip_pairs_mirror_each_other():
    assert sorted(FLIP) == list(range(68)) and (FLIP[FLIP] == np.arange(68)).all()
    assert FLIP[36] == 45 and FLIP[48] == 54 and FLIP[8] == 8 and FLIP[30] == 30
    p = np.random.default_rng(0).random((68, 2)).astype(np.float32)
    np.testing.assert_allclose(mirror_points(mirror_points(p)), p, atol=1e-6)


def test_window_transform_round_trip():
    M = window_transform((120.0, 80.0), 64.0, math.radians(20), 128)
    pts = np.array([[120.0, 80.0], [150.0, 60.0]], np.float32)
    win = (pts @ M[:, :2].T + M[:, 2]) / 128
    np.testing.assert_allclose(win[0], [0.5, 0.5], atol=1e-5)  # the centre lands mid-window
    np.testing.assert_allclose(to_image(win, M, 128), pts, atol=1e-3)


def test_synthetic_characters_and_windows():
    from toonsync.training.anime_synth import flat_character, window

    rng = np.random.default_rng(3)
    for _ in range(5):
        ch = flat_character(rng)
        assert ch.rgba.shape == (256, 256, 4) and ch.points.shape == (68, 2)
        assert (ch.points > 0).all() and (ch.points < 256).all()
        a = ch.rgba[..., 3]
        inside = a[ch.points[:, 1].astype(int), ch.points[:, 0].astype(int)]
        assert (inside > 0).mean() > 0.9  # the points are on the drawn character
        img, pts, face = window(ch, rng, 64, "refine")
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and face == 1.0
        assert np.abs(pts.mean(0) - 0.5).max() < 0.2  # a refine window is centred on the face
        assert window(ch, rng, 64, "negative")[2] == 0.0


def test_flat_share_tells_drawings_from_photos():
    assert looks_drawn(load_image(DRAWN))
    for photo in (DATA / "grace_hopper.jpg", DATA / "side_profile_camera.jpg", DATA / "no_face_coffee.jpg"):
        assert flat_share(load_image(photo)) < 0.4, photo.name


def test_bundled_drawing_is_fitted_without_a_json():
    fit = fit_drawing_landmarks(load_image(DRAWN))
    true = truth()
    assert nme(fit.points, true) < 0.1, nme(fit.points, true)
    assert nme(fit.points, true, slice(36, 48)) < 0.08  # eyes
    assert fit.confidence >= 0.5


def test_turned_and_small_drawings_are_found():
    img, true = load_image(DRAWN), truth()
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), 20, 1.0)  # the drawing turned by 20 degrees
    turned = cv2.warpAffine(img, M, (w, h), borderMode=cv2.BORDER_REPLICATE)
    t_true = true @ M[:, :2].T + M[:, 2]
    assert nme(fit_drawing_landmarks(turned).points, t_true) < 0.12
    canvas = np.full((1200, 900, 3), 255, np.uint8)  # a small face in a big picture, like a full-body sprite
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    canvas[150 : 150 + h // 2, 500 : 500 + w // 2] = small
    s_true = true / 2 + [500, 150]
    assert nme(fit_drawing_landmarks(canvas).points, s_true) < 0.12
    big = cv2.resize(img, None, fx=6, fy=6, interpolation=cv2.INTER_LINEAR)  # 2160 x 2400: searched smaller
    assert nme(fit_drawing_landmarks(big).points, true * 6 + 2.5) < 0.12


def test_no_face_in_a_drawing_without_one():
    img = np.full((300, 300, 3), 240, np.uint8)
    cv2.rectangle(img, (50, 60), (250, 200), (40, 120, 200), -1)
    with pytest.raises(NoFaceError):
        fit_drawing_landmarks(img)
    with pytest.raises(InputError, match="RGB uint8"):
        fit_drawing_landmarks(np.zeros((10, 10), np.float32))


def labelled() -> list[dict]:
    doc = json.loads(LABELLED.read_text())
    found = [d for d in doc["drawings"] if Path(d["file"]).is_file()]
    if not found:
        pytest.skip("real drawings come from Debian's renpy-demo and renpy-thequestion (apt-get install renpy-demo "
                    "renpy-thequestion); not installed")  # fmt: skip
    return found


def test_real_drawings_from_packages():
    for d in labelled():
        fit = fit_drawing_landmarks(load_image(d["file"]))
        idx = [int(k) for k in d["points"]]
        true = np.zeros((68, 2), np.float32)
        true[idx] = np.asarray(list(d["points"].values()), np.float32)
        err = np.linalg.norm(fit.points[idx] - true[idx], axis=1).mean() / np.linalg.norm(true[36] - true[45])
        assert err < 0.2, (d["file"], err)  # on the face, not somewhere else in the sprite


def test_frame_keeps_the_whole_head():
    img, true = load_image(DRAWN), truth()
    base, neutral = frame_drawing(img, true)
    eyes = np.linalg.norm(neutral[42:48].mean(0) - neutral[36:42].mean(0))
    assert 0.5 * 0.28 <= eyes < 0.28  # framed smaller than a photo avatar: the tall hair needs it
    bg = np.array([196, 234, 222])  # the drawing's mint backdrop
    top = base[:6].reshape(-1, 3).astype(int)
    assert (np.abs(top - bg).max(1) < 40).mean() > 0.9  # nothing of the hair is cut at the top


def test_photo_falls_back_to_drawing_only_for_drawings():
    from toonsync.runtime.prepare import load_face

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        av = load_face(DRAWN)  # no --drawing: a flat-colour drawing with a drawn face
    assert av.meta["kind"] == "drawing" and av.base is not None
    assert any(issubclass(w.category, DrawingFallbackWarning) for w in caught)
    with pytest.raises(NoFaceError):
        load_face(DATA / "no_face_coffee.jpg")  # a photo without a face stays an error
    photo = load_image(DATA / "grace_hopper.jpg")
    big = cv2.resize(cv2.bilateralFilter(photo, 9, 40, 9), None, fx=3, fy=3)  # smoothed and enlarged: flatter
    for p in (photo, big):
        assert load_face(p).base is None  # a photo is never animated from its pixels ...
        with pytest.raises(PhotoNotDrawing, match="photograph"):
            load_face(p, drawing=True)  # ... not even when called a drawing


def test_thin_and_tiny_pictures_are_typed_errors():
    for shape in ((1, 2000, 3), (3000, 1, 3), (1, 1025, 3), (12, 12, 3)):
        with pytest.raises(NoFaceError, match="pixels each way"):
            fit_drawing_landmarks(np.full(shape, 200, np.uint8))


def test_bundle_keeps_the_source_points(tmp_path):
    from toonsync.runtime.prepare import Avatar, load_face

    av = load_face(DRAWN, drawing=True)
    assert av.meta["landmarks"] == "fitted" and 0.0 <= av.meta["landmarks_confidence"] <= 1.0
    p = av.save(tmp_path / "d.avatar")
    back = Avatar.load(p)
    np.testing.assert_allclose(back.source_landmarks, av.source_landmarks, atol=0.01)
    import zipfile

    with zipfile.ZipFile(p) as z:
        doc = json.loads(z.read("avatar.json"))
    doc["source_landmarks"] = doc["source_landmarks"][:60]
    bad = tmp_path / "bad.avatar"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("avatar.json", json.dumps(doc))
    with pytest.raises(InputError, match="source_landmarks"):
        Avatar.load(bad)


def test_preview_draws_numbered_points():
    img = preview(load_image(DRAWN), truth(), side=384)
    assert img.shape == (384, 384, 3) and img.dtype == np.uint8
    assert (np.abs(img.astype(int) - [230, 60, 60]).max(2) < 30).sum() > 50  # the jaw's red dots


def test_cli_landmarks_writes_points_and_preview(tmp_path):
    from toonsync.cli import main

    out = tmp_path / "d.json"
    assert main(["landmarks", str(DRAWN), "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["landmarks"]) == 68 and doc["image_size"] == [360, 400]
    assert cv2.imread(str(tmp_path / "d.preview.png")).shape[:2] == (768, 768)
    from toonsync.runtime.drawing import load_landmarks

    assert load_landmarks(out, (400, 360, 3)).shape == (68, 2)  # what --landmarks reads
    drawing = tmp_path / "x.png"
    drawing.write_bytes(DRAWN.read_bytes())
    before = drawing.read_bytes()
    assert main(["landmarks", str(drawing), "-o", str(tmp_path / "x.json")]) == 0  # the preview: x.preview.png
    assert main(["landmarks", str(drawing), "-o", str(tmp_path / "y.json"), "--preview", str(drawing)]) != 0
    assert drawing.read_bytes() == before  # never writes over its input
    assert main(["landmarks", str(DATA / "grace_hopper.jpg"), "-o", str(tmp_path / "p.json")]) != 0
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "p.preview.png").exists()  # no photo pixels


@pytest.mark.slow
def test_landmarks_training_export_parity(tmp_path):
    from toonsync.export.learned import export_landmarks
    from toonsync.training.models.landmarker import LandmarkerConfig
    from toonsync.training.train_landmarks import TrainConfig, train

    tcfg = TrainConfig(steps=3, batch=8, pool=12, refresh=1, eval_chars=6, eval_every=3, threads=1, device="cpu")
    info = train(tmp_path, LandmarkerConfig(size=64, width=8, hidden=32), tcfg)
    assert set(info["metrics"]) >= {"nme", "nme_avatar", "nme_flat", "face_acc_avatar", "nme_by_region"}
    tuned = train(
        tmp_path / "ft",
        LandmarkerConfig(),
        TrainConfig(**{**tcfg.__dict__, "steps": 1}),
        init=tmp_path / "landmarks.pt",
    )
    assert tuned["init"]["checkpoint"].endswith("landmarks.pt") and tuned["config"]["width"] == 8  # its config wins
    card = export_landmarks(tmp_path / "landmarks.pt", tmp_path / "models")
    assert card["parity"]["max_abs_diff"] < 1e-3
    assert (tmp_path / "models" / "landmarks.fp32.onnx").is_file()


def test_a_smaller_face_speaks_with_a_smaller_mouth():
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.avatar_geometry import face_scale, mean_face_landmarks
    from toonsync.runtime.mouth import inner_lip_gap
    from toonsync.runtime.pipeline import Animator

    audio = load_audio(Path(__file__).resolve().parents[1] / "runtime" / "assets" / "demo_speech.wav")[:48000]
    face = mean_face_landmarks()
    small = 0.5 + (face - 0.5) * 0.6  # framed at 0.6 of the canonical size (tall hair)
    assert face_scale(face) == 1.0 and abs(face_scale(small) - 0.6) < 1e-4
    assert face_scale(np.zeros((68, 2), np.float32)) == 1.0  # not an avatar's framing: left unscaled
    a = Animator("cpu", "fp32")
    big_gap = inner_lip_gap(a.animate(audio, face, seed=0).landmarks)
    small_gap = inner_lip_gap(a.animate(audio, small, seed=0).landmarks) - inner_lip_gap(small[None])[0]
    big_gap = big_gap - inner_lip_gap(face[None])[0]
    assert big_gap.max() > 0.01
    np.testing.assert_allclose(small_gap, 0.6 * big_gap, atol=2e-4)
