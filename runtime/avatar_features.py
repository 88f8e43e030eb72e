"""Painters of the avatar's personal features: front hair (solid, buzzed, curly), headwear, facial hair
(stubble, moustache, goatee, beard) and glasses (round or rectangular frames).

``FeaturePainter`` is mixed into ``AvatarRenderer`` like ``avatar_draw.FacePainter``: it reads ``palette``,
``W``, ``style`` and ``hair`` (``runtime.avatar_hair.HairGeometry``). Facial hair is drawn every frame from
the posed landmarks, so it follows the jaw and the mouth; it is shading and line work in the facial hair's own
colour, leaving the cheeks and the mouth free.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .avatar_draw import _L_EYE, _R_EYE, _bez, _catmull, _fill, _fill_clipped, _line, _line_clipped, _outline, _stroke


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1.0 - t) * np.asarray(a, np.float32) + t * np.asarray(b, np.float32)


class FeaturePainter:
    """Front hair, headwear, facial hair and glasses painters (see the module docstring)."""

    def _draw_front_hair(self, img: np.ndarray, S: dict) -> None:
        p, W, h = self.palette, float(self.W), self.hair
        if "hair_front" in S:
            hf = S["hair_front"]
            if h.buzz:  # a close crop: a stubbly tone over the skull, a thin line, no highlight
                _fill(img, hf, p["buzz"])
                _outline(img, hf, p["hair_sh"], 0.004 * W)
            else:
                _fill(img, hf, p["hair"])
                if "hair_ring" in S:
                    _fill_clipped(img, S["hair_ring"], p["hair_hi"], hf)
                _line_clipped(img, [S[k] for k in self._groups["strand"]], p["hair_sh"], 0.005 * W, hf)
                _line_clipped(img, [S[k] for k in self._groups["curl"]], p["hair_line"], 0.004 * W, hf)
                if "ahoge" in S:
                    _fill(img, S["ahoge"], p["hair"])
                    _outline(img, S["ahoge"], p["hair_line"], 0.005 * W)
                _outline(img, hf, p["hair_line"], 0.007 * W)
        if "cap" in S:
            _fill(img, S["cap"], p["hat"])
            _fill_clipped(img, S["cap_band"], p["hat_sh"], S["cap"])
            _outline(img, S["cap"], p["hat_line"], 0.007 * W)

    # ----------------------------------------------------------------- facial hair
    def _moustache(self, P: np.ndarray) -> np.ndarray:
        """A moustache over the upper lip: from corner to corner, up to halfway to the nose."""
        W = float(self.W)
        upper = _catmull(P[[48, 49, 50, 51, 52, 53, 54]], 3)
        top = _catmull(np.array([_lerp(P[48], P[31], 0.45), _lerp(P[50], P[32], 0.55), _lerp(P[51], P[33], 0.6),
                                 _lerp(P[52], P[34], 0.55), _lerp(P[54], P[35], 0.45)]), 3)  # fmt: skip
        droop = np.array([0.0, 0.012 * W], np.float32)
        return np.concatenate([upper[::-1] - np.array([0, 0.004 * W], np.float32), [P[48] + droop], top,
                               [P[54] + droop]]).astype(np.float32)  # fmt: skip

    def _chin_patch(self, P: np.ndarray, wide: bool) -> np.ndarray:
        """Under the lower lip to the chin: the mouth's width (goatee) or the jaw's (beard)."""
        W = float(self.W)
        lower = _catmull(P[[54, 55, 56, 57, 58, 59, 48]], 3)
        if wide:  # along the jaw from cheek to cheek, a little below it (the beard's volume)
            jaw = _catmull(P[2:15], 4)
            mid = 0.5 * (P[2] + P[14])
            jaw = jaw + (jaw - mid) * 0.04 + np.array([0, 0.01 * W], np.float32)
            cheek_r = _lerp(P[14], P[54], 0.45) - np.array([0, 0.02 * W], np.float32)
            cheek_l = _lerp(P[2], P[48], 0.45) - np.array([0, 0.02 * W], np.float32)
            return np.concatenate([lower, [cheek_l], jaw, [cheek_r]]).astype(np.float32)
        chin = _catmull(np.array([_lerp(P[59], P[6], 0.75), P[7], P[8], P[9], _lerp(P[55], P[10], 0.75)]), 4)
        chin = chin + np.array([0, 0.012 * W], np.float32)
        return np.concatenate([lower, chin]).astype(np.float32)

    def _draw_facial_hair(self, img: np.ndarray, P: np.ndarray) -> None:
        kind = self.style.facial_hair
        if kind == "none":
            return
        p, W = self.palette, float(self.W)
        face = np.concatenate([_catmull(P[0:17], 5), P[[26, 17]]])
        if kind == "stubble":  # a faint tone over the jaw and upper lip, with a few dots
            jaw, lip = self._chin_patch(P, True), self._moustache(P)
            zone = np.concatenate([jaw, lip[::-1]])
            _fill_clipped(img, jaw, p["stubble"], face)
            _fill(img, lip, p["stubble"])
            rng = np.random.default_rng(7)
            lo, hi = zone.min(0), zone.max(0)
            pts = lo + rng.uniform(0, 1, (90, 2)).astype(np.float32) * (hi - lo)
            m = np.array([cv2.pointPolygonTest(zone, (float(x), float(y)), False) > 0 for x, y in pts])
            for x, y in pts[m]:
                cv2.circle(
                    img, (int(x * 8), int(y * 8)), max(1, int(0.0025 * W * 8)), p["stubble_dot"], -1, cv2.LINE_AA, 3
                )
            return
        shapes = []
        if kind == "beard":
            shapes.append(self._chin_patch(P, True))
        if kind == "goatee":
            shapes.append(self._chin_patch(P, False))
        shapes.append(self._moustache(P))
        for s in shapes:
            _fill(img, s, p["beard"])
            _outline(img, s, p["beard_line"], 0.005 * W)
        # shading and strand lines: a darker band under the lip, strokes following the hair's fall, a highlight
        mc = P[48:60].mean(0)
        if kind in ("beard", "goatee"):
            lip = _catmull(P[[55, 56, 57, 58, 59]], 3) + np.array([0, 0.012 * W], np.float32)
            _line(img, lip, p["beard_sh"], 0.008 * W)
            strokes = []
            for t in (-0.6, -0.2, 0.2, 0.6):
                a = mc + np.array([t * 0.06 * W, 0.06 * W], np.float32)
                strokes.append(_bez(a, a + (t * 0.01 * W, 0.02 * W), a + (t * 0.015 * W, 0.04 * W), 5))
            _line(img, strokes, p["beard_sh"], 0.004 * W)
        hi = np.array([_lerp(P[49], P[31], 0.35), _lerp(P[51], P[33], 0.4)]) - np.array([0, 0.003 * W], np.float32)
        _line(img, hi, p["beard_hi"], 0.004 * W)

    # ----------------------------------------------------------------- glasses
    def _draw_glasses(self, img: np.ndarray, P: np.ndarray) -> None:
        W, col = float(self.W), self.palette["glasses"]
        a = math.degrees(math.atan2(float(P[45, 1] - P[36, 1]), float(P[45, 0] - P[36, 0])))
        rect = self.style.glasses_shape == "rectangular"
        rims = []
        for sl in (_R_EYE, _L_EYE):
            e = P[sl]
            c = e.mean(0) + np.array([0, 0.004 * W], np.float32)
            w = float(np.linalg.norm(e[3] - e[0])) * self.EYE_SCALE
            if rect:  # a rounded rectangle, a little wider than tall
                ax, ay, r = 0.74 * w, 0.5 * w, 0.18 * w
                th = np.linspace(0, 2 * math.pi, 48, endpoint=False)
                x = np.sign(np.cos(th)) * np.minimum(np.abs(np.cos(th)) * 1.6, 1.0) * (ax - r) + r * np.cos(th)
                y = np.sign(np.sin(th)) * np.minimum(np.abs(np.sin(th)) * 1.6, 1.0) * (ay - r) + r * np.sin(th)
                ca, sa = math.cos(math.radians(a)), math.sin(math.radians(a))
                pts = np.stack([c[0] + x * ca - y * sa, c[1] + x * sa + y * ca], 1).astype(np.float32)
            else:
                pts = (
                    cv2.ellipse2Poly(
                        (int(c[0] * 8), int(c[1] * 8)), (int(w * 0.72 * 8), int(w * 0.58 * 8)), int(a), 0, 360, 10
                    ).astype(np.float32)
                    / 8.0
                )
            _fill(img, _stroke(np.concatenate([pts, pts[:1]]), 0.008 * W), col)
            g = c + np.array([0.32 * w, -0.22 * w], np.float32)
            _line(img, np.array([g, g + np.array([-0.16 * w, 0.16 * w])]), (255, 255, 255), 0.007 * W)
            rims.append((c, w))
        (c0, w0), (c1, w1) = rims
        p0 = c0 + np.array([0.7 * w0, -0.12 * w0], np.float32)
        p1 = c1 - np.array([0.7 * w1, 0.12 * w1], np.float32)
        _line(img, _bez(p0, 0.5 * (p0 + p1) - np.array([0, 0.03 * W]), p1, 6), col, 0.007 * W)
