"""Privacy-preserving procedural anime avatar.

A photo is reduced to a handful of colours/flags (:class:`AvatarStyle`) plus a
68-point face shape (:func:`canonical_landmarks`).  :class:`AvatarRenderer`
then draws a cel-shaded anime character from scratch with OpenCV vector
primitives -- no pixel of the photo is ever stored or drawn.

Landmarks follow the iBUG 300-W 68-point order.  Only numpy + cv2 are used.
"""
from __future__ import annotations

import logging
import math
import zlib
from dataclasses import asdict, dataclass
from typing import Sequence

import cv2
import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "AvatarStyle",
    "AvatarRenderer",
    "style_from_photo",
    "canonical_landmarks",
    "mean_face_landmarks",
    "close_mouth_landmarks",
    "EMOTIONS",
]

#: Order of the optional emotion probability vector accepted by ``draw``.
EMOTIONS: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")

RGB = tuple[int, int, int]

# Canonical-space layout (fractions of the canvas size).
_IOD = 0.28
_EYE_Y = 0.42
# Anime-fication factors.
_EYE_SX, _EYE_SY = 1.45, 1.7
_NOSE_SHRINK = 0.6
_MOUTH_SX = 0.85
_LOWER_FACE_SY = 0.88

_R_EYE = slice(36, 42)
_L_EYE = slice(42, 48)

# Left/right mirror permutation of the 68 points (used to symmetrise the mean shape).
_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)

# Mean frontal 68-point shape (OpenFace/dlib min-max normalised template).
_MEAN_RAW = np.array([
    (0.0792, 0.3392), (0.0829, 0.4570), (0.0968, 0.5756), (0.1221, 0.6919),
    (0.1687, 0.8003), (0.2398, 0.8957), (0.3257, 0.9771), (0.4223, 1.0433),
    (0.5318, 1.0608), (0.6413, 1.0398), (0.7381, 0.9723), (0.8244, 0.8896),
    (0.8948, 0.7925), (0.9394, 0.6815), (0.9611, 0.5622), (0.9706, 0.4418),
    (0.9712, 0.3221), (0.1638, 0.2492), (0.2178, 0.2043), (0.2913, 0.1924),
    (0.3675, 0.2036), (0.4393, 0.2331), (0.5864, 0.2281), (0.6602, 0.1959),
    (0.7375, 0.1824), (0.8132, 0.1928), (0.8708, 0.2353), (0.5153, 0.3186),
    (0.5162, 0.3962), (0.5171, 0.4738), (0.5182, 0.5532), (0.4337, 0.6041),
    (0.4755, 0.6208), (0.5207, 0.6343), (0.5659, 0.6188), (0.6071, 0.6016),
    (0.2524, 0.3311), (0.2987, 0.3026), (0.3557, 0.3030), (0.4037, 0.3387),
    (0.3525, 0.3500), (0.2968, 0.3505), (0.6313, 0.3341), (0.6791, 0.2965),
    (0.7360, 0.2947), (0.7829, 0.3213), (0.7403, 0.3418), (0.6850, 0.3437),
    (0.3532, 0.7462), (0.4146, 0.7191), (0.4777, 0.7068), (0.5227, 0.7171),
    (0.5698, 0.7054), (0.6352, 0.7157), (0.6995, 0.7394), (0.6394, 0.8052),
    (0.5764, 0.8354), (0.5254, 0.8417), (0.4764, 0.8375), (0.4134, 0.8100),
    (0.3801, 0.7500), (0.4780, 0.7451), (0.5234, 0.7489), (0.5711, 0.7433),
    (0.6724, 0.7442), (0.5725, 0.7766), (0.5240, 0.7834), (0.4776, 0.7785),
], dtype=np.float32)


# --------------------------------------------------------------------------- style
@dataclass(frozen=True)
class AvatarStyle:
    """Everything the avatar keeps from the photo: a few colours and flags."""

    skin: RGB
    hair: RGB
    eyes: RGB
    lips: RGB
    background: RGB
    hair_length: float
    glasses: bool
    beard: bool

    def to_dict(self) -> dict:
        """JSON-friendly dict (colours as lists)."""
        d = asdict(self)
        for k in ("skin", "hair", "eyes", "lips", "background"):
            d[k] = [int(c) for c in d[k]]
        d["hair_length"] = float(self.hair_length)
        d["glasses"] = bool(self.glasses)
        d["beard"] = bool(self.beard)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AvatarStyle":
        """Inverse of :meth:`to_dict` (tolerates lists / numpy values)."""

        def col(v: Sequence) -> RGB:
            return tuple(int(np.clip(round(float(c)), 0, 255)) for c in v)[:3]  # type: ignore[return-value]

        return cls(
            skin=col(d["skin"]), hair=col(d["hair"]), eyes=col(d["eyes"]),
            lips=col(d["lips"]), background=col(d["background"]),
            hair_length=float(np.clip(float(d.get("hair_length", 0.3)), 0.0, 1.0)),
            glasses=bool(d.get("glasses", False)), beard=bool(d.get("beard", False)),
        )


def _rgb2hsv(c: Sequence[float]) -> np.ndarray:
    """RGB 0..255 -> HSV (H degrees, S/V 0..1)."""
    a = np.asarray(c, np.float32).reshape(1, 1, 3) / 255.0
    return cv2.cvtColor(a, cv2.COLOR_RGB2HSV).reshape(3)


def _hsv2rgb(h: float, s: float, v: float) -> RGB:
    a = np.array([[[h % 360.0, np.clip(s, 0, 1), np.clip(v, 0, 1)]]], np.float32)
    r = cv2.cvtColor(a, cv2.COLOR_HSV2RGB).reshape(3)
    return tuple(int(x) for x in np.clip(np.round(r * 255.0), 0, 255))  # type: ignore[return-value]


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> RGB:
    r = (1.0 - t) * np.asarray(a, np.float32) + t * np.asarray(b, np.float32)
    return tuple(int(x) for x in np.clip(np.round(r), 0, 255))  # type: ignore[return-value]


def _shade(c: Sequence[float], ds: float = 1.0, dv: float = 1.0, dh: float = 0.0,
           s_add: float = 0.0) -> RGB:
    h, s, v = _rgb2hsv(c)
    return _hsv2rgb(h + dh, s * ds + s_add, v * dv)


def _robust_median(px: np.ndarray) -> np.ndarray:
    """Median colour after dropping outliers (> 2.5 MAD in any channel)."""
    px = px.reshape(-1, 3).astype(np.float32)
    if len(px) == 0:
        return np.array([128, 128, 128], np.float32)
    med = np.median(px, 0)
    mad = np.median(np.abs(px - med), 0) + 4.0
    keep = np.all(np.abs(px - med) <= 2.5 * mad, 1)
    if keep.sum() >= 8:
        med = np.median(px[keep], 0)
    return med


def _poly_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(pts)).astype(np.int32)], 255)
    return m > 0


def _rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    h, w = img.shape[:2]
    xa, xb = int(np.clip(min(x0, x1), 0, w)), int(np.clip(max(x0, x1), 0, w))
    ya, yb = int(np.clip(min(y0, y1), 0, h)), int(np.clip(max(y0, y1), 0, h))
    return img[ya:yb, xa:xb].reshape(-1, 3)


