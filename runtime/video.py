"""Video output, written atomically: MP4 (H.264 + AAC), WebM (VP9 + alpha), MOV (qtrle + alpha), PNG sequences;
video input (probe / read_video, with alpha) for preprocessing and evaluation."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .atomic import (
    atomic_dir,
    atomic_path,
    check_dir_writable,
    check_folder_exists,
    check_writable,
    raise_if_interrupted,
)
from .errors import InputError, InputNotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputFormat:
    """A video container + codecs toonsync writes (chosen by the output's suffix)."""

    suffix: str
    container: str
    video_codec: str
    pix_fmt: str
    audio_codec: str
    alpha: bool  # keeps an alpha channel (RGBA frames)
    crf: int | None  # default constant-quality setting (None: lossless codec)
    options: tuple[tuple[str, str], ...]
    label: str


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    ".mp4": OutputFormat(
        ".mp4",
        "mp4",
        "libx264",
        "yuv420p",
        "aac",
        False,
        20,
        (("preset", "veryfast"), ("tune", "animation")),
        "MP4 (H.264 + AAC)",
    ),
    # VP9 keeps alpha in a second (BlockAdditional) stream; auto-alt-ref must be off for it
    ".webm": OutputFormat(
        ".webm",
        "webm",
        "libvpx-vp9",
        "yuva420p",
        "libopus",
        True,
        30,
        (("b", "0"), ("auto-alt-ref", "0"), ("deadline", "realtime"), ("cpu-used", "8"), ("row-mt", "1")),
        "WebM (VP9 with alpha + Opus)",
    ),
    ".mov": OutputFormat(
        ".mov", "mov", "qtrle", "argb", "aac", True, None, (), "QuickTime (Animation/qtrle with alpha + AAC)"
    ),
}
PNG_SEQUENCE_SUFFIX = ".png-seq"
SEQUENCE_MANIFEST = "sequence.json"
ALPHA_OUTPUTS = (
    ".webm (VP9 with alpha + Opus), .mov (QuickTime Animation with alpha + AAC) or a PNG-sequence "
    f"directory (a path ending in / or {PNG_SEQUENCE_SUFFIX}; frames + audio.wav)"
)
ACCEPTED_OUTPUTS = ".mp4 (H.264 + AAC), " + ALPHA_OUTPUTS


def is_png_sequence(path: str | os.PathLike) -> bool:
    """An output path naming a PNG-sequence directory: ends with a slash or in ``.png-seq``."""
    s = os.fspath(path)
    return s.endswith(("/", os.sep)) or Path(s).suffix.lower() == PNG_SEQUENCE_SUFFIX


def check_output(path: str | os.PathLike, alpha: bool = False) -> OutputFormat | None:
    """The format of output ``path`` (None: a PNG sequence), or a typed error naming the accepted outputs;
    ``alpha``: the frames are RGBA (transparent background)."""
    from .errors import AlphaUnsupported

    check_folder_exists(Path(path))  # a PNG sequence's own folder is made; the one it sits in must exist
    if is_png_sequence(path):
        check_dir_writable(path, SEQUENCE_MANIFEST)
        return None
    p = Path(path)
    fmt = OUTPUT_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(f"output must be an .mp4 file, or {ALPHA_OUTPUTS}; got {p.name}")
    if alpha and not fmt.alpha:
        raise AlphaUnsupported(
            f"{p.name}: {fmt.label} cannot store transparency; for a transparent background write {ALPHA_OUTPUTS}"
        )
    check_writable(p)
    return fmt


