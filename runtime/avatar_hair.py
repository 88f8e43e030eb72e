"""Hairstyles of the procedural avatar: a parametric generator of hair contours in the neutral canvas.

``hair_geometry`` builds, for one of ``HAIR_STYLES`` and the style's shape numbers (``hair_length``, ``fringe``,
``part``, ``volume``), the contours the renderer fills: the back hair behind the head (and a ponytail or bun),
the front hair over the face (an outer dome and a hairline across the forehead), strand lines, curl marks, a
highlight band, an optional ahoge and a cap. Every style is built from the same few shapes:

- the **dome**: an ellipse around the skull, grown by the volume, with bumps (curly), spikes (spiky) or none;
- the **hairline**: where the front hair ends on the forehead. Zigzag tips leaning away from the parting
  (anime fringe), a blunt cut (bangs, bob), a diagonal sweep (side part), a smooth high curve (slicked back,
  tied back, buzz) or scallops (curly); its height follows ``fringe``;
- **side locks** down the cheeks to the hair's reach, and a **back** silhouette to the same reach: straight,
  wavy, scalloped or rounded inward (bob).

All points are in supersampled canvas pixels; the renderer moves them with the head pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .avatar_draw import _bez, _catmull, _stroke
from .avatar_style import STYLE_REACH

# styles whose front hair leaves the ears visible
EARS_SHOWN = {"bald", "receding", "buzz", "short_crop", "spiky", "slicked_back", "tied_back"}


@dataclass
class HairGeometry:
    """Hair contours in neutral canvas pixels (``None``: the style has no such part)."""

    back: np.ndarray | None = None  # behind the head and body
    back_extra: list[np.ndarray] = field(default_factory=list)  # ponytail, bun, side patches (behind)
    front: np.ndarray | None = None  # over the face
    hairline: np.ndarray | None = None  # the front's lower edge across the forehead (casts a shadow)
    strands: list[np.ndarray] = field(default_factory=list)  # shade lines inside the hair
    curls: list[np.ndarray] = field(default_factory=list)  # small arcs (curly texture)
    ring: np.ndarray | None = None  # highlight band, clipped to the front
    ahoge: np.ndarray | None = None
    cap: np.ndarray | None = None  # headwear over the front hair
    cap_band: np.ndarray | None = None
    ears: bool = True
    buzz: bool = False  # drawn as a short stubbly tone, not solid hair
    extras: dict = field(default_factory=dict)


def _wave(n: int, amp: float, periods: float, phase: float) -> np.ndarray:
    return amp * np.sin(np.linspace(0.0, 2 * math.pi * periods, n) + phase)


def _zigzag(x_a: float, x_b: float, y_tip, notch: float, n: int, part: float, rng, W: float, y_ends: float):
    """A fringe edge of ``n`` pointed strands from x_a to x_b (left to right), leaning away from ``part``.

    ``y_tip`` is a number or a function of x (the tip height across the forehead)."""
    tip_y = y_tip if callable(y_tip) else (lambda x: y_tip)
    xs = np.linspace(x_a, x_b, n + 1)
    xs[1:-1] += rng.uniform(-0.2, 0.2, n - 1) * (xs[1] - xs[0])
    prev = np.array([x_a, y_ends], np.float32)
    edge = [prev[None]]
    notches = []
    span = max(abs(x_b - x_a), 1.0)
    for i in range(n):
        mid = 0.5 * (xs[i] + xs[i + 1])
        lean = float(np.clip((mid - part) / (0.45 * span), -1, 1))
        tip = np.array(
            [mid + lean * 0.035 * W, tip_y(mid) + (rng.uniform(-0.012, 0.01) - 0.025 * abs(lean) ** 1.5) * W],
            np.float32,
        )
        if i == n - 1:
            nb = np.array([x_b, y_ends], np.float32)
        else:
            nb = np.array([xs[i + 1], tip_y(xs[i + 1]) - notch + rng.uniform(-0.015, 0.02) * W], np.float32)
            notches.append(nb)
        bow = np.array([-0.012 * W * lean, 0.012 * W], np.float32)
        edge.append(_bez(prev, 0.5 * (prev + tip) + bow + (-0.005 * W, 0), tip, 6)[1:])
        edge.append(_bez(tip, 0.5 * (tip + nb) + bow + (0.005 * W, 0), nb, 6)[1:])
        prev = nb
    return np.concatenate(edge).astype(np.float32), notches


def _scallops(p0: np.ndarray, p1: np.ndarray, n: int, amp: float, side: float = 1.0) -> np.ndarray:
    """``n`` round bumps from p0 to p1, bulging ``amp`` to the left of the direction of travel (× side)."""
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    d = p1 - p0
    nrm = np.array([d[1], -d[0]], np.float32) / (np.linalg.norm(d) + 1e-6) * side
    out = []
    for i in range(n):
        a, b = p0 + d * (i / n), p0 + d * ((i + 1) / n)
        out.append(_bez(a, 0.5 * (a + b) + nrm * amp * 2.0, b, 7)[(1 if i else 0) :])
    return np.concatenate(out).astype(np.float32)


class _Frame:
    """The head's measures in the neutral canvas, shared by every style."""

    def __init__(self, N: np.ndarray, W: float, cx: float) -> None:
        self.W, self.cx = W, cx
        j0, j16 = N[0], N[16]
        self.j0, self.j16 = j0, j16
        self.yc = float(0.5 * (j0[1] + j16[1]))
        self.rx = float(0.5 * (j16[0] - j0[0])) * 1.02
        self.chin_y = float(N[8, 1])
        self.top = max(self.yc - 0.95 * (self.chin_y - self.yc), 0.13 * W)
        self.ry = self.yc - self.top
        self.brow_y = float(N[17:27, 1].min())

    def ellipse(self, a: np.ndarray, grow: float, lift: float = 0.0, r: np.ndarray | float = 1.0) -> np.ndarray:
        """Points at angles ``a`` (0 = image right, pi/2 = top) on the skull ellipse grown by ``grow`` px."""
        hx, hy = self.rx + grow, self.ry + 0.9 * grow
        yc = self.yc + 0.01 * self.W - lift
        return np.stack([self.cx + hx * r * np.cos(a), yc - hy * r * np.sin(a)], 1).astype(np.float32)

    def hairline_y(self, f: float) -> float:
        """The height of a hairline that comes ``f`` of the way from a bare forehead (0) to the brows (1)."""
        bare = self.brow_y - 0.13 * self.W
        return bare + float(np.clip(f, 0.0, 1.0)) * (self.brow_y - 0.012 * self.W - bare)


