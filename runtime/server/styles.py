"""Editing a kiosk avatar's look: its attributes, and restyled copies of it made from a visitor's overrides.

``GET /api/avatar/{id}/attributes`` answers ``attributes_doc``: the avatar's attributes
(``runtime.avatar_attributes.attributes_of``), the choices the page's editor offers, and whether the avatar can
be edited at all. ``POST /api/avatar/{id}/style`` takes a JSON object of overrides (``style_request`` checks the
body), ``restyle`` makes a new ``Avatar`` with them applied, and the server stores it under a new id next to
uploads: the avatar it was made from is never changed (the default avatar included).

Photo avatars are drawn from their attributes, so any of them can change. Avatars animated from their own
pixels (drawn characters, learned-stylizer comics: ``Avatar.base`` is set) keep their look; a restyle of one is
refused with ``NotEditable`` (HTTP 409: the request is well formed, the avatar is what it conflicts with).
"""

from __future__ import annotations

import json
from typing import Any

from ..avatar_attributes import COLOUR_NAMES, apply_overrides, attributes_of, parse_overrides
from ..avatar_style import FACIAL_HAIR, GLASSES_SHAPES, HAIR_LENGTHS, HAIR_STYLES
from ..errors import InputError
from .drawings import BadRequest

MAX_STYLE_BODY = 16 << 10  # a style request is a small JSON object of attribute -> value
CHOICES = {
    "hair_style": list(HAIR_STYLES),
    "hair_length": list(HAIR_LENGTHS),
    "facial_hair": list(FACIAL_HAIR),
    "glasses": ["none", *GLASSES_SHAPES],
    "colour_names": list(COLOUR_NAMES),
}
NOT_EDITABLE = (
    "this avatar is animated from its own drawing and keeps its look; only avatars made from a photo can be edited"
)


class NotEditable(InputError):
    """A restyle of an avatar that keeps its own pixels (a drawn character or a learned-stylizer comic)."""


def editable(avatar: Any) -> bool:
    """Whether ``avatar``'s look is drawn from its attributes (a photo avatar), so that they can be changed."""
    return getattr(avatar, "base", None) is None


def attributes_doc(avatar: Any) -> dict:
    """The answer to ``GET /api/avatar/{id}/attributes``: ``attributes``, ``choices`` and ``editable``."""
    return {"attributes": attributes_of(avatar.style), "choices": CHOICES, "editable": editable(avatar)}


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def style_request(body: bytes) -> dict:
    """A style request's body -> {attribute: value}, the keys not yet checked against the vocabulary.

    ``BadRequest`` unless the body is a JSON object (``NaN`` and ``Infinity`` are not JSON); ``InputError`` when a
    value is not a string, number, true/false or null (colours are sent as ``#rrggbb`` text)."""
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest('the body is not JSON; send an object like {"hair_style": "bob", "glasses": "none"}') from None
    if not isinstance(doc, dict):
        raise BadRequest('send a JSON object of avatar attributes, like {"hair_style": "bob", "glasses": "none"}')
    for k, v in doc.items():
        if v is not None and not isinstance(v, (str, bool, int, float)):
            raise InputError(f"{k:.40} takes a string, a number or true/false; got a {type(v).__name__}")
    return doc


def restyle(avatar: Any, overrides: dict) -> Any:
    """A new ``Avatar``: ``avatar`` with ``overrides`` applied to its attributes (``avatar`` is not changed).

    ``NotEditable`` for an avatar that keeps its own pixels; ``InputError`` naming what is accepted for an unknown
    attribute or a bad value."""
    from ..prepare import Avatar

    if not editable(avatar):
        raise NotEditable(NOT_EDITABLE)
    o = parse_overrides(overrides)  # InputError on an unknown attribute, naming the accepted ones
    try:
        style = apply_overrides(avatar.style, o)
    except (ValueError, TypeError) as e:
        raise InputError(str(e)) from None
    meta = {**avatar.meta, "source": "restyled", "overridden": sorted(set(avatar.meta.get("overridden", [])) | set(o))}
    return Avatar(style, avatar.neutral, meta, avatar.stylized, avatar.base, avatar.source_landmarks)


def style_doc(aid: str, avatar: Any) -> dict:
    """The answer to a restyle: the new avatar's id (``avatar_id``; ``avatar`` too, as uploads answer), its
    attributes, the style in words, and where its preview is."""
    return {
        "avatar_id": aid,
        "avatar": aid,
        "attributes": attributes_of(avatar.style),
        "describe": avatar.style.describe(),
        "preview": f"/api/avatar/{aid}/preview.png",
    }


__all__ = [
    "CHOICES",
    "MAX_STYLE_BODY",
    "NotEditable",
    "attributes_doc",
    "editable",
    "restyle",
    "style_doc",
    "style_request",
]
