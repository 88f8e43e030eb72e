"""Cross-check the TTS engines' phone timings with pocketsphinx forced alignment.

The corpus' mouth targets come from each engine's own account of when it spoke each phone. This
module asks an independent acoustic model how far that account is from what the audio shows: it
force-aligns every sampled clip's text with pocketsphinx (PyPI ``pocketsphinx`` 5.x: en-us
acoustic model + CMU dictionary inside the wheel), maps both phone sequences onto one ARPAbet set
(``ax`` -> ``ah``, ``axr`` -> ``er``, pauses and fillers -> ``sil``), pairs them up with an edit
distance alignment, and compares the boundaries the two agree on: the start of phone ``i`` where
phones ``i-1`` and ``i`` carry the same labels, consecutive, in both sequences.

Per engine: median and 90th-percentile absolute boundary difference (ms), the share within 20 and
40 ms, and the signed offset (median of engine minus pocketsphinx: > 0 means the engine's
boundaries lag the audio, < 0 lead it). pocketsphinx works in 10 ms frames (5 ms for the clips
that only align at 200 frames/s, see :class:`Aligner`), so differences come in those steps.

    toonsync corpus check --corpus corpus/test.h5 --sample 30 --json runs/align_check.json
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.errors import ToonsyncError
from toonsync.training.dataset import ClipStore

from .visemes import Phone, normalize_phone

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
PAD_S = 0.1  # digital silence added before and after: lets the aligner place a leading pause
_DECODER_ARGS = dict(bestpath=False, beam=1e-100, wbeam=1e-80, pbeam=1e-100)  # wide beams: alignment must not fail
_SIL = "sil"
_ARPABET = {"ax": "ah", "axr": "er", "pau": _SIL}  # cmudict has no reduced vowels; our pauses are its silence


class AlignmentError(ToonsyncError, RuntimeError):
    """pocketsphinx is missing, does not know a word, or could not align a clip."""


def pocketsphinx_available() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


MISSING_REASON = "pocketsphinx is not installed (pip install 'pocketsphinx>=5' or toonsync[train])"


def to_common(label: str) -> str:
    """A phone label (visemes/flite/festival lower case, pocketsphinx upper case, fillers such as
    ``+NSN+``) in the shared ARPAbet set."""
    lab = label.strip().lower().rstrip("012")
    if lab.startswith(("+", "<")):
        return _SIL
    lab = normalize_phone(lab)  # festival/flite radio extras (dx, en, hv, brth ...) -> the viseme labels
    return _ARPABET.get(lab, lab)


def words_of(text: str) -> list[str]:
    """pocketsphinx wants lower-case words without punctuation (apostrophes inside words stay)."""
    return re.findall(r"[a-z]+(?:'[a-z]+)*", text.lower())


def _merge(phones: list[Phone]) -> list[Phone]:
    """Common labels; adjacent pauses merged into one."""
    out: list[Phone] = []
    for p in phones:
        lab = to_common(p.label)
        if out and lab == _SIL and out[-1].label == _SIL:
            out[-1] = Phone(_SIL, out[-1].start, p.end)
        else:
            out.append(Phone(lab, p.start, p.end))
    return out


class Aligner:
    """pocketsphinx forced alignment at 100 frames/s and, for a clip whose word pass does not reach
    the end of its grammar there (a third of the held-out espeak-ng clips), again at 200 frames/s
    (shorter minimum phone durations). Decoders (about 0.2 s each to load) are reused for every clip."""

    def __init__(self, frates: tuple[int, ...] = (100, 200), pronunciations: dict[str, str] | None = None) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise AlignmentError(MISSING_REASON) from e
        self._new_decoder = Decoder
        self.frates = frates
        self.pronunciations = dict(pronunciations or {})  # word -> ARPAbet, for words the dictionary lacks
        self._decoders: dict[int, object] = {}
        self.last_frate: int | None = None  # the frame rate that aligned the last clip

    def _decoder(self, frate: int):
        if frate not in self._decoders:
            # loglevel FATAL: a failed alignment is reported through AlignmentError, not on stderr
            self._decoders[frate] = self._new_decoder(
                samprate=SAMPLE_RATE, lm=None, loglevel="FATAL", frate=frate, **_DECODER_ARGS
            )
        return self._decoders[frate]

    def _known(self, d, word: str) -> str:
        """``word`` itself, after adding it from ``pronunciations`` or as a possessive (``owl's`` = ``owl`` + Z)
        when the dictionary lacks it."""
        if d.lookup_word(word) is not None:
            return word
        if word in self.pronunciations:
            d.add_word(word, self.pronunciations[word], True)
            return word
        base = word[:-2] if word.endswith("'s") else None
        pron = d.lookup_word(base) if base else None
        if pron is None:
            raise AlignmentError(f"{word!r} is not in pocketsphinx's dictionary")
        d.add_word(word, pron + (" IH Z" if pron.split()[-1] in ("S", "Z", "SH", "ZH", "CH", "JH") else " Z"), True)
        return word

    @staticmethod
    def _decode(d, pcm: bytes) -> None:
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()

    def _align_at(self, frate: int, words: list[str], pcm: bytes, duration: float) -> list[Phone]:
        d = self._decoder(frate)
        try:
            d.set_align_text(" ".join(self._known(d, w) for w in words))
            self._decode(d, pcm)  # pass 1: words
            d.set_alignment()
            self._decode(d, pcm)  # pass 2: phones and states inside those words
            alignment = d.get_alignment()
        except RuntimeError as e:
            raise AlignmentError(f"pocketsphinx could not align {' '.join(words)!r} at {frate} frames/s: {e}") from e
        if alignment is None:
            raise AlignmentError(f"pocketsphinx returned no alignment for {' '.join(words)!r}")
        phones = []
        for p in alignment.phones():
            a = min(max(p.start / frate - PAD_S, 0.0), duration)
            b = min(max((p.start + p.duration) / frate - PAD_S, 0.0), duration)
            if b > a:
                phones.append(Phone(p.name, a, b))
        return _merge(phones)

    def align(self, audio: np.ndarray, text: str) -> list[Phone]:
        """Phones of ``text`` in 16 kHz mono ``audio`` (float in [-1, 1]), common labels, seconds."""
        words = words_of(text)
        if not words:
            raise AlignmentError(f"nothing to align in {text!r}")
        pad = np.zeros(int(PAD_S * SAMPLE_RATE), np.int16)
        pcm = np.concatenate([pad, (np.clip(audio, -1, 1) * 32767).astype(np.int16), pad]).tobytes()
        err = AlignmentError("no frame rate to align at")
        for frate in self.frates:
            try:
                phones = self._align_at(frate, words, pcm, audio.size / SAMPLE_RATE)
            except AlignmentError as e:
                err = e
                continue
            self.last_frate = frate
            return phones
        raise err


def _pair(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
    """Index pairs of a minimum edit distance alignment (unit costs) of two label sequences:
    equal labels and substitutions, in order."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


@dataclass
class ClipCheck:
    """Boundary comparison of one clip: ``diffs_ms`` = engine minus pocketsphinx, per shared boundary."""

    clip_id: str
    engine: str
    voice: str
    diffs_ms: list[float] = field(default_factory=list)
    boundaries: int = 0  # boundaries in the engine's own sequence (between its phones)
    label_agreement: float = 0.0  # share of the engine's phones paired with the same label
    frate: int = 0  # pocketsphinx frames per second that aligned it


def compare(engine_phones: list[Phone], aligned: list[Phone]) -> tuple[list[float], int, float]:
    """(engine minus aligner boundary differences in ms, engine boundaries, label agreement)."""
    ref, hyp = _merge(engine_phones), aligned
    pairs = _pair([p.label for p in ref], [p.label for p in hyp])
    same = [(i, j) for i, j in pairs if ref[i].label == hyp[j].label]
    diffs = [
        (ref[i].start - hyp[j].start) * 1000.0
        for (pi, pj), (i, j) in zip(same, same[1:], strict=False)
        if i == pi + 1 and j == pj + 1
    ]
    return diffs, max(len(ref) - 1, 0), len(same) / max(len(ref), 1)


def summarize(diffs_ms: list[float] | np.ndarray) -> dict:
    """Agreement figures of a set of boundary differences (engine minus aligner, ms)."""
    d = np.asarray(diffs_ms, np.float64)
    if d.size == 0:
        return {"boundaries": 0}
    a = np.abs(d)
    return {
        "boundaries": int(d.size),
        "median_abs_ms": round(float(np.median(a)), 1),
        "p90_abs_ms": round(float(np.percentile(a, 90)), 1),
        "within_20ms_pct": round(float((a <= 20).mean() * 100), 1),
        "within_40ms_pct": round(float((a <= 40).mean() * 100), 1),
        "offset_ms": round(float(np.median(d)), 1),
        "mean_signed_ms": round(float(d.mean()), 1),
    }


def check_clip(aligner: Aligner, clip: Any) -> ClipCheck:
    """Align one corpus clip (``runtime.dataset.Clip`` with audio, phones and its text)."""
    phones = [Phone(p["label"].decode(), float(p["start"]), float(p["end"])) for p in clip.phones]
    got = ClipCheck(clip.clip_id, str(clip.attrs.get("engine", "?")), str(clip.attrs.get("voice", "?")))
    got.diffs_ms, got.boundaries, got.label_agreement = compare(phones, aligner.align(clip.audio, clip.attrs["text"]))
    got.frate = aligner.last_frate or aligner.frates[0]
    return got


def _engine_report(checks: list[ClipCheck], failed: int, primary_frate: int) -> dict:
    diffs = [d for c in checks for d in c.diffs_ms]
    rep = summarize(diffs)
    rep.update(
        clips=len(checks),
        failed=failed,
        voices=len({c.voice for c in checks}),
        fallback_frate_clips=sum(c.frate != primary_frate for c in checks),
        compared_pct=round(100 * len(diffs) / max(sum(c.boundaries for c in checks), 1), 1),
        label_agreement_pct=round(100 * float(np.mean([c.label_agreement for c in checks])), 1) if checks else None,
    )
    return rep


def check_corpus(path: Path, sample: int = 30, seed: int = 0, split: str | None = None) -> dict:
    """Align up to ``sample`` random speech clips per engine of a corpus ``.h5``; the report dict."""
    aligner = Aligner()
    rng = np.random.default_rng(seed)
    with ClipStore(path) as store:
        by_engine: dict[str, list[str]] = {}
        for cid in store.ids(split):
            attrs = store[cid].attrs
            if attrs.get("text") and attrs.get("engine") not in (None, "synthetic"):
                by_engine.setdefault(str(attrs["engine"]), []).append(cid)
        if not by_engine:
            raise AlignmentError(f"{path} holds no speech clips with text to check")
        report: dict = {
            "corpus": str(path),
            "sample_per_engine": sample,
            "seed": seed,
            "aligner": _aligner_name(),
            "frames_per_s": list(aligner.frates),
            "sign": "engine minus pocketsphinx: offset_ms > 0 = the engine's boundaries lag the audio",
            "by_engine": {},
        }
        every: list[float] = []
        for engine in sorted(by_engine):
            ids = by_engine[engine]
            pick = sorted(rng.choice(len(ids), size=min(sample, len(ids)), replace=False))
            checks, failed = [], 0
            for k in pick:
                try:
                    checks.append(check_clip(aligner, store[ids[k]]))
                except AlignmentError as e:
                    failed += 1
                    log.warning("%s: %s", ids[k], e)
            report["by_engine"][engine] = _engine_report(checks, failed, aligner.frates[0])
            every += [d for c in checks for d in c.diffs_ms]
            log.info("%s: %s", engine, report["by_engine"][engine])
    report["overall"] = summarize(every)
    return report


def _aligner_name() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"pocketsphinx {version('pocketsphinx')} (bundled en-us model, cmudict)"
    except PackageNotFoundError:
        return "pocketsphinx"


def write_report(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")


def check_cli(corpus: Path, sample: int, json_out: Path | None, seed: int = 0) -> dict:
    """``toonsync corpus check``: the report, also written to ``json_out`` when given."""
    if not corpus.is_file():
        from toonsync.runtime.errors import InputNotFound

        raise InputNotFound(f"corpus not found: {corpus} (toonsync corpus build -o {corpus} --split test)")
    rep = check_corpus(corpus, sample, seed)
    for engine, r in rep["by_engine"].items():
        log.info(
            "%-9s %3d clips, %5d boundaries: median %s ms, p90 %s ms, %s%% <= 20 ms, %s%% <= 40 ms, offset %s ms",
            engine,
            r["clips"],
            r["boundaries"],
            r.get("median_abs_ms"),
            r.get("p90_abs_ms"),
            r.get("within_20ms_pct"),
            r.get("within_40ms_pct"),
            r.get("offset_ms"),
        )
    if json_out:
        write_report(rep, json_out)
        log.info("wrote %s", json_out)
    return rep
