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
from toonsync.runtime.motion import emotion_vector
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
    ("G", "F/V lip"),
    ("C", "open"),
    ("B", "teeth"),
    ("A", "closed"),
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
    """The figure photo | avatar | 3 mouth shapes from real speech | a blink | happy | a head turn, labelled.

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
    for i, label in _pick_mouths(motion.mouth):
        tiles.append((f"{label} {i / FPS:.2f}s", r.draw(motion.landmarks[i])))
    tiles += [
        ("blink", r.draw(N, blink=1.0)),
        ("happy", r.draw(N, emotion=emotion_vector("happy"))),
        ("head turn", r.draw(N, pose=(0.5, 0.05, 0.08))),
    ]
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
