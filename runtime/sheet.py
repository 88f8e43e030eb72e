"""Contact sheet: a grid of evenly spaced frames of a video, labelled with their times."""
from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np

from .atomic import atomic_path


def contact_sheet(video: str | os.PathLike, out: str | os.PathLike, cols: int = 6, rows: int = 2,
                  thumb: int = 160) -> Path:
    """Write a PNG grid of ``cols * rows`` frames from ``video``."""
    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        fps = float(c.streams.video[0].average_rate or 25)
    n = cols * rows
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    sheet = np.full((rows * (thumb + 18), cols * thumb, 3), 255, np.uint8)
    for k, i in enumerate(idx):
        r, col = divmod(k, cols)
        im = cv2.resize(frames[i], (thumb, thumb), interpolation=cv2.INTER_AREA)
        y = r * (thumb + 18)
        sheet[y : y + thumb, col * thumb : (col + 1) * thumb] = im
        cv2.putText(sheet, f"{i / fps:.2f}s", (col * thumb + 4, y + thumb + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (40, 40, 40), 1, cv2.LINE_AA)
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        tmp.write_bytes(png.tobytes())
    return out
