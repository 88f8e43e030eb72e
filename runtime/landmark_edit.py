"""Hand adjustment of a drawn face's 68 landmarks (iBUG 300-W order) from a few draggable handles.

A handle is one position a person can drag: an eye centre, a mouth corner, the chin, the nose tip or a
brow centre (``HANDLES``; ``handles`` says where each one is). ``refit`` moves the 68 points so that
the handles land where they were dragged:

1. a similarity transform (translation, rotation, uniform scale) that takes the two eye centres to
   their new places moves every point: dragging both eyes by one offset moves the whole face, dragging
   one eye turns and scales the face about the other eye;
2. then each dragged handle moves its own region by what is left of its drag, in ``HANDLES`` order,
   with weights that fade towards the region's edge (``REGIONS``).

A handle that is not dragged only follows the transform of step 1 (with neither eye dragged it stays
exactly where it was). Coordinates are pixels (x, y) of the drawing; numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InvalidLandmarks

#: the handles, in the order ``refit`` applies their moves (image left/right, not the character's)
HANDLES = ("left_eye", "right_eye", "mouth_left", "mouth_right", "chin", "nose", "left_brow", "right_brow")
#: the point(s) whose mean is each handle's position
HANDLE_POINTS = {
    "left_eye": tuple(range(36, 42)),
    "right_eye": tuple(range(42, 48)),
    "mouth_left": (48,),
    "mouth_right": (54,),
    "chin": (8,),
    "nose": (30,),
    "left_brow": (19,),
    "right_brow": (24,),
}
MIN_EYE_GAP_PX = 8.0  # the eye centres may come no closer (``runtime.drawing`` refuses closer ones too)
LOWER_LIP_FOLLOWS_CHIN = 0.25  # how much of the chin's move the lower lip takes
_ACCEPTED = f"accepted handles: {', '.join(HANDLES)}, each an [x, y] pair of finite pixel coordinates"


def _weights(n: int, pairs: Mapping[int, float]) -> np.ndarray:
    w = np.zeros(n, np.float64)
    for i, v in pairs.items():
        w[i] = v
    return w


def _jaw_weights() -> np.ndarray:
    """1 at the chin (point 8), falling smoothly (cosine) to 0 at the jaw's ends (points 0 and 16)."""
    i = np.arange(17)
    return 0.5 * (1.0 + np.cos(np.pi * np.abs(i - 8) / 8.0))


#: fixed per-point weights of each handle's region (the mouth corners' depend on the mouth: ``_region``)
REGIONS = {
    "left_eye": _weights(68, {**dict.fromkeys(range(36, 42), 1.0), **dict.fromkeys(range(17, 22), 0.5)}),
    "right_eye": _weights(68, {**dict.fromkeys(range(42, 48), 1.0), **dict.fromkeys(range(22, 27), 0.5)}),
    "chin": _weights(
        68,
        {
            **dict(enumerate(_jaw_weights())),
            **dict.fromkeys((56, 57, 58, 65, 66, 67), LOWER_LIP_FOLLOWS_CHIN),
            **dict.fromkeys((55, 59), LOWER_LIP_FOLLOWS_CHIN / 2),
        },
    ),
    # the tip and nostrils move fully, the bridge less and less towards its top (27 stays)
    "nose": _weights(68, {27: 0.0, 28: 1 / 3, 29: 2 / 3, **dict.fromkeys(range(30, 36), 1.0)}),
    "left_brow": _weights(68, dict.fromkeys(range(17, 22), 1.0)),
    "right_brow": _weights(68, dict.fromkeys(range(22, 27), 1.0)),
}


def check_points(points: Any, what: str = "points") -> np.ndarray:
    """``points`` as float64 [68, 2] if it is 68 finite [x, y] pairs, else ``InvalidLandmarks``."""
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidLandmarks(f"{what}: not a list of numbers; expected 68 [x, y] points (iBUG 300-W order)") from None
    if pts.shape != (68, 2):
        raise InvalidLandmarks(f"{what}: got shape {pts.shape}, expected 68 [x, y] points (iBUG 300-W order)")
    if not np.isfinite(pts).all():
        i = int(np.argwhere(~np.isfinite(pts))[0, 0])
        raise InvalidLandmarks(f"{what}: point {i} is not a finite number; expected 68 finite [x, y] points")
    return pts


