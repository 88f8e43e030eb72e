"""The ONNX warp renderer (render.onnx) and drawn characters.

Parity of the shipped graph against its torch module, the identity at neutral, the mouth interior, the
eyelids, head turns without holes, and a drawn character prepared + rendered to an MP4.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from toonsync.runtime.avatar import AvatarRenderer, AvatarStyle, mean_face_landmarks
from toonsync.runtime.errors import InputError, InvalidLandmarks, NoFaceError
from toonsync.runtime.mouth import apply_mouth
from toonsync.runtime.warp_renderer import WarpRenderer

from .catalogue import DATA, SPEECH

DRAWN, DRAWN_JSON = DATA / "drawn_character.png", DATA / "drawn_character.json"
STYLE = AvatarStyle(
    skin=(236, 200, 170),
    hair=(90, 60, 40),
    eyes=(60, 110, 170),
    lips=(200, 110, 110),
    background=(225, 230, 245),
    hair_length=0.3,
    glasses=False,
)


@pytest.fixture(scope="module")
def procedural():
    return AvatarRenderer(STYLE, mean_face_landmarks(), 256)


@pytest.fixture(scope="module")
def warp(procedural):
    return WarpRenderer.for_procedural(procedural)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _mask(shape, pts, grow: int = 0) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
    if grow > 0:
        m = cv2.dilate(m, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    elif grow < 0:
        m = cv2.erode(m, np.ones((-2 * grow + 1, -2 * grow + 1), np.uint8))
    return m > 0


def _near(img: np.ndarray, colours: np.ndarray, tol: float) -> np.ndarray:
    """Pixels within ``tol`` (RGB distance) of any of ``colours`` [k, 3] (0..255)."""
    d = np.linalg.norm(img[..., None, :3].astype(np.float32) - colours[None, None].astype(np.float32), axis=-1)
    return d.min(-1) < tol


# -- the graph ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [256, 512])
def test_onnx_matches_torch(size):
    """The shipped render.fp32.onnx equals its torch module on random poses/blinks/mouths, batch 3."""
    torch = pytest.importorskip("torch")
    from toonsync.export.render_export import RenderWrapper, render_inputs, render_spec
    from toonsync.runtime.backend import load_model
    from toonsync.training.models.warp_renderer import WarpRenderer as TorchRenderer

    lm = load_model("render", "fp32", "cpu")  # sha256 checked against the sidecar
    x = render_inputs(render_spec(), 3, size, np.random.default_rng(size))
    got = lm.run(x)["rgba"]
    with torch.no_grad():
        ref = RenderWrapper(TorchRenderer()).eval()(*(torch.from_numpy(v) for v in x.values()))[0].numpy()
    assert got.shape == ref.shape == (3, size, size, 4) and got.dtype == ref.dtype == np.uint8
    diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1, diff.max()  # float summation order may flip a rounding to uint8 ...
    assert (diff > 0).mean() < 2e-3, (diff > 0).mean()  # ... for a few values (measured ~0.05 % on noise bases)


def test_batch_equals_single_frames(warp):
    rng = np.random.default_rng(1)
    n = mean_face_landmarks()
    lms = apply_mouth(n, np.stack([rng.uniform(0, 1, 3), rng.uniform(-1, 1, 3), np.zeros(3)], 1))
    pose, blink = rng.uniform(-0.3, 0.3, (3, 3)).astype(np.float32), np.array([0.0, 0.5, 1.0], np.float32)
    batch = warp.run(lms, pose, blink)
    for i in range(3):
        assert np.array_equal(batch[i], warp.run(lms[i], pose[i], blink[i : i + 1])[0])


def test_neutral_reproduces_the_base(procedural, warp):
    """Neutral landmarks, no pose, no blink: the identity warp gives the base image back."""
    assert np.array_equal(warp.run(procedural.neutral)[0], warp._opaque[0, ..., :4])  # bit-exact
    out = warp.draw(procedural.neutral)
    psnr = _psnr(out, procedural.draw(procedural.neutral))
    assert psnr > 60.0, psnr  # only premultiplied-alpha rounding at the character's anti-aliased edge
    rgba = warp.draw_rgba(procedural.neutral)
    assert _psnr(rgba[..., 3], procedural.draw_rgba(procedural.neutral)[..., 3]) > 60.0


def test_open_mouth_shows_the_interior_inside_the_lips_only(procedural, warp):
    lm = apply_mouth(procedural.neutral, np.array([1.0, 0.0, 0.0], np.float32))
    img = warp.draw(lm)
    px = lm * 256
    inner = _mask(img.shape, px[60:68], grow=-2)
    mouth_cols = np.array([warp._const["colours"][0, k] for k in (2, 3, 4, 5)]) * 255  # interior, teeth, tongue, line
    assert inner.sum() > 50
    assert _near(img, mouth_cols, 40)[inner].mean() > 0.8
    lum = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    neutral_lum = warp.draw(procedural.neutral).astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert lum[inner].mean() < neutral_lum[inner].mean() - 40  # darker where the lips parted
    outside = ~_mask(img.shape, px[48:60], grow=4)
    dark_interior = _near(img, mouth_cols[:1], 25)
    assert dark_interior[outside].sum() == 0  # no mouth interior outside the lips


def test_blink_covers_the_eyes(procedural, warp):
    open_, shut = warp.draw(procedural.neutral, blink=0.0), warp.draw(procedural.neutral, blink=1.0)
    px = procedural.neutral * 256
    eyes = _mask(open_.shape, px[36:42], grow=3) | _mask(open_.shape, px[42:48], grow=3)
    cols = warp._const["colours"][0]
    skin_or_lash = np.array([cols[0], cols[1]]) * 255
    white = np.array([[252, 252, 255], [208, 212, 234]], np.float32)  # the procedural sclera colours
    assert _near(open_, white, 30)[eyes].mean() > 0.2
    assert _near(shut, white, 30)[eyes].mean() < 0.01
    assert _near(shut, skin_or_lash, 40)[eyes].mean() > 0.8  # lid skin, the lash line (+ its anti-aliasing)
    assert _near(shut, np.array([STYLE.eyes], np.float32), 30)[eyes].mean() < 0.01  # no iris left
    half = warp.draw(procedural.neutral, blink=0.5)
    assert 0.02 < _near(half, white, 30)[eyes].mean() < _near(open_, white, 30)[eyes].mean()


def test_head_turn_moves_the_face_without_holes(procedural, warp):
    n = procedural.neutral
    still = warp.run(n)[0]
    turned = warp.run(n, np.array([0.45, 0.0, 0.0], np.float32))[0]
    nose = np.round(n[30] * 256).astype(int)
    band = np.s_[nose[1] - 30 : nose[1] + 30]
    diff = np.abs(turned.astype(np.int16) - still.astype(np.int16)).sum(-1)
    assert diff[band].mean() > 5  # the face moved
    cols = np.nonzero(diff[band].max(0) > 60)[0]
    assert cols.size and cols.mean() > 256 * 0.4  # toward +x (yaw > 0 turns the features right)
    for pose in ([0.6, 0.6, 0.6], [-0.6, -0.6, -0.6], [0.6, -0.6, 0.0]):
        out = warp.run(n, np.array(pose, np.float32))[0]
        assert out[..., 3].min() == 255  # opaque everywhere: no holes (border clamping), at the edge or inside
        assert not (out[..., :3] == 0).all(-1).any()  # and no black fill (what zero padding would leave)
        assert np.array_equal(out[-1], still[-1])  # the bottom edge (shoulders) never moves


def test_bench_has_the_onnx_renderer_cases():
    from toonsync.tools.cases import case_specs

    names = {s.name for s in case_specs(cold=False)}
    assert {"renderer.draw.256", "renderer.onnx.256", "renderer.onnx.512"} <= names


def test_renderer_selection(procedural):
    from toonsync.runtime.prepare import Avatar

    av = Avatar(STYLE, procedural.neutral)
    assert isinstance(av.renderer(128), AvatarRenderer)
    assert isinstance(av.renderer(128, "onnx"), WarpRenderer)
    with pytest.raises(InputError, match="accepted: auto, procedural, onnx"):
        av.renderer(128, "gpu-magic")


# -- drawn characters ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def drawn():
    from toonsync.runtime.prepare import load_face

    return load_face(DRAWN, landmarks=DRAWN_JSON)


def test_drawn_character_bundle_keeps_the_drawing(drawn, tmp_path):
    from toonsync.runtime.prepare import Avatar

    assert drawn.base is not None and drawn.base.shape == (512, 512, 3) and drawn.meta["kind"] == "drawing"
    p = drawn.save(tmp_path / "char.avatar")
    back = Avatar.load(p)
    assert np.array_equal(back.base, drawn.base) and np.allclose(back.neutral, drawn.neutral, atol=1e-5)
    r = back.renderer(256)
    assert isinstance(r, WarpRenderer)
    base256 = cv2.resize(drawn.base, (256, 256), interpolation=cv2.INTER_AREA)
    assert _psnr(r.draw(back.neutral), base256) > 45  # the drawing itself, not a redrawn face
    with pytest.raises(InputError, match="own pixels"):
        back.renderer(256, "procedural")


def test_drawn_landmarks_accepts_a_plain_list_and_checks_points(tmp_path):
    from toonsync.runtime.drawing import load_landmarks

    pts = json.loads(DRAWN_JSON.read_text())["landmarks"]
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(pts))
    assert load_landmarks(plain, (400, 360)).shape == (68, 2)
    swapped = np.array(pts)
    swapped[36:48] = swapped[36]  # every eye point on one spot
    with pytest.raises(InvalidLandmarks, match="eye centres"):
        load_landmarks(swapped, (400, 360))


def test_drawing_without_a_face_asks_for_landmarks():
    from toonsync.runtime.prepare import load_face

    blank = np.full((240, 240, 3), 235, np.uint8)  # a drawing with no face: the landmark model finds none
    cv2.circle(blank, (120, 120), 60, (40, 90, 200), -1)
    with pytest.raises(NoFaceError, match="landmarks=") as e:  # the API's terms; the CLI's name the flag
        load_face(blank, drawing=True)
    assert "--landmarks drawing.json" in e.value.for_cli()


def test_prepare_and_render_a_drawn_character(tmp_path):
    """`toonsync prepare drawing --landmarks` + `toonsync render`: the mouth moves with the speech."""
    import soundfile as sf

    from toonsync.cli import main
    from toonsync.runtime.prepare import Avatar
    from toonsync.runtime.video import probe, read_video

    bundle, out = tmp_path / "char.avatar", tmp_path / "out.mp4"
    assert main(["-q", "prepare", str(DRAWN), "--landmarks", str(DRAWN_JSON), "-o", str(bundle)]) == 0
    assert main(["-q", "render", str(bundle), str(SPEECH), "-o", str(out), "--seed", "1"]) == 0
    info = probe(out)
    samples = sf.info(str(SPEECH)).frames
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert (info.width, info.height) == (512, 512)
    assert info.frames == math.ceil(samples / 640)
    frames = read_video(out)[0]
    mouth = Avatar.load(bundle).neutral[48:68] * 256
    (x0, y0), (x1, y1) = np.floor(mouth.min(0) - 8).astype(int), np.ceil(mouth.max(0) + 8).astype(int)
    crops = frames[:, y0:y1, x0:x1].astype(np.float32)
    motion = np.abs(crops - crops[:1]).mean(axis=(1, 2, 3))
    assert motion.max() > 8.0 and (motion > 3.0).mean() > 0.2  # the mouth opens and closes with the speech
    # and straight from the drawing + its landmarks, through the onnx renderer
    out2 = tmp_path / "direct.mp4"
    assert (
        main(
            [
                "-q",
                "render",
                str(DRAWN),
                str(SPEECH),
                "--landmarks",
                str(DRAWN_JSON),
                "-o",
                str(out2),
                "--renderer",
                "onnx",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    assert probe(out2).frames == info.frames
