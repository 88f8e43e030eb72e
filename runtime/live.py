"""``runtime.stream(mic, face)``: live audio -> avatar frames at 25 fps, with bounded latency.

Sources: ``Microphone`` (sounddevice), ``WavSource`` (a WAV/FLAC played as if live, or as fast as
possible), or any iterable / async iterable of numpy chunks. Audio capture runs in its own thread
and never waits for inference; if drawing falls behind, frames are dropped (counted) so latency
stays bounded; if audio stops arriving on a live source, silence is fed so the avatar keeps
breathing and blinking (idle animation) instead of freezing. Sinks: a callback, an MP4 recording
(``record=``, finalised on Ctrl-C too), an OpenCV window, or — with no sink — a generator of frames.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import check_not_input, finishing_after_interrupt
from .audio_io import check_audio_path
from .background import parse_background, preview, with_background
from .errors import InputError
from .mel import SAMPLE_RATE, SAMPLES_PER_FRAME
from .options import MODEL_FPS, RenderOptions, resolve_options
from .prepare import FaceLike, load_face
from .streaming import AudioModel, Frame, Stream

log = logging.getLogger(__name__)
FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE
_END = object()


class MicrophoneError(InputError):
    """The microphone cannot be opened (no device, no permission, no sounddevice)."""


# -- sources -----------------------------------------------------------------------------------
class WavSource:
    """A WAV/FLAC file delivered in ``chunk_ms`` chunks; ``realtime`` paces them like a live microphone."""

    def __init__(self, path: str | os.PathLike, realtime: bool = True, chunk_ms: float = 20.0):
        import soundfile as sf

        self.path = check_audio_path(path)
        self.realtime = realtime
        self.sample_rate = int(sf.info(str(self.path)).samplerate)
        self.chunk = max(1, int(self.sample_rate * chunk_ms / 1000))
        self._stop = threading.Event()

    def chunks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        t0, sent = time.perf_counter(), 0
        with sf.SoundFile(str(self.path)) as f:
            for block in f.blocks(blocksize=self.chunk, dtype="float32", always_2d=True):
                if self._stop.is_set():
                    return
                sent += block.shape[0]
                if self.realtime:  # a live source delivers a chunk once its last sample was "recorded"
                    delay = t0 + sent / self.sample_rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                yield block

    def close(self) -> None:
        self._stop.set()


@dataclass(frozen=True)
class InputDevice:
    """An audio input device as PortAudio reports it."""

    index: int
    name: str
    host_api: str
    channels: int
    default_sample_rate: float
    is_default: bool


def list_input_devices() -> list[InputDevice]:
    """The audio input devices PortAudio sees (``toonsync devices``); raises ``MicrophoneError`` naming the fix
    when sounddevice or the PortAudio library is missing."""
    sd = _sounddevice()
    try:
        devices, apis = sd.query_devices(), sd.query_hostapis()
        default_in = sd.default.device[0]
    except Exception:  # PortAudio without any device
        return []
    return [
        InputDevice(
            i,
            d["name"],
            apis[d["hostapi"]]["name"],
            int(d["max_input_channels"]),
            float(d["default_samplerate"]),
            i == default_in,
        )
        for i, d in enumerate(devices)
        if d.get("max_input_channels", 0) > 0
    ]


def input_devices() -> list[str]:
    """Names of the audio input devices sounddevice sees (empty without a sound card or PortAudio)."""
    try:
        return [d.name for d in list_input_devices()]
    except MicrophoneError:
        return []


def _sounddevice():
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        raise MicrophoneError(
            f"microphone input needs `pip install toonsync[mic]` and PortAudio "
            f"(apt-get install libportaudio2) ({e}); or use --wav FILE"
        ) from None
    return sd


class Microphone:
    """A sounddevice input (default device, or by name/index); chunks arrive from PortAudio's thread."""

    realtime = True

    def __init__(self, device: int | str | None = None, sample_rate: int = SAMPLE_RATE, chunk_ms: float = 20.0):
        sd = _sounddevice()
        devices = input_devices()
        if not devices:
            raise MicrophoneError(
                "no audio input device found (available input devices: none); "
                "plug in a microphone, or stream a file with --wav FILE"
            )
        try:  # a device that cannot record at 16 kHz records at its own rate (the stream resamples)
            sd.check_input_settings(device=device, channels=1, samplerate=sample_rate, dtype="float32")
        except Exception:
            try:
                sample_rate = int(sd.query_devices(device, "input")["default_samplerate"])
            except Exception as e:
                raise MicrophoneError(
                    f"no input device {device!r} ({e}); available input devices: {', '.join(devices)}; "
                    "see `toonsync devices`"
                ) from None
        self.sample_rate = sample_rate
        self.device = device
        self.overflows = 0
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()

        def callback(indata, frames, t, status):
            if status and status.input_overflow:
                self.overflows += 1
            self._q.put(indata.copy())

        try:
            self._sd = sd.InputStream(
                device=device,
                channels=1,
                samplerate=sample_rate,
                dtype="float32",
                blocksize=int(sample_rate * chunk_ms / 1000),
                callback=callback,
            )
        except Exception as e:
            raise MicrophoneError(
                f"cannot open input device {device!r}: {e}; available input devices: "
                + (", ".join(devices) or "none")
                + " (`toonsync devices` lists them); or use --wav FILE"
            ) from None

    def chunks(self) -> Iterator[np.ndarray]:
        self._sd.start()
        while not self._stop.is_set():
            try:
                yield self._q.get(timeout=0.1)
            except queue.Empty:
                continue

    def close(self) -> None:
        self._stop.set()
        self._sd.abort()  # at once: stop() waits for a device that has stalled
        self._sd.close()


