"""Seeded noise embedding: head sway, speech-driven nods and blinks; emotions.

Everything here is deterministic given ``seed``: the same audio and seed give the same motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")  # CREMA-D order
EMOTION_NAMES = {
    "angry": "ANG",
    "disgust": "DIS",
    "disgusted": "DIS",
    "fear": "FEA",
    "fearful": "FEA",
    "happy": "HAP",
    "neutral": "NEU",
    "sad": "SAD",
}


def emotion_vector(name: str) -> np.ndarray:
    """'happy' / 'HAP' / ... -> one-hot [6] in CREMA-D order."""
    key = EMOTION_NAMES.get(name.lower(), name.upper())
    if key not in EMOTIONS:
        raise InputError(f"unknown emotion {name!r}; accepted: {', '.join(sorted(EMOTION_NAMES))}")
    v = np.zeros(len(EMOTIONS), np.float32)
    v[EMOTIONS.index(key)] = 1.0
    return v


@dataclass
class NoiseConfig:
    """Amplitudes and time constants of the procedural head sway, nods and blinks."""

    sway_rad: tuple[float, float, float] = (0.07, 0.04, 0.03)  # yaw, pitch, roll std of the slow sway
    sway_seconds: float = 1.6  # smoothing time constant of the sway
    nod_gain: float = 0.05  # pitch (rad) per unit of speech-energy rise
    blink_mean_s: float = 3.2
    blink_min_s: float = 1.2
    breath_rad: float = 0.012  # slow breathing bob (pitch), so an idle avatar never looks frozen
    breath_hz: float = 0.23
    fps: int = 25


def frame_energy(audio: np.ndarray, n_frames: int, samples_per_frame: int = 640) -> np.ndarray:
    """RMS energy per video frame in dB, floored at -60 dB -> [n_frames]."""
    a = np.asarray(audio, np.float32)[: n_frames * samples_per_frame]
    a = np.pad(a, (0, n_frames * samples_per_frame - a.size)).reshape(n_frames, samples_per_frame)
    return (20 * np.log10(np.maximum(np.sqrt((a**2).mean(1)), 1e-3))).astype(np.float32)


_BLINK = np.array([0.45, 1.0, 1.0, 0.6, 0.25], np.float32)  # 200 ms lid profile
_NOD_KERNEL = np.exp(-np.arange(8) / 3.0)
_NOD_KERNEL /= _NOD_KERNEL.sum()
NOISE_CHANNELS = ("sway_yaw", "sway_pitch", "sway_roll", "breath_sin", "breath_cos", "blink_trigger")
N_NOISE = len(NOISE_CHANNELS)


class NoiseEmbedding:
    """The seeded stochastic process itself, frame by frame: three slow unit-variance
    sway channels (white noise through two cascaded one-pole low-passes), the breathing phase (sin, cos)
    and a blink trigger (1 on the frame a blink starts; gamma-distributed gaps). ``step(n)`` -> [n, 6]
    in :data:`NOISE_CHANNELS` order; chunks concatenate to one long call; same seed => same features.
    It is the noise input of the motion decoder and of the procedural head (:class:`MotionNoise`)."""

    def __init__(self, seed: int = 0, cfg: NoiseConfig = NoiseConfig()):
        self.seed, self.cfg = seed, cfg
        self.reset()

    def reset(self) -> None:
        cfg = self.cfg
        self._rng = np.random.default_rng(self.seed)
        self._blink_rng = np.random.default_rng(self.seed + 7919)
        tau = cfg.sway_seconds * cfg.fps / 2
        self._a = float(np.exp(-1.0 / max(tau, 1.0)))
        a = self._a
        # std of white noise through two cascaded one-pole low-passes (from the impulse response)
        h1 = (1 - a) * a ** np.arange(int(40 * tau) + 1)
        self._norm = float(np.sqrt((np.convolve(h1, h1) ** 2).sum()))
        self._s1 = np.zeros(3)
        self._s2 = np.zeros(3)
        for _ in range(int(6 * tau)):  # warm the filters up to a stationary state
            self._sway()
        self._frame = 0
        self._next_blink = int(self._blink_rng.uniform(0.4, cfg.blink_mean_s) * cfg.fps)

    def _sway(self) -> np.ndarray:
        x = self._rng.standard_normal(3)
        self._s1 = self._a * self._s1 + (1 - self._a) * x
        self._s2 = self._a * self._s2 + (1 - self._a) * self._s1
        return self._s2 / self._norm

    def _trigger(self) -> float:
        cfg = self.cfg
        if self._frame != self._next_blink:
            return 0.0
        gap = cfg.blink_min_s + self._blink_rng.gamma(2.0, (cfg.blink_mean_s - cfg.blink_min_s) / 2.0)
        self._next_blink = self._frame + max(1, int(gap * cfg.fps))
        return 1.0

    def step(self, n: int) -> np.ndarray:
        out = np.zeros((n, N_NOISE), np.float32)
        w = 2 * np.pi * self.cfg.breath_hz / self.cfg.fps
        for i in range(n):
            out[i, :3] = self._sway()
            out[i, 3:5] = np.sin(w * self._frame), np.cos(w * self._frame)
            out[i, 5] = self._trigger()
            self._frame += 1
        return out


def arousal_gain(arousal: float | np.ndarray) -> np.ndarray:
    """Sway amplitude factor for an arousal in 0..1 (P(ANG) + P(HAP) + P(FEA)): 0.7 calm .. 1.3 excited;
    1.0 at 0.5 (the amplitude ``NoiseConfig.sway_rad`` describes)."""
    return 0.7 + 0.6 * np.clip(np.asarray(arousal, np.float32), 0.0, 1.0)


class MotionNoise:
    """Procedural motion from the noise embedding: head sway (scaled by arousal), breathing, speech-driven
    nods and blinks, frame by frame. It is the runtime's head when no motion decoder ships, and the
    teacher whose pose/blink the decoder learns (no head-motion video exists offline).

    ``step(energy, arousal)`` takes the speech energy (0..1) and arousal (0..1, default 0.5) of the next
    frames and returns their (pose [n, 3], blink [n]); ``features`` holds the noise embedding of the
    frames of the last call. Generating in chunks gives exactly the frames of one long call, so
    streaming equals offline. Same seed => identical motion.
    """

    def __init__(self, seed: int = 0, cfg: NoiseConfig = NoiseConfig()):
        self.seed, self.cfg = seed, cfg
        self.reset()

    def reset(self) -> None:
        self._noise = NoiseEmbedding(self.seed, self.cfg)
        self._rises: list[float] = [0.0] * (len(_NOD_KERNEL) - 1)
        self._last_energy: float | None = None
        self._blink_tail: list[float] = []
        self.features = np.zeros((0, N_NOISE), np.float32)

    def step(self, energy: np.ndarray, arousal: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        e = np.asarray(energy, np.float32).reshape(-1)
        gain = np.broadcast_to(arousal_gain(0.5 if arousal is None else arousal), e.shape)
        feats = self._noise.step(e.size)
        self.features = feats
        pose = np.zeros((e.size, 3), np.float32)
        blink = np.zeros(e.size, np.float32)
        sway = np.asarray(cfg.sway_rad, np.float64)
        for i, en in enumerate(e):
            prev = float(en) if self._last_energy is None else self._last_energy
            self._rises.append(max(float(en) - prev, 0.0))
            self._last_energy = float(en)
            nod = float(np.dot(_NOD_KERNEL, self._rises[::-1][: len(_NOD_KERNEL)]))
            self._rises.pop(0)
            p = feats[i, :3].astype(np.float64) * sway * float(gain[i])
            p[1] += cfg.nod_gain * nod + cfg.breath_rad * float(feats[i, 3])
            pose[i] = np.clip(p, -0.3, 0.3)
            if feats[i, 5] > 0:
                self._blink_tail = [max(p_, q) for p_, q in zip(_BLINK, self._blink_tail + [0.0] * len(_BLINK))]
            blink[i] = self._blink_tail.pop(0) if self._blink_tail else 0.0
        return pose, blink


def speech_energy(audio: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-frame speech energy mapped to 0..1 (-60 dB -> 0, 0 dB -> 1): the nod driver."""
    return np.clip((frame_energy(audio, n_frames) + 60.0) / 60.0, 0.0, 1.0)


