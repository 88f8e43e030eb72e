"""Drawn characters: a drawing (not a photo of a person) animated from its own pixels.

A drawing is not a real face, so unlike a photo its pixels may be animated: the ``.avatar`` bundle
stores the drawing itself (framed like every avatar: eyes level, eye centres 0.28 of the canvas
apart, their midpoint at (0.5, 0.42)) as the base image of the ONNX warp renderer
(``runtime.warp_renderer``), which moves it by the same landmarks, head pose and blinks as any avatar.

Its 68 landmarks (iBUG 300-W order) come from a JSON file (``--landmarks``) or, without one, from the landmark
model for drawings (``runtime.anime_landmarks``; when it finds no face, ``NoFaceError`` names ``--landmarks``).
A photographed face is never animated from its pixels (``anime_landmarks.check_drawing``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .prepare import Avatar
    from .warp_renderer import WarpRenderer

import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from .anime_landmarks import warp_window
from .avatar_geometry import similarity_to_canonical
from .avatar_style import make_palette
from .errors import InputNotFound, InvalidLandmarks
from .photo_traits import skin_colour

log = logging.getLogger(__name__)

BASE_SIZE = 512  # the framed drawing kept in the bundle (renders at 256 downsample it, 512 uses it as is)
LANDMARKS_FORMAT = (
    "a JSON file (or array) of 68 [x, y] pixel points in iBUG 300-W order: [[x, y], ...] "
    'or {"landmarks": [[x, y], ...]}'
)
MIN_EYE_DISTANCE_PX = 8.0
DRAWN_LIPS = (214, 96, 110)  # lip colour the mouth interior of a drawing is derived from
LandmarksLike = str | os.PathLike | np.ndarray | list | dict


def load_landmarks(src: LandmarksLike, image_shape: tuple[int, ...]) -> np.ndarray:
    """A drawn character's landmarks -> float32 [68, 2] pixels, validated against the image size.

    Raises ``InputNotFound`` (no such file) or ``InvalidLandmarks`` naming what is accepted."""
    where = "landmarks"
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        where = str(path)
        if not path.is_file():
            raise InputNotFound(f"landmarks file not found: {path}; expected {LANDMARKS_FORMAT}")
        try:
            src = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InvalidLandmarks(f"{path} is not JSON ({e}); expected {LANDMARKS_FORMAT}") from None
    if isinstance(src, dict):
        if "landmarks" not in src:
            raise InvalidLandmarks(
                f'{where}: no "landmarks" key (keys: {sorted(src)[:8]}); expected {LANDMARKS_FORMAT}'
            )
        src = src["landmarks"]
    try:
        pts = np.asarray(src, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidLandmarks(f"{where}: not a list of numbers; expected {LANDMARKS_FORMAT}") from None
    if pts.shape != (68, 2):
        raise InvalidLandmarks(
            f"{where}: got shape {pts.shape} ({pts.size // 2 if pts.ndim == 2 else '?'} points), "
            f"expected 68 [x, y] points; {LANDMARKS_FORMAT}"
        )
    if not np.isfinite(pts).all():
        raise InvalidLandmarks(
            f"{where}: point {int(np.argwhere(~np.isfinite(pts))[0, 0])} is not a finite number; "
            f"expected {LANDMARKS_FORMAT}"
        )
    h, w = image_shape[:2]
    bad = np.nonzero((pts[:, 0] < 0) | (pts[:, 0] > w - 1) | (pts[:, 1] < 0) | (pts[:, 1] > h - 1))[0]
    if bad.size:
        i = int(bad[0])
        raise InvalidLandmarks(
            f"{where}: point {i} ({pts[i, 0]:g}, {pts[i, 1]:g}) is outside the {w}x{h} image "
            f"({bad.size} points are); landmarks are pixel coordinates of the drawing"
        )
    iod = float(np.linalg.norm(pts[42:48].mean(0) - pts[36:42].mean(0)))
    if iod < MIN_EYE_DISTANCE_PX:
        raise InvalidLandmarks(
            f"{where}: the eye centres (points 36-41, 42-47) are {iod:.1f} px apart; at least "
            f"{MIN_EYE_DISTANCE_PX:g} px is needed (is the point order iBUG 300-W?)"
        )
    return pts.astype(np.float32)


MARGIN = 0.02  # of the frame: free space kept around the head
MIN_FACE_SCALE = 0.5  # a drawing's face is framed at least half the size of a photo avatar's
HEAD_ABOVE = 1.9  # without a plain background: the head's top this many eye-to-chin heights above the eyes
HEAD_SIDE = 1.7  # ... and its sides this many half jaw widths from the face's centre


def _plain_background(img: np.ndarray) -> np.ndarray | None:
    """The drawing's backdrop colour when its border is one plain colour (most of it within 24 levels), else None."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.float32)
    med = np.median(border, 0)
    return med if (np.abs(border - med).max(1) <= 24).mean() >= 0.8 else None


