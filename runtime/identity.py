"""Avatar identity embedding at run time: ``identity.fp32.onnx``, numpy + onnxruntime only.

    from toonsync.runtime import identity
    e1 = identity.embed(frame_a)            # RGB uint8 [H, W, 3] -> unit vector [128]
    identity.similarity(e1, identity.embed(frame_b))   # cosine, -1..1
    identity.embed_avatar(avatar)           # a prepared Avatar's neutral frame -> [128]

The encoder is a ResNet-18 (``training.models.resnet``) trained by ``training/train_identity.py`` on
avatars this project draws (random identities at random expressions, poses, blinks and
backgrounds) to map frames of one avatar close together and different avatars apart; the shipped
model's held-out verification figures are in ``identity.onnx.json`` (``metrics``) and
docs/learned_models.md. The model card's ``threshold`` is the cosine similarity at the held-out equal
error rate: above it, two frames are judged to show the same avatar. It conditions the refinement
generator (``refiner.onnx``, FiLM).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .prepare import Avatar

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .backend import LoadedModel, load_model, model_dir
from .errors import InputError

NAME = "identity"


class IdentityModel:
    """``identity.fp32.onnx``: RGB images -> unit-length embeddings."""

    def __init__(self, directory: str | os.PathLike | None = None, backend: str = "cpu"):
        self.model: LoadedModel = load_model(NAME, "fp32", backend, Path(directory) if directory else None)
        cfg = self.model.card.config
        self.size, self.dim = int(cfg["size"]), int(cfg["embed_dim"])
        self.threshold = self.model.card.get("threshold")

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """uint8 RGB ``[H, W, 3]`` or ``[N, H, W, 3]`` (any square-ish size) -> float32 ``[N, S, S, 3]`` in 0..1."""
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
            raise InputError(
                f"identity.embed takes RGB uint8 images [H, W, 3] or [N, H, W, 3], got {x.dtype} {x.shape}"
            )
        s = self.size
        out = [
            im
            if im.shape[:2] == (s, s)
            else cv2.resize(im, (s, s), interpolation=cv2.INTER_AREA if im.shape[0] > s else cv2.INTER_LINEAR)
            for im in x
        ]
        return np.stack(out).astype(np.float32) / 255.0

    def embed(self, images: np.ndarray) -> np.ndarray:
        """``[H, W, 3]`` -> ``[D]``; ``[N, H, W, 3]`` -> ``[N, D]`` (unit length)."""
        e = self.model.run({"image": self.prepare(images)})["embedding"]
        return e[0] if np.asarray(images).ndim == 3 else e


@lru_cache(maxsize=4)
def _model(directory: str | None) -> IdentityModel:
    return IdentityModel(directory or model_dir())


def embed(image: np.ndarray, directory: str | os.PathLike | None = None) -> np.ndarray:
    """One RGB uint8 frame ``[H, W, 3]`` (or a batch) -> unit embedding ``[D]`` (or ``[N, D]``)."""
    return _model(str(directory) if directory else None).embed(image)


def embed_avatar(avatar: Avatar, directory: str | os.PathLike | None = None) -> np.ndarray:
    """A prepared ``Avatar`` (``runtime.prepare``): its neutral frame -> ``[D]``."""
    m = _model(str(directory) if directory else None)
    return m.embed(avatar.renderer(2 * m.size).draw(avatar.neutral))


def similarity(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Cosine similarity of embeddings (``[D]`` or ``[..., D]``; unit length, so a dot product, re-normalised)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    s = (a * b).sum(-1) / np.maximum(na * nb, 1e-12)
    return float(s) if np.ndim(s) == 0 else s
