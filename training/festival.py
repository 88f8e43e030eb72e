"""Festival speech with phone-level timings (Debian ``festival`` + an English ``festvox-*`` voice).

Festival's utterance keeps a ``Segment`` relation whose items (phones) carry an ``end`` time;
``utt.save.segs`` writes them next to the wave. Starting festival costs a process and its Scheme
init files, so :func:`synthesize_batch` speaks many utterances in one ``festival -b`` run: it
writes one Scheme script that selects each voice once, sets the rate and pitch per utterance and
saves ``<i>.wav`` + ``<i>.segs`` for each, then reads them all back.

Voices from Debian main: ``kal_diphone`` (festvox-kallpc16k, US male, 16 kHz diphone),
``ked_diphone`` (festvox-kdlpc16k, US male, 16 kHz diphone) and ``cmu_us_slt_arctic_hts``
(festvox-us-slt-hts, US female, 32 kHz HTS). They use festival's ``radio`` phone set (the CMU
set flite reports, plus a few extras); British voices use ``mrpa``. Both map onto the phone
labels of :mod:`training.visemes` (:func:`training.visemes.normalize_phone`).

Rate: ``stretch`` multiplies the voice's own ``Duration_Stretch`` (diphone voices) or divides
the HTS engine's speed (``-r``). Pitch: ``f0_mean`` (Hz) replaces the diphone voices'
``target_f0_mean`` (its spread scaled alike); HTS voices keep their own pitch (festival's HTS glue
ignores the engine's ``-fm`` half-tone shift: measured, same samples).

    audio, phones = synthesize_festival("Hello there.", "kal_diphone")
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from toonsync.runtime.audio_io import to_mono_16k
from toonsync.runtime.errors import ToonsyncError

from .visemes import Phone, normalize_phone

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
# voice -> the Debian main package that ships it (what ``apt-get install`` needs)
VOICE_PACKAGES = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}
TIMEOUT_PER_UTTERANCE_S = 20.0
# a synthesized wave and its last segment end may differ by a pitch period or a frame; more than
# this means the segments do not describe the wave
MAX_END_MISMATCH_S = 0.05


class FestivalError(ToonsyncError, RuntimeError):
    """festival is missing, failed, or returned segments that do not match its wave."""


@dataclass(frozen=True)
class Request:
    """One utterance: ``voice`` is a festival voice name (see :func:`list_voices`)."""

    text: str
    voice: str
    stretch: float = 1.0  # > 1: slower
    f0_mean: float | None = None  # Hz; None: the voice's own


def festival_binary() -> str | None:
    return shutil.which("festival")


@lru_cache(maxsize=1)
def _installed_voices() -> tuple[str, ...]:
    exe = festival_binary()
    if exe is None:
        return ()
    with tempfile.TemporaryDirectory(prefix="toonsync-festival-") as td:
        script = Path(td) / "voices.scm"
        script.write_text('(format t "toonsync-voices %l\\n" (voice.list))\n')
        try:
            out = subprocess.run([exe, "-b", str(script)], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError) as e:
            log.debug("festival unusable: %s", e)
            return ()
    for line in out.splitlines():
        if line.startswith("toonsync-voices "):
            return tuple(line.split(" ", 1)[1].strip("() \n").split())
    return ()


def list_voices() -> tuple[str, ...]:
    """Festival voices installed here (empty when festival is not installed)."""
    return _installed_voices()


def festival_available(voice: str | None = None) -> bool:
    """True if festival runs and has ``voice`` (or any voice)."""
    voices = list_voices()
    return voice in voices if voice else bool(voices)


def missing_reason(voice: str | None = None) -> str:
    """Why :func:`festival_available` is False, with the packages that fix it."""
    if festival_binary() is None:
        return f"festival is not installed (apt-get install festival {' '.join(VOICE_PACKAGES.values())})"
    pkg = VOICE_PACKAGES.get(voice or "", " ".join(VOICE_PACKAGES.values()))
    return f"festival voice {voice or '(any)'} is not installed (apt-get install {pkg})"


def _scheme_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


_PRELUDE = """
(define (toonsync_set_f0 base f0)
  "int_lr_params with target_f0_mean f0 and the target spread scaled alike."
  (let ((mean (cadr (assoc 'target_f0_mean base))) (std (cadr (assoc 'target_f0_std base))))
    (list (list 'target_f0_mean f0) (list 'target_f0_std (* std (/ f0 mean)))
          (assoc 'model_f0_mean base) (assoc 'model_f0_std base))))