def frame_drawing(image: np.ndarray, landmarks_px: np.ndarray, size: int = BASE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Place the drawing on the avatar canvas: eyes level and centred; at the scale of every avatar (eye centres
    0.28 x size apart, their midpoint at (0.5, 0.42) x size) when the whole head fits, else smaller (down to
    ``MIN_FACE_SCALE``) and lower, so the hair is never cut (``head_extent``); edge pixels are repeated where
    the drawing does not reach. Returns the framed RGB uint8 [size, size, 3] and its landmarks [68, 2] in 0..1
    canvas units."""
    L = np.asarray(landmarks_px, np.float32).reshape(68, 2)
    M = similarity_to_canonical(L, size)
    canon = (L @ M[:, :2].T + M[:, 2]) / float(size)
    check_face_shape(canon)
    f, eye_y = fit_head(head_extent(image, M, size, canon), canon)
    S = np.array([[f, 0, 0.5 * size * (1 - f)], [0, f, eye_y * size - f * 0.42 * size]], np.float32)
    M = np.hstack([S[:, :2] @ M[:, :2], (S[:, :2] @ M[:, 2] + S[:, 2])[:, None]]).astype(np.float32)
    base = warp_window(image, M, size, cv2.BORDER_REPLICATE)  # area-reduced first when big: line art stays clean
    neutral = (L @ M[:, :2].T + M[:, 2]) / float(size)
    if neutral.min() < 0.0 or neutral.max() > 1.0:
        raise InvalidLandmarks(
            "the drawn face does not fit the avatar frame (its landmarks fall outside once the eyes "
            "are levelled and scaled to 0.28 of the frame apart); check the points' order "
            "(iBUG 300-W: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67)"
        )
    return np.ascontiguousarray(base), neutral.astype(np.float32)


def check_face_shape(canon: np.ndarray) -> None:
    """``InvalidLandmarks`` unless the points (levelled, eye centres 0.28 apart) are laid out like a face: the
    nose tip below the eyes, the mouth below the nose tip, the chin below the mouth, the jaw wider than the eyes'
    spacing and the mouth wider than a tenth of it (points collapsed together cannot be animated)."""
    eyes, nose, mouth, chin = canon[36:48, 1].mean(), canon[30, 1], canon[48:68, 1].mean(), canon[8, 1]
    problems = [
        ("the nose tip (30) is not below the eyes (36-47)", nose <= eyes),
        ("the mouth (48-67) is not below the nose tip (30)", mouth <= nose),
        ("the chin (8) is not below the mouth (48-67)", chin <= mouth),
        ("the jaw (0-16) is narrower than the eyes' spacing", abs(canon[16, 0] - canon[0, 0]) < 0.28),
        ("the mouth corners (48, 54) are too close", abs(canon[54, 0] - canon[48, 0]) < 0.028),
    ]
    bad = [what for what, wrong in problems if wrong]
    if bad:
        raise InvalidLandmarks(
            f"the points do not form a face: {bad[0]}; expected 68 points in iBUG 300-W order (jaw 0-16, "
            "brows 17-26, nose 27-35, eyes 36-47, mouth 48-67)"
        )


def head_extent(image: np.ndarray, M: np.ndarray, size: int, canon: np.ndarray) -> np.ndarray:
    """The head (hair included) of a drawing that ``M`` frames at the canonical scale, in that frame's units:
    [x0, y0, x1, y1] (may pass 0..1). On a plain backdrop (``_plain_background``): the drawing's pixels that
    differ from it, from the top of the hair to a little below the chin, within ``HEAD_SIDE`` half jaw widths of
    the face and ``2 x HEAD_ABOVE`` eye-to-chin heights above the eyes; else an anime head's proportions
    (``HEAD_ABOVE``, ``HEAD_SIDE``)."""
    eye_y, chin_y = float(canon[36:48, 1].mean()), float(canon[8, 1])
    cx, half = float(canon[27:31, 0].mean()), 0.5 * float(canon[16, 0] - canon[0, 0])
    h = max(chin_y - eye_y, 1e-3)
    bottom = chin_y + 0.25 * h
    guess = np.array([cx - HEAD_SIDE * half, eye_y - HEAD_ABOVE * h, cx + HEAD_SIDE * half, bottom], np.float32)
    bg = _plain_background(image)
    if bg is None:
        return guess
    n = max(size // 4, 32)  # the search runs at a quarter of the frame, on a canvas 4 frames wide
    A = M * (n / float(size))
    A[:, 2] += 1.5 * n
    warped = cv2.warpAffine(image, A, (4 * n, 4 * n), flags=cv2.INTER_AREA, borderValue=tuple(float(c) for c in bg))
    fg = np.abs(warped.astype(np.float32) - bg).max(2) > 32
    to_px = lambda v: int(round((v + 1.5) * n))  # noqa: E731  (frame units -> canvas pixels)
    c0, c1 = to_px(cx - HEAD_SIDE * 1.3 * half), to_px(cx + HEAD_SIDE * 1.3 * half) + 1
    r0, r1 = to_px(eye_y - 2 * HEAD_ABOVE * h), to_px(bottom) + 1
    sub = fg[max(r0, 0) : r1, max(c0, 0) : c1]
    rows, cols = np.nonzero(sub.any(1))[0], np.nonzero(sub.any(0))[0]
    if rows.size == 0:
        return guess
    top = (rows[0] + max(r0, 0)) / n - 1.5
    x0, x1 = (cols[0] + max(c0, 0)) / n - 1.5, (cols[-1] + 1 + max(c0, 0)) / n - 1.5
    return np.array([min(x0, canon[:, 0].min()), min(top, canon[:, 1].min()), max(x1, canon[:, 0].max()), bottom])


def fit_head(box: np.ndarray, canon: np.ndarray) -> tuple[float, float]:
    """Scale (<= 1, >= ``MIN_FACE_SCALE``) about the eyes and the eyes' height that fit ``box`` (canonical frame
    units) in the frame with ``MARGIN``: the canonical eye height 0.42 unless the head needs it lower."""
    x0, y0, x1, y1 = (float(v) for v in box)
    room = 0.5 - MARGIN
    f = min(1.0, room / max(0.5 - x0, x1 - 0.5, 1e-3), (1 - 2 * MARGIN) / max(y1 - y0, 1e-3))
    f = max(f, MIN_FACE_SCALE)
    eye_y = max(0.42, MARGIN - f * (y0 - 0.42))  # the hair's top at the margin
    eye_y = min(eye_y, 1 - MARGIN - f * (float(canon[:, 1].max()) - 0.42))  # the chin stays in the frame
    return f, eye_y


def drawing_colours(avatar: Avatar) -> np.ndarray:
    """The warp renderer's ``colours`` [6, 3] for a drawing: eyelid = the drawing's own cheek colour, lash and
    mouth outline = its darkest line colour around the eyes (its ink), the mouth interior from the procedural
    palette of a fixed lip red (a drawn closed mouth shows no colour to measure)."""
    from .warp_renderer import COLOURS, palette_colours

    base, L = avatar.base, avatar.neutral * avatar.base.shape[0]
    cols = dict(zip(COLOURS, palette_colours(make_palette(replace(avatar.style, lips=DRAWN_LIPS)))))
    cols["lid"] = skin_colour(base, L, forehead=False) / 255.0  # foreheads of drawings are often under hair
    x0, y0 = np.floor(L[36:48].min(0)).astype(int)
    x1, y1 = np.ceil(L[36:48].max(0)).astype(int) + 1
    px = base[max(y0, 0) : y1, max(x0, 0) : x1].reshape(-1, 3).astype(np.float32)
    lum = px @ np.array([0.299, 0.587, 0.114], np.float32)
    cols["lash"] = cols["mouth_line"] = np.median(px[lum <= np.percentile(lum, 5)], 0) / 255.0
    return np.array([cols[c] for c in COLOURS], np.float32)


def drawing_renderer(avatar: Avatar, size: int = 256, **kw: Any) -> WarpRenderer:
    """A ``WarpRenderer`` animating the drawing of ``avatar`` (``Avatar.base``)."""
    from .warp_renderer import WarpRenderer, landmark_eyes

    rgba = cv2.cvtColor(avatar.base, cv2.COLOR_RGB2RGBA)
    bg = np.empty((size, size, 3), np.uint8)
    bg[:] = avatar.style.background  # under the drawing only where it is transparent (it is opaque)
    return WarpRenderer(rgba, avatar.neutral, landmark_eyes(avatar.neutral), drawing_colours(avatar), bg, size, **kw)


__all__ = ["BASE_SIZE", "LANDMARKS_FORMAT", "drawing_colours", "drawing_renderer", "frame_drawing", "load_landmarks"]
