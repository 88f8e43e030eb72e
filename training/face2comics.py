"""Face2Comics loader (Sxela's paired face -> comic dataset) for the pix2pix stylizer.

Real layouts (Kaggle "Comic faces (paired synthetic)" by Sxela, v1 and v2, and the GitHub releases
of github.com/Sxela/face2comics)::

    comic-faces-paired-synthetic-v2/                 # the Kaggle download, unzipped
      face2comics_v2.0.0_by_Sxela/
        face2comics_v2.0.0_by_Sxela/
          faces/0.jpg 1.jpg ... 9999.jpg           # photos (v2: 1024 x 1024)
          comics/0.jpg 1.jpg ... 9999.jpg          # the comic version of the photo with the same name
    comic-faces-paired-synthetic/                    # v1 (512 x 512): the photo folder is ``face``
      face2comics_v1.0.0_by_Sxela/face2comics_v1.0.0_by_Sxela/{face,comics}/N.jpg

``--data`` may point at any of these levels: the loader descends through single ``face2comics*``
(or otherwise lone) sub-folders until it finds a photo folder (``faces`` or ``face``) beside a
``comics`` folder. Pairs are matched by file stem (``faces/17.jpg`` <-> ``comics/17.jpg``; the
extensions may differ: .jpg .jpeg .png .webp .bmp). Files present on one side only are an error
that names a few of them (``UnpairedFilesError``), unless ``allow_unpaired`` is set, in which case
they are skipped with a warning. The split is deterministic and independent of which other files
exist: a pair is held out when ``crc32(stem) % 1000 < 1000 * val_fraction`` (at least one pair: the
last one, when the hash holds out none or all).

Images are decoded with OpenCV (reduced-resolution JPEG decoding when the file is at least twice
the needed size), converted to RGB, resized to ``load_size`` (pix2pix: 286 for 256), then —
training only — randomly cropped to ``size`` and flipped left-right, *the same crop and flip for
the face and its comic*; evaluation takes the centre crop. No Face2Comics copy is on the build
machine; the tests use ``tests/data/face2comics_tiny`` (made by ``tests/data/make_face2comics_tiny.py``).
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toonsync.runtime.errors import InputError, InputNotFound

log = logging.getLogger(__name__)

FACE_DIRS = ("faces", "face")  # v2, v1
COMIC_DIRS = ("comics",)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MAX_DESCENT = 4


class Face2ComicsError(InputError):
    """A Face2Comics folder is not in the expected layout."""


class Face2ComicsNotFound(Face2ComicsError, InputNotFound):
    """The given Face2Comics path does not exist."""


class UnpairedFilesError(Face2ComicsError):
    """Photos without a comic (or comics without a photo) of the same file stem."""


@dataclass(frozen=True)
class Pair:
    """One Face2Comics training pair: a face photo and its comic."""

    stem: str
    face: Path
    comic: Path


def _images(d: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(d.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."):
            if p.stem in out:
                raise Face2ComicsError(f"{d} has two images with the stem {p.stem!r}: {out[p.stem].name}, {p.name}")
            out[p.stem] = p
    return out


def find_layout(root: str | Path) -> tuple[Path, Path]:
    """``root`` (any level of the download) -> (photo folder, comic folder)."""
    root = Path(root)
    if not root.exists():
        raise Face2ComicsNotFound(f"Face2Comics folder {root} does not exist")
    if not root.is_dir():
        raise Face2ComicsError(f"Face2Comics path {root} is a file; give the folder holding faces/ and comics/")
    d = root
    for _ in range(MAX_DESCENT + 1):
        faces = next((d / n for n in FACE_DIRS if (d / n).is_dir()), None)
        comics = next((d / n for n in COMIC_DIRS if (d / n).is_dir()), None)
        if faces and comics:
            return faces, comics
        if faces or comics:
            missing = "comics/" if faces else "faces/ (v2) or face/ (v1)"
            raise Face2ComicsError(
                f"{d} has {(faces or comics).name}/ but no {missing}: a Face2Comics copy "
                "holds both the photos and the comics"
            )
        subs = [p for p in sorted(d.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        named = [p for p in subs if p.name.lower().startswith("face2comics")]
        nxt = named[0] if len(named) == 1 else subs[0] if len(subs) == 1 else None
        if nxt is None:
            break
        d = nxt
    raise Face2ComicsError(
        f"no Face2Comics layout under {root}: expected faces/ (v2) or face/ (v1) beside comics/, "
        "e.g. face2comics_v2.0.0_by_Sxela/face2comics_v2.0.0_by_Sxela/{faces,comics}/0.jpg"
    )


def find_pairs(root: str | Path, allow_unpaired: bool = False) -> list[Pair]:
    """Every (photo, comic) pair under ``root``, sorted by stem (numerically where stems are numbers)."""
    faces_dir, comics_dir = find_layout(root)
    faces, comics = _images(faces_dir), _images(comics_dir)
    only_f, only_c = sorted(set(faces) - set(comics)), sorted(set(comics) - set(faces))
    if only_f or only_c:
        msg = "; ".join(
            f"{len(names)} in {d.name}/ only (e.g. {', '.join(names[:4])})"
            for names, d in ((only_f, faces_dir), (only_c, comics_dir))
            if names
        )
        if not allow_unpaired:
            raise UnpairedFilesError(
                f"unpaired Face2Comics files under {faces_dir.parent}: {msg}; every photo needs "
                "a comic with the same file name (pass allow_unpaired to skip them)"
            )
        log.warning("Face2Comics: skipping unpaired files: %s", msg)
    stems = sorted(set(faces) & set(comics), key=lambda s: (0, int(s), s) if s.isdigit() else (1, 0, s))
    if not stems:
        raise Face2ComicsError(f"no image pairs in {faces_dir} and {comics_dir} (accepted: {', '.join(IMAGE_EXTS)})")
    return [Pair(s, faces[s], comics[s]) for s in stems]


def is_held_out(stem: str, val_fraction: float) -> bool:
    return zlib.crc32(stem.encode()) % 1000 < round(1000 * val_fraction)


def read_rgb(path: Path, min_side: int) -> np.ndarray:
    """Decode ``path`` to RGB uint8, letting libjpeg downscale by 2/4/8 when the result stays >= ``min_side``."""
    flags = cv2.IMREAD_COLOR
    if path.suffix.lower() in (".jpg", ".jpeg"):
        head = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)  # cheap probe of the size
        if head is not None:
            for factor, flag in ((4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)):
                if min(head.shape[:2]) * 8 // factor >= min_side:
                    flags = flag
                    break
    img = cv2.imread(str(path), flags)
    if img is None:
        raise Face2ComicsError(f"cannot decode {path} (accepted: {', '.join(IMAGE_EXTS)})")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class Face2Comics:
    """Paired (photo, comic) images as float32 ``[B, 3, size, size]`` tensors-to-be in [-1, 1]."""

    def __init__(
        self,
        root: str | Path,
        size: int = 256,
        load_size: int | None = None,
        val_fraction: float = 0.1,
        allow_unpaired: bool = False,
        cache: bool | None = None,
    ):
        self.root = Path(root)
        self.size = int(size)
        self.load_size = int(load_size or round(size * 286 / 256))
        if self.load_size < self.size:
            raise Face2ComicsError(f"load_size {self.load_size} is smaller than the crop size {self.size}")
        self.pairs = find_pairs(root, allow_unpaired)
        self.train = [p for p in self.pairs if not is_held_out(p.stem, val_fraction)]
        self.val = [p for p in self.pairs if is_held_out(p.stem, val_fraction)]
        if not self.train or not self.val:  # tiny copies: the last pair is held out (the report needs one)
            self.train, self.val = self.pairs[:-1], self.pairs[-1:]
        if not self.train:
            raise Face2ComicsError(f"{root}: one pair is not enough to train and evaluate")
        # decoded images are kept in memory when the copy is small (about 2 x load_size^2 x 3 bytes a pair)
        self.cache = len(self.pairs) * 2 * self.load_size**2 * 3 < 1 << 30 if cache is None else cache
        self._mem: dict[Path, np.ndarray] = {}
        log.info(
            "Face2Comics: %d pairs (train %d, held out %d) in %s",
            len(self.pairs),
            len(self.train),
            len(self.val),
            self.root,
        )

    def load(self, path: Path) -> np.ndarray:
        """RGB uint8 ``[load_size, load_size, 3]``."""
        img = self._mem.get(path)
        if img is None:
            img = read_rgb(path, self.load_size)
            img = cv2.resize(
                img,
                (self.load_size, self.load_size),
                interpolation=cv2.INTER_AREA if img.shape[0] > self.load_size else cv2.INTER_CUBIC,
            )
            if self.cache:
                self._mem[path] = img
        return img

    def example(self, pair: Pair, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """(photo, comic) float32 ``[3, size, size]`` in [-1, 1]; ``rng``: random crop + flip, None: centre crop."""
        m = self.load_size - self.size
        if rng is None:
            y = x = m // 2
            flip = False
        else:
            y, x = (int(v) for v in rng.integers(0, m + 1, 2))
            flip = bool(rng.random() < 0.5)
        out = []
        for path in (pair.face, pair.comic):
            img = self.load(path)[y : y + self.size, x : x + self.size]
            if flip:
                img = img[:, ::-1]
            out.append(np.ascontiguousarray(img.transpose(2, 0, 1), np.float32) / 127.5 - 1.0)
        return out[0], out[1]

    def batch(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random augmented training pairs (drawn with replacement from one generator)."""
        idx = rng.integers(0, len(self.train), n)
        ex = [self.example(self.train[i], rng) for i in idx]
        return np.stack([e[0] for e in ex]), np.stack([e[1] for e in ex])

    def held_out(self) -> tuple[np.ndarray, np.ndarray]:
        """All held-out pairs, centre-cropped, not flipped."""
        ex = [self.example(p, None) for p in self.val]
        return np.stack([e[0] for e in ex]), np.stack([e[1] for e in ex])
