"""pocketsphinx cross-check of the corpus' engine timings (training/align_check.py)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import soundfile as sf

from toonsync.training import align_check as ac
from toonsync.training.visemes import Phone

from .conftest import read_phones

needs_ps = pytest.mark.skipif(not ac.pocketsphinx_available(), reason=ac.MISSING_REASON)
# stated tolerance for a clean flite clip: pocketsphinx works in 10 ms frames
MEDIAN_MS, WITHIN_40_PCT, OFFSET_MS = 20.0, 90.0, 15.0


@pytest.fixture(scope="module")
def aligner():
    return ac.Aligner()


@pytest.fixture(scope="module")
def flite_clip(data_dir):
    audio, sr = sf.read(data_dir / "speech_short.wav", dtype="float32")
    assert sr == 16000
    phones = [Phone(*p) for p in read_phones(data_dir / "speech_short.phones.txt")]
    return audio, phones, (data_dir / "speech_short.txt").read_text().strip()


@pytest.fixture(scope="module")
def aligned(aligner, flite_clip):
    audio, _, text = flite_clip
    return aligner.align(audio, text)


@needs_ps
def test_real_flite_clip_agrees_with_pocketsphinx(flite_clip, aligned):
    _, phones, _ = flite_clip
    assert aligned[0].label == "sil" and aligned[0].end > 0.08  # the leading pause is found (136 ms)
    assert [p.label for p in aligned if p.label != "sil"][:4] == ["p", "l", "iy", "z"]
    diffs, boundaries, agree = ac.compare(phones, aligned)
    s = ac.summarize(diffs)
    assert boundaries == len(phones) - 1 and len(diffs) >= 0.9 * boundaries and agree >= 0.95
    assert s["median_abs_ms"] <= MEDIAN_MS, s
    assert s["within_40ms_pct"] >= WITHIN_40_PCT, s
    assert abs(s["offset_ms"]) <= OFFSET_MS, s


@needs_ps
def test_a_timing_error_shows_up_as_an_offset(flite_clip, aligned):
    _, phones, _ = flite_clip
    late = [Phone(p.label, p.start + 0.06 if i else 0.0, p.end + 0.06) for i, p in enumerate(phones)]
    s = ac.summarize(ac.compare(late, aligned)[0])
    base = ac.summarize(ac.compare(phones, aligned)[0])
    assert s["offset_ms"] - base["offset_ms"] == pytest.approx(60, abs=12)
    assert s["within_20ms_pct"] < 30


@needs_ps
def test_festival_timings_agree_with_pocketsphinx(aligner):
    from toonsync.training import festival

    if not festival.festival_available("kal_diphone"):
        pytest.skip(festival.missing_reason("kal_diphone"))
    text = "The old farmer bought a map of the moon, and my sister fixed the shiny blue bicycle."
    audio, phones = festival.synthesize_festival(text, "kal_diphone")
    diffs, boundaries, agree = ac.compare(phones, aligner.align(audio, text))
    s = ac.summarize(diffs)
    assert len(diffs) >= 0.8 * boundaries and agree >= 0.9
    assert (
        s["median_abs_ms"] <= MEDIAN_MS and s["within_40ms_pct"] >= WITHIN_40_PCT and abs(s["offset_ms"]) <= OFFSET_MS
    ), s


def test_compare_pairs_only_boundaries_both_sequences_share():
    eng = [
        Phone("pau", 0, 0.1),
        Phone("hh", 0.1, 0.2),
        Phone("ax", 0.2, 0.3),
        Phone("l", 0.3, 0.4),
        Phone("ow", 0.4, 0.6),
        Phone("pau", 0.6, 0.65),
        Phone("pau", 0.65, 0.8),
    ]
    ps = [
        Phone("sil", 0, 0.11),
        Phone("hh", 0.11, 0.2),
        Phone("ah", 0.2, 0.33),
        Phone("l", 0.33, 0.4),  # ax = ah
        Phone("aw", 0.4, 0.58),
        Phone("sil", 0.58, 0.8),
    ]  # ow != aw: boundaries on either side of it are not compared
    diffs, boundaries, agree = ac.compare(eng, ps)
    assert boundaries == 5  # the two pauses are merged
    assert np.allclose(diffs, [-10, 0, -30])
    assert agree == pytest.approx(5 / 6)
    s = ac.summarize(diffs)
    assert s["boundaries"] == 3 and s["median_abs_ms"] == 10 and s["offset_ms"] == -10
    assert s["within_20ms_pct"] == pytest.approx(66.7) and s["within_40ms_pct"] == 100
    assert ac.summarize([]) == {"boundaries": 0}
    assert [ac.to_common(x) for x in ("AX", "axr", "+NSN+", "<sil>", "pau", "EH1", "dx")] == [
        "ah",
        "er",
        "sil",
        "sil",
        "sil",
        "eh",
        "d",
    ]
    assert ac.words_of("Five, four... owl's feather? No!") == ["five", "four", "owl's", "feather", "no"]


@needs_ps
def test_possessives_missing_from_the_dictionary_are_added(aligner):
    d = aligner._decoder(100)
    assert aligner._known(d, "owl's") == "owl's" and d.lookup_word("owl's") == "AW L Z"
    with pytest.raises(ac.AlignmentError, match="dictionary"):
        aligner._known(d, "zqxv")


@needs_ps
def test_corpus_check_report_and_cli(tmp_path, flite_clip):
    from toonsync.cli import main
    from toonsync.training.dataset import Clip, phones_array, write_clips

    audio, phones, text = flite_clip
    arr = phones_array([(p.label, p.start, p.end) for p in phones])
    clips = [
        Clip(
            "test_flite:rms_0",
            audio=audio,
            phones=arr,
            attrs=dict(text=text, voice="rms", engine="flite", split="test"),
        ),
        Clip(
            "test_festival:kal_0",
            audio=audio,
            phones=arr,
            attrs=dict(text=text, voice="kal_diphone", engine="festival", split="test"),
        ),
        Clip(
            "test_nonspeech_0",
            audio=np.zeros(16000, np.float32),
            phones=phones_array([("pau", 0, 1)]),
            attrs=dict(text="", voice="nonspeech", engine="synthetic", split="test"),
        ),
    ]
    write_clips(tmp_path / "c.h5", clips, compute_mel=False)
    out = tmp_path / "runs" / "check.json"
    assert main(["corpus", "check", "--corpus", str(tmp_path / "c.h5"), "--sample", "5", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert set(rep["by_engine"]) == {"flite", "festival"}  # non-speech clips are not checked
    for r in rep["by_engine"].values():
        assert r["clips"] == 1 and r["failed"] == 0 and r["voices"] == 1
        assert {
            "median_abs_ms",
            "p90_abs_ms",
            "within_20ms_pct",
            "within_40ms_pct",
            "offset_ms",
            "boundaries",
            "compared_pct",
            "label_agreement_pct",
            "fallback_frate_clips",
        } <= set(r)
        assert r["median_abs_ms"] <= MEDIAN_MS
    assert rep["overall"]["boundaries"] == 2 * rep["by_engine"]["flite"]["boundaries"]
    assert "pocketsphinx" in rep["aligner"] and rep["frames_per_s"][0] == 100
    assert main(["corpus", "check", "--corpus", str(tmp_path / "missing.h5")]) == 1
    assert main(["-q", "corpus", "check"]) == 1 and main(["-q", "corpus", "build"]) == 1  # --corpus / -o missing


def test_missing_pocketsphinx_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # import pocketsphinx -> ImportError
    assert not ac.pocketsphinx_available()
    with pytest.raises(ac.AlignmentError, match="pip install"):
        ac.Aligner()