def check_moved(moved: Any) -> dict[str, np.ndarray]:
    """``moved`` as {handle name: float64 [2]}; ``InvalidLandmarks`` naming the accepted handles otherwise."""
    if not isinstance(moved, Mapping):
        raise InvalidLandmarks(f"moved handles must be a mapping of name -> [x, y]; {_ACCEPTED}")
    out = {}
    for name, xy in moved.items():
        if name not in HANDLE_POINTS:
            raise InvalidLandmarks(f"unknown handle {name!r}; {_ACCEPTED}")
        try:
            p = np.asarray(xy, dtype=np.float64)
        except (TypeError, ValueError):
            p = np.empty(0)
        if p.shape != (2,) or not np.isfinite(p).all():
            raise InvalidLandmarks(f"handle {name!r}: {xy!r} is not a position; {_ACCEPTED}")
        out[name] = p
    return out


def handles(points: Any) -> dict[str, tuple[float, float]]:
    """Where each handle of ``HANDLES`` is: eye centres = the mean of the eye's 6 points, mouth corners =
    points 48 and 54, chin = 8, nose tip = 30, brow centres = 19 and 24."""
    pts = check_points(points)
    return {name: tuple(float(v) for v in pts[list(idx)].mean(0)) for name, idx in HANDLE_POINTS.items()}


def _eye_transform(pts: np.ndarray, moved: Mapping[str, np.ndarray]) -> np.ndarray:
    """The similarity taking both eye centres to their dragged (or current) places, applied to ``pts``."""
    a, b = pts[36:42].mean(0), pts[42:48].mean(0)
    a2, b2 = moved.get("left_eye", a), moved.get("right_eye", b)
    if np.array_equal(a, a2) and np.array_equal(b, b2):
        return pts.copy()
    gap = float(np.linalg.norm(b2 - a2))
    if gap < MIN_EYE_GAP_PX:
        raise InvalidLandmarks(
            f"the eye handles would be {gap:.1f} px apart; at least {MIN_EYE_GAP_PX:g} px is needed "
            "(left_eye is the image-left eye)"
        )
    if float(np.linalg.norm(b - a)) < MIN_EYE_GAP_PX:  # the points' own eyes coincide: no rotation to take
        raise InvalidLandmarks(
            f"the points' eye centres are under {MIN_EYE_GAP_PX:g} px apart; send points with the eyes apart"
        )
    z = complex(*(b - a))
    s = complex(*(b2 - a2)) / z  # rotation and scale as one complex factor
    rot = np.array([[s.real, -s.imag], [s.imag, s.real]])
    return (pts - a) @ rot.T + a2


def _region(name: str, pts: np.ndarray) -> np.ndarray:
    """The per-point weights [68] of ``name``'s region in the current points."""
    if name not in ("mouth_left", "mouth_right"):
        return REGIONS[name]
    left, right = pts[48], pts[54]
    axis = right - left
    t = np.clip((pts[48:68] - left) @ axis / max(float(axis @ axis), 1e-12), 0.0, 1.0)  # 0 at 48, 1 at 54
    w = np.zeros(68)
    w[48:68] = 1.0 - t if name == "mouth_left" else t
    return w


def refit(points: Any, moved: Mapping[str, Any], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The 68 points [68, 2] float32 after dragging the handles in ``moved`` ({name: (x, y)}) to new places.

    First the similarity of the eye handles moves every point, then each dragged handle moves its region
    (an eye: its 6 points and its brow at half weight; a mouth corner: the mouth, weighted from 1 at that
    corner to 0 at the other; the chin: the jaw, from 1 at point 8 to 0 at points 0 and 16, and the lower
    lip by ``LOWER_LIP_FOLLOWS_CHIN``; the nose: its tip and nostrils, the bridge less towards the top;
    a brow: its 5 points) so that the handle ends where it was dragged. With ``shape`` (the image's, H x W
    first) the points are clipped into the image. Raises ``InvalidLandmarks`` (bad points, an unknown
    handle, a non-finite position, eye handles closer than ``MIN_EYE_GAP_PX``)."""
    pts = check_points(points)
    targets = check_moved(moved)
    out = _eye_transform(pts, targets)
    for name in HANDLES:
        if name in targets:
            d = targets[name] - out[list(HANDLE_POINTS[name])].mean(0)
            out += _region(name, out)[:, None] * d
    if not np.isfinite(out).all():  # positions so far out that the arithmetic overflowed
        raise InvalidLandmarks(f"the handles are too far out to place the points; {_ACCEPTED}")
    if shape is not None:
        h, w = int(shape[0]), int(shape[1])
        out[:, 0] = np.clip(out[:, 0], 0.0, w - 1)
        out[:, 1] = np.clip(out[:, 1], 0.0, h - 1)
    return out.astype(np.float32)


__all__ = ["HANDLES", "HANDLE_POINTS", "REGIONS", "check_moved", "check_points", "handles", "refit"]
