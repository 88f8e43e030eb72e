"""Offline rendering: face + speech -> anime talking-avatar frames -> MP4 (``toonsync.render``)."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import check_not_input
from .audio_io import AudioLike, audio_seconds, check_audio_path, iter_audio, load_audio, stored_audio
from .background import parse_background, with_background
from .errors import InputError, InvalidAudio
from .mel import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .motion import EMOTIONS
from .mouth import MOUTH_GAIN
from .options import RenderOptions, resolve_options
from .prepare import Avatar, FaceLike, load_face
from .progress import Progress, muted, read_ahead
from .streaming import MAX_STEPS, AudioModel, Stream

log = logging.getLogger(__name__)


@dataclass
class Motion:
    """Per-frame animation at the output fps."""

    mouth: np.ndarray  # [T, 3] open, spread, labio
    landmarks: np.ndarray  # [T, 68, 2] in 0..1 (before head pose)
    pose: np.ndarray  # [T, 3] yaw, pitch, roll (rad)
    blink: np.ndarray  # [T]
    emotion: np.ndarray  # [T, 6] CREMA-D order
    visemes: np.ndarray | None = None  # [T] Rhubarb mouth shapes (runtime.motion_io), when computed
    closed: np.ndarray | None = None  # [T] the closure head's probability that the lips are shut (None: no head)

    @property
    def n_frames(self) -> int:
        return int(self.mouth.shape[0])


@dataclass
class RenderResult:
    """What ``render`` made: the output file, frame count, fps, size, timings and the motion it drew."""

    output: Path | None
    frames: int
    fps: int
    size: int
    duration_s: float
    motion: Motion
    timings_ms: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    backend: str = ""


class Animator:
    """Whole-clip audio -> Motion through a ``Stream`` (so offline equals streaming by construction).
    Holds the loaded audio model; reuse one Animator across renders."""

    def __init__(self, backend: str = "auto", precision: str = "auto", model_dir: str | os.PathLike | None = None):
        self.audio_model = AudioModel(backend, precision, model_dir)
        self.model = self.audio_model.model

    def animate(
        self,
        audio: np.ndarray,
        neutral: np.ndarray,
        seed: int = 0,
        emotion: str | None = None,
        fps: int = FPS,
        **expression: float,
    ) -> Motion:
        """16 kHz mono audio -> Motion at ``fps`` (T = ceil(N / 640) frames at 25 fps); ``expression``:
        ``mouth_gain`` / ``head_motion`` (``RenderOptions``)."""
        if audio.size == 0:
            raise InvalidAudio("audio is empty (0 samples)")
        window = MAX_STEPS * SAMPLES_PER_FRAME
        return self.animate_chunks(
            (audio[i : i + window] for i in range(0, audio.size, window)), neutral, seed, emotion, fps, **expression
        )[0]

    def animate_chunks(
        self,
        chunks: Iterable[np.ndarray],
        neutral: np.ndarray,
        seed: int = 0,
        emotion: str | None = None,
        fps: int = FPS,
        mouth_gain: float = MOUTH_GAIN,
        head_motion: float = 1.0,
    ) -> tuple[Motion, int]:
        """``animate`` of 16 kHz mono audio given as chunks (e.g. ``audio_io.iter_audio`` of a long file): the
        audio goes through the stream window by window, so time is linear in its length and memory bounded but
        for the motion itself. Returns the Motion and the number of samples heard."""
        s = Stream(
            self.audio_model, neutral, None, seed=seed, emotion=emotion, mouth_gain=mouth_gain, head_motion=head_motion
        )
        keys = ("mouth", "landmarks", "pose", "blink", "emotion", "closed")
        parts: list[list[np.ndarray]] = [[] for _ in keys]  # per window
        heard = 0

        def take() -> None:  # the frames ready so far (at most a window's worth at a time)
            frames = [s.step(draw=False) for _ in range(s.ready())]
            for part, key in zip(parts, keys):
                if frames:
                    part.append(np.stack([getattr(f, key) for f in frames]).astype(np.float32))

        window = MAX_STEPS * SAMPLES_PER_FRAME
        for chunk in chunks:
            for i in range(0, chunk.size, window):
                piece = chunk[i : i + window]
                s.accept_audio(piece)
                heard += piece.size
                take()
        if heard == 0:
            raise InvalidAudio("audio is empty (0 samples)")
        s.flush()
        take()
        arrays = [np.concatenate(part) for part in parts]
        if fps != FPS:
            n_out = max(1, int(round(heard / SAMPLE_RATE * fps)))
            arrays = [_resample(x, n_out) for x in arrays]
        mouth, lms, pose, blink, emo, closed = arrays
        return Motion(mouth, lms, pose, blink, emo, closed=None if np.isnan(closed).all() else closed), heard


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear resampling along axis 0 to n frames."""
    src = np.linspace(0, 1, x.shape[0])
    dst = np.linspace(0, 1, n)
    flat = x.reshape(x.shape[0], -1)
    out = np.stack([np.interp(dst, src, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(n, *x.shape[1:]).astype(np.float32)


def render(
    face: FaceLike,
    audio: AudioLike,
    out: str | os.PathLike | None = None,
    options: RenderOptions | None = None,
    *,
    animator: Animator | None = None,
    sample_rate: int | None = None,
    landmarks: str | os.PathLike | np.ndarray | None = None,
    drawing: bool = False,
    **changes: Any,
) -> RenderResult:
    """Render ``face`` (photo path/array, ``.avatar`` bundle or ``Avatar``) speaking ``audio`` (WAV/FLAC path
    or array) to ``out`` (MP4 H.264 + AAC; or WebM / MOV / a PNG-sequence directory, which keep alpha;
    written atomically).

    ``options``: a ``RenderOptions`` (size, fps, seed, emotion, backend, precision, renderer, background);
    keyword arguments named like its fields override it (``render(face, audio, out, size=512)``). With
    ``out=None`` only the motion and frames count are computed (no video). ``drawing`` / ``landmarks`` (a JSON
    of 68 points): the image is a drawn character, animated from its own pixels (``toonsync.runtime.drawing``).
    Bad input raises a typed ``ToonsyncError`` before any output.
    """
    opts = resolve_options(options, changes)
    size, fps = opts.size, opts.fps
    t = {}
    t0 = time.perf_counter()
    bg = parse_background(opts.background)
    from .video import check_output, write_video  # PyAV only when rendering

    if isinstance(audio, (str, os.PathLike)):
        check_audio_path(audio)  # format errors before any work is done
    if out is not None:
        check_not_input(out, face, audio, landmarks)
        check_output(out, alpha=bg.alpha)  # format, alpha and writability before any work
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        avatar: Avatar = load_face(face, landmarks=landmarks, drawing=drawing, style=opts.style)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    painter = with_background(avatar.renderer(size, opts.renderer), bg)  # before the audio: a bad choice fails fast
    t["face_ms"] = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    if isinstance(audio, np.ndarray):  # already in memory
        pcm = load_audio(audio, sample_rate)

        def chunks() -> Iterable[np.ndarray]:
            return iter_audio(pcm, SAMPLE_RATE)
    else:  # a file is read block by block, twice (motion, then muxing): memory does not grow with its length

        def chunks() -> Iterable[np.ndarray]:
            return iter_audio(audio)

    first = chunks()  # a bad or empty file fails here, before the model loads
    seconds = pcm.size / SAMPLE_RATE if isinstance(audio, np.ndarray) else audio_seconds(audio)
    t["audio_ms"] = (time.perf_counter() - t1) * 1e3
    t2 = time.perf_counter()
    animator = animator or Animator(opts.backend, opts.precision)
    with Progress("listening", seconds * SAMPLE_RATE, "s of audio", scale=SAMPLE_RATE) as bar:

        def heard_chunks() -> Iterable[np.ndarray]:
            for c in first:
                yield c
                bar.advance(c.size)

        motion, heard = animator.animate_chunks(
            heard_chunks(),
            avatar.neutral,
            seed=opts.seed,
            emotion=opts.emotion_override,
            fps=fps,
            mouth_gain=opts.mouth_gain,
            head_motion=opts.head_motion,
        )
    t["motion_ms"] = (time.perf_counter() - t2) * 1e3

    def frames():
        with Progress("drawing", motion.n_frames, "frames") as bar:
            # drawn on a second thread a few frames ahead while this one encodes (both release the GIL)
            drawn = read_ahead(
                painter.draw(motion.landmarks[i], motion.pose[i], float(motion.blink[i]), motion.emotion[i])
                for i in range(motion.n_frames)
            )
            for img in drawn:
                yield img
                bar.advance()

    t3 = time.perf_counter()
    outp = None
    if out is not None:
        if isinstance(audio, np.ndarray):  # an array's soundtrack: the 16 kHz mono the models heard
            outp = write_video(out, frames(), chunks(), fps=fps, alpha=bg.alpha)
        else:  # a file's soundtrack as the user gave it: its own rate and (up to two) channels
            rate, channels, stored = stored_audio(audio)
            outp = write_video(out, frames(), stored, fps=fps, sample_rate=rate, alpha=bg.alpha, channels=channels)
    t["render_encode_ms"] = (time.perf_counter() - t3) * 1e3
    t["total_ms"] = (time.perf_counter() - t0) * 1e3
    log.info("rendered %d frames (%.2f s) in %.0f ms", motion.n_frames, heard / SAMPLE_RATE, t["total_ms"])
    return RenderResult(
        outp,
        motion.n_frames,
        fps,
        size,
        heard / SAMPLE_RATE,
        motion,
        {k: round(v, 1) for k, v in t.items()},
        [str(w.message) for w in caught],
        f"{animator.model.backend.name} {animator.model.precision}",
    )


@dataclass
class BatchResult:
    """What ``render_batch`` made: a ``RenderResult`` per audio file rendered, an error message per file that
    failed (the others are still rendered)."""

    results: dict[str, RenderResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


BATCH_FORMATS = ("mp4", "webm", "mov")


def render_batch(
    face: FaceLike,
    audio_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: RenderOptions | None = None,
    *,
    container: str = "mp4",
    landmarks: str | os.PathLike | np.ndarray | None = None,
    drawing: bool = False,
    **changes: Any,
) -> BatchResult:
    """Render ``face`` speaking every WAV/FLAC file in ``audio_dir`` to ``out_dir/NAME.container``, loading the
    face and the models once. ``out_dir`` is made if its parent exists. A file that fails (bad audio) is reported
    in ``BatchResult.failed`` and the batch goes on; setup errors (face, options, folders) raise before any work."""
    opts = resolve_options(options, changes)
    src, dst = Path(audio_dir), Path(out_dir)
    if not src.is_dir():
        raise InputError(f"{src} is not a folder of audio files")
    if container not in BATCH_FORMATS:
        raise InputError(f"unknown container {container!r}; accepted: {', '.join(BATCH_FORMATS)}")
    files = sorted(f for f in src.iterdir() if f.suffix.lower() in (".wav", ".flac") and f.is_file())
    if not files:
        raise InputError(f"{src} has no .wav or .flac files")
    stems = [f.stem for f in files]
    if len(set(stems)) < len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise InputError(f"{src}: more than one audio file named {', '.join(twice)}; their videos would collide")
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst} exists and is not a folder; a batch writes one video per audio file into a folder")
    if not dst.parent.is_dir():
        raise InputError(f"the folder {dst.parent} does not exist; create it first")
    if dst.resolve() == src.resolve():
        raise InputError(f"{dst} is the audio folder itself; write the videos to another folder")
    avatar = load_face(face, landmarks=landmarks, drawing=drawing, style=opts.style)
    animator = Animator(opts.backend, opts.precision)
    dst.mkdir(exist_ok=True)
    batch = BatchResult()
    bar = Progress("batch", len(files), "files")
    for f in bar.over(files, note=lambda f: f.name):
        try:
            with muted():
                batch.results[f.name] = render(avatar, f, dst / f"{f.stem}.{container}", opts, animator=animator)
        except InputError as e:
            batch.failed[f.name] = str(e)
            log.warning("%s: not rendered: %s", f.name, e)
    return batch


__all__ = ["render", "render_batch", "BatchResult", "RenderResult", "RenderOptions", "Motion", "Animator", "EMOTIONS"]
