"""Face detection, 68-point landmarks (dlib) and head pose (solvePnP).

Why dlib: its HOG frontal detector + 68-point shape predictor give iBUG 300-W landmarks
natively (our contract's order), install in seconds from the ``dlib-bin`` wheel, run on a
2-core CPU in ~0.1 s per photo and need no network. The predictor file is not shipped by
toonsync: it is found in PyPI's ``face-recognition-models`` (a base dependency) or in
Debian's ``libdlib-data`` (/usr/share/dlib), or wherever ``TOONSYNC_DLIB_68`` points. Its
weights were trained on iBUG 300-W, whose licence excludes commercial use — see README.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .errors import ModelError, MultipleFacesWarning, NoFaceError

log = logging.getLogger(__name__)

PREDICTOR_NAME = "shape_predictor_68_face_landmarks.dat"
PROFILE_YAW_DEG = 35.0  # |yaw| above this counts as a side profile
MIN_FACE_PX = 40  # faces smaller than this (box side) are too small to animate
DETECT_THRESHOLD = -0.3  # weak detections are kept only as a last resort (profiles score low)
CONFIDENT_SCORE = 0.0
OTHER_FACE_SCORE = 0.3  # a second face must be this sure (and >= 25% the area) to warn about it
_MAX_DETECT_SIDE = 1024  # detection runs on a copy downscaled to this
MIN_FACE_SIDE = 32  # images narrower than this on either side cannot hold a detectable face


def predictor_candidates() -> list[Path]:
    """Where the 68-point predictor is looked for, in order."""
    out: list[Path] = []
    if os.environ.get("TOONSYNC_DLIB_68"):
        out.append(Path(os.environ["TOONSYNC_DLIB_68"]))
    spec = importlib.util.find_spec("face_recognition_models")  # locate without importing (it needs pkg_resources)
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            out.append(Path(loc) / "models" / PREDICTOR_NAME)
    out.append(Path("/usr/share/dlib") / PREDICTOR_NAME)
    return out


def find_predictor() -> Path:
    for p in predictor_candidates():
        if p.is_file():
            return p
    raise ModelError(
        "dlib 68-point landmark predictor not found; install it with `pip install face-recognition-models` "
        "or `apt-get install libdlib-data`, or set TOONSYNC_DLIB_68. Looked in: "
        + ", ".join(str(p) for p in predictor_candidates())
    )


@lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(find_predictor()))


@dataclass(frozen=True)
class FaceInfo:
    """One detected face: box (x0, y0, x1, y1) in pixels, 68 landmarks [68, 2] px, pose (yaw, pitch, roll) rad."""

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    pose: np.ndarray
    score: float
    subdetector: int  # dlib: 0 frontal, 1 looking left, 2 looking right, 3/4 rotated frontal

    @property
    def yaw_deg(self) -> float:
        return float(np.degrees(self.pose[0]))

    @property
    def is_profile(self) -> bool:
        return abs(self.yaw_deg) > PROFILE_YAW_DEG or self.subdetector in (1, 2)


# Generic 3D face model (mm) for solvePnP: nose tip, chin, eye outer corners, mouth corners.
_MODEL_3D = np.array(
    [
        (0.0, 0.0, 0.0),
        (0.0, -63.6, -12.5),
        (-43.3, 32.7, -26.0),
        (43.3, 32.7, -26.0),
        (-28.9, -28.9, -24.1),
        (28.9, -28.9, -24.1),
    ],
    np.float64,
)
_PNP_IDX = [30, 8, 36, 45, 48, 54]


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(yaw, pitch, roll) in radians from 68 landmarks (pixel coords), solvePnP on a generic 3D face.

    Zero for a frontal, upright face; yaw > 0 when the face turns toward image right.
    """
    h, w = image_size
    f = float(max(h, w))
    cam = np.array([[f, 0, w / 2.0], [0, f, h / 2.0], [0, 0, 1]], np.float64)
    model = _MODEL_3D * np.array([1.0, -1.0, -1.0])  # model (y up, z to viewer) -> camera axes (y down, z away)
    pts = np.asarray(landmarks, np.float64)[_PNP_IDX]
    ok, rvec, _ = cv2.solvePnP(model, pts, cam, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return np.zeros(3, np.float32)
    r, _ = cv2.Rodrigues(rvec)
    yaw = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[2, 1], r[2, 2])
    roll = np.arctan2(r[1, 0], r[0, 0])
    return np.array([-yaw, pitch, roll], np.float32)


