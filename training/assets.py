"""Regenerate the runtime's precomputed assets (mel filters) with librosa.

python -m training.assets
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from toonsync.runtime import mel

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent.parent / "runtime" / "assets"


def librosa_mel_filters() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=mel.SAMPLE_RATE, n_fft=mel.N_FFT, n_mels=mel.N_MELS).astype(np.float32)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    out = ASSETS / "mel_filters.npz"
    np.savez_compressed(out, mel_80=librosa_mel_filters())
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
