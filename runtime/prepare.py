"""Face -> prepared avatar (style colours + neutral anime landmarks), and the ``.avatar`` bundle.

A bundle is a zip holding ``avatar.json`` (style, neutral landmarks, metadata) and ``preview.png``
— no pixel of the photo — and, when prepared with the learned stylizer (``stylizer="learned"``,
``runtime.stylizer``; needs trained weights, none ship), ``stylized.png``: the stylizer's comic of
the face, which passed the privacy check (no 8x8 photo patch reproduced).
A drawn character's bundle (``runtime.drawing``) also holds ``base.png``: the drawing itself, which the
ONNX warp renderer animates (a drawing is not a photo).
A kiosk prepares once (``toonsync prepare face.jpg -o face.avatar``)
and streams many times.

Side-profile fallback (documented): when the face is turned more than ``PROFILE_YAW_DEG``, its
landmarks cannot give a frontal anime face, so a ``SideProfileWarning`` is issued and the
avatar uses the mean frontal face geometry with the colours estimated from the photo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stylizer import LearnedStylizer

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
from .avatar_attributes import attributes_of, override_style, parse_overrides, style_from_attributes
from .avatar_geometry import check_neutral, symmetric
from .drawing import BASE_SIZE, LandmarksLike, drawing_renderer, frame_drawing, load_landmarks
from .errors import (
    DrawingFallbackWarning,
    InputError,
    InputNotFound,
    InvalidLandmarks,
    ModelError,
    NoFaceError,
    PhotoNotDrawing,
    SideProfileWarning,
)
from .face import detect_face
from .image_io import ImageLike, decode_image, load_image
from .photo_traits import measure_traits, style_from_traits

log = logging.getLogger(__name__)
BUNDLE_VERSION = 3
STYLIZERS = ("procedural", "learned")
RENDERERS = ("auto", "procedural", "onnx")
FaceLike = Union[str, os.PathLike, np.ndarray, "Avatar"]


def check_renderer(name: str) -> str:
    """``name`` if it is a renderer choice (``RENDERERS``), else a typed error naming the accepted ones."""
    if name not in RENDERERS:
        raise InputError(f"unknown renderer {name!r}; accepted: {', '.join(RENDERERS)}")
    return name


@dataclass
class Avatar:
    """Everything needed to animate a face: colours, neutral landmarks [68, 2] in 0..1, metadata."""

    style: AvatarStyle
    neutral: np.ndarray
    meta: dict = field(default_factory=dict)
    stylized: np.ndarray | None = None  # learned stylizer's comic of the face (RGB uint8, canonical frame)
    base: np.ndarray | None = None  # a drawn character or the stylizer's comic, framed (RGB uint8; runtime.drawing)
    source_landmarks: np.ndarray | None = None  # a drawing's 68 points in its own pixels ([68, 2], x y)

    def renderer(self, size: int = 256, engine: str = "auto", **kw):
        """The avatar's renderer: ``procedural`` (``AvatarRenderer``, draws the anime face from scratch) or
        ``onnx`` (``runtime.warp_renderer.WarpRenderer``, animates a base image with render.onnx); ``auto``:
        procedural for photos, onnx for drawn characters and learned-stylizer comics (their own pixels are
        animated, nothing else can)."""
        check_renderer(engine)
        if self.base is not None:
            if engine == "procedural":
                raise InputError(
                    "a drawn character is animated from its own pixels by the onnx renderer; "
                    "use --renderer onnx (or auto)"
                )
            return drawing_renderer(self, size, **kw)
        procedural = AvatarRenderer(self.style, self.neutral, size)
        if engine == "onnx":
            from .warp_renderer import WarpRenderer

            return WarpRenderer.for_procedural(procedural, **kw)
        return procedural

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        doc = {
            "format": "toonsync-avatar",
            "version": BUNDLE_VERSION,
            "attributes": attributes_of(self.style),
            "neutral_landmarks": np.round(self.neutral, 5).tolist(),
            "meta": self.meta,
        }
        if self.source_landmarks is not None:
            doc["source_landmarks"] = np.round(self.source_landmarks, 2).tolist()
        preview = self.renderer(256).draw(self.neutral)
        ok, png = cv2.imencode(".png", cv2.cvtColor(preview, cv2.COLOR_RGB2BGR))
        with atomic_path(path, suffix=".zip") as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("avatar.json", json.dumps(doc, indent=1))
                z.writestr("preview.png", png.tobytes())
                if self.stylized is not None:
                    ok, sty = cv2.imencode(".png", cv2.cvtColor(self.stylized, cv2.COLOR_RGB2BGR))
                    z.writestr("stylized.png", sty.tobytes())
                if self.base is not None:  # a drawn character (never a photo: those keep no pixel)
                    ok, base = cv2.imencode(".png", cv2.cvtColor(self.base, cv2.COLOR_RGB2BGR))
                    z.writestr("base.png", base.tobytes())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Avatar:
        """Read a ``.avatar`` bundle; anything that is not one written by ``save`` (a damaged or hostile file) is
        an ``InputError`` naming what is wrong. Members are size-capped before they are read."""
        path = Path(path)
        if not path.exists():
            raise InputNotFound(f"avatar bundle not found: {path}")
        if not path.is_file():
            raise InputError(f"{path} is not a regular file (an .avatar bundle is a zip file)")
        try:
            with zipfile.ZipFile(path) as z:
                doc = json.loads(_member(z, "avatar.json", MAX_JSON_BYTES, path))
                sty = _member(z, "stylized.png", MAX_IMAGE_BYTES, path) if "stylized.png" in z.namelist() else None
                drawn = _member(z, "base.png", MAX_IMAGE_BYTES, path) if "base.png" in z.namelist() else None
        except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError, RecursionError, OSError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"{path} is not a toonsync .avatar bundle ({type(e).__name__}: {e})") from None
        if not isinstance(doc, dict) or doc.get("format") != "toonsync-avatar":
            raise InputError(f"{path} is not a toonsync .avatar bundle (no 'format': 'toonsync-avatar')")
        version = doc.get("version")
        if isinstance(version, bool) or version not in (1, 2, BUNDLE_VERSION):
            raise InputError(
                f"{path}: bundle version {version!r} is not supported (this toonsync reads versions 1 "
                f"to {BUNDLE_VERSION}); prepare the avatar again with `toonsync prepare`"
            )
        try:  # versions 2 and 3 state the avatar's attributes; version 1 kept a few colours and flags ("style")
            if version > 1:
                style = style_from_attributes(doc["attributes"], version)
            else:
                style = AvatarStyle.from_dict(doc["style"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            what = "attributes are" if version > 1 else "style is"
            raise InputError(f"{path}: its {what} malformed ({type(e).__name__}: {e})") from None
        try:
            neutral = check_neutral(doc.get("neutral_landmarks"))
        except InvalidLandmarks as e:
            raise InputError(f"{path}: {e}") from None
        meta = doc.get("meta", {})
        src = doc.get("source_landmarks")
        if src is not None:
            src = np.asarray(src, dtype=object)
            try:
                src = np.asarray(src.tolist(), np.float32)
            except (TypeError, ValueError):
                src = np.zeros(0)
            if src.shape != (68, 2) or not np.isfinite(src).all():
                raise InputError(f"{path}: source_landmarks must be 68 finite [x, y] points")
        stylized = decode_image(sty, f"{path}: stylized.png") if sty is not None else None
        base = decode_image(drawn, f"{path}: base.png") if drawn is not None else None
        return cls(style, neutral, meta if isinstance(meta, dict) else {}, stylized, base, src)


MAX_JSON_BYTES = 1 << 20  # an avatar.json is a few KB
MAX_IMAGE_BYTES = 32 << 20  # a 512 x 512 PNG is at most ~1 MB


def _member(z: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    """A bundle member's bytes, refused beyond ``limit`` (by its declared size, and while it inflates)."""
    info = z.getinfo(name)
    if info.file_size > limit:
        raise InputError(f"{path}: member {name} inflates to {info.file_size} bytes (limit {limit})")
    with z.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{path}: member {name} is over {limit} bytes")
    return data