def detect_faces(image: np.ndarray) -> list[FaceInfo]:
    """All faces in an RGB uint8 image: confident ones (score >= 0) first, larger first."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_FACE_SIDE:  # a sliver (1 x 40000) or a thumbnail holds no face the detector can find
        raise NoFaceError(
            f"no face can be found in a {w}x{h} image: a face needs at least {MIN_FACE_SIDE} pixels each way"
        )
    detector = _dlib_models()[0]
    scale = min(1.0, _MAX_DETECT_SIDE / max(h, w))
    small = (
        cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        if scale < 1
        else image
    )
    upsample = 1 if max(small.shape[:2]) < 800 else 0
    rects, scores, kinds = detector.run(np.ascontiguousarray(small), upsample, DETECT_THRESHOLD)
    faces = []
    for r, s, k in zip(rects, scores, kinds):
        box = tuple(int(round(v / scale)) for v in (r.left(), r.top(), r.right(), r.bottom()))
        lm = landmarks_in_box(image, box)
        faces.append(FaceInfo(box, lm, head_pose(lm, (h, w)), float(s), int(k)))
    faces.sort(key=lambda f: (f.score < CONFIDENT_SCORE, -_area(f)))
    return faces


def _area(f: FaceInfo) -> int:
    return (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])


def detect_face(image: np.ndarray) -> FaceInfo:
    """The largest face; NoFaceError if none (or too small), MultipleFacesWarning if several."""
    faces = detect_faces(image)
    if not faces:
        found = "no face found in the image; use a photo with one clearly visible face (frontal works best)"
        raise NoFaceError(
            found + ", or for a drawn character load_face(image, drawing=True) (its points are fitted; "
            "docs/drawings.md)",
            cli=found + ", or for a drawn character --drawing (its points are fitted; docs/drawings.md)",
        )
    best = faces[0]
    side = min(best.box[2] - best.box[0], best.box[3] - best.box[1])
    if side < MIN_FACE_PX:
        raise NoFaceError(f"the face found is only {side}px wide; at least {MIN_FACE_PX}px is needed")
    others = [f for f in faces[1:] if f.score > OTHER_FACE_SCORE and _area(f) >= 0.25 * _area(best)]
    if others:
        warnings.warn(f"{len(others) + 1} faces found; using the largest", MultipleFacesWarning, stacklevel=2)
    log.debug("face %s score %.2f yaw %.1f deg", best.box, best.score, best.yaw_deg)
    return best


# -- drawn faces (evaluation re-detection) -------------------------------------------------------
MMOD_NAME = "mmod_human_face_detector.dat"  # dlib's CNN face detector, shipped beside the 68-pt predictor


@lru_cache(maxsize=1)
def _cnn_detector():
    import dlib

    path = find_predictor().parent / MMOD_NAME
    if not path.is_file():
        raise ModelError(
            f"dlib CNN face detector {MMOD_NAME} not found beside {find_predictor()}; it ships in "
            "`pip install face-recognition-models` and `apt-get install libdlib-data`"
        )
    return dlib.cnn_face_detection_model_v1(str(path))


def cnn_face_box(image: np.ndarray, upsample: int = 0) -> tuple[int, int, int, int] | None:
    """The most confident face box (x0, y0, x1, y1) of dlib's CNN (MMOD) detector, or None.

    Unlike the HOG detector it also finds toonsync's drawn anime faces (about 0.5 s for 256x256 on a
    CPU core, so use it once per clip); see docs/metrics.md.
    """
    dets = _cnn_detector()(np.ascontiguousarray(image), upsample)
    if not len(dets):
        return None
    r = max(dets, key=lambda d: d.confidence).rect
    return r.left(), r.top(), r.right(), r.bottom()


def landmarks_in_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The 68-point predictor run on a known face box (no detection step): [68, 2] pixels."""
    import dlib

    shape = _dlib_models()[1](np.ascontiguousarray(image), dlib.rectangle(*(int(round(v)) for v in box)))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float32)
