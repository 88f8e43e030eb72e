"""Atomic file output: write to a temporary file in the same directory, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

_INTERRUPTED: dict[str, int | None] = {"signal": None}


def interrupted() -> int | None:
    """The signal (SIGINT, SIGTERM) that interrupted the work under ``catch_interrupts``, or None."""
    return _INTERRUPTED["signal"]


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if the work was interrupted, even if that interrupt was swallowed on its way up
    (one that lands inside a C library's callback can only be printed there, not raised)."""
    if _INTERRUPTED["signal"] is not None:
        raise KeyboardInterrupt


def _on_signal(signum: int, frame) -> None:
    _INTERRUPTED["signal"] = signum
    raise KeyboardInterrupt


@contextlib.contextmanager
def catch_interrupts() -> Iterator[None]:
    """While active (main thread only), Ctrl-C and SIGTERM raise KeyboardInterrupt and are remembered: outputs
    check ``raise_if_interrupted`` before they are renamed into place and between frames, so an interrupted
    command never leaves a finished-looking file and stops promptly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _INTERRUPTED["signal"] = None
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s, h in old.items():
        if h is not signal.SIG_IGN:
            signal.signal(s, _on_signal)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def check_not_input(out: str | os.PathLike | None, *inputs: object) -> None:
    """``OutputError`` when the output ``out`` is one of the ``inputs`` (the same path, a link to it, or the same
    file by another name): writing it would destroy the input. Inputs that are not paths are ignored."""
    from .errors import OutputError

    if out is None:
        return
    o = Path(out)
    for src in inputs:
        if not isinstance(src, (str, os.PathLike)):
            continue
        p = Path(src)
        same = p.resolve() == o.resolve()
        if not same and p.exists() and o.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(p, o)
        if same:
            raise OutputError(f"output {o} is also an input ({p}); choose another file name")


def check_writable(dest: str | os.PathLike) -> Path:
    """Create the parent directory if needed and make sure a file can be written there; else OutputError."""
    from .errors import OutputError

    dest = Path(dest)
    if dest.is_dir():
        raise OutputError(f"cannot write {dest}: it is a directory; give a file name")
    return _check_parent(dest)


def _check_parent(dest: Path) -> Path:
    from .errors import OutputError

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write {dest}: cannot create {dest.parent} ({e.strerror})") from None
    if not os.access(dest.parent, os.W_OK):
        raise OutputError(f"cannot write {dest}: {dest.parent} is not writable")
    return dest


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it over ``dest``, on error delete it.

    A crash or Ctrl-C leaves either the old ``dest`` or nothing, never a half-written file.
    """
    dest = Path(dest)
    check_writable(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or (dest.suffix or ".tmp"), dir=dest.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        raise_if_interrupted()
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def check_dir_writable(dest: str | os.PathLike, marker: str) -> Path:
    """An output directory can be (re)written: it is new, empty, or an earlier output of the same kind
    (holds ``marker``), and its parent is writable; else OutputError."""
    from .errors import OutputError

    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"cannot write directory {dest}: a file of that name exists")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / marker).is_file():
        raise OutputError(
            f"cannot write {dest}: it is a directory holding other files; give a new or empty "
            f"directory (an earlier output with {marker} is replaced)"
        )
    return _check_parent(dest)


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike, marker: str) -> Iterator[Path]:
    """Yield a temporary directory next to ``dest``; on success it replaces ``dest`` (see
    ``check_dir_writable``), on error it is deleted: ``dest`` is always complete or untouched."""
    dest = check_dir_writable(dest, marker)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
        raise_if_interrupted()
        if dest.exists():  # swap: old aside, new in, old removed
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", suffix=".tmp", dir=dest.parent))
            os.replace(dest, old / dest.name)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