def decoder_inputs(n: int, speech: np.ndarray, mouth: np.ndarray) -> list[dict[str, np.ndarray]]:
    """``n`` one-frame feeds of the motion decoder from a clip's speech embedding and the audio model's mouth
    ([n, S], [n, 3]): neutral emotion and the noise embedding of seed 0 (what the runtime shows by default)."""
    emo = emotion_vector("neutral").astype(np.float32)
    noise = NoiseEmbedding(0).step(n)
    return [
        {
            "speech": speech[i][None, None].astype(np.float32),
            "speech_mouth": mouth[i][None, None].astype(np.float32),
            "emotion": emo[None, None],
            "noise": noise[i][None, None],
        }
        for i in range(n)
    ]


POSE_LIMIT = np.array([0.21, 0.14, 0.12], np.float32)  # rad: yaw 12°, pitch 8°, roll 7° at most, softly


def limit_pose(pose: np.ndarray) -> np.ndarray:
    """Head pose [..., 3] (yaw, pitch, roll) kept inside ``POSE_LIMIT`` smoothly (``L * tanh(x / L)``): small
    motion passes unchanged, a long turn levels off instead of stopping at a hard edge."""
    return (POSE_LIMIT * np.tanh(np.asarray(pose, np.float32) / POSE_LIMIT)).astype(np.float32)


