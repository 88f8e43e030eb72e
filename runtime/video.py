"""MP4 output (H.264 + AAC via PyAV), written atomically; MP4/video input for preprocessing."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

from .atomic import atomic_path
from .errors import InputError, InputNotFound

log = logging.getLogger(__name__)


class Mp4Writer:
    """Incremental H.264 + AAC MP4 writer: ``add_frame`` / ``add_audio`` in any order, ``close`` renames
    the finished file into place; ``abort`` (or an exception inside ``with``) leaves nothing behind."""

    def __init__(self, path: str | os.PathLike, fps: int = 25, sample_rate: int = 16_000, audio: bool = True,
                 crf: int = 20):
        self.path = Path(path)
        self.fps, self.sample_rate, self.crf = fps, sample_rate, crf
        self._ctx = atomic_path(self.path, suffix=".mp4")
        self._tmp = self._ctx.__enter__()
        self._out = av.open(str(self._tmp), mode="w", format="mp4")
        self._v = None
        self._a = None
        if audio:
            self._a = self._out.add_stream("aac", rate=sample_rate, layout="mono")
            self._a.bit_rate = 64_000
        self._apts = 0
        self.frames = 0
        self._closed = False

    def add_frame(self, img: np.ndarray) -> None:
        if self._v is None:
            h, w = img.shape[:2]
            self._v = self._out.add_stream("libx264", rate=Fraction(self.fps, 1))
            self._v.width, self._v.height, self._v.pix_fmt = w, h, "yuv420p"
            self._v.options = {"crf": str(self.crf), "preset": "veryfast", "tune": "animation"}
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        vf.pts = self.frames
        vf.time_base = Fraction(1, self.fps)
        self._out.mux(self._v.encode(vf))
        self.frames += 1

    def add_audio(self, samples: np.ndarray) -> None:
        if self._a is None or samples.size == 0:
            return
        pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype(np.int16)
        af = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
        af.sample_rate, af.pts, af.time_base = self.sample_rate, self._apts, Fraction(1, self.sample_rate)
        self._apts += pcm.size
        self._out.mux(self._a.encode(af))

    def close(self) -> Path:
        if self._closed:
            return self.path
        self._closed = True
        try:
            if self._v is None:
                raise InputError("no frames to write")
            self._out.mux(self._v.encode())
            if self._a is not None:
                self._out.mux(self._a.encode())
            self._out.close()
        except BaseException as e:
            self._out.close()
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.close()
            err = RuntimeError("aborted")
            try:
                self._ctx.__exit__(RuntimeError, err, None)
            except RuntimeError:
                pass

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], audio: np.ndarray | None, fps: int = 25,
              sample_rate: int = 16_000, crf: int = 20) -> Path:
    """Encode RGB uint8 frames + mono float32 audio into ``path`` (temp file + rename)."""
    with Mp4Writer(path, fps, sample_rate, audio is not None, crf) as w:
        for img in frames:
            w.add_frame(img)
        if audio is not None:
            w.add_audio(audio)
    return w.path


@dataclass
class VideoInfo:
    path: Path
    video_codec: str | None
    audio_codec: str | None
    fps: float
    width: int
    height: int
    frames: int
    duration_s: float
    audio_rate: int | None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Codec, fps, size, frame count and duration of a media file (decodes the video stream to count frames)."""
    path = Path(path)
    if not path.exists():
        raise InputNotFound(f"video not found: {path}")
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0] if c.streams.video else None
            a = c.streams.audio[0] if c.streams.audio else None
            n = sum(1 for _ in c.decode(video=0)) if v else 0
            dur = float(c.duration / av.time_base) if c.duration else 0.0
            return VideoInfo(path, v.codec_context.name if v else None, a.codec_context.name if a else None,
                             float(v.average_rate) if v else 0.0, v.width if v else 0, v.height if v else 0, n, dur,
                             a.rate if a else None)
    except av.error.FFmpegError as e:
        raise InputError(f"{path}: not a readable media file ({e})") from None


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Decode a video file -> (frames uint8 [T, H, W, 3] RGB, fps, audio mono float32 16 kHz or None)."""
    from .audio_io import to_mono_16k

    path = Path(path)
    if not path.exists():
        raise InputNotFound(f"video not found: {path}")
    frames, chunks, rate = [], [], None
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise InputError(f"{path} has no video stream")
            fps = float(c.streams.video[0].average_rate or 25)
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24"))
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
