"""Privacy-preserving procedural anime avatar.

A photo is reduced to a handful of colours/flags (:class:`AvatarStyle`, ``runtime.avatar_style``) plus a
68-point face shape (:func:`canonical_landmarks`, ``runtime.avatar_geometry``). :class:`AvatarRenderer`
then draws a cel-shaded anime character from scratch with OpenCV vector primitives (``runtime.avatar_draw``)
-- no pixel of the photo is ever stored or drawn.

Landmarks follow the iBUG 300-W 68-point order. Only numpy + cv2 are used.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence

import cv2
import numpy as np

from .avatar_draw import (
    FacePainter,
    _bbox,
    _blend,
    _catmull,
    _fill,
    _fill_clipped,
    _line,
    _line_clipped,
    _outline,
    _stroke,
    unpremultiply,
)
from .avatar_features import FeaturePainter
from .avatar_geometry import apply_emotion, canonical_landmarks, eye_open_factor, mean_face_landmarks
from .avatar_hair import hair_geometry
from .avatar_style import AvatarStyle, make_palette
from .motion import EMOTIONS
from .mouth import mouth_params
from .photo_traits import skin_colour, style_from_photo

logger = logging.getLogger(__name__)

__all__ = [
    "AvatarStyle",
    "AvatarRenderer",
    "style_from_photo",
    "skin_colour",
    "make_palette",
    "canonical_landmarks",
    "mean_face_landmarks",
    "EMOTIONS",
    "unpremultiply",
    "apply_emotion",
    "eye_open_factor",
]


class AvatarRenderer(FacePainter, FeaturePainter):
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
        # the hair's small random variations: fixed by the face and the hairstyle, so changing a colour, the
        # glasses or the brows does not reshuffle them
        self._seed = zlib.crc32(np.round(self.neutral, 3).tobytes() + style.hair_style.encode())
        self.palette = make_palette(style)
        N = self.neutral * self.W
        self._N = N
        self.cx = float(0.25 * (N[0, 0] + N[16, 0]) + 0.5 * N[27:31, 0].mean())
        self.eye_y = float(N[36:48, 1].mean())
        self.pivot = np.array([self.cx, N[8, 1] - 0.02 * self.W], np.float32)
        # the head's radii for turning it (``_pose_fn``): half the jaw's width; from the eyes to below the chin
        self.head_rx = float(0.55 * (N[16, 0] - N[0, 0]))
        self.head_ry = float(1.15 * (N[8, 1] - self.eye_y))
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

        self.hair = hair_geometry(st, N, W, cx, rng)
        # ears (hidden under long hair)
        self.ears = []
        if self.hair.ears:
            for side, j in ((-1, N[1]), (1, N[15])):
                self.ears.append((np.array([j[0] + side * 0.012 * W, j[1] - 0.01 * W], np.float32), side))

        # neck & shoulders (the body never moves)
        nw = 0.34 * float(N[12, 0] - N[4, 0])
        self.neck = np.array(
            [
                (cx - nw * 0.5, yc),
                (cx + nw * 0.5, yc),
                (cx + nw * 0.5, chin_y + 0.05 * W),
                (cx + nw * 0.62, chin_y + 0.12 * W),
                (cx - nw * 0.62, chin_y + 0.12 * W),
                (cx - nw * 0.5, chin_y + 0.05 * W),
            ],
            np.float32,
        )
        sh_y = max(chin_y + 0.085 * W, 0.82 * W)
        body = [
            (cx - nw * 0.55, sh_y - 0.01 * W),
            (cx - nw * 1.6, sh_y + 0.02 * W),
            (cx - nw * 2.8, sh_y + 0.07 * W),
            (cx - nw * 3.5, sh_y + 0.16 * W),
            (cx - nw * 3.8, 1.1 * W),
            (cx + nw * 3.8, 1.1 * W),
            (cx + nw * 3.5, sh_y + 0.16 * W),
            (cx + nw * 2.8, sh_y + 0.07 * W),
            (cx + nw * 1.6, sh_y + 0.02 * W),
            (cx + nw * 0.55, sh_y - 0.01 * W),
        ]
        self.body = _catmull(np.array(body, np.float32), 4)
        half = self.body[len(self.body) // 2 :]
        self.body_shadow = np.concatenate([half, np.array([(cx + 0.02 * W, 1.1 * W)], np.float32)])
        self.collar = [
            np.array(
                [
                    (cx + s * nw * 0.6, sh_y - 0.02 * W),
                    (cx + s * nw * 1.25, sh_y + 0.02 * W),
                    (cx + s * nw * 0.35, sh_y + 0.11 * W),
                    (cx, sh_y + 0.05 * W),
                ],
                np.float32,
            )
            for s in (-1, 1)
        ]
        self.neck_shadow = np.array(
            [
                (cx + nw * 0.1, chin_y),
                (cx + nw * 0.52, chin_y - 0.03 * W),
                (cx + nw * 0.55, sh_y + 0.02 * W),
                (cx + nw * 0.25, sh_y + 0.02 * W),
            ],
            np.float32,
        )

    def _pack_static(self) -> None:
        """Concatenate all head-attached contours so one pose transform per frame suffices."""
        h = self.hair
        parts = [("neck", self.neck), ("fore_arc", self.fore_arc)]
        named = {
            "hair_back": h.back,
            "hair_front": h.front,
            "hairline": h.hairline,
            "hair_ring": h.ring,
            "ahoge": h.ahoge,
            "cap": h.cap,
            "cap_band": h.cap_band,
        }
        parts += [(k, v) for k, v in named.items() if v is not None]
        groups = {
            "back_extra": h.back_extra,
            "strand": h.strands,
            "curl": h.curls,
            "back_strand": h.extras.get("back_strands", []),
        }
        self._groups = {k: [f"{k}{i}" for i in range(len(v))] for k, v in groups.items()}
        parts += [(f"{k}{i}", a) for k, v in groups.items() for i, a in enumerate(v)]
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
        """Point transform for a head pose; ``w`` in [0,1] = how much a point is a facial feature.

        The head is a vertical cylinder for yaw and a horizontal one for pitch: a point at rest is put on it
        (its angle from where it sits), turned, and projected back. Facial features sit in front of the
        surface (radius ``1 + 0.35 w``), so they move further than the hair and ears behind them (parallax),
        the far side of the face narrows and the near side widens; a nod carries the features and chin down
        while the hair moves less than a third as far.
        Points beyond the cylinder (wide hair) keep their distance from its edge. At pose 0 it is the identity.
        """
        yaw, pitch, roll = (float(v) for v in pose)
        cx, cy = self.cx, self.eye_y
        c, s = math.cos(roll), math.sin(roll)
        R = np.array([[c, -s], [s, c]], np.float32)
        piv = self.pivot

        def turn(d: np.ndarray, radius: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
            u = d / radius
            inside = np.abs(u) <= 1.0
            theta = np.arcsin(np.clip(u, -1.0, 1.0))
            edge = np.sign(u) * radius
            out = radius * np.sin(theta + angle)
            beyond = radius * np.sin(np.sign(u) * (np.pi / 2) + angle) + (d - edge) * np.cos(angle)
            return np.where(inside, out, beyond)

        def f(pts: np.ndarray, w: np.ndarray | float = 0.0) -> np.ndarray:
            p = np.asarray(pts, np.float32).reshape(-1, 2).astype(np.float64)
            wf = np.broadcast_to(np.asarray(w, np.float64), p.shape[:1])
            depth = 1.0 + 0.35 * wf
            x = cx + turn(p[:, 0] - cx, self.head_rx * depth, yaw)
            # a nod turns the face about the neck: the hair and outline move less than a third as far
            y = cy + turn(p[:, 1] - cy, self.head_ry * depth, pitch * (0.2 + 0.5 * wf))
            q = np.stack([x, y], 1).astype(np.float32) - piv
            return (q @ R.T + piv).astype(np.float32)

        return f

    # ----------------------------------------------------------------- public
    def draw(
        self,
        landmarks: np.ndarray,
        pose: np.ndarray | tuple = (0, 0, 0),
        blink: float = 0.0,
        emotion: np.ndarray | None = None,
    ) -> np.ndarray:
        """Render one frame on the avatar's own background; returns uint8 RGB ``[size, size, 3]``.

        ``landmarks``: [68,2] in 0..1 canvas coords (un-posed); ``pose``: (yaw, pitch, roll)
        radians; ``blink``: 0 open .. 1 closed; ``emotion``: optional probabilities in
        :data:`EMOTIONS` order.
        """
        return self._paint(self._bg.copy(), landmarks, pose, blink, emotion)

    def draw_rgba(
        self,
        landmarks: np.ndarray,
        pose: np.ndarray | tuple = (0, 0, 0),
        blink: float = 0.0,
        emotion: np.ndarray | None = None,
    ) -> np.ndarray:
        """The character alone: uint8 RGBA ``[size, size, 4]``, straight (not premultiplied) alpha.

        Alpha is 0 outside the character (hair, face, neck, body), 255 inside, anti-aliased at its
        edges. Painting on a transparent premultiplied canvas makes every drawing step the "over"
        operator, so ``runtime.background.compose`` of this over any background equals drawing on it.
        """
        W = self.W
        img = self._paint(np.zeros((W, W, 4), np.uint8), landmarks, pose, blink, emotion)
        return unpremultiply(img)

    def posed_landmarks(
        self, landmarks: np.ndarray, pose: np.ndarray | tuple = (0, 0, 0), emotion: np.ndarray | None = None
    ) -> np.ndarray:
        """Where ``draw`` puts the 68 points (emotion offsets and head pose applied): [68, 2] in 0..1."""
        P = self._geometry(landmarks, pose, emotion)[0]
        return (P / float(self.W)).astype(np.float32)

    def _geometry(self, landmarks: np.ndarray, pose, emotion) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
        """Posed landmarks P [68, 2] and head-attached contours S (supersampled px), clipped pose, emotion."""
        W = float(self.W)
        L = np.asarray(landmarks, np.float32).reshape(68, 2) * W
        pose = np.zeros(3, np.float32) if pose is None else np.clip(np.asarray(pose, np.float32).reshape(3), -0.6, 0.6)
        emo = (
            np.zeros(6, np.float32)
            if emotion is None
            else np.clip(np.asarray(emotion, np.float32).reshape(6), 0.0, 1.0)
        )
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
        for k in self._groups["back_extra"]:
            _fill(img, S[k], p["hair_sh"])
            _outline(img, S[k], p["hair_line"], 0.006 * W)
        if "hair_back" in S:
            hb = S["hair_back"]
            _fill(img, hb, p["hair_sh"])
            _line_clipped(img, [S[k] for k in self._groups["back_strand"]], p["hair_line"], 0.004 * W, hb)
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
        if "hairline" in S and not self.hair.buzz:
            fe = S["hairline"]
            shadow = np.concatenate(
                [fe + np.array([0.004 * W, 0.022 * W], np.float32), fe[::-1] - np.array([0.0, 0.05 * W], np.float32)]
            )
            _fill_clipped(img, shadow, p["skin_sh"], face)
        _fill(img, _stroke(jaw, 0.007 * W), p["skin_line"])
        self._draw_facial_hair(img, P)
        self._draw_blush(img, P, 0.25 + 0.5 * hap + 0.15 * ang - 0.1 * fea)
        self._draw_nose(img, P)
        self._draw_mouth(img, P, float(mouth_params(landmarks, self.neutral)[2]))
        for k in (0, 1):
            self._draw_eye(img, P, k, blink, emo)

        # --- front hair, cap, brows, glasses
        self._draw_front_hair(img, S)
        self._draw_brows(img, P)
        if self.style.glasses:
            self._draw_glasses(img, P)
        return cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA)
