"""The learned face -> comic stylizer at run time (pix2pix U-Net exported to ``stylizer.fp32.onnx``), and
the privacy check every stylized image passes before it is kept.

**No learned stylizer weights ship.** It is trained on Face2Comics (``toonsync train stylizer --data
PATH/TO/face2comics``), which is not on the build machine; asking for it without
``stylizer.fp32.onnx`` in the model directory raises :class:`NoLearnedStylizer`, which says how to
train and export one. The default avatar (``runtime.avatar``) is procedural and needs no weights.

Input alignment (shared with the training fixture, ``tests/data/make_face2comics_tiny.py``): the
photo is warped by the similarity that puts the eye centres level, 0.28 x size apart, their midpoint
at (0.5, 0.42) x size — the avatar's canonical frame (``runtime.avatar``) and close to the FFHQ-style
crops of Face2Comics.

**Privacy check** (:func:`photo_leak`): the avatar must never contain photo pixels, and a U-Net's skip
connections *can* copy its input through. Every stylized image is compared with the aligned photo it
came from: over the face region (the convex hull of the 68 landmarks, eroded by 2 px), each textured
8 x 8 photo patch (luma std >= 6/255: flat patches such as a plain wall are not identifying) is
compared with the output patches at the same place and shifted by up to ``max_shift`` px; a patch
whose mean absolute RGB difference is <= ``tolerance`` (4/255, i.e. JPEG-level copying) is a leak.
Any leaked patch raises :class:`PhotoLeakError` and nothing is written. The check is tested on a
stylizer trained on the tiny fixture (passes) and on an identity "stylizer" (caught).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .avatar_geometry import similarity_to_canonical
from .backend import LoadedModel, load_model, model_dir
from .errors import ModelError, ToonsyncError

log = logging.getLogger(__name__)

NAME = "stylizer"
PATCH = 8
TOLERANCE = 4.0 / 255.0
MIN_TEXTURE = 6.0 / 255.0
MAX_SHIFT = 2


class NoLearnedStylizer(ModelError):
    """``stylizer="learned"`` was asked for, but no stylizer weights are in the model directory."""


class PhotoLeakError(ToonsyncError, RuntimeError):
    """A stylized image reproduces patches of the photo; it is refused (the avatar never holds photo pixels)."""


def no_weights_message(directory: Path) -> str:
    return (
        f"no learned stylizer weights in {directory} (stylizer.fp32.onnx + stylizer.onnx.json): none ship with "
        "toonsync, because the Face2Comics data it is trained on is not on the build machine. Train and export "
        "one: `toonsync train stylizer --data PATH/TO/face2comics --export MODEL_DIR` (docs/learned_models.md), "
        "then set TOONSYNC_MODEL_DIR=MODEL_DIR; or use the default procedural avatar (stylizer 'procedural')"
    )


def _alignment(landmarks_px: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    L = np.asarray(landmarks_px, np.float32).reshape(68, 2)
    M = similarity_to_canonical(L, size)
    return M, L @ M[:, :2].T + M[:, 2]


def aligned_landmarks(landmarks_px: np.ndarray, size: int) -> np.ndarray:
    """The photo's 68 landmarks in the aligned ``[size, size]`` frame the stylizer sees and draws (pixels)."""
    return _alignment(landmarks_px, size)[1]