class _AtomicOutput:
    """``close`` finalises and renames the output into place; ``abort`` (or an exception inside ``with``)
    leaves nothing behind. Subclasses implement ``_finish``."""

    _ctx: contextlib.AbstractContextManager
    _closed = False
    frames = 0
    path: Path

    def _finish(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Close open handles before the temporary output is renamed or deleted."""

    def close(self) -> Path:
        if self._closed:
            return self.path
        self._closed = True
        try:
            if not self.frames:
                raise InputError("no frames to write")
            self._finish()
        except BaseException as e:
            self._release()
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._release()
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()
            err = RuntimeError("aborted")
            try:
                self._ctx.__exit__(RuntimeError, err, None)
            except RuntimeError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoWriter(_AtomicOutput):
    """Incremental video + audio writer (PyAV): ``add_frame`` (RGB, or RGBA for formats with alpha) /
    ``add_audio`` in any order; the format comes from ``fmt`` or the path's suffix (``OUTPUT_FORMATS``)."""

    def __init__(
        self,
        path: str | os.PathLike,
        fps: int = 25,
        sample_rate: int = 16_000,
        audio: bool = True,
        crf: int | None = None,
        fmt: OutputFormat | None = None,
        channels: int = 1,
    ):
        self.path = Path(path)
        self.fmt = fmt or check_output(self.path)
        self.fps, self.channels = fps, 2 if channels >= 2 else 1
        # the audio keeps its rate unless the codec cannot store it (Opus: 8/12/16/24/48 kHz): then 48 kHz
        self.sample_rate = sample_rate if self.fmt.audio_codec != "libopus" or sample_rate in OPUS_RATES else 48_000
        self.input_rate = sample_rate  # the rate add_audio is given (resampled when the codec needs another)
        self._resample = None if self.sample_rate == sample_rate else (sample_rate, self.sample_rate)
        self.crf = self.fmt.crf if crf is None else crf
        self._ctx = atomic_path(self.path, suffix=self.fmt.suffix)
        self._tmp = self._ctx.__enter__()
        # MP4 / MOV: the index (moov) is moved to the front on close ("faststart"), so browsers and players can
        # start playing before the whole file has arrived
        opts = {"movflags": "+faststart"} if self.fmt.container in ("mp4", "mov") else {}
        self._out = av.open(str(self._tmp), mode="w", format=self.fmt.container, options=opts)
        self._v = None
        self._a = None
        if audio:
            layout = "stereo" if self.channels == 2 else "mono"
            self._a = self._out.add_stream(self.fmt.audio_codec, rate=self.sample_rate, layout=layout)
            self._a.bit_rate = 64_000 * self.channels
        self._apts = 0
        self._early_audio: list[np.ndarray] = []

    def add_frame(self, img: np.ndarray) -> None:
        from .errors import AlphaUnsupported

        rgba = img.ndim == 3 and img.shape[2] == 4
        if rgba and not self.fmt.alpha:
            raise AlphaUnsupported(
                f"{self.path.name}: {self.fmt.label} cannot store RGBA frames; write {ALPHA_OUTPUTS}"
            )
        if self._v is None:
            h, w = img.shape[:2]
            self._v = self._out.add_stream(self.fmt.video_codec, rate=Fraction(self.fps, 1))
            self._v.width, self._v.height, self._v.pix_fmt = w, h, self.fmt.pix_fmt
            opts = dict(self.fmt.options)
            if self.crf is not None:
                opts["crf"] = str(self.crf)
            self._v.options = opts
            for pcm in self._early_audio:  # audio that came before the first frame: now the header can be written
                self.add_audio(pcm)
            self._early_audio = []
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgba" if rgba else "rgb24")
        vf.pts = self.frames
        vf.time_base = Fraction(1, self.fps)
        self._out.mux(self._v.encode(vf))
        self.frames += 1

    def add_audio(self, samples: np.ndarray) -> None:
        if self._a is None or samples.size == 0:
            return
        if self._v is None:  # muxing would write the header before the video stream exists
            self._early_audio.append(np.array(samples, np.float32))
            return
        x = _channels(np.asarray(samples, np.float32), self.channels)
        if self._resample is not None:
            import soxr

            if not hasattr(self, "_rs"):
                self._rs = soxr.ResampleStream(*self._resample, self.channels, dtype="float32", quality="HQ")
            x = self._rs.resample_chunk(x.reshape(-1, self.channels)).reshape(-1, self.channels)
            if x.size == 0:
                return
        pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)  # [N, channels]
        af = av.AudioFrame.from_ndarray(
            pcm.reshape(1, -1), format="s16", layout="stereo" if self.channels == 2 else "mono"
        )
        af.sample_rate, af.pts, af.time_base = self.sample_rate, self._apts, Fraction(1, self.sample_rate)
        self._apts += pcm.shape[0]
        self._out.mux(self._a.encode(af))

    def _finish(self) -> None:
        self._out.mux(self._v.encode())
        if self._a is not None:
            if getattr(self, "_rs", None) is not None:  # the resampler's tail
                tail = self._rs.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
                self._rs, self._resample = None, None
                if tail.size:
                    self.add_audio(tail.reshape(-1, self.channels))
            self._out.mux(self._a.encode())

    def _release(self) -> None:
        self._out.close()


OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def _channels(x: np.ndarray, channels: int) -> np.ndarray:
    """Audio [N] or [N, c] as [N, channels]: mono repeated, more than two channels mixed down to mono or stereo
    (left = the mean of the even channels, right = of the odd ones)."""
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(axis=1, keepdims=True)
    if x.shape[1] == 1:
        return np.repeat(x, 2, axis=1)
    return np.stack([x[:, 0::2].mean(axis=1), x[:, 1::2].mean(axis=1)], axis=1)


class Mp4Writer(VideoWriter):
    """Incremental H.264 + AAC MP4 writer (``VideoWriter`` in the MP4 format, whatever the suffix)."""

    def __init__(
        self, path: str | os.PathLike, fps: int = 25, sample_rate: int = 16_000, audio: bool = True, crf: int = 20
    ):
        super().__init__(path, fps, sample_rate, audio, crf, OUTPUT_FORMATS[".mp4"])


class PngSequenceWriter(_AtomicOutput):
    """Frames as ``frame_000000.png`` ... (RGB or RGBA) + ``audio.wav`` (16-bit PCM, written as it comes) +
    ``sequence.json`` in one directory, built in a temporary directory beside it and renamed into place."""

    def __init__(
        self, path: str | os.PathLike, fps: int = 25, sample_rate: int = 16_000, audio: bool = True, channels: int = 1
    ):
        self.path = Path(path)
        self.fps, self.sample_rate, self.channels = fps, sample_rate, 2 if channels >= 2 else 1
        self.input_rate = sample_rate
        self._ctx = atomic_dir(self.path, SEQUENCE_MANIFEST)
        self._tmp = self._ctx.__enter__()
        self._want_audio = audio
        self._wav = None
        self._shape: tuple[int, ...] | None = None

    def add_frame(self, img: np.ndarray) -> None:
        import cv2

        code = cv2.COLOR_RGBA2BGRA if img.ndim == 3 and img.shape[2] == 4 else cv2.COLOR_RGB2BGR
        ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(img), code), [cv2.IMWRITE_PNG_COMPRESSION, 3])
        (self._tmp / f"frame_{self.frames:06d}.png").write_bytes(png.tobytes())
        self._shape = self._shape or img.shape
        self.frames += 1

    def add_audio(self, samples: np.ndarray) -> None:
        if not self._want_audio or samples.size == 0:
            return
        if self._wav is None:
            import soundfile as sf

            self._wav = sf.SoundFile(
                str(self._tmp / "audio.wav"), "w", self.sample_rate, self.channels, subtype="PCM_16"
            )
        self._wav.write(np.clip(_channels(np.asarray(samples, np.float32), self.channels), -1, 1))

    def _release(self) -> None:
        if self._wav is not None:
            self._wav.close()

    def _finish(self) -> None:
        import json

        doc = {
            "format": "toonsync-png-sequence",
            "version": 1,
            "fps": self.fps,
            "frames": self.frames,
            "width": int(self._shape[1]),
            "height": int(self._shape[0]),
            "alpha": bool(len(self._shape) == 3 and self._shape[2] == 4),
            "pattern": "frame_%06d.png",
            "audio": None,
        }
        if self._wav is not None:
            doc["audio"] = "audio.wav"
        (self._tmp / SEQUENCE_MANIFEST).write_text(json.dumps(doc, indent=1))


