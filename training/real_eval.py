"""Lip-sync and motion figures on real human recordings: ``toonsync eval real``.

The clips are recordings of people (not TTS) that other packages ship, bundled in ``training/real_speech/``
with their transcripts, sources and licences (``clips.json``): LibriVox read speech and CMU Sphinx test
utterances from the pocketsphinx source distribution, and a CMU ARCTIC sentence from pysptk's. The ALSA
channel-name recordings (``/usr/share/sounds/alsa``, Debian's alsa-utils) are added when installed. Nothing
here is ever trained or tuned on: the display settings were tuned on a TTS split.

Each transcript is force-aligned with pocketsphinx (``align_check.Aligner``). The phones give the true mouth
opening, the co-articulated viseme trajectory of ``training.visemes``: 0 is closed, 1 is a wide-open anime
mouth. The model's opening is measured on the landmarks that ``toonsync motion`` writes and a render draws:
the inner-lip gap over 0.35 x the outer-eye-corner distance, on the same 0-1 scale. Figures, pooled over the
frames of all clips:

- ``r``: Pearson correlation of predicted and true opening (``r_blended``: against the co-articulated blend
  alone, without the held lip contacts);
- ``slope``: least-squares slope of predicted on true opening (1 = full amplitude);
- ``wide_open_median``: median predicted opening on frames of AA AE AH AO AW AY;
- ``closed_precision`` / ``closed_recall``: frames predicted closed (opening < ``CLOSED``) against the frames of
  P/B/M and silence;
- ``cue_closed_precision`` / ``cue_closed_recall``: the same for the mouth cues ``toonsync motion`` writes
  (Rhubarb shapes, ``runtime.motion_io.viseme_classes``): frames cued closed ("A") or at rest ("X");
- ``pose_std_deg``: yaw and pitch std per clip of at least 2 s (median over clips), and ``blinks_per_min``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.avatar_geometry import mean_face_landmarks
from toonsync.runtime.mel import FPS, SAMPLES_PER_FRAME
from toonsync.runtime.motion import frame_energy
from toonsync.runtime.motion_io import viseme_classes
from toonsync.runtime.mouth import CLOSED_READ, MOUTH_GAIN, inner_lip_gap

from .align_check import Aligner, AlignmentError
from .visemes import Phone, frame_phones, mouth_trajectory

log = logging.getLogger(__name__)

REAL_DIR = Path(__file__).resolve().parent / "real_speech"
ALSA_DIR = Path("/usr/share/sounds/alsa")
WIDE = frozenset({"aa", "ae", "ah", "ao", "aw", "ay"})
SHUT = frozenset({"p", "b", "m", "sil"})
CLOSED = CLOSED_READ  # predicted opening below this counts as closed (an inner-lip gap of 3.5 % of the eye span)
ANIME_GAP = 0.35  # opening 1.0: an inner-lip gap of this fraction of the outer-eye-corner distance


@dataclass
class RealClip:
    """One recording: its file, transcript and who spoke it."""

    path: Path
    text: str
    speaker: str


def real_clips(directory: Path = REAL_DIR, system: bool = True) -> list[RealClip]:
    """The bundled recordings (``clips.json``) and, with ``system``, the ALSA channel names when installed."""
    manifest = json.loads((directory / "clips.json").read_text())
    clips = [RealClip(directory / c["file"], c["text"], c["speaker"]) for c in manifest["clips"]]
    if system and ALSA_DIR.is_dir():
        for f in sorted(ALSA_DIR.glob("*_*.wav")):  # Front_Left.wav ... (Noise.wav has no words)
            clips.append(RealClip(f, f.stem.replace("_", " ").lower(), "alsa"))
    return clips


def openness(landmarks: np.ndarray) -> np.ndarray:
    """[T, 68, 2] landmarks -> the drawn mouth opening [T] on the 0-1 anime scale (see the module doc)."""
    gap = inner_lip_gap(landmarks)
    eyes = np.linalg.norm(landmarks[:, 36] - landmarks[:, 45], axis=1)
    return (gap / (ANIME_GAP * eyes)).astype(np.float32)


def frame_labels(phones: list[Phone], n: int) -> np.ndarray:
    """The phone at each 25 fps frame's centre, stress digits dropped ("sil" in pauses and outside every phone)."""
    return frame_phones(phones, n, FPS)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def figures(
    pred: np.ndarray,
    true: np.ndarray,
    labels: np.ndarray,
    cues: np.ndarray | None = None,
    blended: np.ndarray | None = None,
) -> dict:
    """The pooled lip-sync figures of predicted vs true opening (frames of every clip together); ``cues``: the
    mouth cues' shapes at the same frames, for their closed precision and recall; ``blended``: the true opening
    without held contacts, for ``r_blended``."""
    wide = np.isin(labels, list(WIDE))
    shut = np.isin(labels, list(SHUT))

    def closed(prefix: str, said: np.ndarray) -> dict:  # frames called closed against the shut ones
        both = int((said & shut).sum())
        return {
            f"{prefix}closed_precision": _ratio(both, int(said.sum())),
            f"{prefix}closed_recall": _ratio(both, int(shut.sum())),
        }

    return {
        "frames": int(pred.size),
        "r": round(float(np.corrcoef(pred, true)[0, 1]), 4),
        **({} if blended is None else {"r_blended": round(float(np.corrcoef(pred, blended)[0, 1]), 4)}),
        "slope": round(float(np.polyfit(true, pred, 1)[0]), 4),
        "wide_open_median": round(float(np.median(pred[wide])), 4) if wide.any() else None,
        **closed("", pred < CLOSED),
        **({} if cues is None else closed("cue_", np.isin(cues, ["A", "X"]))),
    }


