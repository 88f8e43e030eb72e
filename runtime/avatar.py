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
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .mouth import close_mouth as _close_mouth

logger = logging.getLogger(__name__)

__all__ = [
    "AvatarStyle",
    "AvatarRenderer",
    "style_from_photo",
    "canonical_landmarks",
    "mean_face_landmarks",
    "EMOTIONS",
    "unpremultiply",
    "apply_emotion",
    "eye_open_factor",
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
    def from_dict(cls, d: dict) -> AvatarStyle:
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


def skin_colour(img: np.ndarray, L: np.ndarray, forehead: bool = True) -> np.ndarray:
    """Robust median RGB of cheek patches (and a forehead patch) of an RGB uint8 image with 68 landmarks (px)."""
    re, le = L[_R_EYE].mean(0), L[_L_EYE].mean(0)
    iod = max(float(np.linalg.norm(le - re)), 4.0)
    ex = (le - re) / iod
    up = np.array([ex[1], -ex[0]], np.float32)  # image "up" of the face
    r = 0.13 * iod
    cheeks = [0.5 * (L[2] + L[31]) - 0.1 * iod * up, 0.5 * (L[14] + L[35]) - 0.1 * iod * up]
    patches = [_rect(img, c[0] - r, c[1] - r, c[0] + r, c[1] + r) for c in cheeks]
    if forehead:
        fore = 0.5 * (L[21] + L[22]) + 0.32 * iod * up
        patches.append(_rect(img, fore[0] - 2 * r, fore[1] - 0.7 * r, fore[0] + 2 * r, fore[1] + 0.7 * r))
    return _robust_median(np.concatenate(patches))


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
    brow_y = float(L[17:27, 1].min())
    x_l, x_r = float(L[:17, 0].min()), float(L[:17, 0].max())

    skin = skin_colour(img, L)

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
    xs = np.concatenate([np.arange(int(L[0, 0] - 0.55 * iod), int(L[0, 0] - 0.05 * iod)),
                         np.arange(int(L[16, 0] + 0.05 * iod), int(L[16, 0] + 0.55 * iod))])
    xs = np.clip(xs, 0, W - 1)
    if len(ys) and len(xs):
        strip = _to_lab(img[ys][:, xs]).reshape(len(ys), len(xs), 3)
        frac = (np.linalg.norm(strip - hair_lab, axis=2) < 16.0).mean(1)
        gap = 0
        for y, fr in zip(ys, frac):
            if fr > 0.25:
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
    for i in range(2, 15):
        k = 0.15 * math.sin(math.pi * (1.0 - abs(i - 8) / 6.0))
        P[i, 0] = cx + (P[i, 0] - cx) * (1.0 - k)
    P[8, 1] += 0.008 * size
    return P


def canonical_landmarks(landmarks_px: np.ndarray, size: int = 256, close_mouth: bool = True) -> np.ndarray:
    """Align photo landmarks into a ``size`` canvas and anime-fy them; returns [68,2] in 0..1.

    With ``close_mouth`` (default) parted lips in the photo are closed so the result
    is a usable neutral (speech animation then opens the mouth from there).
    """
    L = np.asarray(landmarks_px, np.float32).reshape(68, 2)
    if close_mouth:
        L = _close_mouth(L)
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


# --------------------------------------------------------------------------- emotion
def apply_emotion(landmarks: np.ndarray, emotion: Sequence[float] | np.ndarray | None,
                  scale: float = 1.0) -> np.ndarray:
    """Expression offsets of the landmarks for an emotion vector (:data:`EMOTIONS` order, 0..1):
    brow tilt/lift, mouth-corner height, mouth width. ``scale``: canvas size of ``landmarks``'
    units (1 for 0..1 canvas units). Shared by every renderer, so they show the same expression."""
    if emotion is None:
        return landmarks
    ang, dis, fea, hap, _neu, sad = (float(v) for v in np.clip(np.asarray(emotion, np.float32).reshape(6), 0, 1))
    if ang + dis + fea + hap + sad < 1e-3:
        return landmarks
    L = np.array(landmarks, np.float32, copy=True)
    inner = scale * (0.026 * (sad + fea) - 0.028 * ang - 0.014 * dis)  # + = inner brow ends up
    lift = scale * (0.008 * hap + 0.01 * fea)
    for idx, w in ((21, 1.0), (20, 0.6), (19, 0.3), (22, 1.0), (23, 0.6), (24, 0.3)):
        L[idx, 1] -= inner * w + lift
    for idx in (17, 18, 25, 26):
        L[idx, 1] -= lift - scale * 0.006 * sad
    dy = scale * (-0.015 * hap + 0.016 * sad + 0.008 * ang + 0.01 * dis)  # + = corners down
    for idx in (48, 60, 54, 64):
        L[idx, 1] += dy
    for idx in (49, 59, 53, 55, 61, 67, 63, 65):
        L[idx, 1] += 0.45 * dy
    mc = float(L[48:68, 0].mean())
    L[48:68, 0] = mc + (L[48:68, 0] - mc) * (1.0 + 0.08 * hap - 0.06 * ang)
    return L


def eye_open_factor(emotion: Sequence[float] | np.ndarray | None) -> float:
    """How open the eyes are for an emotion (1 = neutral): wider when afraid, narrower when sad/happy."""
    if emotion is None:
        return 1.0
    _ang, _dis, fea, hap, _neu, sad = (float(v) for v in np.clip(np.asarray(emotion, np.float32).reshape(6), 0, 1))
    return 1.0 + 0.12 * fea - 0.12 * sad - 0.1 * hap


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
    B = _CR_BASIS.get(n)
    if B is None:
        t = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        t2, t3 = t * t, t * t * t
        B = 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t, t3 - t2], 1)
        _CR_BASIS[n] = B
    idx = np.arange(nseg)[:, None] + np.arange(4)[None]
    out = np.einsum("nk,skd->snd", B, ext[idx]).reshape(-1, 2)
    if not closed:
        out = np.concatenate([out, p[-1:]])
    return out


_CR_BASIS: dict[int, np.ndarray] = {}


