"""Reading a person from a photo: the numbers and shapes an avatar keeps, never the pixels.

``measure_traits`` works in a normalised frame (eyes level, ``U`` pixels apart) built from the 68 landmarks:

- **skin, eyes, lips**: robust medians of cheek patches, the darkest quarter of the eyes, the lips.
- **hair**: the densest colour cluster above the brows and beside the temples that is neither skin nor
  background; then a segmentation: GrabCut seeded with the face (person), the picture's top and side borders
  (background) and the head and shoulders (probably person), intersected with "close to the hair colour and not
  skin". Light hair whose colour is close to the skin's is told from it by texture (strands against smooth
  skin); a smooth highlight on a bald scalp is not taken for hair. From that mask: how far the hair reaches
  down beside the face (``hair_length``), how much of the crown it covers (bald, receding), how far it comes
  down the forehead (``fringe``) and on which side (``part``), how far it stands out from the skull
  (``volume``) and how rough its outline and texture are (curl).
- **facial hair** and **glasses** (``runtime.photo_features``): lightness and chroma of the moustache, chin
  and jaw zones against the upper cheeks.
- **glasses**: a frame's bridge across the nose with its lower rims under both eyes (horizontal edges at rim
  height, not at the lid) or, for thin frames, its arms to the face's sides; frame colour and shape from the
  rims.
- **clothes**: the dominant colour below the chin that is neither skin, hair nor background.
- **face shape**: from the jaw line's widths and the face's height; **brows**: how thick their dark band is.

``style_from_photo`` turns the traits into an :class:`AvatarStyle` (cel colours, a hairstyle name).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .avatar_geometry import _L_EYE, _R_EYE
from .avatar_style import LONG_REACH, MEDIUM_REACH, AvatarStyle, animeify_style, length_class
from .photo_features import LUMA, U, _poly_mask, brow_weight, face_shape, facial_hair, glasses

logger = logging.getLogger(__name__)

CW, CH = int(7 * U), int(9.2 * U)  # the normalised frame's size (U: pixels between the eye centres)
EYE = np.array([3.5 * U, 3.6 * U], np.float32)  # where the eyes' midpoint goes
LIGHT_HAIR_TEXTURE = 1.25  # the forehead-top zone's texture (cheeks = 1) from which light hair is read by texture
BELOW_CHIN = 0.6  # a reach well below the chin (0.5 on the reach scale)


@dataclass
class PhotoTraits:
    """What ``measure_traits`` read from a photo (RGB colours as measured, shapes in eye distances)."""

    skin: np.ndarray
    hair: np.ndarray
    eyes: np.ndarray
    lips: np.ndarray
    background: np.ndarray
    hair_length: float  # how far the hair reaches: 0 none .. 1 to the chest
    hair_style: str
    fringe: float
    part: float
    volume: float
    curl: float
    crown: float  # share of the crown covered by hair
    glasses: bool
    glasses_shape: str
    glasses_colour: np.ndarray | None
    facial_hair: str
    facial_hair_colour: np.ndarray | None
    clothes: np.ndarray | None
    face_shape: str
    brow: float
    evidence: dict = field(default_factory=dict)


def _rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    h, w = img.shape[:2]
    xa, xb = int(np.clip(min(x0, x1), 0, w)), int(np.clip(max(x0, x1), 0, w))
    ya, yb = int(np.clip(min(y0, y1), 0, h)), int(np.clip(max(y0, y1), 0, h))
    return img[ya:yb, xa:xb].reshape(-1, img.shape[2] if img.ndim == 3 else 1)


def _robust_median(px: np.ndarray) -> np.ndarray:
    """Median colour after dropping outliers (> 2.5 MAD in any channel)."""
    px = px.reshape(-1, 3).astype(np.float32)
    if len(px) == 0:
        return np.array([128, 128, 128], np.float32)
    med = np.median(px, 0)
    mad = np.median(np.abs(px - med), 0) + 4.0
    keep = np.all(np.abs(px - med) <= 2.5 * mad, 1)
    if keep.sum() >= 8:
        med = np.median(px[keep], 0)
    return med


def _to_lab(px: np.ndarray) -> np.ndarray:
    a = np.asarray(px, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(a, cv2.COLOR_RGB2Lab).reshape(-1, 3)


def _dominant_colour(px: np.ndarray, avoid: np.ndarray) -> np.ndarray:
    """Median of the densest colour cluster (32-level RGB bins, 3x3x3 smoothed); pixels close to ``avoid`` (skin,
    Lab distance < 18) are ignored when enough others are left."""
    q = (px // 32).astype(np.int32)
    idx = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    ok = np.linalg.norm(_to_lab(px) - _to_lab(avoid)[0], axis=1) > 18.0
    if ok.sum() < 0.04 * len(px):
        ok = np.ones(len(px), bool)
    hist = np.bincount(idx[ok], minlength=512).reshape(8, 8, 8).astype(np.float32)
    pad = np.pad(hist, 1)
    sm = sum(pad[i : i + 8, j : j + 8, k : k + 8] for i in range(3) for j in range(3) for k in range(3))
    sm = sm + 0.5 * hist  # favour the bin itself on ties
    b = np.array(np.unravel_index(int(np.argmax(sm)), sm.shape))
    near = ok & np.all(np.abs(q - b) <= 1, axis=1)
    return np.median(px[near].astype(np.float32), 0) if near.any() else np.median(px.astype(np.float32), 0)


def skin_colour(img: np.ndarray, L: np.ndarray, forehead: bool = True) -> np.ndarray:
    """Robust median RGB of cheek patches (and a forehead patch) of an RGB uint8 image with 68 landmarks (px)."""
    re, le = L[_R_EYE].mean(0), L[_L_EYE].mean(0)
    iod = max(float(np.linalg.norm(le - re)), 4.0)
    ex = (le - re) / iod
    up = np.array([ex[1], -ex[0]], np.float32)  # image "up" of the face
    r = 0.13 * iod
    cheeks = [0.5 * (L[2] + L[31]) - 0.1 * iod * up, 0.5 * (L[14] + L[35]) - 0.1 * iod * up]
    patches = [_rect(img, c[0] - r, c[1] - r, c[0] + r, c[1] + r) for c in cheeks]
    if forehead:
        fore = 0.5 * (L[21] + L[22]) + 0.32 * iod * up
        patches.append(_rect(img, fore[0] - 2 * r, fore[1] - 0.7 * r, fore[0] + 2 * r, fore[1] + 0.7 * r))
    return _robust_median(np.concatenate(patches))


def normalise(img: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo in the normalised frame: (crop [CH, CW, 3] uint8, valid mask, landmarks there)."""
    re, le = L[_R_EYE].mean(0), L[_L_EYE].mean(0)
    d = le - re
    iod = max(float(np.linalg.norm(d)), 4.0)
    s = U / iod
    if s < 0.5:  # reduce first so the warp does not alias
        f = min(1.0, 2.0 * s)
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        L, re, le, s = L * f, re * f, le * f, s / f
    mid = 0.5 * (re + le)
    ang = math.degrees(math.atan2(float(d[1]), float(d[0])))
    M = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), ang, s)
    M[:, 2] += EYE - mid
    crop = cv2.warpAffine(img, M, (CW, CH), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = cv2.warpAffine(np.full(img.shape[:2], 255, np.uint8), M, (CW, CH), flags=cv2.INTER_NEAREST) > 0
    return crop, valid, (L @ M[:, :2].T + M[:, 2]).astype(np.float32)


def _lab_image(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _mahalanobis(lab: np.ndarray, ref: np.ndarray, floor: tuple[float, float, float]) -> np.ndarray:
    """Mahalanobis distance of every pixel to the Lab colours ``ref`` (covariance floored by ``floor``, per
    channel standard deviations, so a few uniform pixels do not make a needle-thin model)."""
    ref = np.asarray(ref, np.float64).reshape(-1, 3)
    mu = np.median(ref, 0)
    mad = 1.4826 * np.median(np.abs(ref - mu), 0) + np.asarray(floor)
    core = ref[np.all(np.abs(ref - mu) <= 2.5 * mad, 1)]  # robust: hair or backdrop in a patch is dropped
    ref = core if len(core) > 10 else ref
    cov = np.cov(ref.T) if len(ref) > 3 else np.zeros((3, 3))
    cov = cov + np.diag(np.square(floor))
    inv = np.linalg.inv(cov).astype(np.float32)
    d = (lab - mu.astype(np.float32)).reshape(-1, 3)
    return np.sqrt(np.einsum("ni,ij,nj->n", d, inv, d)).reshape(lab.shape[:2])


def _segment_person(crop: np.ndarray, valid: np.ndarray, Ln: np.ndarray) -> np.ndarray:
    """GrabCut at half size, seeded by the face (person) and the top/side borders (background)."""
    h, w = CH // 2, CW // 2
    small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    ex, ey = EYE / 2
    u = U / 2
    cv2.ellipse(mask, (int(ex), int(ey + 0.3 * u)), (int(1.9 * u), int(2.6 * u)), 0, 0, 360, cv2.GC_PR_FGD, -1)
    cv2.rectangle(mask, (int(ex - 2.6 * u), int(Ln[8, 1] / 2)), (int(ex + 2.6 * u), h), cv2.GC_PR_FGD, -1)
    face = np.concatenate([Ln[0:17], Ln[26:16:-1]]) / 2
    c = face.mean(0)
    cv2.fillPoly(mask, [np.round(c + 0.8 * (face - c)).astype(np.int32)], cv2.GC_FGD)
    # the skull above the brows is the person too (hair, scalp or forehead): it gives GrabCut the hair's colours
    brow_y, chin_y = float(Ln[17:27, 1].min()) / 2, float(Ln[8, 1]) / 2
    rx = 0.5 * float(Ln[16, 0] - Ln[0, 0]) / 2
    ry = 0.75 * (chin_y - ey)
    cv2.ellipse(mask, (int(ex), int(brow_y)), (int(0.75 * rx), int(0.75 * ry)), 0, 180, 360, cv2.GC_FGD, -1)
    b = max(2, int(0.25 * u))
    border = np.zeros((h, w), bool)
    border[:b, : int(ex - 1.6 * u)] = True  # the top edge above the head may be cut hair: left to GrabCut
    border[:b, int(ex + 1.6 * u) :] = True
    border[: int(Ln[8, 1] / 2), :b] = True
    border[: int(Ln[8, 1] / 2), -b:] = True
    border |= cv2.resize(valid.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) == 0
    mask[border & (mask != cv2.GC_FGD)] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start is random: the same photo must give the same avatar
    try:
        cv2.grabCut(small, mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a degenerate picture (one colour): keep the seeds
        pass
    person = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    return cv2.resize(person, (CW, CH), interpolation=cv2.INTER_NEAREST) > 0


def _texture(lab: np.ndarray, cheeks: np.ndarray) -> np.ndarray:
    """Fine lightness detail (hair strands) at every pixel, in units of the cheeks' own detail (skin grain,
    noise and the photo's sharpness): smooth skin is about 1, hair 2 and more."""
    L = lab[..., 0]
    t = cv2.GaussianBlur(np.abs(L - cv2.GaussianBlur(L, (0, 0), 1.0)), (0, 0), 2.0)
    ref = float(np.median(t[cheeks])) if cheeks.sum() > 10 else float(np.median(t))
    return t / max(ref, 0.15)


def _background(img: np.ndarray) -> np.ndarray:
    """The picture's border colour (top + sides: the bottom is usually clothes)."""
    H, W = img.shape[:2]
    b = max(2, int(0.04 * min(H, W)))
    border = np.concatenate([img[:b].reshape(-1, 3), img[:, :b].reshape(-1, 3), img[:, -b:].reshape(-1, 3)])
    return np.median(border.astype(np.float32), 0)


def _unlike_skin(px: np.ndarray, skin_mu: np.ndarray) -> np.ndarray | None:
    """Split Lab pixels in two colour groups (k-means); the mask of the group unlike the skin when the two differ
    clearly (> 8 in a*b* and lightness at half weight) and it holds at least a fifth of them, else ``None``."""
    data = np.ascontiguousarray(px * np.array([0.5, 1.0, 1.0], np.float32))
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, lbl, ctr = cv2.kmeans(data, 2, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    lbl = lbl.ravel()
    mu = skin_mu * np.array([0.5, 1.0, 1.0], np.float32)
    far = int(np.argmax(np.linalg.norm(ctr - mu, axis=1)))
    gap = float(np.linalg.norm(ctr[far] - ctr[1 - far]))
    if gap < 8.0 or (lbl == far).mean() < 0.2:
        return None
    return lbl == far


def _hair_measures(hair: np.ndarray, skin: np.ndarray, Ln: np.ndarray, lab: np.ndarray) -> dict:
    """Reach, crown cover, fringe, part, volume and curl of a hair mask in the normalised frame."""
    ex, ey = float(EYE[0]), float(EYE[1])
    brow_y = float(Ln[17:27, 1].min())
    chin_y = float(Ln[8, 1])
    face_h = max(chin_y - ey, 0.5 * U)
    jl, jr = float(Ln[0:3, 0].min()), float(Ln[14:17, 0].max())
    third = max(float(Ln[33, 1]) - brow_y, 0.3 * U)  # brows to the nose's base: about the forehead's height
    skull_top = brow_y - 1.35 * third  # where a bare skull's top is in a frontal view, about

    def frac(m, x0, y0, x1, y1) -> float:
        v = _rect(m[..., None].astype(np.float32), x0, y0, x1, y1)
        return float(v.mean()) if len(v) else 0.0

    crown_y0, crown_y1 = brow_y - 1.3 * third, brow_y - 1.05 * third  # above where a hairline usually is
    crown = frac(hair, ex - 0.8 * U, crown_y0, ex + 0.8 * U, crown_y1)
    crown_skin = frac(skin, ex - 0.8 * U, crown_y0, ex + 0.8 * U, crown_y1)
    temples = 0.5 * (
        frac(hair, jl - 0.45 * U, brow_y - 0.6 * U, jl, ey) + frac(hair, jr, brow_y - 0.6 * U, jr + 0.45 * U, ey)
    )

    # reach: the lowest row beside the face (within 1.2 U of the jaw line) where the hair is more than a few
    # strands; the mask holds only pieces connected to the forehead's or temples' hair, so it is continuous
    y_end = ey - 0.5 * face_h
    for y in range(int(brow_y), CH):
        fr = max(  # either side: a turned head, or hair behind one shoulder
            frac(hair, jl - 1.2 * U, y, jl - 0.02 * U, y + 1), frac(hair, jr + 0.02 * U, y, jr + 1.2 * U, y + 1)
        )
        if fr > 0.15:
            y_end = float(y)
    reach = float(np.clip((y_end - ey) / (2.0 * face_h), 0.0, 1.0))
    if crown < 0.2 and temples < 0.25:
        reach = 0.0

    # fringe: where hair starts in the forehead columns, from the skull top (0) down to the brows (1)
    cols = []
    for x0, x1 in ((ex - 0.75 * U, ex - 0.1 * U), (ex + 0.1 * U, ex + 0.75 * U)):
        col = _rect(hair[..., None].astype(np.float32), x0, skull_top, x1, brow_y).reshape(
            -1, max(int(x1) - int(x0), 1)
        )
        rows = col.mean(1) if col.size else np.zeros(1)
        low = np.nonzero(rows > 0.5)[0]
        line = float(skull_top + low.max()) if len(low) else skull_top
        cols.append(float(np.clip((line - skull_top) / max(brow_y - skull_top, 1.0), 0.0, 1.0)))
    fringe = 0.5 * (cols[0] + cols[1])
    part = float(np.clip((cols[1] - cols[0]) * 2.5, -1.0, 1.0))  # the fringe hangs lower on the side away from it

    # volume: how far the hair stands above the skull and beside the temples
    top_rows = np.nonzero(hair[:, int(ex - 0.6 * U) : int(ex + 0.6 * U)].mean(1) > 0.4)[0]
    top = float(top_rows.min()) if len(top_rows) else skull_top
    side = 0.0
    y0 = int(brow_y - 0.8 * U)
    for y in range(max(y0, 0), int(ey)):
        row = np.nonzero(hair[y])[0]
        if len(row):
            side = max(side, float(min(jl - row.min(), 1.5 * U) + min(row.max() - jr, 1.5 * U)) / 2.0)
    volume = float(np.clip(0.5 * (skull_top - top) / U + 0.5 * side / U, 0.0, 1.0))

    # curl: texture inside the hair (lightness detail at fine scale against coarse) and a rough outline
    L = lab[..., 0]
    inner = cv2.erode(hair.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    curl = 0.0
    if inner.sum() > 0.3 * U * U:
        fine = np.abs(L - cv2.GaussianBlur(L, (0, 0), 1.2))
        coarse = np.abs(cv2.GaussianBlur(L, (0, 0), 1.2) - cv2.GaussianBlur(L, (0, 0), 4.0))
        curl = float(np.clip(np.median(coarse[inner]) / (np.median(fine[inner]) + 1.0) / 2.0, 0.0, 1.0))
    return {
        "reach": reach,
        "crown": crown,
        "crown_skin": crown_skin,
        "temples": temples,
        "fringe": fringe,
        "part": part,
        "volume": volume,
        "curl": curl,
        "top_above_skull": (skull_top - top) / U,
    }


def _hair_style(m: dict) -> str:
    """A hairstyle name from the hair measures (reach and crown first: they are the most reliable)."""
    reach, crown, fringe, curl, vol = m["reach"], m["crown"], m["fringe"], m["curl"], m["volume"]
    if reach >= LONG_REACH:
        return "long_wavy" if curl > 0.8 else "long_straight"
    if reach >= BELOW_CHIN:  # hair hanging past the chin is a haircut whatever the crown shows (a missed blond top)
        return "curly" if curl > 0.8 else "bob" if fringe > 0.55 else "side_part"
    if crown < 0.2:
        return "bald" if m["temples"] < 0.3 else "receding"
    if crown < 0.4 and m["crown_skin"] > 0.2:
        return "receding"
    if reach >= MEDIUM_REACH:
        return "bob" if fringe > 0.55 else "side_part"
    if curl > 0.8 and vol > 0.3:
        return "curly"
    if m["top_above_skull"] < 0.05 and fringe < 0.25:
        return "buzz" if vol < 0.1 else "slicked_back"
    if m["top_above_skull"] > 0.4 and curl > 0.6:
        return "spiky"
    if fringe > 0.8:
        return "fringe"
    return "side_part" if abs(m["part"]) > 0.45 else "short_crop"


def measure_traits(image_rgb: np.ndarray, landmarks_px: np.ndarray, debug: dict | None = None) -> PhotoTraits:
    """Everything ``style_from_photo`` uses, measured from an RGB photo and its 68 landmarks (px); ``debug``, a
    dict, receives the normalised crop and its masks (hair, skin, person) for inspection."""
    img = np.ascontiguousarray(image_rgb[..., :3])
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    L = np.asarray(landmarks_px, np.float32).reshape(68, 2)
    crop, valid, Ln = normalise(img, L)
    lab = _lab_image(crop)
    skin = skin_colour(crop, Ln)
    bg = _background(img)

    # segmentation: the person (GrabCut); on it, outside the face, what is not skin around the head is hair
    brow_y = float(Ln[17:27, 1].min())
    jl, jr = float(Ln[0, 0]), float(Ln[16, 0])
    ref_mask = _poly_mask(lab.shape[:2], np.array([Ln[1], Ln[36], Ln[31], Ln[3]])) | _poly_mask(
        lab.shape[:2], np.array([Ln[15], Ln[45], Ln[35], Ln[13]])
    )
    ref = lab[ref_mask]
    person = _segment_person(crop, valid, Ln)
    face = _poly_mask(lab.shape[:2], np.concatenate([Ln[0:17], Ln[26:16:-1]]))
    # lightness counts less than hue for skin: a shaded scalp or jaw is still skin
    d_skin = _mahalanobis(lab, ref if len(ref) > 10 else _to_lab(skin), (8.0, 1.5, 1.5))
    around = np.zeros(lab.shape[:2], bool)  # above the brows, and beside the temples
    around[: int(brow_y)] = True
    around[: int(EYE[1]), : int(jl)] = True
    around[: int(EYE[1]), int(jr) :] = True
    # the hair's colour: what is not skin just above the middle of the forehead (hair or a fringe on every
    # head that has hair there), else beside the temples, else (a bald head) the brows
    third = max(float(Ln[33, 1]) - brow_y, 0.3 * U)
    zone = np.zeros(lab.shape[:2], bool)
    zone[int(brow_y - 1.3 * third) : int(brow_y - 0.5 * third), int(EYE[0] - 0.7 * U) : int(EYE[0] + 0.7 * U)] = True
    temples = np.zeros(lab.shape[:2], bool)
    temples[int(brow_y - 0.8 * third) : int(EYE[1]), int(jl - 0.5 * U) : int(jl)] = True
    temples[int(brow_y - 0.8 * third) : int(EYE[1]), int(jr) : int(jr + 0.5 * U)] = True
    not_skin = valid & (d_skin > 3.0) & ~face
    cand = np.zeros((0, 3), np.uint8)
    inner = np.zeros(lab.shape[:2], np.uint8)  # inside the skull's outline: hair, scalp or forehead, not backdrop
    cv2.ellipse(inner, (int(EYE[0]), int(brow_y)), (int(0.5 * (jr - jl)), int(1.2 * third)), 0, 0, 360, 1, -1)
    skin_mu = np.median(ref, 0) if len(ref) > 10 else _to_lab(skin)[0]
    seed_how = "brows"
    for name, z in (("zone", zone & ((inner > 0) | person)), ("temples", temples & person)):
        z = z & valid & ~face
        if (z & not_skin).sum() > 0.25 * max(int(z.sum()), 1):
            cand = crop[z & not_skin]
            seed_how = name
            break
        if z.sum() > 40:  # hair close to the skin's colour (blond): two colour groups, the one less like skin
            part = _unlike_skin(lab[z], skin_mu)
            if part is not None:
                cand = crop[z][part]
                seed_how = name + "-split"
                break
    # light hair (blond, strawberry, light brown) is close to the skin in colour but not in texture: strands
    # against smooth skin. When colour alone could not name the hair above the forehead and that zone is
    # finely textured, its textured pixels are the hair and texture breaks colour ties in the mask below.
    tex = _texture(lab, ref_mask)
    zt = zone & valid & ~face & ((inner > 0) | person)
    zone_tex = float(np.median(tex[zt])) if zt.sum() > 40 else None  # None: the zone is out of the photo
    # or, beside darker strands (roots, lowlights) that colour did find, the skin-coloured part has strands too
    zs = zt & ~not_skin
    light_tex = float(np.median(tex[zs])) if seed_how == "zone" and zs.sum() > 40 else 0.0
    strands = seed_how in ("zone-split", "temples-split", "brows") and (zone_tex or 0.0) >= LIGHT_HAIR_TEXTURE
    strands = strands or light_tex >= LIGHT_HAIR_TEXTURE
    strands = strands and bool((zt & (tex >= 1.5)).any())
    if strands:
        cand = crop[zt & (tex >= 1.5)]
        seed_how = "texture"
    brows = crop[_poly_mask(lab.shape[:2], np.concatenate([Ln[17:22], Ln[22:27]]))]
    brow_hair = _robust_median(brows) if len(brows) else skin * 0.45  # a bald head's hair colour
    if len(cand):
        hair = _dominant_colour(cand, avoid=skin)
    else:
        cand, hair = brows, brow_hair
    hl = _to_lab(hair)[0]
    seed = _to_lab(cand)
    seed = seed[np.linalg.norm(seed - hl, axis=1) < (30.0 if strands else 20.0)]
    d_hair = _mahalanobis(lab, seed if len(seed) > 10 else hl[None], (6.0, 3.0, 3.0))
    skin_m = (d_skin < 2.5) & (d_skin <= d_hair) & valid
    # hair: the hair's colour, off the face, on the person or close around the skull (GrabCut loses dark hair
    # on a dark backdrop), in pieces connected to the forehead's or the temples' hair
    skull = np.zeros(lab.shape[:2], np.uint8)
    cv2.ellipse(
        skull, (int(EYE[0]), int(brow_y)), (int(0.5 * (jr - jl) + 0.45 * U), int(1.45 * third + 0.35 * U)),
        0, 0, 360, 1, -1,
    )  # fmt: skip
    wins = d_hair < d_skin
    if strands:  # strands are hair even where their colour is as near the skin's
        wins |= cv2.GaussianBlur(tex, (0, 0), 2.0) >= 1.5
    raw = (d_hair < 3.5) & wins & ~face & valid & (person | (skull > 0))
    raw = cv2.morphologyEx(raw.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, comp = cv2.connectedComponents(raw, connectivity=8)
    keep = np.unique(comp[(zone | temples) & (raw > 0)])
    hair_m = np.isin(comp, keep[keep > 0])
    hm = _hair_measures(hair_m, skin_m & person, Ln, lab)
    # a shine on a bald scalp: "hair" lighter than the skin, as smooth as skin, on the crown but not at the
    # temples (where a real haircut also grows); the head is bald and takes its brows' colour
    smooth = zone_tex is not None and zone_tex < 1.0
    if not strands and smooth and hl[0] > skin_mu[0] + 5.0 and hm["temples"] < 0.15:
        hair_m = np.zeros_like(hair_m)
        hm = _hair_measures(hair_m, skin_m & person, Ln, lab)
        hair, seed_how = brow_hair, "shine"
    if debug is not None:
        debug.update(crop=crop, hair=hair_m, skin=skin_m, person=person, landmarks=Ln, seed=seed_how)
    top = hair_m & around
    if top.sum() > 0.5 * U * U:
        hair = _robust_median(crop[top])

    # eyes: darkest quarter inside (slightly grown) eye polygons
    eye_px = [
        crop[_poly_mask(crop.shape[:2], Ln[sl].mean(0) + 1.15 * (Ln[sl] - Ln[sl].mean(0)))] for sl in (_R_EYE, _L_EYE)
    ]
    ep = np.concatenate(eye_px) if sum(len(e) for e in eye_px) else skin[None] * 0.3
    lum = ep.astype(np.float32) @ LUMA
    eyes = np.median(ep[lum <= np.percentile(lum, 25)].astype(np.float32), 0)
    lm = _poly_mask(crop.shape[:2], Ln[48:60]) & ~_poly_mask(crop.shape[:2], Ln[60:68])
    lips = _robust_median(crop[lm]) if lm.any() else skin * np.array([1.0, 0.7, 0.7])

    facial, facial_col, fev = facial_hair(lab, crop, Ln)
    on, gshape, gcol, gev = glasses(crop, Ln)

    # clothes: below the chin, the person and neither skin nor hair
    ex = float(EYE[0])
    body = np.zeros(lab.shape[:2], bool)
    y0 = int(Ln[8, 1] + 1.4 * U)
    body[y0:, int(ex - 2.2 * U) : int(ex + 2.2 * U)] = True
    cm = body & person & ~skin_m & ~hair_m & valid
    clothes = _dominant_colour(crop[cm], skin) if cm.sum() > 0.6 * U * U else None

    style = _hair_style(hm)
    ev = {"hair": {k: round(float(v), 3) for k, v in hm.items()}, "facial_hair": fev, "glasses": gev}
    ev["hair"].update(seed=seed_how, zone_texture=None if zone_tex is None else round(zone_tex, 3))
    logger.debug("traits: %s", ev)
    return PhotoTraits(
        skin=skin, hair=hair, eyes=eyes, lips=lips, background=bg, hair_length=hm["reach"], hair_style=style,
        fringe=hm["fringe"], part=hm["part"], volume=hm["volume"], curl=hm["curl"], crown=hm["crown"],
        glasses=on, glasses_shape=gshape, glasses_colour=gcol, facial_hair=facial,
        facial_hair_colour=facial_col, clothes=clothes, face_shape=face_shape(L), brow=brow_weight(lab, Ln),
        evidence=ev,
    )  # fmt: skip


def style_from_traits(t: PhotoTraits) -> AvatarStyle:
    """The avatar style (cel colours, hairstyle) of measured traits."""
    from .avatar_style import STYLE_REACH

    lo, hi = STYLE_REACH[t.hair_style]
    reach = float(np.clip(t.hair_length, lo, hi))
    extra = {
        "hair_style": t.hair_style,
        "glasses_shape": t.glasses_shape,
        "fringe": round(float(t.fringe), 3),
        "part": round(float(t.part), 3),
        "volume": round(float(t.volume), 3),
        "brow": round(float(t.brow), 3),
        "facial_hair_colour": None if t.facial_hair_colour is None else tuple(t.facial_hair_colour),
        "clothes": None if t.clothes is None else tuple(t.clothes),
    }
    if t.glasses and t.glasses_colour is not None:
        extra["glasses_colour"] = tuple(int(np.clip(c * 0.8, 0, 255)) for c in t.glasses_colour)
    st = animeify_style(t.skin, t.hair, t.eyes, t.lips, t.background, reach, t.glasses, t.facial_hair, **extra)
    logger.debug("style %s (%s)", st.describe(), length_class(st.hair_style, st.hair_length))
    return st


def style_from_photo(image_rgb: np.ndarray, landmarks_px: np.ndarray) -> AvatarStyle:
    """Estimate an :class:`AvatarStyle` (cel colours, hairstyle, facial hair, glasses) from a photo.

    Only summary numbers and names leave this function; it is deterministic.
    """
    return style_from_traits(measure_traits(image_rgb, landmarks_px))
