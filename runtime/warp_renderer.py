"""The ONNX warp renderer: animates an avatar's neutral image with ``render.onnx`` (numpy + onnxruntime).

Same interface as the procedural :class:`runtime.avatar.AvatarRenderer` (``draw`` -> RGB on the
avatar's own background, ``draw_rgba`` -> the character alone, straight alpha), so ``Stream``,
``render`` and ``runtime.background`` take either. The graph (``training/models/warp_renderer.py``,
exported by ``export/render_export.py``) warps a per-avatar base image by the landmark displacements
and head pose, then adds the mouth interior and the eyelids; design and figures: docs/renderer.md.

Base images: for a photo, the procedural avatar drawn once at its neutral landmarks (never a photo
pixel); for a drawn character (``Avatar.base``), the drawing itself.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

import cv2
import numpy as np

from .avatar import AvatarRenderer, apply_emotion, eye_open_factor, unpremultiply
from .backend import LoadedModel, load_model
from .errors import InputError, ModelError

log = logging.getLogger(__name__)

MODEL_NAME = "render"
#: rows of the graph's ``colours`` input (training.models.warp_renderer.COLOURS)
COLOURS = ("lid", "lash", "mouth_in", "teeth", "tongue", "mouth_line")
SIZES = (64, 2048)  # accepted output sizes (even), as ``runtime.pipeline``


@lru_cache(maxsize=8)
def _model(backend: str, precision: str, directory: str | None) -> LoadedModel:
    lm = load_model(MODEL_NAME, precision, backend, directory)
    have = tuple(lm.card.get("colours", ()))
    if have != COLOURS:
        raise ModelError(
            f"{lm.path.name}: colour inputs {have} do not match this runtime's {COLOURS}; "
            "re-export it with `toonsync export --only render`"
        )
    return lm


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """uint8 straight-alpha RGBA [H, W, 4] -> uint8 premultiplied RGBA."""
    x = rgba.astype(np.float32)
    x[..., :3] *= x[..., 3:4] * (1.0 / 255.0)
    return np.round(x).astype(np.uint8)


def pack_quads(img: np.ndarray) -> np.ndarray:
    """uint8 [S, S, C] -> the graph's ``base`` [1, S, S, 4 * C]: every pixel with its 2x2 neighbourhood
    (x, y), (x+1, y), (x, y+1), (x+1, y+1), edge-replicated -- one row gather per output pixel fetches all
    four bilinear taps (done once per avatar here instead of every frame in the graph)."""
    pad = np.pad(img, ((0, 1), (0, 1), (0, 0)), mode="edge")
    return np.ascontiguousarray(np.concatenate([pad[:-1, :-1], pad[:-1, 1:], pad[1:, :-1], pad[1:, 1:]], -1)[None])


def procedural_eyes(renderer: AvatarRenderer) -> np.ndarray:
    """Eye ellipses [2, 4] (cu, cv, au, av in corner-distance units, u image-right, v down) around the eyes
    ``AvatarRenderer`` draws: ``EYE_SCALE`` x the corner distance wide plus the outer lash wing, from the
    lower lid (-0.38 H) to the top of the upper lash line (0.6 H + 0.1 w), H = the drawn eye height. The lid
    crease above stays visible (a closed eye keeps its crease)."""
    s = float(renderer.EYE_SCALE)
    out = np.zeros((2, 4), np.float32)
    for k, aspect in enumerate(renderer._eye_aspect):
        h = s * aspect  # drawn eye height per corner distance
        lo, hi = -0.38 * h + 0.02 * s, 0.6 * h + 0.12 * s  # up from the corner line
        outer, inner = -0.12 * s - 0.5 * s, 0.5 * s  # along outer -> inner
        cu = 0.5 * (outer + inner) * (-1.0 if k == 0 else 1.0)  # image-left eye: outer is -x
        out[k] = (cu, -0.5 * (lo + hi), 1.12 * 0.5 * (inner - outer), 1.05 * 0.5 * (hi - lo))
    return out


def _eye_frames(L: np.ndarray):
    """Per eye (image-left first): corner midpoint, corner distance, and the shared (right, down) axes."""
    fx = L[42:48].mean(0) - L[36:42].mean(0)
    fx /= float(np.linalg.norm(fx)) + 1e-9
    fy = np.array([-fx[1], fx[0]], np.float32)
    for a, b in ((36, 39), (45, 42)):
        yield 0.5 * (L[a] + L[b]), float(np.linalg.norm(L[b] - L[a])) + 1e-9, fx, fy


def below_brows(neutral: np.ndarray, eyes: np.ndarray, brow_half_width: float) -> np.ndarray:
    """Lower the top of each eye ellipse to under its brow (``brow_half_width``: canvas units of stroke
    half-width + margin) but not into the eye outline (landmarks 37-38 / 43-44), so a closed lid covers
    the eye and leaves the brow; the ellipse bottom stays where it was."""
    L = np.asarray(neutral, np.float32).reshape(68, 2)
    out = np.array(eyes, np.float32, copy=True)
    for k, ((mid, w, _fx, fy), brow, lid) in enumerate(
        zip(_eye_frames(L), (slice(17, 22), slice(22, 27)), (slice(37, 39), slice(43, 45)))
    ):
        top_limit = float(((L[brow] - mid) @ fy).max() + brow_half_width) / w  # lowest brow point, v down
        top_limit = min(top_limit, float(((L[lid] - mid) @ fy).min()) / w)
        cv, av = float(out[k, 1]), float(out[k, 3])
        top, bottom = cv - av, cv + av
        if top < top_limit < bottom:
            out[k, 1], out[k, 3] = 0.5 * (top_limit + bottom), 0.5 * (bottom - top_limit)
    return out


def landmark_eyes(neutral: np.ndarray, margin: float = 1.25) -> np.ndarray:
    """Eye ellipses [2, 4] from the eye landmarks themselves (a drawn character's eye outlines), grown by
    ``margin`` for the lash lines, kept under the brows."""
    L = np.asarray(neutral, np.float32).reshape(68, 2)
    out = np.zeros((2, 4), np.float32)
    for k, ((mid, w, fx, fy), sl) in enumerate(zip(_eye_frames(L), (slice(36, 42), slice(42, 48)))):
        rel = L[sl] - mid
        u, v = rel @ fx / w, rel @ fy / w
        half_h = max(0.5 * float(v.max() - v.min()), 0.18)  # closed-looking outlines still get a lid
        out[k] = (
            0.5 * float(u.max() + u.min()),
            0.5 * float(v.max() + v.min()) - 0.1 * half_h,
            margin * 0.5 * float(u.max() - u.min()),
            margin * 1.1 * half_h,
        )
    return below_brows(L, out, brow_half_width=0.01)


def clamp_eyes(neutral: np.ndarray, eyes: np.ndarray, crop: tuple[float, float]) -> np.ndarray:
    """Shrink eye ellipses that would reach past the graph's eye crop (``crop`` = (w, h) canvas units around
    the eyes' midpoint, the model's ``config.eyes_crop``), keeping room for a head roll: the lids are painted
    only inside it."""
    L = np.asarray(neutral, np.float32).reshape(68, 2)
    out = np.array(eyes, np.float32, copy=True).reshape(2, 4)
    mid = L[36:48].mean(0)
    for k, (c, w, fx, fy) in enumerate(_eye_frames(L)):
        centre = c + out[k, 0] * w * fx + out[k, 1] * w * fy
        half_w = 0.5 * crop[0] - abs(float(centre[0] - mid[0])) - 0.02
        half_h = 0.5 * crop[1] - abs(float(centre[1] - mid[1])) - 0.06  # room for the eyes to tilt with a roll
        out[k, 2] = min(out[k, 2], max(half_w, 0.01) / w)
        out[k, 3] = min(out[k, 3], max(half_h, 0.01) / w)
    return out


def palette_colours(palette: dict) -> np.ndarray:
    """The graph's ``colours`` input [6, 3] (0..1) from an ``AvatarRenderer`` palette (``COLOURS`` order)."""
    keys = {
        "lid": "skin",
        "lash": "lash",
        "mouth_in": "mouth_in",
        "teeth": "teeth",
        "tongue": "tongue",
        "mouth_line": "mouth_line",
    }
    return np.array([palette[keys[c]] for c in COLOURS], np.float32) / 255.0


