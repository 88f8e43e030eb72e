"""Festival as the held-out TTS engine (training/festival.py, training/corpus.py), against the real festival."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from toonsync.training import corpus, festival
from toonsync.training.visemes import _TABLE, normalize_phone

SR = 16000
TEXT = "The old farmer bought a map of the moon, and my sister fixed the shiny blue bicycle."
VOWELS = {"aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"}
needs_festival = pytest.mark.skipif(not festival.festival_available(), reason=festival.missing_reason())
MRPA = (
    "p",
    "b",
    "t",
    "d",
    "k",
    "g",
    "s",
    "z",
    "sh",
    "zh",
    "f",
    "v",
    "th",
    "dh",
    "ch",
    "jh",
    "h",
    "m",
    "n",
    "ng",
    "l",
    "r",
    "w",
    "y",
    "#",
    "uh",
    "e",
    "a",
    "o",
    "i",
    "u",
    "ii",
    "uu",
    "oo",
    "aa",
    "@",
    "@@",
    "ai",
    "ei",
    "oi",
    "au",
    "ou",
    "e@",
    "i@",
    "u@",
)  # festival's mrpa phone set (British voices)
FEST_VOICES = tuple(v for v in corpus.HELDOUT_VOICES if v.startswith("festival:"))


def _rms(audio: np.ndarray, start: float, end: float) -> float:
    seg = audio[int(round(start * SR)) : int(round(end * SR))].astype(np.float64)
    return float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0


@needs_festival
def test_every_voice_in_one_batch_timings_match_the_audio():
    voices = [v for v in festival.list_voices() if v in festival.VOICE_PACKAGES]
    assert voices, "no Debian-main English festival voice installed"
    out = festival.synthesize_batch([festival.Request(TEXT, v) for v in voices])
    for voice, (audio, phones) in zip(voices, out, strict=True):
        dur = audio.size / SR
        assert audio.dtype == np.float32 and dur > 2.0 and np.abs(audio).max() <= 1.0
        assert phones[0].start == 0.0 and phones[-1].end == pytest.approx(dur, abs=1e-6)
        for a, b in zip(phones, phones[1:]):
            assert a.end == pytest.approx(b.start) and a.end > a.start
        labs = [p.label for p in phones]
        assert set(labs) <= set(_TABLE), (voice, sorted(set(labs) - set(_TABLE)))
        assert " m ae p " in f" {' '.join(labs)} ", voice  # "map"
        vowel = [_rms(audio, p.start, p.end) for p in phones if p.label in VOWELS and p.end - p.start >= 0.03]
        pause = [_rms(audio, p.start, p.end) for p in phones if p.label == "pau" and p.end - p.start >= 0.03]
        assert len(vowel) >= 15 and pause
        assert np.median(vowel) > 10 * max(np.median(pause), 1e-5), voice


@needs_festival
def test_batch_equals_single_and_rate_pitch_apply():
    voice = "kal_diphone" if festival.festival_available("kal_diphone") else festival.list_voices()[0]
    reqs = [
        festival.Request("Wow, that is amazing!", voice, 1.3),
        festival.Request("Please pass the pepper.", voice),
        festival.Request("Please pass the pepper.", voice, 1.0, 200.0),
    ]
    batch = festival.synthesize_batch(reqs)
    single = festival.synthesize_festival("Please pass the pepper.", voice)
    assert np.array_equal(batch[1][0], single[0]) and batch[1][1] == single[1]  # no state leaks between utterances
    slow = festival.synthesize_festival("Wow, that is amazing!", voice, stretch=1.0)
    assert batch[0][0].size > 1.15 * slow[0].size  # stretch 1.3
    if voice.endswith("_diphone"):  # diphone voices take a target pitch; the HTS voice keeps its own
        assert not np.array_equal(batch[2][0], batch[1][0])


def test_phone_sets_map_to_viseme_labels():
    assert [normalize_phone(p) for p in ("dx", "en", "hv", "pau", "ax", "brth")] == ["d", "n", "hh", "pau", "ax", "pau"]
    assert [normalize_phone(p, "mrpa") for p in ("uh", "@@", "#", "oo", "ou")] == ["ah", "er", "pau", "ao", "ow"]
    assert all(normalize_phone(p, "mrpa") in _TABLE for p in MRPA)


def test_segments_that_do_not_match_the_wave_are_refused(tmp_path):
    segs = tmp_path / "x.segs"
    segs.write_text(
        "EST_File Segment\nDataType ascii\nEST_Header_End\n#\n0.2 100 pau\n0.5 100 hh\n0.9 100 ax\n1.0 100 pau\n"
    )
    parsed = festival.read_segs(segs)
    assert parsed == [("pau", 0.2), ("hh", 0.5), ("ax", 0.9), ("pau", 1.0)]
    phones = festival.phones_from_segs(parsed, 1.03, "radio")  # diphone waves run ~25 ms past the last segment
    assert phones[-1].end == 1.03 and phones[0].start == 0.0
    with pytest.raises(festival.FestivalError, match="wave lasts"):
        festival.phones_from_segs(parsed, 1.5, "radio")


def test_festival_is_held_out_of_training_builds(tmp_path):
    assert not any(v.startswith("festival:") for v in corpus.TRAIN_VOICES)
    assert FEST_VOICES and "festival" in corpus.HELDOUT_ENGINES
    with pytest.raises(corpus.HeldOutError, match="held out"):
        corpus.build(tmp_path / "t.h5", 0.1, "train", voices=("flite:slt", "festival:kal_diphone"))
    with pytest.raises(corpus.HeldOutError):
        corpus.check_split(("festival:some_new_voice",), "train")  # the whole engine, any voice
    assert not (tmp_path / "t.h5").exists()


@pytest.mark.skipif(not corpus.flite_available(), reason="flite is not installed (apt-get install flite)")
def test_train_build_never_contains_festival(tmp_path):
    from toonsync.training.dataset import ClipStore

    corpus.build(tmp_path / "train.h5", 0.3, "train", seed=0, workers=1)
    with ClipStore(tmp_path / "train.h5") as store:
        engines = {store[i].attrs["engine"] for i in store.ids()}
    assert "festival" not in engines and engines & {"flite", "espeak"}


@needs_festival
def test_test_build_has_festival_clips_and_eval_reports_them(tmp_path):
    from toonsync.training.dataset import ClipStore
    from toonsync.training.eval_report import evaluate_store

    voices = ("flite:rms",) + FEST_VOICES if corpus.flite_available() else FEST_VOICES
    corpus.build(tmp_path / "test.h5", 0.5, "test", seed=1, workers=1, voices=voices)
    with ClipStore(tmp_path / "test.h5") as store:
        fest = [store[i] for i in store.ids() if store[i].attrs["engine"] == "festival"]
        assert fest and all(c.attrs["split"] == "test" for c in fest)
        for c in fest:
            assert c.attrs["voice"] in festival.VOICE_PACKAGES
            assert abs(float(c.phones["end"][-1]) - c.audio.size / SR) < 0.04  # audio trimmed to whole frames
            assert c.mouth.shape[0] == c.audio.size // 640 and c.mouth[:, 0].max() > 0.5
    rep, _, _ = evaluate_store(tmp_path / "test.h5", lambda c: c.mouth)  # perfect predictions
    by = rep.get("by_engine", {"festival": rep})
    assert by["festival"]["clips"] == len(fest) and by["festival"]["r_target"] == pytest.approx(1.0)


def test_missing_festival_is_skipped_with_reason(monkeypatch, caplog):
    monkeypatch.setattr(festival, "festival_binary", lambda: None)
    monkeypatch.setattr(festival, "list_voices", lambda: ())
    assert not festival.festival_available()
    with pytest.raises(festival.FestivalError, match="apt-get install festival"):
        festival.synthesize_festival("Hello.")
    if not corpus.flite_available():
        pytest.skip("flite is not installed: no other engine to keep")
    with caplog.at_level(logging.WARNING, logger="toonsync.training.corpus"):
        kept = corpus.available_voices(("flite:rms",) + FEST_VOICES)
    assert kept == ("flite:rms",)
    assert sum("festival is not installed" in r.getMessage() for r in caplog.records) == 1
