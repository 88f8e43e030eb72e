"""What the face itself shows in a photo: facial hair, glasses and the face's shape (``runtime.photo_traits``).

All functions work in ``photo_traits``' normalised frame (eyes level, ``U`` pixels apart) on its crop and
landmarks, and return only names, numbers and colour medians.
"""

from __future__ import annotations

import cv2
import numpy as np

from .avatar_geometry import _L_EYE, _R_EYE

U = 48.0  # the normalised frame's eye distance (runtime.photo_traits.U)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _poly_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(pts)).astype(np.int32)], 255)
    return m > 0


def _zone(lab: np.ndarray, poly: np.ndarray) -> np.ndarray:
    m = _poly_mask(lab.shape[:2], poly)
    return lab[m] if m.any() else np.zeros((0, 3), np.float32)


def facial_hair(lab: np.ndarray, crop: np.ndarray, Ln: np.ndarray) -> tuple[str, np.ndarray | None, dict]:
    """Facial hair type and colour from how much darker / greyer its zones are than the upper cheeks."""
    mc = Ln[48:60].mean(0)
    ref = np.concatenate(
        [_zone(lab, np.array([Ln[1], Ln[36], Ln[31], Ln[3]])), _zone(lab, np.array([Ln[15], Ln[45], Ln[35], Ln[13]]))]
    )
    mous = np.concatenate([0.35 * Ln[31:36] + 0.65 * Ln[[48, 50, 51, 52, 54]], Ln[[54, 53, 52, 51, 50, 49, 48]]])
    chin = np.concatenate(
        [0.7 * Ln[[55, 56, 57, 58, 59]] + 0.3 * Ln[[10, 9, 8, 7, 6]], Ln[[6, 7, 8, 9, 10]] * 0.9 + mc * 0.1]
    )
    jaw_l = np.array([Ln[3], Ln[5], 0.5 * (Ln[48] + Ln[5]), 0.6 * Ln[48] + 0.4 * Ln[3]])
    jaw_r = np.array([Ln[13], Ln[11], 0.5 * (Ln[54] + Ln[11]), 0.6 * Ln[54] + 0.4 * Ln[13]])
    if len(ref) < 10:
        return "none", None, {}
    r = np.median(ref, 0)
    ev = {}
    for name, poly in (("moustache", mous), ("chin", chin), ("jaw", np.concatenate([jaw_l, jaw_r[::-1]]))):
        if name == "jaw":
            z = np.concatenate([_zone(lab, jaw_l), _zone(lab, jaw_r)])
        else:
            z = _zone(lab, poly)
        if len(z) < 6:
            ev[name] = 0.0
            continue
        zm = np.median(z, 0)
        dark = (r[0] - zm[0]) / max(r[0], 20.0)  # relative lightness drop
        grey = (np.hypot(r[1], r[2]) - np.hypot(zm[1], zm[2])) / max(np.hypot(r[1], r[2]), 6.0)  # chroma drop
        ev[name] = float(dark + 0.5 * max(grey, 0.0))
    # stubble is fine dark texture: detail at 1 px scale on the chin against the same on the cheeks
    L = lab[..., 0]
    fine = np.abs(L - cv2.GaussianBlur(L, (0, 0), 1.0))
    cheek = np.zeros(L.shape, bool)
    for poly in (np.array([Ln[1], Ln[36], Ln[31], Ln[3]]), np.array([Ln[15], Ln[45], Ln[35], Ln[13]])):
        cheek |= _poly_mask(L.shape, poly)
    chin_m = _poly_mask(L.shape, chin)
    ev["chin_texture"] = float(np.median(fine[chin_m]) / (np.median(fine[cheek]) + 0.3)) if chin_m.any() else 0.0
    m, c, j = ev["moustache"], ev["chin"], ev["jaw"]
    stubble = 0.5 * (c + j) + 0.5 * (ev["chin_texture"] - 0.6)
    ev["stubble"] = float(stubble)
    if c > 0.3 and j > 0.22:
        kind = "beard"
    elif c > 0.3 and m > 0.22:
        kind = "goatee"
    elif m > 0.35 and c < 0.2:
        kind = "moustache"
    elif stubble > 0.245:
        kind = "stubble"
    else:
        kind = "none"
    colour = None
    if kind != "none":
        zones = [chin] if kind != "moustache" else [mous]
        px = np.concatenate([crop[_poly_mask(crop.shape[:2], z)] for z in zones])
        if len(px):
            lum = px.astype(np.float32) @ LUMA
            colour = np.median(px[lum <= np.percentile(lum, 40)].astype(np.float32), 0)
    return kind, colour, ev