class WarpRenderer:
    """Animate ``base`` (uint8 RGBA [h, w, 4] straight alpha, any size; the avatar at ``neutral``) with
    ``render.onnx``. ``eyes``: [2, 4] eye ellipses; ``colours``: [6, 3] 0..1 (``COLOURS``); ``background``:
    uint8 RGB [size, size, 3] under the character in ``draw`` (``draw_rgba`` returns the character alone).

    ``draw`` warps the base already composited over the background (the background moves with the head's
    soft mask near its outline; no per-frame compositing), ``draw_rgba`` warps the character alone."""

    def __init__(
        self,
        base: np.ndarray,
        neutral: np.ndarray,
        eyes: np.ndarray,
        colours: np.ndarray,
        background: np.ndarray,
        size: int = 256,
        *,
        backend: str = "cpu",
        precision: str = "fp32",
        model_dir: str | os.PathLike | None = None,
    ):
        size = int(size)
        if not SIZES[0] <= size <= SIZES[1] or size % 2:
            raise InputError(f"renderer size must be an even number of pixels in {SIZES[0]}..{SIZES[1]}, got {size}")
        base = np.asarray(base)
        if base.dtype != np.uint8 or base.ndim != 3 or base.shape[2] != 4:
            raise InputError(f"base image must be uint8 RGBA [H, W, 4], got {base.dtype} {base.shape}")
        self.size = size
        self.neutral = np.asarray(neutral, np.float32).reshape(68, 2).copy()
        self.model = _model(backend, precision, str(model_dir) if model_dir else None)
        premul = premultiply(base)
        if premul.shape[:2] != (size, size):  # resample premultiplied (no dark fringes at alpha edges)
            interp = cv2.INTER_AREA if premul.shape[0] > size else cv2.INTER_LINEAR
            premul = cv2.resize(premul, (size, size), interpolation=interp)
        bg = np.asarray(background, np.uint8).reshape(size, size, 3)
        a = premul[..., 3:4].astype(np.uint16)
        opaque = premul.copy()
        opaque[..., :3] += ((bg * (255 - a) + 127) // 255).astype(np.uint8)
        opaque[..., 3] = 255
        self._char, self._opaque = pack_quads(premul), pack_quads(opaque)
        eyes = clamp_eyes(self.neutral, eyes, self.model.card.config["eyes_crop"])
        self._const = {
            "neutral": self.neutral[None],
            "eyes": eyes[None],
            "colours": np.asarray(colours, np.float32).reshape(1, len(COLOURS), 3),
        }

    @classmethod
    def for_procedural(cls, renderer: AvatarRenderer, **kw) -> WarpRenderer:
        """The procedural avatar, drawn once at its neutral landmarks (character only), over its own background."""
        base = renderer.draw_rgba(renderer.neutral)
        bg = cv2.resize(renderer._bg, (renderer.size, renderer.size), interpolation=cv2.INTER_AREA)
        return cls(
            base,
            renderer.neutral,
            procedural_eyes(renderer),
            palette_colours(renderer.palette),
            bg,
            renderer.size,
            **kw,
        )

    # -- frames --------------------------------------------------------------------------------------
    def run(
        self,
        landmarks: np.ndarray,
        pose: np.ndarray | None = None,
        blink: np.ndarray | None = None,
        emotion: np.ndarray | None = None,
        alpha: bool = False,
    ) -> np.ndarray:
        """B frames in one graph call -> premultiplied uint8 RGBA [B, size, size, 4] (the character alone with
        ``alpha``, else over the background). ``landmarks`` [B, 68, 2] (un-posed, 0..1), ``pose`` [B, 3] rad,
        ``blink`` [B], ``emotion`` [B, 6] (expression offsets and eye narrowing applied here, as the procedural
        renderer does)."""
        lm = np.asarray(landmarks, np.float32).reshape(-1, 68, 2)
        n = lm.shape[0]
        pose = (
            np.zeros((n, 3), np.float32)
            if pose is None
            else np.clip(np.asarray(pose, np.float32).reshape(n, 3), -0.6, 0.6)
        )
        blink = np.zeros(n, np.float32) if blink is None else np.clip(np.asarray(blink, np.float32).reshape(n), 0, 1)
        if emotion is not None:
            emo = np.asarray(emotion, np.float32).reshape(n, 6)
            lm = np.stack([apply_emotion(lm[i], emo[i]) for i in range(n)])
            # narrower eyes (sad, happy) close the lids a little; wider ones cannot open past the drawing
            blink = 1.0 - (1.0 - blink) * np.minimum([eye_open_factor(e) for e in emo], 1.0)
        out = self.model.run(
            {
                **self._const,
                "base": self._char if alpha else self._opaque,
                "landmarks": np.ascontiguousarray(lm, np.float32),
                "pose": np.ascontiguousarray(pose),
                "blink": blink.reshape(n, 1).astype(np.float32),
            }
        )
        return out["rgba"]

    def draw_rgba(
        self,
        landmarks: np.ndarray,
        pose: np.ndarray | tuple | None = (0, 0, 0),
        blink: float = 0.0,
        emotion: np.ndarray | None = None,
    ) -> np.ndarray:
        """The character alone: uint8 RGBA [size, size, 4], straight alpha."""
        return unpremultiply(self.run(landmarks, pose, np.float32(blink), emotion, alpha=True)[0])

    def draw(
        self,
        landmarks: np.ndarray,
        pose: np.ndarray | tuple | None = (0, 0, 0),
        blink: float = 0.0,
        emotion: np.ndarray | None = None,
    ) -> np.ndarray:
        """One frame over the avatar's own background: uint8 RGB [size, size, 3]."""
        return np.ascontiguousarray(self.run(landmarks, pose, np.float32(blink), emotion)[0, ..., :3])


__all__ = [
    "WarpRenderer",
    "COLOURS",
    "MODEL_NAME",
    "clamp_eyes",
    "landmark_eyes",
    "pack_quads",
    "palette_colours",
    "premultiply",
    "procedural_eyes",
]
