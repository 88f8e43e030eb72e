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


@contextlib.contextmanager
def finishing_after_interrupt() -> Iterator[None]:
    """Inside, an interrupt that has already ended the work does not stop outputs from being renamed into
    place: a live recording ends with Ctrl-C and is kept. A new interrupt inside still aborts it."""
    sig = _INTERRUPTED["signal"]
    _INTERRUPTED["signal"] = None
    try:
        yield
    finally:
        if _INTERRUPTED["signal"] is None:
            _INTERRUPTED["signal"] = sig


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


def check_folder_exists(dest: str | os.PathLike) -> Path:
    """``OutputError`` unless the folder an output file goes into exists: like cp or ffmpeg, an output named by
    the user never makes folders silently (a typo in a path would scatter files)."""
    from .errors import OutputError

    dest = Path(dest)
    folder = dest.parent if str(dest.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write {dest}: the folder {folder} does not exist; create it first")
    return dest


def _check_parent(dest: Path) -> Path:
    from .errors import OutputError

    # nothing is created here (a check must leave no trace when the work then fails): the nearest existing
    # ancestor must be a writable directory; the missing ones are made when the output is written
    anc = dest.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        raise OutputError(f"cannot write {dest}: {anc} is not a directory")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {dest}: {anc} is not writable")
    return dest


def _make_parents(dest: Path) -> list[Path]:
    """Create ``dest``'s missing parent directories; returns those created (deepest last)."""
    from .errors import OutputError

    missing = []
    p = dest.parent
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        for d in reversed(missing):
            d.mkdir()
    except FileExistsError:
        pass
    except OSError as e:
        raise OutputError(f"cannot write {dest}: cannot create {dest.parent} ({e.strerror})") from None
    return list(reversed(missing))


def _remove_made(made: list[Path]) -> None:
    """Remove the directories ``_make_parents`` created, deepest first, as long as they are empty."""
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            return


def _prefix(dest: Path) -> str:
    """Temporary outputs are named ``.NAME.PID.xxxxxxxx…``: the writer's process id says when one is stale."""
    return f".{dest.name}.{os.getpid()}."


def sweep_stale(dest: str | os.PathLike) -> list[Path]:
    """Remove the temporary outputs for ``dest`` that a killed process left (SIGKILL, power loss: no cleanup
    ran); ours by name (``.NAME.PID.…``) and only when that process no longer exists. Returns what was removed."""
    dest = Path(dest)
    removed = []
    with contextlib.suppress(OSError):
        for p in dest.parent.glob(f".{_glob_escape(dest.name)}.*"):
            pid = p.name[len(dest.name) + 2 :].split(".", 1)[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
                removed.append(p)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or not ours to signal: alive as far as we know
        return True
    return True


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it over ``dest``, on error delete it.

    A crash or Ctrl-C leaves either the old ``dest`` or nothing, never a half-written file.
    """
    dest = Path(dest)
    check_writable(dest)
    made = _make_parents(dest)
    sweep_stale(dest)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_prefix(dest), suffix=suffix or (dest.suffix or ".tmp"), dir=dest.parent)
    except BaseException:
        _remove_made(made)
        raise
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
        _remove_made(made)  # a failed write leaves no directory it made either
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
    made = _make_parents(dest)
    sweep_stale(dest)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(dest), suffix=".tmp", dir=dest.parent))
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
        _remove_made(made)
        raise
