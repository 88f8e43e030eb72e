"""Make tests/data/drawn_character.png + drawn_character.json: a drawn character for the drawn-avatar tests.

A chibi-style face drawn with OpenCV primitives in a style unlike toonsync's procedural avatar (thick
black outlines, flat colours, dot-highlight oval eyes, a purple spiky fringe, mint background with
stars), with its 68 landmarks (iBUG 300-W order, pixel coordinates) taken from the same geometry that
draws it. Deterministic: ``python tests/data/make_drawn_character.py`` rewrites both files identically.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

W, H = 360, 400
FACE_C, FACE_AX = (180.0, 210.0), (105.0, 120.0)
EYE_Y, EYE_DX, EYE_HW, EYE_HH = 205.0, 45.0, 22.0, 28.0
MOUTH_Y, MOUTH_HW, MOUTH_SMILE = 278.0, 20.0, 5.0
INK = (30, 20, 40)
SHIFT = 4  # sub-pixel drawing precision


def _p(pts) -> np.ndarray:
    return np.round(np.asarray(pts, np.float64) * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def landmarks() -> np.ndarray:
    """The 68 points of the drawing."""
    cx, cy = FACE_C
    a, b = FACE_AX
    t = math.pi + 0.15 - np.arange(17) * (math.pi + 0.3) / 16  # left side, under the chin, right side
    jaw = np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)
    brows = []
    for sx in (-1, 1):
        xs = cx + sx * EYE_DX + np.linspace(-26, 26, 5)
        ys = EYE_Y - 50 - 6 * (1 - ((xs - (cx + sx * EYE_DX)) / 26) ** 2)
        brows.append(np.stack([xs, ys], 1))
    nose = [(cx, EYE_Y - 5), (cx, EYE_Y + 12), (cx, EYE_Y + 28), (cx, EYE_Y + 42)]
    nose += [(cx + dx, EYE_Y + 48 - abs(dx) * 0.2) for dx in (-12, -6, 0, 6, 12)]
    u = 8.0
    v = EYE_HH * math.sqrt(1 - (u / EYE_HW) ** 2)
    eyes = []
    for ex in (cx - EYE_DX, cx + EYE_DX):  # iBUG order: from the image-left corner, clockwise (36-41, 42-47)
        eyes.append([(ex - EYE_HW, EYE_Y), (ex - u, EYE_Y - v), (ex + u, EYE_Y - v), (ex + EYE_HW, EYE_Y),
                     (ex + u, EYE_Y + v), (ex - u, EYE_Y + v)])

    def lip(x: float) -> float:
        return MOUTH_Y + MOUTH_SMILE * (1 - ((x - cx) / MOUTH_HW) ** 2)

    xs_o = cx + MOUTH_HW * np.array([-1, -0.6, -0.25, 0, 0.25, 0.6, 1])
    upper = [(x, lip(x) - 3 * (1 - abs((x - cx) / MOUTH_HW))) for x in xs_o]  # 48..54
    lower = [(x, lip(x) + 4 * (1 - abs((x - cx) / MOUTH_HW))) for x in xs_o[::-1][1:-1]]  # 55..59
    xs_i = cx + 0.85 * MOUTH_HW * np.array([-1, -0.4, 0, 0.4, 1])
    inner_up = [(x, lip(x)) for x in xs_i]  # 60..64
    inner_lo = [(x, lip(x)) for x in xs_i[::-1][1:-1]]  # 65..67 (closed mouth: the inner lips meet)
    pts = np.concatenate([jaw, brows[0], brows[1], np.array(nose), np.array(eyes[0]), np.array(eyes[1]),
                          np.array(upper), np.array(lower), np.array(inner_up), np.array(inner_lo)])
    assert pts.shape == (68, 2)
    return pts


def draw(L: np.ndarray) -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[:] = (200, 236, 222)  # mint
    rng = np.random.default_rng(7)
    for _ in range(9):  # stars
        c = rng.uniform([15, 15], [W - 15, 120])
        r = rng.uniform(6, 11)
        ang = np.arange(10) * math.pi / 5 - math.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        star = c + np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
        cv2.fillPoly(img, [_p(star)], (250, 214, 70), cv2.LINE_AA, SHIFT)
    cx, cy = FACE_C
    hair = (150, 90, 200)
    cv2.ellipse(img, (int(cx), int(cy - 25)), (135, 150), 0, 180, 360, hair, -1, cv2.LINE_AA)  # back hair
    cv2.rectangle(img, (int(cx - 135), int(cy - 25)), (int(cx + 135), int(cy + 95)), hair, -1)
    face_axes = (int(FACE_AX[0]), int(FACE_AX[1]))
    cv2.ellipse(img, (int(cx), int(cy)), face_axes, 0, 0, 360, (255, 226, 196), -1, cv2.LINE_AA)
    cv2.ellipse(img, (int(cx), int(cy)), face_axes, 0, 0, 360, INK, 4, cv2.LINE_AA)
    spikes = [(cx - 125, cy - 60)]  # fringe: a zig-zag of spikes over the forehead
    for k, x in enumerate(np.linspace(cx - 110, cx + 110, 9)):
        spikes.append((x, cy - 95 if k % 2 == 0 else cy - 60))
    spikes += [(cx + 125, cy - 60), (cx + 140, cy - 150), (cx, cy - 175), (cx - 140, cy - 150)]
    cv2.fillPoly(img, [_p(spikes)], hair, cv2.LINE_AA, SHIFT)
    cv2.polylines(img, [_p(spikes)], True, INK, 3, cv2.LINE_AA, SHIFT)
    for ex in (cx - EYE_DX, cx + EYE_DX):  # oval eyes: white, navy iris, dot highlights, thick outline
        cv2.ellipse(img, (int(ex), int(EYE_Y)), (int(EYE_HW), int(EYE_HH)), 0, 0, 360, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.ellipse(img, (int(ex), int(EYE_Y + 4)), (15, 21), 0, 0, 360, (40, 50, 140), -1, cv2.LINE_AA)
        cv2.circle(img, (int(ex - 5), int(EYE_Y - 6)), 6, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(img, (int(ex + 6), int(EYE_Y + 12)), 3, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.ellipse(img, (int(ex), int(EYE_Y)), (int(EYE_HW), int(EYE_HH)), 0, 0, 360, INK, 4, cv2.LINE_AA)
        cv2.circle(img, (int(ex + (30 if ex > cx else -30)), int(EYE_Y + 38)), 12, (250, 150, 150), -1, cv2.LINE_AA)
    cv2.polylines(img, [_p(L[17:22]), _p(L[22:27])], False, INK, 6, cv2.LINE_AA, SHIFT)  # brows
    cv2.circle(img, (int(cx), int(EYE_Y + 44)), 3, INK, -1, cv2.LINE_AA)  # nose dot
    xs = np.linspace(cx - MOUTH_HW, cx + MOUTH_HW, 24)
    mouth = np.stack([xs, MOUTH_Y + MOUTH_SMILE * (1 - ((xs - cx) / MOUTH_HW) ** 2)], 1)
    cv2.polylines(img, [_p(mouth)], False, INK, 3, cv2.LINE_AA, SHIFT)
    return img


def main() -> None:
    here = Path(__file__).resolve().parent
    L = landmarks()
    cv2.imwrite(str(here / "drawn_character.png"), cv2.cvtColor(draw(L), cv2.COLOR_RGB2BGR))
    doc = {"landmarks": np.round(L, 2).tolist(),
           "note": "68 [x, y] pixel points, iBUG 300-W order; made by tests/data/make_drawn_character.py"}
    (here / "drawn_character.json").write_text(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main()
