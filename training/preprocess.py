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
from toonsync.runtime.mel import FPS, log_mel

from .dataset import Clip, write_clips

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")
AUDIO_SUFFIXES = (".wav", ".flac")


def landmarks_per_frame(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[T, H, W, 3] -> landmarks [T, 68, 2] (0..1 of the frame size; NaN where no face), pose [T, 3]."""
    t, h, w = frames.shape[:3]
    lms = np.full((t, 68, 2), np.nan, np.float32)
    pose = np.full((t, 3), np.nan, np.float32)
    for i, f in enumerate(frames):
        faces = detect_faces(f)
        if faces:
            lms[i] = faces[0].landmarks / np.array([w, h], np.float32)
            pose[i] = faces[0].pose
    return lms, pose


def preprocess_file(path: str | os.PathLike, frame_size: int | None = 256, max_frames: int | None = None) -> Clip:
    """One video (frames resampled to 25 fps, optionally resized) or audio file -> Clip."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in AUDIO_SUFFIXES:
        audio = load_audio(path)
        return Clip(path.stem, audio=audio, mel=log_mel(audio), attrs={"source": path.name})
    if suffix not in VIDEO_SUFFIXES:
        raise InputError(
            f"{path.name}: cannot preprocess {suffix or 'this'} files; accepted: "
            + ", ".join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)
        )
    from toonsync.runtime.video import read_video

    frames, fps, audio = read_video(path, max_frames)
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
    clip = Clip(path.stem, frames=frames, landmarks=lms, pose=pose, attrs={"source": path.name})
    if audio is not None:
        clip.audio, clip.mel = audio, log_mel(audio)
    found = int(np.isfinite(lms[:, 0, 0]).sum())
    log.info(
        "%s: %d frames, face in %d, audio %s",
        path.name,
        len(frames),
        found,
        f"{audio.size / 16000:.2f}s" if audio is not None else "none",
    )
    return clip


def preprocess(paths: list[str | os.PathLike], out: str | os.PathLike, frame_size: int | None = 256) -> int:
    """Preprocess files into one HDF5 clip store (atomic); returns the clip count."""
    return write_clips(out, (preprocess_file(p, frame_size) for p in paths))