(define (toonsync_voice name)
  (voice.select name)
  (set! toonsync_stretch (or (Parameter.get 'Duration_Stretch) 1.0))
  (set! toonsync_lr (and (boundp 'int_lr_params) int_lr_params))
  (set! toonsync_hts (and (eq? (Parameter.get 'Synth_Method) 'HTS) hts_engine_params))
  (format t "toonsync-phoneset %s %s\\n" name (cadr (assoc 'name (PhoneSet.description '(name))))))
(define (toonsync_say i text stretch f0 wav segs)
  (unwind-protect
    (let ((utt (eval (list 'Utterance 'Text text))))  ; Utterance does not evaluate its arguments
      (Parameter.set 'Duration_Stretch (* toonsync_stretch stretch))
      (if toonsync_hts
          (set! hts_engine_params (append toonsync_hts (list (list "-r" (/ 1.0 stretch))))))
      (if (and toonsync_lr (not toonsync_hts))
          (set! int_lr_params (if f0 (toonsync_set_f0 toonsync_lr f0) toonsync_lr)))
      (utt.synth utt)
      (utt.save.wave utt wav 'riff)
      (utt.save.segs utt segs))
    (format t "toonsync-failed %d\\n" i)))
"""


def _script(requests: Sequence[Request], td: Path) -> str:
    lines = [_PRELUDE]
    voice = None
    for i, r in enumerate(requests):
        if r.voice != voice:  # names come from list_voices() (checked by the caller): plain symbols
            voice = r.voice
            lines.append(f"(toonsync_voice '{voice})")
        f0 = f"{r.f0_mean:.1f}" if r.f0_mean else "nil"
        wav, segs = _scheme_string(str(td / f"{i}.wav")), _scheme_string(str(td / f"{i}.segs"))
        lines.append(f"(toonsync_say {i} {_scheme_string(r.text)} {r.stretch:.4f} {f0} {wav} {segs})")
    return "\n".join(lines) + "\n"


def read_segs(path: Path) -> list[tuple[str, float]]:
    """``utt.save.segs`` output: (label, end seconds) per segment, after the ``#`` header."""
    out, body = [], False
    for line in path.read_text().splitlines():
        if not body:
            body = line.strip() == "#"
            continue
        parts = line.split()
        if len(parts) >= 3:
            out.append((parts[2], float(parts[0])))
    return out


def phones_from_segs(segs: list[tuple[str, float]], duration: float, phoneset: str) -> list[Phone]:
    """Contiguous phones from (label, end) segments, mapped to visemes' labels, the last ending at
    ``duration`` (the wave's length). Raises :class:`FestivalError` if the segments and the wave
    disagree by more than ``MAX_END_MISMATCH_S``."""
    if not segs:
        raise FestivalError("festival returned no segments")
    if abs(segs[-1][1] - duration) > MAX_END_MISMATCH_S:
        raise FestivalError(f"festival segments end at {segs[-1][1]:.3f} s but the wave lasts {duration:.3f} s")
    phones: list[Phone] = []
    start = 0.0
    for i, (label, end) in enumerate(segs):
        end = duration if i == len(segs) - 1 else min(end, duration)
        lab = normalize_phone(label, phoneset)
        if end <= start:
            continue
        if phones and lab == "pau" and phones[-1].label == "pau":
            phones[-1] = Phone("pau", phones[-1].start, end)
        else:
            phones.append(Phone(lab, start, end))
        start = end
    return phones


def synthesize_batch(
    requests: Sequence[Request], timeout_s: float | None = None
) -> list[tuple[np.ndarray, list[Phone]]]:
    """Speak every request in one festival process (requests of one voice are best kept together:
    each change of voice reloads it). Returns 16 kHz mono float32 audio in [-1, 1] and contiguous
    timed phones covering it, per request, in order."""
    exe = festival_binary()
    if exe is None:
        raise FestivalError(missing_reason())
    for v in {r.voice for r in requests}:
        if not festival_available(v):
            raise FestivalError(missing_reason(v))
    if not requests:
        return []
    with tempfile.TemporaryDirectory(prefix="toonsync-festival-") as tmp:
        td = Path(tmp)
        script = td / "batch.scm"
        script.write_text(_script(requests, td))
        timeout = timeout_s or 30.0 + TIMEOUT_PER_UTTERANCE_S * len(requests)
        try:
            res = subprocess.run([exe, "-b", str(script)], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise FestivalError(f"festival took over {timeout:.0f} s for {len(requests)} utterances") from e
        phonesets = {}
        for line in res.stdout.splitlines():
            if line.startswith("toonsync-phoneset "):
                _, voice, ps = line.split()
                phonesets[voice] = ps
        out = []
        for i, r in enumerate(requests):
            wav, segs = td / f"{i}.wav", td / f"{i}.segs"
            if not (wav.is_file() and segs.is_file()):
                err = (res.stderr.strip().splitlines() or ["no message"])[-1]
                raise FestivalError(f"festival failed on {r.text!r} (voice {r.voice}): {err}")
            audio, sr = sf.read(wav, dtype="float32")
            audio = to_mono_16k(audio, sr) if sr != SAMPLE_RATE else audio
            duration = audio.size / SAMPLE_RATE
            out.append(
                (audio.astype(np.float32), phones_from_segs(read_segs(segs), duration, phonesets.get(r.voice, "radio")))
            )
    return out


def synthesize_festival(
    text: str, voice: str = "kal_diphone", stretch: float = 1.0, f0_mean: float | None = None
) -> tuple[np.ndarray, list[Phone]]:
    """One utterance (see :func:`synthesize_batch`; batch many for speed)."""
    return synthesize_batch([Request(text, voice, stretch, f0_mean)])[0]
