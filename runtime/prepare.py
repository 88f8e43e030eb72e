"""Face -> prepared avatar (style colours + neutral anime landmarks), and the ``.avatar`` bundle.

A bundle is a zip holding ``avatar.json`` (style, neutral landmarks, metadata) and ``preview.png``
— no pixel of the photo. A kiosk prepares once (``toonsync prepare face.jpg -o face.avatar``)
and streams many times.

Side-profile fallback (documented): when the face is turned more than ``PROFILE_YAW_DEG``, its
landmarks cannot give a frontal anime face, so a ``SideProfileWarning`` is issued and the
avatar uses the mean frontal face geometry with the colours estimated from the photo.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .atomic import atomic_path
from .avatar import AvatarRenderer, AvatarStyle, canonical_landmarks, mean_face_landmarks, style_from_photo
from .errors import InputError, InputNotFound, SideProfileWarning
from .face import PROFILE_YAW_DEG, detect_face
from .image_io import load_image

log = logging.getLogger(__name__)
BUNDLE_VERSION = 1
FaceLike = Union[str, os.PathLike, np.ndarray, "Avatar"]


@dataclass
class Avatar:
    """Everything needed to animate a face: colours, neutral landmarks [68, 2] in 0..1, metadata."""

    style: AvatarStyle
    neutral: np.ndarray
    meta: dict = field(default_factory=dict)

    def renderer(self, size: int = 256) -> AvatarRenderer:
        return AvatarRenderer(self.style, self.neutral, size)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        doc = {"format": "toonsync-avatar", "version": BUNDLE_VERSION, "style": self.style.to_dict(),
               "neutral_landmarks": np.round(self.neutral, 5).tolist(), "meta": self.meta}
        preview = self.renderer(256).draw(self.neutral)
        ok, png = cv2.imencode(".png", cv2.cvtColor(preview, cv2.COLOR_RGB2BGR))
        with atomic_path(path, suffix=".zip") as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("avatar.json", json.dumps(doc, indent=1))
                z.writestr("preview.png", png.tobytes())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Avatar":
        path = Path(path)
        if not path.exists():
            raise InputNotFound(f"avatar bundle not found: {path}")
        try:
            with zipfile.ZipFile(path) as z:
                doc = json.loads(z.read("avatar.json"))
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
            raise InputError(f"{path} is not a toonsync .avatar bundle ({e})") from None
        if doc.get("format") != "toonsync-avatar":
            raise InputError(f"{path} is not a toonsync .avatar bundle")
        neutral = np.asarray(doc["neutral_landmarks"], np.float32)
        if neutral.shape != (68, 2):
            raise InputError(f"{path}: neutral landmarks have shape {neutral.shape}, expected (68, 2)")
        return cls(AvatarStyle.from_dict(doc["style"]), neutral, doc.get("meta", {}))


def avatar_from_image(image: np.ndarray, source: str = "array") -> Avatar:
    """Detect the face, estimate colours and build the neutral anime geometry (closed mouth)."""
    face = detect_face(image)
    style = style_from_photo(image, face.landmarks)
    meta = {"source": Path(source).name if source != "array" else "array", "face_box": list(face.box),
            "yaw_deg": round(face.yaw_deg, 1), "detector": "dlib-hog+shape_predictor_68", "fallback": None}
    if face.is_profile:
        warnings.warn(
            f"the face is turned {abs(face.yaw_deg):.0f} degrees (side profile, limit {PROFILE_YAW_DEG:.0f}); "
            "using a frontal fallback avatar with the photo's colours", SideProfileWarning, stacklevel=3)
        neutral = mean_face_landmarks()
        meta["fallback"] = "side-profile: mean frontal geometry"
    else:
        neutral = canonical_landmarks(face.landmarks)
    return Avatar(style, neutral, meta)


def load_face(face: FaceLike) -> Avatar:
    """Photo path, RGB array, ``.avatar`` bundle path or an ``Avatar`` -> ``Avatar``."""
    if isinstance(face, Avatar):
        return face
    if isinstance(face, (str, os.PathLike)) and str(face).lower().endswith(".avatar"):
        return Avatar.load(face)
    image = load_image(face)
    return avatar_from_image(image, str(face) if isinstance(face, (str, os.PathLike)) else "array")
