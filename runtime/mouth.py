"""Mouth parameters <-> 68-point landmark offsets (a fixed linear basis, shared by training and runtime).

Offsets are in canvas units (0..1) of the canonical avatar frame, where the eye centres are
0.28 apart. ``mouth_basis() @ params`` moves lips and jaw; ``close_mouth`` gives a neutral face
whose inner lips meet, so that every avatar starts from a closed mouth.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

N_PARAMS = 3  # open, spread, labio (training.visemes.MOUTH_PARAMS)
MAX_GAP = 0.10  # inner-lip gap at open = 1

# How far the drawn mouth opens for the model's opening: anime exaggerates speech. The model's opening is
# trained on the viseme targets (training.visemes) and, like any regression, comes out about a third of them
# on open vowels; the drawn one is MOUTH_GAIN times it above a soft dead zone near closed (so closures stay
# closed), at most OPEN_LIMIT. 1.0 draws the model's opening as it is.
MOUTH_GAIN = 2.5
MOUTH_GAIN_RANGE = (0.0, 4.0)
DEAD_ZONE = 0.12  # openings well below this stay (nearly) closed whatever the gain (chosen on a TTS split;
# flat audio must stay drawn under 0.15: the cold start of a hum is drawn at 0.04 here)
# Decoders with a closure head (``closed``: the probability that the lips are shut, P/B/M or a pause) draw the
# mouth with it above gain 1 (``shape_closures``): shut where the head is sure, parted at least PARTED on every
# other spoken frame (an anime mouth shows the teeth on S, T, K..., as Rhubarb Lip Sync's "B" shape). Chosen on
# the validation recordings (the sonnets; the same on the whole val split of 8 speakers): the most closed
# precision at a recall of at least 0.65.
SHUT_FROM, SHUT_TO = 0.6, 0.8  # closure probability: from SHUT_FROM the drawn lips close, fully at SHUT_TO
PARTED = 0.22  # the least opening of a spoken frame the head calls open: drawn, PARTED_READ on the 0-1 scale of
# the evaluation (an inner-lip gap of 4.4 % of the outer-eye-corner span), a little above the S and Z of the viseme
# table (0.10), where a mouth starts to read as closed
PARTED_READ = 0.125  # PARTED on the evaluation's 0-1 scale (1 = an inner-lip gap of 0.35 x the eye span)
CLOSED_READ = 0.10  # a drawn opening under this on that scale reads as a closed mouth
OPEN_LIMIT = 1.6  # a wide-open anime mouth: the inner-lip gap 0.37 x the outer-eye-corner distance
ROUND_LIMIT = 1.25  # the most rounded drawn mouth (spread -1.25: the corners 0.035 in on each side, lips pouted)

UPPER_INNER = (61, 62, 63)
LOWER_INNER = (65, 66, 67)
UPPER_OUTER = (49, 50, 51, 52, 53)
LOWER_OUTER = (55, 56, 57, 58, 59)
CORNERS_L, CORNERS_R = (48, 60), (54, 64)


@lru_cache(maxsize=1)
def mouth_basis() -> np.ndarray:
    """[3, 68, 2] float32: landmark offset per unit of (open, spread, labio)."""
    b = np.zeros((N_PARAMS, 68, 2), np.float32)
    up, down = 0.3 * MAX_GAP, 0.7 * MAX_GAP
    # open: upper lip up a little, lower lip + jaw down, corners drop slightly and come in
    for i, w in zip(UPPER_INNER, (0.8, 1.0, 0.8)):
        b[0, i, 1] = -up * w
    for i, w in zip(UPPER_OUTER, (0.5, 0.85, 1.0, 0.85, 0.5)):
        b[0, i, 1] = -up * w
    for i, w in zip(LOWER_INNER, (0.8, 1.0, 0.8)):
        b[0, i, 1] = down * w
    for i, w in zip(LOWER_OUTER, (0.5, 0.85, 1.0, 0.85, 0.5)):
        b[0, i, 1] = down * w
    for i in CORNERS_L + CORNERS_R:
        b[0, i, 1] = 0.2 * down
    for i in CORNERS_L:
        b[0, i, 0] = 0.01
    for i in CORNERS_R:
        b[0, i, 0] = -0.01
    for i, w in zip(range(4, 13), (0.15, 0.35, 0.6, 0.85, 1.0, 0.85, 0.6, 0.35, 0.15)):
        b[0, i, 1] = 0.75 * down * w  # jaw follows the lower lip
    # spread (+) widens the corners; rounded (-) narrows them and pouts the outer lips
    for i in CORNERS_L:
        b[1, i, 0] = -0.028
    for i in CORNERS_R:
        b[1, i, 0] = 0.028
    for i, s in ((49, -1), (59, -1), (53, 1), (55, 1)):
        b[1, i, 0] = 0.014 * s
    for i, w in zip((50, 51, 52), (0.6, 1.0, 0.6)):
        b[1, i, 1] = 0.008 * w  # spread flattens the lips (rounded: negative -> taller)
    for i, w in zip((56, 57, 58), (0.6, 1.0, 0.6)):
        b[1, i, 1] = -0.008 * w
    # labio (F/V): the upper lip lifts off the upper teeth and the lower lip rolls up against their edge; the
    # inner lips part by the teeth's height (an anime F/V: the bite shows in a small opening, not a closure)
    for i in UPPER_INNER:
        b[2, i, 1] = -0.02
    for i in UPPER_OUTER:
        b[2, i, 1] = -0.007
    for i in LOWER_INNER:
        b[2, i, 1] = -0.003
    for i in LOWER_OUTER:
        b[2, i, 1] = -0.01
    return b


@lru_cache(maxsize=1)
def _mouth_pinv() -> np.ndarray:
    return np.linalg.pinv(mouth_basis()[:, 48:68].reshape(N_PARAMS, -1).T).astype(np.float32)


def mouth_params(landmarks: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """The mouth parameters [3] that best explain ``landmarks - neutral`` on the lips (least squares over the
    basis): how a renderer that gets only landmarks knows the shape it draws (e.g. an F/V bite)."""
    d = (np.asarray(landmarks, np.float32).reshape(68, 2) - np.asarray(neutral, np.float32).reshape(68, 2))[48:68]
    return _mouth_pinv() @ d.reshape(-1)


def apply_mouth(neutral: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Neutral landmarks [68, 2] + params [..., 3] -> landmarks [..., 68, 2]."""
    return neutral + np.tensordot(np.asarray(params, np.float32), mouth_basis(), axes=([-1], [0]))