def _side_lock(fr: _Frame, sgn: int, top_pt: np.ndarray, x_in: float, y_in: float, lock_y: float, wave: float):
    """A lock from the dome's end down beside the cheek to ``lock_y`` and back up inside to the hairline."""
    W, cx, rx = fr.W, fr.cx, fr.rx
    tip1 = np.array([cx + sgn * (rx + 0.015 * W), lock_y], np.float32)
    notch = np.array([cx + sgn * (rx - 0.012 * W), lock_y - 0.085 * W], np.float32)
    tip2 = np.array([cx + sgn * 0.84 * rx, lock_y - 0.04 * W], np.float32)
    end = np.array([x_in, y_in], np.float32)
    down = _bez(top_pt, (top_pt[0] + sgn * 0.004 * W, 0.45 * top_pt[1] + 0.55 * tip1[1]), tip1, 9)
    if wave:
        down = down + np.stack([_wave(len(down), wave * sgn, 1.5, 0.0), np.zeros(len(down))], 1).astype(np.float32)
    return np.concatenate(
        [
            down,
            _bez(tip1, 0.5 * (tip1 + notch) + (-sgn * 0.008 * W, 0.0), notch, 5)[1:],
            _bez(notch, 0.5 * (notch + tip2) + (sgn * 0.006 * W, 0.01 * W), tip2, 5)[1:],
            _bez(tip2, (cx + sgn * 0.74 * rx, 0.5 * (y_in + tip2[1])), end, 9)[1:],
        ]
    ).astype(np.float32)


