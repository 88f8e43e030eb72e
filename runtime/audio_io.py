"""Audio input: WAV/FLAC (by content, not by name) -> mono float32 16 kHz in [-1, 1]."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from .errors import InvalidAudio, ToonsyncError, UnsupportedAudioFormat, check_input_file

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
ACCEPTED_AUDIO_FORMATS = ("WAV", "FLAC")
MAX_AUDIO_SECONDS = 3 * 3600
MAX_STDIN_BYTES = 2 << 30  # audio piped in is spooled to a temporary file up to this size

AudioLike = str | os.PathLike | np.ndarray


def _accepted() -> str:
    return "accepted audio formats: WAV (PCM 8/16/24/32-bit or float) and FLAC"


def sniff_audio(head: bytes) -> str:
    """Name the container from its first bytes; raise UnsupportedAudioFormat for anything but WAV/FLAC."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    known = {
        b"ID3": "MP3",
        b"\xff\xfb": "MP3",
        b"\xff\xf3": "MP3",
        b"\xff\xf2": "MP3",
        b"OggS": "Ogg",
        b"\x1aE\xdf\xa3": "Matroska/WebM",
        b"FORM": "AIFF",
        b"caff": "CAF",
    }
    for magic, name in known.items():
        if head.startswith(magic):
            raise UnsupportedAudioFormat(f"{name} audio is not supported; {_accepted()}")
    if len(head) >= 8 and head[4:8] == b"ftyp":
        raise UnsupportedAudioFormat(f"MP4/M4A audio is not supported; {_accepted()}")
    raise UnsupportedAudioFormat(f"not a WAV or FLAC file; {_accepted()}")


def check_audio_path(src: str | os.PathLike) -> Path:
    """Validate an audio path cheaply (exists, WAV/FLAC by content) before any work is done."""
    path = check_input_file(Path(src), "audio", UnsupportedAudioFormat, _accepted())
    with open(path, "rb") as f:
        head = f.read(64)
    try:
        sniff_audio(head)
    except UnsupportedAudioFormat as e:
        raise UnsupportedAudioFormat(f"{path}: {e}") from None
    return path


