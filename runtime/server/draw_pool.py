"""Drawing and JPEG encoding in worker processes (the GIL would cap one process at about a core)."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


# -- drawing: a process pool (the GIL would cap one process at ~1 core) -------------------------
@dataclass(frozen=True)
class Look:
    """What draws an avatar's frames, in a form a worker process can rebuild (no photo pixels)."""

    key: str
    style: dict
    neutral: np.ndarray
    size: int
    base: np.ndarray | None = None  # a drawn character's own framed drawing (animated by the warp renderer)


def make_look(avatar: Any, size: int) -> Look:
    """The drawing recipe of ``avatar`` at ``size`` (style, neutral landmarks, and a drawn character's framed
    drawing), keyed by their hash."""
    import hashlib

    style = avatar.style.to_dict()
    neutral = np.ascontiguousarray(avatar.neutral, np.float32)
    base = None if avatar.base is None else np.ascontiguousarray(avatar.base)
    h = hashlib.sha1(json.dumps(style, sort_keys=True, default=str).encode() + neutral.tobytes() + str(size).encode())
    if base is not None:
        h.update(base.tobytes())
    return Look(h.hexdigest()[:16], style, neutral, int(size), base)


_RENDERERS: collections.OrderedDict[str, Any] = collections.OrderedDict()
_RENDERERS_LOCK = threading.Lock()


def draw_batch(look: Look, quality: int, frames: list[tuple]) -> list[bytes]:
    """Draw + JPEG-encode frames ``(landmarks, pose, blink, emotion)``; runs in a worker process (or a
    thread). Renderers are cached per look; ``AvatarRenderer.draw`` is a pure function of its inputs."""
    import cv2

    from ..avatar import AvatarStyle
    from ..prepare import Avatar

    with _RENDERERS_LOCK:
        r = _RENDERERS.get(look.key)
        if r is None:  # the procedural avatar, or a drawn character's warp renderer (Avatar.renderer picks)
            r = Avatar(AvatarStyle.from_dict(look.style), look.neutral, base=look.base).renderer(look.size)
            _RENDERERS[look.key] = r
            while len(_RENDERERS) > 16:
                _RENDERERS.popitem(last=False)
        else:
            _RENDERERS.move_to_end(look.key)
    q = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    out = []
    for landmarks, pose, blink, emotion in frames:
        img = r.draw(landmarks, pose, blink, emotion)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), q)
        out.append(jpg.tobytes())
    return out


def _worker_init(parent: int) -> None:
    """Drawing processes leave when their server dies, even by SIGKILL (they would block forever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="toonsync-parent-watch", daemon=True).start()


class Drawer:
    """Draws frames in ``processes`` worker processes (spawned once), or in the thread pool when 0."""

    def __init__(self, processes: int, quality: int, threads: ThreadPoolExecutor):
        self.processes, self.quality, self.threads = int(processes), int(quality), threads
        self.pool = None
        self.broken = 0
        if self.processes > 0:
            self._start()

    def _start(self) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(
            self.processes, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(os.getpid(),)
        )

    def warm(self, look: Look, timeout_s: float = 60.0) -> None:
        """Start every worker and build the default renderer there before the first client comes."""
        if self.pool is None:
            return
        frame = (look.neutral, np.zeros(3, np.float32), 0.0, None)
        futs = [self.pool.submit(draw_batch, look, self.quality, [frame]) for _ in range(self.processes)]
        for f in futs:
            f.result(timeout=timeout_s)

    async def draw(self, look: Look, frames: list[tuple]) -> list[bytes]:
        from concurrent.futures.process import BrokenProcessPool

        loop = asyncio.get_running_loop()
        if self.pool is not None:
            try:
                return await loop.run_in_executor(self.pool, draw_batch, look, self.quality, frames)
            except BrokenProcessPool:  # a worker died (killed, out of memory): restart the pool once per event
                self.broken += 1
                log.error("a drawing process died; restarting the pool (%d so far)", self.broken)
                old, self.pool = self.pool, None
                old.shutdown(wait=False, cancel_futures=True)
                if self.broken <= 5:
                    self._start()
        return await loop.run_in_executor(self.threads, draw_batch, look, self.quality, frames)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)  # joins the workers (they finish <= 1 batch)
            self.pool = None
