"""Recording conditions that TTS never has, applied to training speech on the fly: rooms, microphones, codecs
and background noise, so that the speech model hears what real recordings sound like.

``degrade(audio, rng)`` draws one recording chain per call (each stage with its own probability):

- **room**: a synthetic room impulse response. The tail is Gaussian noise under an exponential decay with a
  reverberation time RT60 of 0.1-0.6 s, darkened over time (air and wall absorption); a handful of sparse early
  reflections in the first 25 ms; the direct path set to a direct-to-reverberant ratio of 0..15 dB.
- **microphone**: a high-pass (60-300 Hz, small capsules and voice filters), two peaking resonances of +-6 dB
  between 300 Hz and 6 kHz, a gentle low-pass (4-7.9 kHz), sometimes a proximity-effect bass boost.
- **codec / channel**: 8 kHz telephone band, 8-bit mu-law, MP3 at 24-64 kb/s (FFmpeg's LAME through PyAV; the
  LibriVox kind of recording), or soft clipping of an overdriven input.
- **noise**: white, pink or brown noise, or a murmur of other speech, at 10-35 dB SNR measured over the loud
  part of the speech (what an SNR means for a recording with pauses).

The level is then set to a random peak of -30..-1 dBFS. Everything is numpy + scipy + PyAV: the mel that the
model sees is computed afterwards by the runtime's own ``log_mel``.
"""

from __future__ import annotations

import io

import numpy as np

SAMPLE_RATE = 16_000

P_ROOM, P_MIC, P_CODEC, P_NOISE = 0.5, 0.7, 0.4, 0.5


