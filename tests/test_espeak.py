"""eSpeak NG synthesis with phoneme timings (training/espeak.py), against the real libespeak-ng."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from toonsync.training import espeak
from toonsync.training.visemes import _TABLE

pytestmark = pytest.mark.skipif(
    not espeak.espeak_available(), reason="libespeak-ng is not installed (apt-get install libespeak-ng1 espeak-ng-data)"
)

SR = 16000
TEXT = "The old farmer bought a map of the moon, and my sister fixed the shiny blue bicycle."
VOWELS = {"aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw"}


def _rms(audio: np.ndarray, p: espeak.Phone) -> float:
    seg = audio[int(round(p.start * SR)) : int(round(p.end * SR))].astype(np.float64)
    return float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0


def _f0(audio: np.ndarray) -> float:
    """Median autocorrelation pitch (Hz) over loud 40 ms frames."""
    out = []
    lo, hi = SR // 400, SR // 50
    for i in range(0, audio.size - 640, 320):
        x = audio[i : i + 640].astype(np.float64)
        x = x - x.mean()
        if np.sqrt(np.mean(x**2)) < 0.03:
            continue
        ac = np.correlate(x, x, "full")[639:]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.3 * ac[0]:
            out.append(SR / k)
    assert len(out) > 10
    return float(np.median(out))


def _labels(phones: list[espeak.Phone]) -> list[str]:
    return [p.label for p in phones]


def test_synthesize_sentence_audio_and_phones():
    audio, phones = espeak.synthesize_espeak(TEXT)
    dur = audio.size / SR
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert dur > 1.0 and np.abs(audio).max() <= 1.0 and np.sqrt(np.mean(audio**2)) > 0.01
    assert phones[0].start == 0.0
    assert abs(phones[-1].end - dur) <= 0.04
    for a, b in zip(phones, phones[1:], strict=False):
        assert a.end == pytest.approx(b.start, abs=1e-9)
    assert all(p.end > p.start for p in phones)
    assert all(p.label in _TABLE for p in phones), sorted({p.label for p in phones} - set(_TABLE))
    labs = _labels(phones)
    assert "pau" in labs and sum(lab in VOWELS for lab in labs) >= 15
    # "farmer" in General American is r-coloured, "map" has its bilabials
    assert labs[labs.index("f") : labs.index("f") + 5] == ["f", "aa", "r", "m", "axr"]
    assert {"m", "p", "b", "sh", "s", "k", "dh"} <= set(labs)


@pytest.mark.parametrize("voice,variant", [("en-us", None), ("en-gb-x-rp", "f3"), ("en-gb-scotland", "m3")])
def test_timings_match_the_audio(voice, variant):
    audio, phones = espeak.synthesize_espeak(TEXT, voice, variant)
    vowel = [_rms(audio, p) for p in phones if p.label in VOWELS and p.end - p.start >= 0.03]
    pause = [_rms(audio, p) for p in phones if p.label == "pau" and p.end - p.start >= 0.03]
    assert len(vowel) >= 15 and pause  # the comma gives a real pause
    assert np.median(vowel) > 10 * max(np.median(pause), 1e-5)
    assert np.percentile(vowel, 10) > np.percentile(pause, 90)
    # a stop's silent closure belongs to the stop: /p/ of "map" starts quieter than its vowel
    i = next(k for k, p in enumerate(phones) if p.label == "p")
    onset = espeak.Phone("p", phones[i].start, phones[i].start + 0.01)
    assert _rms(audio, onset) < 0.25 * _rms(audio, phones[i - 1])


def test_variants_and_pitch_change_audio_not_phones():
    base_audio, base_phones = espeak.synthesize_espeak(TEXT)
    runs = {
        "m3": espeak.synthesize_espeak(TEXT, variant="m3"),
        "f2": espeak.synthesize_espeak(TEXT, variant="f2"),
        "klatt": espeak.synthesize_espeak(TEXT, variant="klatt"),
        "low": espeak.synthesize_espeak(TEXT, pitch=20),
        "high": espeak.synthesize_espeak(TEXT, pitch=80),
    }
    for name, (audio, phones) in runs.items():
        assert _labels(phones) == _labels(base_phones), name
        assert audio.size != base_audio.size or not np.array_equal(audio, base_audio), name
    f_low, f_high = _f0(runs["low"][0]), _f0(runs["high"][0])
    assert f_high > 1.3 * f_low, (f_low, f_high)
    assert _f0(runs["f2"][0]) > 1.5 * _f0(runs["m3"][0])  # female variant is higher


def test_deterministic_whatever_ran_before():
    a1, p1 = espeak.synthesize_espeak(TEXT, "en-us", "m1", rate=190, pitch=60)
    espeak.synthesize_espeak("Something else entirely, spoken first!", "en-gb-x-rp", "f4", rate=300, pitch=90)
    a2, p2 = espeak.synthesize_espeak(TEXT, "en-us", "m1", rate=190, pitch=60)
    assert np.array_equal(a1, a2) and p1 == p2


def _digest(text: str) -> tuple[bytes, list[str]]:
    audio, phones = espeak.synthesize_espeak(text, "en-gb-x-rp", "m3", pitch=60)
    return audio.tobytes(), _labels(phones)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_same_result_in_worker_processes(method):
    texts = ["Hello there, how are you?", "Five, four, three, two, one, go!"]
    ref = [_digest(t) for t in texts]
    with ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as ex:
        assert list(ex.map(_digest, texts)) == ref


def test_voices_and_variants_exist():
    voices = espeak.list_voices("en")
    assert {"en", "en-us", "en-gb-scotland", "en-gb-x-rp"} <= set(voices)
    assert not any(v.startswith("mb") for v in voices)
    for v in voices:
        audio, phones = espeak.synthesize_espeak("Testing one two three.", v)
        assert audio.size / SR > 0.5 and all(p.label in _TABLE for p in phones), v
    data = espeak._get_engine().data_path
    for var in espeak.VARIANTS:
        assert (data / "voices" / "!v" / var).is_file(), var
    with pytest.raises(ValueError):
        espeak.synthesize_espeak("hi", variant="no-such-variant")
    with pytest.raises(ValueError):
        espeak.synthesize_espeak("hi", voice="xx-nowhere")


# every mnemonic seen from the 8 English voices on ~2,800 varied sentences (~1.1 M events)
SEEN = (
    "0 3 3: ; ? @ @- @2 @5 @L A: A@ D E I I# I2 IR N O2 O: O@ OI S T U U@ V VR Z _ _! _: _| a a# aI aI2 "
    "aI3 aI@ aU aa b d dZ e@ eI f g h i i: i@ i@3 j k l m n n- o@ oU p r r- s t t# t2 tS t[ u: v w w# x z"
).split()


def test_mnemonic_map_covers_what_espeak_emits():
    for voice in espeak.list_voices("en"):
        for m in SEEN:
            out = espeak.map_mnemonic(m, voice)
            assert out and all(lab in _TABLE for lab in out), (voice, m, out)
    assert all(m in espeak._PHONEMAP or m.startswith("_") for m in SEEN)
    assert espeak.map_mnemonic("A@", "en-us") == ("aa", "r") and espeak.map_mnemonic("A@", "en") == ("aa",)
    assert espeak.map_mnemonic("'tS") == ("ch",) and espeak.map_mnemonic("_:") == ("pau",)
    assert all(lab in _TABLE for lab in espeak.map_mnemonic("y:7"))  # unknown -> nearest, never raises


def test_snap_pauses_moves_a_late_pause_back_to_where_the_audio_falls_quiet():
    # 300 ms of tone, then digital silence; the engine says the pause starts 90 ms into the silence
    audio = np.zeros(SR, np.float32)
    audio[:4800] = 0.3 * np.sin(2 * np.pi * 200 * np.arange(4800) / SR)
    segs = [["pau", 0, 1600], ["aa", 1600, 4800 + 1440], ["pau", 4800 + 1440, SR]]
    espeak._snap_pauses(segs, audio, SR)
    assert segs[1][2] == segs[2][1] == 4800  # snapped to the last loud 5 ms frame
    # bounded: never more than PAUSE_SNAP_MAX_S back, and the phone before keeps >= 30 % of itself
    segs = [["aa", 0, 4800 + 8000], ["pau", 4800 + 8000, SR]]
    espeak._snap_pauses(segs, audio, SR)
    assert segs[1][1] == 4800 + 8000 - int(espeak.PAUSE_SNAP_MAX_S * SR)
    # a pause that starts where the audio is still loud stays where it is; the leading pause too
    segs = [["pau", 0, 1600], ["aa", 1600, 4000], ["pau", 4000, SR]]
    espeak._snap_pauses(segs, audio, SR)
    assert segs == [["pau", 0, 1600], ["aa", 1600, 4000], ["pau", 4000, SR]]


def test_shift_events_corrects_the_measured_latency():
    lag, lead = 160, 480
    ev = [("_", 0), ("h", 1000), ("@", 2000), ("l", 3400), ("oU", 4000), ("_:", 6000), ("D", 9000), ("E", 9800)]
    out = espeak._shift_events(ev, "en-us", lag, lead)
    assert [mn for mn, _ in out] == [mn for mn, _ in ev]
    # first event, pauses and speech right after a pause stay; others move lag earlier, /l/ lag + lead
    assert [s for _, s in out] == [0, 1000, 2000 - lag, 3400 - lag - lead, 4000 - lag, 6000, 9000, 9800 - lag]
    # never more than half of the previous phone (a short /d/ before /l/ is not swallowed)
    out = espeak._shift_events([("_", 0), ("O", 1000), ("d", 3000), ("l", 3280)], "en-us", lag, lead)
    assert [s for _, s in out] == [0, 1000, 3000 - lag, 3000 + 140]


def test_pause_after_speech_starts_where_the_audio_is_quiet():
    """Real espeak-ng: at every pause after speech, the 20 ms before the pause's start is still
    speech and the 40 ms after it is quiet (the event used to fire up to ~150 ms into silence)."""
    for voice, variant in (("en-us", None), ("en-gb-x-rp", "f3"), ("en", "klatt2")):
        audio, phones = espeak.synthesize_espeak(TEXT, voice, variant)
        loud = np.percentile(espeak._frame_rms(audio, SR // 200), 95)
        for k, p in enumerate(phones):
            if p.label != "pau" or k == 0 or p.end - p.start < 0.06:
                continue
            after = espeak.Phone("pau", p.start, p.start + 0.04)
            assert _rms(audio, after) < 0.05 * loud, (voice, variant, p)
