"""``Stream``: stateful, chunked audio -> avatar frames (one per conversation, over shared models).

Audio chunks of any length and rate go in (``accept_audio``); one ``Frame`` per 40 ms comes out
(``ready``/``step``) once the model's look-ahead (2 frames = 80 ms) is filled. All state — the
mel frontend's tail, the model's conv context and LSTM h/c, the noise process — is carried here,
so any chunking gives exactly the frames of one whole-clip run (offline ``render`` uses this class).
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from .audio_io import StreamResampler
from .backend import LoadedModel, load_model
from .errors import InputError
from .mel import LOG_FLOOR, MELS_PER_FRAME, N_MELS, SAMPLE_RATE, SAMPLES_PER_FRAME, MelStream
from .emotion import ProsodyEmotion, emotion_schedule
from .motion import MotionNoise, speech_energy

log = logging.getLogger(__name__)
SILENT_MEL = (LOG_FLOOR + 4.0) / 4.0


@dataclass
class Frame:
    """One 40 ms video frame of the avatar."""

    index: int
    timestamp: float  # start of the frame's audio, seconds since the stream began
    mouth: np.ndarray  # [3] open, spread, labio
    landmarks: np.ndarray  # [68, 2] 0..1 canvas coordinates (before head pose)
    pose: np.ndarray  # [3] yaw, pitch, roll (rad)
    blink: float
    emotion: np.ndarray  # [6] CREMA-D order
    image: np.ndarray | None = None  # [H, W, 3] uint8 RGB (when the stream draws)
    accepted_at: float = 0.0  # perf_counter() when the audio that completed this frame was accepted
    latency_ms: float | None = None  # accepted_at -> step() returned


class AudioModel:
    """The loaded audio2motion engine plus its streaming-state shapes (shared by many streams)."""

    def __init__(self, backend: str = "auto", precision: str = "auto", model_dir: str | os.PathLike | None = None):
        self.model: LoadedModel = load_model("audio2motion", precision, backend, model_dir)
        cfg = self.model.meta.get("config", {})
        self.lookahead = int(self.model.meta.get("lookahead_frames", 2))
        self.hidden = int(cfg.get("hidden", 128))
        self.ctx = int(cfg.get("kernel", 5)) - 1

    def initial_state(self) -> dict[str, np.ndarray]:
        z = np.zeros
        return {"mel_ctx": z((1, N_MELS, self.ctx), np.float32), "h": z((1, 1, self.hidden), np.float32),
                "c": z((1, 1, self.hidden), np.float32)}

    def run(self, mel: np.ndarray, state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
        """mel [n*4, 80] -> outputs for n steps, new state."""
        out = self.model.run({"mel": mel[None], **state})
        return out, {"mel_ctx": out["mel_ctx_out"], "h": out["h_out"], "c": out["c_out"]}


class Stream:
    """Chunked audio in, avatar frames out. ``neutral``: the avatar's neutral landmarks [68, 2];
    ``renderer``: an ``AvatarRenderer`` to draw images (None = motion only)."""

    def __init__(self, model: AudioModel, neutral: np.ndarray, renderer=None, *, seed: int = 0,
                 emotion: str | None = None, audio_tap=None):
        self.model = model
        self.audio_tap = audio_tap  # called with every 16 kHz chunk the stream consumes (recording)
        self.neutral = np.asarray(neutral, np.float32)
        self.renderer = renderer
        self.seed = seed
        self.emotion = emotion  # None/"auto": prosody heuristic; a name; or a schedule "0:neutral,2.5:happy"
        if emotion not in (None, "auto"):
            emotion_schedule(emotion, 1)  # validate now: a typed error before any audio is processed
        self.reset()

    # -- state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: a new conversation starts at frame 0."""
        self._resampler = StreamResampler()
        self._mel = MelStream()
        self._mel_pending = np.zeros((0, N_MELS), np.float32)
        self._state = self.model.initial_state()
        self._steps = 0  # model steps run (one per 4 mel frames)
        self._noise = MotionNoise(self.seed)
        self._prosody = ProsodyEmotion() if self.emotion in (None, "auto") else None
        self._emo_rows: deque[np.ndarray] = deque()  # emotion of complete frames not yet emitted
        self._schedule = np.zeros((0, 6), np.float32)
        self._frame_audio = np.zeros(0, np.float32)  # samples of frames not yet complete
        self._energy: deque[float] = deque()  # energy of complete frames not yet emitted as motion
        self._ready: deque[Frame] = deque()
        self._next_index = 0
        self.samples_in = 0  # 16 kHz samples accepted
        self.frames_out = 0
        self._flushed = False

    @property
    def lookahead_ms(self) -> float:
        return self.model.lookahead * 1000.0 * SAMPLES_PER_FRAME / SAMPLE_RATE

    # -- input ---------------------------------------------------------------------------------
    def accept_audio(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, arrived_at: float | None = None) -> int:
        """Feed a chunk (any length, [N] or [N, ch], int or float, any rate); returns frames ready.
        ``arrived_at`` (perf_counter) is when the chunk reached the app; latency is measured from it."""
        if self._flushed:
            raise InputError("this stream was flushed (end of input); call reset() to start a new one")
        t = time.perf_counter() if arrived_at is None else arrived_at
        pcm = self._resampler(samples, sample_rate)
        self._ingest(pcm, t)
        return len(self._ready)

    def _ingest(self, pcm: np.ndarray, t: float) -> None:
        if pcm.size == 0:
            return
        if self.audio_tap is not None:
            self.audio_tap(pcm)
        self.samples_in += pcm.size
        fa = np.concatenate([self._frame_audio, pcm])
        n = fa.size // SAMPLES_PER_FRAME
        if n:
            self._energy.extend(speech_energy(fa[: n * SAMPLES_PER_FRAME], n).tolist())
        if self._prosody is not None:
            self._emo_rows.extend(self._prosody.update(pcm))
        self._frame_audio = fa[n * SAMPLES_PER_FRAME :]
        self._feed_mel(self._mel.accept(pcm), t)

    def _feed_mel(self, mel: np.ndarray, t: float) -> None:
        pend = np.concatenate([self._mel_pending, mel]) if mel.size else self._mel_pending
        n = pend.shape[0] // MELS_PER_FRAME
        self._mel_pending = pend[n * MELS_PER_FRAME :]
        if n == 0:
            return
        out, self._state = self.model.run(pend[: n * MELS_PER_FRAME], self._state)
        L = self.model.lookahead
        first = max(0, L - self._steps)  # outputs before the look-ahead is filled describe no frame
        self._steps += n
        if first >= n:
            return
        mouth = out["mouth"][0, first:]
        offsets = out["landmarks"][0, first:]
        energy = np.array([self._energy.popleft() for _ in range(mouth.shape[0])], np.float32)
        pose, blink = self._noise.step(energy)
        for i in range(mouth.shape[0]):
            k = self._next_index
            self._ready.append(Frame(k, k * SAMPLES_PER_FRAME / SAMPLE_RATE, mouth[i], self.neutral + offsets[i],
                                     pose[i], float(blink[i]), self._emotion_row(k), accepted_at=t))
            self._next_index += 1

    def _emotion_row(self, k: int) -> np.ndarray:
        if self._prosody is not None:
            return np.asarray(self._emo_rows.popleft(), np.float32)
        if k >= len(self._schedule):  # extend the user's schedule in blocks (streams have no known length)
            self._schedule = emotion_schedule(self.emotion, max(2 * len(self._schedule), k + 250)).astype(np.float32)
        return self._schedule[k]

    def flush(self) -> int:
        """End of input: pad the last partial frame with silence and run out the look-ahead; returns frames ready."""
        if self._flushed:
            return len(self._ready)
        t = time.perf_counter()
        tail = self._resampler.flush()
        self._ingest(tail, t)
        if self._frame_audio.size:
            self._ingest(np.zeros(SAMPLES_PER_FRAME - self._frame_audio.size, np.float32), t)
        if self._steps > 0:  # L more (silent) steps emit the last L frames
            n = self.model.lookahead * MELS_PER_FRAME - self._mel_pending.shape[0]
            silent = np.full((n, N_MELS), SILENT_MEL, np.float32)
            self._feed_mel(silent, t)
        self._flushed = True
        return len(self._ready)

    # -- output --------------------------------------------------------------------------------
    def ready(self) -> int:
        """Frames that ``step`` can return now."""
        return len(self._ready)

    def step(self, draw: bool = True) -> Frame:
        """The next frame (drawn when the stream has a renderer and ``draw``)."""
        if not self._ready:
            raise InputError("no frame ready: feed more audio (accept_audio) or call flush()")
        f = self._ready.popleft()
        if draw and self.renderer is not None:
            f.image = self.renderer.draw(f.landmarks, f.pose, f.blink, f.emotion)
        f.latency_ms = (time.perf_counter() - f.accepted_at) * 1e3
        self.frames_out += 1
        return f

    def skip(self) -> Frame:
        """Take the next frame without drawing it (a scheduler dropping frames to keep up)."""
        return self.step(draw=False)
