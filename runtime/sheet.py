"""Contact sheets: a PNG grid of evenly spaced frames of a rendered video (``toonsync render --sheet``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from .atomic import atomic_path
from .background import preview

log = logging.getLogger(__name__)


def write_png(img: np.ndarray, out: str | os.PathLike) -> Path:
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        tmp.write_bytes(png.tobytes())
    return out


def label(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.4) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (40, 40, 40), 1, cv2.LINE_AA)


def contact_sheet(
    video: str | os.PathLike, out: str | os.PathLike, cols: int = 6, rows: int = 2, thumb: int = 160
) -> Path:
    """Write a PNG grid of ``cols * rows`` frames from ``video`` (any format ``read_video`` reads; frames
    with alpha are shown over a checkerboard)."""
    from .video import read_video

    frames, fps, _audio = read_video(video, rgba=True)
    n = cols * rows
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    sheet = np.full((rows * (thumb + 18), cols * thumb, 3), 255, np.uint8)
    for k, i in enumerate(idx):
        r, col = divmod(k, cols)
        im = cv2.resize(preview(frames[i]), (thumb, thumb), interpolation=cv2.INTER_AREA)
        y = r * (thumb + 18)
        sheet[y : y + thumb, col * thumb : (col + 1) * thumb] = im
        label(sheet, f"{i / fps:.2f}s", col * thumb + 4, y + thumb + 13)
    return write_png(sheet, out)
