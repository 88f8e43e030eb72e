"""Backgrounds behind the avatar: the renderer's own look, a solid colour, an image, or transparent.

One spec string (``--background`` on ``toonsync render`` / ``stream``) is parsed once by
:func:`parse_background`; every renderer that can draw its character alone (``draw_rgba`` ->
straight-alpha RGBA) is put over it by the one compositing function :func:`compose`:

    bg = parse_background("#203040")            # or "green", "office.jpg", "transparent", "default"
    frame = compose(renderer.draw_rgba(lm, pose, blink, emotion), bg)    # RGB, or RGBA if transparent
    renderer = with_background(renderer, bg)     # same thing as a drop-in renderer (``.draw``)

Accepted specs:

- ``default`` (or ``None``): the renderer's own background (procedural avatar: a pastel from the
  photo's colours with dots); frames are exactly what ``renderer.draw`` returns.
- a colour: ``#rrggbb``, ``#rgb``, or a name from :data:`COLOUR_NAMES` (``green`` and ``blue`` are
  the broadcast chroma-key colours).
- an image path (PNG/JPEG/BMP/WebP): scaled to cover the frame and centre-cropped.
- ``transparent`` (or ``none``): frames are RGBA; only outputs with alpha take them
  (``runtime.video.ALPHA_OUTPUTS``: .webm VP9, .mov QuickTime Animation, a PNG-sequence directory).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np

from .errors import InputNotFound, InvalidBackground

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]

#: Colour names accepted by ``--background`` (RGB). green/blue: the usual chroma-key colours.
COLOUR_NAMES: dict[str, RGB] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "lightgray": (211, 211, 211),
    "darkgray": (64, 64, 64),
    "red": (255, 0, 0),
    "yellow": (255, 255, 0),
    "green": (0, 177, 64),
    "blue": (0, 71, 187),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "navy": (0, 0, 128),
    "pink": (255, 192, 203),
    "cream": (255, 253, 208),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")

BackgroundLike = Union[None, str, os.PathLike, tuple, "Background"]


def accepted() -> str:
    """The accepted specs, in words (for error messages and --help)."""
    return (
        "accepted: default, transparent, a colour (#rrggbb, #rgb or one of "
        + ", ".join(COLOUR_NAMES)
        + "), or an image file ("
        + ", ".join(IMAGE_SUFFIXES)
        + ")"
    )


@dataclass(frozen=True)
class Background:
    """A parsed background. ``kind``: ``default`` | ``color`` | ``image`` | ``transparent``."""

    kind: str
    color: RGB | None = None
    image: Path | None = None

    @property
    def alpha(self) -> bool:
        """Frames keep their alpha channel (RGBA) instead of being composited."""
        return self.kind == "transparent"

    @property
    def is_default(self) -> bool:
        return self.kind == "default"

    def describe(self) -> str:
        if self.kind == "color":
            return "#{:02x}{:02x}{:02x}".format(*self.color)  # type: ignore[str-format]
        return str(self.image) if self.kind == "image" else self.kind

    def layer(self, height: int, width: int) -> np.ndarray:
        """The background as uint8 RGB ``[height, width, 3]`` (colour or image; cached, do not modify)."""
        if self.kind == "color":
            return _solid(self.color, height, width)
        if self.kind == "image":
            st = self.image.stat()
            return _image_layer(str(self.image), st.st_mtime_ns, st.st_size, height, width)
        raise InvalidBackground(f"a {self.kind} background has no pixels of its own")


DEFAULT = Background("default")
TRANSPARENT = Background("transparent")


def parse_background(spec: BackgroundLike) -> Background:
    """A ``--background`` spec -> :class:`Background`; :class:`InvalidBackground` / ``InputNotFound``
    (image missing) / ``UnsupportedImageFormat`` (unreadable image) name what is accepted.

    Image files are decoded here once, so a bad image fails before any rendering starts.
    """
    if spec is None or isinstance(spec, Background):
        return spec or DEFAULT
    if isinstance(spec, tuple):
        if len(spec) == 3 and all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in spec):
            return Background("color", tuple(int(c) for c in spec))  # type: ignore[arg-type]
        raise InvalidBackground(f"background colour {spec!r} must be 3 integers 0..255 (R, G, B); {accepted()}")
    if isinstance(spec, os.PathLike):
        return _image_background(Path(spec))
    if not isinstance(spec, str):
        raise InvalidBackground(
            f"background must be a string, a path or an (R, G, B) tuple, got {type(spec).__name__}; {accepted()}"
        )
    s = spec.strip()
    low = s.lower()
    if low in ("", "default"):
        return DEFAULT
    if low in ("transparent", "none", "alpha"):
        return TRANSPARENT
    if low in COLOUR_NAMES:
        return Background("color", COLOUR_NAMES[low])
    if s.startswith("#"):
        m = _HEX.fullmatch(s)
        if not m:
            raise InvalidBackground(f"background colour {spec!r} is not #rrggbb or #rgb hex; {accepted()}")
        h = m.group(1)
        h = "".join(c * 2 for c in h) if len(h) == 3 else h
        return Background("color", (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)))
    path = Path(s).expanduser()
    if path.suffix.lower() in IMAGE_SUFFIXES or path.exists():
        return _image_background(path)
    raise InvalidBackground(f"unknown background {spec!r}; {accepted()}")


def _image_background(path: Path) -> Background:
    from .image_io import load_image

    if not path.exists():
        raise InputNotFound(f"background image not found: {path}; {accepted()}")
    load_image(path)  # typed errors (a directory, not an image, corrupt, too large) now, not mid-render
    return Background("image", image=path.resolve())


@lru_cache(maxsize=8)
def _solid(color: RGB, h: int, w: int) -> np.ndarray:
    a = np.empty((h, w, 3), np.uint8)
    a[:] = color
    a.setflags(write=False)
    return a


@lru_cache(maxsize=8)
def _image_layer(path: str, _mtime: int, _size: int, h: int, w: int) -> np.ndarray:
    """Scale to cover ``h x w`` (aspect kept) and centre-crop."""
    from .image_io import load_image

    img = load_image(path)
    ih, iw = img.shape[:2]
    s = max(h / ih, w / iw)
    nh, nw = max(h, round(ih * s)), max(w, round(iw * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    y0, x0 = (nh - h) // 2, (nw - w) // 2
    out = np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w])
    out.setflags(write=False)
    log.debug("background %s: %dx%d -> cover %dx%d", path, iw, ih, w, h)
    return out


def compose(rgba: np.ndarray, background: BackgroundLike) -> np.ndarray:
    """Put a straight-alpha uint8 RGBA frame ``[H, W, 4]`` over ``background``.

    Returns uint8 RGB ``[H, W, 3]``; for a transparent background the RGBA frame itself. The
    ``default`` background belongs to the renderer (use :func:`with_background`), so it is refused here.
    """
    bg = parse_background(background)
    rgba = np.asarray(rgba)
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise InvalidBackground(f"compose needs a uint8 RGBA frame [H, W, 4], got {rgba.dtype} {rgba.shape}")
    if bg.alpha:
        return rgba
    if bg.is_default:
        raise InvalidBackground(
            "the default background is the renderer's own: draw with renderer.draw(), "
            "or wrap the renderer with with_background(renderer, 'default')"
        )
    return over(rgba, bg.layer(rgba.shape[0], rgba.shape[1]))


def over(rgba: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Straight-alpha uint8 RGBA ``[H, W, 4]`` over an opaque uint8 RGB ``layer`` ``[H, W, 3]`` -> RGB."""
    a = rgba[..., 3].astype(np.float32) * (1.0 / 255.0)
    return cv2.blendLinear(np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(layer), a, 1.0 - a)