def avatar_from_image(image: np.ndarray, source: str = "array", stylizer: LearnedStylizer | None = None) -> Avatar:
    """Detect the face, estimate colours and build the neutral anime geometry (closed mouth); with a
    ``runtime.stylizer.LearnedStylizer``, also its privacy-checked comic of the face (``Avatar.stylized``)."""
    face = detect_face(image)
    traits = measure_traits(image, face.landmarks)
    style = style_from_traits(traits)
    meta = {
        "source": Path(source).name if source != "array" else "array",
        "face_box": list(face.box),
        "yaw_deg": round(face.yaw_deg, 1),
        "detector": "dlib-hog+shape_predictor_68",
        "fallback": None,
        "measured": {"face_shape": traits.face_shape, "curl": round(float(traits.curl), 3), **traits.evidence},
    }
    if face.is_profile:
        warnings.warn(
            f"the face is turned to the side (about {abs(face.yaw_deg):.0f}°), so the avatar faces the camera with "
            "a standard face shape and the photo's colours; a photo looking at the camera gives a closer likeness",
            SideProfileWarning,
            stacklevel=3,
        )
        neutral = mean_face_landmarks()
        meta["fallback"] = "side-profile: mean frontal geometry"
    else:  # the avatar faces the camera: the face's proportions, without the photo's turn
        neutral = symmetric(canonical_landmarks(face.landmarks))
    if stylizer is None:
        return Avatar(style, neutral, meta)
    stylized, report = stylizer(image, face.landmarks)
    meta["stylizer"] = {"name": "learned", "sha256": stylizer.sha256, "privacy_check": report.to_dict()}
    # the comic is animated like a drawn character: its own pixels, warped by render.onnx, at the photo's
    # landmarks in the stylizer's aligned frame (pix2pix keeps the layout of its input)
    from .stylizer import aligned_landmarks

    comic = avatar_from_drawing(stylized, aligned_landmarks(face.landmarks, stylized.shape[0]), check_photo=False)
    meta["kind"] = "stylized"
    return Avatar(style, comic.neutral, meta, stylized, base=comic.base)


