"""Motion for animators and game engines: ``runtime.animate(audio) -> Motion`` and JSON / NPY / CSV files.

Per 25 fps frame: 68 landmarks [T, 68, 2] (contract coordinates, 0..1, for the default neutral face or
a given avatar), head pose (yaw, pitch, roll rad), blink, emotion probabilities (CREMA-D order), mouth
parameters and a viseme class. The JSON also carries Rhubarb-Lip-Sync-style mouth cues (start, end,
shape A-H/X) so existing 2D animation pipelines can use it directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import Animator, Motion
    from .prepare import FaceLike

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .audio_io import AudioLike, load_audio
from .errors import InputError
from .mel import FPS
from .motion import EMOTIONS

# Rhubarb's basic + extended mouth shapes (https://github.com/DanielSWolf/rhubarb-lip-sync#mouth-shapes)
VISEMES = ("X", "A", "B", "C", "D", "E", "F", "G")
VISEME_MEANING = {
    "X": "rest (silence)",
    "A": "closed (P B M)",
    "B": "slightly open, teeth (K S T EE)",
    "C": "open (EH AE)",
    "D": "wide open (AA)",
    "E": "slightly rounded (AO ER)",
    "F": "puckered (UW OW W)",
    "G": "upper teeth on lower lip (F V)",
}


def viseme_classes(mouth: np.ndarray, energy_db: np.ndarray | None = None) -> np.ndarray:
    """Mouth parameters [T, 3] (open, spread, labio) -> viseme letters [T] (Rhubarb shapes)."""
    o, s, lab = mouth[:, 0], mouth[:, 1], mouth[:, 2]
    out = np.full(mouth.shape[0], "B", dtype="<U1")
    out[o > 0.45] = "C"
    out[o > 0.7] = "D"
    out[(s < -0.2) & (o > 0.12)] = "E"
    out[(s < -0.45) & (o <= 0.7)] = "F"
    out[o < 0.08] = "A"
    out[lab > 0.5] = "G"
    if energy_db is not None:
        out[(o < 0.05) & (energy_db[: out.size] < -45)] = "X"
    return out


def mouth_cues(visemes: np.ndarray, fps: int = FPS) -> list[dict]:
    """Run-length encode per-frame visemes into Rhubarb-style cues [{start, end, value}] (seconds)."""
    cues, start = [], 0
    for i in range(1, visemes.size + 1):
        if i == visemes.size or visemes[i] != visemes[start]:
            cues.append({"start": round(start / fps, 3), "end": round(i / fps, 3), "value": str(visemes[start])})
            start = i
    return cues


def animate(
    audio: AudioLike,
    *,
    face: FaceLike | None = None,
    seed: int = 0,
    emotion: str | None = None,
    backend: str = "auto",
    precision: str = "auto",
    sample_rate: int | None = None,
    animator: Animator | None = None,
) -> Motion:
    """Audio (WAV/FLAC path or array) -> ``Motion`` at 25 fps (with ``.visemes``), for the default neutral face
    or ``face`` (photo, ``.avatar`` or ``Avatar``)."""
    from .avatar import mean_face_landmarks
    from .motion import frame_energy
    from .pipeline import Animator
    from .prepare import load_face

    pcm = load_audio(audio, sample_rate)
    neutral = load_face(face).neutral if face is not None else mean_face_landmarks()
    animator = animator or Animator(backend, precision)
    m = animator.animate(pcm, neutral, seed=seed, emotion=emotion)
    m.visemes = viseme_classes(m.mouth, frame_energy(pcm, m.n_frames))
    return m


def motion_dict(m: Motion) -> dict:
    vis = getattr(m, "visemes", None)
    if vis is None:
        vis = viseme_classes(m.mouth)
    return {
        "format": "toonsync-motion",
        "version": 1,
        "fps": FPS,
        "frames": m.n_frames,
        "coordinates": "landmarks: iBUG-68 order, canvas pixels / canvas size (0..1), before head pose",
        "emotion_classes": list(EMOTIONS),
        "viseme_classes": VISEME_MEANING,
        "landmarks": np.round(m.landmarks, 5).tolist(),
        "pose": np.round(m.pose, 5).tolist(),
        "blink": np.round(m.blink, 4).tolist(),
        "emotion": np.round(m.emotion, 4).tolist(),
        "mouth": np.round(m.mouth, 4).tolist(),
        "viseme": vis.tolist(),
        "mouth_cues": mouth_cues(vis),
    }


def save_motion(m: Motion, path: str | os.PathLike) -> Path:
    """Write ``.json`` (everything + mouth cues), ``.npy`` (landmarks [T, 68, 2] exactly) or ``.csv``
    (a row per frame)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npy", ".csv"):
        raise InputError(f"motion output must be .json, .npy or .csv, got {path.name}")
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, m.landmarks.astype(np.float32))
        elif suffix == ".json":
            tmp.write_text(json.dumps(motion_dict(m)))
        else:
            d = motion_dict(m)
            buf = io.StringIO()
            w = csv.writer(buf)
            w.writerow(
                [
                    "frame",
                    "time",
                    "yaw",
                    "pitch",
                    "roll",
                    "blink",
                    "open",
                    "spread",
                    "labio",
                    "viseme",
                    *[f"emo_{e}" for e in EMOTIONS],
                    *[f"{c}{i}" for i in range(68) for c in ("x", "y")],
                ]
            )
            for k in range(m.n_frames):
                w.writerow(
                    [
                        k,
                        f"{k / FPS:.3f}",
                        *d["pose"][k],
                        d["blink"][k],
                        *d["mouth"][k],
                        d["viseme"][k],
                        *d["emotion"][k],
                        *np.round(m.landmarks[k].ravel(), 5).tolist(),
                    ]
                )
            tmp.write_text(buf.getvalue())
    return path
