"""Progress bars: drawn on a terminal with count, rate and time left; silent off a terminal and with -q."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

import pytest

from toonsync.runtime import progress
from toonsync.runtime.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal_counts_to_the_total():
    out = _Tty()
    with Progress("drawing", 50, "frames", stream=out, interval=0.0) as bar:
        for _ in range(50):
            bar.advance()
    text = out.getvalue()
    assert text.startswith("\rdrawing ") and text.endswith("\n")
    last = text.rstrip("\n").split("\r")[-1]
    assert "100%" in last and "50/50 frames" in last and "frames/s" in last and "left" in last
    assert text.count("\r") == 51  # one redraw per advance (interval 0) and the closing one


def test_bar_without_total_and_with_scale_and_notes():
    out = _Tty()
    with Progress("listening", None, "s of audio", scale=16000, stream=out, interval=0.0) as bar:
        bar.advance(16000)
        bar.advance(8000)
    last = out.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("listening 1.5 s of audio ") and "s of audio/s" in last
    out = _Tty()
    steps = Progress("bench", 2, "cases", stream=out, interval=0.0)
    assert list(steps.over(["a", "b"], note=lambda n: f"case {n}")) == ["a", "b"]
    lines = out.getvalue().rstrip("\n").split("\r")
    assert any(" 50% " in ln and ln.rstrip().endswith("case b") for ln in lines) and "2/2 cases" in lines[-1]


def test_no_bar_off_a_terminal_or_when_disabled():
    plain = io.StringIO()
    with Progress("x", 3, stream=plain, interval=0.0) as bar:
        bar.advance(3)
    assert plain.getvalue() == "" and bar.n == 3
    tty = _Tty()
    progress.set_enabled(False)
    try:
        with Progress("x", 3, stream=tty, interval=0.0) as bar:
            bar.advance(3)
    finally:
        progress.set_enabled(True)
    assert tty.getvalue() == ""


def _render_stderr(tmp_path, frontal_face, speech_wav, *flags: str, tty: bool) -> str:
    """``toonsync render`` in a child whose stderr is a pseudo-terminal (or a pipe): what it wrote there."""
    cmd = [sys.executable, "-m", "toonsync", "render", str(frontal_face), str(speech_wav), "-o"]
    cmd += [str(tmp_path / f"o{len(flags)}{tty}.mp4"), "--size", "64", *flags]
    env = {**os.environ, "TOONSYNC_PROGRESS": "1"}
    if not tty:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=True)
        return r.stderr
    master, slave = pty.openpty()
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env) as p:
        os.close(slave)
        chunks = []
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not b:
                break
            chunks.append(b)
        assert p.wait(timeout=300) == 0
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_render_shows_bars_on_a_terminal_only(tmp_path, frontal_face, speech_wav):
    on_tty = _render_stderr(tmp_path, frontal_face, speech_wav, tty=True)
    assert "listening 100%" in on_tty and "drawing 100%" in on_tty and "frames/s" in on_tty
    assert "\r" in on_tty and "wrote " in on_tty
    quiet = _render_stderr(tmp_path, frontal_face, speech_wav, "-q", tty=True)
    assert "drawing" not in quiet and "\r" not in quiet.replace("\r\n", "\n")
    piped = _render_stderr(tmp_path, frontal_face, speech_wav, tty=False)
    assert "\r" not in piped and "drawing" not in piped and "wrote " in piped


def test_read_ahead_keeps_order_raises_and_stops_early():
    import threading

    from toonsync.runtime.progress import read_ahead

    assert list(read_ahead(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("bad frame")

    got = []
    with pytest.raises(ValueError, match="bad frame"):
        for x in read_ahead(failing()):
            got.append(x)
    assert got == [1]

    made = []

    def endless():
        i = 0
        while True:
            made.append(i)
            yield i
            i += 1

    it = read_ahead(endless(), depth=4)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # the consumer stops: the producer thread ends, having made only a few items more
    assert not [t for t in threading.enumerate() if t.name == "toonsync-read-ahead"]
    assert len(made) <= 3 + 4 + 2
