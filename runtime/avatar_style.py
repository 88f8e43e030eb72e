"""The avatar's style: what the avatar keeps from a photo (never its pixels), and its cel palette.

``AvatarStyle`` is the whole description of a procedural character: cel colours (skin, hair, eyes, lips,
background, clothes, glasses frame, facial hair), the hairstyle and its shape (length, fringe, parting, volume),
facial hair and glasses. ``runtime.photo_traits`` measures one from a photo; ``runtime.avatar_attributes`` turns
it into the bundle's ``"attributes"`` and applies a user's overrides; ``make_palette`` turns it into the named
colours the renderer paints with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

logger = logging.getLogger(__name__)

RGB = tuple[int, int, int]

HAIR_STYLES = (
    "short_crop",
    "buzz",
    "bald",
    "receding",
    "spiky",
    "slicked_back",
    "side_part",
    "bob",
    "fringe",
    "long_straight",
    "long_wavy",
    "curly",
    "tied_back",
)
FACIAL_HAIR = ("none", "stubble", "moustache", "goatee", "beard")
GLASSES_SHAPES = ("round", "rectangular")
HAIR_LENGTHS = ("bald", "short", "medium", "long")
# where the named lengths start on the reach scale (0 = none, 0.5 = the chin, 0.8 = the shoulders, 1 = the chest):
# short ends above the jaw, medium hangs to the shoulders, long falls past them
MEDIUM_REACH, LONG_REACH = 0.3, 0.8
# how far each hairstyle's hair may reach (``hair_length``: 0 = none .. 1 = to the chest)
STYLE_REACH = {
    "bald": (0.0, 0.0),
    "receding": (0.0, 0.25),
    "buzz": (0.02, 0.1),
    "short_crop": (0.05, 0.28),
    "spiky": (0.05, 0.3),
    "slicked_back": (0.05, 0.45),
    "side_part": (0.05, 1.0),
    "bob": (0.3, 0.78),
    "fringe": (0.05, 1.0),
    "long_straight": (LONG_REACH, 1.0),
    "long_wavy": (LONG_REACH, 1.0),
    "curly": (0.05, 1.0),
    "tied_back": (0.2, 1.0),
}


def length_class(style: str, reach: float) -> str:
    """The named hair length (``HAIR_LENGTHS``) of a hairstyle with hair reaching ``reach`` (0..1)."""
    if style == "receding" or style in ("bald", "buzz") and reach < 0.05 or reach < 0.015:
        return "bald"  # no hair to speak of on top: bald, balding (hair at the sides only), or shaved to stubble
    return "short" if reach < MEDIUM_REACH else "medium" if reach < LONG_REACH else "long"


@dataclass(frozen=True)
class AvatarStyle:
    """Everything the procedural avatar keeps from the photo: colours, hairstyle, facial hair and glasses.

    ``hair_length`` is how far the hair reaches (0 none .. 1 to the chest), ``fringe`` how far it comes down the
    forehead (0 bare .. 1 to the brows), ``part`` the parting side (-1 image left .. 1 image right), ``volume``
    the hair's bulk (0 flat .. 1 big), ``brow`` the brows' weight (0 thin .. 1 thick). Colours that are ``None``
    follow another one (facial hair: the hair; clothes: the eyes' hue); ``headwear`` is a cap colour or ``None``.
    """

    skin: RGB
    hair: RGB
    eyes: RGB
    lips: RGB
    background: RGB
    hair_length: float = 0.3
    glasses: bool = False
    facial_hair: str = "none"
    hair_style: str = "side_part"
    glasses_shape: str = "round"
    glasses_colour: RGB = (62, 56, 72)
    facial_hair_colour: RGB | None = None
    clothes: RGB | None = None
    headwear: RGB | None = None
    fringe: float = 0.6
    part: float = 0.0
    volume: float = 0.5
    brow: float = 0.5

    def __post_init__(self) -> None:
        for name, allowed in (
            ("hair_style", HAIR_STYLES),
            ("facial_hair", FACIAL_HAIR),
            ("glasses_shape", GLASSES_SHAPES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r:.40}")

    @property
    def beard(self) -> bool:
        """Any facial hair at all."""
        return self.facial_hair != "none"

    @property
    def length_name(self) -> str:
        """``bald``, ``short``, ``medium`` or ``long``."""
        return length_class(self.hair_style, self.hair_length)

    def to_dict(self) -> dict:
        """JSON-friendly dict (colours as [r, g, b] lists, ``None`` kept)."""
        d = asdict(self)
        for f in fields(self):
            v = d[f.name]
            if isinstance(v, tuple):
                d[f.name] = [int(c) for c in v]
            elif isinstance(v, (float, np.floating)):
                d[f.name] = round(float(v), 3)
            elif isinstance(v, (bool, np.bool_)):
                d[f.name] = bool(v)
        return d

    def describe(self) -> str:
        """The style in words: ``short side_part hair #553322, skin #e0b090, eyes #6b4646, glasses (round)``."""
        extras = [f"glasses ({self.glasses_shape})"] if self.glasses else []
        if self.facial_hair != "none":
            extras.append(self.facial_hair)
        if self.headwear is not None:
            extras.append("headwear")
        return ", ".join(
            [
                f"{self.length_name} {self.hair_style} hair {hex_colour(self.hair)}",
                f"skin {hex_colour(self.skin)}",
                f"eyes {hex_colour(self.eyes)}",
            ]
            + extras
        )

    @classmethod
    def from_dict(cls, d: dict) -> AvatarStyle:
        """Inverse of :meth:`to_dict` (tolerates lists / numpy values; reads the older ``beard`` flag).

        Raises ``ValueError`` / ``KeyError`` / ``TypeError`` on anything malformed."""

        def num(k: str, default: float, lo: float, hi: float) -> float:
            v = d.get(k, default)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"{k} must be a number, got {v!r:.40}")
            return float(np.clip(float(v), lo, hi)) if np.isfinite(v) else default

        def opt(k: str) -> RGB | None:
            return None if d.get(k) is None else colour(d[k])

        facial = d.get("facial_hair", "beard" if d.get("beard") is True else "none")
        return cls(
            skin=colour(d["skin"]),
            hair=colour(d["hair"]),
            eyes=colour(d["eyes"]),
            lips=colour(d["lips"]),
            background=colour(d["background"]),
            hair_length=num("hair_length", 0.3, 0.0, 1.0),
            glasses=bool(d.get("glasses", False)),
            facial_hair=str(facial),
            hair_style=str(d.get("hair_style", "side_part")),
            glasses_shape=str(d.get("glasses_shape", "round")),
            glasses_colour=colour(d.get("glasses_colour", (62, 56, 72))),
            facial_hair_colour=opt("facial_hair_colour"),
            clothes=opt("clothes"),
            headwear=opt("headwear"),
            fringe=num("fringe", 0.6, 0.0, 1.0),
            part=num("part", 0.0, -1.0, 1.0),
            volume=num("volume", 0.5, 0.0, 1.0),
            brow=num("brow", 0.5, 0.0, 1.0),
        )