def _score(
    items: Iterable[tuple[str, str, np.ndarray, list[Phone]]],
    *,
    mouth_gain: float,
    head_motion: float,
    precision: str,
    animator,
    skipped: list[dict],
) -> dict:
    """The module doc's figures over ``(name, speaker, audio, phones)`` items."""
    from toonsync.runtime.pipeline import Animator

    animator = animator or Animator("cpu", precision)
    neutral = mean_face_landmarks()
    preds, trues, labels, cues, blends, per_clip = [], [], [], [], [], []
    poses, blinks, minutes = [], 0, 0.0
    for name, speaker, audio, phones in items:
        m = animator.animate(audio, neutral, mouth_gain=mouth_gain, head_motion=head_motion)
        n = min(m.n_frames, -(-audio.size // SAMPLES_PER_FRAME))
        pred, true, lab = openness(m.landmarks[:n]), mouth_trajectory(phones, n)[:, 0], frame_labels(phones, n)
        cue = viseme_classes(m.mouth[:n], frame_energy(audio, n), None if m.closed is None else m.closed[:n])
        blended = mouth_trajectory(phones, n, hold=False)[:, 0]
        preds.append(pred), trues.append(true), labels.append(lab), cues.append(cue), blends.append(blended)
        seconds = audio.size / 16000
        if seconds >= 2.0:
            poses.append(np.degrees(m.pose[:n, :2].std(0)))
        blinks += int(((m.blink[1:n] > 0.5) & (m.blink[: n - 1] <= 0.5)).sum())
        minutes += seconds / 60
        per_clip.append(
            {"clip": name, "speaker": speaker, "seconds": round(seconds, 2), **figures(pred, true, lab, cue, blended)}
        )
    if not preds:
        raise AlignmentError("no clip could be aligned")
    out = figures(*(np.concatenate(x) for x in (preds, trues, labels, cues, blends)))
    pose = np.median(poses, axis=0) if poses else np.full(2, np.nan)
    return {
        "schema": "toonsync-real-eval/1",
        "settings": {"mouth_gain": mouth_gain, "head_motion": head_motion, "precision": precision},
        "clips": len(per_clip),
        "speakers": sorted({p["speaker"] for p in per_clip}),
        "seconds": round(minutes * 60, 1),
        **out,
        "pose_std_deg": {"yaw": round(float(pose[0]), 2), "pitch": round(float(pose[1]), 2), "clips": len(poses)},
        "blinks_per_min": round(blinks / minutes, 1) if minutes else None,
        "per_clip": per_clip,
        "skipped": skipped,
    }


def evaluate_real(
    clips: list[RealClip] | None = None,
    *,
    mouth_gain: float = MOUTH_GAIN,
    head_motion: float = 1.0,
    precision: str = "fp32",
    animator=None,
    pronunciations: dict[str, str] | None = None,
) -> dict:
    """The figures of the module doc on ``clips`` (default: ``real_clips()``), through the shipped models as a
    render runs them (``mouth_gain`` / ``head_motion`` as in ``RenderOptions``). A clip pocketsphinx cannot
    align is left out and listed under ``skipped``; ``pronunciations`` adds words to its dictionary."""
    clips = real_clips() if clips is None else clips
    aligner, skipped = Aligner(pronunciations=pronunciations), []

    def items():
        for c in clips:
            audio = load_audio(c.path)
            try:
                phones = aligner.align(audio, c.text)
            except AlignmentError as e:
                skipped.append({"clip": c.path.name, "reason": str(e)})
                log.warning("%s: not aligned: %s", c.path.name, e)
                continue
            yield c.path.name, c.speaker, audio, phones

    return _score(
        items(), mouth_gain=mouth_gain, head_motion=head_motion, precision=precision, animator=animator, skipped=skipped
    )


def evaluate_split(
    path: Path,
    *,
    rerecord: bool = True,
    seed: int = 0,
    mouth_gain: float = MOUTH_GAIN,
    head_motion: float = 1.0,
    precision: str = "fp32",
    animator=None,
) -> dict:
    """The same figures on a TTS clip store of one's own (``toonsync corpus build --split test``: held-out voices,
    phone timings known, no alignment): the split to tune on, never the real recordings. With ``rerecord`` each
    clip is first heard through a seeded random recording chain (``training.recording.degrade``)."""
    from .dataset import ClipStore
    from .recording import degrade

    rng = np.random.default_rng(seed)

    def items():
        with ClipStore(path) as store:
            for cid in store.ids():
                c = store[cid]
                if c.audio is None or c.phones is None or c.attrs.get("engine") == "synthetic":
                    continue
                audio = degrade(c.audio, rng) if rerecord else c.audio.astype(np.float32)
                phones = [Phone(lab.decode(), float(a), float(b)) for lab, a, b in c.phones]
                yield cid, f"{c.attrs.get('engine')}:{c.attrs.get('voice')}", audio, phones

    rep = _score(
        items(), mouth_gain=mouth_gain, head_motion=head_motion, precision=precision, animator=animator, skipped=[]
    )
    rep["data"] = {"path": str(path), "rerecorded": rerecord, "seed": seed}
    return rep