def _to_lab(px: np.ndarray) -> np.ndarray:
    a = np.asarray(px, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(a, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _dominant_colour(px: np.ndarray, exclude_bins: np.ndarray, avoid: np.ndarray) -> np.ndarray:
    """Median of the densest colour cluster (32-level RGB bins, 3x3x3 smoothed).

    Pixels whose bin is in ``exclude_bins`` (background colours) or that are close
    to ``avoid`` (skin, Lab distance < 18) are ignored when possible.
    """
    q = (px // 32).astype(np.int32)
    idx = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    ok = ~exclude_bins[idx] & (np.linalg.norm(_to_lab(px) - _to_lab(avoid)[0], axis=1) > 18.0)
    if ok.sum() < 0.04 * len(px):
        ok = np.ones(len(px), bool)
    hist = np.bincount(idx[ok], minlength=512).reshape(8, 8, 8).astype(np.float32)
    pad = np.pad(hist, 1)
    sm = sum(pad[i:i + 8, j:j + 8, k:k + 8] for i in range(3) for j in range(3) for k in range(3))
    sm = sm + 0.5 * hist  # favour the bin itself on ties
    b = np.array(np.unravel_index(int(np.argmax(sm)), sm.shape))
    near = ok & np.all(np.abs(q - b) <= 1, axis=1)
    return np.median(px[near].astype(np.float32), 0) if near.any() else np.median(px.astype(np.float32), 0)


def style_from_photo(image_rgb: np.ndarray, landmarks_px: np.ndarray) -> AvatarStyle:
    """Estimate an :class:`AvatarStyle` (a few cel colours + flags) from a photo.

    Only summary statistics leave this function; it is deterministic.
    """
    img = np.ascontiguousarray(image_rgb[..., :3])
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    L = np.asarray(landmarks_px, np.float32).reshape(68, 2)
    H, W = img.shape[:2]
    re, le = L[_R_EYE].mean(0), L[_L_EYE].mean(0)
    iod = max(float(np.linalg.norm(le - re)), 4.0)
    ex = (le - re) / iod
    up = np.array([ex[1], -ex[0]], np.float32)  # image "up" of the face
    brow_y = float(L[17:27, 1].min())
    x_l, x_r = float(L[:17, 0].min()), float(L[:17, 0].max())

    # skin: cheeks + forehead patches
    r = 0.13 * iod
    cheeks = [0.5 * (L[2] + L[31]) - 0.1 * iod * up, 0.5 * (L[14] + L[35]) - 0.1 * iod * up]
    fore = 0.5 * (L[21] + L[22]) + 0.32 * iod * up
    patches = [_rect(img, c[0] - r, c[1] - r, c[0] + r, c[1] + r) for c in cheeks]
    patches.append(_rect(img, fore[0] - 2 * r, fore[1] - 0.7 * r, fore[0] + 2 * r, fore[1] + 0.7 * r))
    skin = _robust_median(np.concatenate(patches))

    # background: border (top + sides; the bottom is usually clothes)
    b = max(2, int(0.04 * min(H, W)))
    border = np.concatenate([img[:b].reshape(-1, 3), img[:, :b].reshape(-1, 3),
                             img[:, -b:].reshape(-1, 3)])
    bg = np.median(border.astype(np.float32), 0)
    q = (border // 32).astype(np.int32)
    bins = np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512)
    bg_bins = bins > 0.03 * len(border)

    # hair: band above the brows + bands beside the temples, minus skin / background colours
    top = _rect(img, x_l - 0.2 * iod, brow_y - 1.5 * iod, x_r + 0.2 * iod, brow_y - 0.55 * iod)
    y_side0, y_side1 = brow_y, float(L[2, 1])
    sides = np.concatenate([
        _rect(img, L[0, 0] - 0.5 * iod, y_side0, L[0, 0] - 0.08 * iod, y_side1),
        _rect(img, L[16, 0] + 0.08 * iod, y_side0, L[16, 0] + 0.5 * iod, y_side1)])
    cand = np.concatenate([top, sides]) if len(sides) else top
    hair = skin * 0.45
    if len(cand):
        hair = _dominant_colour(cand, exclude_bins=bg_bins, avoid=skin)
    hair_lab = _to_lab(hair)[0]

    # eyes: darkest robust colour inside (slightly grown) eye polygons
    eye_px = []
    for sl in (_R_EYE, _L_EYE):
        c = L[sl].mean(0)
        m = _poly_mask((H, W), c + 1.15 * (L[sl] - c))
        eye_px.append(img[m])
    ep = np.concatenate(eye_px) if sum(len(e) for e in eye_px) else skin[None] * 0.3
    lum = ep.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = ep[lum <= np.percentile(lum, 25)]
    eyes = np.median(dark.astype(np.float32), 0)

    # lips: outer-lip polygon minus the inner mouth
    m = _poly_mask((H, W), L[48:60]) & ~_poly_mask((H, W), L[60:68])
    lips = _robust_median(img[m]) if m.any() else skin * np.array([1.0, 0.7, 0.7])

    # hair length: lowest row beside the face that is still mostly hair-coloured
    eye_y, chin_y = float(0.5 * (re[1] + le[1])), float(L[8, 1])
    face_h = max(chin_y - eye_y, 1.0)
    y_end = eye_y - 0.5 * face_h
    ys = np.arange(int(max(brow_y, 0)), int(min(H, chin_y + 1.5 * face_h)))
    gap = 0
    for y in ys:
        xs_l = np.arange(int(L[0, 0] - 0.55 * iod), int(L[0, 0] - 0.05 * iod))
        xs_r = np.arange(int(L[16, 0] + 0.05 * iod), int(L[16, 0] + 0.55 * iod))
        xs = np.clip(np.concatenate([xs_l, xs_r]), 0, W - 1)
        row = _to_lab(img[y, xs])
        frac = float((np.linalg.norm(row - hair_lab, axis=1) < 16.0).mean())
        if frac > 0.25:
            y_end, gap = float(y), 0
        else:
            gap += 1
            if gap > 0.25 * face_h and y > chin_y:
                break
    hair_length = float(np.clip((y_end - eye_y) / (2.0 * face_h), 0.0, 1.0))

    # glasses: horizontal structure across the nose bridge between the eyes
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gy = np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3))
    xa, xb = int(max(L[39, 0] + 0.1 * iod, 0)), int(min(L[42, 0] - 0.1 * iod, W))
    ya = int(max(max(L[21, 1], L[22, 1]) + 0.12 * iod, 0))
    yb = int(min(L[29, 1], H))
    bridge = 0.0
    if xb > xa + 1 and yb > ya + 3:
        prof = cv2.blur(gy[ya:yb, xa:xb].mean(1, keepdims=True), (1, 3))[:, 0]
        bridge = float(prof.max() / (np.median(prof) + 10.0))
    glasses = bridge > 1.9

    # beard: chin/jaw region much darker than cheeks
    chin_poly = np.concatenate([L[5:12], 0.6 * L[[57, 56, 58]][::-1] + 0.4 * L[[10, 8, 6]]])
    cm = _poly_mask((H, W), chin_poly)
    chin_v = float(np.median(img[cm].astype(np.float32) @ np.array([.299, .587, .114]))) if cm.any() else 255.0
    cheek_v = float(skin @ np.array([.299, .587, .114]))
    beard = chin_v < 0.62 * cheek_v

    logger.debug("style: bridge=%.2f chin/cheek=%.2f hair_len=%.2f", bridge,
                 chin_v / max(cheek_v, 1.0), hair_length)
    return _animeify_style(skin, hair, eyes, lips, bg, hair_length, glasses, beard)


def _animeify_style(skin, hair, eyes, lips, bg, hair_length, glasses, beard) -> AvatarStyle:
    """Push measured colours toward a saturated, clean cel palette."""
    h, s, v = _rgb2hsv(skin)
    skin_c = _hsv2rgb(h, np.clip(s * 0.95, 0.1, 0.36), np.clip(v * 0.9 + 0.2, 0.35, 0.97))
    h, s, v = _rgb2hsv(hair)
    hair_c = _hsv2rgb(h, np.clip(s * 1.3 + (0.05 if s > 0.12 else 0.0), 0, 0.72),
                      np.clip(v * 1.05, 0.1, 0.86))
    h, s, v = _rgb2hsv(eyes)
    eyes_c = _hsv2rgb(h, np.clip(s * 1.6 + 0.2, 0.35, 0.9), np.clip(v * 1.4 + 0.2, 0.42, 0.85))
    h, s, v = _rgb2hsv(lips)
    lips_c = _hsv2rgb(h, np.clip(s * 1.3 + 0.05, 0.25, 0.75), np.clip(v * 1.05, 0.45, 0.95))
    h, s, v = _rgb2hsv(bg)
    bg_c = _hsv2rgb(h, np.clip(s * 1.1, 0.12, 0.42), np.clip(0.72 + 0.28 * v, 0.8, 0.97))
    return AvatarStyle(skin_c, hair_c, eyes_c, lips_c, bg_c, round(float(hair_length), 3),
                       bool(glasses), bool(beard))


# --------------------------------------------------------------------------- geometry
def _similarity_to_canonical(L: np.ndarray, size: int) -> np.ndarray:
    """2x3 similarity that puts the eyes level, IOD=0.28*size, eye midpoint at (0.5, 0.42)*size."""
    re, le = L[_R_EYE].mean(0), L[_L_EYE].mean(0)
    d = le - re
    iod = max(float(np.hypot(*d)), 1e-6)
    ang = math.atan2(float(d[1]), float(d[0]))
    s = _IOD * size / iod
    c, si = s * math.cos(-ang), s * math.sin(-ang)
    A = np.array([[c, -si], [si, c]], np.float32)
    mid = 0.5 * (re + le)
    t = np.array([0.5 * size, _EYE_Y * size], np.float32) - A @ mid
    return np.concatenate([A, t[:, None]], 1)


def _animeify(P: np.ndarray, size: int) -> np.ndarray:
    """Anime proportions on canonical pixel coords: big eyes, small nose/mouth, short pointy chin."""
    P = P.copy()
    eye_y = float(P[36:48, 1].mean())
    # shorter lower face (not the eyes)
    low = np.r_[0:17, 27:36, 48:68]
    below = P[low, 1] > eye_y
    P[low[below], 1] = eye_y + (P[low[below], 1] - eye_y) * _LOWER_FACE_SY
    # eyes: bigger, taller more than wider
    for sl in (_R_EYE, _L_EYE):
        c = P[sl].mean(0)
        P[sl] = c + (P[sl] - c) * np.array([_EYE_SX, _EYE_SY], np.float32)
    # brows: follow the eye enlargement a little (lift)
    P[17:27, 1] -= 0.012 * size
    # nose shrinks toward its tip
    tip = P[30].copy()
    P[27:36] = tip + (P[27:36] - tip) * _NOSE_SHRINK
    # mouth slightly narrower
    mc = P[48:68].mean(0)
    P[48:68, 0] = mc[0] + (P[48:68, 0] - mc[0]) * _MOUTH_SX
    # pointier chin: pull lower jaw toward the chin's x, push chin tip down a hair
    cx = float(P[8, 0])
    for i in range(3, 14):
        k = 0.2 * math.sin(math.pi * (1.0 - abs(i - 8) / 5.0))
        P[i, 0] = cx + (P[i, 0] - cx) * (1.0 - k)
    P[8, 1] += 0.008 * size
    return P


def close_mouth_landmarks(L: np.ndarray) -> np.ndarray:
    """Close parted inner lips (e.g. a smiling photo) to get a neutral, mouth-closed shape."""
    L = np.asarray(L, np.float32).reshape(68, 2).copy()
    up, lo = [61, 62, 63], [67, 66, 65]
    d = L[lo] - L[up]
    gap = float(np.mean(d[:, 1]))
    if gap <= 0:
        return L
    mid = 0.5 * (L[up] + L[lo])
    L[up], L[lo] = mid, mid
    L[55:60, 1] -= 0.5 * gap
    for i, w in ((6, 0.15), (7, 0.35), (8, 0.5), (9, 0.35), (10, 0.15)):
        L[i, 1] -= w * gap
    return L


def canonical_landmarks(landmarks_px: np.ndarray, size: int = 256, close_mouth: bool = True) -> np.ndarray:
    """Align photo landmarks into a ``size`` canvas and anime-fy them; returns [68,2] in 0..1.

    With ``close_mouth`` (default) parted lips in the photo are closed so the result
    is a usable neutral (speech animation then opens the mouth from there).
    """
    L = np.asarray(landmarks_px, np.float32).reshape(68, 2)
    if close_mouth:
        L = close_mouth_landmarks(L)
    M = _similarity_to_canonical(L, size)
    P = L @ M[:, :2].T + M[:, 2]
    P = _animeify(P, size)
    return np.clip(P / float(size), 0.0, 1.0).astype(np.float32)


def mean_face_landmarks() -> np.ndarray:
    """Symmetric neutral mean face, already canonical + anime-fied ([68,2] in 0..1).

    It can be fed straight to :class:`AvatarRenderer` (do not pass it through
    :func:`canonical_landmarks` again).
    """
    m = _MEAN_RAW.copy()
    mir = m[_MIRROR].copy()
    mir[:, 0] = 1.0 - mir[:, 0]
    m = 0.5 * (m + mir)
    # closed neutral mouth
    for a, b in ((61, 67), (62, 66), (63, 65)):
        mid = 0.5 * (m[a] + m[b])
        m[a] = m[b] = mid
    return canonical_landmarks(m * 200.0, 256)


# --------------------------------------------------------------------------- drawing helpers
def _catmull(pts: np.ndarray, n: int = 6, closed: bool = False) -> np.ndarray:
    """Catmull-Rom spline through ``pts`` with ``n`` samples per segment."""
    p = np.asarray(pts, np.float32)
    if len(p) < 3:
        return p
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
        nseg = len(p)
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
        nseg = len(p) - 1
    t = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
    t2, t3 = t * t, t * t * t
    B = 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], 1)
    idx = np.arange(nseg)[:, None] + np.arange(4)[None]
    seg = ext[idx]  # [nseg,4,2]
    out = np.einsum("nk,skd->snd", B, seg).reshape(-1, 2)
    if not closed:
        out = np.concatenate([out, p[-1:]])
    return out


