"""Motion for animators and game engines: ``runtime.animate(audio) -> Motion`` and JSON / NPY / CSV files.

Per 25 fps frame: 68 landmarks [T, 68, 2] (contract coordinates, 0..1, for the default neutral face or
a given avatar), head pose (yaw, pitch, roll rad), blink, emotion probabilities (CREMA-D order), mouth
parameters and a viseme class. The JSON also carries Rhubarb-Lip-Sync-style mouth cues (start, end,
shape A-H/X) so existing 2D animation pipelines can use it directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .pipeline import Animator, Motion
    from .prepare import FaceLike

import csv
import json
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .audio_io import AudioLike, iter_audio
from .errors import InputError
from .mel import FPS, SAMPLES_PER_FRAME
from .motion import EMOTIONS
from .mouth import CLOSED_READ, MOUTH_GAIN, PARTED_READ, SHUT_FROM, SHUT_TO

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


# A decoder with a closure head decides the closed shape "A": the cue says the lips are shut from the closure
# probability at which a render's parted lips (``PARTED``, drawn at 0.125 of a wide-open mouth) have closed along
# the ramp of ``shape_closures`` to under 0.10, where a mouth reads as closed; the spoken frames the mouth
# parameters alone would call closed are parted ("B") below it, as a render draws them. So the cues close where
# a render closes the lips.
CUE_SHUT = SHUT_FROM + (1.0 - CLOSED_READ / PARTED_READ) * (SHUT_TO - SHUT_FROM)
REST_FRAMES = 6  # a closed mouth held this long (240 ms, longer than a P, B or M closes the lips) is a pause: rest


def viseme_classes(
    mouth: np.ndarray, energy_db: np.ndarray | None = None, closed: np.ndarray | None = None
) -> np.ndarray:
    """Mouth parameters [T, 3] (open, spread, labio) -> viseme letters [T] (Rhubarb shapes). ``closed`` [T]: the
    closure head's probabilities (NaN where there is none), which then decide the closed shape "A"; ``energy_db``
    [T]: quiet frames with a closed mouth are rest ("X"), and so is any closed run of ``REST_FRAMES`` or more (a
    pause over room noise: Rhubarb's idle mouth, not lips pressed together)."""
    o, s, lab = mouth[:, 0], mouth[:, 1], mouth[:, 2]
    out = np.full(mouth.shape[0], "B", dtype="<U1")
    out[o > 0.45] = "C"
    out[o > 0.7] = "D"
    out[(s < -0.2) & (o > 0.12)] = "E"
    out[(s < -0.45) & (o <= 0.7)] = "F"
    p = np.full(out.size, np.nan, np.float32) if closed is None else np.asarray(closed, np.float32)[: out.size]
    out[(o < 0.08) & np.isnan(p)] = "A"
    out[lab > 0.5] = "G"
    out[np.nan_to_num(p) >= CUE_SHUT] = "A"  # NaN (no head) counts as 0
    if energy_db is not None:
        out[(o < 0.05) & (energy_db[: out.size] < -45)] = "X"
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (out == "A").astype(np.int8), [0]])))
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start >= REST_FRAMES:
            out[start:end] = "X"
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
    mouth_gain: float = MOUTH_GAIN,
    head_motion: float = 1.0,
) -> Motion:
    """Audio (WAV/FLAC path or array) -> ``Motion`` at 25 fps (with ``.visemes``), for the default neutral face
    or ``face`` (photo, ``.avatar`` or ``Avatar``). The landmarks and pose are the ones a render with the same
    ``mouth_gain`` / ``head_motion`` draws (``RenderOptions``)."""
    from .avatar import mean_face_landmarks
    from .motion import frame_energy
    from .pipeline import Animator
    from .prepare import load_face

    chunks = iter_audio(audio, sample_rate)  # a file is read block by block: memory bounded for any length
    neutral = load_face(face).neutral if face is not None else mean_face_landmarks()
    animator = animator or Animator(backend, precision)
    energies: list[np.ndarray] = []
    carry = np.zeros(0, np.float32)

    def tapped() -> Iterator[np.ndarray]:  # per-frame energy (for the visemes) as the chunks go by
        nonlocal carry
        for c in chunks:
            a = np.concatenate([carry, c])
            n = a.size // SAMPLES_PER_FRAME
            if n:
                energies.append(frame_energy(a[: n * SAMPLES_PER_FRAME], n))
            carry = a[n * SAMPLES_PER_FRAME :]
            yield c

    m, _ = animator.animate_chunks(
        tapped(), neutral, seed=seed, emotion=emotion, mouth_gain=mouth_gain, head_motion=head_motion
    )
    if carry.size:
        energies.append(frame_energy(carry, 1))
    e = np.concatenate([np.zeros(0, np.float32), *energies])[: m.n_frames]
    e = np.pad(e, (0, m.n_frames - e.size), constant_values=-60.0)
    m.visemes = viseme_classes(m.mouth, e, m.closed)
    return m