def room_impulse(rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic room impulse response (module doc), unit energy."""
    rt60 = float(rng.uniform(0.1, 0.6))
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    # absorption darkens the tail: a one-pole low-pass whose cut-off falls with time, over 8 blocks
    from scipy import signal

    blocks, zi = [], np.zeros(1)
    for k, block in enumerate(np.array_split(tail, 8)):
        a = float(np.exp(-2 * np.pi * (6000 / (1 + k)) / sr))
        y, zi = signal.lfilter([1 - a], [1, -a], block, zi=zi)
        blocks.append(y)
    tail = np.concatenate(blocks)
    onset = int(rng.uniform(0.002, 0.006) * sr)  # the first reflection arrives a few ms after the direct path
    tail[:onset] = 0.0
    for _ in range(int(rng.integers(3, 8))):  # sparse early reflections
        tail[int(rng.uniform(0.002, 0.025) * sr) % n] += float(rng.uniform(-0.6, 0.6)) * np.abs(tail).max()
    drr_db = float(rng.uniform(0.0, 15.0))
    ir = tail / (np.sqrt(np.sum(tail**2)) + 1e-12) * 10 ** (-drr_db / 20)
    ir[0] = 1.0
    return (ir / np.sqrt(np.sum(ir**2))).astype(np.float32)


def _peaking(f0: float, gain_db: float, q: float, sr: int) -> np.ndarray:
    """One peaking-EQ biquad (RBJ cookbook) as a second-order section [1, 6]."""
    a_ = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / sr
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * a_, -2 * np.cos(w), 1 - alpha * a_])
    a = np.array([1 + alpha / a_, -2 * np.cos(w), 1 - alpha / a_])
    return np.concatenate([b / a[0], a / a[0]])[None]


def microphone(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A random microphone and preamp colouring (module doc)."""
    from scipy import signal

    sos = [signal.butter(2, float(rng.uniform(60, 300)), "highpass", fs=sr, output="sos")]
    for _ in range(2):
        sos.append(_peaking(float(np.exp(rng.uniform(np.log(300), np.log(6000)))), rng.uniform(-6, 6), 1.2, sr))
    if rng.random() < 0.3:  # proximity effect: a close directional microphone boosts the bass
        sos.append(_peaking(float(rng.uniform(100, 250)), rng.uniform(3, 8), 0.7, sr))
    sos.append(signal.butter(2, float(rng.uniform(4000, 7900)), "lowpass", fs=sr, output="sos"))
    return signal.sosfilt(np.concatenate(sos), audio).astype(np.float32)


def mp3_roundtrip(audio: np.ndarray, bitrate: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Encode ``audio`` to MP3 at ``bitrate`` b/s and decode it back (same length, aligned by the codec's delay)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        st = out.add_stream("libmp3lame", rate=sr, layout="mono")
        st.bit_rate = bitrate
        frame = av.AudioFrame.from_ndarray(np.clip(audio, -1, 1)[None].astype(np.float32), format="flt", layout="mono")
        frame.rate = sr
        for pkt in st.encode(frame):
            out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    buf.seek(0)
    with av.open(buf) as inp:
        dec = np.concatenate([f.to_ndarray().reshape(-1) for f in inp.decode(audio=0)]).astype(np.float32)
    return np.pad(dec, (0, max(0, audio.size - dec.size)))[: audio.size]


def through_8k(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` down-sampled to 8 kHz and back (a telephone's 4 kHz band), same length."""
    import soxr

    a = soxr.resample(soxr.resample(audio, sr, 8000), 8000, sr)[: audio.size]
    return np.pad(a, (0, audio.size - a.size)).astype(np.float32)


def channel(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """One codec or channel defect (module doc)."""
    kind = int(rng.integers(4))
    if kind == 0:  # telephone: 300-3400 Hz at 8 kHz
        from scipy import signal

        hp = signal.butter(2, 300, "highpass", fs=sr, output="sos")
        return signal.sosfilt(hp, through_8k(audio, sr)).astype(np.float32)
    if kind == 1:  # 8-bit mu-law
        mu = 255.0
        peak = float(np.abs(audio).max()) + 1e-9
        y = np.sign(audio) * np.log1p(mu * np.abs(audio / peak)) / np.log1p(mu)
        y = np.round(y * 127) / 127
        return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu * peak).astype(np.float32)
    if kind == 2:
        return mp3_roundtrip(audio, int(rng.choice([24000, 32000, 48000, 64000])), sr)
    drive = float(rng.uniform(2.0, 6.0)) / (float(np.abs(audio).max()) + 1e-9)  # an overdriven input
    return (np.tanh(audio * drive) / np.tanh(drive * np.abs(audio).max() + 1e-9) * np.abs(audio).max()).astype(
        np.float32
    )


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with a 1 / f^exponent power spectrum (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def active_power(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Mean power of the loudest half of 20 ms blocks: the speech level, pauses left out."""
    b = sr // 50
    n = audio.size // b
    if n == 0:
        return float(np.mean(audio**2)) + 1e-12
    p = np.sort(np.mean(audio[: n * b].reshape(n, b) ** 2, axis=1))
    return float(p[n // 2 :].mean()) + 1e-12


def add_noise(
    audio: np.ndarray, rng: np.random.Generator, snr_db: float, murmur: np.ndarray | None = None
) -> np.ndarray:
    """``audio`` plus noise at ``snr_db`` over its active speech level; ``murmur``: speech to use as the noise."""
    if murmur is not None and murmur.size >= audio.size:
        start = int(rng.integers(0, murmur.size - audio.size + 1))
        noise = murmur[start : start + audio.size].astype(np.float32)
        noise = noise / (np.sqrt(np.mean(noise**2)) + 1e-9)
    else:
        noise = coloured_noise(audio.size, rng, float(rng.choice([0.0, 1.0, 2.0])))
    return (audio + noise * np.sqrt(active_power(audio) / 10 ** (snr_db / 10))).astype(np.float32)


def degrade(
    audio: np.ndarray, rng: np.random.Generator, murmur: np.ndarray | None = None, sr: int = SAMPLE_RATE
) -> np.ndarray:
    """One random recording chain (module doc) over mono float32 ``audio``; same length, peak -30..-1 dBFS.
    Digital silence before the speech stays near-silent only if no noise stage is drawn (as in a real room)."""
    from scipy import signal

    a = np.asarray(audio, np.float32)
    if not np.any(a):
        return a.copy()
    if rng.random() < P_ROOM:
        a = signal.fftconvolve(a, room_impulse(rng, sr))[: a.size].astype(np.float32)
    if rng.random() < P_MIC:
        a = microphone(a, rng, sr)
    if rng.random() < P_CODEC:
        a = channel(a, rng, sr)
    if rng.random() < P_NOISE:
        a = add_noise(a, rng, float(rng.uniform(10, 35)), murmur if rng.random() < 0.3 else None)
    peak = float(np.abs(a).max()) + 1e-9
    return np.clip(a / peak * 10 ** (rng.uniform(-30, -1) / 20), -1, 1).astype(np.float32)
