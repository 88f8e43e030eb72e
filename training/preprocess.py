"""Preprocessing: video/audio files -> HDF5 clips with frames, 68 landmarks, pose, log-mel."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.errors import InputError
from toonsync.runtime.face import detect_faces
from toonsync.runtime.mel import FPS, SAMPLE_RATE, log_mel
from toonsync.runtime.progress import Progress

from .dataset import Clip, write_clips

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
AUDIO_SUFFIXES = (".wav", ".flac")


def landmarks_per_frame(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[T, H, W, 3] -> landmarks [T, 68, 2] (0..1 of the frame size; NaN where no face), pose [T, 3]."""
    t, h, w = frames.shape[:3]
    lms = np.full((t, 68, 2), np.nan, np.float32)
    pose = np.full((t, 3), np.nan, np.float32)
    with Progress("landmarks", t, "frames") as bar:
        for i, f in enumerate(frames):
            faces = detect_faces(f)
            if faces:
                lms[i] = faces[0].landmarks / np.array([w, h], np.float32)
                pose[i] = faces[0].pose
            bar.advance()
    return lms, pose


def preprocess_file(
    path: str | os.PathLike,
    frame_size: int | None = 256,
    max_frames: int | None = None,
    audio_path: str | os.PathLike | None = None,
) -> Clip:
    """One video (frames resampled to 25 fps, optionally resized) or audio file -> Clip.

    ``audio_path``: a WAV/FLAC that is the video's soundtrack (it replaces the video's own track, if any)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        audio = load_audio(path)
        return Clip(path.stem, audio=audio, mel=log_mel(audio), attrs={"source": path.name})
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(f"{path.name}: cannot preprocess {suffix or 'this'} files; {_accepted()}")
    from toonsync.runtime.video import read_video

    frames, fps, audio = read_video(path, max_frames)
    attrs = {"source": path.name}
    if audio_path is not None:
        audio = load_audio(audio_path)
        attrs["audio_source"] = Path(audio_path).name
        video_s, audio_s = len(frames) / fps, audio.size / SAMPLE_RATE
        if abs(video_s - audio_s) > 0.5:
            log.warning(
                "%s is %.1f s but its audio %s is %.1f s: the shorter one sets how much of the clip lines up",
                path.name,
                video_s,
                Path(audio_path).name,
                audio_s,
            )
    if abs(fps - FPS) > 0.01:  # nearest-frame resampling to 25 fps
        n = int(round(len(frames) * FPS / fps))
        frames = frames[np.minimum((np.arange(n) * fps / FPS).round().astype(int), len(frames) - 1)]
    lms, pose = landmarks_per_frame(frames)
    if frame_size:
        h, w = frames.shape[1:3]
        s = frame_size / max(h, w)
        if s < 1:
            frames = np.stack(
                [cv2.resize(f, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) for f in frames]
            )
    clip = Clip(path.stem, frames=frames, landmarks=lms, pose=pose, attrs=attrs)
    if audio is not None:
        clip.audio, clip.mel = audio, log_mel(audio)
    found = int(np.isfinite(lms[:, 0, 0]).sum())
    log.info(
        "%s: %d frames, face in %d, audio %s",
        path.name,
        len(frames),
        found,
        f"{audio.size / SAMPLE_RATE:.2f} s ({attrs.get('audio_source', 'its own track')})"
        if audio is not None
        else "none",
    )
    return clip


def _accepted() -> str:
    return "accepted: " + ", ".join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)


def pair_inputs(paths: list[str | os.PathLike]) -> list[tuple[Path, Path | None]]:
    """The clips a list of files makes: (video, its audio file or None) and (audio, None) for speech alone.

    An audio file pairs with the video of the same name stem (``talk.mp4`` + ``talk.wav``); one video and one
    audio file given together pair whatever their names. Audio files are clips of their own only when no
    video is given. Anything else is ambiguous and refused, naming the files."""
    files = [Path(p) for p in paths]
    for f in files:
        if f.suffix.lower() not in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
            raise InputError(f"{f.name}: cannot preprocess {f.suffix or 'this'} files; {_accepted()}")
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    audios = [f for f in files if f.suffix.lower() in AUDIO_SUFFIXES]
    if not videos:
        return [(a, None) for a in audios]
    if len(videos) == 1 and len(audios) == 1:
        return [(videos[0], audios[0])]
    by_stem: dict[str, Path] = {}
    for a in audios:
        if a.stem in by_stem:
            raise InputError(f"two audio files named {a.stem}: {by_stem[a.stem]} and {a}")
        by_stem[a.stem] = a
    pairs = [(v, by_stem.pop(v.stem, None)) for v in videos]
    if by_stem:
        raise InputError(
            "audio files with no video of the same name: "
            + ", ".join(str(a) for a in by_stem.values())
            + " (name a video's soundtrack like the video, e.g. talk.mp4 + talk.wav, or preprocess speech alone "
            "in a separate run)"
        )
    return pairs


def preprocess(paths: list[str | os.PathLike], out: str | os.PathLike, frame_size: int | None = 256) -> int:
    """Preprocess files into one HDF5 clip store (atomic); returns the clip count. Videos and audio files are
    paired by ``pair_inputs``; a video with no audio file keeps its own soundtrack, if it has one."""
    pairs = pair_inputs(paths)
    with Progress("preprocess", len(pairs), "files") as bar:

        def clips():
            for src, audio in pairs:
                yield preprocess_file(src, frame_size, audio_path=audio)
                bar.advance()

        return write_clips(out, clips())