def open_writer(
    path: str | os.PathLike,
    fps: int = 25,
    sample_rate: int = 16_000,
    audio: bool = True,
    alpha: bool = False,
    channels: int = 1,
) -> VideoWriter | PngSequenceWriter:
    """The writer for output ``path``: .mp4 / .webm / .mov (``VideoWriter``) or a PNG-sequence directory;
    ``alpha`` (RGBA frames) is refused with ``AlphaUnsupported`` for formats that cannot store it."""
    fmt = check_output(path, alpha)
    if fmt is None:
        return PngSequenceWriter(path, fps, sample_rate, audio, channels)
    return VideoWriter(path, fps, sample_rate, audio, fmt=fmt, channels=channels)


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    audio: np.ndarray | Iterable[np.ndarray] | None,
    fps: int = 25,
    sample_rate: int = 16_000,
    alpha: bool = False,
    channels: int = 1,
) -> Path:
    """Encode RGB (or, with ``alpha``, RGBA) uint8 frames + float32 audio ([N] or [N, channels]; an array, or
    its chunks in order) into ``path`` (any format of ``open_writer``), atomically. The audio keeps
    ``sample_rate`` and up to two channels (more are mixed to stereo; Opus stores 48 kHz for rates it lacks)."""
    return _write_all(open_writer(path, fps, sample_rate, audio is not None, alpha, channels), frames, audio)


def write_mp4(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    audio: np.ndarray | None,
    fps: int = 25,
    sample_rate: int = 16_000,
    crf: int = 20,
) -> Path:
    """Encode RGB uint8 frames + mono float32 audio into ``path`` (temp file + rename)."""
    return _write_all(Mp4Writer(path, fps, sample_rate, audio is not None, crf), frames, audio)


class _AudioFeed:
    """Audio given as one array or as chunks, handed out in runs of samples as the frames need them."""

    def __init__(self, audio: np.ndarray | Iterable[np.ndarray]):
        self._chunks = iter([audio] if isinstance(audio, np.ndarray) else audio)
        self._cur, self._pos = np.zeros(0, np.float32), 0  # samples along axis 0 ([N] or [N, channels])

    def take(self, n: int | None) -> np.ndarray:
        """The next ``n`` samples (all that are left with ``None``; fewer at the end)."""
        out: list[np.ndarray] = []
        while n is None or n > 0:
            if self._pos >= self._cur.shape[0]:
                nxt = next(self._chunks, None)
                if nxt is None:
                    break
                self._cur, self._pos = np.asarray(nxt, np.float32), 0
                continue
            left = self._cur.shape[0] - self._pos
            k = left if n is None else min(n, left)
            out.append(self._cur[self._pos : self._pos + k])
            self._pos += k
            n = None if n is None else n - k
        if len(out) == 1:
            return out[0]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def _write_all(
    w: VideoWriter | PngSequenceWriter, frames: Iterable[np.ndarray], audio: np.ndarray | Iterable[np.ndarray] | None
) -> Path:
    """Write ``frames`` and ``audio`` interleaved, each frame followed by its share of the audio: neither the
    muxer nor the audio held grows with the length of the clip."""
    feed = None if audio is None else _AudioFeed(audio)
    done = 0
    with w:
        for i, img in enumerate(frames):
            raise_if_interrupted()
            w.add_frame(img)
            if feed is not None:
                upto = (i + 1) * w.input_rate // w.fps
                w.add_audio(feed.take(upto - done))
                done = upto
        if feed is not None:
            w.add_audio(feed.take(None))
    return w.path


@dataclass
class VideoInfo:
    """What a written video holds: codecs, fps, frames, duration, size, whether it has alpha."""

    path: Path
    video_codec: str | None
    audio_codec: str | None
    fps: float
    width: int
    height: int
    frames: int
    duration_s: float
    audio_rate: int | None
    alpha: bool = False  # the video stream carries an alpha channel (WebM VP9 alpha, qtrle argb, RGBA PNGs)


def _has_alpha(stream) -> bool:
    if stream.metadata.get("alpha_mode") == "1":  # Matroska/WebM: VP8/VP9 alpha in BlockAdditional
        return True
    fmt = stream.codec_context.format
    return fmt is not None and len(fmt.components) in (2, 4)  # gray+alpha, colour+alpha


def _decode_video(c, stream) -> Iterator:
    """Video frames of ``stream``; VP8/VP9 with alpha go through libvpx (FFmpeg's native decoder drops alpha)."""
    name = stream.codec_context.name
    if name in ("vp8", "vp9") and stream.metadata.get("alpha_mode") == "1":
        ctx = av.CodecContext.create("libvpx-vp9" if name == "vp9" else "libvpx", "r")
        for pkt in c.demux(stream):
            if pkt.size:
                yield from ctx.decode(pkt)
        yield from ctx.decode(None)
        return
    yield from c.decode(stream)