def avatar_from_drawing(
    face: ImageLike, landmarks: LandmarksLike | None = None, *, fit=None, check_photo: bool = True
) -> Avatar:
    """A drawing (path or RGB array) + its landmarks (JSON path, array, or None: fitted by the landmark model for
    drawings, ``runtime.anime_landmarks``; or an ``anime_landmarks.DrawingFit`` already made) -> ``Avatar``
    whose ``base`` is the framed drawing and whose ``source_landmarks`` are the points in the drawing's own
    pixels. A photographed face is refused (``PhotoNotDrawing``): only drawings are animated from their pixels
    (``check_photo=False`` only for pictures made here, like the learned stylizer's comic)."""
    from .anime_landmarks import check_drawing, fit_drawing_landmarks

    image = load_image(face)
    extra: dict = {}
    if landmarks is None:
        fit = fit or fit_drawing_landmarks(image)
        pts, how = fit.points, "fitted"
        extra = {"landmarks_confidence": round(fit.confidence, 3), "landmarks_model": "landmarks.fp32.onnx"}
    else:
        pts, how = load_landmarks(landmarks, image.shape), "given"
    if check_photo:
        check_drawing(image, pts)
    try:
        base, neutral = frame_drawing(image, pts)
    except InvalidLandmarks as e:
        if how == "given":
            raise
        found = f"the points fitted to the drawing do not form a usable face ({e})"
        raise NoFaceError(
            f"{found}; give its 68 points with landmarks=...", cli=f"{found}; give them with --landmarks"
        ) from None
    style = style_from_photo(base, neutral * BASE_SIZE)  # colours for the mouth interior; no geometry is redrawn
    meta = {
        "source": Path(face).name if isinstance(face, (str, os.PathLike)) else "array",
        "kind": "drawing",
        "landmarks": how,
        **extra,
    }
    log.info("drawn character %s: landmarks %s, framed to %dx%d", meta["source"], how, BASE_SIZE, BASE_SIZE)
    return Avatar(style, neutral, meta, base=base, source_landmarks=np.asarray(pts, np.float32))