def drawn_opening(opening: np.ndarray, gain: float = MOUTH_GAIN) -> np.ndarray:
    """The model's mouth opening [...] -> the opening drawn (see ``MOUTH_GAIN``).

    Above 1, ``gain * (x - d * (1 - exp(-x / d)))`` with ``d = DEAD_ZONE * (1 - 1 / gain)``: flat at 0, slope
    ``gain`` past the dead zone, the identity at gain 1; below 1 a plain scaling. Closed or negative openings
    are left as they are; the result is at most ``OPEN_LIMIT``."""
    x = np.asarray(opening, np.float32)
    if gain <= 1.0:
        return (x * np.float32(gain)).astype(np.float32)
    d = DEAD_ZONE * (1.0 - 1.0 / gain)
    pos = np.maximum(x, 0.0)
    y = gain * (pos - d * (1.0 - np.exp(-pos / d)))
    return np.where(x > 0, np.minimum(y, OPEN_LIMIT), x).astype(np.float32)


def drawn_mouth(mouth: np.ndarray, gain: float = MOUTH_GAIN) -> np.ndarray:
    """The model's mouth parameters [..., 3] -> the ones drawn: the opening through ``drawn_opening``; rounding
    (negative spread), which regresses toward the middle like the opening, shown ``gain`` times over (at most
    ``ROUND_LIMIT``); a spread smile and the F/V bite (labio) as the model says them -- the bite is drawn from
    0.35 on (``FacePainter.BITE``), and amplifying it would draw bites on every T and D. Gain <= 1 leaves the
    rounding as it is too."""
    m = np.asarray(mouth, np.float32)
    out = m.copy()
    out[..., 0] = drawn_opening(m[..., 0], gain)
    if gain > 1.0:
        out[..., 1] = np.where(m[..., 1] < 0, np.maximum(m[..., 1] * np.float32(gain), -ROUND_LIMIT), m[..., 1])
    return out