class IterableSource:
    """Any iterable or async iterable of numpy chunks at ``sample_rate`` (not paced: as fast as produced)."""

    def __init__(self, chunks: Any, sample_rate: int = SAMPLE_RATE, realtime: bool = False):
        self._it, self.sample_rate, self.realtime = chunks, sample_rate, realtime
        self._stop = threading.Event()

    def chunks(self) -> Iterator[np.ndarray]:
        if hasattr(self._it, "__aiter__"):
            yield from _drain_async(self._it, self._stop)
            return
        for c in self._it:
            if self._stop.is_set():
                return
            yield c

    def close(self) -> None:
        self._stop.set()


def _drain_async(ait, stop: threading.Event) -> Iterator[np.ndarray]:
    q: queue.Queue = queue.Queue(maxsize=64)

    async def pump():
        try:
            async for c in ait:
                if stop.is_set():
                    break
                q.put(c)
        finally:
            q.put(_END)

    th = threading.Thread(target=lambda: asyncio.run(pump()), daemon=True)
    th.start()
    while (c := q.get()) is not _END:
        yield c


def as_source(mic: Any, sample_rate: int = SAMPLE_RATE, realtime: bool | None = None) -> Any:
    """``None`` -> default Microphone; a WAV/FLAC path -> WavSource; a source object; or an (async) iterable."""
    if mic is None:
        return Microphone()
    if hasattr(mic, "chunks") and hasattr(mic, "realtime"):
        return mic
    if isinstance(mic, (str, os.PathLike)):
        return WavSource(mic, realtime=True if realtime is None else realtime)
    if isinstance(mic, np.ndarray):
        raise InputError(
            "pass audio arrays as an iterable of chunks (e.g. np.array_split(audio, n)), "
            "or use runtime.render for a whole clip"
        )
    if hasattr(mic, "__iter__") or hasattr(mic, "__aiter__"):
        return IterableSource(mic, sample_rate, bool(realtime))
    raise InputError(
        f"cannot stream from {type(mic).__name__}; accepted: None (default microphone), "
        "runtime.Microphone(device), a WAV/FLAC path, or an (async) iterable of numpy chunks"
    )