def drawing_if_drawn(image: np.ndarray, source: str) -> Avatar | None:
    """The ``Avatar`` of a picture that is a drawing, animated from its own pixels: a flat picture
    (``anime_landmarks.looks_drawn``) whose face the landmark model fits with a confidence of at least
    ``UNSURE``, whose face window is flat too and that is not a photographed face; None for anything else
    (photos go to the photo path). With a ``DrawingFallbackWarning`` naming ``--drawing`` for when the guess
    should be said outright."""
    from .anime_landmarks import UNSURE, fit_drawing_landmarks, looks_drawn

    if not looks_drawn(image):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = fit_drawing_landmarks(image)
        except (NoFaceError, ModelError):  # no drawn face, or no landmark model installed
            return None
    if fit.confidence < UNSURE or not looks_drawn(image, fit.points):
        return None
    try:
        av = avatar_from_drawing(image, fit=fit)
    except (PhotoNotDrawing, NoFaceError):
        return None
    warnings.warn(
        f"the picture is a drawing with a face (confidence {fit.confidence:.2f}): it is animated from its own "
        "pixels (--drawing says so outright; --landmarks gives its points)",
        DrawingFallbackWarning,
        stacklevel=3,
    )
    av.meta["source"] = Path(source).name
    return av


def load_face(
    face: FaceLike,
    stylizer: str = "procedural",
    *,
    landmarks: LandmarksLike | None = None,
    drawing: bool = False,
    style: str | dict | None = None,
) -> Avatar:
    """Photo path, RGB array, ``.avatar`` bundle path or an ``Avatar`` -> ``Avatar``.

    ``drawing`` (implied by ``landmarks``): the image is a drawn character, animated from its own pixels
    (``runtime.drawing``); ``landmarks``: its 68 points (JSON path or array), else the landmark model for
    drawings fits them. Without either, a picture that is a drawing is found to be one (``drawing_if_drawn``).

    ``stylizer``: ``procedural`` (default: the avatar is drawn from colours + landmarks) or ``learned``
    (also run the pix2pix stylizer, ``runtime.stylizer``; raises ``NoLearnedStylizer`` when its
    weights are not in the model directory — none ship). Bundles and ``Avatar`` objects are returned as they are.

    ``style``: overrides of the estimated attributes (``key=value,...``, a JSON file or a dict;
    ``runtime.avatar_attributes``), applied to photo avatars and bundles; a drawn character keeps its own look.
    """
    overrides = parse_overrides(style)
    av = _load_face(face, stylizer, landmarks, drawing)
    if not overrides:
        return av
    if av.base is not None:
        raise InputError("--style applies to avatars drawn from a photo; a drawn character keeps its own look")
    new = override_style(av.style, overrides)
    meta = {**av.meta, "overridden": sorted(set(av.meta.get("overridden", [])) | set(overrides))}
    return Avatar(new, av.neutral, meta, av.stylized, av.base, av.source_landmarks)


def _load_face(face: FaceLike, stylizer: str, landmarks: LandmarksLike | None, drawing: bool) -> Avatar:
    if stylizer not in STYLIZERS:
        raise InputError(f"unknown stylizer {stylizer!r}; accepted: {', '.join(STYLIZERS)}")
    if isinstance(face, Avatar):
        return face
    if isinstance(face, (str, os.PathLike)) and str(face).lower().endswith(".avatar"):
        return Avatar.load(face)
    if drawing or landmarks is not None:
        return avatar_from_drawing(face, landmarks)
    learned = None
    if stylizer == "learned":  # before decoding: missing weights fail fast
        from .stylizer import LearnedStylizer

        learned = LearnedStylizer()
    image = load_image(face)
    source = str(face) if isinstance(face, (str, os.PathLike)) else "array"
    return drawing_if_drawn(image, source) or avatar_from_image(image, source, learned)