def _arm(gy: np.ndarray, Ln: np.ndarray, contour: int, corner: int) -> float:
    """How clearly one straight edge (a glasses arm) runs from the eye's outer corner to the face's side, between
    brow and eye level: the best row (give or take 2 px, an arm slopes) that is an edge in each third of the way."""
    side, eye = float(Ln[contour, 0]), float(Ln[corner, 0])
    inward = 1.0 if eye > side else -1.0  # from the face's side toward the eye corner
    # from just beyond the eye's corner (where a frame's hinge is) to short of the face's outline (ears, hair)
    xa, xb = sorted((side + inward * 0.12 * U, eye - inward * 0.08 * U))
    xa, xb = int(xa), int(xb)
    ya, yb = int(Ln[17:27, 1].min() - 0.1 * U), int(Ln[36:48, 1].mean() + 0.1 * U)
    band = gy[max(ya, 0) : yb, max(xa, 0) : xb]
    if band.shape[0] < 3 or band.shape[1] < 6:
        return 0.0
    k = band.shape[1] // 3
    parts = [band[:, i * k : (i + 1) * k].mean(1) for i in range(3)]
    wide = [cv2.dilate(p_.reshape(-1, 1), np.ones((5, 1), np.uint8)).ravel() for p_ in parts]
    return float(np.minimum(np.minimum(wide[0], wide[1]), wide[2]).max() / (np.median(band) + 8.0))


