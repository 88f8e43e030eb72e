"""Phonemes -> visemes -> smooth mouth-parameter trajectories (dominance-function co-articulation).

Mouth parameters (``MOUTH_PARAMS``), per 40 ms video frame:
  open   0..1   vertical inner-lip gap (jaw + lips)
  spread -1..1  lip-corner width: + spread (/iy/), - rounded/protruded (/uw/, /w/)
  labio  0..1   lower lip tucked to the upper teeth (/f/, /v/)

Blending follows Cohen & Massaro: every phone i has a target T_i and a dominance
D_i(t) = alpha_i * exp(-theta_i * |t - c_i|); the mouth at time t is sum(D_i T_i) / sum(D_i).
Bilabials and labiodentals get strong, narrow dominance (the lips *must* close / tuck), and their contact is
then held on the frames they cover (at least one, however short the phone): the anime reading of speech, where
every P, B and M shows a shut mouth. /h/ and velars get weak dominance (they borrow the neighbouring vowel's
shape).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOUTH_PARAMS = ("open", "spread", "labio")
FPS = 25

# phone -> (open, spread, labio, alpha, theta [1/s])
_V = 1.0, 12.0  # vowels
_TABLE: dict[str, tuple[float, float, float, float, float]] = {
    "pau": (0.0, 0.0, 0.0, 0.6, 8.0),
    "sil": (0.0, 0.0, 0.0, 0.6, 8.0),
    "h#": (0.0, 0.0, 0.0, 0.6, 8.0),
    "aa": (0.95, 0.05, 0, *_V),
    "ae": (0.8, 0.35, 0, *_V),
    "ah": (0.65, 0.05, 0, *_V),
    "ao": (0.75, -0.4, 0, *_V),
    "aw": (0.8, -0.2, 0, *_V),
    "ax": (0.45, 0.0, 0, 0.7, 14.0),
    "axr": (0.4, -0.15, 0, 0.7, 14.0),
    "ay": (0.85, 0.2, 0, *_V),
    "eh": (0.6, 0.35, 0, *_V),
    "er": (0.4, -0.3, 0, *_V),
    "ey": (0.5, 0.45, 0, *_V),
    "ih": (0.4, 0.4, 0, *_V),
    "iy": (0.3, 0.65, 0, *_V),
    "ow": (0.55, -0.6, 0, *_V),
    "oy": (0.6, -0.45, 0, *_V),
    "uh": (0.4, -0.45, 0, *_V),
    "uw": (0.3, -0.75, 0, *_V),
    "b": (0.0, 0.0, 0, 4.0, 30.0),
    "p": (0.0, 0.0, 0, 4.0, 30.0),
    "m": (0.0, 0.0, 0, 4.0, 30.0),
    "f": (0.08, 0.1, 1.0, 3.0, 28.0),
    "v": (0.08, 0.1, 1.0, 3.0, 28.0),
    "th": (0.22, 0.1, 0, 1.0, 20.0),
    "dh": (0.2, 0.1, 0, 0.8, 20.0),
    "t": (0.18, 0.25, 0, 0.6, 20.0),
    "d": (0.18, 0.25, 0, 0.6, 20.0),
    "n": (0.15, 0.2, 0, 0.6, 20.0),
    "l": (0.25, 0.15, 0, 0.5, 18.0),
    "s": (0.1, 0.4, 0, 1.0, 22.0),
    "z": (0.1, 0.4, 0, 1.0, 22.0),
    "sh": (0.2, -0.4, 0, 1.2, 22.0),
    "zh": (0.2, -0.4, 0, 1.2, 22.0),
    "ch": (0.2, -0.35, 0, 1.2, 22.0),
    "jh": (0.2, -0.35, 0, 1.2, 22.0),
    "k": (0.3, 0.1, 0, 0.3, 16.0),
    "g": (0.3, 0.1, 0, 0.3, 16.0),
    "ng": (0.25, 0.1, 0, 0.3, 16.0),
    "hh": (0.45, 0.0, 0, 0.15, 14.0),
    "r": (0.25, -0.4, 0, 0.8, 18.0),
    "w": (0.12, -0.85, 0, 2.0, 22.0),
    "y": (0.22, 0.45, 0, 0.8, 18.0),
}


# Festival phone sets -> the labels above: ``radio`` (US voices) is the CMU set plus a few extras,
# ``mrpa`` (British voices) its own names, several of which clash with CMU ones (mrpa ``uh`` is
# the vowel of "cut", CMU ``ah``).
_PHONESET_ALIASES: dict[str, dict[str, str]] = {
    "radio": {
        "dx": "d",
        "el": "l",
        "em": "m",
        "en": "n",
        "nx": "n",
        "hv": "hh",
        "brth": "pau",
        "h#": "pau",
        "sil": "pau",
    },
    "mrpa": {
        "#": "pau",
        "uh": "ah",
        "e": "eh",
        "a": "ae",
        "o": "aa",
        "i": "ih",
        "u": "uh",
        "ii": "iy",
        "uu": "uw",
        "oo": "ao",
        "aa": "aa",
        "@": "ax",
        "@@": "er",
        "ai": "ay",
        "ei": "ey",
        "oi": "oy",
        "au": "aw",
        "ou": "ow",
        "e@": "eh",
        "i@": "ih",
        "u@": "uh",
        "h": "hh",
    },
}


def normalize_phone(label: str, phoneset: str = "radio") -> str:
    """A phone label of a TTS phone set (festival's ``radio`` or ``mrpa``) as a label of this table
    (unknown labels are returned lower-cased; :func:`phone_target` gives them a neutral shape)."""
    key = label.lower()
    return _PHONESET_ALIASES.get(phoneset, {}).get(key, key)


@dataclass(frozen=True)
class Phone:
    """One timed phone of an utterance (label, start and end in seconds)."""

    label: str
    start: float  # seconds
    end: float


def phone_target(label: str) -> tuple[float, float, float, float, float]:
    """(open, spread, labio, alpha, theta) for a phone label; stress digits are ignored."""
    key = label.lower().rstrip("012")
    return _TABLE.get(key, (0.3, 0.0, 0.0, 0.3, 16.0))


def mouth_trajectory(phones: list[Phone], n_frames: int, fps: int = FPS, hold: bool = True) -> np.ndarray:
    """Per-video-frame mouth parameters [n_frames, 3] from timed phones (frame k sampled at its centre); ``hold``:
    every lip contact reached (``_hold_contacts``), else the co-articulated blend alone."""
    out = np.zeros((n_frames, len(MOUTH_PARAMS)), np.float32)
    if not phones or n_frames == 0:
        return out
    t = (np.arange(n_frames) + 0.5) / fps
    targets = np.array([phone_target(p.label)[:3] for p in phones], np.float64)
    params = np.array([phone_target(p.label)[3:] for p in phones], np.float64)
    centres = np.array([(p.start + p.end) / 2 for p in phones])
    half = np.array([(p.end - p.start) / 2 for p in phones])
    # dominance is flat inside the phone and decays outside it
    dist = np.maximum(np.abs(t[:, None] - centres[None, :]) - half[None, :] * 0.6, 0.0)
    dom = params[None, :, 0] * np.exp(-params[None, :, 1] * dist) + 1e-9
    out[:] = (dom @ targets) / dom.sum(axis=1, keepdims=True)
    return _hold_contacts(out, phones, fps) if hold else out


CLOSURES = frozenset({"p", "b", "m"})  # the lips meet
TUCKS = frozenset({"f", "v"})  # the lower lip touches the upper teeth
PAUSES = frozenset({"sil", "pau", "h#", "#", "brth", "sp"})  # silence in the aligner's and the TTS engines' sets


def frame_phones(phones: list[Phone], n_frames: int, fps: int = FPS) -> np.ndarray:
    """[n_frames] object: the phone at each frame's centre, stress digits dropped ("sil" in pauses and outside
    every phone)."""
    t = (np.arange(n_frames) + 0.5) / fps
    lab = np.full(n_frames, "sil", dtype=object)
    for p in phones:
        key = p.label.lower().rstrip("012")
        lab[(t >= p.start) & (t < p.end)] = "sil" if key in PAUSES else key
    return lab


def closed_frames(phones: list[Phone], n_frames: int, fps: int = FPS) -> np.ndarray:
    """[n_frames] bool: the frames a viewer sees the lips shut -- a P, B or M (``em``, a syllabic M, too) or a
    pause at the frame's centre, and the frame of every P/B/M shorter than a frame (``lip_contacts``, as the
    targets hold them). What the motion decoder's closure head learns to tell."""
    out = np.isin(frame_phones(phones, n_frames, fps), [*CLOSURES, "em", "sil"])
    for key, idx in lip_contacts(phones, n_frames, fps):
        if key in CLOSURES:
            out[idx] = True
    return out


