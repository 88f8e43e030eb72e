"""The avatar's drawing layer: anti-aliased vector primitives on a supersampled canvas, and the painters of
the face's parts (body, ears, blush, nose, mouth, eyes, brows, glasses, beard).

``FacePainter`` holds the part painters; ``AvatarRenderer`` (``runtime.avatar``) supplies the state they read
(``palette``, ``W``, the neutral shape, sprites) and composes them into a frame. Only numpy + cv2 are used.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .avatar_geometry import _L_EYE, _R_EYE, eye_open_factor


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
    return (
        (1 - t) ** 2 * np.asarray(p0, np.float32)
        + 2 * (1 - t) * t * np.asarray(c, np.float32)
        + t * t * np.asarray(p1, np.float32)
    )


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


def _blend(
    img: np.ndarray, box: tuple[int, int, int, int], layer: np.ndarray, mask: np.ndarray, alpha: float = 1.0
) -> None:
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
    _blend(
        dst,
        (xa, ya, xb, yb),
        np.ascontiguousarray(src[ya - y : yb - y, xa - x : xb - x]),
        mask[ya - y : yb - y, xa - x : xb - x],
        alpha,
    )


def _clipped(img: np.ndarray, box_pts: np.ndarray, clip: np.ndarray, paint) -> None:
    """Run ``paint(layer, offset)`` on a copy of the region around ``box_pts`` and keep only what falls inside the
    polygon ``clip`` (a hard edge at the supersampled resolution; callers draw an outline over it)."""
    box = _bbox(box_pts, 2, img.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    off = np.array([x0, y0], np.float32)
    roi = img[y0:y1, x0:x1]
    layer = roi.copy()
    paint(layer, off)
    m = np.zeros(roi.shape[:2], np.uint8)
    _fill(m, clip - off, 255, aa=False)
    cv2.copyTo(layer, m, roi)


def _fill_clipped(img: np.ndarray, poly: np.ndarray, color, clip: np.ndarray) -> None:
    """Fill ``poly`` (anti-aliased) restricted to the inside of ``clip``."""
    _clipped(img, poly, clip, lambda layer, off: _fill(layer, poly - off, color))


def _line_clipped(img: np.ndarray, lines: list[np.ndarray], color, th: float, clip: np.ndarray) -> None:
    """Anti-aliased polylines restricted to the inside of the polygon ``clip``."""
    if lines:
        _clipped(img, clip, clip, lambda layer, off: _line(layer, [a - off for a in lines], color, th))


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


def _round_mouth(poly: np.ndarray) -> np.ndarray:
    """An open mouth's outline pulled toward the ellipse of its width and height as it gets taller for its width:
    a rounded /oo/ reads as an oval, not a lens with sharp corners (nothing changes below an aspect of 0.35)."""
    c = poly.mean(0)
    hw, hh = 0.5 * np.ptp(poly[:, 0]) + 1e-6, 0.5 * np.ptp(poly[:, 1]) + 1e-6
    b = 0.75 * float(np.clip((hh / hw - 0.35) / 0.4, 0.0, 1.0))
    if b == 0.0:
        return poly
    d = (poly - c) / np.array([hw, hh], np.float32)
    theta = np.arctan2(d[:, 1], d[:, 0])
    ellipse = c + np.stack([hw * np.cos(theta), hh * np.sin(theta)], 1)
    return ((1 - b) * poly + b * ellipse).astype(np.float32)


class FacePainter:
    """Painters of the face's parts, mixed into ``AvatarRenderer``; each draws onto the supersampled canvas."""

    BITE = 0.35  # F/V parameter above which the mouth shows the upper teeth on the lower lip

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
        pts = (
            cv2.ellipse2Poly(
                (int(c[0] * 8), int(c[1] * 8)), (int(ax[0] * 8), int(ax[1] * 8)), int(ang), 0, 360, 15
            ).astype(np.float32)
            / 8.0
        )
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
            _paste(img, layer, mask, int(round(cc[0])) - w_ // 2, int(round(cc[1])) - h // 2, min(strength, 0.85) * 0.7)
            if strength > 0.45:  # anime "///" hatching
                segs = []
                for i in range(3):
                    a = cc + np.array([(i - 1) * 0.22 * w - 0.04 * w, -0.08 * w], np.float32)
                    segs.append(np.array([a, a + np.array([-0.1 * w, 0.16 * w])]))
                _line(img, segs, p["blush_line"], 0.004 * W)

    def _draw_nose(self, img: np.ndarray, P: np.ndarray) -> None:
        W = float(self.W)
        t, b = P[30], P[33]
        pts = np.array(
            [
                t + 0.3 * (b - t) + np.array([0.004 * W, 0]),
                b + np.array([-0.008 * W, 0.001 * W]),
                b + np.array([0.001 * W, 0.003 * W]),
            ],
            np.float32,
        )
        _line(img, _catmull(pts, 4), self.palette["nose"], 0.006 * W)

    @staticmethod
    def mouth_opening(P: np.ndarray) -> float:
        """Mean inner-lip gap (61-63 vs 67-65), in the units of ``P``."""
        return float(np.mean(np.linalg.norm(P[[67, 66, 65]] - P[[61, 62, 63]], axis=1)))

    def _draw_mouth(self, img: np.ndarray, P: np.ndarray, bite: float = 0.0) -> None:
        """The mouth from the posed landmarks ``P``; ``bite`` (the F/V parameter, 0..1) above ``BITE`` shows the
        upper teeth on the lower lip: filling the opening, or as a band under a closed mouth's line."""
        p, W = self.palette, float(self.W)
        inner = P[60:68]
        opening = self.mouth_opening(P)
        if opening < 0.015 * W:
            mid = 0.5 * (P[[61, 62, 63]] + P[[67, 66, 65]])
            c = _catmull(np.concatenate([inner[:1], mid, inner[4:5]]), 5)
            if bite > self.BITE:
                self._draw_tuck(img, c, 0.02 * W * bite)
            _fill(img, _stroke(c, _taper(len(c), 0.0065 * W, 0.45, 0.45)), p["mouth_line"])
            lc = 0.55 * P[57] + 0.45 * mid[1]
            hw = 0.18 * float(np.linalg.norm(inner[4] - inner[0]))
            _line(img, _bez(lc - (hw, 0), lc + (0, 0.004 * W), lc + (hw, 0), 5), p["skin_sh"], 0.005 * W)
            return
        # anime mouths get rounder as they open: narrow the width with the opening
        mc = inner.mean(0)
        sw = 1.0 - 0.3 * min(opening / (0.07 * W), 1.0)
        inner = mc + (inner - mc) * np.array([sw, 1.0], np.float32)
        poly = _round_mouth(_catmull(inner, 5, closed=True))
        box = _bbox(poly, 3, img.shape)
        if box is None:
            return
        x0, y0, x1, y1 = box
        q = poly - np.array([x0, y0], np.float32)
        layer = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        layer[:] = p["teeth"] if bite > self.BITE else p["mouth_in"]
        top_y, bot_y = float(q[:, 1].min()), float(q[:, 1].max())
        xm = float(q[:, 0].mean())
        hw = 0.5 * float(q[:, 0].max() - q[:, 0].min())
        tc = np.array([xm, bot_y + 0.2 * opening], np.float32)  # tongue (lower part)
        if bite <= self.BITE:  # F/V shows no tongue: the opening is the upper teeth, resting on the lower lip
            axes = (int(hw * 0.62 * _SC), int(max(opening * 0.55, 1) * _SC))
            cv2.ellipse(layer, _ip(tc).reshape(2), axes, 0, 0, 360, p["tongue"], -1, cv2.LINE_AA, _SHIFT)
        th = min(0.22 * opening + 0.004 * W, 0.022 * W)  # upper teeth band
        _fill(
            layer,
            np.array(
                [
                    (xm - hw * 1.2, top_y - 5),
                    (xm + hw * 1.2, top_y - 5),
                    (xm + hw * 1.2, top_y + th),
                    (xm - hw * 1.2, top_y + th),
                ],
                np.float32,
            ),
            p["teeth"],
        )
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _fill(m, q, 255)
        _blend(img, box, layer, m)
        _line(img, poly, p["mouth_line"], 0.004 * W, closed=True)
        up_c = _catmull(inner[[0, 1, 2, 3, 4]], 4)
        _fill(img, _stroke(up_c, _taper(len(up_c), 0.006 * W, 0.5, 0.5)), p["mouth_line"])

    def _draw_tuck(self, img: np.ndarray, line: np.ndarray, tuck: float) -> None:
        """Upper teeth showing below the mouth line ``line`` (a closed mouth's centre curve) over the middle
        60 % of its width, 1.3 times as tall as the tuck (1.8-2.8 % of the frame), outlined, with the lower lip's
        edge below it."""
        p, W = self.palette, float(self.W)
        n = len(line)
        top = line[int(0.18 * n) : int(np.ceil(0.82 * n))]
        h = float(np.clip(1.3 * tuck, 0.018 * W, 0.028 * W))
        bottom = (top + np.array([0.0, h], np.float32))[::-1]
        bottom[:, 0] = top[::-1, 0] * 0.9 + top[:, 0].mean() * 0.1  # slightly narrower at the bite
        _fill(img, np.concatenate([top, bottom]).astype(np.float32), p["teeth"])
        _line(img, bottom, p["mouth_line"], 0.0035 * W)
        lip = bottom[::-1] + np.array([0.0, 0.45 * h], np.float32)  # the tucked lower lip's edge below the bite
        lip[:, 0] = lip[:, 0] * 1.15 - lip[:, 0].mean() * 0.15
        _fill(img, _stroke(lip, _taper(len(lip), 0.004 * W, 0.5, 0.5)), p["skin_sh"])

    @staticmethod
    def _eye_open(L: np.ndarray, k: int) -> float:
        up, dn = ((37, 38), (41, 40)) if k == 0 else ((43, 44), (47, 46))
        return float(np.linalg.norm(L[list(dn)].mean(0) - L[list(up)].mean(0)))

    _U = np.linspace(0.0, 1.0, 14, dtype=np.float32)
    _SU = np.clip(np.sin(math.pi * _U), 0.0, 1.0)
    _VUP = 0.6 * _SU**0.7 * (1.0 + 0.2 * (0.5 - _U))  # upper lid, in units of eye height
    _VLO = -0.38 * _SU**0.9  # lower lid

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
            cv2.ellipse(
                img,
                _ip(cc).reshape(2),
                (max(int(ea * _SC), 1), max(int(eb * _SC), 1)),
                angd,
                0,
                360,
                col,
                th,
                cv2.LINE_AA,
                _SHIFT,
            )

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

    def _draw_eye(self, img: np.ndarray, P: np.ndarray, k: int, blink: float, emo: np.ndarray) -> None:
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
        o *= (1.0 - blink) * eye_open_factor(emo)
        H = w * self._eye_aspect[k]
        U, SU = self._U, self._SU
        M = np.stack([ax, up]).astype(np.float32)  # (u, v) -> offset from A

        def pt(uu, vv) -> np.ndarray:
            return A + np.stack([np.asarray(uu, np.float32), np.asarray(vv, np.float32)], 1) @ M

        if o < 0.12:  # closed: a relaxed, downward-curved lash line
            c = pt(U, H * (0.1 - 0.12 * SU))
            _fill(img, _stroke(c, 0.065 * w * (0.35 + 0.65 * SU**0.5)), p["lash"])
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
            weight = 0.6 + 0.8 * float(self.style.brow)  # thin 0.6x .. thick 1.4x
            wv = 0.021 * W * weight * (1.0 - 0.75 * s**1.4) * (0.5 + 0.5 * np.clip(s * 5, 0, 1))
            # a skin-coloured rim: a brow raised over the fringe stays readable on hair of its own colour
            _fill(img, _stroke(c, wv + 0.016 * W), self.palette["skin"])
            _fill(img, _stroke(c, wv), self.palette["brow"])