def _frame_evidence(gy: np.ndarray, dyy: np.ndarray, Ln: np.ndarray) -> tuple[float, float, list, float]:
    """(bridge, rim, rim rows, arms) of ``_glasses`` for one placement of the landmarks."""
    xa, xb = int(Ln[39, 0] + 0.05 * U), int(Ln[42, 0] - 0.05 * U)
    ya, yb = int(max(Ln[21, 1], Ln[22, 1]) - 0.1 * U), int(Ln[28, 1])
    bridge = 0.0
    if xb > xa + 3 and yb > ya + 3:
        band = dyy[ya:yb, xa:xb]
        t = (xb - xa) // 3
        parts = [np.maximum(band[:, i * t : (i + 1) * t], 0.0).mean(1) for i in range(3)]
        bridge = float(np.minimum(np.minimum(parts[0], parts[1]), parts[2]).max() / (np.median(np.abs(band)) + 4.0))
    rims, rows = [], []
    for sl in (_R_EYE, _L_EYE):
        e = Ln[sl]
        x0, x1 = int(e[:, 0].min()), int(e[:, 0].max())
        y_lid = float(e[:, 1].max())
        y0, y1 = int(y_lid + 0.12 * U), int(y_lid + 0.75 * U)
        band = gy[max(y0, 0) : y1, max(x0, 0) : x1]
        if band.size == 0 or x1 - x0 < 3:
            rims.append(0.0)
            continue
        # a rim is one row that is an edge across the eye's whole width, not a patch of texture
        third = max((x1 - x0) // 3, 1)
        parts = [band[:, i * third : (i + 1) * third].mean(1) for i in range(3)]
        prof = np.minimum(np.minimum(parts[0], parts[1]), parts[2])
        i = int(np.argmax(prof))
        rims.append(float(prof[i] / (np.median(band) + 8.0)))
        rows.append((y0 + i, [int(np.argmax(p_)) for p_ in parts]))
    return bridge, min(rims), rows, min(_arm(gy, Ln, 0, 36), _arm(gy, Ln, 16, 45))


def glasses(crop: np.ndarray, Ln: np.ndarray) -> tuple[bool, str, np.ndarray | None, dict]:
    """A frame's bridge between the eyes and its lower rims under both eyes, against the skin around them.

    The bridge is a thin dark line (a ridge of the lightness's second derivative) across the whole width between
    the inner eye corners, not a fold at one side; a rim is one row of edge across an eye's whole width, below
    the lower lid; an arm is one edge row from the eye's outer corner to the face's side. The bridge must come
    with the rims or with both arms: alone it is often a frown, a shadow or a lash line. Each is the
    median over the landmarks and four placements 0.05 U off them, so a few pixels of landmark jitter do not
    flip the answer."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    dyy = cv2.Sobel(cv2.GaussianBlur(gray, (0, 0), 1.0), cv2.CV_32F, 0, 2, ksize=5)
    d = 0.05 * U
    tries = [_frame_evidence(gy, dyy, Ln + off) for off in ((0, 0), (d, 0), (-d, 0), (0, d), (0, -d))]
    bridge = float(np.median([t[0] for t in tries]))
    rim = float(np.median([t[1] for t in tries]))
    arms = float(np.median([t[3] for t in tries]))
    rows = tries[0][2]
    # the bridge with rims, or (rimless and thin metal frames, whose rims barely show) with both arms
    on = bridge > 1.9 and rim > 1.6 or bridge > 1.5 and (rim > 2.25 or arms > 1.8)
    shape, col = "round", None
    if on and rim <= 1.6:  # found by its arms: rimless or thin metal, no rim to read; the bridge's colour
        band = crop[int(Ln[21:23, 1].max()) : int(Ln[28, 1]) + 1, int(Ln[39, 0]) : int(Ln[42, 0]) + 1].reshape(-1, 3)
        if len(band):
            lum = band.astype(np.float32) @ LUMA
            col = np.median(band[lum <= np.percentile(lum, 10)].astype(np.float32), 0)
        shape = "rectangular"
    elif on and rows:
        bends = [p_[1] - 0.5 * (p_[0] + p_[2]) for _, p_ in rows]  # a round rim dips lowest in the middle
        shape = "round" if float(np.mean(bends)) > 0.06 * U else "rectangular"
        px = np.concatenate(
            [crop[max(y - 1, 0) : y + 2, int(Ln[36, 0]) : int(Ln[45, 0])].reshape(-1, 3) for y, _ in rows]
        )
        lum = px.astype(np.float32) @ LUMA
        col = np.median(px[lum <= np.percentile(lum, 20)].astype(np.float32), 0)
    return on, shape, col, {"bridge": bridge, "rim": rim, "arms": arms}


def face_shape(L: np.ndarray) -> str:
    cheek = float(np.linalg.norm(L[15] - L[1]))
    jaw = float(np.linalg.norm(L[12] - L[4]))
    height = float(np.linalg.norm(L[8] - 0.5 * (L[19] + L[24]))) * 1.25
    hw, jc = height / max(cheek, 1.0), jaw / max(cheek, 1.0)
    if hw > 1.45:
        return "long"
    if jc < 0.74:
        return "heart"
    if jc > 0.86:
        return "square" if hw > 1.2 else "round"
    return "round" if hw < 1.15 else "oval"


def brow_weight(lab: np.ndarray, Ln: np.ndarray) -> float:
    """How thick the brows are, 0 thin .. 1 thick: the height of the dark dip (full width at half its depth) of
    the lightness across six brow points: about 0.09 eye distances (thin) .. 0.21 (thick) on real photos."""
    L = lab[..., 0]
    heights = []
    for i in (18, 19, 20, 23, 24, 25):
        x, y = (float(v) for v in Ln[i])
        ya, yb = int(y - 0.22 * U), int(y + 0.2 * U)  # above the lid: the eye's dark does not count
        if ya < 0 or yb > L.shape[0] or x < 3 or x > L.shape[1] - 3:
            continue
        col = L[ya:yb, int(x) - 2 : int(x) + 3].mean(1)
        top, low = float(np.percentile(col, 90)), float(col.min())
        if top - low < 6.0:  # no brow to see (very light brows, or hidden)
            continue
        heights.append(float((col < 0.5 * (top + low)).sum()) / U)
    if not heights:
        return 0.5
    return float(np.clip((np.median(heights) - 0.09) / 0.12, 0.0, 1.0))
