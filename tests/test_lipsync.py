"""The mouth follows the speech: predicted mouth opening (from the rendered landmarks) vs references
built from each clip's phoneme timings and audio, on voices never trained on (flite rms; espeak-ng
accents/variants held out of the corpus).

r_phoneme: vs the step envelope of each phone's opening (bar: >= 0.5)
r_target : vs the co-articulated viseme trajectory
r_energy : vs the RMS energy envelope in dB (a weaker reference: consonant bursts are loud while the
           lips are nearly closed)
Short clips (2-5 s) are noisy one by one, so they are judged as a set (mean), the 10 s demo alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.motion import frame_energy
from toonsync.runtime.mouth import inner_lip_gap

from .conftest import ASSETS, DATA, read_phones

visemes = pytest.importorskip("toonsync.training.visemes", reason="needs toonsync[train]")
HELDOUT = [DATA / "speech_short"] + sorted(p.with_suffix("") for p in (DATA / "heldout").glob("*.wav"))


def lipsync(animator, stem) -> dict:
    audio = load_audio(stem.with_suffix(".wav"))
    phones = [visemes.Phone(*p) for p in read_phones(stem.with_suffix(".phones.txt"))]
    opening = inner_lip_gap(animator.animate(audio, np.zeros((68, 2), np.float32)).landmarks)
    n = opening.size
    return {
        "r_phoneme": np.corrcoef(opening, visemes.mouth_opening_envelope(phones, n))[0, 1],
        "r_target": np.corrcoef(opening, visemes.mouth_trajectory(phones, n)[:, 0])[0, 1],
        "r_energy": np.corrcoef(opening, frame_energy(audio, n))[0, 1],
    }


def test_demo_clip_lipsync(animator, record_property):
    r = lipsync(animator, ASSETS / "demo_speech")
    for k, v in r.items():
        record_property(k, round(float(v), 3))
    print("demo_speech: " + " ".join(f"{k}={v:.3f}" for k, v in r.items()))
    assert r["r_phoneme"] >= 0.5 and r["r_target"] >= 0.5 and r["r_energy"] > 0.2


def test_heldout_voices_lipsync(animator, record_property):
    rs = {s.name: lipsync(animator, s) for s in HELDOUT}
    for name, r in rs.items():
        print(f"{name}: " + " ".join(f"{k}={v:.3f}" for k, v in r.items()))
    mean = {k: float(np.mean([r[k] for r in rs.values()])) for k in ("r_phoneme", "r_target", "r_energy")}
    for k, v in mean.items():
        record_property(f"mean_{k}", round(v, 3))
    print("mean: " + " ".join(f"{k}={v:.3f}" for k, v in mean.items()))
    assert len(rs) >= 5
    assert mean["r_phoneme"] >= 0.5 and mean["r_target"] >= 0.55 and mean["r_energy"] > 0.2
    assert min(r["r_target"] for r in rs.values()) > 0.3  # no held-out voice is left behind


def test_silence_between_sentences_closes_the_mouth(animator):
    a = load_audio(DATA / "speech_short.wav")
    gap = np.zeros(16000, np.float32)
    motion = animator.animate(np.concatenate([a, gap, a]), np.zeros((68, 2), np.float32))
    opening = inner_lip_gap(motion.landmarks)
    k = a.size // 640
    assert opening[k + 8 : k + 20].max() < 0.25 * opening[:k].max()


def test_silence_gate_closes_digital_silence_and_leaves_speech_alone():
    from toonsync.runtime.mouth import SilenceGate

    g = SilenceGate(lookahead=2, abs_db=-50.0, soft_db=6.0, hold=1)
    speech, quiet = -20.0, -60.0
    track = [quiet] * 5 + [speech] * 10 + [quiet] * 10
    gains = [g.gain(track[k], track[k + 1 :]) for k in range(len(track))]
    assert gains[:3] == [0.0, 0.0, 0.0]  # silence, speech not yet within the 2-frame look-ahead
    assert gains[3] == gains[4] == 1.0  # opens before the speech: co-articulation may lead the audio
    assert all(x == 1.0 for x in gains[5:16])  # speech, plus one frame of hold after it
    assert all(x == 0.0 for x in gains[16:])  # closed in the pause
    g.reset()
    hum = [-35.0] * 20  # a steady hum is not digital silence: the model (trained on hums) decides
    assert all(g.gain(hum[k], hum[k + 1 :]) == 1.0 for k in range(20))
    g.reset()
    assert g.gain(-47.0, []) == 0.5  # the soft ramp: halfway over 6 dB above -50 dB


def test_stream_mouth_is_shut_in_a_pause_after_speech(animator):
    """The gate in the runtime: inside a 1 s digital pause the mouth parameters are exactly zero."""
    a = load_audio(DATA / "speech_short.wav")
    motion = animator.animate(np.concatenate([a, np.zeros(16000, np.float32), a]), np.zeros((68, 2), np.float32))
    k = -(-a.size // 640)
    assert np.all(motion.mouth[k + 3 : k + 22] == 0.0)
    assert motion.mouth[:k, 0].max() > 0.3  # and speech still opens it
