"""Image and motion metrics of rendered avatar video: MSE, PSNR, SSIM, LPIPS (only when
really available), landmark drift and temporal jitter. numpy + OpenCV; never torch. (The privacy check
of rendered frames against the photo is ``runtime.stylizer.photo_leak``.)

Conventions: images are uint8 (or float in the same 0..255 range) ``[H, W]`` or ``[H, W, C]``; landmark
tracks are ``[T, 68, 2]`` (iBUG 300-W order) in pixels; distances of landmarks are given in percent of
the inter-ocular distance (IOD, between the eye centres) so they do not depend on the frame size.
Definitions, the re-detector choice and measured figures: docs/metrics.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import cv2
import numpy as np

from toonsync.runtime.errors import InputError
from toonsync.runtime.mouth import inner_lip_gap

log = logging.getLogger(__name__)

REGIONS = {
    "jaw": slice(0, 17),
    "brows": slice(17, 27),
    "nose": slice(27, 36),
    "eyes": slice(36, 48),
    "mouth": slice(48, 68),
}
REDETECTOR = "dlib CNN (MMOD) face box on the first frame + dlib 68-point shape predictor in that box"


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise InputError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


# -- per-image metrics ---------------------------------------------------------------------------
def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels (0..255 units squared)."""
    a, b = _pair(a, b)
    return float(np.mean((a - b) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(range^2 / MSE); ``inf`` for identical images."""
    e = mse(a, b)
    return math.inf if e == 0 else float(10.0 * math.log10(data_range**2 / e))


def ssim(
    a: np.ndarray, b: np.ndarray, data_range: float = 255.0, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03
) -> float:
    """Structural similarity (Wang et al. 2004): 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03,
    population covariances, mean over the valid (un-padded) area and over channels.

    Same definition as ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)``.
    """
    a, b = _pair(a, b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    r = int(3.5 * sigma + 0.5)  # skimage's truncation of the Gaussian
    if min(a.shape[:2]) < 2 * r + 1:
        raise InputError(f"SSIM needs images of at least {2 * r + 1}x{2 * r + 1} pixels, got {a.shape[:2]}")
    ksize = (2 * r + 1, 2 * r + 1)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, ksize, sigma, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    vals = []
    for c in range(a.shape[2]):
        x, y = np.ascontiguousarray(a[..., c]), np.ascontiguousarray(b[..., c])
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        vals.append(s[r:-r, r:-r].mean())
    return float(np.mean(vals))


def image_metrics(frames: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict:
    """Mean MSE, PSNR (dB; over the frames that differ, ``inf`` when all are equal) and SSIM of two equally
    long frame sequences, plus the worst frame's PSNR/SSIM."""
    if len(frames) != len(reference) or not len(frames):
        raise InputError(f"need two non-empty sequences of equal length, got {len(frames)} and {len(reference)}")
    e = np.array([mse(f, g) for f, g in zip(frames, reference)])
    s = np.array([ssim(f, g) for f, g in zip(frames, reference)])
    p = np.array([psnr(f, g) for f, g in zip(frames, reference)])
    finite = p[np.isfinite(p)]
    return {
        "frames": len(frames),
        "mse": round(float(e.mean()), 4),
        "psnr_db": round(float(finite.mean()), 3) if finite.size else math.inf,
        "psnr_min_db": round(float(p.min()), 3) if np.isfinite(p.min()) else math.inf,
        "ssim": round(float(s.mean()), 5),
        "ssim_min": round(float(s.min()), 5),
    }


def lpips_score(
    frames: Sequence[np.ndarray], reference: Sequence[np.ndarray], weights: str | None = None, net: str = "alex"
) -> dict:
    """LPIPS (Zhang et al. 2018) when it can really be computed, else ``{"available": False, "reason": ...}``.

    It needs the ``lpips`` package (torch + torchvision), its linear-layer ``weights`` file and the
    ImageNet-pretrained backbone in the torch hub cache. The toonsync runtime never imports torch, so this
    is opt-in (``toonsync eval render --lpips-weights PATH``); nothing is downloaded and nothing is faked.
    """
    if weights is None:
        return {
            "available": False,
            "value": None,
            "reason": "LPIPS needs the lpips package (torch + torchvision) and pretrained weights: its linear "
            "layers (--lpips-weights PATH) and the AlexNet/VGG ImageNet backbone; none ship with "
            "the torch-free runtime and nothing is downloaded",
        }
    try:  # torch lives in training/ (toonsync[train]), loaded only on this explicit request
        from toonsync.training.lpips_metric import lpips_values
    except ImportError as e:
        return {"available": False, "value": None, "reason": f"LPIPS needs toonsync[train] and lpips ({e})"}
    try:
        v = lpips_values(frames, reference, weights, net)
    except ImportError as e:
        return {"available": False, "value": None, "reason": f"lpips is not importable ({e})"}
    except Exception as e:  # missing backbone weights (no download here), bad file...
        return {"available": False, "value": None, "reason": f"LPIPS could not run: {type(e).__name__}: {e}"}
    return {"available": True, "value": round(float(np.mean(v)), 5), "net": net, "reason": None}


# -- landmarks -----------------------------------------------------------------------------------
def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres of ``[..., 68, 2]`` landmarks -> ``[...]``."""
    L = np.asarray(landmarks, np.float64)
    return np.linalg.norm(L[..., 42:48, :].mean(-2) - L[..., 36:42, :].mean(-2), axis=-1)


def _corr(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.std(x) < 1e-9 or np.std(y) < 1e-9:
        return None
    return round(float(np.corrcoef(x, y)[0, 1]), 4)


def landmark_drift(found: np.ndarray, driving: np.ndarray) -> dict:
    """How far re-detected landmarks ``found`` [T, 68, 2] are from the ``driving`` ones (pixels), in % IOD.

    ``mean/median/p95_pct_iod``: per-point Euclidean distance (the seed's "landmark drift");
    ``bias_corrected_pct_iod``: the same after removing each point's median offset over the clip (a
    detector trained on photos places e.g. anime eyes consistently off; this part measures whether the
    rendered motion follows the driving motion); ``per_region``: raw / bias-corrected per face region;
    ``mouth_open_r`` / ``head_x_r`` / ``head_y_r``: correlation over time of the inner-lip gap and of the
    nose position, re-detected vs driving.
    """
    F, D = np.asarray(found, np.float64), np.asarray(driving, np.float64)
    if F.shape != D.shape or F.ndim != 3 or F.shape[1:] != (68, 2):
        raise InputError(f"landmark tracks must both be [T, 68, 2], got {F.shape} and {D.shape}")
    ok = np.isfinite(F).all(axis=(1, 2))
    F, D = F[ok], D[ok]
    if not len(F):
        return {"frames": 0}
    iod = inter_ocular(D)[:, None]
    err = np.linalg.norm(F - D, axis=2) / iod * 100
    off = np.median(F - D, axis=0)
    err_c = np.linalg.norm(F - off - D, axis=2) / iod * 100
    r2 = lambda v: round(float(v), 2)  # noqa: E731
    return {
        "frames": int(len(F)),
        "mean_pct_iod": r2(err.mean()),
        "median_pct_iod": r2(np.median(err)),
        "p95_pct_iod": r2(np.percentile(err, 95)),
        "bias_corrected_pct_iod": r2(err_c.mean()),
        "per_region": {k: [r2(err[:, s].mean()), r2(err_c[:, s].mean())] for k, s in REGIONS.items()},
        "mouth_open_r": _corr(inner_lip_gap(F), inner_lip_gap(D)),
        "head_x_r": _corr(F[:, 27:36, 0].mean(1), D[:, 27:36, 0].mean(1)),
        "head_y_r": _corr(F[:, 27:36, 1].mean(1), D[:, 27:36, 1].mean(1)),
    }


def landmark_jitter(track: np.ndarray) -> float:
    """Temporal jitter of a landmark track [T, 68, 2]: mean |second difference| (acceleration) per point
    per frame, in % of the track's mean IOD. 0 for a static or uniformly moving track."""
    L = np.asarray(track, np.float64)
    L = L[np.isfinite(L).all(axis=(1, 2))]
    if len(L) < 3:
        return 0.0
    acc = np.linalg.norm(L[2:] - 2 * L[1:-1] + L[:-2], axis=2)
    return float(acc.mean() / max(float(inter_ocular(L).mean()), 1e-9) * 100)


def flicker(frames: Sequence[np.ndarray] | np.ndarray, static_mask: np.ndarray | None = None) -> float:
    """Frame-to-frame flicker on static regions: mean |frame[t+1] - frame[t]| (grey levels) over the pixels
    of ``static_mask`` [H, W] (True = content that should not change, e.g. the background). Default mask:
    a border band of 6% of the frame."""
    V = np.asarray(frames, np.float32)
    if len(V) < 2:
        return 0.0
    if static_mask is None:
        h, w = V.shape[1:3]
        b = max(1, int(0.06 * min(h, w)))
        static_mask = np.zeros((h, w), bool)
        static_mask[:b], static_mask[-b:], static_mask[:, :b], static_mask[:, -b:] = True, True, True, True
    if not static_mask.any():
        return 0.0
    d = np.abs(np.diff(V[:, static_mask], axis=0))
    return float(d.mean())


def redetect_landmarks(
    frames: Sequence[np.ndarray], box: tuple[int, int, int, int] | None = None
) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """Landmarks found again on rendered frames: dlib's 68-point predictor in one face box per clip.

    The box comes from dlib's CNN (MMOD) detector on the first frame where ``box`` is None (the HOG
    detector toonsync uses for photos does not find drawn anime faces). Returns ([T, 68, 2] pixels —
    NaN when no face was found —, box). Why this detector and how well it tracks: docs/metrics.md.
    """
    from toonsync.runtime.face import cnn_face_box, landmarks_in_box

    out = np.full((len(frames), 68, 2), np.nan, np.float32)
    if box is None and len(frames):
        box = cnn_face_box(np.asarray(frames[0])[..., :3])
    if box is None:
        log.warning("re-detection: no face found on the first frame")
        return out, None
    for i, f in enumerate(frames):
        out[i] = landmarks_in_box(np.asarray(f)[..., :3], box)
    return out, box


__all__ = [
    "REDETECTOR",
    "flicker",
    "image_metrics",
    "inter_ocular",
    "landmark_drift",
    "landmark_jitter",
    "lpips_score",
    "mse",
    "psnr",
    "redetect_landmarks",
    "ssim",
]