class HeadMotion:
    """How much the head moves, frame by frame, from the speech activity (0 = silence .. 1 = speech: the
    silence gate's gain), smoothed over ``EASE_S``: the model's pose is shown ``SPEECH`` times over (per axis)
    while speaking and ``IDLE`` times in pauses (breathing and a little sway, nearly still).

    On top of it, what speakers do at phrase boundaries: each phrase (speech after at least ``PAUSE_S`` of
    silence) turns, nods and tilts the head toward a new seeded offset (std ``SHIFT``: yaw, pitch, roll), eased
    in over about ``SETTLE_S``; a long phrase re-targets every 1.2-2.5 s, and a slow seeded turn (``DRIFT`` rad
    std, about 0.15 Hz) runs while speaking. In pauses no new offset is drawn, so the head stays where the
    phrase left it. ``step(activity)`` returns (scale [n, 3], offset [n, 3]); one frame at a time, so a stream gives
    an offline render's values for any chunking."""

    SPEECH = np.array([2.6, 3.6, 2.6], np.float32)  # yaw, pitch, roll: nods read larger than turns
    IDLE = 0.5
    DRIFT = 0.035  # rad (2 degrees)
    SHIFT = np.array([0.05, 0.04, 0.025], np.float32)  # rad std of a phrase offset (2.9, 2.3, 1.4 degrees)
    PAUSE_S, SETTLE_S = 0.3, 0.25
    POLE = float(np.exp(-2 * np.pi * 0.15 / 25))  # AR(1) low-pass of white noise: ~0.15 Hz at 25 fps
    EASE_S = 0.4

    def __init__(self, seed: int = 0):
        self._rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x9A3D])
        self._v, self._active = 0.0, 0.0
        self._ease = float(np.exp(-1 / (self.EASE_S * 25)))
        self._settle = float(np.exp(-1 / (self.SETTLE_S * 25 / 2)))  # two stages: about SETTLE_S in all
        self._quiet, self._left = int(self.PAUSE_S * 25), 0  # frames of silence so far; of the current offset
        self._target = np.zeros(3)
        self._stage = np.zeros((2, 3))

    def step(self, activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(activity)
        scale, offset = np.empty((n, 3), np.float32), np.empty((n, 3), np.float32)
        kick = np.sqrt(1.0 - self.POLE**2)
        noise = self._rng.standard_normal((n, 5))  # the same values as n single draws: chunking does not matter
        for i, a in enumerate(np.asarray(activity, np.float64)):
            z = noise[i]
            self._v = self.POLE * self._v + kick * float(z[0])
            self._active = self._ease * self._active + (1.0 - self._ease) * min(max(a, 0.0), 1.0)
            speaking = a > 0.5
            onset = speaking and self._quiet >= self.PAUSE_S * 25
            self._quiet = 0 if speaking else self._quiet + 1
            self._left -= 1
            if onset or (speaking and self._left <= 0):  # a new phrase, or a long one moving on
                self._target = np.clip(z[1:4], -2.0, 2.0) * self.SHIFT
                self._left = int(25 * (1.2 + 1.3 * min(abs(float(z[4])), 1.0)))
            self._stage[0] += (1.0 - self._settle) * (self._target - self._stage[0])
            self._stage[1] += (1.0 - self._settle) * (self._stage[0] - self._stage[1])
            scale[i] = self.IDLE + (self.SPEECH - self.IDLE) * self._active
            offset[i] = self._stage[1]
            offset[i, 0] += self.DRIFT * self._active * self._v
        return scale, offset
