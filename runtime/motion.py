"""Seeded noise embedding (seed module 6): head sway, speech-driven nods and blinks; emotions.

Everything here is deterministic given ``seed``: the same audio and seed give the same motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")  # CREMA-D order
EMOTION_NAMES = {"angry": "ANG", "disgust": "DIS", "disgusted": "DIS", "fear": "FEA", "fearful": "FEA",
                 "happy": "HAP", "neutral": "NEU", "sad": "SAD"}


def emotion_vector(name: str) -> np.ndarray:
    """'happy' / 'HAP' / ... -> one-hot [6] in CREMA-D order."""
    key = EMOTION_NAMES.get(name.lower(), name.upper())
    if key not in EMOTIONS:
        raise InputError(f"unknown emotion {name!r}; accepted: {', '.join(sorted(EMOTION_NAMES))}")
    v = np.zeros(len(EMOTIONS), np.float32)
    v[EMOTIONS.index(key)] = 1.0
    return v


@dataclass
class NoiseConfig:
    sway_rad: tuple[float, float, float] = (0.07, 0.04, 0.03)  # yaw, pitch, roll std of the slow sway
    sway_seconds: float = 1.6  # smoothing time constant of the sway
    nod_gain: float = 0.05  # pitch (rad) per unit of speech-energy rise
    blink_mean_s: float = 3.2
    blink_min_s: float = 1.2
    fps: int = 25


def frame_energy(audio: np.ndarray, n_frames: int, samples_per_frame: int = 640) -> np.ndarray:
    """RMS energy per video frame in dB, floored at -60 dB -> [n_frames]."""
    a = np.asarray(audio, np.float32)[: n_frames * samples_per_frame]
    a = np.pad(a, (0, n_frames * samples_per_frame - a.size)).reshape(n_frames, samples_per_frame)
    return (20 * np.log10(np.maximum(np.sqrt((a**2).mean(1)), 1e-3))).astype(np.float32)


_BLINK = np.array([0.45, 1.0, 1.0, 0.6, 0.25], np.float32)  # 200 ms lid profile


def _smooth_noise(rng: np.random.Generator, n: int, tau_frames: float) -> np.ndarray:
    """Unit-variance low-pass Gaussian noise (two cascaded one-pole filters)."""
    a = np.exp(-1.0 / max(tau_frames, 1.0))
    x = rng.standard_normal(n + int(6 * tau_frames)).astype(np.float64)
    for _ in range(2):
        y = np.empty_like(x)
        acc = 0.0
        for i, v in enumerate(x):
            acc = a * acc + (1 - a) * v
            y[i] = acc
        x = y
    x = x[int(6 * tau_frames):]
    s = x.std()
    return (x / s if s > 0 else x).astype(np.float32)


def head_motion(n_frames: int, energy: np.ndarray | None, seed: int, cfg: NoiseConfig = NoiseConfig()) -> np.ndarray:
    """[T, 3] yaw, pitch, roll (rad): slow seeded sway + small nods when speech energy rises."""
    rng = np.random.default_rng(seed)
    tau = cfg.sway_seconds * cfg.fps / 2
    pose = np.stack([_smooth_noise(rng, n_frames, tau) * s for s in cfg.sway_rad], axis=1)
    if energy is not None and n_frames:
        e = np.asarray(energy, np.float32)[:n_frames]
        rise = np.maximum(np.diff(e, prepend=e[:1]), 0)
        k = np.exp(-np.arange(8) / 3.0)
        pose[: e.size, 1] += cfg.nod_gain * np.convolve(rise, k / k.sum(), mode="full")[: e.size]
    return np.clip(pose, -0.3, 0.3).astype(np.float32)


def blinks(n_frames: int, seed: int, cfg: NoiseConfig = NoiseConfig()) -> np.ndarray:
    """[T] eyelid closure 0..1 with seeded, irregular blink times."""
    rng = np.random.default_rng(seed + 7919)
    out = np.zeros(n_frames, np.float32)
    t = rng.uniform(0.4, cfg.blink_mean_s)
    while True:
        i = int(t * cfg.fps)
        if i >= n_frames:
            break
        seg = _BLINK[: n_frames - i]
        out[i : i + seg.size] = np.maximum(out[i : i + seg.size], seg)
        t += cfg.blink_min_s + rng.gamma(2.0, (cfg.blink_mean_s - cfg.blink_min_s) / 2.0)
    return out