@lru_cache(maxsize=4)
def checkerboard(height: int, width: int, cell: int = 16) -> np.ndarray:
    """The usual grey checkerboard that shows transparency (uint8 RGB; cached, do not modify)."""
    yy, xx = np.mgrid[0:height, 0:width]
    board = np.where((yy // cell + xx // cell) % 2 == 0, 204, 153).astype(np.uint8)
    out = np.repeat(board[..., None], 3, axis=2)
    out.setflags(write=False)
    return out


def preview(frame: np.ndarray) -> np.ndarray:
    """A frame as RGB for viewing: RGBA over a checkerboard, RGB as it is."""
    return over(frame, checkerboard(*frame.shape[:2])) if frame.shape[2] == 4 else frame


class BackgroundRenderer:
    """Any renderer with ``draw_rgba`` (straight-alpha RGBA) as a renderer whose ``draw`` puts the
    character over ``background``; every other attribute is the wrapped renderer's."""

    def __init__(self, renderer, background: BackgroundLike):
        self.renderer = renderer
        self.background = parse_background(background)
        if not hasattr(renderer, "draw_rgba"):
            raise InvalidBackground(
                f"{type(renderer).__name__} cannot draw its character alone (no draw_rgba), "
                "so only the default background works with it"
            )

    def draw(self, *args, **kwargs) -> np.ndarray:
        return compose(self.renderer.draw_rgba(*args, **kwargs), self.background)

    def __getattr__(self, name: str):
        return getattr(self.renderer, name)


def with_background(renderer: Any, background: BackgroundLike) -> Any:
    """``renderer`` itself for the default background, else a :class:`BackgroundRenderer` around it."""
    bg = parse_background(background)
    return renderer if bg.is_default else BackgroundRenderer(renderer, bg)


__all__ = [
    "Background",
    "BackgroundRenderer",
    "COLOUR_NAMES",
    "DEFAULT",
    "TRANSPARENT",
    "accepted",
    "checkerboard",
    "compose",
    "over",
    "preview",
    "parse_background",
    "with_background",
]