def _sideburn(fr: _Frame, sgn: int, top_pt: np.ndarray, x_in: float, y_in: float) -> np.ndarray:
    """A short side: from the dome's end down to the ear's top, then in to the hairline."""
    W, cx, rx = fr.W, fr.cx, fr.rx
    low = np.array([cx + sgn * (rx - 0.004 * W), fr.yc - 0.01 * W], np.float32)
    inner = np.array([cx + sgn * (rx - 0.03 * W), fr.yc - 0.03 * W], np.float32)
    end = np.array([x_in, y_in], np.float32)
    return np.concatenate(
        [
            _bez(top_pt, (top_pt[0], 0.5 * (top_pt[1] + low[1])), low, 7),
            _bez(low, 0.5 * (low + inner) + (0.0, 0.01 * W), inner, 4)[1:],
            _bez(inner, (inner[0], 0.5 * (inner[1] + y_in)), end, 6)[1:],
        ]
    ).astype(np.float32)


def _back(fr: _Frame, style: str, L: float, grow: float, rng) -> np.ndarray:
    """The back hair's silhouette down to the reach ``L``."""
    W, cx, rx = fr.W, fr.cx, fr.rx
    y_end = fr.yc + (0.02 + 0.8 * L) * W if L >= 0.3 else fr.yc + (0.02 + 0.3 * L) * W
    dome = fr.ellipse(np.linspace(-0.3, math.pi + 0.3, 32, dtype=np.float32), grow)
    if style == "curly":
        dome = fr.ellipse(np.linspace(-0.3, math.pi + 0.3, 32, dtype=np.float32), grow * 1.15)
    fl = (0.03 + 0.05 * L) * W
    r_bot, l_bot = np.array([dome[0, 0] + fl, y_end], np.float32), np.array([dome[-1, 0] - fl, y_end], np.float32)
    if style == "bob":  # rounded, ends curling in at its length (jaw to shoulders)
        r_bot = np.array([cx + rx + 0.05 * W, y_end], np.float32)
        l_bot = np.array([cx - rx - 0.05 * W, y_end], np.float32)
        right = _bez(r_bot, (r_bot[0] + 0.05 * W, 0.5 * (r_bot[1] + dome[0, 1])), dome[0], 8)
        left = _bez(dome[-1], (l_bot[0] - 0.05 * W, 0.5 * (l_bot[1] + dome[-1, 1])), l_bot, 8)
        bottom = _bez(l_bot, (cx, y_end + 0.03 * W), r_bot, 10)
        return np.concatenate([right, dome[1:-1], left, bottom[1:-1]]).astype(np.float32)
    if L < 0.3:
        r_bot, l_bot = np.array([cx + 0.8 * rx, y_end], np.float32), np.array([cx - 0.8 * rx, y_end], np.float32)
    r_mid = np.array([dome[0, 0] + 0.4 * fl, 0.5 * (dome[0, 1] + y_end)], np.float32)
    l_mid = np.array([dome[-1, 0] - 0.4 * fl, 0.5 * (dome[-1, 1] + y_end)], np.float32)
    sides = np.concatenate([r_bot[None], r_mid[None], dome, l_mid[None], l_bot[None]])
    outline = _catmull(sides, 4)
    if style == "long_wavy":
        k = len(outline)
        t = np.abs(np.linspace(-1, 1, k))  # the waves grow toward the ends
        outline[:, 0] += (0.02 * W * t**2 * np.sin(np.linspace(0, 9 * math.pi, k))).astype(np.float32)
    if style == "curly":
        pts = outline[:: max(len(outline) // 16, 1)]
        outline = np.concatenate([_scallops(pts[i], pts[i + 1], 1, 0.018 * W) for i in range(len(pts) - 1)])
        bottom = _scallops(l_bot, r_bot, 5, 0.02 * W, side=-1.0)
        return np.concatenate([outline, bottom]).astype(np.float32)
    xs_t = np.linspace(l_bot[0], r_bot[0], 8)[1:-1]
    tips = np.stack([xs_t, y_end - 0.05 * W * (np.arange(len(xs_t)) % 2 == 0)], 1)
    return np.concatenate([outline, tips.astype(np.float32)])


def _dome_front(fr: _Frame, style: str, grow: float, rng) -> np.ndarray:
    """The front hair's outer edge, left end to right end over the top."""
    a = np.linspace(math.pi + 0.1, -0.1, 40, dtype=np.float32)
    phase = float(rng.uniform(0, 2 * math.pi))
    if style == "spiky":
        k = np.linspace(0, 1, len(a))
        spikes = 0.22 * np.maximum(0.0, np.sin(k * 9 * math.pi + phase)) ** 2 * np.sin(k * math.pi) ** 0.5
        return fr.ellipse(a, grow, r=1.0 + spikes)
    if style == "curly":
        pts = fr.ellipse(np.linspace(math.pi + 0.1, -0.1, 12, dtype=np.float32), grow)
        return np.concatenate([_scallops(pts[i], pts[i + 1], 1, 0.02 * fr.W) for i in range(len(pts) - 1)])
    return fr.ellipse(a, grow, r=1.0 + 0.018 * np.sin(9.0 * a + phase))


def hair_geometry(style, N: np.ndarray, W: float, cx: float, rng: np.random.Generator) -> HairGeometry:
    """The hair contours of an ``AvatarStyle`` for the neutral landmarks ``N`` (canvas px, canvas ``W``)."""
    fr = _Frame(N, W, cx)
    name = style.hair_style
    L = float(np.clip(style.hair_length, *STYLE_REACH[name]))  # a style's hair reaches only as far as it can
    vol = float(np.clip(style.volume, 0.0, 1.0))
    g = HairGeometry(ears=name in EARS_SHOWN or L < 0.3 and name not in ("bob",))
    if name == "bald":
        return g
    part = fr.cx + fr.rx * 0.8 * float(np.clip(style.part, -1.0, 1.0))
    grow = {"buzz": 0.01, "slicked_back": 0.03, "tied_back": 0.03, "receding": 0.02, "spiky": 0.05, "short_crop": 0.03}
    grow = grow.get(name, 0.06)
    grow = (grow + (0.06 if name in ("curly", "spiky", "long_wavy") else 0.04) * vol) * W
    xl_in, xr_in = fr.cx - 0.8 * fr.rx, fr.cx + 0.8 * fr.rx
    f = float(style.fringe)

    if name == "receding":  # hair at the sides and back only: a horseshoe behind the head
        for sgn in (-1, 1):
            a0, a1 = (0.55, -0.35) if sgn > 0 else (math.pi - 0.55, math.pi + 0.35)
            outer = fr.ellipse(np.linspace(a0, a1, 10, dtype=np.float32), grow)
            inner = fr.ellipse(np.linspace(a1, a0, 10, dtype=np.float32), -0.02 * W)
            g.back_extra.append(np.concatenate([outer, inner]))
        return g

    dome = _dome_front(fr, name, grow, rng)
    # the hairline, left to right
    y_end = fr.hairline_y(0.2) + 0.015 * W
    notches: list = []
    if name in ("slicked_back", "tied_back", "buzz"):
        y_line = fr.hairline_y(0.0 if name == "buzz" else 0.08)
        peak = 0.012 * W if name == "slicked_back" else 0.0
        line = _catmull(
            np.array(
                [
                    (xl_in, y_end),
                    (fr.cx - 0.4 * fr.rx, y_line),
                    (fr.cx, y_line + peak),
                    (fr.cx + 0.4 * fr.rx, y_line),
                    (xr_in, y_end),
                ],
                np.float32,
            ),  # fmt: skip
            6,
        )
        if name != "buzz":
            for x in np.linspace(fr.cx - 0.55 * fr.rx, fr.cx + 0.55 * fr.rx, 5):  # comb lines swept back
                b = np.array([x, y_line + 0.005 * W], np.float32)
                g.strands.append(_bez(b, b + ((x - fr.cx) * 0.25, -0.06 * W), b + ((x - fr.cx) * 0.4, -0.13 * W), 6))
    elif name in ("fringe", "bob"):  # a blunt cut straight across with small teeth
        y_line = fr.hairline_y(max(f, 0.85))
        xs = np.linspace(xl_in, xr_in, 25)
        ys = y_line + np.where(np.arange(25) % 2 == 0, 0.0, -0.012 * W)
        ys[0] = ys[-1] = y_end
        line = np.stack([xs, ys], 1).astype(np.float32)
        for x in np.linspace(xl_in + 0.1 * fr.rx, xr_in - 0.1 * fr.rx, 6):
            b = np.array([x, y_line - 0.01 * W], np.float32)
            g.strands.append(_bez(b, b + (0.004 * W, -0.04 * W), b + (0.01 * W, -0.07 * W), 5))
    elif name == "curly":
        y_line = fr.hairline_y(f)
        ctrl = np.array([(xl_in, y_end), (fr.cx, y_line), (xr_in, y_end)], np.float32)
        line = np.concatenate(
            [_scallops(ctrl[0], ctrl[1], 3, 0.02 * W, -1.0), _scallops(ctrl[1], ctrl[2], 3, 0.02 * W, -1.0)[1:]]
        )
        c_rng = np.random.default_rng(int(rng.integers(1 << 30)))
        for _ in range(14):
            t = float(c_rng.uniform(0.15, 0.85)) * math.pi
            r = float(c_rng.uniform(0.45, 0.9))
            c = fr.ellipse(np.array([t], np.float32), grow * 0.6, r=r)[0]
            c[1] = min(c[1], y_line - 0.03 * W)
            th = np.linspace(0, 1.4 * math.pi, 8) + c_rng.uniform(0, 2 * math.pi)
            g.curls.append((c + 0.016 * W * np.stack([np.cos(th), np.sin(th)], 1)).astype(np.float32))
    else:  # zigzag anime fringe: side part (swept), short crop (short tips), spiky, long styles
        if name == "side_part":
            lo, hi = fr.hairline_y(max(f, 0.8)), fr.hairline_y(0.0)
            s = 1.0 if style.part >= 0 else -1.0  # the fringe hangs lowest on the side away from the parting
            span = xr_in - xl_in

            def tip(x, lo=lo, hi=hi, s=s, span=span):
                t = (x - xl_in) / span
                return hi + (lo - hi) * (1.0 - t if s > 0 else t)

            part_x = fr.cx + s * 0.55 * fr.rx
            line, notches = _zigzag(xl_in, xr_in, tip, 0.07 * W, 5, part_x, rng, W, y_end)
        else:
            n, depth = {"short_crop": (8, 0.04), "spiky": (6, 0.1)}.get(name, (6, 0.085))
            f_ = min(f, 0.5) if name == "short_crop" else f  # a crop's fringe is short: the forehead shows
            line, notches = _zigzag(xl_in, xr_in, fr.hairline_y(f_), depth * W, n, part, rng, W, y_end)
        for n_ in notches:
            g.strands.append(
                _bez(
                    n_ + (0, 0.008 * W),
                    n_ + ((n_[0] - fr.cx) * 0.12 + 0.01 * W, -0.05 * W),
                    n_ + ((n_[0] - fr.cx) * 0.15, -0.085 * W),
                    6,
                )
            )
    g.hairline = line.astype(np.float32)

    # sides: long locks for medium and long hair, short sideburns otherwise
    if L >= 0.3 and name not in ("tied_back", "slicked_back"):
        wave = 0.012 * W if name in ("long_wavy", "curly") else 0.0
        lock_y = fr.yc + (0.13 + 0.42 * L) * W if name != "bob" else fr.yc + (0.08 + 0.3 * L) * W
        r_side = _side_lock(fr, 1, dome[-1], xr_in, y_end, lock_y, wave)
        l_side = _side_lock(fr, -1, dome[0], xl_in, y_end, lock_y, wave)
        for sgn in (1, -1):
            a_ = np.array([fr.cx + sgn * (fr.rx - 0.012 * W), lock_y - 0.085 * W], np.float32)
            g.strands.append(_bez(a_, a_ + (sgn * 0.004 * W, -0.05 * W), a_ + (sgn * 0.01 * W, -0.1 * W), 6))
    else:
        r_side = _sideburn(fr, 1, dome[-1], xr_in, y_end)
        l_side = _sideburn(fr, -1, dome[0], xl_in, y_end)
    g.front = np.concatenate([dome, r_side[1:], line[::-1][1:], l_side[::-1][1:-1]]).astype(np.float32)

    # behind the head
    if name == "buzz":
        g.buzz = True
    elif name == "tied_back":
        g.back = _back(fr, "short_crop", 0.1, grow, rng)
        side = 1.0 if style.part >= 0 else -1.0
        if L >= 0.45:  # a ponytail falling behind the neck on one side
            root = np.array([fr.cx + side * 0.7 * fr.rx, fr.yc - 0.02 * W], np.float32)
            tipp = np.array([fr.cx + side * (fr.rx + 0.05 * W), fr.yc + (0.1 + 0.6 * L) * W], np.float32)
            left = _bez(root - (0.05 * W, 0), root + (side * 0.12 * W - 0.05 * W, 0.2 * W), tipp, 12)
            right = _bez(tipp, root + (side * 0.18 * W + 0.05 * W, 0.15 * W), root + (0.05 * W, 0), 12)
            g.back_extra.append(np.concatenate([left, right[1:]]).astype(np.float32))
        else:  # a bun on the back of the head, seen above the crown
            c = np.array([fr.cx + side * 0.2 * fr.rx, fr.top - 0.02 * W], np.float32)
            th = np.linspace(0, 2 * math.pi, 24, endpoint=False)
            g.back_extra.append((c + 0.075 * W * np.stack([np.cos(th), 0.85 * np.sin(th)], 1)).astype(np.float32))
    else:
        g.back = _back(fr, name, L, grow, rng)
        if L >= 0.3:
            for x in np.linspace(-0.9, 0.9, 4):  # long strands down the back hair
                b = np.array([fr.cx + (fr.rx + 0.02 * W) * (1.0 if x > 0 else -1.0), fr.yc + 0.1 * W], np.float32)
                b[0] += x * 0.02 * W
                e = b + (np.sign(x) * 0.02 * W, (0.1 + 0.6 * L) * W)
                s_ = _bez(b, 0.5 * (b + e) + (np.sign(x) * 0.015 * W, 0), e, 8)
                if name == "long_wavy":
                    s_[:, 0] += _wave(len(s_), 0.012 * W, 1.5, x).astype(np.float32)
                g.extras.setdefault("back_strands", []).append(s_.astype(np.float32))

    # highlight band ("angel ring") and ahoge
    if not g.buzz:
        a = np.linspace(math.pi * 0.8, math.pi * 0.2, 16, dtype=np.float32)
        ring_c = fr.ellipse(a, grow, r=0.74) + np.array([0, 0.05 * W], np.float32)
        g.ring = _stroke(ring_c, 0.02 * W * (0.3 + 0.7 * np.sin(np.linspace(0, math.pi, 16))))
    if name in ("side_part", "fringe", "long_straight", "bob", "short_crop") and rng.uniform() > 0.4:
        base = np.array([fr.cx + 0.12 * fr.rx, fr.ellipse(np.array([math.pi / 2]), grow)[0, 1] + 0.02 * W], np.float32)
        sgn = 1.0 if rng.uniform() > 0.5 else -1.0
        c_ = _bez(base, base + (sgn * 0.06 * W, -0.08 * W), base + (sgn * -0.03 * W, -0.07 * W), 10)
        g.ahoge = _stroke(c_, np.linspace(0.022 * W, 0.5, 10))

    if style.headwear is not None:  # a beanie over the top of the head, its band at the forehead
        a = np.linspace(math.pi + 0.15, -0.15, 32, dtype=np.float32)
        crown = fr.ellipse(a, grow + 0.02 * W)
        band_y = fr.hairline_y(0.35)
        l_pt = np.array([crown[0, 0], band_y + 0.02 * W], np.float32)
        r_pt = np.array([crown[-1, 0], band_y + 0.02 * W], np.float32)
        brim = _bez(r_pt, (fr.cx, band_y - 0.015 * W), l_pt, 12)
        g.cap = np.concatenate([crown, brim[1:-1]]).astype(np.float32)
        g.cap_band = _stroke(brim - np.array([0, 0.025 * W], np.float32), 0.05 * W)
        g.ahoge = None
    return g
