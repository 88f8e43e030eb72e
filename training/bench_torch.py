"""Torch-eager baseline for ``toonsync bench`` (kept out of runtime/, which never imports torch)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .train_audio2motion import load_checkpoint

CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "audio2motion.pt"


def audio2motion_per_frame_ms(mel4: np.ndarray, n: int = 200, threads: int | None = None) -> list[float]:
    """Latency of one 40 ms streaming step of the shipped checkpoint in torch eager (state carried)."""
    if threads:
        torch.set_num_threads(threads)
    model = load_checkpoint(CHECKPOINT)
    x = torch.from_numpy(mel4)[None]
    state = model.initial_state(1)
    out = []
    with torch.inference_mode():
        for i in range(n + 10):
            t = time.perf_counter()
            _, _, _, *state = model(x, *state)
            if i >= 10:
                out.append((time.perf_counter() - t) * 1e3)
    return out
