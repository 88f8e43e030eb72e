"""The 68 landmarks of a drawn (anime) face, found by the project's landmark model: numpy + onnxruntime.

    from toonsync.runtime.anime_landmarks import fit_drawing_landmarks
    fit = fit_drawing_landmarks(rgb)      # RGB uint8 [H, W, 3] -> DrawingFit(points [68, 2] px, confidence, box)

``landmarks.fp32.onnx`` (``training/train_landmarks.py``, trained on faces this project draws) maps an RGB
window (``size`` square, 128 px) to the 68 points (iBUG 300-W order, window units) and a logit saying whether
the window frames one whole face at a usable scale. Its model card's ``framing`` says which windows it knows:
*search* windows, with the face box anywhere from ``search_ratio`` of the window's side, off centre, and
*refine* windows, ``refine`` times the face box, centred on it. Finding a face:

1. **search**: square windows of every position (a third of a side apart) and size (the image's shorter side
   and its longer, down by 0.75 at a time to a tenth of the longer side; smaller sizes are skipped once a
   face is sure), batched; the window with the highest face probability gives a first set of points;
2. **refine** (three times): the window ``refine`` x the points' box (measured in the face's own frame),
   centred on them and turned by the eye line's roll, so the face is level; the model runs on it and on its
   mirror image (points mapped back through the left-right pairing), and the two answers are averaged.

``confidence`` is the refine window's face probability times the agreement of the two mirror answers
(1 when they agree, 0 when they differ by ``DISAGREE`` x the outer-eye-corner distance): low on faces the
model has not learnt, on non-faces and on profiles. Below ``UNSURE`` a warning says so and names
``--landmarks``; ``toonsync landmarks`` writes the points with a numbered preview to correct by hand.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .backend import LoadedModel, load_model, model_dir
from .errors import InputError, NoFaceError, PhotoNotDrawing, UnsureLandmarksWarning

log = logging.getLogger(__name__)

NAME = "landmarks"
ITERATIONS = 3  # refine passes
DISAGREE = 0.15  # mirror answers this far apart (x the outer-eye-corner distance) give confidence 0
UNSURE = 0.5  # below this confidence a warning is issued
MIN_FACE_PROB = 0.2  # no search window above this: no face
SEARCH_STEP, SEARCH_SHRINK, SEARCH_SMALLEST = 1 / 3, 0.75, 0.1
SEARCH_MAX_SIDE = 1024  # pictures larger than this are searched at this size
SURE, STOP_BELOW = 0.9, 0.45  # the search stops at sizes under STOP_BELOW x a window holding a face surely
THREADS = 4  # onnxruntime threads for a fit (a one-off, batched job; at most the cores there are)
CHUNK = 32  # windows per model call
FLIP = np.array(  # the iBUG index of each point's mirror image (left-right flip)
    [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46,
     39, 38, 37, 36, 41, 40, *range(54, 47, -1), *range(59, 54, -1), *range(64, 59, -1), 67, 66, 65]
)  # fmt: skip


@dataclass(frozen=True)
class DrawingFit:
    """Where a drawn face's 68 points (iBUG 300-W order) are, in the drawing's own pixels."""

    points: np.ndarray  # [68, 2] float32, x y pixels of the input image
    confidence: float  # 0..1: how sure the model is that these points are on a drawn face
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 pixels: the refine window's bounding box

    def to_dict(self) -> dict:
        return {
            "landmarks": np.round(self.points, 2).tolist(),
            "confidence": round(float(self.confidence), 3),
            "box": [int(v) for v in self.box],
            "format": "68 [x, y] pixel points, iBUG 300-W order (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, "
            "mouth 48-67)",
        }


# --- window geometry (shared with training.anime_synth, which draws the training windows) ------------------
def face_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre [2] and larger side of the points' bounding box."""
    lo, hi = points.min(0), points.max(0)
    return (0.5 * (lo + hi)).astype(np.float32), float((hi - lo).max())


def window_transform(centre, side: float, angle: float, n: int) -> np.ndarray:
    """2x3 affine: image pixels -> a window of ``n`` px (square of ``side`` image px about ``centre``,
    rotated by ``angle`` radians: the image turned by -angle, so a face rolled by ``angle`` comes out level)."""
    s = n / float(side)
    c, si = math.cos(angle) * s, math.sin(angle) * s
    R = np.array([[c, si], [-si, c]], np.float32)
    t = np.float32(n / 2.0) - R @ np.asarray(centre, np.float32)
    return np.hstack([R, t[:, None]]).astype(np.float32)