def align_face(image: np.ndarray, landmarks_px: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo (RGB uint8) + its 68 landmarks in pixels -> (aligned RGB ``[size, size, 3]``, landmarks in it)."""
    M, lm = _alignment(landmarks_px, size)
    crop = cv2.warpAffine(
        image,
        M,
        (size, size),
        flags=cv2.INTER_AREA if M[0, 0] ** 2 + M[0, 1] ** 2 < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop, lm


def face_mask(landmarks: np.ndarray, size: int, erode: int = 2) -> np.ndarray:
    """Bool ``[size, size]``: the convex hull of the landmarks, eroded by ``erode`` px."""
    m = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    if erode:
        m = cv2.erode(m, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return m.astype(bool)


@dataclass
class LeakReport:
    """The privacy check of one stylized image: photo patches checked, how many were reproduced, the closest."""

    patches_checked: int  # textured photo patches inside the face region
    leaked: int  # of them, patches reproduced by the output
    min_mean_abs_diff: float  # closest output patch over all checked ones (0..1 scale)
    tolerance: float = TOLERANCE

    @property
    def ok(self) -> bool:
        return self.leaked == 0

    def to_dict(self) -> dict:
        return {
            "patches_checked": self.patches_checked,
            "leaked": self.leaked,
            "min_mean_abs_diff": round(self.min_mean_abs_diff, 5),
            "tolerance": round(self.tolerance, 5),
            "patch": PATCH,
            "max_shift": MAX_SHIFT,
            "ok": self.ok,
        }


def photo_leak(
    photo: np.ndarray,
    output: np.ndarray,
    mask: np.ndarray,
    tolerance: float = TOLERANCE,
    max_shift: int = MAX_SHIFT,
    stride: int = 2,
) -> LeakReport:
    """Compare every textured 8x8 patch of ``photo`` inside ``mask`` with ``output`` (same size, RGB uint8)."""
    if photo.shape != output.shape:
        raise ValueError(f"photo {photo.shape} and output {output.shape} must have the same shape")
    a = photo.astype(np.float32) / 255.0
    b = output.astype(np.float32) / 255.0
    H, W = mask.shape
    ys, xs = np.meshgrid(np.arange(0, H - PATCH + 1, stride), np.arange(0, W - PATCH + 1, stride), indexing="ij")

    def window_mean(x: np.ndarray) -> np.ndarray:  # mean over the 8x8 window whose top-left corner is (y, x)
        return cv2.boxFilter(x, -1, (PATCH, PATCH), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_CONSTANT)[
            ys, xs
        ]

    luma = a @ np.array([0.299, 0.587, 0.114], np.float32)
    std = np.sqrt(np.maximum(window_mean(luma * luma) - window_mean(luma) ** 2, 0.0))
    keep = (window_mean(mask.astype(np.float32)) > 1 - 1e-6) & (std >= MIN_TEXTURE)
    best = np.full(ys.shape, np.inf, np.float32)
    for dy in range(-max_shift, max_shift + 1):  # mean |photo - output| per window, output shifted by (dy, dx)
        for dx in range(-max_shift, max_shift + 1):
            best = np.minimum(best, window_mean(np.abs(a - np.roll(b, (dy, dx), axis=(0, 1))).mean(axis=2)))
    vals = best[keep]
    return LeakReport(
        int(keep.sum()), int((vals <= tolerance).sum()), float(vals.min()) if vals.size else float("inf"), tolerance
    )


class LearnedStylizer:
    """``stylizer.fp32.onnx``: aligned photo RGB 0..1 ``[B, S, S, 3]`` -> comic RGB 0..1 ``[B, S, S, 3]``."""

    def __init__(self, directory: str | Path | None = None, backend: str = "cpu"):
        d = Path(directory) if directory else model_dir()
        if not (d / f"{NAME}.fp32.onnx").is_file() or not (d / f"{NAME}.onnx.json").is_file():
            raise NoLearnedStylizer(no_weights_message(d))
        self.model: LoadedModel = load_model(NAME, "fp32", backend, d)
        self.size = int(self.model.card.config["size"])
        self.sha256 = f.sha256 if (f := self.model.card.file("fp32")) else None

    def __call__(self, image: np.ndarray, landmarks_px: np.ndarray) -> tuple[np.ndarray, LeakReport]:
        """Photo + landmarks -> (comic RGB uint8 ``[S, S, 3]``, privacy report); raises PhotoLeakError on a leak."""
        crop, lm = align_face(image, landmarks_px, self.size)
        x = (crop.astype(np.float32) / 255.0)[None]
        y = self.model.run({"image": x})["stylized"][0]
        out = np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)
        rep = photo_leak(crop, out, face_mask(lm, self.size))
        if not rep.ok:
            raise PhotoLeakError(
                f"the learned stylizer reproduced {rep.leaked} of {rep.patches_checked} 8x8 photo "
                "patches of the face (privacy check); the result was discarded — retrain the stylizer "
                "or use the procedural avatar"
            )
        log.info("stylizer: %dx%d, privacy check %s", self.size, self.size, rep.to_dict())
        return out, rep
