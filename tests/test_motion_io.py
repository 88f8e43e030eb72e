"""toonsync.animate and motion files for animators (JSON with mouth cues, NPY, CSV)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import toonsync
from toonsync.runtime.errors import InputError
from toonsync.runtime.motion_io import mouth_cues, viseme_classes


def test_animate_and_save_all_formats(tmp_path, speech_wav, animator):
    m = toonsync.animate(speech_wav, animator=animator, seed=1)
    T = m.n_frames
    assert m.landmarks.shape == (T, 68, 2) and m.pose.shape == (T, 3) and m.visemes.shape == (T,)
    toonsync.save_motion(m, tmp_path / "m.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), m.landmarks.astype(np.float32))
    toonsync.save_motion(m, tmp_path / "m.json")
    d = json.loads((tmp_path / "m.json").read_text())
    assert d["frames"] == T and len(d["landmarks"]) == T and d["emotion_classes"][4] == "NEU"
    cues = d["mouth_cues"]
    assert cues[0]["start"] == 0 and cues[-1]["end"] == pytest.approx(T / 25)
    assert all(a["end"] == b["start"] for a, b in zip(cues, cues[1:]))
    assert len({c["value"] for c in cues}) >= 4 and {c["value"] for c in cues} <= set("XABCDEFG")
    toonsync.save_motion(m, tmp_path / "m.csv")
    rows = list(csv.reader((tmp_path / "m.csv").open()))
    assert len(rows) == T + 1 and len(rows[0]) == 10 + 6 + 136
    with pytest.raises(InputError, match=".json, .npy or .csv"):
        toonsync.save_motion(m, tmp_path / "m.txt")


def test_visemes_and_cues():
    mouth = np.array(
        [[0.0, 0, 0], [0.9, 0, 0], [0.5, 0.1, 0], [0.3, -0.7, 0], [0.1, 0, 0.9], [0.3, 0.4, 0]], np.float32
    )
    assert "".join(viseme_classes(mouth)) == "ADCFGB"
    assert "".join(viseme_classes(mouth, np.array([-60, -10, -10, -10, -10, -10.0]))) == "XDCFGB"
    assert mouth_cues(np.array(list("AAB"))) == [
        {"start": 0.0, "end": 0.08, "value": "A"},
        {"start": 0.08, "end": 0.12, "value": "B"},
    ]


def test_silence_is_rest(animator):
    m = toonsync.animate(np.zeros(16000, np.float32), sample_rate=16000, animator=animator)
    assert set(m.visemes) == {"X"}
