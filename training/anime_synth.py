"""Synthetic drawn faces with known 68 landmarks (iBUG 300-W order), the training data of the landmark model
for drawings (``training.train_landmarks``).

Two kinds of character, each an RGBA image on a transparent canvas with its points in pixels:

- ``avatar_character``: the runtime's own procedural avatar (``runtime.avatar``) of a random identity
  (``training.synthetic_avatars``) at a random mouth, emotion and head pose, alone (``draw_rgba``);
- ``flat_character``: a flat-colour anime face drawn here with OpenCV primitives, from a wide parameter space
  that the procedural avatar does not cover: face contours from round to a pointed chin, eyes from dots to tall
  irises with highlights and thick lash lines, brows thin to bold (or hidden under the fringe), a dot, line or
  no nose, closed, smiling or open mouths, spiky or straight fringes over the brows and sometimes the eyes,
  short to long back hair, ears, blush, neck and shoulders, outlines of any weight and colour or none.

``window`` puts a character into the model's input window (``size`` square) over a random background
(flat, gradient, blotches, stripes or shapes), at a random scale, rotation and offset, then degrades it
(hue, saturation and gamma shifts, grey, thicker or thinner lines, blur, noise, JPEG). Windows come in the
two framings the runtime uses (``runtime.anime_landmarks``): *refine* (the face box ``REFINE`` times smaller than
the window, near its centre) and *search* (the face anywhere from ``SEARCH_RATIO`` of the window, off centre),
plus *negative* windows without a usable face (background, a part of the character, a face far too small or
cut by the border).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from toonsync.runtime.anime_landmarks import FLIP, face_box, warp_window, window_transform

REFINE = 2.0  # refine framing: the window is this many times the face box's larger side
REFINE_JITTER = 0.06  # of the window: centre offset of refine windows (the runtime's estimate is that good)
SEARCH_RATIO = (0.3, 0.75)  # search framing: the face box's larger side over the window's side
_SHIFT = 4  # sub-pixel drawing precision of cv2


@dataclass
class Character:
    """A drawn character on a transparent canvas and where its 68 points are."""

    rgba: np.ndarray  # uint8 [H, W, 4], straight alpha
    points: np.ndarray  # float32 [68, 2] pixels


# --- the procedural avatar -------------------------------------------------------------------------------
def avatar_character(rng: np.random.Generator, size: int = 256) -> Character:
    """A random identity of the runtime's avatar at a random expression and pose, eyes open, alone."""
    from toonsync.runtime.avatar import AvatarRenderer

    from .synthetic_avatars import random_frame, random_identity

    idt = random_identity(rng)
    f = random_frame(idt, rng)
    r = AvatarRenderer(idt.style, idt.neutral, size)
    rgba = r.draw_rgba(f.landmarks, f.pose, 0.0, f.emotion)
    return Character(rgba, r.posed_landmarks(f.landmarks, f.pose, f.emotion) * size)


