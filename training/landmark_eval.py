"""How well the shipped landmark model finds drawn faces: ``toonsync eval landmarks``.

Everything runs through the runtime as a user's drawing does (``runtime.anime_landmarks.fit_drawing_landmarks``:
the search over the whole picture, then the refinement), on three sets:

- ``synthetic``: ``scenes`` pictures never trained on (seed stream ``[seed, 7919, 1]``): a character of either
  kind (``training.anime_synth``) placed at a random size (its face 12-45 % of the picture's side), position and
  roll (within 20 degrees) in a 512 x 384 picture over a random backdrop;
- ``bundled``: ``tests/data/drawn_character.png``, a drawing in a style of its own (its generator,
  ``tests/data/make_drawn_character.py``, is not the training data's), all 68 points known;
- ``real``: the hand-labelled drawings of ``tests/data/drawings_labelled.json`` (Debian's Ren'Py packages), on
  the points labelled there; skipped with the reason when the packages are not installed.

Per set: NME (mean point error over the outer-eye-corner distance, points 36 and 45), the share of faces found
(NME under ``FOUND``: the points are on the face), the model's confidence, and the cost per picture.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import cv2
import numpy as np

from toonsync.runtime.anime_landmarks import fit_drawing_landmarks
from toonsync.runtime.image_io import load_image

from .anime_synth import avatar_character, background, degrade, flat_character

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
FOUND = 0.25  # NME under this: the fitted points are on the face


def _nme(pred: np.ndarray, true: np.ndarray, idx) -> float:
    return float(np.linalg.norm(pred[idx] - true[idx], axis=1).mean() / np.linalg.norm(true[36] - true[45]))


def scene(rng: np.random.Generator, kind: str, w: int = 512, h: int = 384) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic picture with one character, and its 68 points in the picture's pixels."""
    ch = avatar_character(rng) if kind == "avatar" else flat_character(rng)
    lo, hi = ch.points.min(0), ch.points.max(0)
    face = float((hi - lo).max())
    s = rng.uniform(0.12, 0.45) * min(w, h) / face
    ang = rng.uniform(-20, 20)
    cx, cy = 0.5 * (lo + hi)
    M = cv2.getRotationMatrix2D((float(cx), float(cy)), ang, s)
    M[:, 2] += [rng.uniform(0.3, 0.7) * w - cx, rng.uniform(0.3, 0.7) * h - cy]
    fg = cv2.warpAffine(ch.rgba, M, (w, h), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR).astype(np.float32)
    a = fg[..., 3:4] / 255.0
    bg = cv2.resize(background(rng, 128), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    img = degrade((fg[..., :3] * a + bg * (1 - a)).astype(np.uint8), rng)
    return img, (ch.points @ M[:, :2].T + M[:, 2]).astype(np.float32)


def _score(items, idx_of) -> dict:
    errs, confs, ms, per = [], [], [], []
    for name, img, true in items:
        t0 = time.perf_counter()
        try:
            fit = fit_drawing_landmarks(img)
            err, conf = _nme(fit.points, true, idx_of(name)), fit.confidence
        except Exception as e:  # noqa: BLE001  (a miss is a result here, not a failure)
            err, conf = math.inf, 0.0
            per.append({"name": name, "error": type(e).__name__})
        ms.append(1000 * (time.perf_counter() - t0))
        errs.append(err), confs.append(conf)
        per.append({"name": name, "nme": round(err, 4) if np.isfinite(err) else None, "confidence": round(conf, 3)})
    e = np.asarray(errs)
    found = e < FOUND
    return {
        "pictures": len(e),
        "found": round(float(found.mean()), 4),
        "nme_found_mean": round(float(e[found].mean()), 4) if found.any() else None,
        "nme_found_median": round(float(np.median(e[found])), 4) if found.any() else None,
        "confidence_median": round(float(np.median(confs)), 3),
        "ms_per_picture_p50": round(float(np.median(ms)), 1),
        "per_picture": per if len(per) <= 20 else None,
    }


def evaluate_landmarks(scenes: int = 60, seed: int = 0) -> dict:
    """The figures of the module doc."""
    rng = np.random.default_rng([seed, 7919, 1])
    out: dict = {"schema": "toonsync-landmark-eval/1", "found_below_nme": FOUND}
    for kind in ("avatar", "flat"):
        items = [(f"{kind}-{i}", *scene(rng, kind)) for i in range(scenes // 2)]
        out[f"synthetic_{kind}"] = _score(items, lambda n: slice(None))
    true = np.asarray(json.loads((DATA / "drawn_character.json").read_text())["landmarks"], np.float32)
    out["bundled"] = _score(
        [("drawn_character.png", load_image(DATA / "drawn_character.png"), true)], lambda n: slice(None)
    )
    doc = json.loads((DATA / "drawings_labelled.json").read_text())
    real, idx = [], {}
    for d in doc["drawings"]:
        if not Path(d["file"]).is_file():
            continue
        k = [int(i) for i in d["points"]]
        t = np.zeros((68, 2), np.float32)
        t[k] = np.asarray(list(d["points"].values()), np.float32)
        name = Path(d["file"]).name
        real.append((name, load_image(d["file"]), t)), idx.__setitem__(name, k)
    out["real"] = (
        _score(real, lambda n: idx[n]) | {"points": "36 39 42 45 30 48 54 8 (labelled by hand)"}
        if real
        else {"skipped": "apt-get install renpy-demo renpy-thequestion (Debian) for the real drawings"}
    )
    return out


def points_sheet(path: Path, tile: int = 256) -> Path:
    """The README picture: each drawing (the bundled one, the real ones when installed) with its fitted points
    (``runtime.anime_landmarks.preview``) above the drawn avatar made from them without a landmarks file,
    speaking an open vowel with the head turned a little (``prepare.avatar_from_drawing``, ``Avatar.renderer``)."""
    from toonsync.runtime.anime_landmarks import preview
    from toonsync.runtime.atomic import atomic_path
    from toonsync.runtime.mouth import apply_mouth
    from toonsync.runtime.prepare import avatar_from_drawing

    files = [DATA / "drawn_character.png"]
    doc = json.loads((DATA / "drawings_labelled.json").read_text())
    files += [Path(d["file"]) for d in doc["drawings"] if Path(d["file"]).is_file()]
    cols = []
    for f in files:
        img = load_image(f)
        av = avatar_from_drawing(img)
        top = preview(img, av.source_landmarks, side=tile)
        talk = av.renderer(tile).draw(apply_mouth(av.neutral, np.array([0.9, 0.0, 0.0], np.float32)), (0.12, 0.04, 0))
        cols.append(np.vstack([top, talk]))
    sheet = np.hstack(cols)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    with atomic_path(path) as tmp:
        tmp.write_bytes(png.tobytes())
    return Path(path)