def _bez(p0, c, p1, n: int = 6) -> np.ndarray:
    """Quadratic Bezier from ``p0`` to ``p1`` with control ``c`` (n samples, inclusive)."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    return ((1 - t) ** 2 * np.asarray(p0, np.float32) + 2 * (1 - t) * t * np.asarray(c, np.float32)
            + t * t * np.asarray(p1, np.float32))


_SHIFT = 3
_SC = float(1 << _SHIFT)


def _ip(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts, np.float32) * _SC).astype(np.int32).reshape(-1, 1, 2)


def _opaque(img: np.ndarray, color):
    """On a premultiplied RGBA canvas (``draw_rgba``) an RGB colour is painted with alpha 255."""
    if img.ndim == 3 and img.shape[2] == 4 and isinstance(color, tuple) and len(color) == 3:
        return (*color, 255)
    return color


def _fill(img: np.ndarray, pts: np.ndarray, color, aa: bool = True) -> None:
    cv2.fillPoly(img, [_ip(pts)], _opaque(img, color), cv2.LINE_AA if aa else cv2.LINE_8, _SHIFT)


def _line(img: np.ndarray, pts, color, th: float, closed: bool = False) -> None:
    """Anti-aliased polyline(s); ``pts`` is one [n,2] array or a list of them."""
    arrs = [_ip(a) for a in pts] if isinstance(pts, (list, tuple)) else [_ip(pts)]
    cv2.polylines(img, arrs, closed, _opaque(img, color), max(1, int(round(th))), cv2.LINE_AA, _SHIFT)


def _outline(img: np.ndarray, poly: np.ndarray, color, th: float) -> None:
    """Closed outline drawn as one even-odd filled ribbon (faster than thick polylines)."""
    _fill(img, _stroke(np.concatenate([poly, poly[:1]]), th), color)


def _stroke(centre: np.ndarray, widths) -> np.ndarray:
    """Closed polygon of a variable-width stroke along ``centre``."""
    c = np.asarray(centre, np.float32)
    d = np.empty_like(c)
    d[1:-1] = c[2:] - c[:-2]
    d[0], d[-1] = c[1] - c[0], c[-1] - c[-2]
    n = d[:, ::-1] * np.array([-1.0, 1.0], np.float32)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-6
    w = np.broadcast_to(np.asarray(widths, np.float32), (len(c),))[:, None] * 0.5
    return np.concatenate([c + n * w, (c - n * w)[::-1]])


def _taper(n: int, w: float, head: float = 0.35, tail: float = 0.35) -> np.ndarray:
    """Stroke widths that swell from the ends to ``w`` in the middle."""
    s = np.linspace(0.0, 1.0, n, dtype=np.float32)
    return w * np.minimum(np.minimum(s / max(head, 1e-3), (1 - s) / max(tail, 1e-3)), 1.0) ** 0.6 + 0.5


def _bbox(pts: np.ndarray, pad: float, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    x0 = max(int(pts[:, 0].min() - pad), 0)
    y0 = max(int(pts[:, 1].min() - pad), 0)
    x1 = min(int(pts[:, 0].max() + pad) + 1, shape[1])
    y1 = min(int(pts[:, 1].max() + pad) + 1, shape[0])
    if x1 <= x0 + 1 or y1 <= y0 + 1:
        return None
    return x0, y0, x1, y1


def _blend(img: np.ndarray, box: tuple[int, int, int, int], layer: np.ndarray, mask: np.ndarray,
           alpha: float = 1.0) -> None:
    """Alpha-composite ``layer`` into ``img[box]`` through a uint8 (anti-aliased) ``mask``."""
    x0, y0, x1, y1 = box
    roi = img[y0:y1, x0:x1]
    w1 = mask.astype(np.float32) * (alpha / 255.0)
    if roi.shape[2] == 4 and layer.shape[2] == 3:  # premultiplied RGBA canvas: the layer is opaque
        layer = cv2.cvtColor(layer, cv2.COLOR_RGB2RGBA)
    roi[:] = cv2.blendLinear(layer, roi, w1, 1.0 - w1)


def _paste(dst: np.ndarray, src: np.ndarray, mask: np.ndarray, x: int, y: int, alpha: float = 1.0) -> None:
    """Alpha-paste ``src`` (with uint8 ``mask``) at integer offset (x, y), clipped to ``dst``."""
    h, w = src.shape[:2]
    xa, ya = max(x, 0), max(y, 0)
    xb, yb = min(x + w, dst.shape[1]), min(y + h, dst.shape[0])
    if xb <= xa or yb <= ya:
        return
    _blend(dst, (xa, ya, xb, yb), np.ascontiguousarray(src[ya - y:yb - y, xa - x:xb - x]),
           mask[ya - y:yb - y, xa - x:xb - x], alpha)


def _fill_clipped(img: np.ndarray, poly: np.ndarray, color, clip: np.ndarray) -> None:
    """Fill ``poly`` (anti-aliased) restricted to the inside of ``clip``.

    The clip edge is hard (at the supersampled resolution); callers draw an outline over it.
    """
    box = _bbox(poly, 2, img.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    off = np.array([x0, y0], np.float32)
    roi = img[y0:y1, x0:x1]
    layer = roi.copy()
    _fill(layer, poly - off, color)
    m = np.zeros(roi.shape[:2], np.uint8)
    _fill(m, clip - off, 255, aa=False)
    cv2.copyTo(layer, m, roi)


def unpremultiply(rgba: np.ndarray) -> np.ndarray:
    """Premultiplied uint8 RGBA -> straight alpha (colour / alpha; 0 where alpha is 0)."""
    a = rgba[..., 3:4]
    out = rgba.copy()
    edge = (a > 0) & (a < 255)  # only anti-aliased edge pixels change
    if edge.any():
        m = edge[..., 0]
        px = rgba[m].astype(np.float32)
        out[m, :3] = np.clip(np.round(px[:, :3] * (255.0 / px[:, 3:4])), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- renderer
class AvatarRenderer:
    """Draws a cel-shaded anime bust from animated 68-point landmarks.

    ``neutral`` is the person's canonical neutral shape ([68,2] in 0..1, e.g. from
    :func:`canonical_landmarks`); it fixes the head/hair/body geometry and the
    eye-openness reference.  Drawing happens at 2x and is downsampled with ``INTER_AREA``.

    Pose convention: ``yaw > 0`` moves the facial features toward +x (image right),
    ``pitch > 0`` moves them down (looking down), ``roll > 0`` rotates the head
    clockwise on screen (about the chin/neck pivot).
    """

    SS = 2  # supersampling factor
    EYE_SCALE = 1.12  # extra anime enlargement of the drawn eyes

    def __init__(self, style: AvatarStyle, neutral: np.ndarray, size: int = 256) -> None:
        self.style = style
        self.size = int(size)
        self.W = self.size * self.SS
        self.neutral = np.asarray(neutral, np.float32).reshape(68, 2).copy()
        self._seed = zlib.crc32(repr(sorted(style.to_dict().items())).encode())
        self.palette = self._make_palette(style)
        N = self.neutral * self.W
        self._N = N
        self.cx = float(0.25 * (N[0, 0] + N[16, 0]) + 0.5 * N[27:31, 0].mean())
        self.eye_y = float(N[36:48, 1].mean())
        self.pivot = np.array([self.cx, N[8, 1] - 0.02 * self.W], np.float32)
        self._eye_ref = [self._eye_open(N, k) for k in (0, 1)]
        self._eye_aspect = []
        for k, (a, b) in enumerate(((36, 39), (45, 42))):
            asp = self._eye_ref[k] / max(float(np.linalg.norm(N[b] - N[a])), 1e-3)
            self._eye_aspect.append(float(np.clip(0.68 * (asp / 0.36) ** 0.6, 0.52, 0.85)))
        self._w68 = np.ones(68, np.float32)
        for i in range(17):
            self._w68[i] = np.clip(1.0 - abs(i - 8) / 6.0, 0.0, 1.0) * 0.9
        self._sprites: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._build_static()
        self._pack_static()
        self._bg = self._make_background()
        self._blush = self._blush_sprite()
        self._body_layer, self._body_mask, self._body_box = self._make_body()

    # ----------------------------------------------------------------- palette
    @staticmethod
    def _make_palette(st: AvatarStyle) -> dict[str, RGB]:
        hh, hs, hv = _rgb2hsv(st.hair)
        sh, ss_, sv = _rgb2hsv(st.skin)
        eh, es, ev = _rgb2hsv(st.eyes)
        lh, _ls, _lv = _rgb2hsv(st.lips)
        bh, bs, bv = _rgb2hsv(st.background)
        p: dict[str, RGB] = {}
        p["bg"] = st.background
        p["bg_edge"] = _hsv2rgb(bh, bs * 1.15 + 0.03, bv * 0.86)
        p["bg_dot"] = _mix(st.background, (255, 255, 255), 0.3)
        p["skin"] = st.skin
        p["skin_sh"] = _hsv2rgb(sh - 6, ss_ * 1.2 + 0.1, sv * 0.88)
        p["skin_line"] = _hsv2rgb(sh - 8, min(0.75, ss_ * 1.3 + 0.25), sv * 0.42)
        p["hair"] = st.hair
        p["hair_sh"] = _hsv2rgb(hh + 4, hs * 1.1 + 0.04, hv * 0.72)
        p["hair_hi"] = _mix(_hsv2rgb(hh, hs * 0.8, min(1.0, hv * 1.25 + 0.12)), (255, 255, 255), 0.25)
        p["hair_line"] = _hsv2rgb(hh, min(0.8, hs * 1.1 + 0.1), min(hv * 0.42, 0.3))
        p["brow"] = _hsv2rgb(hh, min(0.85, hs * 1.1 + 0.1), min(hv * 0.6, 0.38))
        p["lash"] = _hsv2rgb(hh, min(0.7, hs * 0.8 + 0.2), min(hv * 0.3, 0.15))
        p["sclera"] = (252, 252, 255)
        p["sclera_sh"] = (208, 212, 234)
        p["iris"] = st.eyes
        p["iris_dark"] = _hsv2rgb(eh, min(1.0, es * 1.1 + 0.1), ev * 0.5)
        p["iris_light"] = _mix(_hsv2rgb(eh - 8, es * 0.85, min(1.0, ev * 1.35 + 0.12)), (255, 255, 255), 0.15)
        p["pupil"] = _hsv2rgb(eh, min(1.0, es + 0.1), ev * 0.2)
        p["mouth_in"] = _hsv2rgb(lh - 4, 0.7, 0.5)
        p["mouth_line"] = _hsv2rgb(lh - 10, 0.55, 0.24)
        p["tongue"] = _hsv2rgb(lh + 2, 0.42, 0.92)
        p["teeth"] = (255, 255, 255)
        p["blush"] = _hsv2rgb(352, 0.5, 1.0)
        p["blush_line"] = _hsv2rgb(350, 0.55, 0.85)
        p["nose"] = _hsv2rgb(sh - 8, ss_ * 1.3 + 0.15, sv * 0.7)
        p["cloth"] = _hsv2rgb(eh + 10, 0.42, 0.5)
        p["cloth_sh"] = _hsv2rgb(eh + 14, 0.48, 0.4)
        p["cloth_line"] = _hsv2rgb(eh + 14, 0.5, 0.2)
        p["collar"] = (250, 250, 252)
        p["glasses"] = (62, 56, 72)
        p["beard"] = _mix(st.hair, _hsv2rgb(sh, ss_, sv * 0.8), 0.3)
        return p

    # ----------------------------------------------------------------- static geometry
    def _build_static(self) -> None:
        """Hair / head / body contours in neutral (supersampled) canvas coordinates."""
        N, W, st = self._N, float(self.W), self.style
        rng = np.random.default_rng(self._seed)
        cx = self.cx
        j0, j16 = N[0], N[16]
        yc = float(0.5 * (j0[1] + j16[1]))
        rx = float(0.5 * (j16[0] - j0[0])) * 1.02
        chin_y = float(N[8, 1])
        top = max(yc - 0.95 * (chin_y - yc), 0.13 * W)
        ry = yc - top
        t = np.linspace(0.0, math.pi, 24, dtype=np.float32)
        self.fore_arc = np.stack([cx + rx * np.cos(t), yc - ry * np.sin(t)], 1)  # j16 -> over top -> j0
        self.fore_arc[0], self.fore_arc[-1] = j16, j0

        L = float(np.clip(st.hair_length, 0.0, 1.0))
        vol = 0.08 * W
        hx, hy, hyc = rx + vol, ry + 0.9 * vol, yc + 0.01 * W
        phase = float(rng.uniform(0, 2 * math.pi))

        def outer(a: np.ndarray, bumps: float = 0.0) -> np.ndarray:
            r = 1.0 + bumps * np.sin(9.0 * a + phase)
            return np.stack([cx + hx * r * np.cos(a), hyc - hy * r * np.sin(a)], 1).astype(np.float32)

        # back hair (drawn behind everything)
        y_end = yc + (0.1 + 0.72 * L) * W
        dome = outer(np.linspace(-0.3, math.pi + 0.3, 32, dtype=np.float32))
        ymid_r, ymid_l = 0.5 * (dome[0, 1] + y_end), 0.5 * (dome[-1, 1] + y_end)
        if L < 0.35:
            r_bot, l_bot = (cx + 0.7 * rx, y_end), (cx - 0.7 * rx, y_end)
            r_mid, l_mid = (dome[0, 0] - 0.01 * W, ymid_r), (dome[-1, 0] + 0.01 * W, ymid_l)
        else:
            fl = 0.05 * W * L
            r_bot, l_bot = (dome[0, 0] + fl, y_end), (dome[-1, 0] - fl, y_end)
            r_mid, l_mid = (dome[0, 0] + 0.4 * fl, ymid_r), (dome[-1, 0] - 0.4 * fl, ymid_l)
        outline = _catmull(np.concatenate([np.array([r_bot, r_mid], np.float32), dome,
                                           np.array([l_mid, l_bot], np.float32)]), 3)
        xs_t = np.linspace(l_bot[0], r_bot[0], 8)[1:-1]
        tips = np.stack([xs_t, y_end - 0.06 * W * (np.arange(len(xs_t)) % 2 == 0)], 1)
        self.hair_back = np.concatenate([outline, tips.astype(np.float32)])

        # front hair: bumpy dome, spiky fringe, two side locks
        fringe_y = float(N[17:27, 1].min()) - 0.01 * W
        notch_y = fringe_y - 0.085 * W
        lock_y = yc + (0.13 + 0.42 * L) * W
        part = cx + rx * float(rng.uniform(-0.3, 0.3))
        dome_f = outer(np.linspace(math.pi + 0.1, -0.1, 40, dtype=np.float32), 0.018)
        xl_in, xr_in = cx - 0.8 * rx, cx + 0.8 * rx
        y_tmp = fringe_y + 0.015 * W
        n_str = 6
        xs = np.linspace(xl_in, xr_in, n_str + 1)
        xs[1:-1] += rng.uniform(-0.2, 0.2, n_str - 1) * (xs[1] - xs[0])
        prev = np.array([xl_in, y_tmp], np.float32)
        edge = [prev[None]]
        notches = []
        for i in range(n_str):
            mid = 0.5 * (xs[i] + xs[i + 1])
            lean = float(np.clip((mid - part) / (0.9 * rx), -1, 1))
            tip = np.array([mid + lean * 0.035 * W,
                            fringe_y + (rng.uniform(-0.012, 0.01) - 0.025 * abs(lean) ** 1.5) * W], np.float32)
            if i == n_str - 1:
                nb = np.array([xr_in, y_tmp], np.float32)
            else:
                nb = np.array([xs[i + 1], notch_y + rng.uniform(-0.015, 0.025) * W], np.float32)
                notches.append(nb)
            bow = np.array([-0.012 * W * lean, 0.012 * W], np.float32)
            edge.append(_bez(prev, 0.5 * (prev + tip) + bow + (-0.005 * W, 0), tip, 6)[1:])
            edge.append(_bez(tip, 0.5 * (tip + nb) + bow + (0.005 * W, 0), nb, 6)[1:])
            prev = nb
        fringe = np.concatenate(edge)  # left -> right
        locks = []
        for sgn, top_pt, x_in in ((1, dome_f[-1], xr_in), (-1, dome_f[0], xl_in)):
            tip1 = np.array([cx + sgn * (rx + 0.015 * W), lock_y], np.float32)
            notch = np.array([cx + sgn * (rx - 0.012 * W), lock_y - 0.085 * W], np.float32)
            tip2 = np.array([cx + sgn * 0.84 * rx, lock_y - 0.04 * W], np.float32)
            end = np.array([x_in, y_tmp], np.float32)
            lk = np.concatenate([
                _bez(top_pt, (top_pt[0] + sgn * 0.004 * W, 0.45 * top_pt[1] + 0.55 * tip1[1]), tip1, 9),
                _bez(tip1, 0.5 * (tip1 + notch) + (-sgn * 0.008 * W, 0.0), notch, 5)[1:],
                _bez(notch, 0.5 * (notch + tip2) + (sgn * 0.006 * W, 0.01 * W), tip2, 5)[1:],
                _bez(tip2, (cx + sgn * 0.74 * rx, 0.5 * (y_tmp + tip2[1])), end, 9)[1:]])
            locks.append(lk)
        r_lock, l_lock = locks
        self.hair_front = np.concatenate([dome_f, r_lock[1:], fringe[::-1][1:],
                                          l_lock[::-1][1:-1]]).astype(np.float32)
        self.fringe_edge = fringe.astype(np.float32)
        # lock separation lines (strand texture)
        self.hair_strands = [_bez(n_ + (0, 0.008 * W), n_ + ((n_[0] - cx) * 0.12 + 0.01 * W, -0.05 * W),
                                  n_ + ((n_[0] - cx) * 0.15, -0.085 * W), 6)
                             for n_ in notches]
        for sgn in (1, -1):
            a_ = np.array([cx + sgn * (rx - 0.012 * W), lock_y - 0.085 * W], np.float32)
            self.hair_strands.append(_bez(a_, a_ + (sgn * 0.004 * W, -0.05 * W),
                                          a_ + (sgn * 0.01 * W, -0.1 * W), 6))
        # highlight band ("angel ring")
        a = np.linspace(math.pi * 0.8, math.pi * 0.2, 16, dtype=np.float32)
        ring_c = np.stack([cx + hx * 0.74 * np.cos(a), hyc - hy * 0.74 * np.sin(a) + 0.05 * W], 1)
        self.hair_ring = _stroke(ring_c, 0.02 * W * (0.3 + 0.7 * np.sin(np.linspace(0, math.pi, 16))))
        # ahoge: a single curly strand on top
        base = np.array([cx + 0.12 * rx, hyc - hy + 0.02 * W], np.float32)
        sgn = 1.0 if rng.uniform() > 0.5 else -1.0
        c_ = _bez(base, base + (sgn * 0.06 * W, -0.08 * W), base + (sgn * -0.03 * W, -0.07 * W), 10)
        self.ahoge = _stroke(c_, np.linspace(0.022 * W, 0.5, 10))

        # ears (hidden under long hair)
        self.ears = []
        if L < 0.55:
            for side, j in ((-1, N[1]), (1, N[15])):
                self.ears.append((np.array([j[0] + side * 0.012 * W, j[1] - 0.01 * W], np.float32), side))

        # neck & shoulders (the body never moves)
        nw = 0.34 * float(N[12, 0] - N[4, 0])
        self.neck = np.array([
            (cx - nw * 0.5, yc), (cx + nw * 0.5, yc),
            (cx + nw * 0.5, chin_y + 0.05 * W), (cx + nw * 0.62, chin_y + 0.12 * W),
            (cx - nw * 0.62, chin_y + 0.12 * W), (cx - nw * 0.5, chin_y + 0.05 * W)], np.float32)
        sh_y = max(chin_y + 0.085 * W, 0.82 * W)
        body = [(cx - nw * 0.55, sh_y - 0.01 * W), (cx - nw * 1.6, sh_y + 0.02 * W),
                (cx - nw * 2.8, sh_y + 0.07 * W), (cx - nw * 3.5, sh_y + 0.16 * W),
                (cx - nw * 3.8, 1.1 * W), (cx + nw * 3.8, 1.1 * W),
                (cx + nw * 3.5, sh_y + 0.16 * W), (cx + nw * 2.8, sh_y + 0.07 * W),
                (cx + nw * 1.6, sh_y + 0.02 * W), (cx + nw * 0.55, sh_y - 0.01 * W)]
        self.body = _catmull(np.array(body, np.float32), 4)
        half = self.body[len(self.body) // 2:]
        self.body_shadow = np.concatenate([half, np.array([(cx + 0.02 * W, 1.1 * W)], np.float32)])
        self.collar = [np.array([(cx + s * nw * 0.6, sh_y - 0.02 * W), (cx + s * nw * 1.25, sh_y + 0.02 * W),
                                 (cx + s * nw * 0.35, sh_y + 0.11 * W), (cx, sh_y + 0.05 * W)], np.float32)
                       for s in (-1, 1)]
        self.neck_shadow = np.array([
            (cx + nw * 0.1, chin_y), (cx + nw * 0.52, chin_y - 0.03 * W),
            (cx + nw * 0.55, sh_y + 0.02 * W), (cx + nw * 0.25, sh_y + 0.02 * W)], np.float32)

    def _pack_static(self) -> None:
        """Concatenate all head-attached contours so one pose transform per frame suffices."""
        parts = [("hair_back", self.hair_back), ("neck", self.neck), ("fore_arc", self.fore_arc),
                 ("fringe_edge", self.fringe_edge), ("hair_front", self.hair_front),
                 ("hair_ring", self.hair_ring), ("ahoge", self.ahoge)]
        parts += [(f"strand{i}", s_) for i, s_ in enumerate(self.hair_strands)]
        parts += [(f"ear{i}", c[None]) for i, (c, _) in enumerate(self.ears)]
        self._slices: dict[str, slice] = {}
        n = 68
        for name, arr in parts:
            self._slices[name] = slice(n, n + len(arr))
            n += len(arr)
        self._static_pts = np.concatenate([np.zeros((68, 2), np.float32)] + [a for _, a in parts]).astype(np.float32)
        self._static_w = np.concatenate([self._w68, np.zeros(n - 68, np.float32)])

    def _make_body(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """Pre-render the (static) shoulders into a layer + anti-aliased mask."""
        W = self.W
        layer = np.zeros((W, W, 3), np.uint8)
        self._draw_body(layer)
        mask = np.zeros((W, W), np.uint8)
        _fill(mask, self.body, 255)
        _line(mask, self.body, 255, 0.007 * W)
        for c in self.collar:
            _fill(mask, c, 255)
        box = _bbox(self.body, 4, (W, W)) or (0, 0, W, W)
        x0, y0, x1, y1 = box
        return layer[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy(), box

    def _make_background(self) -> np.ndarray:
        """Flat pastel with a soft vignette and a faint polka-dot pattern (computed once)."""
        W, p = self.W, self.palette
        yy, xx = np.mgrid[0:W, 0:W].astype(np.float32) / W
        r = np.sqrt((xx - 0.5) ** 2 + (yy - 0.45) ** 2)
        t = (np.clip((r - 0.35) / 0.45, 0, 1) ** 1.5)[..., None]
        bg = (1 - t) * np.array(p["bg"], np.float32) + t * np.array(p["bg_edge"], np.float32)
        img = np.round(bg).astype(np.uint8)
        step = W // 8
        for j in range(9):
            for i in range(9):
                x = i * step + (step // 2 if j % 2 else 0)
                cv2.circle(img, (x, j * step), max(2, W // 90), p["bg_dot"], -1, cv2.LINE_AA)
        return img

    # ----------------------------------------------------------------- pose
    def _pose_fn(self, pose: Sequence[float]):
        """Point transform for a head pose; ``w`` in [0,1] = how much a point is a facial feature."""
        yaw, pitch, roll = (float(v) for v in pose)
        sy, sp = math.sin(yaw), math.sin(pitch)
        W, cx, cy = float(self.W), self.cx, self.eye_y
        c, s = math.cos(roll), math.sin(roll)
        R = np.array([[c, -s], [s, c]], np.float32)
        piv = self.pivot

        def f(pts: np.ndarray, w: np.ndarray | float = 0.0) -> np.ndarray:
            p = np.asarray(pts, np.float32).reshape(-1, 2)
            w = np.asarray(w, np.float32)
            x = cx + (p[:, 0] - cx) * (1.0 - (0.07 + 0.08 * w) * abs(sy)) + W * (0.03 + 0.07 * w) * sy
            y = cy + (p[:, 1] - cy) * (1.0 - 0.06 * w * abs(sp)) + W * (0.01 + 0.05 * w) * sp
            q = np.stack([x, y], 1) - piv
            return (q @ R.T + piv).astype(np.float32)

        return f

    # ----------------------------------------------------------------- public
    def draw(self, landmarks: np.ndarray, pose: np.ndarray | tuple = (0, 0, 0), blink: float = 0.0,
             emotion: np.ndarray | None = None) -> np.ndarray:
        """Render one frame on the avatar's own background; returns uint8 RGB ``[size, size, 3]``.

        ``landmarks``: [68,2] in 0..1 canvas coords (un-posed); ``pose``: (yaw, pitch, roll)
        radians; ``blink``: 0 open .. 1 closed; ``emotion``: optional probabilities in
        :data:`EMOTIONS` order.
        """
        return self._paint(self._bg.copy(), landmarks, pose, blink, emotion)

    def draw_rgba(self, landmarks: np.ndarray, pose: np.ndarray | tuple = (0, 0, 0), blink: float = 0.0,
                  emotion: np.ndarray | None = None) -> np.ndarray:
        """The character alone: uint8 RGBA ``[size, size, 4]``, straight (not premultiplied) alpha.

        Alpha is 0 outside the character (hair, face, neck, body), 255 inside, anti-aliased at its
        edges. Painting on a transparent premultiplied canvas makes every drawing step the "over"
        operator, so ``runtime.background.compose`` of this over any background equals drawing on it.
        """
        W = self.W
        img = self._paint(np.zeros((W, W, 4), np.uint8), landmarks, pose, blink, emotion)
        return unpremultiply(img)

    def posed_landmarks(self, landmarks: np.ndarray, pose: np.ndarray | tuple = (0, 0, 0),
                        emotion: np.ndarray | None = None) -> np.ndarray:
        """Where ``draw`` puts the 68 points (emotion offsets and head pose applied): [68, 2] in 0..1."""
        P = self._geometry(landmarks, pose, emotion)[0]
        return (P / float(self.W)).astype(np.float32)

    def _geometry(self, landmarks: np.ndarray, pose, emotion) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
        """Posed landmarks P [68, 2] and head-attached contours S (supersampled px), clipped pose, emotion."""
        W = float(self.W)
        L = np.asarray(landmarks, np.float32).reshape(68, 2) * W
        pose = np.zeros(3, np.float32) if pose is None else np.clip(
            np.asarray(pose, np.float32).reshape(3), -0.6, 0.6)
        emo = np.zeros(6, np.float32) if emotion is None else np.clip(
            np.asarray(emotion, np.float32).reshape(6), 0.0, 1.0)
        L = apply_emotion(L, emo, W)
        f = self._pose_fn(pose)
        pts = self._static_pts.copy()
        pts[:68] = L
        Q = f(pts, self._static_w)
        return Q[:68], {k: Q[v] for k, v in self._slices.items()}, pose, emo

    def _paint(self, img: np.ndarray, landmarks: np.ndarray, pose, blink: float, emotion) -> np.ndarray:
        """Draw the character onto the supersampled canvas ``img`` (RGB, or premultiplied RGBA) and
        downsample it to ``size``."""
        W, p = float(self.W), self.palette
        P, S, pose, emo = self._geometry(landmarks, pose, emotion)
        blink = float(np.clip(blink, 0.0, 1.0))
        ang, dis, fea, hap, _neu, sad = (float(v) for v in emo)

        # --- behind the head: back hair, neck, body, ears
        hb = S["hair_back"]
        _fill(img, hb, p["hair_sh"])
        _outline(img, hb, p["hair_line"], 0.006 * W)
        neck = S["neck"]
        neck[2:5] = self.neck[2:5]  # the base of the neck stays on the shoulders
        _fill(img, neck, p["skin"])
        _fill_clipped(img, self.neck_shadow, p["skin_sh"], neck)
        chin_sh = np.concatenate([P[3:14] + np.array([0.0, 0.035 * W], np.float32), P[13:2:-1]])
        _fill_clipped(img, chin_sh, p["skin_sh"], neck)
        _line(img, [neck[[5, 0]], neck[[1, 2]]], p["skin_line"], 0.005 * W)
        _blend(img, self._body_box, self._body_layer, self._body_mask)
        for i, (_c, side) in enumerate(self.ears):
            self._draw_ear(img, S[f"ear{i}"][0], side, pose)

        # --- face
        jaw = _catmull(P[0:17], 5)
        face = np.concatenate([jaw, S["fore_arc"][1:-1]])
        _fill(img, face, p["skin"])
        fe = S["fringe_edge"]
        shadow = np.concatenate([fe + np.array([0.004 * W, 0.022 * W], np.float32),
                                 fe[::-1] - np.array([0.0, 0.05 * W], np.float32)])
        _fill_clipped(img, shadow, p["skin_sh"], face)
        _fill(img, _stroke(jaw, 0.007 * W), p["skin_line"])
        if self.style.beard:
            self._draw_beard(img, P)
        self._draw_blush(img, P, 0.25 + 0.5 * hap + 0.15 * ang - 0.1 * fea)
        self._draw_nose(img, P)
        self._draw_mouth(img, P)
        for k in (0, 1):
            self._draw_eye(img, P, k, blink, fea, sad, hap)

        # --- front hair, brows, glasses
        hf = S["hair_front"]
        _fill(img, hf, p["hair"])
        _fill_clipped(img, S["hair_ring"], p["hair_hi"], hf)
        _line(img, [S[f"strand{i}"] for i in range(len(self.hair_strands))], p["hair_sh"], 0.005 * W)
        ah = S["ahoge"]
        _fill(img, ah, p["hair"])
        _outline(img, ah, p["hair_line"], 0.005 * W)
        _outline(img, hf, p["hair_line"], 0.007 * W)
        self._draw_brows(img, P)
        if self.style.glasses:
            self._draw_glasses(img, P)
        return cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA)

    # ----------------------------------------------------------------- parts
    def _draw_body(self, img: np.ndarray) -> None:
        p, W = self.palette, float(self.W)
        _fill(img, self.body, p["cloth"])
        _fill_clipped(img, self.body_shadow, p["cloth_sh"], self.body)
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
        _fill(img, c + (pts - c) * 0.5 - np.array([side * 0.006 * W, 0], np.float32), p["skin_sh"])

    def _blush_sprite(self) -> tuple[np.ndarray, np.ndarray]:
        """Soft pink ellipse (layer, blurred mask) sized from the neutral eye width."""
        N = self._N
        w = 0.5 * float(np.linalg.norm(N[39] - N[36]) + np.linalg.norm(N[45] - N[42]))
        ax = (max(int(0.5 * w), 2), max(int(0.2 * w), 2))
        R = (int(ax[0] * 1.6), int(ax[1] * 1.6) + ax[1] // 2)
        m = np.zeros((2 * R[1] + 1, 2 * R[0] + 1), np.uint8)
        cv2.ellipse(m, (R[0], R[1]), ax, 0, 0, 360, 255, -1, cv2.LINE_AA)
        k = ax[1] | 1
        m = cv2.GaussianBlur(m, (k, k), 0)
        layer = np.empty(m.shape + (3,), np.uint8)
        layer[:] = self.palette["blush"]
        return layer, m

    def _draw_blush(self, img: np.ndarray, P: np.ndarray, strength: float) -> None:
        if strength <= 0.02:
            return
        W, p = float(self.W), self.palette
        layer, mask = self._blush
        h, w_ = mask.shape
        for k, sl in enumerate((_R_EYE, _L_EYE)):
            e = P[sl]
            w = float(np.linalg.norm(e[3] - e[0]))
            out = -1.0 if k == 0 else 1.0
            cc = e.mean(0) + np.array([out * 0.15 * w, 1.0 * w], np.float32)
            _paste(img, layer, mask, int(round(cc[0])) - w_ // 2, int(round(cc[1])) - h // 2,
                   min(strength, 0.85) * 0.7)
            if strength > 0.45:  # anime "///" hatching
                segs = []
                for i in range(3):
                    a = cc + np.array([(i - 1) * 0.22 * w - 0.04 * w, -0.08 * w], np.float32)
                    segs.append(np.array([a, a + np.array([-0.1 * w, 0.16 * w])]))
                _line(img, segs, p["blush_line"], 0.004 * W)

    def _draw_nose(self, img: np.ndarray, P: np.ndarray) -> None:
        W = float(self.W)
        t, b = P[30], P[33]
        pts = np.array([t + 0.3 * (b - t) + np.array([0.004 * W, 0]), b + np.array([-0.008 * W, 0.001 * W]),
                        b + np.array([0.001 * W, 0.003 * W])], np.float32)
        _line(img, _catmull(pts, 4), self.palette["nose"], 0.006 * W)

    @staticmethod
    def mouth_opening(P: np.ndarray) -> float:
        """Mean inner-lip gap (61-63 vs 67-65), in the units of ``P``."""
        return float(np.mean(np.linalg.norm(P[[67, 66, 65]] - P[[61, 62, 63]], axis=1)))

    def _draw_mouth(self, img: np.ndarray, P: np.ndarray) -> None:
        p, W = self.palette, float(self.W)
        inner = P[60:68]
        opening = self.mouth_opening(P)
        if opening < 0.015 * W:
            mid = 0.5 * (P[[61, 62, 63]] + P[[67, 66, 65]])
            c = _catmull(np.concatenate([inner[:1], mid, inner[4:5]]), 5)
            _fill(img, _stroke(c, _taper(len(c), 0.0065 * W, 0.45, 0.45)), p["mouth_line"])
            lc = 0.55 * P[57] + 0.45 * mid[1]
            hw = 0.18 * float(np.linalg.norm(inner[4] - inner[0]))
            _line(img, _bez(lc - (hw, 0), lc + (0, 0.004 * W), lc + (hw, 0), 5), p["skin_sh"], 0.005 * W)
            return
        # anime mouths get rounder as they open: narrow the width with the opening
        mc = inner.mean(0)
        sw = 1.0 - 0.3 * min(opening / (0.07 * W), 1.0)
        inner = mc + (inner - mc) * np.array([sw, 1.0], np.float32)
        poly = _catmull(inner, 5, closed=True)
        box = _bbox(poly, 3, img.shape)
        if box is None:
            return
        x0, y0, x1, y1 = box
        q = poly - np.array([x0, y0], np.float32)
        layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        layer[:] = p["mouth_in"]
        top_y, bot_y = float(q[:, 1].min()), float(q[:, 1].max())
        xm = float(q[:, 0].mean())
        hw = 0.5 * float(q[:, 0].max() - q[:, 0].min())
        tc = np.array([xm, bot_y + 0.2 * opening], np.float32)  # tongue (lower part)
        cv2.ellipse(layer, _ip(tc).reshape(2), (int(hw * 0.62 * _SC), int(max(opening * 0.55, 1) * _SC)),
                    0, 0, 360, p["tongue"], -1, cv2.LINE_AA, _SHIFT)
        th = min(0.22 * opening + 0.004 * W, 0.022 * W)  # upper teeth band
        _fill(layer, np.array([(xm - hw * 1.2, top_y - 5), (xm + hw * 1.2, top_y - 5),
                               (xm + hw * 1.2, top_y + th), (xm - hw * 1.2, top_y + th)], np.float32), p["teeth"])
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _fill(m, q, 255)
        _blend(img, box, layer, m)
        _line(img, poly, p["mouth_line"], 0.004 * W, closed=True)
        up_c = _catmull(inner[[0, 1, 2, 3, 4]], 4)
        _fill(img, _stroke(up_c, _taper(len(up_c), 0.006 * W, 0.5, 0.5)), p["mouth_line"])

    @staticmethod
    def _eye_open(L: np.ndarray, k: int) -> float:
        up, dn = ((37, 38), (41, 40)) if k == 0 else ((43, 44), (47, 46))
        return float(np.linalg.norm(L[list(dn)].mean(0) - L[list(up)].mean(0)))

    _U = np.linspace(0.0, 1.0, 14, dtype=np.float32)
    _SU = np.clip(np.sin(math.pi * _U), 0.0, 1.0)
    _VUP = 0.6 * _SU ** 0.7 * (1.0 + 0.2 * (0.5 - _U))  # upper lid, in units of eye height
    _VLO = -0.38 * _SU ** 0.9  # lower lid

    def _iris_sprite(self, k: int, rx: float, ry: float, angd: float) -> tuple[np.ndarray, np.ndarray]:
        """Iris + pupil + highlights (layer, AA mask), cached on quantised size/angle."""
        key = (k, int(round(rx * 2)), int(round(ry * 2)), int(round(angd / 2.0)))
        hit = self._sprites.get(key)
        if hit is not None:
            return hit
        p = self.palette
        rx, ry, angd = key[1] / 2.0, key[2] / 2.0, key[3] * 2.0
        R = int(max(rx, ry)) + 3
        layer = np.zeros((2 * R + 1, 2 * R + 1, 3), np.uint8)
        a = math.radians(angd)
        fx = np.array([math.cos(a), math.sin(a)], np.float32)
        dn = np.array([-fx[1], fx[0]], np.float32)
        c = np.array([R, R], np.float32)

        def ell(img, cc, ea, eb, col, th=-1) -> None:
            cv2.ellipse(img, _ip(cc).reshape(2), (max(int(ea * _SC), 1), max(int(eb * _SC), 1)),
                        angd, 0, 360, col, th, cv2.LINE_AA, _SHIFT)

        side = -1.0 if k == 0 else 1.0
        ell(layer, c, rx, ry, p["iris_dark"])
        ell(layer, c + dn * 0.1 * ry, rx * 0.86, ry * 0.84, p["iris"])
        ell(layer, c + dn * 0.5 * ry, rx * 0.62, ry * 0.34, p["iris_light"])
        ell(layer, c - dn * 0.55 * ry, rx * 1.1, ry * 0.6, p["iris_dark"])
        ell(layer, c + dn * 0.04 * ry, rx * 0.4, ry * 0.48, p["pupil"])
        ell(layer, c, rx, ry, p["pupil"], max(1, int(round(0.09 * rx))))
        ell(layer, c + fx * side * 0.32 * rx - dn * 0.36 * ry, 0.3 * rx, 0.25 * ry, (255, 255, 255))
        ell(layer, c - fx * side * 0.34 * rx + dn * 0.5 * ry, 0.13 * rx, 0.11 * ry, (255, 255, 255))
        mask = np.zeros(layer.shape[:2], np.uint8)
        ell(mask, c, rx, ry, 255)
        if len(self._sprites) > 64:
            self._sprites.clear()
        self._sprites[key] = (layer, mask)
        return layer, mask

    def _draw_eye(self, img: np.ndarray, P: np.ndarray, k: int, blink: float, fea: float, sad: float,
                  hap: float) -> None:
        p = self.palette
        A, B = (P[36], P[39]) if k == 0 else (P[45], P[42])  # outer, inner corner
        ctr = 0.5 * (A + B)
        ax = (B - A) * self.EYE_SCALE
        w = float(np.hypot(ax[0], ax[1])) + 1e-6
        fx = P[42:48].mean(0) - P[36:42].mean(0)
        fx /= float(np.hypot(fx[0], fx[1])) + 1e-6
        up = np.array([fx[1], -fx[0]], np.float32)
        A = ctr - 0.5 * ax + up * (0.02 * w)
        o = float(np.clip(self._eye_open(P, k) / max(self._eye_ref[k], 1e-3), 0.0, 1.35))
        o *= (1.0 - blink) * eye_open_factor((0.0, 0.0, fea, hap, 0.0, sad))
        H = w * self._eye_aspect[k]
        U, SU = self._U, self._SU
        M = np.stack([ax, up]).astype(np.float32)  # (u, v) -> offset from A

        def pt(uu, vv) -> np.ndarray:
            return A + np.stack([np.asarray(uu, np.float32), np.asarray(vv, np.float32)], 1) @ M

        if o < 0.12:  # closed: a relaxed, downward-curved lash line
            c = pt(U, H * (0.1 - 0.12 * SU))
            _fill(img, _stroke(c, 0.065 * w * (0.35 + 0.65 * SU ** 0.5)), p["lash"])
            return
        o = min(o, 1.2)
        v_up, v_lo = H * self._VUP, H * self._VLO
        v_top = v_lo + o * (v_up - v_lo)
        upper = pt(U, v_top)
        poly = np.concatenate([upper, pt(U[-2:0:-1], v_lo[-2:0:-1])])
        box = _bbox(poly, 3, img.shape)
        if box is not None:
            x0, y0, x1, y1 = box
            off = np.array([x0, y0], np.float32)
            layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
            layer[:] = p["sclera"]
            _fill(layer, np.concatenate([upper, pt(U[::-1], (v_top - 0.22 * H)[::-1])]) - off, p["sclera_sh"])
            rx, ry = 0.31 * w, 0.54 * H
            angd = math.degrees(math.atan2(float(fx[1]), float(fx[0])))
            spr, sm = self._iris_sprite(k, rx, ry, angd)
            ic = pt([0.52], [0.02 * H])[0] - off
            R = spr.shape[0] // 2
            _paste(layer, spr, sm, int(round(ic[0])) - R, int(round(ic[1])) - R)
            m = np.zeros((y1 - y0, x1 - x0), np.uint8)
            _fill(m, poly - off, 255)
            _blend(img, box, layer, m)
        # thick upper lash line with an outer wing, thin lower line, lid crease
        th = 0.1 * w * (0.3 + 0.7 * np.clip(SU * 1.3, 0, 1) ** 0.5) * (0.6 + 0.4 * min(o, 1.0))
        th[0] = 0.08 * w
        wing = pt([-0.12], [v_top[0] + 0.22 * H])
        _fill(img, np.concatenate([wing, pt(U, v_top + th), pt(U[::-1], v_top[::-1] - 0.01 * w)]), p["lash"])
        _line(img, [pt(U[1:9], v_lo[1:9])], p["skin_line"], 0.02 * w)
        _line(img, [pt(U[3:11], v_up[3:11] * max(o, 0.6) + 0.17 * H + 0.04 * w)], p["skin_sh"], 0.018 * w)

    def _draw_brows(self, img: np.ndarray, P: np.ndarray) -> None:
        W = float(self.W)
        for idx in ((21, 20, 19, 18, 17), (22, 23, 24, 25, 26)):  # inner -> outer
            c = _catmull(P[list(idx)], 4)
            s = np.linspace(0, 1, len(c))
            wv = 0.016 * W * (1.0 - 0.8 * s ** 1.4) * (0.5 + 0.5 * np.clip(s * 5, 0, 1))
            _fill(img, _stroke(c, wv), self.palette["brow"])

    def _draw_glasses(self, img: np.ndarray, P: np.ndarray) -> None:
        W, col = float(self.W), self.palette["glasses"]
        a = math.degrees(math.atan2(float(P[45, 1] - P[36, 1]), float(P[45, 0] - P[36, 0])))
        rims = []
        for sl in (_R_EYE, _L_EYE):
            e = P[sl]
            c = e.mean(0) + np.array([0, 0.004 * W], np.float32)
            w = float(np.linalg.norm(e[3] - e[0])) * self.EYE_SCALE
            pts = cv2.ellipse2Poly((int(c[0] * 8), int(c[1] * 8)), (int(w * 0.72 * 8), int(w * 0.58 * 8)),
                                   int(a), 0, 360, 10).astype(np.float32) / 8.0
            _line(img, pts, col, 0.008 * W, closed=True)
            g = c + np.array([0.32 * w, -0.22 * w], np.float32)
            _line(img, np.array([g, g + np.array([-0.16 * w, 0.16 * w])]), (255, 255, 255), 0.007 * W)
            rims.append((c, w))
        (c0, w0), (c1, w1) = rims
        p0 = c0 + np.array([0.7 * w0, -0.12 * w0], np.float32)
        p1 = c1 - np.array([0.7 * w1, 0.12 * w1], np.float32)
        _line(img, _bez(p0, 0.5 * (p0 + p1) - np.array([0, 0.03 * W]), p1, 6), col, 0.007 * W)

    def _draw_beard(self, img: np.ndarray, P: np.ndarray) -> None:
        mc = P[48:60].mean(0)
        inner = np.array([P[i] + 0.5 * (mc - P[i]) for i in range(13, 2, -1)], np.float32)
        _fill(img, np.concatenate([_catmull(P[3:14], 4), inner]), self.palette["beard"])
        _line(img, P[[48, 59, 58, 57, 56, 55, 54]], self.palette["beard"], 0.01 * self.W)