# --- the flat-colour generator ---------------------------------------------------------------------------
def _ip(pts) -> np.ndarray:
    return np.round(np.asarray(pts, np.float64) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


class _Canvas:
    """RGB + alpha drawn together (cv2, anti-aliased, sub-pixel)."""

    def __init__(self, size: int):
        self.rgb = np.zeros((size, size, 3), np.uint8)
        self.a = np.zeros((size, size), np.uint8)

    def fill(self, pts, colour) -> None:
        cv2.fillPoly(self.rgb, [_ip(pts)], tuple(int(c) for c in colour), cv2.LINE_AA, _SHIFT)
        cv2.fillPoly(self.a, [_ip(pts)], 255, cv2.LINE_AA, _SHIFT)

    def line(self, pts, colour, th: float, closed: bool = False) -> None:
        if th <= 0:
            return
        t = max(1, int(round(th)))
        cv2.polylines(self.rgb, [_ip(pts)], closed, tuple(int(c) for c in colour), t, cv2.LINE_AA, _SHIFT)
        cv2.polylines(self.a, [_ip(pts)], closed, 255, t, cv2.LINE_AA, _SHIFT)

    def ellipse(self, c, axes, colour, angle: float = 0.0) -> None:
        ax = (max(1, int(axes[0] * (1 << _SHIFT))), max(1, int(axes[1] * (1 << _SHIFT))))
        col = tuple(int(v) for v in colour)
        cv2.ellipse(self.rgb, tuple(_ip(c).reshape(2)), ax, angle, 0, 360, col, -1, cv2.LINE_AA, _SHIFT)
        cv2.ellipse(self.a, tuple(_ip(c).reshape(2)), ax, angle, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)


def _colour(rng: np.random.Generator, h=(0.0, 1.0), s=(0.0, 1.0), v=(0.0, 1.0)) -> np.ndarray:
    hsv = np.uint8([[[rng.uniform(*h) % 1.0 * 180, rng.uniform(*s) * 255, rng.uniform(*v) * 255]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def _arc(c, rx: float, ry: float, a0: float, a1: float, n: int) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([c[0] + rx * np.cos(t), c[1] + ry * np.sin(t)], 1)


def _face(rng, cx, cy, a, b, eye_y):
    """Jaw points 0-16 and the closed face contour (round top)."""
    alpha = math.asin(float(np.clip((cy - eye_y) / b, -0.6, 0.9)))
    phi = (math.pi + alpha) - (math.pi + 2 * alpha) * np.arange(17) / 16
    point = rng.uniform(0.0, 1.0)  # 0 round .. 1 a pointed anime chin
    s = np.maximum(np.sin(phi), 0)
    x = cx + a * np.cos(phi) * (1 - 0.35 * point * s**2)
    y = cy + b * np.sin(phi) * (1 + 0.12 * point * s**4)
    jaw = np.stack([x, y], 1)
    top = _arc((cx, cy), a, b * rng.uniform(0.95, 1.15), math.pi + alpha, 2 * math.pi - alpha, 24)
    return jaw, np.concatenate([jaw, top[1:-1]])


def _eye_points(cx, cy, hw, hh, outer_left: bool, slant: float) -> np.ndarray:
    """Six eye points in iBUG order (outer corner first for the image-left eye, inner first for the right)."""
    s = -1.0 if outer_left else 1.0  # direction of the outer corner
    outer = (cx + s * hw, cy - slant * hh)
    inner = (cx - s * hw, cy + 0.15 * hh)
    up_o, up_i = (cx + s * hw / 3, cy - hh), (cx - s * hw / 3, cy - 0.95 * hh)
    lo_o, lo_i = (cx + s * hw / 3, cy + 0.85 * hh), (cx - s * hw / 3, cy + 0.85 * hh)
    if outer_left:
        return np.array([outer, up_o, up_i, inner, lo_i, lo_o], np.float32)
    return np.array([inner, up_i, up_o, outer, lo_o, lo_i], np.float32)


def _draw_eye(cv: _Canvas, rng, E: np.ndarray, ink, th: float, style: str, iris_col) -> None:
    outline = np.concatenate([E, E[:1]])
    c = E.mean(0)
    hw = 0.5 * abs(E[3, 0] - E[0, 0])
    hh = 0.5 * (E[4:6, 1].mean() - E[1:3, 1].mean())
    if style == "dot":
        cv.ellipse(c, (0.45 * hw, 0.75 * hh), ink)
        cv.ellipse(c + (0.15 * hw, -0.35 * hh), (0.15 * hw, 0.15 * hw), (255, 255, 255))
        return
    cv.fill(outline, (250, 250, 250))
    ic = c + (rng.uniform(-0.1, 0.1) * hw, 0.05 * hh)
    cv.ellipse(ic, (0.62 * hw, 0.92 * hh), iris_col)
    cv.ellipse(ic + (0, -0.3 * hh), (0.55 * hw, 0.5 * hh), iris_col * 0.6)
    cv.ellipse(ic, (0.28 * hw, 0.42 * hh), ink * 0.5)
    for _ in range(int(rng.integers(1, 3))):
        off = (rng.uniform(-0.35, 0.35) * hw, rng.uniform(-0.55, -0.2) * hh)
        cv.ellipse(ic + off, (0.14 * hw, 0.14 * hw * rng.uniform(0.8, 1.6)), (255, 255, 255))
    upper = np.concatenate([E[:4]]) if E[0, 0] < E[3, 0] else E[[3, 2, 1, 0]]
    cv.line(upper, ink, th * rng.uniform(1.5, 3.0))
    if rng.random() < 0.5:  # a lash wing past the outer corner
        o = E[0] if E[0, 0] < E[3, 0] else E[3]
        cv.line([o, o + (np.sign(o[0] - c[0]) * 0.35 * hw, -0.3 * hh)], ink, th * 1.5)
    if rng.random() < 0.7:
        cv.line(E[[3, 4, 5, 0]] if E[0, 0] < E[3, 0] else E[[0, 5, 4, 3]], ink, max(1.0, 0.6 * th))


def _mouth(rng, cx, my, mw, open_: float, smile: float) -> np.ndarray:
    """Mouth points 48-67: outer lips then inner, ``open_`` of the mouth width apart at the centre."""

    def lip(x, bulge):
        u = (x - cx) / mw
        return my - smile * mw * (1 - u**2) * 0.35 + bulge * (1 - np.abs(u))

    xo = cx + mw * np.array([-1, -0.6, -0.25, 0, 0.25, 0.6, 1])
    gap = open_ * mw
    up = np.stack([xo, lip(xo, -0.12 * mw - 0.5 * gap)], 1)  # 48-54
    xl = xo[::-1][1:-1]
    lo = np.stack([xl, lip(xl, 0.15 * mw + 0.5 * gap)], 1)  # 55-59
    xi = cx + 0.85 * mw * np.array([-1, -0.4, 0, 0.4, 1])
    iu = np.stack([xi, lip(xi, -0.5 * gap)], 1)  # 60-64
    xil = xi[::-1][1:-1]
    il = np.stack([xil, lip(xil, 0.5 * gap)], 1)  # 65-67
    return np.concatenate([up, lo, iu, il]).astype(np.float32)


def flat_character(rng: np.random.Generator, size: int = 256) -> Character:
    """A flat-colour anime face (see the module doc) on a transparent ``size`` square canvas."""
    k = size / 256.0
    cv = _Canvas(size)
    cx, cy = size * rng.uniform(0.45, 0.55), size * rng.uniform(0.46, 0.54)
    a = size * rng.uniform(0.2, 0.3)
    b = a * rng.uniform(1.0, 1.3)
    eye_y = cy + b * rng.uniform(-0.12, 0.15)
    skin = _colour(rng, (0.0, 0.1), (0.05, 0.45), (0.55, 1.0))
    hair = _colour(rng, (0, 1), (0.1, 0.9), (0.1, 0.95))
    ink = _colour(rng, (0, 1), (0.1, 0.8), (0.0, 0.3)) if rng.random() < 0.8 else hair * 0.4
    th = 0.0 if rng.random() < 0.12 else rng.uniform(1.0, 4.5) * k
    jaw, contour = _face(rng, cx, cy, a, b, eye_y)
    # back hair, body, ears
    hl = rng.uniform(0.0, 1.0)
    back = _arc(
        (cx, cy - 0.05 * b), a * rng.uniform(1.1, 1.35), b * rng.uniform(1.1, 1.35), math.pi * 0.9, math.pi * 2.1, 20
    )
    bottom = cy + b * (0.2 + 1.6 * hl)
    hair_poly = np.concatenate([[[back[-1, 0], bottom]], back, [[back[0, 0], bottom]]])
    cv.fill(hair_poly, hair * 0.8)
    cloth = _colour(rng)
    neck_w = a * rng.uniform(0.3, 0.45)
    chin = jaw[8]
    cv.fill([[cx - neck_w, chin[1] - 0.3 * b], [cx + neck_w, chin[1] - 0.3 * b], [cx + neck_w, chin[1] + 0.35 * b],
             [cx - neck_w, chin[1] + 0.35 * b]], skin * 0.85)  # fmt: skip
    sh = chin[1] + 0.3 * b
    cv.fill(np.concatenate([_arc((cx, sh + 1.2 * b), 2.2 * a, 1.2 * b, math.pi, 2 * math.pi, 16),
                            [[cx + 2.2 * a, size * 1.5], [cx - 2.2 * a, size * 1.5]]]), cloth)  # fmt: skip
    if rng.random() < 0.6:
        for side in (0, 16):
            e = jaw[side] + (np.sign(jaw[side][0] - cx) * 0.08 * a, 0.1 * b)
            cv.ellipse(e, (0.16 * a, 0.24 * b), skin * 0.95)
    cv.fill(contour, skin)
    cv.line(contour, ink, th, closed=True)
    # eyes
    d = a * rng.uniform(0.36, 0.55)
    hw = min(a * rng.uniform(0.14, 0.3), 0.85 * d)
    hh = hw * rng.uniform(0.6, 1.7)
    slant = rng.uniform(-0.3, 0.5)
    style = "dot" if rng.random() < 0.15 else "anime"
    iris = _colour(rng, (0, 1), (0.3, 1.0), (0.3, 0.9))
    eyes = [_eye_points(cx - d, eye_y, hw, hh, True, slant), _eye_points(cx + d, eye_y, hw, hh, False, slant)]
    if rng.random() < 0.5:  # blush
        for s in (-1, 1):
            cv.ellipse((cx + s * (d + 0.2 * hw), eye_y + hh + 0.15 * b), (0.22 * a, 0.08 * b), (240, 150, 160))
    for E in eyes:
        _draw_eye(cv, rng, E, ink, max(th, 1.0 * k), style, iris)
    # brows
    gap = hh * rng.uniform(0.3, 1.2) + 0.04 * b
    bw = hw * rng.uniform(1.0, 1.5)
    bth = rng.uniform(1.0, 5.0) * k
    brows = []
    for s, E in ((-1, eyes[0]), (1, eyes[1])):
        ecx = E[:, 0].mean()
        xs = ecx + np.linspace(-bw, bw, 5)
        arch = rng.uniform(0.0, 0.4) * hh
        tilt = rng.uniform(-0.25, 0.25) * hh * s
        ys = E[:, 1].min() - gap - arch * (1 - ((xs - ecx) / bw) ** 2) + tilt * (xs - ecx) / bw
        brows.append(np.stack([xs, ys], 1))
        cv.line(brows[-1], ink, bth)
    # nose
    ny = eye_y + (b * 0.55) * rng.uniform(0.35, 0.6)
    bridge = np.stack([np.full(4, cx), np.linspace(eye_y - 0.3 * hh, ny, 4)], 1)
    nw = 0.12 * a
    nostrils = np.stack([cx + np.linspace(-nw, nw, 5), ny + 0.05 * b - 0.03 * b * np.abs(np.linspace(-1, 1, 5))], 1)
    kind = rng.random()
    if kind < 0.35:
        cv.ellipse((cx, ny), (1.2 * k + 0.3 * th, 1.2 * k + 0.3 * th), ink)
    elif kind < 0.75:
        cv.line([(cx + 0.03 * a, ny - 0.08 * b), (cx - 0.02 * a, ny + 0.02 * b)], ink * 1.2 + 40, max(th, k))
    # mouth
    chin_y = jaw[8, 1]
    my = ny + (chin_y - ny) * rng.uniform(0.35, 0.55)
    mw = a * rng.uniform(0.12, 0.35)
    open_ = rng.uniform(0.2, 1.0) if rng.random() < 0.4 else 0.0
    M = _mouth(rng, cx, my, mw, open_, rng.uniform(-0.4, 1.0))
    if open_ > 0:
        inner = M[12:20]  # points 60-67
        cv.fill(inner, (120, 40, 50))
        cv.ellipse(M[18] + (0, -0.25 * open_ * mw), (0.5 * mw, 0.25 * open_ * mw), (220, 110, 120))
        cv.line(inner, ink, max(th, k), closed=True)
    else:
        cv.line(M[12:17], ink, max(th, 1.2 * k))
    # fringe over the forehead (hides the brows when low, sometimes the eyes' tops)
    low = np.mean([p[:, 1].mean() for p in brows]) + rng.uniform(-0.6, 0.8) * gap
    if rng.random() < 0.85:
        n = int(rng.integers(3, 10))
        top = _arc((cx, cy - 0.05 * b), a * 1.12, b * 1.18, math.pi, 2 * math.pi, n + 1)
        xs = np.linspace(cx - 1.05 * a, cx + 1.05 * a, 2 * n + 1)
        ys = np.where(np.arange(2 * n + 1) % 2 == 1, low, low - rng.uniform(0.1, 0.5) * gap - 0.15 * b)
        ys = ys + rng.normal(0, 0.03 * b, ys.size)
        fringe = np.concatenate([top, np.stack([xs, ys], 1)[::-1]])
        cv.fill(fringe, hair)
        cv.line(fringe, ink, th, closed=True)
        if rng.random() < 0.5:  # side locks over the cheeks
            for s in (-1, 1):
                x0 = cx + s * 1.05 * a
                tip = (x0 - s * 0.1 * a, eye_y + 0.7 * b * hl + 0.3 * b)
                lock = [(x0, eye_y - 0.5 * b), (x0 - s * 0.25 * a, eye_y), tip, (x0 + s * 0.08 * a, eye_y)]
                cv.fill(lock, hair)
                cv.line(lock, ink, th, closed=True)
    pts = np.concatenate([jaw, brows[0], brows[1], bridge, nostrils, eyes[0], eyes[1], M]).astype(np.float32)
    return Character(np.dstack([cv.rgb, cv.a]), pts)


def random_character(rng: np.random.Generator, size: int = 256, avatar_share: float = 0.5) -> Character:
    """One of the two kinds, ``avatar_share`` of the time the procedural avatar."""
    return avatar_character(rng, size) if rng.random() < avatar_share else flat_character(rng, size)


# --- model input windows -----------------------------------------------------------------------------------
def background(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random backdrop [n, n, 3] uint8: flat, a gradient, soft blotches, stripes or shapes."""
    c0, c1 = _colour(rng), _colour(rng)
    kind = rng.random()
    if kind < 0.25:
        img = np.broadcast_to(c0, (n, n, 3)).copy()
    elif kind < 0.5:
        t = np.linspace(0, 1, n, dtype=np.float32)
        g = np.cos(rng.uniform(0, np.pi)) * t[None, :] + np.sin(rng.uniform(0, np.pi)) * t[:, None]
        g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
        img = c0 * (1 - g[..., None]) + c1 * g[..., None]
    elif kind < 0.7:
        m = cv2.resize(rng.random((4, 4)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
        m = np.clip(m, 0, 1)[..., None]
        img = c0 * (1 - m) + c1 * m
    elif kind < 0.8:
        period = rng.uniform(6, 40)
        x = np.arange(n, dtype=np.float32)
        t = rng.uniform(0, np.pi)
        s = ((x[None, :] * math.cos(t) + x[:, None] * math.sin(t)) // period) % 2
        img = np.where(s[..., None] > 0, c0, c1)
    else:
        img = np.broadcast_to(c0, (n, n, 3)).copy()
        for _ in range(int(rng.integers(2, 9))):
            col = tuple(float(v) for v in _colour(rng))
            p = rng.uniform(0, n, 2).astype(int)
            if rng.random() < 0.5:
                cv2.circle(img, tuple(int(v) for v in p), int(rng.uniform(2, n / 4)), col, -1, cv2.LINE_AA)
            else:
                q = rng.uniform(0, n, 2).astype(int)
                cv2.rectangle(img, tuple(int(v) for v in p), tuple(int(v) for v in q), col, int(rng.choice([-1, 2, 4])))
    return np.clip(img, 0, 255).astype(np.uint8)


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random colour, line-weight, blur, noise and JPEG changes of a uint8 RGB window."""
    if rng.random() < 0.5:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.int32)
        hsv[..., 0] = (hsv[..., 0] + int(rng.integers(0, 180))) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.3, 1.3), 0, 255)
        img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.1:
        img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, 2)
    if rng.random() < 0.5:
        lut = (255 * (np.arange(256) / 255.0) ** rng.uniform(0.7, 1.4)).astype(np.uint8)
        img = lut[img]
    u = rng.random()
    if u < 0.2:
        img = cv2.erode(img, np.ones((2, 2), np.uint8))  # darker, thicker lines
    elif u < 0.3:
        img = cv2.dilate(img, np.ones((2, 2), np.uint8))
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.3:
        img = np.clip(img + rng.normal(0, rng.uniform(1, 6), img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return img


def window(ch: Character, rng: np.random.Generator, n: int = 128, kind: str = "refine"):
    """The character in a model input window: (RGB uint8 [n, n, 3], points [68, 2] in window units 0..1,
    face 1.0 / 0.0). ``kind``: ``refine``, ``search`` or ``negative`` (see the module doc)."""
    fc, fs = face_box(ch.points)
    face = 1.0
    if kind == "refine":
        side = fs * REFINE * rng.uniform(0.9, 1.12)
        centre = fc + rng.normal(0, REFINE_JITTER * side, 2)
        angle = rng.normal(0, math.radians(6))
    elif kind == "search":
        side = fs / rng.uniform(*SEARCH_RATIO)
        centre = fc + rng.uniform(-0.2, 0.2, 2) * side
        angle = rng.uniform(-1, 1) * math.radians(30)
    else:
        face = 0.0
        angle = rng.uniform(-1, 1) * math.radians(30)
        u = rng.random()
        if u < 0.3:  # the face far too small for the window
            side, centre = fs / rng.uniform(0.06, 0.17), fc + rng.uniform(-0.3, 0.3, 2) * fs / 0.1
        elif u < 0.6:  # inside the face (too close)
            side, centre = fs / rng.uniform(1.5, 3.5), fc + rng.uniform(-0.5, 0.5, 2) * fs
        else:  # off the face: hair, body, background
            side = fs / rng.uniform(0.2, 0.9)
            d = rng.normal(0, 1, 2)
            centre = fc + d / np.linalg.norm(d) * side * rng.uniform(0.7, 1.5)
    M = window_transform(centre, side, angle, n)
    fg = warp_window(ch.rgba, M, n).astype(np.float32)
    a = fg[..., 3:4] / 255.0
    img = (fg[..., :3] * a + background(rng, n).astype(np.float32) * (1 - a)).astype(np.uint8)
    img = degrade(img, rng)
    pts = (ch.points @ M[:, :2].T + M[:, 2]) / n
    if rng.random() < 0.5:
        img = np.ascontiguousarray(img[:, ::-1])
        pts = pts[FLIP] * np.array([-1, 1], np.float32) + np.array([1, 0], np.float32)
    return img, pts.astype(np.float32), face
