"""Documentation figures: photo | avatar | mouth shapes from real speech | a blink | an emotion | a head turn
(``toonsync sheet``; docs/side_by_side.png)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toonsync.runtime.assets import DEMO_SPEECH, asset
from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.image_io import load_image
from toonsync.runtime.mel import FPS
from toonsync.runtime.motion import POSE_LIMIT, emotion_vector
from toonsync.runtime.motion_io import viseme_classes
from toonsync.runtime.pipeline import Animator
from toonsync.runtime.prepare import load_face
from toonsync.runtime.sheet import label as put_label
from toonsync.runtime.sheet import write_png

log = logging.getLogger(__name__)


# mouth shapes shown, in order of preference: (viseme letter, label)
_SHOW_VISEMES = (
    ("D", "wide open"),
    ("F", "rounded"),
    ("E", "rounded"),
    ("A", "closed"),
    ("G", "F/V lip"),
    ("C", "open"),
    ("B", "teeth"),
)


def _pick_mouths(mouth: np.ndarray, n: int = 3, gap: int = 5) -> list[tuple[int, str]]:
    """``n`` frames of real speech with different mouth shapes (Rhubarb visemes): the most pronounced frame
    of each of the first ``n`` shapes present (frames at least ``gap`` apart)."""
    vis = viseme_classes(mouth)
    strength = {
        "D": mouth[:, 0],
        "C": mouth[:, 0],
        "B": mouth[:, 0],
        "F": -mouth[:, 1],
        "E": -mouth[:, 1],
        "G": mouth[:, 2],
        "A": -mouth[:, 0],
    }
    picked: list[tuple[int, str]] = []
    shown: set[str] = set()
    for letter, label in _SHOW_VISEMES:
        if len(picked) == n:
            break
        idx = [i for i in np.flatnonzero(vis == letter) if all(abs(i - j) >= gap for j, _ in picked)]
        if idx and label not in shown:
            i = max(idx, key=lambda k: strength[letter][k])
            picked.append((int(i), f"{label} '{letter}'"))
            shown.add(label)
    return sorted(picked)


def side_by_side(face: Any, out: str | os.PathLike, audio: Any = None, tile: int = 192, seed: int = 0) -> Path:
    """The figure photo | avatar | 4 mouth shapes from speech | a blink | each emotion | a head turn | a nod.

    ``face``: a photo (shown in the first tile; this figure is documentation — rendered videos never
    contain photo pixels); ``audio``: the speech for the mouth shapes (default: the bundled demo speech).
    """

    tile -= tile % 2
    photo = load_image(face)
    avatar = load_face(photo)
    r = avatar.renderer(tile)
    N = avatar.neutral
    motion = Animator().animate(load_audio(asset(DEMO_SPEECH) if audio is None else audio), N, seed=seed)
    tiles = [("photo", _photo_tile(photo, avatar.meta.get("face_box"), tile)), ("avatar", r.draw(N))]
    for i, label in _pick_mouths(motion.mouth, n=4):
        tiles.append((f"{label} {i / FPS:.2f}s", r.draw(motion.landmarks[i])))
    tiles.append(("blink", r.draw(N, blink=1.0)))
    for name in ("happy", "sad", "angry", "fearful", "disgusted"):  # neutral is the avatar itself
        tiles.append((name, r.draw(N, emotion=emotion_vector(name))))
    turn, nod = (float(POSE_LIMIT[0]), 0.02, 0.04), (0.0, float(POSE_LIMIT[1]), 0.0)  # the largest a stream shows
    tiles += [("head turn", r.draw(N, pose=turn)), ("nod", r.draw(N, pose=nod))]
    lab_h, gapw = 22, 6
    sheet = np.full((tile + lab_h, len(tiles) * tile + 2 * gapw, 3), 255, np.uint8)
    x = 0
    for k, (label, im) in enumerate(tiles):
        x += gapw if k in (1, 2) else 0  # a gap after the photo and after the neutral avatar
        sheet[:tile, x : x + tile] = im
        put_label(sheet, label, x + 4, tile + 15)
        x += tile
    log.info("side by side: %s", ", ".join(t[0] for t in tiles))
    return write_png(sheet, out)


def _photo_tile(photo: np.ndarray, box, tile: int) -> np.ndarray:
    """A square crop of the photo around the face (its box grown 80%), resized to ``tile``."""
    h, w = photo.shape[:2]
    if box:
        x0, y0, x1, y1 = box
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0), 1.8 * max(x1 - x0, y1 - y0)
    else:
        cx, cy, side = w / 2, h / 2, min(h, w)
    side = min(side, h, w)
    xa = int(np.clip(cx - side / 2, 0, w - side))
    ya = int(np.clip(cy - side / 2, 0, h - side))
    crop = photo[ya : ya + int(side), xa : xa + int(side)]
    return cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA)


def mouth_strip(face: Any, audio: Any, out: str | os.PathLike, frames: int = 20, tile: int = 96) -> Path:
    """The drawn mouth over a stretch of speech: ``frames`` consecutive 25 fps frames from the loudest part of
    ``audio``, each a crop around the mouth of the avatar of ``face``, labelled with its time (PNG)."""
    avatar = load_face(face)
    r = avatar.renderer(256)
    pcm = load_audio(audio)
    motion = Animator().animate(pcm, avatar.neutral)
    n = motion.n_frames
    frames = min(frames, n)
    opening = np.convolve(motion.mouth[:, 0], np.ones(frames), "valid")
    start = int(np.argmax(opening)) if opening.size else 0
    tiles = []
    for k in range(start, start + frames):
        lm, pose, emo = motion.landmarks[k], motion.pose[k], motion.emotion[k]
        im = r.draw(lm, pose, float(motion.blink[k]), emo)
        mouth = r.posed_landmarks(lm, pose, emo)[48:68].mean(0) * 256  # follows the head as it moves
        x0, y0 = (int(np.clip(v - 48, 0, 256 - 96)) for v in mouth)
        crop = cv2.resize(im[y0 : y0 + 96, x0 : x0 + 96], (tile, tile), interpolation=cv2.INTER_AREA)
        tiles.append(crop)
    lab_h = 18
    sheet = np.full((tile + lab_h, frames * tile, 3), 255, np.uint8)
    for i, im in enumerate(tiles):
        sheet[:tile, i * tile : (i + 1) * tile] = im
        put_label(sheet, f"{(start + i) / FPS:.2f}", i * tile + 4, tile + 13)
    return write_png(sheet, out)
