"""``Stream``: stateful, chunked audio -> avatar frames (one per conversation, over shared models).

Audio chunks of any length and rate go in (``accept_audio``); one ``Frame`` per 40 ms comes out
(``ready``/``step``) once the model's look-ahead (2 frames = 80 ms) is filled. All state — the
mel frontend's tail, the model's conv context and LSTM h/c, the noise process — is carried here,
so any chunking gives exactly the frames of one whole-clip run (offline ``render`` uses this class).

The model owns batching, the stream holds state: ``AudioModel.create_stream`` makes a stream over shared models;
``AudioModel.step_many(streams)`` runs the queued audio of many deferred streams (``defer=True``) through the
graphs as one batched call per tick, through the streams' public batching methods (``take_model_input``,
``accept_model_output``, ``accept_decoder_output``); each stream's frames equal those of its solo run.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio_io import StreamResampler
from .avatar_geometry import check_neutral, face_scale
from .backend import LoadedModel, load_model, model_dir
from .emotion import ProsodyEmotion, arousal_mass, emotion_schedule
from .errors import InputError, ModelError
from .mel import LOG_FLOOR, MELS_PER_FRAME, N_MELS, SAMPLE_RATE, SAMPLES_PER_FRAME, MelStream
from .model_card import ModelCard
from .motion import EMOTIONS, HeadMotion, MotionNoise, emotion_vector, limit_pose, speech_energy
from .mouth import MOUTH_GAIN, SilenceGate, drawn_mouth, mouth_basis, shape_closures
from .options import check_expression

log = logging.getLogger(__name__)
SILENT_MEL = (LOG_FLOOR + 4.0) / 4.0
BLINK_SNAP = 0.03  # decoder blink below this is an open eye (a sigmoid never reaches 0)
# most 40 ms steps one graph call runs (10 s): longer input goes through in windows, state carried
MAX_STEPS = 250


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
    image: np.ndarray | None = None  # [H, W, 3] uint8 RGB when drawn ([H, W, 4] RGBA: transparent bg)
    accepted_at: float = 0.0  # perf_counter() when the audio that completed this frame was accepted
    latency_ms: float | None = None  # accepted_at -> step() returned
    closed: float = float("nan")  # the closure head's probability that the lips are shut (NaN: no head)


def _split_batch(out: dict[str, np.ndarray], n: int, state_axis1: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """Batched graph outputs -> one dict per stream (``state_axis1``: outputs whose batch axis is 1)."""
    return [{k: v[:, i : i + 1] if k in state_axis1 else v[i : i + 1] for k, v in out.items()} for i in range(n)]


class MotionDecoderModel:
    """The transformer motion decoder graph (``motion.*.onnx``): speech embedding (+ the audio model's mouth)
    + emotion + noise embedding -> mouth, landmark offsets, head pose, blink; its attention cache is the
    explicit streaming state."""

    def __init__(self, loaded: LoadedModel):
        self.model = loaded
        self.card = loaded.card
        if self.card.emotion_classes is not None and self.card.emotion_classes != EMOTIONS:
            raise ModelError(
                f"motion decoder {loaded.path} was trained on emotions {self.card.emotion_classes}, "
                f"the runtime uses {EMOTIONS}: re-export it"
            )
        self.input_names = [n for n in self.card.input_names if n not in self.card.state_shapes()]

    def initial_state(self) -> dict[str, np.ndarray]:
        """The attention cache of a stream that has heard nothing yet."""
        return self.card.initial_state()

    def run_many(
        self, inputs: list[dict[str, np.ndarray]], states: list[dict[str, np.ndarray]]
    ) -> list[tuple[dict[str, np.ndarray], dict]]:
        """Per stream {speech [n, S], speech_mouth [n, 3], emotion [n, 6], noise [n, 6]} (those the graph takes),
        all the same n -> (outputs, new state) each, from one batched call."""
        feeds = {name: np.stack([x[name] for x in inputs]).astype(np.float32) for name in self.input_names}
        feeds["cache"] = np.concatenate([s["cache"] for s in states], axis=1)
        outs = _split_batch(self.model.run(feeds), len(inputs), ("cache_out",))
        return [(o, {"cache": o["cache_out"]}) for o in outs]


def load_decoder(
    audio: LoadedModel, backend: str, precision: str, directory: str | os.PathLike | None
) -> MotionDecoderModel | None:
    """The motion decoder trained with this audio model (same ``run_id``), or None (logged) when none ships."""
    d = Path(directory) if directory else model_dir()
    if not ModelCard.exists(d, "motion"):
        log.info("no motion decoder in %s: mouth from audio2motion, pose/blink procedural", d)
        return None
    card = ModelCard.load(d, "motion")
    if not card.run_id or card.run_id != audio.card.run_id:
        log.warning(
            "motion decoder in %s was trained with another audio model (run_id %s != %s): not used",
            d,
            card.run_id,
            audio.card.run_id,
        )
        return None
    prec = {"int8": "fp32", "fp16": "fp16", "fp32": "fp32"}.get(precision, "auto")  # no INT8 decoder
    return MotionDecoderModel(load_model("motion", prec, backend, d))


class AudioModel:
    """The loaded audio2motion engine plus its streaming-state shapes (shared by many streams), and the
    transformer motion decoder that goes with it (``decoder``; None when absent or ``decoder=False``)."""

    decoder: MotionDecoderModel | None = None

    def __init__(
        self,
        backend: str = "auto",
        precision: str = "auto",
        model_dir: str | os.PathLike | None = None,
        decoder: bool = True,
    ):
        self.model: LoadedModel = load_model("audio2motion", precision, backend, model_dir)
        self.card: ModelCard = self.model.card
        self.lookahead = self.card.lookahead_frames
        self.decoder = load_decoder(self.model, backend, precision, model_dir) if decoder else None

    def initial_state(self) -> dict[str, np.ndarray]:
        """The streaming state (conv context, LSTM h/c) of a stream that has heard nothing yet."""
        return self.card.initial_state()

    def create_stream(self, neutral: np.ndarray, renderer=None, **kwargs) -> Stream:
        """A new ``Stream`` over this model (``kwargs``: ``Stream``'s: seed, emotion, defer, audio_tap)."""
        return Stream(self, neutral, renderer, **kwargs)

    def run_pending(self, streams: Sequence[Stream]) -> int:
        """Run every stream's queued model steps, batched: the streams go through the graph together (one
        call per round; in lock-step input -- every stream fed the same amount of audio per tick -- that is
        one call per tick), then through the motion decoder together. Returns the number of audio-model
        calls made. Every stream must have been created over this model."""
        for s in streams:
            if s.model is not self:
                raise InputError("step_many/run_pending take streams created over this AudioModel")
        calls = 0
        while True:
            active = [s for s in streams if s.pending_steps() > 0]
            if not active:
                return calls
            n = min(MAX_STEPS, *(s.pending_steps() for s in active))
            feeds = [s.take_model_input(n) for s in active]
            results = self.run_many([mel for mel, _ in feeds], [state for _, state in feeds])
            calls += 1
            pending = [
                (s, p)
                for s, (out, state) in zip(active, results)
                if (p := s.accept_model_output(out, state, n)) is not None
            ]
            by_len: dict[int, list[tuple[Stream, PendingFrames]]] = {}
            for s, p in pending:  # the decoder batched too: streams emitting the same number of frames
                by_len.setdefault(p.frames, []).append((s, p))
            for same in by_len.values():
                decoded = self.decoder.run_many([p.decoder_input for _, p in same], [s.decoder_state for s, _ in same])
                for (s, p), (out, state) in zip(same, decoded):
                    s.accept_decoder_output(p, out, state)

    def step_many(self, streams: Sequence[Stream], draw: bool = True) -> list[Frame | None]:
        """One tick for many streams: their queued audio through the model as one batch, then the next
        frame of each (``None`` where a stream has no frame ready yet). Each stream's output equals what it
        gives on its own; with ``defer=True`` streams this is where the model runs."""
        self.run_pending(streams)
        return [s.step(draw) if s.ready() else None for s in streams]

    def run(self, mel: np.ndarray, state: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
        """mel [n*4, 80] -> outputs for n steps, new state."""
        out = self.model.run({"mel": mel[None], **state})
        return out, {"mel_ctx": out["mel_ctx_out"], "h": out["h_out"], "c": out["c_out"]}

    def run_many(
        self, mels: list[np.ndarray], states: list[dict[str, np.ndarray]]
    ) -> list[tuple[dict[str, np.ndarray], dict]]:
        """``run`` for several streams as one batched call: every ``mels[i]`` has the same length [n*4, 80].

        The graph's batch axis carries the streams (mel/mel_ctx: axis 0; LSTM h/c: axis 1); the results
        are split back per stream, each equal to its own ``run`` up to float summation order."""
        if len(mels) == 1:
            return [self.run(mels[0], states[0])]
        feeds = {
            "mel": np.stack(mels),
            "mel_ctx": np.concatenate([s["mel_ctx"] for s in states], axis=0),
            "h": np.concatenate([s["h"] for s in states], axis=1),
            "c": np.concatenate([s["c"] for s in states], axis=1),
        }
        outs = _split_batch(self.model.run(feeds), len(mels), ("h_out", "c_out"))
        return [(o, {"mel_ctx": o["mel_ctx_out"], "h": o["h_out"], "c": o["c_out"]}) for o in outs]


@dataclass
class PendingFrames:
    """Frames a deferred stream has computed up to the motion decoder: ``decoder_input`` is what the decoder
    takes for them (``frames`` rows each); ``Stream.accept_decoder_output`` completes them."""

    frames: int
    decoder_input: dict[str, np.ndarray]
    prepared: dict = field(repr=False, default_factory=dict)


class Stream:
    """Chunked audio in, avatar frames out. ``neutral``: the avatar's neutral landmarks [68, 2];
    ``renderer``: an ``AvatarRenderer`` to draw images (None = motion only).

    ``emotion``: None/"auto" (the prosody heuristic), a name, or a schedule ("0:neutral,2.5:happy"); it can be
    changed mid-conversation with ``set_emotion`` (cross-faded over ``FADE_FRAMES``)."""

    FADE_FRAMES = 8  # 0.32 s cross-fade when the emotion is changed mid-stream

    def __init__(
        self,
        model: AudioModel,
        neutral: np.ndarray,
        renderer=None,
        *,
        seed: int = 0,
        emotion: str | None = None,
        audio_tap=None,
        defer: bool = False,
        mouth_gain: float = MOUTH_GAIN,
        head_motion: float = 1.0,
    ):
        self.model = model
        # how the motion is shown: the drawn mouth (runtime.mouth.drawn_mouth) and a scale on the head
        # pose (0: perfectly still); applied once, to the frames' landmarks and pose that every consumer takes
        self.mouth_gain, self.head_motion = check_expression(mouth_gain, head_motion)
        # defer: accept_audio only queues mel; the model runs at ready()/step() or, batched across many
        # streams, in step_many()/run_pending() -- one graph call per tick for a whole fleet of streams
        self.defer = defer
        self.audio_tap = audio_tap  # called with every 16 kHz chunk the stream consumes (recording)
        self.neutral = check_neutral(neutral)
        self._face_scale = np.float32(face_scale(self.neutral))  # the offsets are for a canonical-size face
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
        self._head = HeadMotion(self.seed)
        self._dec_state = self.model.decoder.initial_state() if self.model.decoder is not None else None
        self._gate = SilenceGate(self.model.lookahead)
        self._prosody = ProsodyEmotion() if self.emotion in (None, "auto") else None
        self._emo_rows: deque[np.ndarray] = deque()  # emotion of complete frames not yet emitted
        self._schedule = np.zeros((0, 6), np.float32)
        self._emo_k0 = 0  # the frame the current schedule's time 0 is at
        self._last_row: np.ndarray | None = None
        self._fade: tuple[int, np.ndarray] | None = None
        self._frame_audio = np.zeros(0, np.float32)  # samples of frames not yet complete
        self._energy: deque[float] = deque()  # energy of complete frames not yet emitted as motion
        self._ready: deque[Frame] = deque()
        self._pending_t = 0.0  # arrival time of the newest queued audio (latency is measured from it)
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
        return self._available()

    def _available(self) -> int:
        """Frames ready now plus those the queued model steps will give (a deferred stream)."""
        p = self.pending_steps()
        return len(self._ready) + max(0, p - max(0, self.model.lookahead - self._steps))

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
        if mel.size:
            self._mel_pending = np.concatenate([self._mel_pending, mel])
            self._pending_t = t
        if not self.defer:
            self._run_model(self.pending_steps())

    def pending_steps(self) -> int:
        """Model steps (40 ms each) whose mel is complete but not yet run (only ever > 0 with ``defer``)."""
        return self._mel_pending.shape[0] // MELS_PER_FRAME

    def _take_mel(self, n: int) -> np.ndarray:
        mel = self._mel_pending[: n * MELS_PER_FRAME]
        self._mel_pending = self._mel_pending[n * MELS_PER_FRAME :]
        return mel

    def _run_model(self, n: int) -> None:
        # in windows of at most MAX_STEPS: a long chunk (an hour of audio in one call) costs linear time and
        # bounded memory, and the state carried between windows makes the frames equal to any other chunking
        while n > 0:
            k = min(n, MAX_STEPS)
            out, self._state = self.model.run(self._take_mel(k), self._state)
            self._emit(out, k)
            n -= k

    def _emit(self, out: dict[str, np.ndarray], n: int) -> None:
        """Turn ``n`` model steps' outputs into frames (the first ``lookahead`` steps describe none)."""
        prep = self._prepare(out, n)
        if prep is not None:
            self._finish(prep)

    def _prepare(self, out: dict[str, np.ndarray], n: int) -> dict | None:
        """The audio model's outputs for the frames ``n`` steps complete, with those frames' energy, emotion
        and noise embedding (the motion decoder's inputs); None if the steps describe no frame yet."""
        L = self.model.lookahead
        first = max(0, L - self._steps)  # outputs before the look-ahead is filled describe no frame
        self._steps += n
        if first >= n:
            return None
        mouth = out["mouth"][0, first:]
        m = mouth.shape[0]
        ahead = self._gate.lookahead  # the gate looks this many frames past each one
        known = [60.0 * (e - 1.0) for e in itertools.islice(self._energy, m + ahead)]  # dB of these frames + ahead
        gains = np.array([self._gate.gain(known[i], known[i + 1 :]) for i in range(m)], np.float32)
        energy = np.array([self._energy.popleft() for _ in range(m)], np.float32)
        emo = np.stack([self._emotion_row(self._next_index + i) for i in range(m)]).astype(np.float32)
        pose, blink = self._noise.step(energy, arousal_mass(emo))
        return {
            "t": self._pending_t,
            "mouth": mouth,
            "offsets": out["landmarks"][0, first:],
            "gains": gains,
            "emotion": emo,
            "pose": pose,
            "blink": blink,
            "noise": self._noise.features,
            "speech": out["embedding"][0, first:],
        }

    def _decoder_inputs(self, prep: dict) -> dict[str, np.ndarray]:
        return {
            "speech": prep["speech"],
            "speech_mouth": prep["mouth"],  # the audio model's mouth, ungated
            "emotion": prep["emotion"],
            "noise": prep["noise"],
        }

    def _finish(self, prep: dict, decoded: tuple[dict, dict] | None = None) -> None:
        """Frames from a ``_prepare`` result: through the motion decoder when the model has one (``decoded``:
        its result from a batched call), then the silence gate."""
        dec = self.model.decoder
        if dec is not None:
            out, self._dec_state = decoded or dec.run_many([self._decoder_inputs(prep)], [self._dec_state])[0]
            prep["mouth"], prep["offsets"] = out["mouth"][0], out["landmarks"][0]
            prep["pose"] = np.clip(out["pose"][0], -0.3, 0.3)
            b = out["blink"][0]
            prep["blink"] = np.where(b < BLINK_SNAP, 0.0, np.minimum(b, 1.0)).astype(np.float32)
            closed = out.get("closed")
        else:
            closed = None
        g = prep["gains"]
        # the landmark offsets are linear in the mouth parameters (mouth @ basis): one gain scales both
        mouth, offsets = prep["mouth"] * g[:, None], prep["offsets"] * g[:, None, None]
        drawn = drawn_mouth(mouth, self.mouth_gain) if self.mouth_gain != 1.0 else mouth
        if closed is not None:  # a decoder with a closure head: shut where it says so, parted elsewhere (gain > 1)
            drawn = shape_closures(drawn, closed[0], g, self.mouth_gain)
        if drawn is not mouth:  # the drawn mouth (runtime.mouth): the offsets re-scaled (``mouth`` stays the model's)
            offsets = offsets + np.tensordot(drawn - mouth, mouth_basis(), axes=([1], [0]))
        if self._face_scale != 1.0:
            offsets = offsets * self._face_scale
        scale, shift = self._head.step(g)  # livelier while speaking, nearly still in pauses; phrase by phrase
        pose = prep["pose"] * scale + shift
        pose = limit_pose(pose * np.float32(self.head_motion))
        for i in range(mouth.shape[0]):
            k = self._next_index
            self._ready.append(
                Frame(
                    k,
                    k * SAMPLES_PER_FRAME / SAMPLE_RATE,
                    mouth[i],
                    self.neutral + offsets[i],
                    pose[i],
                    float(prep["blink"][i]),
                    prep["emotion"][i],
                    accepted_at=prep["t"],
                    closed=float("nan") if closed is None else float(closed[0][i]),
                )
            )
            self._next_index += 1

    def set_emotion(self, spec: str | None) -> None:
        """Change the emotion from the next frame on: None/"auto" (prosody), a name, or a schedule whose
        times count from now; the change is cross-faded over ``FADE_FRAMES`` frames."""
        spec = None if spec in (None, "auto") else spec
        if spec is not None:
            emotion_schedule(spec, 1)  # validates (typed InputError)
        k = self._next_index
        if self._last_row is not None:
            self._fade = (k, self._last_row.copy())
        self.emotion = spec
        self._prosody = ProsodyEmotion() if spec is None else None
        self._emo_rows.clear()
        self._schedule = np.zeros((0, 6), np.float32)
        self._emo_k0 = k

    def _emotion_row(self, k: int) -> np.ndarray:
        if self._prosody is not None:
            if self._emo_rows:
                row = np.asarray(self._emo_rows.popleft(), np.float32)
            else:  # a prosody estimator started mid-stream has no row for audio before it
                row = self._last_row if self._last_row is not None else emotion_vector("neutral").astype(np.float32)
        else:
            j = k - self._emo_k0
            if j >= len(self._schedule):  # extend the user's schedule in blocks (streams have no known length)
                self._schedule = emotion_schedule(self.emotion, max(2 * len(self._schedule), j + 250)).astype(
                    np.float32
                )
            row = self._schedule[j]
        if self._fade is not None:
            k0, start = self._fade
            w = (k - k0 + 1) / self.FADE_FRAMES
            if w >= 1.0:
                self._fade = None
            else:
                row = ((1 - w) * start + w * row).astype(np.float32)
        self._last_row = row
        return row

    def flush(self) -> int:
        """End of input: pad the last partial frame with silence and run out the look-ahead; returns frames ready."""
        if self._flushed:
            return len(self._ready)
        t = time.perf_counter()
        tail = self._resampler.flush()
        self._ingest(tail, t)
        if self._frame_audio.size:
            self._ingest(np.zeros(SAMPLES_PER_FRAME - self._frame_audio.size, np.float32), t)
        if self._steps + self.pending_steps() > 0:  # L more (silent) steps emit the last L frames
            n = self.model.lookahead * MELS_PER_FRAME - self._mel_pending.shape[0] % MELS_PER_FRAME
            silent = np.full((n, N_MELS), SILENT_MEL, np.float32)
            self._feed_mel(silent, t)
        self._flushed = True
        return self._available()

    # -- output --------------------------------------------------------------------------------
    def ready(self) -> int:
        """Frames that ``step`` can return now (a deferred stream runs its queued model steps first)."""
        if self.defer:
            self._run_model(self.pending_steps())
        return len(self._ready)

    def step(self, draw: bool = True) -> Frame:
        """The next frame (drawn when the stream has a renderer and ``draw``)."""
        if not self._ready and self.defer:
            self._run_model(self.pending_steps())
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

    # -- batching: ``AudioModel.run_pending`` / ``step_many`` drive deferred streams through these ---------------
    def take_model_input(self, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Dequeue the mel of the next ``n`` model steps ([n * 4, 80]); returns it with the state it starts from."""
        if not 0 < n <= self.pending_steps():
            raise InputError(f"take_model_input({n}): {self.pending_steps()} model steps are queued")
        return self._take_mel(n), self._state

    def accept_model_output(
        self, out: dict[str, np.ndarray], state: dict[str, np.ndarray], n: int
    ) -> PendingFrames | None:
        """The audio model's outputs for the ``n`` steps ``take_model_input`` gave and the state after them.
        Without a motion decoder the frames are ready at once (returns None); with one, returns the frames
        waiting for it (``PendingFrames``; complete them with ``accept_decoder_output``)."""
        self._state = state
        prep = self._prepare(out, n)
        if prep is None:
            return None
        if self.model.decoder is None:
            self._finish(prep)
            return None
        return PendingFrames(prep["mouth"].shape[0], self._decoder_inputs(prep), prep)

    @property
    def decoder_state(self) -> dict[str, np.ndarray] | None:
        """The motion decoder's state (its attention cache) after the frames emitted so far."""
        return self._dec_state

    def accept_decoder_output(
        self, pending: PendingFrames, out: dict[str, np.ndarray], state: dict[str, np.ndarray]
    ) -> None:
        """The motion decoder's outputs for ``pending`` and its state after them: the frames become ready."""
        self._finish(pending.prepared, (out, state))
