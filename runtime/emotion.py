"""Emotion, runtime side: a prosody *heuristic* and user schedules (numpy only, never torch).

No emotional speech corpus exists on the build machine, so toonsync ships **no trained emotion
weights**. The default estimator, ``ProsodyEmotion``, is an honest hand-set heuristic, not a
classifier: it measures prosody over a sliding causal window and maps it to a soft 6-class
vector in CREMA-D order (``runtime.motion.EMOTIONS``):

* per 40 ms frame: RMS energy (dB), 10 ms sub-frame energies, autocorrelation f0 and voicing;
* over the last ``window_s`` seconds: loudness of the active frames, energy spread, voiced fraction,
  median pitch and pitch range (semitones), and a speaking-rate proxy (syllable-like peaks per
  second of the energy envelope, found with a hysteresis peak picker);
* **arousal** rises with loudness, pitch level/range and rate; **valence** is a *weak* proxy
  (wide, melodic pitch -> positive; bursty energy, low flat pitch -> negative) — prosody alone
  hardly separates angry from happy;
* both are multiplied by a speech gate (syllable rate and voicing), so silence and stationary
  sounds (tones, hum, steady noise, DC) sit at the origin = neutral; then smoothed with a ~1 s
  time constant (emotions do not flip per frame) and turned into probabilities by a softmax over
  distances to class prototypes in the (arousal, valence) plane.

Absolute loudness and pitch are recording- and speaker-dependent; the reference values were set on
calm flite TTS at about -21 dBFS, so expect a bias on other material. A learned model
(``training/models/emotion.py``, exported as ``emotion.fp32.onnx``) can replace this once trained on
CREMA-D. ``emotion_schedule`` turns a user spec ("happy", "0:neutral,2.5:happy,6:sad") into per-frame
vectors with short cross-fades.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .audio_io import to_mono_float
from .errors import InputError
from .mel import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .motion import EMOTION_NAMES, EMOTIONS, emotion_vector

log = logging.getLogger(__name__)

NEU = EMOTIONS.index("NEU")
AROUSAL_CLASSES = tuple(EMOTIONS.index(k) for k in ("ANG", "HAP", "FEA"))
SUB = 4  # 10 ms sub-frames per 40 ms frame
_SILENCE_DB = -60.0

#: (arousal, valence) prototype of each class, CREMA-D order. NEU sits at the origin.
PROTOTYPES = np.array(
    [
        [1.0, -0.8],  # ANG: aroused, negative
        [-0.4, -0.9],  # DIS: slightly low arousal, negative
        [1.2, 0.0],  # FEA: aroused, valence unclear
        [0.9, 0.8],  # HAP: aroused, positive
        [0.0, 0.0],  # NEU
        [-0.9, -0.5],  # SAD: low arousal, negative
    ],
    np.float64,
)


@dataclass(frozen=True)
class ProsodyConfig:
    """Knobs of the prosody heuristic; the *_ref / *_scale pairs turn features into z-scores."""

    window_s: float = 2.0  # causal analysis window
    smooth_s: float = 0.8  # EMA time constant of (arousal, valence)
    floor_db: float = -50.0  # frames quieter than this are pauses
    active_range_db: float = 30.0  # ... and so are frames this far below the window's loudest
    voiced_r: float = 0.55  # normalised autocorrelation needed to call a frame voiced
    f0_min: float = 70.0
    f0_max: float = 400.0
    peak_db: float = 6.0  # rise and fall an envelope peak needs to count as a syllable
    rate_gate: tuple[float, float] = (1.0, 2.5)  # syllables/s: gate 0 below, 1 above
    loud_ref_db: float = -24.0
    loud_scale: float = 6.0
    rate_ref: float = 3.5
    rate_scale: float = 1.0
    pitch_ref_st: float = 5.0  # semitones re 100 Hz (~133 Hz, between typical male and female voices)
    pitch_scale: float = 5.0
    range_ref_st: float = 4.0
    range_scale: float = 3.0
    spread_ref_db: float = 11.0
    spread_scale: float = 4.0
    temperature: float = 0.2  # softmax over -distance^2 / temperature


def _frame_features(frames: np.ndarray, cfg: ProsodyConfig) -> tuple[np.ndarray, ...]:
    """frames [n, 640] -> energy dB [n], sub-frame power dB [n, 4], f0 semitones (nan = unvoiced) [n]."""
    x = frames.astype(np.float64)
    x = x - x.mean(axis=1, keepdims=True)  # DC never counts as sound
    n, N = x.shape
    power = (x**2).mean(axis=1)
    e_db = np.maximum(10 * np.log10(np.maximum(power, 1e-12)), _SILENCE_DB)
    sub_pow = (x.reshape(n, SUB, N // SUB) ** 2).mean(axis=2)
    lo, hi = int(SAMPLE_RATE / cfg.f0_max), int(np.ceil(SAMPLE_RATE / cfg.f0_min))
    nfft = 1 << int(np.ceil(np.log2(N + hi + 2)))  # no circular wrap for the lags used (640 + 231 -> 1024)
    spec = np.fft.rfft(x, n=nfft, axis=1)
    R = np.fft.irfft(spec.real**2 + spec.imag**2, n=nfft, axis=1)[:, : hi + 2]
    cs = np.cumsum(x**2, axis=1)
    k = np.arange(hi + 2)
    head = cs[:, N - 1 - k]  # energy of x[0 : N-k]
    tail = cs[:, -1:] - np.where(k > 0, cs[:, np.maximum(k - 1, 0)], 0.0)  # energy of x[k : N]
    r = R / np.sqrt(head * tail + 1e-12)
    seg = r[:, lo : hi + 1]
    rmax = seg.max(axis=1)
    local = (r[:, lo : hi + 1] >= r[:, lo - 1 : hi]) & (r[:, lo : hi + 1] >= r[:, lo + 1 : hi + 2])
    cand = local & (seg >= 0.9 * rmax[:, None])  # first strong peak: avoids octave-down jumps
    lag = lo + np.where(cand.any(axis=1), cand.argmax(axis=1), seg.argmax(axis=1))
    voiced = (rmax >= cfg.voiced_r) & (e_db > cfg.floor_db)
    f0_st = np.where(voiced, 12 * np.log2(SAMPLE_RATE / lag / 100.0), np.nan)
    return e_db, sub_pow, f0_st


def _z(value: float, ref: float, scale: float) -> float:
    return min(max((float(value) - ref) / scale, -2.0), 2.0)


def _lerp_quantile(s: np.ndarray, q: float) -> float:
    """``np.percentile(s, q)`` (linear method, same rounding) of an already sorted array -- one sort serves
    several quantiles (this runs per frame per stream, so it matters)."""
    pos = (s.size - 1) * q / 100.0
    lo = int(pos)
    t = pos - lo
    a = float(s[lo])
    b = float(s[min(lo + 1, s.size - 1)])
    return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t


def prosody_probs(arousal: np.ndarray, valence: np.ndarray, temperature: float = 0.2) -> np.ndarray:
    """(arousal, valence) [T] -> soft 6-class vectors [T, 6] (softmax over -distance^2 to the prototypes)."""
    av = np.stack([np.asarray(arousal, np.float64), np.asarray(valence, np.float64)], -1).reshape(-1, 2)
    d2 = ((av[:, None, :] - PROTOTYPES[None]) ** 2).sum(-1)
    logit = -d2 / temperature
    e = np.exp(logit - logit.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class ProsodyEmotion:
    """Streaming prosody heuristic (see the module docstring): 16 kHz PCM chunks in, one [6] row per 40 ms.

    ``update(chunk)`` returns a row for every frame the chunk completes (any chunking gives the
    rows of one whole-clip call), ``flush()`` pads the last partial frame with silence, ``reset()``
    starts over. ``arousal`` / ``valence`` hold the smoothed values of the last frame.
    """

    def __init__(self, cfg: ProsodyConfig = ProsodyConfig()):
        self.cfg = cfg
        self._w = max(1, round(cfg.window_s * FPS))
        self._alpha = 1.0 - float(np.exp(-1.0 / (cfg.smooth_s * FPS)))
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)
        self._e: deque[float] = deque(maxlen=self._w)
        self._f0: deque[float] = deque(maxlen=self._w)
        self._peaks: deque[int] = deque()
        self._prev_sub = [0.0, 0.0]  # the last two sub-frame powers (envelope smoothing)
        self._seek_peak, self._ext, self._valley = True, -np.inf, _SILENCE_DB
        self._frame = 0
        self.arousal, self.valence = 0.0, 0.0

    # -- envelope peaks (speaking-rate proxy) -----------------------------------------------------
    def _envelope(self, sub_pow: np.ndarray) -> None:
        p = self.cfg.peak_db
        for s in sub_pow:
            env = max(10 * math.log10(max((s + self._prev_sub[0] + self._prev_sub[1]) / 3.0, 1e-12)), _SILENCE_DB)
            self._prev_sub = [float(s), self._prev_sub[0]]
            if self._seek_peak:
                self._ext = max(self._ext, env)
                if self._ext - self._valley >= p and env <= self._ext - p:
                    if self._ext > self.cfg.floor_db:
                        self._peaks.append(self._frame)
                    self._seek_peak, self._ext = False, env
            else:
                self._ext = min(self._ext, env)
                if env >= self._ext + p:
                    self._seek_peak, self._valley, self._ext = True, self._ext, env
        while self._peaks and self._peaks[0] <= self._frame - self._w:
            self._peaks.popleft()

    # -- window statistics -> raw (arousal, valence) ---------------------------------------------
    def _raw(self) -> tuple[float, float]:
        cfg = self.cfg
        e = np.fromiter(self._e, np.float64)
        top = e.max()
        active = e > max(cfg.floor_db, top - cfg.active_range_db)
        if not active.any():
            return 0.0, 0.0
        f0 = np.fromiter(self._f0, np.float64)
        voiced = np.isfinite(f0) & active
        rate = len(self._peaks) / min(max(len(e) / FPS, 1.0), cfg.window_s)  # young streams: shorter window
        g0, g1 = cfg.rate_gate
        n_active = int(active.sum())
        gate = min(max((rate - g0) / (g1 - g0), 0.0), 1.0) * min(max(int(voiced.sum()) / n_active / 0.15, 0.0), 1.0)
        if gate == 0.0:
            return 0.0, 0.0
        z_loud = _z(e[active].mean(), cfg.loud_ref_db, cfg.loud_scale)
        z_rate = _z(rate, cfg.rate_ref, cfg.rate_scale)
        z_spread = _z(np.maximum(e, top - 40.0).std(), cfg.spread_ref_db, cfg.spread_scale)
        st = np.sort(f0[voiced])
        n = st.size
        median = (float(st[(n - 1) // 2]) + float(st[n // 2])) / 2.0 if n else 0.0
        z_pitch = _z(median, cfg.pitch_ref_st, cfg.pitch_scale) if n >= 3 else 0.0
        z_range = (
            _z(_lerp_quantile(st, 90) - _lerp_quantile(st, 10), cfg.range_ref_st, cfg.range_scale) if n >= 5 else 0.0
        )
        arousal = 0.35 * z_loud + 0.3 * z_rate + 0.25 * z_pitch + 0.15 * z_range + 0.05 * z_spread
        valence = 0.5 * z_range + 0.2 * z_pitch - 0.3 * z_spread - 0.2 * max(z_loud, 0.0)
        return gate * arousal, gate * valence

    def _process(self, frames: np.ndarray) -> np.ndarray:
        e_db, sub_pow, f0 = _frame_features(frames, self.cfg)
        av = np.zeros((frames.shape[0], 2))
        for i in range(frames.shape[0]):
            self._e.append(float(e_db[i]))
            self._f0.append(float(f0[i]))
            self._envelope(sub_pow[i])
            a, v = self._raw()
            self.arousal += self._alpha * (a - self.arousal)
            self.valence += self._alpha * (v - self.valence)
            av[i] = self.arousal, self.valence
            self._frame += 1
        return prosody_probs(av[:, 0], av[:, 1], self.cfg.temperature)

    def update(self, pcm16k_chunk: np.ndarray) -> np.ndarray:
        """Mono 16 kHz samples (float in [-1, 1] or int16) -> [n_completed_frames, 6]."""
        buf = np.concatenate([self._pending, to_mono_float(np.asarray(pcm16k_chunk)).reshape(-1)])
        n = buf.size // SAMPLES_PER_FRAME
        self._pending = buf[n * SAMPLES_PER_FRAME :]
        if n == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        return self._process(buf[: n * SAMPLES_PER_FRAME].reshape(n, SAMPLES_PER_FRAME))

    def flush(self) -> np.ndarray:
        """End of input: the last partial frame padded with silence -> [0 or 1, 6]."""
        if self._pending.size == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        return self.update(np.zeros(SAMPLES_PER_FRAME - self._pending.size, np.float32))


def estimate_emotion(audio16k: np.ndarray, cfg: ProsodyConfig = ProsodyConfig()) -> np.ndarray:
    """Whole clip (mono 16 kHz) -> [ceil(N / 640), 6]; identical to streaming it through ``ProsodyEmotion``."""
    est = ProsodyEmotion(cfg)
    return np.concatenate([est.update(audio16k), est.flush()])


def arousal_mass(probs: np.ndarray) -> np.ndarray:
    """P(ANG) + P(HAP) + P(FEA) per row: the high-arousal classes."""
    return np.asarray(probs)[..., list(AROUSAL_CLASSES)].sum(-1)


def _accepted() -> str:
    return (
        f"accepted: one emotion name, or 'seconds:name' items separated by commas with increasing times "
        f"(e.g. '0:neutral,2.5:happy,6:sad'); names: {', '.join(sorted(EMOTION_NAMES))} "
        f"or codes {', '.join(EMOTIONS)}"
    )


def emotion_schedule(spec: str, n_frames: int, fps: int = FPS, fade_s: float = 0.3) -> np.ndarray:
    """User schedule -> [n_frames, 6]: "happy", or "0:neutral,2.5:happy,6:sad" (seconds).

    Before the first time the first emotion holds; each change is a linear cross-fade of ``fade_s``
    centred on its time. Bad specs raise ``InputError`` naming the accepted emotion names.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"empty emotion schedule; {_accepted()}")
    items = [s.strip() for s in spec.split(",")]
    keys: list[tuple[float, np.ndarray]] = []
    for item in items:
        t_str, sep, name = item.rpartition(":")
        if not sep and len(items) > 1:
            raise InputError(f"emotion schedule item {item!r} has no time; {_accepted()}")
        try:
            t = float(t_str) if sep else 0.0
        except ValueError:
            raise InputError(f"bad time {t_str!r} in emotion schedule {spec!r}; {_accepted()}") from None
        if not np.isfinite(t) or t < 0 or (keys and t <= keys[-1][0]):
            raise InputError(f"times in emotion schedule {spec!r} must be >= 0 and increasing; {_accepted()}")
        try:
            keys.append((t, emotion_vector(name.strip())))
        except InputError:
            raise InputError(f"unknown emotion {name.strip()!r} in schedule {spec!r}; {_accepted()}") from None
    t = np.arange(int(n_frames)) / float(fps)
    out = np.tile(keys[0][1], (t.size, 1)).astype(np.float64)
    for tk, vec in keys[1:]:
        w = np.clip((t - tk) / max(fade_s, 1e-6) + 0.5, 0.0, 1.0)[:, None]
        out = (1 - w) * out + w * vec
    return out.astype(np.float32)
