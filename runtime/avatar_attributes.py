"""The avatar's attributes: the bundle's stated contract, and the user's overrides of what was estimated.

``attributes_of(style)`` is the ``"attributes"`` object of ``avatar.json`` (docs/avatars.md):

====================== =================================================================================
``glasses``            bool
``glasses_shape``      ``round`` | ``rectangular``
``glasses_colour``     ``#rrggbb``
``facial_hair``        ``none`` | ``stubble`` | ``moustache`` | ``goatee`` | ``beard``
``facial_hair_colour`` ``#rrggbb``
``hair_length``        ``bald`` | ``short`` | ``medium`` | ``long``
``hair_reach``         0..1, how far the hair reaches (0 none, 0.5 the chin, 0.8 the shoulders, 1 the chest)
``hair_style``         one of ``HAIR_STYLES``
``hair_colour``        ``#rrggbb``
``skin_colour``        ``#rrggbb``
``eye_colour``         ``#rrggbb``
``lip_colour``         ``#rrggbb``
``background_colour``  ``#rrggbb``
``clothing_colour``    ``#rrggbb``
``headwear``           ``none`` or a cap's ``#rrggbb``
``fringe``             0..1, how far the fringe comes down the forehead
``part``               -1..1, the parting's side (image left .. right)
``volume``             0..1, the hair's bulk
``brow_weight``        0..1, how thick the brows are
====================== =================================================================================

``style_from_attributes`` reads it back (every key checked; ``ValueError`` naming what is accepted). Bundles of
version 2 named hair reaching 0.6 or more ``long``; they still load, and such hair is raised to the shoulders'
0.8 so that it stays long;
``parse_overrides`` reads ``key=value,...`` text or a JSON file of the same keys (``hair`` is short for
``hair_style``; colours may be ``#rrggbb``, ``#rgb`` or a name in ``COLOUR_NAMES``); ``apply_overrides`` gives the
style with them applied, keeping the hairstyle and its length consistent.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .avatar_style import (
    FACIAL_HAIR,
    GLASSES_SHAPES,
    HAIR_LENGTHS,
    HAIR_STYLES,
    LONG_REACH,
    STYLE_REACH,
    AvatarStyle,
    colour,
    hex_colour,
    length_class,
)
from .errors import InputError

COLOUR_NAMES = {
    "black": "#1e1b20",
    "dark_brown": "#3e2a20",
    "brown": "#6b4a2b",
    "light_brown": "#9a6f45",
    "blonde": "#dcb866",
    "red": "#a8462a",
    "auburn": "#7a3524",
    "grey": "#9c9a9e",
    "gray": "#9c9a9e",
    "white": "#ecebef",
    "blue": "#3a66c4",
    "navy": "#27325e",
    "green": "#3f8a4c",
    "pink": "#e58fb0",
    "purple": "#7a4fb0",
    "orange": "#e07a2e",
    "yellow": "#e8c93a",
    "silver": "#b8bcc4",
    "gold": "#c9a043",
}
# a named length's typical reach (0..1)
LENGTH_REACH = {"bald": 0.0, "short": 0.15, "medium": 0.5, "long": 0.9}
NUMBERS = {
    "hair_reach": (0.0, 1.0),
    "fringe": (0.0, 1.0),
    "part": (-1.0, 1.0),
    "volume": (0.0, 1.0),
    "brow_weight": (0.0, 1.0),
}
COLOURS = {
    "hair_colour": "hair",
    "skin_colour": "skin",
    "eye_colour": "eyes",
    "lip_colour": "lips",
    "background_colour": "background",
    "glasses_colour": "glasses_colour",
    "facial_hair_colour": "facial_hair_colour",
    "clothing_colour": "clothes",
}
KEYS = ("glasses", "glasses_shape", "facial_hair", "hair_length", "hair_style", "headwear", *COLOURS, *NUMBERS)
ALIASES = {"hair": "hair_style", "hair_color": "hair_colour", "skin_color": "skin_colour", "eye_color": "eye_colour"}


def attributes_of(style: AvatarStyle) -> dict:
    """The ``"attributes"`` object of a style (see the module docstring)."""
    return {
        "glasses": bool(style.glasses),
        "glasses_shape": style.glasses_shape,
        "glasses_colour": hex_colour(style.glasses_colour),
        "facial_hair": style.facial_hair,
        "facial_hair_colour": hex_colour(style.facial_hair_colour or style.hair),
        "hair_length": style.length_name,
        "hair_reach": round(float(style.hair_length), 3),
        "hair_style": style.hair_style,
        "hair_colour": hex_colour(style.hair),
        "skin_colour": hex_colour(style.skin),
        "eye_colour": hex_colour(style.eyes),
        "lip_colour": hex_colour(style.lips),
        "background_colour": hex_colour(style.background),
        "clothing_colour": hex_colour(style.clothes)
        if style.clothes is not None
        else hex_colour(_default_clothes(style)),
        "headwear": "none" if style.headwear is None else hex_colour(style.headwear),
        "fringe": round(float(style.fringe), 3),
        "part": round(float(style.part), 3),
        "volume": round(float(style.volume), 3),
        "brow_weight": round(float(style.brow), 3),
    }


def _default_clothes(style: AvatarStyle) -> tuple[int, int, int]:
    from .avatar_style import make_palette

    return make_palette(style)["cloth"]


def _colour_value(key: str, v) -> tuple[int, int, int]:
    if isinstance(v, str) and v.strip().lower() in COLOUR_NAMES:
        v = COLOUR_NAMES[v.strip().lower()]
    try:
        return colour(v)
    except ValueError:
        raise ValueError(
            f"{key} must be #rrggbb, #rgb or a colour name ({', '.join(sorted(COLOUR_NAMES))}); got {v!r:.40}"
        ) from None


def _choice(key: str, v, accepted: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in accepted:
        raise ValueError(f"{key} must be one of {', '.join(accepted)}; got {v!r:.40}")
    return v


def _bool(key: str, v) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0", "none"):
        return v.lower() in ("true", "yes", "on", "1")
    raise ValueError(f"{key} must be true or false; got {v!r:.40}")


def _number(key: str, v) -> float:
    lo, hi = NUMBERS[key]
    try:
        x = float(v) if not isinstance(v, bool) else float("nan")
    except (TypeError, ValueError):
        x = float("nan")
    if not np.isfinite(x) or not lo <= x <= hi:
        raise ValueError(f"{key} must be a number in {lo:g}..{hi:g}; got {v!r:.40}")
    return x


def _normalise_keys(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        key = ALIASES.get(str(k).strip().lower(), str(k).strip().lower())
        if key not in KEYS:
            raise ValueError(f"unknown avatar attribute {k!r:.40}; accepted: {', '.join(('hair',) + KEYS)}")
        out[key] = v
    return out


def apply_overrides(style: AvatarStyle, overrides: dict) -> AvatarStyle:
    """``style`` with ``overrides`` (attribute name -> value) applied; ``ValueError`` on a bad name or value.

    ``glasses`` also takes a shape (``round``, ``rectangular``: glasses on) or ``none``; a hairstyle keeps the
    hair's reach inside what it allows (a bob from the jaw to the shoulders, long styles past the shoulders)
    unless ``hair_length`` / ``hair_reach`` says otherwise, and a length that no hairstyle of the given name has
    is an error."""
    o = _normalise_keys(overrides)
    ch: dict = {}
    if "glasses" in o:
        g = o["glasses"]
        if isinstance(g, str) and g in GLASSES_SHAPES:
            ch.update(glasses=True, glasses_shape=g)
        else:
            try:
                ch["glasses"] = _bool("glasses", g)
            except ValueError:
                raise ValueError(f"glasses must be none, round, rectangular, true or false; got {g!r:.40}") from None
    if "glasses_shape" in o:
        ch["glasses_shape"] = _choice("glasses_shape", o["glasses_shape"], GLASSES_SHAPES)
    if "facial_hair" in o:
        ch["facial_hair"] = _choice("facial_hair", o["facial_hair"], FACIAL_HAIR)
    if "headwear" in o:
        h = o["headwear"]
        ch["headwear"] = None if h in (None, "none", False) else _colour_value("headwear", h)
    for key, field in COLOURS.items():
        if key in o:
            ch[field] = _colour_value(key, o[key])
    for key in ("fringe", "part", "volume"):
        if key in o:
            ch[key] = _number(key, o[key])
    if "brow_weight" in o:
        ch["brow"] = _number("brow_weight", o["brow_weight"])
    hs = _choice("hair_style", o["hair_style"], HAIR_STYLES) if "hair_style" in o else style.hair_style
    reach = float(style.hair_length)
    given = None
    if "hair_length" in o:
        given = _choice("hair_length", o["hair_length"], HAIR_LENGTHS)
        reach = LENGTH_REACH[given]
        if given == "bald" and "hair_style" not in o:
            hs = "bald"
    if "hair_reach" in o:
        reach = _number("hair_reach", o["hair_reach"])
        given = length_class(hs, reach)
    lo, hi = STYLE_REACH[hs]
    if given is not None:
        names = sorted({length_class(hs, x) for x in np.linspace(lo, hi, 9)}, key=HAIR_LENGTHS.index)
        if given not in names:
            raise ValueError(f"hair_length {given} does not fit hair_style {hs} (its lengths: {', '.join(names)})")
    if not lo <= reach <= hi and given is None:  # a new hairstyle: its typical length
        reach = lo + 0.4 * (hi - lo)
    ch["hair_style"] = hs
    ch["hair_length"] = round(float(np.clip(reach, lo, hi)), 3)
    return dataclasses.replace(style, **ch)


V2_LONG_REACH = 0.6  # where version 2 bundles started "long"


def style_from_attributes(d: dict, version: int = 3) -> AvatarStyle:
    """The style an ``"attributes"`` object of a bundle ``version`` (2 or 3) describes; every key must be present
    and valid (``ValueError``)."""
    if not isinstance(d, dict):
        raise ValueError(f"attributes must be an object, got {type(d).__name__}")
    missing = [k for k in KEYS if k not in d]
    if missing:
        raise ValueError(f"attributes lack {', '.join(missing)}")
    base = AvatarStyle(
        skin=_colour_value("skin_colour", d["skin_colour"]),
        hair=_colour_value("hair_colour", d["hair_colour"]),
        eyes=_colour_value("eye_colour", d["eye_colour"]),
        lips=_colour_value("lip_colour", d["lip_colour"]),
        background=_colour_value("background_colour", d["background_colour"]),
        hair_style=_choice("hair_style", d["hair_style"], HAIR_STYLES),
        hair_length=_number("hair_reach", d["hair_reach"]),
    )
    if not isinstance(d["glasses"], bool):
        raise ValueError(f"glasses must be true or false; got {d['glasses']!r:.40}")
    given = {k: d[k] for k in KEYS if k not in ("hair_length",)}
    if version == 2 and d["hair_length"] == "long" and V2_LONG_REACH <= base.hair_length < LONG_REACH:
        given["hair_reach"] = LONG_REACH  # version 2 started long at 0.6: such hair stays long
    st = apply_overrides(base, given)
    if st.length_name != _choice("hair_length", d["hair_length"], HAIR_LENGTHS):
        raise ValueError(f"hair_length {d['hair_length']} does not match hair_reach {d['hair_reach']}")
    return st


def parse_overrides(spec: str | dict | Path | None) -> dict:
    """``key=value,key=value`` text, a JSON file path (``.json``) or a dict -> {attribute: value}.

    ``InputError`` names what is accepted when the text or file is malformed."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        d = spec
    elif str(spec).strip().lower().endswith(".json"):
        p = Path(spec)
        if not p.is_file():
            raise InputError(f"style file not found: {p}")
        if p.stat().st_size > 64 << 10:
            raise InputError(f"{p}: a style file is a small JSON object (at most 64 KiB)")
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise InputError(f"{p} is not a JSON object of avatar attributes ({type(e).__name__})") from None
        if not isinstance(d, dict):
            raise InputError(f'{p} must hold a JSON object of avatar attributes, like {{"hair": "bob"}}')
    else:
        d = {}
        for item in filter(None, (s.strip() for s in str(spec).split(","))):
            k, eq, v = item.partition("=")
            if not eq or not k.strip() or not v.strip():
                raise InputError(
                    f"--style takes key=value pairs separated by commas, like hair=bob,glasses=none; got {item!r:.40}"
                )
            d[k.strip()] = v.strip()
    try:
        return _normalise_keys(d)
    except ValueError as e:
        raise InputError(str(e)) from None


def override_style(style: AvatarStyle, spec: str | dict | Path | None) -> AvatarStyle:
    """``style`` with the overrides of ``spec`` (see ``parse_overrides``); ``InputError`` on anything invalid."""
    o = parse_overrides(spec)
    if not o:
        return style
    try:
        return apply_overrides(style, o)
    except ValueError as e:
        raise InputError(f"--style: {e}") from None