def shape_closures(mouth: np.ndarray, closed: np.ndarray, presence: np.ndarray, gain: float = MOUTH_GAIN) -> np.ndarray:
    """Drawn mouth parameters [n, 3] (``drawn_mouth``) -> the same shaped by the closure head's probabilities
    ``closed`` [n]: the opening is at least ``PARTED`` x ``presence`` (the silence gate's gain, 0 in a pause) x
    ``gain`` / ``MOUTH_GAIN`` (at most 1), then closes (opening and F/V bite) along a ramp from ``SHUT_FROM`` to
    ``SHUT_TO``. Gain 1 or less leaves the mouth as it is (1 draws the model's mouth as it says it)."""
    m = np.asarray(mouth, np.float32).copy()
    if gain <= 1.0:
        return m
    p = np.nan_to_num(np.asarray(closed, np.float32), nan=0.0)
    shut = np.clip((p - SHUT_FROM) / (SHUT_TO - SHUT_FROM), 0.0, 1.0)
    floor = np.float32(PARTED * min(1.0, gain / MOUTH_GAIN)) * np.asarray(presence, np.float32)
    m[..., 0] = np.maximum(m[..., 0], floor) * (1.0 - shut)
    m[..., 2] = m[..., 2] * (1.0 - shut)
    return m


def close_mouth(landmarks: np.ndarray) -> np.ndarray:
    """Close parted inner lips (e.g. a smiling photo) -> a neutral, mouth-closed copy.

    The inner lips meet at their midline; the outer lower lip and the chin follow up.
    """
    lm = np.asarray(landmarks, np.float32).reshape(68, 2).copy()
    up, lo = list(UPPER_INNER), list(LOWER_INNER[::-1])  # pairs 61-67, 62-66, 63-65
    gap = float(np.mean(lm[lo, 1] - lm[up, 1]))
    if gap <= 0:
        return lm
    mid = 0.5 * (lm[up] + lm[lo])
    lm[up], lm[lo] = mid, mid
    lm[list(LOWER_OUTER), 1] -= 0.5 * gap
    for i, w in ((6, 0.15), (7, 0.35), (8, 0.5), (9, 0.35), (10, 0.15)):
        lm[i, 1] -= w * gap
    return lm


def inner_lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """Mean vertical inner-lip gap [...] (canvas units) — the mouth-opening measure used in evaluation."""
    lm = np.asarray(landmarks)
    return np.mean(lm[..., list(LOWER_INNER[::-1]), 1] - lm[..., list(UPPER_INNER), 1], axis=-1)


class SilenceGate:
    """Closes the mouth in pauses, like a noise gate on the model's output: the mouth parameters of
    frame k are scaled by a gain that falls to 0 when the loudest frame in ``[k - hold, k + lookahead]``
    is below ``abs_db`` (ramping up over ``soft_db`` above it). Causal within the look-ahead the model
    already has, frame-exact, so streamed output still equals offline output.

    The threshold is absolute on purpose: the model itself learned to keep the mouth shut over hum,
    hiss and tones (its corpus has them), while after speech it relaxes slowly into digital silence.
    A relative gate (noise floor + margin) was measured: on noisy training-distribution speech it cut
    mouth-opening correlation from 0.80 to 0.50; this one changes it by < 0.001 there, and on the
    held-out voices raises closed-in-silence from 0.41 to 0.93 (docs: README "Lip-sync quality").
    """

    def __init__(self, lookahead: int = 2, abs_db: float = -50.0, soft_db: float = 6.0, hold: int = 1):
        self.lookahead, self.abs_db, self.soft_db, self.hold = lookahead, abs_db, soft_db, hold
        self.reset()

    def reset(self) -> None:
        self._past: list[float] = [-60.0] * self.hold  # energies (dB) of the frames just gated

    def gain(self, energy_db: float, ahead_db: Sequence[float]) -> float:
        """Gain of the next frame from its energy and the energies after it (dB; only ``lookahead`` of
        them are used; frames beyond the end of the audio count as digital silence, -60 dB)."""
        ahead = list(ahead_db[: self.lookahead])
        presence = max([float(energy_db), *ahead, *self._past])
        if self.hold:
            self._past = [*self._past[1:], float(energy_db)]
        return min(max((presence - self.abs_db) / self.soft_db, 0.0), 1.0)
