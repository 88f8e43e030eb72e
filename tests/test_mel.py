"""Log-mel frontend: shipped filters equal librosa's, values match an independent librosa computation,
streaming equals offline."""

from __future__ import annotations

import numpy as np
import pytest

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.mel import HOP, MelStream, log_mel, mel_filters


def test_shipped_filters_equal_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=80)
    np.testing.assert_allclose(mel_filters(), ref, rtol=1e-5, atol=1e-7)


def test_log_mel_matches_librosa_stft(speech_wav):
    librosa = pytest.importorskip("librosa")
    a = load_audio(speech_wav)
    ours = log_mel(a)
    # librosa centres the 400-sample window inside each 512-sample frame (offset 56)
    padded = np.concatenate([np.zeros(240 + 56, np.float32), a, np.zeros(56, np.float32)])
    spec = np.abs(librosa.stft(padded, n_fft=512, hop_length=HOP, win_length=400, window="hann", center=False)) ** 2
    mel = librosa.feature.melspectrogram(S=spec, sr=16000, n_mels=80)
    ref = ((np.maximum(np.log10(np.maximum(mel, 1e-10)), -8.0) + 4.0) / 4.0).T
    assert len(ours) == a.size // HOP and len(ref) >= len(ours)
    np.testing.assert_allclose(ours, ref[: len(ours)], atol=2e-4)


def test_stream_equals_offline_for_any_chunking(speech_wav):
    a = load_audio(speech_wav)
    rng = np.random.default_rng(0)
    s, outs, i = MelStream(), [], 0
    while i < a.size:
        k = int(rng.integers(1, 2000))
        outs.append(s.accept(a[i : i + k]))
        i += k
    np.testing.assert_allclose(np.concatenate(outs), log_mel(a), atol=1e-6)


def test_silence_is_the_floor():
    m = log_mel(np.zeros(1600, np.float32))
    assert m.shape == (10, 80) and np.allclose(m, -1.0)
