"""Lip-sync and landmark metrics (seed metrics + lip-sync), per clip then averaged.

For each clip, with the predicted mouth parameters and the clip's phone-timed targets:
  r_target      Pearson r of predicted vs target mouth opening (co-articulated viseme trajectory)
  r_phoneme     ... vs the phoneme opening envelope (step function of each phone's target opening)
  r_energy      ... vs the speech energy envelope (RMS per 40 ms, dB)
  mse           mean squared error of the 3 mouth parameters
  drift_pct_iod landmark drift: mean Euclidean distance of predicted vs target landmarks, % of the
                inter-ocular distance (canonical avatar canvas: 0.28)
  viseme_acc    per-frame agreement of Rhubarb viseme classes (runtime.motion_io.viseme_classes)
  silence_closed fraction of silent frames (inside pauses >= 200 ms, 80 ms from their edges) whose
                predicted opening < 0.15, per clip, averaged over the clips that have such frames
  silence_closed_frames  the same pooled over every silent frame of the set (each frame counts once;
                a clip with a single qualifying frame does not weigh as much as one with fifty)
  onset_lag_ms  lag of the cross-correlation peak of predicted vs target opening (+ = prediction late)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toonsync.runtime.motion import frame_energy as energy_envelope
from toonsync.runtime.motion_io import viseme_classes
from toonsync.runtime.mouth import mouth_basis

from .visemes import Phone, mouth_opening_envelope

IOD = 0.28
CLOSED = 0.15


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def phones_of(clip: Any) -> list[Phone]:
    """A corpus clip's phone timings."""
    return [Phone(p["label"].decode(), float(p["start"]), float(p["end"])) for p in clip.phones]


def onset_lag_ms(pred: np.ndarray, target: np.ndarray, max_lag: int = 5, fps: int = 25) -> float:
    """Lag (ms) maximising the correlation of the two opening tracks (+ = prediction later than target)."""
    best, lag = -2.0, 0
    for k in range(-max_lag, max_lag + 1):
        a = pred[max(k, 0) : len(pred) + min(k, 0)]
        b = target[max(-k, 0) : len(target) + min(-k, 0)]
        r = pearson(a, b) if len(a) > 3 else -2.0
        if r > best:
            best, lag = r, k
    return lag * 1000.0 / fps


def silent_frames(phones: list[Phone], n: int, fps: int = 25, min_s: float = 0.2, margin_s: float = 0.08) -> np.ndarray:
    """Frames inside pauses of at least ``min_s``, ``margin_s`` away from their edges (co-articulation)."""
    t = (np.arange(n) + 0.5) / fps
    mask = np.zeros(n, bool)
    for p in phones:
        if p.label in ("pau", "sil", "h#") and p.end - p.start >= min_s:
            mask |= (t >= p.start + margin_s) & (t < p.end - margin_s)
    return mask


def clip_metrics(pred: np.ndarray, clip: Any) -> dict:
    """Lip-sync metrics of one clip's predicted mouth against its targets and phones."""
    n = min(pred.shape[0], clip.mouth.shape[0])
    pred, tgt = pred[:n], clip.mouth[:n]
    phones = phones_of(clip) if clip.phones is not None else []
    basis = mouth_basis()
    d_lm = np.tensordot(pred - tgt, basis, axes=([-1], [0]))  # [n, 68, 2]
    out = {
        "r_target": pearson(pred[:, 0], tgt[:, 0]),
        "mse": float(((pred - tgt) ** 2).mean()),
        "drift_pct_iod": float(np.linalg.norm(d_lm, axis=-1).mean() / IOD * 100),
        "viseme_acc": float((viseme_classes(pred) == viseme_classes(tgt)).mean()),
        "onset_lag_ms": onset_lag_ms(pred[:, 0], tgt[:, 0]),
    }
    if phones:
        out["r_phoneme"] = pearson(pred[:, 0], mouth_opening_envelope(phones, n))
        sil = silent_frames(phones, n)
        if sil.any():
            out["silence_closed"] = float((pred[sil, 0] < CLOSED).mean())
            out["_silent"], out["_closed"] = int(sil.sum()), int((pred[sil, 0] < CLOSED).sum())
    if clip.audio is not None:
        out["r_energy"] = pearson(pred[:, 0], energy_envelope(clip.audio, n))
    return out


def lipsync_metrics(preds: list[np.ndarray], clips: list) -> dict:
    """preds[i]: [T, 3] mouth params for clips[i] (runtime.dataset.Clip with mouth targets, phones, audio)."""
    per = [clip_metrics(p, c) for p, c in zip(preds, clips)]
    keys = ("r_target", "r_phoneme", "r_energy", "mse", "drift_pct_iod", "viseme_acc", "silence_closed", "onset_lag_ms")
    out = {"clips": len(per)}
    for k in keys:
        vals = [m[k] for m in per if k in m]
        out[k] = round(float(np.mean(vals)), 4) if vals else None
    silent = sum(m.get("_silent", 0) for m in per)
    out["silence_closed_frames"] = round(sum(m.get("_closed", 0) for m in per) / silent, 4) if silent else None
    out["silent_frames"] = silent
    return out
