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


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], audio: np.ndarray | None, fps: int = 25,
              sample_rate: int = 16_000, crf: int = 20) -> Path:
    """Encode RGB uint8 frames + mono float32 audio into ``path`` (temp file + rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            vs = None
            astream = None
            if audio is not None:
                astream = out.add_stream("aac", rate=sample_rate, layout="mono")
                astream.bit_rate = 64_000
            for img in frames:
                if vs is None:
                    h, w = img.shape[:2]
                    vs = out.add_stream("libx264", rate=Fraction(fps, 1))
                    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
                    vs.options = {"crf": str(crf), "preset": "veryfast", "tune": "animation"}
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                for pkt in vs.encode(vf):
                    out.mux(pkt)
            if vs is None:
                raise InputError("no frames to write")
            for pkt in vs.encode():
                out.mux(pkt)
            if astream is not None:
                a = np.clip(np.asarray(audio, np.float32), -1, 1)
                pcm = (a * 32767).astype(np.int16)
                step = 1024 * 16
                for i in range(0, pcm.size, step):
                    af = av.AudioFrame.from_ndarray(pcm[None, i : i + step], format="s16", layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = i
                    af.time_base = Fraction(1, sample_rate)
                    for pkt in astream.encode(af):
                        out.mux(pkt)
                for pkt in astream.encode():
                    out.mux(pkt)
    return path


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
