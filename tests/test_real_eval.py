"""``toonsync eval real``: lip-sync on real human recordings, force-aligned with pocketsphinx."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from toonsync.training.real_eval import REAL_DIR, figures, openness, real_clips


def test_the_bundled_recordings_are_complete():
    manifest = json.loads((REAL_DIR / "clips.json").read_text())
    assert manifest["format"] == "toonsync-real-speech" and len(manifest["clips"]) >= 10
    for c in manifest["clips"]:
        info = sf.info(REAL_DIR / c["file"])
        assert info.samplerate == 16000 and 1.0 < info.duration < 15, c["file"]
        assert c["text"].strip() and c["source"] and c["licence"] and c["speaker"]
    assert (REAL_DIR / "ARCTIC_COPYING").is_file() and (REAL_DIR / "POCKETSPHINX_LICENSE").is_file()
    assert len({c["speaker"] for c in manifest["clips"]}) >= 4
    assert len(real_clips(system=False)) == len(manifest["clips"])


def test_figures_measure_amplitude_and_closures():
    true = np.tile(np.array([0.0, 0.0, 0.5, 1.0, 0.5], np.float32), 20)
    labels = np.tile(np.array(["m", "sil", "ah", "aa", "ah"], dtype=object), 20)
    f = figures(0.5 * true, true, labels, blended=np.roll(true, 1))
    assert f["r"] == pytest.approx(1.0) and f["slope"] == pytest.approx(0.5) and f["wide_open_median"] == 0.25
    assert f["r_blended"] < 0.9  # the same prediction against other targets
    assert f["closed_precision"] == 1.0 and f["closed_recall"] == 1.0 and "r_blended" not in figures(true, true, labels)
    f = figures(0.5 * true + 0.2, true, labels)  # a mouth that never closes
    assert f["closed_recall"] == 0.0 and f["closed_precision"] is None
    lm = np.zeros((1, 68, 2), np.float32)
    lm[0, 36], lm[0, 45] = (0.3, 0.4), (0.7, 0.4)  # outer eye corners 0.4 apart
    lm[0, [65, 66, 67], 1] = 0.14  # inner lips 0.14 apart = 0.35 x 0.4: opening 1
    assert openness(lm)[0] == pytest.approx(1.0)


def test_eval_real_on_three_recordings(animator):
    pytest.importorskip("pocketsphinx", reason="forced alignment needs pocketsphinx (toonsync[train])")
    from toonsync.training.real_eval import evaluate_real

    clips = [c for c in real_clips(system=False) if c.path.stem in ("librivox_0880", "an4_something", "cards_001")]
    drawn = evaluate_real(clips, animator=animator)
    raw = evaluate_real(clips, animator=animator, mouth_gain=1.0)
    assert drawn["clips"] == raw["clips"] == 3 and not drawn["skipped"]
    assert drawn["r"] > 0.6 and raw["r"] > 0.6  # lip-sync follows the aligned phones of real voices
    assert drawn["slope"] > 1.8 * raw["slope"] and drawn["wide_open_median"] > raw["wide_open_median"]
    assert 0 < drawn["closed_recall"] <= 1 and drawn["frames"] > 150
    assert 0.6 < drawn["r_blended"] <= 1  # against the targets without held lip contacts
    # the mouth cues close where a render draws the lips closed (both from the closure head)
    assert abs(drawn["cue_closed_recall"] - drawn["closed_recall"]) < 0.1
    assert abs(drawn["cue_closed_precision"] - drawn["closed_precision"]) < 0.1
    still = evaluate_real(clips, animator=animator, head_motion=0.0)
    assert still["pose_std_deg"]["yaw"] == 0.0 and drawn["pose_std_deg"]["pitch"] > 0.3


def test_cues_close_where_the_drawn_lips_read_closed():
    """``motion_io.CUE_SHUT`` is the closure probability at which a parted spoken frame, drawn by
    ``shape_closures``, falls under the evaluation's closed reading; ``PARTED_READ`` is ``PARTED`` measured."""
    from toonsync.runtime.avatar_geometry import mean_face_landmarks
    from toonsync.runtime.motion_io import CUE_SHUT
    from toonsync.runtime.mouth import CLOSED_READ, PARTED, PARTED_READ, mouth_basis, shape_closures

    def drawn(p: float) -> float:
        m = shape_closures(np.zeros((1, 3), np.float32), np.array([p], np.float32), np.ones(1, np.float32))
        return float(openness(mean_face_landmarks()[None] + np.tensordot(m, mouth_basis(), axes=([1], [0])))[0])

    assert drawn(0.0) == pytest.approx(PARTED_READ, abs=0.005)
    assert drawn(0.0) == pytest.approx(float(openness(mean_face_landmarks()[None] + PARTED * mouth_basis()[0])[0]))
    assert drawn(CUE_SHUT - 0.02) > CLOSED_READ > drawn(CUE_SHUT + 0.02)