def colour(v) -> RGB:
    """An RGB colour from 3 numbers (0..255) or a ``#rrggbb`` / ``#rgb`` string; ``ValueError`` otherwise."""
    if isinstance(v, str):
        s = v.strip().lstrip("#")
        if len(s) == 3:
            s = "".join(c * 2 for c in s)
        if len(s) != 6 or any(c not in "0123456789abcdefABCDEF" for c in s):
            raise ValueError(f"a colour must be #rrggbb or 3 numbers (RGB 0..255), got {v!r:.40}")
        return tuple(int(s[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    a = np.asarray(v, np.float64) if isinstance(v, (list, tuple, np.ndarray)) else np.zeros(0)
    if a.shape != (3,) or not np.isfinite(a).all():
        raise ValueError(f"a colour must be #rrggbb or 3 numbers (RGB 0..255), got {v!r:.40}")
    return tuple(int(np.clip(round(float(c)), 0, 255)) for c in a)  # type: ignore[return-value]


def hex_colour(c: Sequence[int]) -> str:
    """``(r, g, b)`` -> ``#rrggbb``."""
    return "#{:02x}{:02x}{:02x}".format(*(int(x) for x in c))


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


def anime_hair(c: Sequence[float]) -> RGB:
    """A measured hair (or facial hair) colour pushed toward a clean cel colour; grey and white stay grey."""
    h, s, v = _rgb2hsv(c)
    return _hsv2rgb(h, np.clip(s * 1.3 + (0.05 if s > 0.12 else 0.0), 0, 0.72), np.clip(v * 1.05, 0.1, 0.9))


def animeify_style(
    skin: Sequence[float],
    hair: Sequence[float],
    eyes: Sequence[float],
    lips: Sequence[float],
    bg: Sequence[float],
    hair_length: float,
    glasses: bool,
    facial_hair: str = "none",
    **traits,
) -> AvatarStyle:
    """Push measured colours toward a saturated, clean cel palette; ``traits`` are the other
    :class:`AvatarStyle` fields (a measured ``clothes`` / ``facial_hair_colour`` colour is pushed too)."""
    h, s, v = _rgb2hsv(skin)
    skin_c = _hsv2rgb(h, np.clip(s * 0.95, 0.1, 0.42), np.clip(v * 0.95 + 0.1, 0.3, 0.97))
    hair_c = anime_hair(hair)
    h, s, v = _rgb2hsv(eyes)
    eyes_c = _hsv2rgb(h, np.clip(s * 1.6 + 0.2, 0.35, 0.9), np.clip(v * 1.4 + 0.2, 0.42, 0.85))
    h, s, v = _rgb2hsv(lips)
    lips_c = _hsv2rgb(h, np.clip(s * 1.3 + 0.05, 0.25, 0.75), np.clip(v * 1.05, 0.45, 0.95))
    h, s, v = _rgb2hsv(bg)
    bg_c = _hsv2rgb(h, np.clip(s * 1.1, 0.12, 0.42), np.clip(0.72 + 0.28 * v, 0.8, 0.97))
    if traits.get("facial_hair_colour") is not None:
        traits["facial_hair_colour"] = anime_hair(traits["facial_hair_colour"])
    if traits.get("clothes") is not None:
        h, s, v = _rgb2hsv(traits["clothes"])
        traits["clothes"] = _hsv2rgb(h, np.clip(s * 1.2, 0.0, 0.8), np.clip(v * 0.9 + 0.08, 0.12, 0.92))
    return AvatarStyle(
        skin_c, hair_c, eyes_c, lips_c, bg_c, round(float(hair_length), 3), bool(glasses), facial_hair, **traits
    )


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
    if st.clothes is None:
        p["cloth"] = _hsv2rgb(eh + 10, 0.42, 0.5)
        p["cloth_sh"] = _hsv2rgb(eh + 14, 0.48, 0.4)
        p["cloth_line"] = _hsv2rgb(eh + 14, 0.5, 0.2)
    else:
        ch, cs, cv = _rgb2hsv(st.clothes)
        p["cloth"] = st.clothes
        p["cloth_sh"] = _hsv2rgb(ch + 4, cs * 1.1 + 0.03, cv * 0.78)
        p["cloth_line"] = _hsv2rgb(ch + 4, min(0.8, cs * 1.1 + 0.1), min(cv * 0.4, 0.25))
    p["collar"] = (250, 250, 252)
    p["glasses"] = st.glasses_colour
    fh = st.facial_hair_colour or st.hair
    fh_h, fh_s, fh_v = _rgb2hsv(fh)
    p["beard"] = fh
    p["beard_sh"] = _hsv2rgb(fh_h + 4, fh_s * 1.1 + 0.04, fh_v * 0.75)
    p["beard_hi"] = _mix(fh, (255, 255, 255), 0.3)
    p["beard_line"] = _hsv2rgb(fh_h, min(0.8, fh_s * 1.1 + 0.1), min(fh_v * 0.45, 0.3))
    # stubble is dark hair seen through the skin: a cool, greyed shadow over it, not a tan of the hair's hue
    p["stubble"] = _mix(st.skin, _hsv2rgb(215.0, 0.18, min(fh_v, 0.45)), 0.15)
    p["buzz"] = _mix(st.skin, st.hair, 0.6)
    p["stubble_dot"] = _mix(st.skin, fh, 0.45)
    if st.headwear is not None:
        wh, ws, wv = _rgb2hsv(st.headwear)
        p["hat"] = st.headwear
        p["hat_sh"] = _hsv2rgb(wh + 4, ws * 1.1 + 0.03, wv * 0.75)
        p["hat_line"] = _hsv2rgb(wh, min(0.8, ws * 1.1 + 0.1), min(wv * 0.4, 0.25))
    return p
