"""Drawings uploaded to a kiosk, waiting for their points to be checked before they become avatars.

A drawn character's 68 points come from ``runtime.anime_landmarks.fit_drawing_landmarks``; the page shows
them over the drawing, a visitor drags a few handles (``runtime.landmark_edit``) and the points are refitted;
then the drawing and its points make the avatar (``avatars.avatar_from_drawing_points``).

Coordinates: a drawing is kept downscaled so that its long side is at most ``WORK_SIDE`` pixels, and every
coordinate the API sends or takes (points, handles, ``width``/``height``) is a pixel of that image — the very
image the page gets as a data URL. ``scale`` says how it relates to the uploaded file (kept / uploaded size).
At most ``MAX_DRAWINGS`` are kept (least recently used dropped), in memory only, under random ids.
"""

from __future__ import annotations

import base64
import collections
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, NoFaceError
from ..landmark_edit import check_moved, check_points, handles, refit
from .avatars import decode_upload, with_warnings

WORK_SIDE = 768  # the long side of a kept drawing (and of the image the page shows), pixels
MAX_DRAWINGS = 8
LOW_CONFIDENCE = 0.5  # below this a warning asks the visitor to check the points
NO_FACE_KIOSK = "No face was found in this drawing. Please use a drawing of one character's face, seen from the front."
LOW_CONFIDENCE_WARNING = (
    "the points may be off (confidence {:.2f}): drag the eyes, mouth corners and chin where they belong"
)


class BadRequest(InputError):
    """A request body that is not the JSON the drawing endpoints take."""


@dataclass(frozen=True)
class Drawing:
    """One uploaded drawing: the kept image and the points the model fitted to it (its pixels)."""

    image: np.ndarray  # RGB uint8, long side <= WORK_SIDE
    points: np.ndarray  # float32 [68, 2]
    confidence: float
    scale: float  # kept image size / uploaded image size (<= 1)


def drawing_from_bytes(data: bytes, max_bytes: int) -> Drawing:
    """Uploaded bytes -> ``Drawing``: decoded in memory, the points fitted on the full image, then image and
    points downscaled to ``WORK_SIDE`` and the points clipped into the image. Raises ``ImageTooLarge`` /
    ``UnsupportedImageFormat`` / ``NoFaceError`` (with a kiosk message) / ``ModelError`` or ``NotImplementedError``
    (no landmark model) / ``PhotoNotDrawing`` (a photographed face)."""
    import cv2

    from ..anime_landmarks import check_drawing, fit_drawing_landmarks

    rgb = decode_upload(data, max_bytes, "drawing")
    try:  # the model's own low-confidence warning names command-line options: the answer carries a kiosk one
        fit, _ = with_warnings(fit_drawing_landmarks, rgb)
    except NoFaceError as e:
        raise NoFaceError(str(e), cli=e.cli_message, kiosk=e.kiosk_message or NO_FACE_KIOSK) from None
    check_drawing(rgb, fit.points)  # a photo is never animated from its pixels: PhotoNotDrawing (422)
    pts = check_points(fit.points, "the fitted points")
    h, w = rgb.shape[:2]
    s = min(1.0, WORK_SIDE / max(h, w))
    if s < 1.0:
        size = (max(1, round(w * s)), max(1, round(h * s)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        pts = pts * (size[0] / w, size[1] / h)
    h, w = rgb.shape[:2]
    pts = np.clip(pts, 0.0, (w - 1, h - 1)).astype(np.float32)
    return Drawing(np.ascontiguousarray(rgb), pts, float(np.clip(fit.confidence, 0.0, 1.0)), s)


class DrawingStore:
    """Drawings by server-made random id, at most ``limit`` (the least recently used is dropped)."""

    def __init__(self, limit: int = MAX_DRAWINGS):
        self._d: collections.OrderedDict[str, Drawing] = collections.OrderedDict()
        self.limit = max(1, int(limit))

    def add(self, drawing: Drawing) -> str:
        did = secrets.token_urlsafe(12)
        self._d[did] = drawing
        while len(self._d) > self.limit:
            self._d.popitem(last=False)
        return did

    def get(self, did: Any) -> Drawing | None:
        if not isinstance(did, str) or did not in self._d:
            return None
        self._d.move_to_end(did)
        return self._d[did]

    def __len__(self) -> int:
        return len(self._d)


def points_doc(points: np.ndarray) -> dict:
    """``{"points": [[x, y] * 68], "handles": {name: [x, y]}}``, pixels rounded to 0.01."""
    return {
        "points": [[round(float(x), 2), round(float(y), 2)] for x, y in points],
        "handles": {k: [round(x, 2), round(y, 2)] for k, (x, y) in handles(points).items()},
    }


def drawing_doc(did: str, d: Drawing) -> dict:
    """The answer to an upload: id, size, points, handles, confidence, warnings and the image as a PNG data URL."""
    import cv2

    ok, png = cv2.imencode(".png", cv2.cvtColor(d.image, cv2.COLOR_RGB2BGR))
    warnings = [LOW_CONFIDENCE_WARNING.format(d.confidence)] if d.confidence < LOW_CONFIDENCE else []
    return {
        "drawing": did,
        "width": int(d.image.shape[1]),
        "height": int(d.image.shape[0]),
        "scale": round(d.scale, 6),
        "confidence": round(d.confidence, 4),
        "warnings": warnings,
        **points_doc(d.points),
        "image": "data:image/png;base64," + base64.b64encode(png.tobytes()).decode(),
    }


def refit_request(doc: Any, d: Drawing) -> np.ndarray:
    """A refit body -> the new points. ``{"moved": {name: [x, y]}}`` drags those handles of the fitted points
    (or of ``"points"``, when given); ``{"handles": {name: [x, y]}}`` takes every handle, and those not where
    they are on the points count as dragged. Raises ``BadRequest`` (not such a body) or ``InvalidLandmarks``."""
    if not isinstance(doc, dict) or ("moved" in doc) == ("handles" in doc):
        raise BadRequest('send {"moved": {"chin": [x, y], ...}} or {"handles": {...}}, optionally with "points"')
    base = check_points(doc["points"]) if "points" in doc else d.points
    if "moved" in doc:
        moved = check_moved(doc["moved"])
    else:
        now = handles(base)
        moved = {k: v for k, v in check_moved(doc["handles"]).items() if np.abs(v - now[k]).max() > 1e-3}
    return refit(base, moved, d.image.shape)


def use_request(doc: Any, d: Drawing) -> np.ndarray:
    """A use body -> the points to build the avatar from: ``{"points": [[x, y] * 68]}`` (``{}``: as fitted).
    Raises ``BadRequest`` (not such a body) or ``InvalidLandmarks`` (not 68 finite pairs)."""
    if not isinstance(doc, dict):
        raise BadRequest('send {"points": [[x, y], ...]} (68 pairs, pixels of the drawing)')
    return check_points(doc["points"]) if "points" in doc else d.points


__all__ = [
    "MAX_DRAWINGS",
    "WORK_SIDE",
    "BadRequest",
    "Drawing",
    "DrawingStore",
    "drawing_doc",
    "drawing_from_bytes",
    "points_doc",
    "refit_request",
    "use_request",
]
