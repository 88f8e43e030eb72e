"""Make ``tests/data/face2comics_tiny``: 8 photo/comic pairs at 64 x 64 in Face2Comics v2's real layout.

    python tests/data/make_face2comics_tiny.py

Photos: the two public-domain photos the repository ships (``runtime/assets/demo_face.jpg`` and
``tests/data/grace_hopper.jpg``, U.S. Navy portrait), each aligned to the avatar's canonical frame
(``runtime.stylizer.align_face``). Comics: this project's procedural avatar of the same photo
(``runtime.avatar``), drawn in the same frame. Each of the 4 pairs per photo gets one random
similarity jitter (scale +-8 %, rotation +-6 deg, shift +-4 px) and a random left-right flip,
applied identically to the photo and the comic (Face2Comics pairs are pixel-aligned), plus a colour
jitter of the photo only (brightness, contrast, saturation). Deterministic (seed 0). Layout::

    face2comics_tiny/face2comics_v2.0.0_by_Sxela/face2comics_v2.0.0_by_Sxela/{faces,comics}/{0..7}.jpg
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from toonsync.runtime.avatar import AvatarRenderer, canonical_landmarks, style_from_photo  # noqa: E402
from toonsync.runtime.face import detect_face  # noqa: E402
from toonsync.runtime.image_io import load_image  # noqa: E402
from toonsync.runtime.stylizer import align_face  # noqa: E402

SIZE = 64
PER_PHOTO = 4
PHOTOS = (REPO / "runtime" / "assets" / "demo_face.jpg", HERE / "grace_hopper.jpg")
OUT = HERE / "face2comics_tiny"
LAYOUT = ("face2comics_v2.0.0_by_Sxela", "face2comics_v2.0.0_by_Sxela")


def jitter(img: np.ndarray, M: np.ndarray, flip: bool) -> np.ndarray:
    out = cv2.warpAffine(img, M, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out[:, ::-1] if flip else out


def colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    x = x * rng.uniform(0.85, 1.15)  # brightness
    x = (x - x.mean()) * rng.uniform(0.85, 1.15) + x.mean()  # contrast
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = grey[..., None] + (x - grey[..., None]) * rng.uniform(0.8, 1.2)  # saturation
    return np.clip(x, 0, 255).astype(np.uint8)


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path.write_bytes(buf.tobytes())


def main() -> None:
    rng = np.random.default_rng(0)
    root = OUT.joinpath(*LAYOUT)
    n = 0
    for photo in PHOTOS:
        image = load_image(photo)
        lm = detect_face(image).landmarks
        face, _ = align_face(image, lm, SIZE)
        avatar = AvatarRenderer(style_from_photo(image, lm), canonical_landmarks(lm, SIZE), SIZE)
        comic = avatar.draw(avatar.neutral)
        for _ in range(PER_PHOTO):
            ang, scale = rng.uniform(-6, 6), rng.uniform(0.92, 1.08)
            M = cv2.getRotationMatrix2D((SIZE / 2, SIZE / 2), ang, scale)
            M[:, 2] += rng.uniform(-4, 4, 2)
            flip = bool(rng.random() < 0.5)
            write_jpeg(root / "faces" / f"{n}.jpg", colour_jitter(jitter(face, M, flip), rng))
            write_jpeg(root / "comics" / f"{n}.jpg", jitter(comic, M, flip))
            n += 1
    (OUT / "README.json").write_text(json.dumps({
        "what": "tiny Face2Comics-layout fixture (v2 folder names), 64x64 JPEG pairs matched by file name",
        "faces": "aligned crops of runtime/assets/demo_face.jpg (0-3) and tests/data/grace_hopper.jpg (4-7), "
                 "public-domain photos, with geometric + colour jitter",
        "comics": "toonsync's procedural avatar of the same photo (runtime.avatar), same geometric jitter",
        "made_by": "python tests/data/make_face2comics_tiny.py (seed 0)"}, indent=1) + "\n")
    print(f"wrote {n} pairs under {root}")


if __name__ == "__main__":
    main()