def _sequence(path: Path) -> dict:
    import json

    try:
        doc = json.loads((path / SEQUENCE_MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(
            f"{path} is a directory but not a toonsync PNG sequence (no readable {SEQUENCE_MANIFEST}: {e})"
        ) from None
    return doc


def probe(path: str | os.PathLike) -> VideoInfo:
    """Codec, fps, size, frame count, duration and alpha of a media file or PNG-sequence directory (decodes
    the video stream to count frames)."""
    path = Path(path)
    if not path.exists():
        raise InputNotFound(f"video not found: {path}")
    if path.is_dir():
        d = _sequence(path)
        rate = None
        if d.get("audio"):
            import soundfile as sf

            rate = sf.info(str(path / d["audio"])).samplerate
        n = len(list(path.glob("frame_*.png")))
        return VideoInfo(
            path,
            "png",
            "pcm_s16le" if rate else None,
            float(d["fps"]),
            d["width"],
            d["height"],
            n,
            n / float(d["fps"]),
            rate,
            bool(d.get("alpha")),
        )
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0] if c.streams.video else None
            a = c.streams.audio[0] if c.streams.audio else None
            n = sum(1 for _ in _decode_video(c, v)) if v else 0
            dur = float(c.duration / av.time_base) if c.duration else 0.0
            return VideoInfo(
                path,
                v.codec_context.name if v else None,
                a.codec_context.name if a else None,
                float(v.average_rate) if v else 0.0,
                v.width if v else 0,
                v.height if v else 0,
                n,
                dur,
                a.rate if a else None,
                _has_alpha(v) if v else False,
            )
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: not a readable media file ({e})") from None


def read_video(
    path: str | os.PathLike, max_frames: int | None = None, rgba: bool = False
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Decode a video file or PNG-sequence directory -> (frames uint8 [T, H, W, 3] RGB — or [T, H, W, 4]
    RGBA with ``rgba``, alpha 255 where the file has none —, fps, audio mono float32 16 kHz or None)."""
    from .audio_io import to_mono_16k

    path = Path(path)
    if not path.exists():
        raise InputNotFound(f"video not found: {path}")
    if path.is_dir():
        return _read_sequence(path, max_frames, rgba)
    frames, chunks, rate = [], [], None
    fmt = "rgba" if rgba else "rgb24"
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise InputError(f"{path} has no video stream")
            v = c.streams.video[0]
            fps = float(v.average_rate or 25)
            for f in _decode_video(c, v):
                frames.append(f.to_ndarray(format=fmt))
                if max_frames and len(frames) >= max_frames:
                    break
        if path.suffix.lower() in (".mp4", ".mov", ".mkv", ".webm", ".avi"):
            with av.open(str(path)) as c:
                if c.streams.audio:
                    rate = c.streams.audio[0].rate
                    res = av.AudioResampler(format="flt", layout="mono", rate=rate)
                    for f in c.decode(audio=0):
                        for g in res.resample(f):
                            chunks.append(g.to_ndarray().reshape(-1))
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: cannot decode video ({e})") from None
    audio = to_mono_16k(np.concatenate(chunks), rate) if chunks else None
    return np.stack(frames), fps, audio


def _read_sequence(path: Path, max_frames: int | None, rgba: bool) -> tuple[np.ndarray, float, np.ndarray | None]:
    import cv2

    from .audio_io import load_audio

    d = _sequence(path)
    files = sorted(path.glob("frame_*.png"))[: max_frames or None]
    frames = []
    for f in files:
        im = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if im is None:
            raise InputError(f"{f}: not a readable PNG")
        if im.ndim == 3 and im.shape[2] == 4:
            im = cv2.cvtColor(im, cv2.COLOR_BGRA2RGBA if rgba else cv2.COLOR_BGRA2RGB)
        else:
            im = cv2.cvtColor(im, cv2.COLOR_BGR2RGBA if rgba else cv2.COLOR_BGR2RGB)
        frames.append(im)
    if not frames:
        raise InputError(f"{path}: PNG sequence has no frames")
    audio = load_audio(path / d["audio"]) if d.get("audio") else None
    return np.stack(frames), float(d["fps"]), audio