def lip_contacts(phones: list[Phone], n_frames: int, fps: int = FPS) -> list[tuple[str, np.ndarray]]:
    """``(phone, frames)`` for every P/B/M closure and F/V tuck: the frames whose centre lies in the phone, or the
    frame nearest its middle when it is shorter than a frame (a contact is never skipped)."""
    t = (np.arange(n_frames) + 0.5) / fps
    out = []
    for p in phones:
        key = p.label.lower().rstrip("012")
        if key not in CLOSURES and key not in TUCKS:
            continue
        idx = np.flatnonzero((t >= p.start) & (t < p.end))
        if idx.size == 0:
            k = int(np.floor((p.start + p.end) / 2 * fps))
            if not 0 <= k < n_frames:
                continue
            idx = np.array([k])
        out.append((key, idx))
    return out


def _hold_contacts(out: np.ndarray, phones: list[Phone], fps: int) -> np.ndarray:
    """Lip contacts are reached, not blended away: on a P/B/M's frames (``lip_contacts``) the lips are shut (open
    and labio 0), on an F/V's the lower lip is tucked (labio 1, open at most the phone's own). Blending alone
    leaves a one-frame closure between two vowels about 10 % open, which reads as a mumble, not a P."""
    for key, idx in lip_contacts(phones, out.shape[0], fps):
        if key in CLOSURES:
            out[idx, 0], out[idx, 2] = 0.0, 0.0
        else:
            out[idx, 0] = np.minimum(out[idx, 0], _TABLE[key][0])
            out[idx, 2] = 1.0
    return out


def mouth_opening_envelope(phones: list[Phone], n_frames: int, fps: int = FPS) -> np.ndarray:
    """Step function of each phone's target opening per frame (no co-articulation): the reference
    'phoneme envelope' that evaluation correlates predicted mouth opening against."""
    out = np.zeros(n_frames, np.float32)
    t = (np.arange(n_frames) + 0.5) / fps
    for p in phones:
        out[(t >= p.start) & (t < p.end)] = phone_target(p.label)[0]
    return out