_ARRAYS = (("landmarks", 5), ("pose", 5), ("blink", 4), ("emotion", 4), ("mouth", 4))  # field, decimals


def _header(m: Motion) -> dict:
    return {
        "format": "toonsync-motion",
        "version": 1,
        "fps": FPS,
        "frames": m.n_frames,
        "coordinates": "landmarks: iBUG-68 order, canvas pixels / canvas size (0..1), before head pose",
        "emotion_classes": list(EMOTIONS),
        "viseme_classes": VISEME_MEANING,
    }


def _visemes(m: Motion) -> np.ndarray:
    vis = getattr(m, "visemes", None)
    return viseme_classes(m.mouth, closed=getattr(m, "closed", None)) if vis is None else vis


def motion_dict(m: Motion) -> dict:
    """The ``.json`` document as a dict: per-frame landmarks, pose, blink, emotion, mouth, viseme, mouth cues."""
    vis = _visemes(m)
    return {
        **_header(m),
        **{k: np.round(getattr(m, k), nd).tolist() for k, nd in _ARRAYS},
        "viseme": vis.tolist(),
        "mouth_cues": mouth_cues(vis),
    }


def _write_json(m: Motion, f: TextIO, rows: int = 1000) -> None:
    """``json.dump(motion_dict(m))``, the same text, written a block of frames at a time (bounded memory)."""
    vis = _visemes(m)
    f.write(json.dumps(_header(m))[:-1])
    for k, nd in _ARRAYS:
        a = getattr(m, k)
        f.write(f', "{k}": [')
        for i in range(0, a.shape[0], rows):
            f.write((", " if i else "") + json.dumps(np.round(a[i : i + rows], nd).tolist())[1:-1])
        f.write("]")
    f.write(f', "viseme": {json.dumps(vis.tolist())}, "mouth_cues": {json.dumps(mouth_cues(vis))}}}')


def _write_csv(m: Motion, f: TextIO) -> None:
    """A row per frame: time, pose, blink, mouth, viseme, emotion, the 68 landmarks."""
    w = csv.writer(f)
    w.writerow(
        ["frame", "time", "yaw", "pitch", "roll", "blink", "open", "spread", "labio", "viseme"]
        + [f"emo_{e}" for e in EMOTIONS]
        + [f"{c}{i}" for i in range(68) for c in ("x", "y")]
    )
    vis = _visemes(m).tolist()
    for k in range(m.n_frames):
        w.writerow(
            [
                k,
                f"{k / FPS:.3f}",
                *np.round(m.pose[k], 5).tolist(),
                np.round(m.blink[k : k + 1], 4).tolist()[0],
                *np.round(m.mouth[k], 4).tolist(),
                vis[k],
                *np.round(m.emotion[k], 4).tolist(),
                *np.round(m.landmarks[k].ravel(), 5).tolist(),
            ]
        )


def save_motion(m: Motion, path: str | os.PathLike) -> Path:
    """Write ``.json`` (everything + mouth cues), ``.npy`` (landmarks [T, 68, 2] exactly) or ``.csv``
    (a row per frame), streamed to a temp file and renamed."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npy", ".csv"):
        raise InputError(f"motion output must be .json, .npy or .csv, got {path.name}")
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, m.landmarks.astype(np.float32))
        else:
            with open(tmp, "w", newline="" if suffix == ".csv" else None) as f:
                (_write_json if suffix == ".json" else _write_csv)(m, f)
    return path