def warp_window(image: np.ndarray, M: np.ndarray, n: int, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """``image`` through ``window_transform``'s ``M`` into an ``n`` square, area-reduced first when ``M``
    shrinks it more than twice (line art would alias)."""
    scale = float(np.hypot(M[0, 0], M[1, 0]))
    if scale < 0.5:
        h, w = image.shape[:2]
        size = (max(1, round(w * 2.0 * scale)), max(1, round(h * 2.0 * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        M = M.copy()
        M[:, 0] *= w / size[0]  # the reduced copy's pixel -> the original's
        M[:, 1] *= h / size[1]
    return cv2.warpAffine(image, M, (n, n), flags=cv2.INTER_LINEAR, borderMode=border)


def mirror_points(points: np.ndarray) -> np.ndarray:
    """Window points [..., 68, 2] (0..1) of a left-right mirrored window, back in the unmirrored window."""
    p = np.asarray(points)[..., FLIP, :].copy()
    p[..., 0] = 1.0 - p[..., 0]
    return p


def to_image(points: np.ndarray, M: np.ndarray, n: int) -> np.ndarray:
    """Window points [68, 2] (0..1) -> image pixels, through the inverse of ``M``."""
    Mi = cv2.invertAffineTransform(M)
    return (points * n) @ Mi[:, :2].T + Mi[:, 2]


def eye_roll(points: np.ndarray) -> float:
    """The roll of the eye line (image-left eye to image-right eye), radians."""
    d = points[42:48].mean(0) - points[36:42].mean(0)
    return math.atan2(float(d[1]), float(d[0]))


# --- is it a drawing? -----------------------------------------------------------------------------------------
FLAT_RANGE = 4  # a pixel whose 3 x 3 neighbourhood spans at most this many levels (in every channel) is flat
FLAT_SIDE_PICTURE, FLAT_SIDE_FACE = 512, 160  # flatness is measured on copies at most this large (never enlarged)
DRAWN_FLAT_SHARE = 0.5  # a picture at least this flat is a drawing ...
DRAWN_FACE_FLAT_SHARE = 0.33  # ... if its fitted face's window is at least this flat too
FLAT_FACE_NOT_PHOTO = 0.6  # a face window this flat is drawn even where the photo face detector fires on it
MIN_SIDE = 16  # pictures smaller than this each way hold no face to fit


def face_window(points: np.ndarray) -> tuple[int, int, int, int]:
    """The box twice the points' box, on their centre (the refine framing, upright): x0, y0, x1, y1."""
    c, fs = face_box(np.asarray(points, np.float32))
    x0, y0 = np.floor(c - fs).astype(int)
    x1, y1 = np.ceil(c + fs).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def flat_share(image: np.ndarray, box: tuple[int, int, int, int] | None = None) -> float:
    """The share of flat pixels (``FLAT_RANGE``) of ``image`` (on a copy at most ``FLAT_SIDE_PICTURE``) or of its
    ``box`` (at most ``FLAT_SIDE_FACE``); copies are only ever reduced, so enlarging a photo does not make it
    flat. Drawings are mostly flat, photos are not (sensor noise, skin texture, JPEG ringing): docs/drawings.md
    has the measured ranges."""
    img = np.asarray(image)
    if box is not None:
        h, w = img.shape[:2]
        x0, y0, x1, y1 = box
        img = img[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if img.shape[0] < 3 or img.shape[1] < 3:
        return 0.0
    f = min(1.0, (FLAT_SIDE_PICTURE if box is None else FLAT_SIDE_FACE) / max(img.shape[:2]))
    if f < 1.0:
        size = (max(3, round(img.shape[1] * f)), max(3, round(img.shape[0] * f)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    k = np.ones((3, 3), np.uint8)
    spread = (cv2.dilate(img, k).astype(np.int16) - cv2.erode(img, k)).max(2)
    return float((spread <= FLAT_RANGE).mean())


def looks_drawn(image: np.ndarray, points: np.ndarray | None = None) -> bool:
    """Is ``image`` flat enough for a drawing (``DRAWN_FLAT_SHARE``), or with the face's ``points``, is the face's
    window (``DRAWN_FACE_FLAT_SHARE``)?"""
    if points is None:
        return flat_share(image) >= DRAWN_FLAT_SHARE
    return flat_share(image, face_window(points)) >= DRAWN_FACE_FLAT_SHARE


def photographed_face(image: np.ndarray, points: np.ndarray) -> bool:
    """Is the face at ``points`` a photographed one? Yes when the photo face detector (dlib, ``runtime.face``)
    finds a face over its nose and the face's window is not flat-coloured (``FLAT_FACE_NOT_PHOTO``): it fires on
    every photo here, enlarged or skin-smoothed too, and on none of the real drawings."""
    from .face import detect_faces

    pts = np.asarray(points, np.float32)
    try:
        faces = detect_faces(image)
    except InputError:  # too small for the detector
        return False
    nose = pts[27:36].mean(0)
    hit = any(f.box[0] <= nose[0] <= f.box[2] and f.box[1] <= nose[1] <= f.box[3] for f in faces)
    return hit and flat_share(image, face_window(pts)) < FLAT_FACE_NOT_PHOTO


def check_drawing(image: np.ndarray, points: np.ndarray) -> None:
    """``PhotoNotDrawing`` when the face at ``points`` is photographed (``photographed_face``): a drawing is
    animated from its own pixels, and no pixel of a real face may reach an output."""
    if photographed_face(image, points):
        raise PhotoNotDrawing(
            "this picture is a photograph of a person (the photo face detector finds the face and it is not "
            "flat-coloured): only drawings are animated from their own pixels; without landmarks=/drawing=True "
            "a photo becomes a drawn anime avatar",
            cli="this picture is a photograph of a person: only drawings are animated from their own pixels; "
            "drop --drawing / --landmarks and the photo becomes a drawn anime avatar",
        )


# --- the model ---------------------------------------------------------------------------------------------
class DrawnFaceModel:
    """``landmarks.fp32.onnx``: the search and refinement of the module doc."""

    def __init__(self, directory: str | os.PathLike | None = None, backend: str = "cpu"):
        threads = max(1, min(THREADS, os.cpu_count() or 1))
        self.model: LoadedModel = load_model(NAME, "fp32", backend, Path(directory) if directory else None, threads)
        self.size = int(self.model.card.config["size"])
        framing = self.model.card.get("framing") or {}
        self.refine_scale = float(framing.get("refine", 2.0))

    def run(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 windows [N, S, S, 3] -> points [N, 68, 2] (window units), face probability [N]."""
        pts, prob = [], []
        for i in range(0, len(windows), CHUNK):
            out = self.model.run({"image": windows[i : i + CHUNK].astype(np.float32) / 255.0})
            pts.append(out["points"]), prob.append(1.0 / (1.0 + np.exp(-out["face"])))
        return np.concatenate(pts), np.concatenate(prob)

    def search(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The best search window's points (image pixels) and face probability. Sizes run from large to small
        and stop once a window holds a face surely (``SURE``) and the sizes left are under ``STOP_BELOW`` of
        its window: a face that much smaller would be another, smaller face."""
        h, w = image.shape[:2]
        shrink = min(1.0, SEARCH_MAX_SIDE / max(h, w))
        if shrink < 1.0:  # a big picture is searched at a smaller copy (the refinement uses every pixel)
            size = (max(1, round(w * shrink)), max(1, round(h * shrink)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            pts, prob = self.search(small)
            return pts * np.array([w / size[0], h / size[1]], np.float32), prob
        n = self.size
        side = float(max(h, w))
        sides = [side] if h == w or min(h, w) < 24 else [side, float(min(h, w))]
        while sides[-1] * SEARCH_SHRINK >= SEARCH_SMALLEST * side and sides[-1] * SEARCH_SHRINK >= 24:
            sides.append(sides[-1] * SEARCH_SHRINK)
        best: tuple[float, np.ndarray, np.ndarray, float] = (-1.0, np.zeros((68, 2), np.float32), np.eye(2, 3), 0.0)
        count = 0
        for s in sides:
            if best[0] >= SURE and s < STOP_BELOW * best[3]:
                break
            step = s * SEARCH_STEP  # centres a third of a side apart, the last window at the far edge
            xs = np.linspace(s / 2, w - s / 2, math.ceil((w - s) / step) + 1) if w > s else [w / 2]
            ys = np.linspace(s / 2, h - s / 2, math.ceil((h - s) / step) + 1) if h > s else [h / 2]
            transforms = [window_transform((x, y), s, 0.0, n) for y in ys for x in xs]
            pts, prob = self.run(np.stack([warp_window(image, M, n, cv2.BORDER_REPLICATE) for M in transforms]))
            count += len(transforms)
            k = int(np.argmax(prob))
            if prob[k] > best[0]:
                best = (float(prob[k]), pts[k], transforms[k], s)
        log.debug("search: %d windows, best %.2f", count, best[0])
        return to_image(best[1], best[2], n), best[0]

    def refine(self, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, float, float, np.ndarray]:
        """One refine pass: (points, face probability, mirror disagreement over the eye-corner distance, M)."""
        n = self.size
        angle = eye_roll(points)
        c, si = math.cos(-angle), math.sin(-angle)
        level = (points - points.mean(0)) @ np.array([[c, -si], [si, c]], np.float32).T  # turned by -roll: upright
        centre_l, fs = face_box(level)
        centre = points.mean(0) + centre_l @ np.array([[c, si], [-si, c]], np.float32).T
        M = window_transform(centre, fs * self.refine_scale, angle, n)
        win = warp_window(image, M, n, cv2.BORDER_REPLICATE)
        pts, prob = self.run(np.stack([win, np.ascontiguousarray(win[:, ::-1])]))
        a, b = pts[0], mirror_points(pts[1])
        iod = max(float(np.linalg.norm(a[36] - a[45])), 1e-3)
        dis = float(np.linalg.norm(a - b, axis=1).mean()) / iod
        return to_image(0.5 * (a + b), M, n), float(prob.mean()), dis, M

    def fit(self, image: np.ndarray) -> DrawingFit:
        pts, p = self.search(image)
        if p < MIN_FACE_PROB:
            found = f"no drawn face found in the image (best window {p:.2f})"
            raise NoFaceError(
                f"{found}; give its 68 points with landmarks=... (a JSON file or a [68, 2] array)",
                cli=f"{found}; give its 68 points with --landmarks drawing.json",
                kiosk="No face was found in this drawing. Please use a drawing with one face looking at the viewer.",
            )
        for _ in range(ITERATIONS):
            pts, p, dis, M = self.refine(image, pts)
        conf = p * float(np.clip(1.0 - dis / DISAGREE, 0.0, 1.0))
        corners = to_image(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32), M, self.size)
        x0, y0 = np.floor(corners.min(0)).astype(int)
        x1, y1 = np.ceil(corners.max(0)).astype(int)
        h, w = image.shape[:2]
        pts = np.clip(pts, 0, [w - 1, h - 1]).astype(np.float32)
        return DrawingFit(pts, conf, (int(x0), int(y0), int(x1), int(y1)))


@lru_cache(maxsize=2)
def _model(directory: str) -> DrawnFaceModel:
    return DrawnFaceModel(directory)


def fit_drawing_landmarks(image: np.ndarray, directory: str | os.PathLike | None = None) -> DrawingFit:
    """An RGB uint8 [H, W, 3] drawing -> its face's ``DrawingFit``; raises ``NoFaceError`` when none is found
    and warns (``UnsureLandmarksWarning``) when the confidence is under ``UNSURE``."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputError(f"a drawing is an RGB uint8 image [H, W, 3], got {img.dtype} {img.shape}")
    if min(img.shape[:2]) < MIN_SIDE:
        raise NoFaceError(
            f"no face can be found in a {img.shape[1]}x{img.shape[0]} picture: a drawing needs at least "
            f"{MIN_SIDE} pixels each way"
        )
    fit = _model(str(directory or model_dir())).fit(img)
    if fit.confidence < UNSURE:
        warnings.warn(
            f"the drawn face's points were fitted with low confidence ({fit.confidence:.2f}); check them with "
            "`toonsync landmarks DRAWING -o points.json` and pass corrected ones with --landmarks",
            UnsureLandmarksWarning,
            stacklevel=2,
        )
    log.info("drawn face: 68 points fitted, confidence %.2f, box %s", fit.confidence, fit.box)
    return fit


REGION_COLOURS = (  # (first index, last index + 1, RGB): jaw, brows, nose, eyes, mouth
    (0, 17, (230, 60, 60)),
    (17, 27, (240, 160, 30)),
    (27, 36, (60, 170, 60)),
    (36, 48, (40, 120, 240)),
    (48, 68, (200, 60, 200)),
)


def preview(image: np.ndarray, points: np.ndarray, side: int = 768) -> np.ndarray:
    """The drawing around its face (the points' box, 1.6 times larger), ``side`` px, with the 68 points drawn
    as coloured dots joined per region (jaw, brows, nose, eyes, mouth) and numbered: RGB uint8."""
    pts = np.asarray(points, np.float32).reshape(68, 2)
    centre, fs = face_box(pts)
    M = window_transform(centre, 1.6 * fs, 0.0, side)
    img = np.ascontiguousarray(warp_window(image, M, side, cv2.BORDER_REPLICATE))
    img = (0.55 * img + 0.45 * 255).astype(np.uint8)  # faded, so the points read
    P = pts @ M[:, :2].T + M[:, 2]
    q = lambda p: (int(round(p[0] * 16)), int(round(p[1] * 16)))  # noqa: E731  (sub-pixel, shift 4)
    for a, b, col in REGION_COLOURS:
        for i in range(a, b - 1):
            if i not in (21, 30, 41, 47, 59):  # the gaps between the brows, nose parts, eyes and lips
                cv2.line(img, q(P[i]), q(P[i + 1]), col, 1, cv2.LINE_AA, 4)
        for i in range(a, b):
            cv2.circle(img, q(P[i]), 4 * 16, col, -1, cv2.LINE_AA, 4)
            org = (int(P[i, 0]) + 5, int(P[i, 1]) - 4)
            cv2.putText(img, str(i), org, cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 3, cv2.LINE_AA)
            cv2.putText(img, str(i), org, cv2.FONT_HERSHEY_SIMPLEX, 0.38, (20, 20, 20), 1, cv2.LINE_AA)
    return img