def to_mono_float(samples: np.ndarray) -> np.ndarray:
    """Any PCM array [N] or [N, channels] (int, uint or float) -> mono float32; NaN/inf refused."""
    a = np.asarray(samples)
    if a.dtype.kind == "i":
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)
    elif a.dtype.kind == "u":
        info = np.iinfo(a.dtype)
        a = (a.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
    elif a.dtype.kind != "f":
        raise InvalidAudio(f"audio array dtype {a.dtype} not understood; use float32 in [-1, 1] or int16")
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        # [N, channels]; [channels, N] only when it cannot be channels-last (a few channels, many samples)
        a = a.mean(axis=0) if a.shape[0] <= 8 < a.shape[1] else a.mean(axis=1)
    elif a.ndim != 1:
        raise InvalidAudio(f"audio array of shape {a.shape}; expected [N] or [N, channels]")
    if not np.isfinite(a).all():
        raise InvalidAudio("audio contains NaN or inf samples")
    return a


def _check_rate(sample_rate: int) -> int:
    try:
        ok = np.isfinite(float(sample_rate)) and 1000 <= int(sample_rate) <= 768_000
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InvalidAudio(f"sample rate {sample_rate} Hz is out of range (1 kHz .. 768 kHz)")
    return int(sample_rate)


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Downmix to mono, convert to float32 and resample to 16 kHz (soxr, high quality)."""
    a = to_mono_float(samples)
    if _check_rate(sample_rate) != SAMPLE_RATE and a.size:
        a = soxr.resample(a, int(sample_rate), SAMPLE_RATE, quality="HQ").astype(np.float32)
    return np.clip(a, -1.0, 1.0)


class StreamResampler:
    """Chunked conversion of any-rate PCM to mono float32 16 kHz (soxr streaming; rate changes restart it)."""

    def __init__(self) -> None:
        self._rate: int | None = None
        self._rs = None

    def __call__(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        a = to_mono_float(samples)
        rate = _check_rate(sample_rate)
        if rate == SAMPLE_RATE:
            return np.clip(a, -1.0, 1.0)
        if rate != self._rate:
            self._rate, self._rs = rate, soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        return np.clip(self._rs.resample_chunk(a), -1.0, 1.0)

    def flush(self) -> np.ndarray:
        if self._rs is None:
            return np.zeros(0, np.float32)
        out = self._rs.resample_chunk(np.zeros(0, np.float32), last=True)
        self._rate, self._rs = None, None
        return np.clip(out, -1.0, 1.0)


BLOCK_SECONDS = 10.0  # how much of a file is decoded at a time


def load_audio(src: AudioLike, sample_rate: int | None = None) -> np.ndarray:
    """Load WAV/FLAC (or take an array with its `sample_rate`) -> mono float32 16 kHz."""
    if isinstance(src, np.ndarray):
        return to_mono_16k(src, sample_rate or SAMPLE_RATE)
    return np.concatenate([np.zeros(0, np.float32), *iter_audio(src)])


def iter_audio(
    src: AudioLike, sample_rate: int | None = None, block_seconds: float = BLOCK_SECONDS
) -> Iterator[np.ndarray]:
    """``load_audio`` in blocks: mono float32 16 kHz chunks of about ``block_seconds``. A file is decoded block by
    block as the chunks are taken, so memory does not grow with its length (an hour of 48 kHz stereo is 1.3 GB
    as float32); the chunks joined equal ``load_audio``. Validation errors are raised before the first chunk."""
    if isinstance(src, np.ndarray):
        pcm = to_mono_16k(src, sample_rate or SAMPLE_RATE)
        step = max(1, int(block_seconds * SAMPLE_RATE))
        return iter([pcm[i : i + step] for i in range(0, pcm.size, step)])
    if not isinstance(src, (str, os.PathLike)):
        raise UnsupportedAudioFormat(f"expected an audio path or a numpy array, got {type(src).__name__}")
    path = check_audio_path(src)
    try:  # through a file object: any file name the OS accepts works (libsndfile wants UTF-8 names)
        with open(path, "rb") as fh:
            info = sf.info(fh)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise UnsupportedAudioFormat(f"{path}: cannot decode ({e}); {_accepted()}") from None
    if info.duration > MAX_AUDIO_SECONDS:
        raise InvalidAudio(f"{path}: {info.duration:.0f} s exceeds the {MAX_AUDIO_SECONDS} s cap")
    if info.frames == 0:
        raise InvalidAudio(f"{path}: contains no samples")
    log.debug("reading %s: %d Hz, %d ch, %.2f s", path, info.samplerate, info.channels, info.duration)
    return _blocks(path, max(1, int(block_seconds * info.samplerate)))


@contextlib.contextmanager
def spooled_stdin(stream: BinaryIO | None = None, max_bytes: int = MAX_STDIN_BYTES) -> Iterator[Path]:
    """Audio piped into standard input (``toonsync render face.jpg - ...``) as a temporary WAV/FLAC file, copied
    in blocks (so it can be read twice: for the motion and for the soundtrack) and removed afterwards."""
    stream = stream if stream is not None else sys.stdin.buffer
    if stream.isatty():
        raise UnsupportedAudioFormat(
            f"'-' reads audio from standard input, which is a terminal; pipe a file in ({_accepted()})"
        )
    with tempfile.TemporaryDirectory(prefix="toonsync-stdin-") as d:
        head = stream.read(64)
        if not head:
            raise InvalidAudio("standard input is empty: pipe a WAV or FLAC file into it")
        try:
            kind = sniff_audio(head)
        except UnsupportedAudioFormat as e:
            raise UnsupportedAudioFormat(f"standard input: {e}") from None
        path = Path(d) / f"stdin.{kind.lower()}"
        size = len(head)
        with open(path, "wb") as f:
            f.write(head)
            while block := stream.read(1 << 20):
                size += len(block)
                if size > max_bytes:
                    raise InvalidAudio(f"standard input passed the {max_bytes >> 20} MiB cap for piped audio")
                f.write(block)
        log.debug("spooled %d bytes of %s from standard input", size, kind)
        yield path


def audio_seconds(src: str | os.PathLike) -> float:
    """A WAV/FLAC file's duration in seconds, from its header."""
    path = check_audio_path(src)
    try:
        with open(path, "rb") as fh:
            info = sf.info(fh)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise UnsupportedAudioFormat(f"{path}: cannot decode ({e}); {_accepted()}") from None
    return info.frames / info.samplerate


def stored_audio(src: str | os.PathLike, block_seconds: float = BLOCK_SECONDS) -> tuple[int, int, Iterator[np.ndarray]]:
    """A WAV/FLAC file as it is stored, for an output's soundtrack: (sample rate, channels, float32 blocks
    [N, channels] in -1..1, decoded as they are taken). Validate it with ``iter_audio`` first."""
    path = check_audio_path(src)
    with open(path, "rb") as fh:
        info = sf.info(fh)

    def blocks() -> Iterator[np.ndarray]:
        with open(path, "rb") as fh, sf.SoundFile(fh) as f:
            while True:
                b = f.read(max(1, int(block_seconds * f.samplerate)), dtype="float32", always_2d=True)
                if b.shape[0] == 0:
                    return
                if not np.isfinite(b).all():
                    raise InvalidAudio(f"{path}: audio contains NaN or inf samples")
                yield np.clip(b, -1.0, 1.0)

    return int(info.samplerate), int(info.channels), blocks()


def _blocks(path: Path, frames: int) -> Iterator[np.ndarray]:
    rs = StreamResampler()
    got = 0
    try:
        with open(path, "rb") as fh, sf.SoundFile(fh) as f:
            while True:
                block = f.read(frames, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                got += block.shape[0]
                out = rs(block, f.samplerate)
                if out.size:
                    yield out
    except ToonsyncError:  # our own verdict on the samples (NaN, rate): as it is
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise UnsupportedAudioFormat(f"{path}: cannot decode ({e}); {_accepted()}") from None
    if got == 0:
        raise InvalidAudio(f"{path}: contains no samples")
    tail = rs.flush()
    if tail.size:
        yield tail