# -- sinks -------------------------------------------------------------------------------------
class WindowSink:
    """Show frames in an OpenCV window (needs an OpenCV build with GUI support and a display)."""

    def __init__(self, title: str = "toonsync", scale: int = 2):
        import cv2

        record = "record the stream to a file instead (stream(..., record='out.mp4'))"
        if not os.environ.get("DISPLAY") and os.name != "nt":
            raise InputError(
                f"no display to open a window on (DISPLAY is not set); {record}",
                cli="no display to open a window on (DISPLAY is not set); record with --record out.mp4 instead",
            )
        try:
            cv2.namedWindow(title)
        except cv2.error:
            gui = "this OpenCV build has no GUI (opencv-python-headless): install opencv-python for a window"
            raise InputError(f"{gui}, or {record}", cli=f"{gui}, or record with --record out.mp4") from None
        self.title, self.scale = title, scale

    def __call__(self, frame: Frame) -> None:
        import cv2

        if frame.image is None:
            return
        img = preview(frame.image)  # RGBA (transparent background) over a checkerboard
        img = cv2.resize(img, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_NEAREST)
        cv2.imshow(self.title, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
            raise KeyboardInterrupt

    def close(self) -> None:
        import cv2

        cv2.destroyWindow(self.title)


# -- the loop ----------------------------------------------------------------------------------
@dataclass
class StreamStats:
    """What a live stream did: frames, drops, underruns, fed silence, latency and A/V sync (``summary()``)."""

    frames: int = 0
    dropped: int = 0
    underruns: int = 0  # times no audio arrived in time on a live source (silence was fed)
    silence_fed_s: float = 0.0
    audio_s: float = 0.0  # audio consumed (incl. fed silence), 16 kHz seconds
    chunks: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    recording: Path | None = None

    @property
    def fps(self) -> float:
        return (self.frames + self.dropped) / self.wall_s if self.wall_s > 0 else 0.0

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def av_sync_ms(self) -> float:
        """Video duration minus audio duration (|.| <= one frame after a clean end)."""
        return (self.frames + self.dropped) * FRAME_S * 1e3 - self.audio_s * 1e3

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "underruns": self.underruns,
            "silence_fed_s": round(self.silence_fed_s, 3),
            "audio_s": round(self.audio_s, 3),
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.fps, 2),
            "latency_p50_ms": round(self.latency(50), 2),
            "latency_p99_ms": round(self.latency(99), 2),
            "latency_max_ms": round(max(self.latencies_ms, default=float("nan")), 2),
            "av_sync_ms": round(self.av_sync_ms, 1),
            "recording": str(self.recording) if self.recording else None,
        }


class StreamRun:
    """An iterable of ``Frame``s from a running stream; ``stats`` fills as it goes; ``close()`` stops it."""

    def __init__(self, gen: Iterator[Frame], stats: StreamStats):
        self._gen, self.stats = gen, stats

    def __iter__(self) -> Iterator[Frame]:
        return self._gen

    def __next__(self) -> Frame:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def summary(self) -> dict:
        """The stream's figures so far (``StreamStats.summary``): fps, latency p50/p99, dropped frames, ..."""
        return self.stats.summary()

    def __enter__(self) -> StreamRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _frames(
    source,
    stream: Stream,
    stats: StreamStats,
    max_backlog: int,
    record,
    on_stats,
    stats_every: float,
    alpha: bool = False,
) -> Iterator[Frame]:
    from .video import open_writer

    recorder = open_writer(record, alpha=alpha) if record is not None else None
    stream.audio_tap = recorder.add_audio if recorder else None
    last_image = None
    q: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce():
        try:
            for chunk in source.chunks():
                q.put((chunk, time.perf_counter()))
                if stop.is_set():
                    break
        except BaseException as e:  # surfaced in the consumer
            q.put((e, time.perf_counter()))
        finally:
            q.put((_END, time.perf_counter()))

    th = threading.Thread(target=produce, name="toonsync-capture", daemon=True)
    t0 = last_report = time.perf_counter()
    th.start()
    done = False
    try:
        while not done:
            try:
                item, arrived = q.get(timeout=1.5 * FRAME_S if source.realtime else None)
            except queue.Empty:  # live source starved: keep the avatar alive with a frame of silence
                stats.underruns += 1
                stats.silence_fed_s += FRAME_S
                stream.accept_audio(np.zeros(SAMPLES_PER_FRAME, np.float32), SAMPLE_RATE)
            else:
                if item is _END:
                    stream.flush()
                    done = True
                elif isinstance(item, BaseException):
                    raise item
                else:
                    stats.chunks += 1
                    stream.accept_audio(item, source.sample_rate, arrived_at=arrived)
            while stream.ready():
                if source.realtime and not done and stream.ready() > max_backlog:
                    stream.skip()  # behind: drop without drawing; motion state stays exact
                    stats.dropped += 1
                    if recorder is not None and last_image is not None:
                        recorder.add_frame(last_image)  # the recording keeps its A/V sync
                    continue
                f = stream.step()
                stats.frames += 1
                stats.latencies_ms.append(f.latency_ms)
                if len(stats.latencies_ms) > 100_000:  # bounded memory on endless streams
                    del stats.latencies_ms[:50_000]
                if recorder is not None and f.image is not None:
                    recorder.add_frame(f.image)
                    last_image = f.image
                yield f
            stats.audio_s = stream.samples_in / SAMPLE_RATE
            stats.wall_s = time.perf_counter() - t0
            if on_stats and stats_every and time.perf_counter() - last_report >= stats_every:
                last_report = time.perf_counter()
                on_stats(stats)
    finally:
        stop.set()
        source.close()
        stats.wall_s = time.perf_counter() - t0
        stats.audio_s = stream.samples_in / SAMPLE_RATE
        if recorder is not None:
            if recorder.frames:  # kept when Ctrl-C ended the stream: that is how a live stream stops
                with finishing_after_interrupt():
                    stats.recording = recorder.close()
            else:
                recorder.abort()


