"""Progress bars for long jobs: one line on stderr with the count, rate and time left, redrawn in place.

A bar draws only when stderr is a terminal and bars are enabled (``toonsync -q`` disables them with
``set_enabled(False)``; so does ``TOONSYNC_PROGRESS=0``); anywhere else it costs a counter increment. Library
code wraps its loops with ``Progress`` unconditionally and the caller's terminal decides.

    with Progress("drawing", total=n_frames, unit="frame") as bar:
        for frame in frames:
            ...
            bar.advance()
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")

_enabled = os.environ.get("TOONSYNC_PROGRESS", "1") != "0"


def enabled() -> bool:
    """Whether progress bars are on for this process (they still draw only on a terminal)."""
    return _enabled


def set_enabled(on: bool) -> None:
    """Turn progress bars on or off for this process (the CLI's ``-q`` turns them off)."""
    global _enabled
    _enabled = bool(on)


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """No bars inside this block (e.g. the per-file bars of a batch that has its own)."""
    global _enabled
    was, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = was


def active(stream: IO[str] | None = None) -> bool:
    """Whether a bar would be drawn on ``stream`` (default stderr): bars enabled and a terminal there.
    Code that uses another bar library (tqdm in training) asks this to stay quiet in the same cases."""
    stream = stream if stream is not None else sys.stderr
    try:
        return _enabled and stream.isatty()
    except (AttributeError, ValueError):  # closed or not a file
        return False


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """A progress bar over ``total`` units (or a running count when the total is unknown).

    ``stream`` defaults to stderr; the bar is drawn at most every ``interval`` seconds and once more, complete,
    when it closes. ``scale`` divides the counts shown (e.g. samples counted, seconds shown with ``scale=16000``).
    """

    def __init__(
        self,
        desc: str,
        total: float | None = None,
        unit: str = "it",
        *,
        scale: float = 1.0,
        stream: IO[str] | None = None,
        interval: float = 0.2,
    ):
        self.desc, self.total, self.unit, self.scale = desc, total, unit, scale
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.n = 0.0
        self.note = ""  # what is being done now, shown at the end of the line
        self.t0 = self._last = time.monotonic()
        self.shown = active(self.stream)
        self._width = 0

    def advance(self, n: float = 1, note: str | None = None) -> None:
        """Count ``n`` more units done (``note``: what comes next); redraw if the interval has passed."""
        self.n += n
        if note is not None:
            self.note = note
        if self.shown and (note is not None or time.monotonic() - self._last >= self.interval):
            self._draw()

    def line(self) -> str:
        """The bar's text now: ``desc  42% |#####     | 420/1000 frames  96 frames/s  0:06 left``."""
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        done = self.n / self.scale
        rate = done / elapsed
        fmt = (lambda v: f"{v:.1f}") if self.scale != 1.0 else (lambda v: f"{v:.0f}")
        if self.total:
            total = self.total / self.scale
            frac = min(1.0, self.n / self.total)
            bar = "#" * int(frac * 20)
            left = (total - done) / rate if rate > 0 else 0.0
            return (
                f"{self.desc} {frac * 100:3.0f}% |{bar:<20}| {fmt(done)}/{fmt(total)} {self.unit}  "
                f"{rate:.1f} {self.unit}/s  {_clock(left)} left"
            )
        return f"{self.desc} {fmt(done)} {self.unit}  {rate:.1f} {self.unit}/s  {_clock(elapsed)}"

    def _text(self) -> str:
        return self.line() + (f"  {self.note}" if self.note else "")

    def _draw(self, end: str = "") -> None:
        text = self._text()
        pad = max(0, self._width - len(text))
        self._width = len(text)
        try:
            self.stream.write("\r" + text + " " * pad + end)
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal must not stop the job
            self.shown = False
        self._last = time.monotonic()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.shown:
            self._draw("\n")
            self.shown = False

    def over(self, items: Iterable[T], note: Callable[[T], str] | None = None) -> Iterator[T]:
        """Yield ``items``, counting each one done when the next is asked for (``note(item)``: what is shown
        while it runs); the bar closes when the items end or the loop is left."""
        try:
            for x in items:
                if note is not None:
                    self.advance(0, note(x))
                yield x
                self.advance()
        finally:
            self.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_ahead(items: Iterable[T], depth: int = 6) -> Iterator[T]:
    """``items``, produced on a worker thread up to ``depth`` ahead of the consumer (so producing and consuming
    use two cores where both release the GIL). An exception in the producer is raised in the consumer; a
    consumer that stops early stops the producer within one item."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for x in items:
                while not stop.is_set():
                    try:
                        q.put((True, x), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((True, done))
        except BaseException as e:  # handed to the consumer, raised there
            q.put((False, e))

    t = threading.Thread(target=produce, name="toonsync-read-ahead", daemon=True)
    t.start()
    try:
        while True:
            ok, x = q.get()
            if not ok:
                raise x
            if x is done:
                return
            yield x
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
