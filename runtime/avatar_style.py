"""The avatar's style: the few colours and flags kept from a photo (never its pixels), and its cel palette.

``style_from_photo`` measures skin, hair, eye and lip colours, background, hair length, glasses and beard from
the photo around its landmarks; ``make_palette`` turns a style into the named colours the renderer paints with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .avatar_geometry import _L_EYE, _R_EYE

logger = logging.getLogger(__name__)

RGB = tuple[int, int, int]


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

    def describe(self) -> str:
        """The style in words: ``short hair #553322, skin #e0b090, brown eyes #6b4646, glasses``."""
        hex_ = lambda c: "#{:02x}{:02x}{:02x}".format(*c)  # noqa: E731
        length = "short" if self.hair_length < 0.35 else "shoulder-length" if self.hair_length < 0.7 else "long"
        extras = [x for x, on in (("glasses", self.glasses), ("beard", self.beard)) if on]
        return ", ".join(
            [f"{length} hair {hex_(self.hair)}", f"skin {hex_(self.skin)}", f"eyes {hex_(self.eyes)}"] + extras
        )

    @classmethod
    def from_dict(cls, d: dict) -> AvatarStyle:
        """Inverse of :meth:`to_dict` (tolerates lists / numpy values)."""

        def col(v: Sequence) -> RGB:
            a = np.asarray(v, np.float64) if isinstance(v, (list, tuple, np.ndarray)) else np.zeros(0)
            if a.shape != (3,) or not np.isfinite(a).all():
                raise ValueError(f"a colour must be 3 numbers (RGB 0..255), got {v!r:.40}")
            return tuple(int(np.clip(round(float(c)), 0, 255)) for c in a)  # type: ignore[return-value]

        return cls(
            skin=col(d["skin"]),
            hair=col(d["hair"]),
            eyes=col(d["eyes"]),
            lips=col(d["lips"]),
            background=col(d["background"]),
            hair_length=float(np.clip(float(d.get("hair_length", 0.3)), 0.0, 1.0)),
            glasses=bool(d.get("glasses", False)),
            beard=bool(d.get("beard", False)),
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
    sm = sum(pad[i : i + 8, j : j + 8, k : k + 8] for i in range(3) for j in range(3) for k in range(3))
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
    border = np.concatenate([img[:b].reshape(-1, 3), img[:, :b].reshape(-1, 3), img[:, -b:].reshape(-1, 3)])
    bg = np.median(border.astype(np.float32), 0)
    q = (border // 32).astype(np.int32)
    bins = np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512)
    bg_bins = bins > 0.03 * len(border)

    # hair: band above the brows + bands beside the temples, minus skin / background colours
    top = _rect(img, x_l - 0.2 * iod, brow_y - 1.5 * iod, x_r + 0.2 * iod, brow_y - 0.55 * iod)
    y_side0, y_side1 = brow_y, float(L[2, 1])
    sides = np.concatenate(
        [
            _rect(img, L[0, 0] - 0.5 * iod, y_side0, L[0, 0] - 0.08 * iod, y_side1),
            _rect(img, L[16, 0] + 0.08 * iod, y_side0, L[16, 0] + 0.5 * iod, y_side1),
        ]
    )
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
    xs = np.concatenate(
        [
            np.arange(int(L[0, 0] - 0.55 * iod), int(L[0, 0] - 0.05 * iod)),
            np.arange(int(L[16, 0] + 0.05 * iod), int(L[16, 0] + 0.55 * iod)),
        ]
    )
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
    chin_v = float(np.median(img[cm].astype(np.float32) @ np.array([0.299, 0.587, 0.114]))) if cm.any() else 255.0
    cheek_v = float(skin @ np.array([0.299, 0.587, 0.114]))
    beard = chin_v < 0.62 * cheek_v

    logger.debug("style: bridge=%.2f chin/cheek=%.2f hair_len=%.2f", bridge, chin_v / max(cheek_v, 1.0), hair_length)
    return animeify_style(skin, hair, eyes, lips, bg, hair_length, glasses, beard)


def animeify_style(
    skin: Sequence[float],
    hair: Sequence[float],
    eyes: Sequence[float],
    lips: Sequence[float],
    bg: Sequence[float],
    hair_length: float,
    glasses: bool,
    beard: bool,
) -> AvatarStyle:
    """Push measured colours toward a saturated, clean cel palette."""
    h, s, v = _rgb2hsv(skin)
    skin_c = _hsv2rgb(h, np.clip(s * 0.95, 0.1, 0.36), np.clip(v * 0.9 + 0.2, 0.35, 0.97))
    h, s, v = _rgb2hsv(hair)
    hair_c = _hsv2rgb(h, np.clip(s * 1.3 + (0.05 if s > 0.12 else 0.0), 0, 0.72), np.clip(v * 1.05, 0.1, 0.86))
    h, s, v = _rgb2hsv(eyes)
    eyes_c = _hsv2rgb(h, np.clip(s * 1.6 + 0.2, 0.35, 0.9), np.clip(v * 1.4 + 0.2, 0.42, 0.85))
    h, s, v = _rgb2hsv(lips)
    lips_c = _hsv2rgb(h, np.clip(s * 1.3 + 0.05, 0.25, 0.75), np.clip(v * 1.05, 0.45, 0.95))
    h, s, v = _rgb2hsv(bg)
    bg_c = _hsv2rgb(h, np.clip(s * 1.1, 0.12, 0.42), np.clip(0.72 + 0.28 * v, 0.8, 0.97))
    return AvatarStyle(skin_c, hair_c, eyes_c, lips_c, bg_c, round(float(hair_length), 3), bool(glasses), bool(beard))


def make_palette(st: AvatarStyle) -> dict[str, RGB]:
    """The cel palette (named RGB colours: base, shade, highlight, line of skin, hair, eyes...) of a style."""
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
