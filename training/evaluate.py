"""Lip-sync metrics: how well predicted mouth opening follows the speech.

For each clip: Pearson r between the predicted opening and
  r_target   : the co-articulated viseme trajectory (what the model was trained toward)
  r_phoneme  : the phoneme opening envelope (step function of each phone's target opening)
  r_energy   : the speech energy envelope (RMS per 40 ms frame, dB)
plus MSE of the mouth parameters. Reported as the mean over clips.
"""
from __future__ import annotations

import numpy as np

from runtime.motion import frame_energy as energy_envelope

from .visemes import Phone, mouth_opening_envelope


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def phones_of(clip) -> list[Phone]:
    return [Phone(p["label"].decode(), float(p["start"]), float(p["end"])) for p in clip.phones]


def lipsync_metrics(preds: list[np.ndarray], clips: list) -> dict:
    """preds[i]: [T, 3] mouth params (or [T] opening) for clips[i] (runtime.dataset.Clip with audio/phones/mouth)."""
    rt, rp, re, mse = [], [], [], []
    for pred, c in zip(preds, clips):
        opening = pred[:, 0] if pred.ndim == 2 else pred
        n = min(opening.shape[0], c.mouth.shape[0])
        opening = opening[:n]
        rt.append(pearson(opening, c.mouth[:n, 0]))
        if c.phones is not None:
            rp.append(pearson(opening, mouth_opening_envelope(phones_of(c), n)))
        if c.audio is not None:
            re.append(pearson(opening, energy_envelope(c.audio, n)))
        if pred.ndim == 2:
            mse.append(float(((pred[:n] - c.mouth[:n]) ** 2).mean()))
    m = lambda xs: round(float(np.mean(xs)), 4) if xs else None  # noqa: E731
    return {"clips": len(preds), "r_target": m(rt), "r_phoneme": m(rp), "r_energy": m(re), "mse": m(mse)}
