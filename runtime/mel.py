"""Log-mel frontend shared by training and serving (one implementation, numpy only).

Contract (ARCHITECTURE.md): 16 kHz, n_fft 512, Hann window 400 (25 ms) zero-padded to 512,
hop 160 (10 ms), 80 mel bins (librosa slaney filters, precomputed and shipped in
``assets/mel_filters.npz``), log10(clamp(mel, 1e-10)) scaled like whisper.

Framing is *causal* so that streaming equals offline: mel frame ``i`` covers the 400
samples that end at sample ``(i + 1) * 160`` (the signal is left-padded with 240 zeros).
Whisper clamps at ``max - 8`` over the whole clip, which a stream cannot know; we clamp
at the fixed floor ``-8`` (1e-8 power) instead and then apply whisper's ``(x + 4) / 4``.
One 40 ms video frame = 4 mel frames.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .assets import asset

SAMPLE_RATE = 16_000
N_FFT = 512
WIN_LENGTH = 400
HOP = 160
N_MELS = 80
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
MELS_PER_FRAME = SAMPLES_PER_FRAME // HOP  # 4
LOG_FLOOR = -8.0
_CONTEXT = WIN_LENGTH - HOP  # 240 samples of left context


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """[80, 257] float32 mel filterbank, precomputed with librosa (see training/assets.py)."""
    with np.load(asset("mel_filters.npz")) as f:
        return f["mel_80"].astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(WIN_LENGTH, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)).astype(np.float32)  # periodic Hann


def _frames_to_logmel(frames: np.ndarray) -> np.ndarray:
    spec = np.fft.rfft(frames * _window(), n=N_FFT, axis=-1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = power @ mel_filters().T
    logmel = np.log10(np.maximum(mel, 1e-10))
    return ((np.maximum(logmel, LOG_FLOOR) + 4.0) / 4.0).astype(np.float32)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Mono float32 16 kHz audio [N] -> log-mel [N // 160, 80] (causal framing)."""
    a = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = a.size // HOP
    if n == 0:
        return np.zeros((0, N_MELS), np.float32)
    padded = np.concatenate([np.zeros(_CONTEXT, np.float32), a[: n * HOP]])
    idx = np.arange(WIN_LENGTH)[None, :] + HOP * np.arange(n)[:, None]
    return _frames_to_logmel(padded[idx])


class MelStream:
    """Incremental log-mel: ``accept(samples)`` returns the new mel frames; equals ``log_mel`` on the concatenation."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(_CONTEXT, np.float32)

    def accept(self, samples: np.ndarray) -> np.ndarray:
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32).reshape(-1)])
        n = (self._buf.size - _CONTEXT) // HOP
        if n <= 0:
            return np.zeros((0, N_MELS), np.float32)
        idx = np.arange(WIN_LENGTH)[None, :] + HOP * np.arange(n)[:, None]
        out = _frames_to_logmel(self._buf[idx])
        self._buf = self._buf[n * HOP :]
        return out
