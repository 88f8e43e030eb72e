"""Calibration inputs from real speech, with a manifest of exactly what was used.

The default set is ``calibration/data/*.wav`` (45 s of flite speech over four voices, committed so a
re-run is deterministic); ``--corpus test.h5`` uses held-out corpus clips instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.mel import MELS_PER_FRAME, N_MELS, log_mel
from toonsync.runtime.model_card import sha256_file

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class CalibrationSet:
    """Log-mel sequences of real speech plus the manifest (files, sha256, counts)."""

    mels: list[np.ndarray]
    manifest: dict = field(default_factory=dict)

    @classmethod
    def from_wavs(cls, files: list[Path] | None = None) -> CalibrationSet:
        files = sorted(files or DATA_DIR.glob("*.wav"))
        if not files:
            raise FileNotFoundError(f"no calibration WAVs in {DATA_DIR}")
        mels, entries = [], []
        for f in files:
            a = load_audio(f)
            m = log_mel(a)
            mels.append(m[: m.shape[0] // MELS_PER_FRAME * MELS_PER_FRAME])
            entries.append({"file": f.name, "sha256": sha256_file(f), "seconds": round(a.size / 16000, 3)})
        return cls(
            mels,
            {
                "kind": "wav",
                "dir": str(files[0].parent.name),
                "files": entries,
                "count": len(entries),
                "seconds": round(sum(e["seconds"] for e in entries), 2),
            },
        )

    @classmethod
    def from_corpus(cls, path: Path, limit: int = 32) -> CalibrationSet:
        from toonsync.training.dataset import ClipStore

        mels, ids = [], []
        with ClipStore(path) as s:
            for cid in s.ids("test")[:limit]:
                m = s[cid].mel
                mels.append(m[: m.shape[0] // MELS_PER_FRAME * MELS_PER_FRAME])
                ids.append(cid)
        return cls(
            mels, {"kind": "corpus", "file": str(path), "sha256": sha256_file(path), "clips": ids, "count": len(ids)}
        )


class Audio2MotionReader(CalibrationDataReader):
    """Feeds (mel, zero state) batches of ``chunk_frames`` video frames to onnxruntime's calibrator."""

    def __init__(self, cal: CalibrationSet, ctx: int, hidden: int, chunk_frames: int = 50, max_batches: int = 64):
        items = []
        for m in cal.mels:
            step = chunk_frames * MELS_PER_FRAME
            for i in range(0, m.shape[0] - step + 1, step):
                items.append(
                    {
                        "mel": m[None, i : i + step],
                        "mel_ctx": np.zeros((1, N_MELS, ctx), np.float32),
                        "h": np.zeros((1, 1, hidden), np.float32),
                        "c": np.zeros((1, 1, hidden), np.float32),
                    }
                )
        self.count = min(len(items), max_batches)
        self._it = iter(items[: self.count])

    def get_next(self):
        return next(self._it, None)


def write_manifest(path: Path, manifest: dict) -> None:
    from toonsync.runtime.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2) + "\n")
