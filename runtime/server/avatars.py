"""Avatars of a kiosk: uploaded photos and drawings decoded in memory, kept under random ids (LRU), never as files."""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ImageTooLarge, UnsupportedImageFormat
from .draw_pool import Look

log = logging.getLogger(__name__)


# -- avatars -----------------------------------------------------------------------------------
def mouth_box(neutral: np.ndarray) -> list[float]:
    """Canvas box (x0, y0, x1, y1 in 0..1) around the mouth with room for head motion."""
    m = np.asarray(neutral, np.float32)[48:68]
    (x0, y0), (x1, y1) = m.min(0), m.max(0)
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 1.6, (y1 - y0) * 2.2 + 0.04
    return [round(float(np.clip(v, 0, 1)), 4) for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)]


def lip_gap(landmarks: np.ndarray) -> float:
    """Inner-lip opening (62 <-> 66) over mouth width (48 <-> 54): ~0 closed, ~0.3 wide open."""
    L = landmarks
    return float(np.linalg.norm(L[66] - L[62]) / max(float(np.linalg.norm(L[54] - L[48])), 1e-6))


_warn_lock = threading.Lock()


def decode_upload(data: bytes, max_bytes: int = 10 * 1024 * 1024, what: str = "photo") -> np.ndarray:
    """Uploaded image bytes -> RGB uint8, in memory: size checked before decoding, then ``image_io.decode_image``
    (format sniffed, pixel cap from the header). Raises ``ImageTooLarge`` / ``UnsupportedImageFormat``."""
    from ..image_io import decode_image

    if len(data) > max_bytes:
        raise ImageTooLarge(f"the {what} is {len(data) / 2**20:.1f} MiB; the cap is {max_bytes / 2**20:.0f} MiB")
    if not data:
        raise UnsupportedImageFormat(f"the upload is empty; send the {what}'s bytes (PNG, JPEG, BMP or WebP)")
    return decode_image(data, f"uploaded {what}")


def with_warnings(fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, list[str]]:
    """``fn(*args, **kw)`` and the messages of the ``UserWarning``s it raised (one caller at a time)."""
    with _warn_lock, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def avatar_from_bytes(data: bytes, max_bytes: int = 10 * 1024 * 1024) -> tuple[Any, list[str]]:
    """Uploaded image bytes -> (Avatar, [warning messages]) entirely in memory (never via a path).

    Size and format are checked from the bytes before decoding (``decode_upload``); the pixel cap applies
    from the header. Raises ``ImageTooLarge`` / ``UnsupportedImageFormat`` / ``NoFaceError``.
    """
    from ..prepare import avatar_from_image

    avatar, warns = with_warnings(avatar_from_image, decode_upload(data, max_bytes), "array")
    avatar.meta["source"] = "upload"
    return avatar, warns


def avatar_from_drawing_points(image: np.ndarray, points: np.ndarray) -> tuple[Any, list[str]]:
    """A drawing (RGB uint8) and its 68 points (float [68, 2], pixels) -> (Avatar, [warning messages]).
    Raises ``InvalidLandmarks`` when the points do not fit the image or do not frame as a face."""
    from ..prepare import avatar_from_drawing

    avatar, warns = with_warnings(avatar_from_drawing, image, landmarks=np.asarray(points, np.float32))
    avatar.meta["source"] = "upload"
    return avatar, warns


@dataclass
class AvatarEntry:
    """One avatar a kiosk can stream: the ``Avatar`` and the ``Look`` its drawing workers rebuild."""

    avatar: Any
    look: Look


class _AvatarStore:
    """Avatars by server-made random id (LRU-bounded); "default" is the operator's face."""

    def __init__(self, default: AvatarEntry, limit: int):
        self._d: collections.OrderedDict[str, AvatarEntry] = collections.OrderedDict(default=default)
        self.limit = max(1, int(limit))

    def add(self, entry: AvatarEntry) -> str:
        aid = secrets.token_urlsafe(12)
        self._d[aid] = entry
        while len(self._d) > self.limit + 1:  # never evict the default
            k = next(k for k in self._d if k != "default")
            del self._d[k]
        return aid

    def find_restyled(self, key: str) -> str | None:
        """The id of a stored restyled avatar (``styles.restyle``) drawn with look ``key``, or None: an edit that
        comes back to a look made before reuses its id instead of taking another place in the store."""
        for aid, e in self._d.items():
            if e.look.key == key and e.avatar.meta.get("source") == "restyled":
                return aid
        return None

    def get(self, aid: Any) -> AvatarEntry | None:
        if not isinstance(aid, str) or aid not in self._d:
            return None
        if aid != "default":
            self._d.move_to_end(aid)
        return self._d[aid]