def _bez(p0, c, p1, n: int = 6) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    return (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(c) + t * t * np.asarray(p1)


_SHIFT = 3
_SC = float(1 << _SHIFT)


def _ip(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts, np.float32) * _SC).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, pts: np.ndarray, color: RGB) -> None:
    cv2.fillPoly(img, [_ip(pts)], color, cv2.LINE_AA, _SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, color: RGB, th: float, closed: bool = False) -> None:
    cv2.polylines(img, [_ip(pts)], closed, color, max(1, int(round(th))), cv2.LINE_AA, _SHIFT)


def _stroke(centre: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Closed polygon of a variable-width stroke along ``centre`` (widths per point)."""
    c = np.asarray(centre, np.float32)
    d = np.gradient(c, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], 1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-6
    w = np.asarray(widths, np.float32)[:, None] * 0.5
    return np.concatenate([c + n * w, (c - n * w)[::-1]])


def _bbox(pts: np.ndarray, pad: float, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    x0 = max(int(pts[:, 0].min() - pad), 0)
    y0 = max(int(pts[:, 1].min() - pad), 0)
    x1 = min(int(pts[:, 0].max() + pad) + 1, shape[1])
    y1 = min(int(pts[:, 1].max() + pad) + 1, shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _composite(img: np.ndarray, box: tuple[int, int, int, int], layer: np.ndarray,
               mask: np.ndarray) -> None:
    """Alpha-blend ``layer`` into ``img[box]`` with a uint8 ``mask``."""
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    a = mask.astype(np.uint16)[..., None]
    roi[:] = ((layer.astype(np.uint16) * a + roi.astype(np.uint16) * (255 - a) + 127) // 255).astype(np.uint8)


def _fill_clipped(img: np.ndarray, poly: np.ndarray, color: RGB, clip: np.ndarray,
                  alpha: float = 1.0) -> None:
    """Fill ``poly`` only where it lies inside ``clip`` (both anti-aliased)."""
    box = _bbox(poly, 2, img.shape[:2])
    if box is None:
        return
    x0, y0, x1, y1 = box
    off = np.array([x0, y0], np.float32)
    m1 = np.zeros((y1 - y0, x1 - x0), np.uint8)
    m2 = np.zeros_like(m1)
    _fill(m1, poly - off, (255,))
    _fill(m2, clip - off, (255,))
    m = cv2.min(m1, m2)
    if alpha < 1.0:
        m = (m.astype(np.float32) * alpha).astype(np.uint8)
    layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
    layer[:] = color
    _composite(img, box, layer, m)


# --------------------------------------------------------------------------- renderer
class AvatarRenderer:
    """Draws a cel-shaded anime bust from animated 68-point landmarks.

    ``neutral`` is the person's canonical neutral shape ([68,2] in 0..1, e.g. from
    :func:`canonical_landmarks`); it fixes the head/hair geometry and the eye-openness
    reference.  Drawing happens at 2x and is downsampled with ``INTER_AREA``.
    """

    SS = 2  # supersampling factor

    def __init__(self, style: AvatarStyle, neutral: np.ndarray, size: int = 256) -> None:
        self.style = style
        self.size = int(size)
        self.W = self.size * self.SS
        self.neutral = np.asarray(neutral, np.float32).reshape(68, 2).copy()
        self._seed = zlib.crc32(repr(sorted(style.to_dict().items())).encode())
        self.palette = self._make_palette(style)
        N = self.neutral * self.W
        self._N = N
        W = float(self.W)
        # head frame from the neutral shape
        self.cx = float(0.5 * (N[0, 0] + N[16, 0]) * 0.5 + 0.5 * N[27:31, 0].mean())
        self.eye_y = float(N[36:48, 1].mean())
        self.chin = N[8].copy()
        self.pivot = np.array([self.cx, N[8, 1] - 0.02 * W], np.float32)
        self.iod = float(np.linalg.norm(N[42:48].mean(0) - N[36:42].mean(0)))
        self._eye_ref = [self._eye_open(N, k) for k in (0, 1)]
        self._eye_aspect = [float(np.clip(0.66 * ((self._eye_ref[k] / max(np.linalg.norm(
            N[[39, 42][k]] - N[[36, 45][k]]), 1e-3)) / 0.36) ** 0.6, 0.5, 0.85)) for k in (0, 1)]
        self._build_static()
        self._bg = self._make_background()

    # ----------------------------------------------------------------- palette
    @staticmethod
    def _make_palette(st: AvatarStyle) -> dict[str, RGB]:
        hh, hs, hv = _rgb2hsv(st.hair)
        sh, ss_, sv = _rgb2hsv(st.skin)
        eh, es, ev = _rgb2hsv(st.eyes)
        lh, ls, lv = _rgb2hsv(st.lips)
        bh, bs, bv = _rgb2hsv(st.background)
        p: dict[str, RGB] = {}
        p["bg"] = st.background
        p["bg_edge"] = _hsv2rgb(bh, bs * 1.15 + 0.03, bv * 0.86)
        p["skin"] = st.skin
        p["skin_sh"] = _hsv2rgb(sh - 6, ss_ * 1.25 + 0.08, sv * 0.86)
        p["skin_line"] = _hsv2rgb(sh - 8, min(0.75, ss_ * 1.3 + 0.25), sv * 0.42)
        p["hair"] = st.hair
        p["hair_sh"] = _hsv2rgb(hh + 4, hs * 1.1 + 0.04, hv * 0.72)
        p["hair_hi"] = _mix(_hsv2rgb(hh, hs * 0.8, min(1.0, hv * 1.25 + 0.12)), (255, 255, 255), 0.22)
        p["hair_line"] = _hsv2rgb(hh, min(0.8, hs * 1.1 + 0.1), min(hv * 0.42, 0.3))
        p["brow"] = _hsv2rgb(hh, min(0.85, hs * 1.1 + 0.1), min(hv * 0.6, 0.4))
        p["lash"] = _hsv2rgb(hh, min(0.7, hs * 0.8 + 0.2), min(hv * 0.3, 0.16))
        p["sclera"] = (252, 252, 255)
        p["sclera_sh"] = (214, 218, 236)
        p["iris"] = st.eyes
        p["iris_dark"] = _hsv2rgb(eh, min(1.0, es * 1.1 + 0.1), ev * 0.5)
        p["iris_light"] = _mix(_hsv2rgb(eh, es * 0.8, min(1.0, ev * 1.3 + 0.1)), (255, 255, 255), 0.2)
        p["pupil"] = _hsv2rgb(eh, min(1.0, es + 0.1), ev * 0.22)
        p["mouth_in"] = _hsv2rgb(lh - 4, 0.62, 0.42)
        p["mouth_line"] = _hsv2rgb(lh - 6, 0.6, 0.28)
        p["tongue"] = _hsv2rgb(lh + 2, 0.45, 0.9)
        p["teeth"] = (255, 255, 255)
        p["lips"] = st.lips
        p["blush"] = _hsv2rgb(352, 0.5, 1.0)
        p["nose"] = _hsv2rgb(sh - 8, ss_ * 1.3 + 0.15, sv * 0.7)
        p["cloth"] = _hsv2rgb(eh + 10, 0.42, 0.5)
        p["cloth_sh"] = _hsv2rgb(eh + 14, 0.48, 0.38)
        p["cloth_line"] = _hsv2rgb(eh + 14, 0.5, 0.2)
        p["collar"] = (250, 250, 252)
        p["collar_sh"] = (205, 210, 226)
        p["glasses"] = (60, 56, 70)
        p["beard"] = _mix(st.hair, _hsv2rgb(sh, ss_, sv * 0.8), 0.35)
        return p

    # ----------------------------------------------------------------- static geometry
    def _build_static(self) -> None:
        """Hair / head / body contours in neutral 2x-canvas coordinates."""
        N, W, st = self._N, float(self.W), self.style
        rng = np.random.default_rng(self._seed)
        j0, j16 = N[0], N[16]
        cx = self.cx
        yc = float(0.5 * (j0[1] + j16[1]))
        rx = float(0.5 * (j16[0] - j0[0])) * 1.02
        chin_y = float(N[8, 1])
        top = max(yc - 1.0 * (chin_y - yc), 0.11 * W)
        ry = yc - top
        self.head = dict(cx=cx, yc=yc, rx=rx, ry=ry)
        t = np.linspace(0.0, math.pi, 24, dtype=np.float32)
        # forehead arc from the right temple (j16 side) over the top to the left (j0 side)
        self.fore_arc = np.stack([cx + rx * np.cos(t), yc - ry * np.sin(t)], 1)
        self.fore_arc[0], self.fore_arc[-1] = j16, j0

        L = float(np.clip(st.hair_length, 0.0, 1.0))
        vol = 0.085 * W
        hx, hy = rx + vol, ry + vol * 0.9
        hyc = yc + 0.01 * W

        def outer(a: np.ndarray) -> np.ndarray:
            return np.stack([cx + hx * np.cos(a), hyc - hy * np.sin(a)], 1)

        # back hair: outer dome + sides falling to a length-dependent end
        y_end = yc + (0.12 + 0.75 * L) * W
        a = np.linspace(-0.25, math.pi + 0.25, 30, dtype=np.float32)
        dome = outer(a)
        flare = 0.03 * W + 0.06 * W * L
        r_bot = np.array([dome[0, 0] + flare, y_end], np.float32)
        r_mid = np.array([dome[0, 0] + 0.4 * flare, 0.5 * (dome[0, 1] + y_end)], np.float32)
        l_bot = np.array([dome[-1, 0] - flare, y_end], np.float32)
        l_mid = np.array([dome[-1, 0] - 0.4 * flare, 0.5 * (dome[-1, 1] + y_end)], np.float32)
        outline = _catmull(np.concatenate([r_bot[None], r_mid[None], dome, l_mid[None], l_bot[None]]), 3)
        n_tip = 6
        xs_t = np.linspace(l_bot[0], r_bot[0], n_tip + 1)[1:-1]
        tips = np.stack([xs_t, y_end - 0.045 * W * (np.arange(len(xs_t)) % 2 == 0)], 1).astype(np.float32)
        self.hair_back = np.concatenate([outline, tips]).astype(np.float32)

        # front hair: dome top, side locks, spiky fringe
        fringe_y = float(N[17:27, 1].min()) - 0.012 * W
        notch_y = fringe_y - 0.085 * W
        lock_y = yc + (0.2 + 0.38 * L) * W
        part = cx + rx * float(rng.uniform(-0.3, 0.3))
        a = np.linspace(math.pi + 0.22, -0.22, 34, dtype=np.float32)
        dome_f = outer(a)
        xl_in, xr_in = cx - rx * 0.86, cx + rx * 0.86
        n_str = 6
        xs = np.linspace(xl_in, xr_in, n_str + 1)
        xs[1:-1] += rng.uniform(-0.25, 0.25, n_str - 1) * (xs[1] - xs[0])
        edge = [np.array([[xl_in, yc - 0.06 * W]], np.float32)]
        prev = np.array([xl_in, yc - 0.06 * W], np.float32)
        for i in range(n_str):
            xa_, xb_ = xs[i], xs[i + 1]
            mid = 0.5 * (xa_ + xb_)
            lean = np.clip((mid - part) / (rx * 0.9), -1, 1)
            tip_len = fringe_y + rng.uniform(-0.015, 0.012) * W - 0.02 * W * abs(lean)
            tip = np.array([mid + lean * 0.04 * W, tip_len], np.float32)
            nb = np.array([xb_, notch_y + rng.uniform(-0.02, 0.025) * W], np.float32)
            if i == n_str - 1:
                nb = np.array([xr_in, yc - 0.06 * W], np.float32)
            c1 = 0.5 * (prev + tip) + np.array([-0.015 * W * lean - 0.004 * W, 0.01 * W], np.float32)
            c2 = 0.5 * (tip + nb) + np.array([-0.015 * W * lean + 0.004 * W, 0.01 * W], np.float32)
            edge.append(_bez(prev, c1, tip, 6)[1:])
            edge.append(_bez(tip, c2, nb, 6)[1:])
            prev = nb
        fringe = np.concatenate(edge)  # left -> right
        # side locks (hang over the cheeks), drawn as part of the front polygon
        rl_top = dome_f[-1]  # right outer (angle -0.22)
        ll_top = dome_f[0]
        r_lock = np.concatenate([
            _bez(rl_top, (rl_top[0] + 0.01 * W, 0.5 * (rl_top[1] + lock_y)),
                 (cx + rx * 0.88, lock_y), 8)[1:],
            _bez((cx + rx * 0.88, lock_y), (cx + rx * 0.72, 0.5 * (yc + lock_y)),
                 (xr_in, yc - 0.06 * W), 8)[1:]])
        l_lock = np.concatenate([
            _bez((xl_in, yc - 0.06 * W), (cx - rx * 0.72, 0.5 * (yc + lock_y)),
                 (cx - rx * 0.88, lock_y), 8)[1:],
            _bez((cx - rx * 0.88, lock_y), (ll_top[0] - 0.01 * W, 0.5 * (ll_top[1] + lock_y)),
                 ll_top, 8)[1:]])
        # polygon: dome left->right, right lock down & up, fringe right->left, left lock
        self.hair_front = np.concatenate([dome_f, r_lock, fringe[::-1], l_lock]).astype(np.float32)
        self.fringe_edge = fringe.astype(np.float32)
        # highlight band ("angel ring") inside the dome
        a = np.linspace(math.pi * 0.78, math.pi * 0.22, 16, dtype=np.float32)
        ring_r = 0.72
        ring_c = np.stack([cx + hx * ring_r * np.cos(a), hyc - hy * ring_r * np.sin(a) + 0.05 * W], 1)
        wv = 0.018 * W * (0.4 + 0.6 * np.sin(np.linspace(0, math.pi, 16)))
        self.hair_ring = _stroke(ring_c, wv)
        # strand lines from notches upward
        self.hair_strands = []
        for i in range(1, n_str):
            x = xs[i]
            p0 = np.array([x, notch_y + 0.01 * W])
            p1 = np.array([x + (x - cx) * 0.25, notch_y - 0.1 * W])
            self.hair_strands.append(_bez(p0, 0.5 * (p0 + p1) + np.array([0.01 * W, 0]), p1, 6))

        # ears (hidden under long hair)
        self.ears = []
        if L < 0.55:
            for side, j in ((-1, N[1]), (1, N[15])):
                c = np.array([j[0] + side * 0.012 * W, j[1] - 0.01 * W], np.float32)
                self.ears.append((c, side))

        # neck & shoulders (body stays still)
        nw = 0.34 * (N[12, 0] - N[4, 0])
        self.neck = np.array([
            (cx - nw * 0.5, yc), (cx + nw * 0.5, yc),
            (cx + nw * 0.5, chin_y + 0.05 * W), (cx + nw * 0.62, chin_y + 0.12 * W),
            (cx - nw * 0.62, chin_y + 0.12 * W), (cx - nw * 0.5, chin_y + 0.05 * W)], np.float32)
        sh_y = max(chin_y + 0.085 * W, 0.82 * W)
        body = [(cx - nw * 0.55, sh_y - 0.01 * W), (cx - nw * 1.6, sh_y + 0.02 * W),
                (cx - nw * 2.8, sh_y + 0.07 * W), (cx - nw * 3.5, sh_y + 0.16 * W),
                (cx - nw * 3.8, W + 0.1 * W), (cx + nw * 3.8, W + 0.1 * W),
                (cx + nw * 3.5, sh_y + 0.16 * W), (cx + nw * 2.8, sh_y + 0.07 * W),
                (cx + nw * 1.6, sh_y + 0.02 * W), (cx + nw * 0.55, sh_y - 0.01 * W)]
        self.body = _catmull(np.array(body, np.float32), 4)
        self.collar = [
            np.array([(cx - nw * 0.6, sh_y - 0.02 * W), (cx - nw * 1.25, sh_y + 0.02 * W),
                      (cx - nw * 0.35, sh_y + 0.11 * W), (cx, sh_y + 0.05 * W)], np.float32),
            np.array([(cx + nw * 0.6, sh_y - 0.02 * W), (cx + nw * 1.25, sh_y + 0.02 * W),
                      (cx + nw * 0.35, sh_y + 0.11 * W), (cx, sh_y + 0.05 * W)], np.float32)]
        self.neck_shadow = np.array([
            (cx + nw * 0.1, chin_y + 0.0 * W), (cx + nw * 0.52, chin_y - 0.03 * W),
            (cx + nw * 0.55, sh_y + 0.02 * W), (cx + nw * 0.25, sh_y + 0.02 * W)], np.float32)

    def _make_background(self) -> np.ndarray:
        W = self.W
        p = self.palette
        yy, xx = np.mgrid[0:W, 0:W].astype(np.float32) / W
        r = np.sqrt((xx - 0.5) ** 2 + (yy - 0.45) ** 2)
        t = np.clip((r - 0.35) / 0.45, 0, 1)[..., None] ** 1.5
        bg = (1 - t) * np.array(p["bg"], np.float32) + t * np.array(p["bg_edge"], np.float32)
        img = np.round(bg).astype(np.uint8)
        # soft pastel polka dots (deterministic pattern)
        dot = _mix(p["bg"], (255, 255, 255), 0.35)
        step = W // 8
        for j in range(9):
            for i in range(9):
                x = i * step + (step // 2 if j % 2 else 0)
                y = j * step
                cv2.circle(img, (x, y), max(2, W // 90), dot, -1, cv2.LINE_AA)
        return img

    # ----------------------------------------------------------------- pose
    @staticmethod
    def _weights() -> np.ndarray:
        w = np.ones(68, np.float32)
        for i in range(17):
            w[i] = np.clip(1.0 - abs(i - 8) / 6.0, 0.0, 1.0) * 0.9
        return w

    _W68 = None

    def _pose_fn(self, pose: Sequence[float]):
        yaw, pitch, roll = (float(v) for v in pose)
        sy, sp = math.sin(yaw), math.sin(pitch)
        W, cx, cy = float(self.W), self.cx, self.eye_y
        c, s = math.cos(roll), math.sin(roll)
        R = np.array([[c, -s], [s, c]], np.float32)
        piv = self.pivot

        def f(pts: np.ndarray, w: np.ndarray | float = 0.0) -> np.ndarray:
            p = np.asarray(pts, np.float32).reshape(-1, 2)
            w = np.broadcast_to(np.asarray(w, np.float32), (len(p),))
            x = cx + (p[:, 0] - cx) * (1.0 - (0.07 + 0.08 * w) * abs(sy)) + W * (0.03 + 0.07 * w) * sy
            y = cy + (p[:, 1] - cy) * (1.0 - 0.06 * w * abs(sp)) + W * (0.01 + 0.05 * w) * sp
            q = np.stack([x, y], 1) - piv
            return (q @ R.T + piv).astype(np.float32)

        return f

    # ----------------------------------------------------------------- public
    def draw(self, landmarks: np.ndarray, pose: np.ndarray | tuple = (0, 0, 0), blink: float = 0.0,
             emotion: np.ndarray | None = None) -> np.ndarray:
        """Render one frame; returns uint8 RGB [size, size, 3]."""
        W, p = float(self.W), self.palette
        L = np.asarray(landmarks, np.float32).reshape(68, 2) * W
        pose = np.zeros(3) if pose is None else np.clip(np.asarray(pose, np.float32).reshape(3), -0.6, 0.6)
        blink = float(np.clip(blink, 0.0, 1.0))
        emo = np.zeros(6, np.float32) if emotion is None else np.asarray(emotion, np.float32).reshape(6)
        ang, dis, fea, hap, _neu, sad = (float(v) for v in np.clip(emo, 0, 1))
        L = self._apply_emotion(L, ang, dis, fea, hap, sad)

        if AvatarRenderer._W68 is None:
            AvatarRenderer._W68 = self._weights()
        f = self._pose_fn(pose)
        P = f(L, AvatarRenderer._W68)
        img = self._bg.copy()

        # back hair, ears, neck, body
        _fill(img, f(self.hair_back), p["hair_sh"])
        _line(img, f(self.hair_back), p["hair_line"], 0.006 * W, closed=True)
        neck = f(self.neck)
        neck[2:5] = self.neck[2:5]  # base of the neck stays on the shoulders
        _fill(img, neck, p["skin"])
        _fill_clipped(img, self.neck_shadow, p["skin_sh"], neck)
        face = np.concatenate([_catmull(P[0:17], 5), f(self.fore_arc)[1:-1]])
        chin_sh = np.concatenate([P[3:14] + np.array([0, 0.035 * W], np.float32), P[13:2:-1]])
        _fill_clipped(img, chin_sh, p["skin_sh"], neck)
        _line(img, neck[[5, 0]], p["skin_line"], 0.005 * W)
        _line(img, neck[[1, 2]], p["skin_line"], 0.005 * W)
        self._draw_body(img)
        for c, side in self.ears:
            self._draw_ear(img, f(c[None])[0], side, pose)

        # face
        _fill(img, face, p["skin"])
        _line(img, _catmull(P[0:17], 5), p["skin_line"], 0.007 * W)
        fe = f(self.fringe_edge)
        shadow = np.concatenate([fe + np.array([0.004 * W, 0.03 * W], np.float32),
                                 fe[::-1] - np.array([0, 0.05 * W], np.float32)])
        _fill_clipped(img, shadow, p["skin_sh"], face)
        if self.style.beard:
            self._draw_beard(img, P)
        self._draw_blush(img, P, 0.22 + 0.5 * hap + 0.15 * ang - 0.1 * fea)
        self._draw_nose(img, P)
        self._draw_mouth(img, P, hap, sad, ang)
        for k in (0, 1):
            self._draw_eye(img, P, k, blink, fea, sad, hap)

        # front hair
        hf = f(self.hair_front)
        _fill(img, hf, p["hair"])
        _fill_clipped(img, f(self.hair_ring), p["hair_hi"], hf)
        for s_ in self.hair_strands:
            _line(img, f(s_), p["hair_sh"], 0.005 * W)
        _line(img, hf, p["hair_line"], 0.007 * W, closed=True)
        self._draw_brows(img, P)
        if self.style.glasses:
            self._draw_glasses(img, P)

        return cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA)

    # ----------------------------------------------------------------- parts
    def _apply_emotion(self, L: np.ndarray, ang: float, dis: float, fea: float, hap: float,
                       sad: float) -> np.ndarray:
        if ang + dis + fea + hap + sad < 1e-3:
            return L
        L = L.copy()
        W = float(self.W)
        # brows: inner ends up for SAD/FEA, down for ANG/DIS; HAP lifts a bit
        inner = W * (0.02 * (sad + fea) - 0.022 * ang - 0.012 * dis)
        lift = W * (0.008 * hap + 0.01 * fea)
        for idx, w in ((21, 1.0), (20, 0.6), (19, 0.3), (22, 1.0), (23, 0.6), (24, 0.3)):
            L[idx, 1] -= inner * w + lift
        for idx in (17, 18, 25, 26):
            L[idx, 1] -= lift - W * 0.006 * sad
        # mouth corners: up for HAP, down for SAD/ANG/DIS
        dy = W * (-0.02 * hap + 0.016 * sad + 0.008 * ang + 0.01 * dis)
        for idx in (48, 60, 54, 64):
            L[idx, 1] += dy
        for idx in (49, 59, 53, 55, 61, 67, 63, 65):
            L[idx, 1] += 0.45 * dy
        # HAP widens the mouth a touch
        mc = L[48:68, 0].mean()
        L[48:68, 0] = mc + (L[48:68, 0] - mc) * (1.0 + 0.08 * hap - 0.06 * ang)
        return L

    def _draw_body(self, img: np.ndarray) -> None:
        p, W = self.palette, float(self.W)
        _fill(img, self.body, p["cloth"])
        half = self.body[len(self.body) // 2:]
        _fill_clipped(img, np.concatenate([half, [(self.cx + 0.02 * W, W)]]), p["cloth_sh"], self.body)
        _line(img, self.body, p["cloth_line"], 0.007 * W)
        for c in self.collar:
            _fill(img, c, p["collar"])
            _line(img, c, p["cloth_line"], 0.005 * W, closed=True)

    def _draw_ear(self, img: np.ndarray, c: np.ndarray, side: int, pose: np.ndarray) -> None:
        p, W = self.palette, float(self.W)
        ax = (0.028 * W * (1.0 - 0.5 * side * math.sin(float(pose[0]))), 0.05 * W)
        ang = math.degrees(float(pose[2])) + 12 * side
        pts = cv2.ellipse2Poly((int(c[0] * 8), int(c[1] * 8)), (int(ax[0] * 8), int(ax[1] * 8)),
                               int(ang), 0, 360, 15).astype(np.float32) / 8.0
        _fill(img, pts, p["skin"])
        _line(img, pts, p["skin_line"], 0.005 * W, closed=True)
        inner = c + (pts - c) * 0.5 - np.array([side * 0.006 * W, 0], np.float32)
        _fill(img, inner, p["skin_sh"])

    def _draw_blush(self, img: np.ndarray, P: np.ndarray, strength: float) -> None:
        if strength <= 0.02:
            return
        W = float(self.W)
        for k, sl in enumerate((_R_EYE, _L_EYE)):
            e = P[sl]
            c = e.mean(0)
            w = float(np.linalg.norm(e[3] - e[0]))
            out = -1.0 if k == 0 else 1.0
            cc = c + np.array([out * 0.15 * w, 0.95 * w], np.float32)
            ax = np.array([0.5 * w, 0.2 * w])
            box = _bbox(np.array([cc - ax * 1.6, cc + ax * 1.6]), 0, img.shape[:2])
            if box is None:
                continue
            x0, y0, x1, y1 = box
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.ellipse(m, (int(cc[0] - x0), int(cc[1] - y0)), (int(ax[0]), int(ax[1])), 0, 0, 360, 255, -1,
                        cv2.LINE_AA)
            k_ = int(ax[1]) | 1
            m = cv2.GaussianBlur(m, (k_, k_), 0)
            m = (m.astype(np.float32) * min(strength, 0.85) * 0.7).astype(np.uint8)
            layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
            layer[:] = self.palette["blush"]
            _composite(img, box, layer, m)
            if strength > 0.45:  # anime "///" hatching
                for i in range(3):
                    a = cc + np.array([(i - 1) * 0.22 * w - 0.04 * w, -0.08 * w], np.float32)
                    _line(img, np.array([a, a + np.array([-0.1 * w, 0.16 * w])]), self.palette["blush_line"]
                          if "blush_line" in self.palette else _shade(self.palette["blush"], 1.2, 0.8), 0.004 * W)

    def _draw_nose(self, img: np.ndarray, P: np.ndarray) -> None:
        W = float(self.W)
        t = P[30]
        b = P[33]
        pts = np.array([t + 0.3 * (b - t) + np.array([0.004 * W, 0]), b + np.array([-0.008 * W, 0.001 * W]),
                        b + np.array([0.001 * W, 0.003 * W])], np.float32)
        _line(img, _catmull(pts, 4), self.palette["nose"], 0.006 * W)

    def _draw_mouth(self, img: np.ndarray, P: np.ndarray, hap: float, sad: float, ang: float) -> None:
        p, W = self.palette, float(self.W)
        inner = P[60:68]
        upper = inner[[1, 2, 3]]
        lower = inner[[7, 6, 5]]
        opening = float(np.mean(np.linalg.norm(lower - upper, axis=1)))
        if opening < 0.015 * W:
            mid = 0.5 * (upper + lower)
            pts = np.concatenate([inner[:1], mid, inner[4:5]])
            c = _catmull(pts, 5)
            n = len(c)
            wv = 0.0065 * W * (0.45 + 0.55 * np.sin(np.linspace(0, math.pi, n)) ** 0.6)
            _fill(img, _stroke(c, wv), p["mouth_line"])
            # little lower-lip hint
            lc = P[57] * 0.55 + mid[1] * 0.45
            hw = 0.18 * float(np.linalg.norm(inner[4] - inner[0]))
            _line(img, _bez(lc - (hw, 0), lc + (0, 0.004 * W), lc + (hw, 0), 5), p["skin_sh"], 0.005 * W)
            return
        poly = _catmull(inner, 5, closed=True)
        box = _bbox(poly, 3, img.shape[:2])
        if box is None:
            return
        x0, y0, x1, y1 = box
        off = np.array([x0, y0], np.float32)
        q = poly - off
        layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        layer[:] = p["mouth_in"]
        top_y = float(q[:, 1].min())
        bot_y = float(q[:, 1].max())
        xm = float(np.mean(q[:, 0]))
        hw = 0.5 * float(q[:, 0].max() - q[:, 0].min())
        # tongue (lower part)
        tc = np.array([xm, bot_y + 0.2 * opening], np.float32)
        cv2.ellipse(layer, _ip(tc).reshape(2), (int(hw * 0.62 * _SC), int(max(opening * 0.55, 1) * _SC)),
                    0, 0, 360, p["tongue"], -1, cv2.LINE_AA, _SHIFT)
        # upper teeth band
        th = min(0.22 * opening + 0.004 * W, 0.022 * W)
        teeth = np.array([(xm - hw * 1.2, top_y - 5), (xm + hw * 1.2, top_y - 5),
                          (xm + hw * 1.2, top_y + th), (xm - hw * 1.2, top_y + th)], np.float32)
        _fill(layer, teeth, p["teeth"])
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _fill(m, q, (255,))
        _composite(img, box, layer, m)
        _line(img, poly, p["mouth_line"], 0.005 * W, closed=True)
        up_c = _catmull(inner[[0, 1, 2, 3, 4]], 4)
        _fill(img, _stroke(up_c, 0.006 * W * (0.5 + 0.5 * np.sin(np.linspace(0, math.pi, len(up_c))))),
              p["mouth_line"])

    def _eye_open(self, L: np.ndarray, k: int) -> float:
        idx = (37, 38, 41, 40) if k == 0 else (43, 44, 47, 46)
        up = L[list(idx[:2])].mean(0)
        dn = L[list(idx[2:])].mean(0)
        return float(np.linalg.norm(dn - up))

    def _draw_eye(self, img: np.ndarray, P: np.ndarray, k: int, blink: float, fea: float, sad: float,
                  hap: float) -> None:
        p, W = self.palette, float(self.W)
        A, B = (P[36], P[39]) if k == 0 else (P[45], P[42])  # outer, inner corners
        ax = B - A
        w = float(np.linalg.norm(ax)) + 1e-6
        ex = ax / w
        fx = P[42:48].mean(0) - P[36:42].mean(0)
        fx /= np.linalg.norm(fx) + 1e-6
        up = np.array([fx[1], -fx[0]], np.float32)
        o = float(np.clip(self._eye_open(P, k) / max(self._eye_ref[k], 1e-3), 0.0, 1.35))
        o *= (1.0 - blink) * (1.0 + 0.12 * fea - 0.12 * sad - 0.1 * hap)
        H = w * self._eye_aspect[k]
        base = 0.5 * (A + B) + up * (0.02 * w)
        A = base - ex * 0.5 * w
        u = np.linspace(0.0, 1.0, 14, dtype=np.float32)
        su = np.clip(np.sin(math.pi * u), 0.0, 1.0)
        v_up = H * 0.6 * su ** 0.75 * (1.0 + 0.22 * (0.5 - u))
        v_lo = -H * 0.38 * su ** 0.9

        def pt(uu, vv):
            return (A[None] + uu[:, None] * ax[None] + vv[:, None] * up[None]).astype(np.float32)

        lash_c = p["lash"]
        if o < 0.12:
            # closed eye: relaxed downward arc with a small outer lash
            vv = -H * 0.12 * su + 0.1 * H
            c = pt(u, vv)
            wv = 0.065 * w * (0.35 + 0.65 * su ** 0.5)
            _fill(img, _stroke(c, wv), lash_c)
            return
        o = min(o, 1.2)
        v_top = v_lo + o * (v_up - v_lo)
        upper = pt(u, v_top)
        lower = pt(u[::-1], v_lo[::-1])
        poly = np.concatenate([upper, lower[1:-1]])
        box = _bbox(np.concatenate([poly, pt(np.array([0.5]), np.array([H]))]), 4, img.shape[:2])
        if box is not None:
            x0, y0, x1, y1 = box
            off = np.array([x0, y0], np.float32)
            layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
            layer[:] = p["sclera"]
            # lid shadow on the sclera
            _fill(layer, np.concatenate([upper, pt(u[::-1], (v_top - 0.18 * H)[::-1])]) - off, p["sclera_sh"])
            ic = pt(np.array([0.52]), np.array([0.02 * H]))[0] - off
            rx, ry = 0.29 * w, 0.5 * H
            angd = math.degrees(math.atan2(float(ex[1]), float(ex[0])))
            if k == 1:
                angd += 180.0

            def ell(c, a, b, col, th=-1):
                cv2.ellipse(layer, _ip(c).reshape(2), (max(int(a * _SC), 1), max(int(b * _SC), 1)),
                            angd, 0, 360, col, th, cv2.LINE_AA, _SHIFT)

            ell(ic, rx, ry, p["iris_dark"])
            ell(ic + np.array([0, 0.12 * ry]), rx * 0.84, ry * 0.82, p["iris"])
            ell(ic + np.array([0, 0.42 * ry]), rx * 0.6, ry * 0.38, p["iris_light"])
            ell(ic + np.array([0, 0.05 * ry]), rx * 0.4, ry * 0.5, p["pupil"])
            # upper-iris shadow band
            _fill(layer, np.concatenate([upper, pt(u[::-1], (v_top - 0.3 * H)[::-1])]) - off, p["iris_dark"])
            ell(ic, rx, ry, p["iris_dark"], max(1, int(0.05 * w)))
            # highlights
            side = -1.0 if k == 0 else 1.0
            ell(ic + np.array([side * 0.35 * rx, -0.4 * ry]), 0.26 * rx, 0.22 * ry, (255, 255, 255))
            ell(ic + np.array([-side * 0.3 * rx, 0.45 * ry]), 0.12 * rx, 0.1 * ry, (255, 255, 255))
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            _fill(m, poly - off, (255,))
            _composite(img, box, layer, m)
        # upper lash line (tapered, thick, with an outer wing)
        th = 0.11 * w * (0.35 + 0.65 * np.clip(su * 1.3, 0, 1) ** 0.5) * (0.6 + 0.4 * min(o, 1.0))
        th[0] = 0.09 * w
        top_edge = pt(u, v_top + th)
        wing = pt(np.array([-0.13]), np.array([v_top[0] + 0.2 * H]))
        lash = np.concatenate([wing, top_edge, pt(u[::-1], v_top[::-1] - 0.01 * w)])
        _fill(img, lash, lash_c)
        # lower lid (outer part) and crease
        lo = pt(u[1:9], v_lo[1:9])
        _line(img, lo, p["skin_line"], 0.02 * w)
        crease = pt(u[3:11], v_up[3:11] * max(o, 0.6) + 0.17 * H + 0.04 * w)
        _line(img, crease, p["skin_sh"], 0.018 * w)

    def _draw_brows(self, img: np.ndarray, P: np.ndarray) -> None:
        W = float(self.W)
        for idx in ((21, 20, 19, 18, 17), (22, 23, 24, 25, 26)):  # inner -> outer
            c = _catmull(P[list(idx)], 4)
            n = len(c)
            s = np.linspace(0, 1, n)
            wv = 0.016 * W * (1.0 - 0.8 * s ** 1.4) * (0.5 + 0.5 * np.clip(s * 5, 0, 1))
            _fill(img, _stroke(c, wv), self.palette["brow"])

    def _draw_glasses(self, img: np.ndarray, P: np.ndarray) -> None:
        W, col = float(self.W), self.palette["glasses"]
        centres = []
        for sl in (_R_EYE, _L_EYE):
            e = P[sl]
            c = e.mean(0) + np.array([0, 0.004 * W], np.float32)
            w = float(np.linalg.norm(e[3] - e[0]))
            a = math.degrees(math.atan2(*(P[45] - P[36])[::-1]))
            pts = cv2.ellipse2Poly((int(c[0] * 8), int(c[1] * 8)), (int(w * 0.78 * 8), int(w * 0.6 * 8)),
                                   int(a), 0, 360, 10).astype(np.float32) / 8.0
            # squarer frames
            pts = c + np.sign(pts - c) * np.abs(pts - c) ** 0.93 * np.abs(pts - c).max() ** 0.07
            _line(img, pts, col, 0.008 * W, closed=True)
            g = c + np.array([0.35 * w, -0.25 * w], np.float32)
            _line(img, np.array([g, g + np.array([-0.18 * w, 0.18 * w])]), (255, 255, 255), 0.008 * W)
            centres.append((c, w))
        (c0, w0), (c1, w1) = centres
        a = c0 + np.array([0.72 * w0, -0.1 * w0])
        b = c1 - np.array([0.72 * w1, 0.1 * w1])
        _line(img, _bez(a, 0.5 * (a + b) - np.array([0, 0.04 * W]), b, 6), col, 0.007 * W)

    def _draw_beard(self, img: np.ndarray, P: np.ndarray) -> None:
        mc = P[48:60].mean(0)
        inner = [P[i] + 0.5 * (mc - P[i]) for i in range(13, 2, -1)]
        poly = np.concatenate([_catmull(P[3:14], 4), np.array(inner, np.float32)])
        _fill(img, poly, self.palette["beard"])
        _line(img, np.concatenate([P[[48]], P[59:54:-1], P[[54]]]), self.palette["beard"], 0.01 * self.W)