def stream(
    mic: Any,
    face: FaceLike,
    options: RenderOptions | None = None,
    *,
    sink: Callable[[Frame], Any] | None = None,
    sample_rate: int = SAMPLE_RATE,
    realtime: bool | None = None,
    record: str | os.PathLike | None = None,
    draw: bool = True,
    model: AudioModel | None = None,
    on_stats: Callable[[StreamStats], Any] | None = None,
    stats_every: float = 1.0,
    **changes: Any,
) -> StreamRun | StreamStats:
    """Stream ``mic`` (None = default microphone, ``Microphone(...)``, a WAV/FLAC path played live, or an
    (async) iterable of numpy chunks at ``sample_rate``) through the avatar of ``face``.

    ``options``: a ``RenderOptions`` (size, seed, emotion, backend, precision, renderer, background,
    max_backlog; live streams run at the models' 25 fps); keyword arguments named like its fields override it.
    With ``sink=None`` returns a ``StreamRun`` to iterate frames from; with a sink (a callable, e.g.
    ``WindowSink()``) runs to the end of the input (or Ctrl-C) and returns ``StreamStats``. ``record``
    also writes the frames with the same audio (.mp4 H.264 + AAC, or .webm / .mov / a PNG-sequence
    directory, which keep alpha), finalised even on Ctrl-C. A ``transparent`` background gives RGBA frames.
    """
    opts = resolve_options(options, changes)
    if opts.fps != MODEL_FPS:
        raise InputError(
            f"live streams run at the models' {MODEL_FPS} fps, got fps={opts.fps}; render offline "
            "for another frame rate"
        )
    bg = parse_background(opts.background)
    if record is not None:
        from .video import check_output

        check_not_input(record, mic, face)
        check_output(record, alpha=bg.alpha)
    source = as_source(mic, sample_rate, realtime)
    try:
        avatar = load_face(face, style=opts.style)
        model = model or AudioModel(opts.backend, opts.precision)
        painter = with_background(avatar.renderer(opts.size, opts.renderer), bg) if draw or record else None
    except BaseException:
        source.close()
        raise
    st = Stream(
        model,
        avatar.neutral,
        painter,
        seed=opts.seed,
        emotion=opts.emotion_override,
        mouth_gain=opts.mouth_gain,
        head_motion=opts.head_motion,
    )
    stats = StreamStats()
    run = StreamRun(_frames(source, st, stats, opts.max_backlog, record, on_stats, stats_every, bg.alpha), stats)
    if sink is None:
        return run
    try:
        for f in run:
            sink(f)
    finally:
        run.close()
        if hasattr(sink, "close"):
            sink.close()
    return stats
