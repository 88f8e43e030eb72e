"""Synthetic avatar identities and frames, drawn by the runtime's own renderer (``runtime.avatar``).

An *identity* is what ``toonsync prepare`` keeps of a photo: an ``AvatarStyle`` (skin, hair, eye,
lip and background colours, hair length, glasses, beard) and a neutral 68-point face shape. Random
identities are drawn like photo-derived ones: "measured" colours are sampled from wide ranges and
pushed through the same cel palette as a photo's (``runtime.avatar_style.animeify_style``), and the face
shape is the mean anime face (``mean_face_landmarks``) with random jaw width and length, eye size,
brow height and tilt, nose length, mouth width and height and a little per-point jitter.

A *frame* of an identity is ``AvatarRenderer.draw`` at a random expression: mouth opening / spread /
labio (``runtime.mouth.apply_mouth``), one of the six emotions or a mix (or none), a blink, a head pose
(yaw, pitch, roll within +-0.35 rad), on the identity's own background or — half of the time —
the character alone (``draw_rgba``) over a random solid colour (``runtime.background.compose``), so
that an identity is its character, not its backdrop. Frames are drawn at ``2 x size`` and reduced
with ``INTER_AREA`` to ``size``, as the runtime reduces a 256-px frame.

Used by ``train_identity`` (metric learning over identities) and ``train_refiner`` (rough -> clean
renders of the same frame).
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from toonsync.runtime.avatar import AvatarRenderer, AvatarStyle, mean_face_landmarks
from toonsync.runtime.avatar_style import FACIAL_HAIR, GLASSES_SHAPES, HAIR_STYLES, STYLE_REACH, animeify_style
from toonsync.runtime.background import compose
from toonsync.runtime.mouth import apply_mouth

POSE_MAX = 0.35


def _hsv(rng: np.random.Generator, h: tuple[float, float], s: tuple[float, float], v: tuple[float, float]):
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(*h) % 1.0, rng.uniform(*s), rng.uniform(*v))
    return (int(r * 255), int(g * 255), int(b * 255))


def random_style(rng: np.random.Generator) -> AvatarStyle:
    skin = _hsv(rng, (0.0, 0.11), (0.12, 0.6), (0.4, 0.98))
    hair_kind = rng.random()
    if hair_kind < 0.55:  # natural: black / brown / blond / red
        hair = _hsv(rng, (0.0, 0.13), (0.2, 0.8), (0.05, 0.75))
    elif hair_kind < 0.7:  # grey / white
        hair = _hsv(rng, (0.0, 1.0), (0.0, 0.1), (0.35, 0.95))
    else:  # anime colours
        hair = _hsv(rng, (0.0, 1.0), (0.3, 0.9), (0.3, 0.9))
    eyes = _hsv(rng, (0.0, 1.0), (0.1, 0.7), (0.1, 0.6))
    lips = _hsv(rng, (-0.05, 0.05), (0.2, 0.6), (0.35, 0.9))
    bg = _hsv(rng, (0.0, 1.0), (0.0, 0.6), (0.2, 1.0))
    style = HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))]
    lo, hi = STYLE_REACH[style]
    return animeify_style(
        skin,
        hair,
        eyes,
        lips,
        bg,
        float(rng.uniform(lo, hi)),
        bool(rng.random() < 0.25),
        FACIAL_HAIR[int(rng.integers(len(FACIAL_HAIR)))] if rng.random() < 0.2 else "none",
        hair_style=style,
        glasses_shape=GLASSES_SHAPES[int(rng.integers(len(GLASSES_SHAPES)))],
        fringe=float(rng.uniform(0.0, 1.0)),
        part=float(rng.uniform(-1.0, 1.0)),
        volume=float(rng.uniform(0.0, 1.0)),
    )


def _scale(P: np.ndarray, idx, sx: float, sy: float, centre: np.ndarray | None = None) -> None:
    c = P[idx].mean(0) if centre is None else centre
    P[idx] = c + (P[idx] - c) * np.array([sx, sy], np.float32)


def random_face(rng: np.random.Generator) -> np.ndarray:
    """A random neutral anime face shape [68, 2] in 0..1 (canonical frame: eyes fixed)."""
    P = mean_face_landmarks().copy()
    eye_y = float(P[36:48, 1].mean())
    jaw = np.r_[0:17]
    _scale(P, jaw, rng.uniform(0.88, 1.12), 1.0, np.array([0.5, eye_y], np.float32))
    low = np.r_[0:17, 48:68]
    below = low[P[low, 1] > eye_y]
    P[below, 1] = eye_y + (P[below, 1] - eye_y) * rng.uniform(0.9, 1.1)  # face length
    s = rng.uniform(0.85, 1.15)
    for eye in (np.r_[36:42], np.r_[42:48]):
        _scale(P, eye, s * rng.uniform(0.97, 1.03), s * rng.uniform(0.9, 1.1))
    P[17:27, 1] += rng.uniform(-0.015, 0.015)
    tilt = rng.uniform(-0.01, 0.01)
    P[17:22, 1] += tilt * np.linspace(1, -1, 5)
    P[22:27, 1] += tilt * np.linspace(-1, 1, 5)
    _scale(P, np.r_[27:36], 1.0, rng.uniform(0.8, 1.2), P[30].copy())
    _scale(P, np.r_[48:68], rng.uniform(0.85, 1.15), rng.uniform(0.9, 1.1))
    P[48:68, 1] += rng.uniform(-0.012, 0.012)
    P += rng.normal(0, 0.0015, P.shape).astype(np.float32)
    return np.clip(P, 0.0, 1.0).astype(np.float32)


@dataclass
class Identity:
    """One synthetic person: an avatar style and its neutral landmarks."""

    style: AvatarStyle
    neutral: np.ndarray


def random_identity(rng: np.random.Generator) -> Identity:
    return Identity(random_style(rng), random_face(rng))


VARIANTS = ("face_shape", "hair_colour", "eye_colour", "skin_colour", "glasses", "hair_length")


def variant(idt: Identity, kind: str, rng: np.random.Generator) -> Identity:
    """``idt`` with one attribute changed (a hard negative: everything else is the same)."""
    st, other = idt.style, random_identity(rng)
    if kind == "face_shape":
        return Identity(st, other.neutral)
    change = {
        "hair_colour": {"hair": other.style.hair},
        "eye_colour": {"eyes": other.style.eyes},
        "skin_colour": {"skin": other.style.skin},
        "glasses": {"glasses": not st.glasses},
        "hair_length": {"hair_length": float((st.hair_length + 0.5) % 1.0)},
    }[kind]
    return Identity(dataclasses.replace(st, **change), idt.neutral)


@dataclass
class FrameParams:
    """How one synthetic frame is drawn: landmarks, pose, blink, emotion, background."""

    landmarks: np.ndarray
    pose: np.ndarray
    blink: float
    emotion: np.ndarray | None
    background: tuple[int, int, int] | None  # None: the identity's own


def random_frame(identity: Identity, rng: np.random.Generator, own_background: float = 0.5) -> FrameParams:
    open_ = rng.uniform(0, 1) if rng.random() < 0.7 else 0.0
    params = np.array([open_, rng.normal(0, 0.4), rng.uniform(0, 1) if rng.random() < 0.15 else 0.0], np.float32)
    emo = None
    u = rng.random()
    if u < 0.45:
        emo = np.eye(6, dtype=np.float32)[rng.integers(6)] * rng.uniform(0.4, 1.0)
    elif u < 0.6:
        emo = rng.dirichlet(np.ones(6)).astype(np.float32)
    blink = float(rng.uniform(0, 1)) if rng.random() < 0.3 else 0.0
    pose = rng.uniform(-POSE_MAX, POSE_MAX, 3).astype(np.float32) * np.array([1.0, 0.7, 0.6], np.float32)
    bg = None if rng.random() < own_background else tuple(int(c) for c in rng.integers(0, 256, 3))
    return FrameParams(apply_mouth(identity.neutral, params), pose, blink, emo, bg)


def render(renderer: AvatarRenderer, f: FrameParams, size: int) -> np.ndarray:
    """One frame (RGB uint8 ``[size, size, 3]``) from a renderer drawing at any larger size."""
    if f.background is None:
        img = renderer.draw(f.landmarks, f.pose, f.blink, f.emotion)
    else:
        img = compose(
            renderer.draw_rgba(f.landmarks, f.pose, f.blink, f.emotion), "#{:02x}{:02x}{:02x}".format(*f.background)
        )
    if img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def render_identity(
    identity: Identity, n_frames: int, size: int, rng: np.random.Generator, draw_size: int | None = None
) -> np.ndarray:
    """``n_frames`` random frames of one identity: uint8 ``[n_frames, size, size, 3]``."""
    r = AvatarRenderer(identity.style, identity.neutral, draw_size or 2 * size)
    return np.stack([render(r, random_frame(identity, rng), size) for _ in range(n_frames)])
