"""HDF5 clip store: the one on-disk layout for preprocessed data.

Layout of a ``.h5`` file (all optional datasets may be absent)::

    /                       attrs: format="toonsync-clips", version=1, sample_rate=16000, fps=25,
                                   hop=160, n_mels=80
    /clips/<clip_id>/       attrs: text, voice, engine, split ("train"/"val"/"test"), source, emotion
        audio      float32 [N]            mono 16 kHz, [-1, 1]
        mel        float32 [M, 80]        runtime.mel.log_mel(audio), M = N // 160
        frames     uint8   [T, H, W, 3]   RGB video frames at 25 fps (gzip, chunked per frame)
        landmarks  float32 [T, 68, 2]     iBUG-68 points / frame size (0..1); NaN rows = no face
        pose       float32 [T, 3]         yaw, pitch, roll (rad)
        mouth      float32 [T, 3]         mouth targets (open, spread, labio) — synthetic corpus
        phones     compound [P]           (label S8, start f4, end f4) seconds

``write_clips`` writes atomically; ``ClipStore`` reads lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from toonsync.runtime import mel as melmod
from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.errors import InputError, InputNotFound

FORMAT = "toonsync-clips"
VERSION = 1
PHONE_DTYPE = np.dtype([("label", "S8"), ("start", "<f4"), ("end", "<f4")])
_ARRAYS = ("audio", "mel", "frames", "landmarks", "pose", "mouth", "phones")
_ATTRS = ("text", "voice", "engine", "split", "source", "emotion")


@dataclass
class Clip:
    """One clip; every array is optional."""

    clip_id: str
    audio: np.ndarray | None = None
    mel: np.ndarray | None = None
    frames: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    pose: np.ndarray | None = None
    mouth: np.ndarray | None = None
    phones: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        for name in ("mouth", "landmarks", "frames", "pose"):
            a = getattr(self, name)
            if a is not None:
                return int(a.shape[0])
        if self.mel is not None:
            return int(self.mel.shape[0]) // melmod.MELS_PER_FRAME
        return 0


def phones_array(phones: Iterable[tuple[str, float, float]]) -> np.ndarray:
    return np.array([(p[0].encode()[:8], p[1], p[2]) for p in phones], dtype=PHONE_DTYPE)


def _write_clip(grp: h5py.Group, clip: Clip) -> None:
    for name in _ARRAYS:
        a = getattr(clip, name)
        if a is None:
            continue
        kw: dict = {}
        if name == "frames":
            kw = dict(chunks=(1, *a.shape[1:]), compression="gzip", compression_opts=4)
        elif a.size > 4096:
            kw = dict(compression="gzip", compression_opts=1)
        grp.create_dataset(name, data=a, **kw)
    for k, v in clip.attrs.items():
        grp.attrs[k] = v


def write_clips(path: str | os.PathLike, clips: Iterable[Clip], compute_mel: bool = True) -> int:
    """Write clips to a new HDF5 file atomically; computes ``mel`` from ``audio`` when missing. Returns the count."""
    n = 0
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(
                format=FORMAT,
                version=VERSION,
                sample_rate=melmod.SAMPLE_RATE,
                fps=melmod.FPS,
                hop=melmod.HOP,
                n_mels=melmod.N_MELS,
            )
            root = f.create_group("clips")
            for clip in clips:
                if compute_mel and clip.mel is None and clip.audio is not None:
                    clip.mel = melmod.log_mel(clip.audio)
                _write_clip(root.create_group(clip.clip_id), clip)
                n += 1
    return n


class ClipStore:
    """Read-only access to a clip HDF5 file: ``len``, iteration, ``store[clip_id]``, ``ids(split=...)``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise InputNotFound(f"clip store not found: {self.path}")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise InputError(f"{self.path} is not a readable HDF5 file ({e})") from None
        if self._f.attrs.get("format") != FORMAT:
            self._f.close()
            raise InputError(f"{self.path} is not a toonsync clip store (format attr != {FORMAT!r})")
        self.version = int(self._f.attrs["version"])

    def ids(self, split: str | None = None) -> list[str]:
        ids = sorted(self._f["clips"].keys())
        if split is None:
            return ids
        return [i for i in ids if self._f["clips"][i].attrs.get("split") == split]

    def __len__(self) -> int:
        return len(self._f["clips"])

    def __getitem__(self, clip_id: str) -> Clip:
        g = self._f["clips"][clip_id]
        arrays = {n: g[n][()] for n in _ARRAYS if n in g}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
        return Clip(clip_id, attrs=attrs, **arrays)

    def __iter__(self) -> Iterator[Clip]:
        for i in self.ids():
            yield self[i]

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> ClipStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
