"""Face geometry of the procedural avatar: the canonical 68-point frame, anime-fied proportions, emotion offsets.

Landmarks follow the iBUG 300-W 68-point order. The canonical frame puts the eye centres level, 0.28 of the
canvas apart, their midpoint at (0.5, 0.42); every avatar (photo or drawing) lives in it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import InvalidLandmarks
from .mouth import close_mouth as _close_mouth

# Canonical-space layout (fractions of the canvas size).
_IOD = 0.28
_EYE_Y = 0.42
# Anime-fication factors.
_EYE_SX, _EYE_SY = 1.45, 1.7
_NOSE_SHRINK = 0.6
_MOUTH_SX = 0.85
_LOWER_FACE_SY = 0.88

_R_EYE = slice(36, 42)
_L_EYE = slice(42, 48)

# Left/right mirror permutation of the 68 points (used to symmetrise the mean shape).
_MIRROR = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46]
    + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)

# Mean frontal 68-point shape (OpenFace/dlib min-max normalised template).
_MEAN_RAW = np.array(
    [
        (0.0792, 0.3392),
        (0.0829, 0.4570),
        (0.0968, 0.5756),
        (0.1221, 0.6919),
        (0.1687, 0.8003),
        (0.2398, 0.8957),
        (0.3257, 0.9771),
        (0.4223, 1.0433),
        (0.5318, 1.0608),
        (0.6413, 1.0398),
        (0.7381, 0.9723),
        (0.8244, 0.8896),
        (0.8948, 0.7925),
        (0.9394, 0.6815),
        (0.9611, 0.5622),
        (0.9706, 0.4418),
        (0.9712, 0.3221),
        (0.1638, 0.2492),
        (0.2178, 0.2043),
        (0.2913, 0.1924),
        (0.3675, 0.2036),
        (0.4393, 0.2331),
        (0.5864, 0.2281),
        (0.6602, 0.1959),
        (0.7375, 0.1824),
        (0.8132, 0.1928),
        (0.8708, 0.2353),
        (0.5153, 0.3186),
        (0.5162, 0.3962),
        (0.5171, 0.4738),
        (0.5182, 0.5532),
        (0.4337, 0.6041),
        (0.4755, 0.6208),
        (0.5207, 0.6343),
        (0.5659, 0.6188),
        (0.6071, 0.6016),
        (0.2524, 0.3311),
        (0.2987, 0.3026),
        (0.3557, 0.3030),
        (0.4037, 0.3387),
        (0.3525, 0.3500),
        (0.2968, 0.3505),
        (0.6313, 0.3341),
        (0.6791, 0.2965),
        (0.7360, 0.2947),
        (0.7829, 0.3213),
        (0.7403, 0.3418),
        (0.6850, 0.3437),
        (0.3532, 0.7462),
        (0.4146, 0.7191),
        (0.4777, 0.7068),
        (0.5227, 0.7171),
        (0.5698, 0.7054),
        (0.6352, 0.7157),
        (0.6995, 0.7394),
        (0.6394, 0.8052),
        (0.5764, 0.8354),
        (0.5254, 0.8417),
        (0.4764, 0.8375),
        (0.4134, 0.8100),
        (0.3801, 0.7500),
        (0.4780, 0.7451),
        (0.5234, 0.7489),
        (0.5711, 0.7433),
        (0.6724, 0.7442),
        (0.5725, 0.7766),
        (0.5240, 0.7834),
        (0.4776, 0.7785),
    ],
    dtype=np.float32,
)


def face_scale(neutral: np.ndarray) -> float:
    """How large a face is against the canonical frame (eye centres ``_IOD`` apart): 1.0 for every photo avatar,
    less for a drawing framed smaller to fit its hair (``runtime.drawing.frame_drawing``). The motion models'
    landmark offsets are for the canonical face and are scaled by it. Landmarks not framed like an avatar (a zero
    array as a neutral, say) are left unscaled: 1.0 outside 0.3..1."""
    L = np.asarray(neutral, np.float32).reshape(68, 2)
    f = float(np.linalg.norm(L[_L_EYE].mean(0) - L[_R_EYE].mean(0))) / _IOD
    return f if 0.3 <= f < 0.999 else 1.0


def similarity_to_canonical(L: np.ndarray, size: int) -> np.ndarray:
    """2x3 similarity that puts the eyes level, IOD=0.28*size, eye midpoint at (0.5, 0.42)*size."""
    re, le = L[_R_EYE].mean(0), L[_L_EYE].mean(0)
    d = le - re
    iod = max(float(np.hypot(*d)), 1e-6)
    ang = math.atan2(float(d[1]), float(d[0]))
    s = _IOD * size / iod
    c, si = s * math.cos(-ang), s * math.sin(-ang)
    A = np.array([[c, -si], [si, c]], np.float32)
    mid = 0.5 * (re + le)
    t = np.array([0.5 * size, _EYE_Y * size], np.float32) - A @ mid
    return np.concatenate([A, t[:, None]], 1)


def _animeify(P: np.ndarray, size: int) -> np.ndarray:
    """Anime proportions on canonical pixel coords: big eyes, small nose/mouth, short pointy chin."""
    P = P.copy()
    eye_y = float(P[36:48, 1].mean())
    # shorter lower face (not the eyes)
    low = np.r_[0:17, 27:36, 48:68]
    below = P[low, 1] > eye_y
    P[low[below], 1] = eye_y + (P[low[below], 1] - eye_y) * _LOWER_FACE_SY
    # eyes: bigger, taller more than wider
    for sl in (_R_EYE, _L_EYE):
        c = P[sl].mean(0)
        P[sl] = c + (P[sl] - c) * np.array([_EYE_SX, _EYE_SY], np.float32)
    # brows: follow the eye enlargement a little (lift)
    P[17:27, 1] -= 0.012 * size
    # nose shrinks toward its tip
    tip = P[30].copy()
    P[27:36] = tip + (P[27:36] - tip) * _NOSE_SHRINK
    # mouth slightly narrower
    mc = P[48:68].mean(0)
    P[48:68, 0] = mc[0] + (P[48:68, 0] - mc[0]) * _MOUTH_SX
    # pointier chin: pull lower jaw toward the chin's x, push chin tip down a hair
    cx = float(P[8, 0])
    for i in range(2, 15):
        k = 0.15 * math.sin(math.pi * (1.0 - abs(i - 8) / 6.0))
        P[i, 0] = cx + (P[i, 0] - cx) * (1.0 - k)
    P[8, 1] += 0.008 * size
    return P


def canonical_landmarks(landmarks_px: np.ndarray, size: int = 256, close_mouth: bool = True) -> np.ndarray:
    """Align photo landmarks into a ``size`` canvas and anime-fy them; returns [68,2] in 0..1.

    With ``close_mouth`` (default) parted lips in the photo are closed so the result
    is a usable neutral (speech animation then opens the mouth from there).
    """
    L = np.asarray(landmarks_px, np.float32).reshape(68, 2)
    if close_mouth:
        L = _close_mouth(L)
    M = similarity_to_canonical(L, size)
    P = L @ M[:, :2].T + M[:, 2]
    P = _animeify(P, size)
    return np.clip(P / float(size), 0.0, 1.0).astype(np.float32)


def symmetric(P: np.ndarray) -> np.ndarray:
    """Canonical landmarks ([68, 2] in 0..1, eyes centred on x = 0.5) averaged with their mirror image: the
    face's proportions (widths, lengths, eye size and spacing) kept, a turn of the head or a lopsided
    expression taken out, so a photo taken at an angle gives an avatar facing the camera."""
    P = np.asarray(P, np.float32).reshape(68, 2)
    mir = P[_MIRROR].copy()
    mir[:, 0] = 1.0 - mir[:, 0]
    return (0.5 * (P + mir)).astype(np.float32)


def mean_face_landmarks() -> np.ndarray:
    """Symmetric neutral mean face, already canonical + anime-fied ([68,2] in 0..1).

    It can be fed straight to :class:`AvatarRenderer` (do not pass it through
    :func:`canonical_landmarks` again).
    """
    m = _MEAN_RAW.copy()
    mir = m[_MIRROR].copy()
    mir[:, 0] = 1.0 - mir[:, 0]
    m = 0.5 * (m + mir)
    # closed neutral mouth
    for a, b in ((61, 67), (62, 66), (63, 65)):
        mid = 0.5 * (m[a] + m[b])
        m[a] = m[b] = mid
    return canonical_landmarks(m * 200.0, 256)


# --------------------------------------------------------------------------- emotion
def apply_emotion(
    landmarks: np.ndarray, emotion: Sequence[float] | np.ndarray | None, scale: float = 1.0
) -> np.ndarray:
    """Expression offsets of the landmarks for an emotion vector (:data:`EMOTIONS` order, 0..1): brows (inner
    and outer ends), mouth corners, mouth width and the outer lips. ``scale``: canvas size of ``landmarks``'
    units (1 for 0..1 canvas units). Shared by every renderer, so they show the same expression.

    Each emotion moves its brows and its mouth by 3-6 % of the face width (about 0.6 canvas units), in its own
    way: happy lifts the corners and widens the mouth; sad raises the inner brows and pulls the corners down
    into a pout; angry draws the inner brows down and presses the mouth narrow; fearful lifts the whole brow
    and stretches the mouth sideways; disgusted lowers the brows and raises the upper lip. The inner lips are
    not moved apart, so closures stay closed under every emotion."""
    if emotion is None:
        return landmarks
    ang, dis, fea, hap, _neu, sad = (float(v) for v in np.clip(np.asarray(emotion, np.float32).reshape(6), 0, 1))
    if ang + dis + fea + hap + sad < 1e-3:
        return landmarks
    L = np.array(landmarks, np.float32, copy=True)
    # brows: + = up
    inner = scale * (0.032 * sad + 0.022 * fea - 0.030 * ang - 0.022 * dis + 0.016 * hap)
    outer = scale * (-0.012 * sad + 0.024 * fea + 0.008 * ang - 0.010 * dis + 0.020 * hap)
    for (i_in, i_out), ramp in (((21, 17), (1.0, 0.75, 0.45, 0.2, 0.0)), ((22, 26), (1.0, 0.75, 0.45, 0.2, 0.0))):
        step = 1 if i_out > i_in else -1
        for k, w in enumerate(ramp):
            L[i_in + step * k, 1] -= inner * w + outer * (1.0 - w)
    # brows come together when angry or disgusted
    pinch = scale * (0.012 * ang + 0.008 * dis)
    for idx, w in ((21, 1.0), (20, 0.6), (19, 0.3)):
        L[idx, 0] += pinch * w
    for idx, w in ((22, 1.0), (23, 0.6), (24, 0.3)):
        L[idx, 0] -= pinch * w
    # mouth corners: + = down
    dy = scale * (-0.026 * hap + 0.036 * sad + 0.012 * ang + 0.014 * dis + 0.008 * fea)
    sneer = scale * 0.014 * dis  # disgust is one-sided: one corner down, the other drawn up
    for idx, side in ((48, 1.0), (60, 1.0), (54, -1.0), (64, -1.0)):
        L[idx, 1] += dy + side * sneer
    for idx in (49, 59, 53, 55, 61, 67, 63, 65):
        L[idx, 1] += 0.45 * dy
    mc = float(L[48:68, 0].mean())
    L[48:68, 0] = mc + (L[48:68, 0] - mc) * (1.0 + 0.14 * hap - 0.16 * ang - 0.10 * sad + 0.20 * fea - 0.04 * dis)
    # the outer lips: a sad pout pushes the lower lip up, disgust lifts the upper lip (the inner lips stay)
    for idx, w in ((56, 0.6), (57, 1.0), (58, 0.6)):
        L[idx, 1] -= scale * 0.014 * sad * w
    for idx, w in ((50, 0.8), (51, 1.0), (52, 0.8)):
        L[idx, 1] -= scale * 0.020 * dis * w
    return L


def eye_open_factor(emotion: Sequence[float] | np.ndarray | None) -> float:
    """How open the eyes are for an emotion (1 = neutral): wide when afraid; narrowed when happy (a smile's
    squint), sad (heavy lids), angry or disgusted."""
    if emotion is None:
        return 1.0
    ang, dis, fea, hap, _neu, sad = (float(v) for v in np.clip(np.asarray(emotion, np.float32).reshape(6), 0, 1))
    return 1.0 + 0.30 * fea - 0.30 * sad - 0.32 * hap - 0.22 * ang - 0.26 * dis


def check_neutral(neutral: object) -> np.ndarray:
    """An avatar's neutral landmarks as float32 [68, 2] in the canvas (0..1), or ``InvalidLandmarks``."""
    try:
        a = np.asarray(neutral, np.float32)
    except (TypeError, ValueError):
        a = np.zeros(0, np.float32)
    if a.shape != (68, 2) or not np.isfinite(a).all() or np.abs(a).max() > 4.0:
        raise InvalidLandmarks(
            f"neutral landmarks must be 68 finite [x, y] points in canvas units (0..1), got shape {a.shape}"
        )
    return a
