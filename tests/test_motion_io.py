"""toonsync.animate and motion files for animators (JSON with mouth cues, NPY, CSV)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import toonsync
from toonsync.runtime.errors import InputError
from toonsync.runtime.motion_io import REST_FRAMES, mouth_cues, viseme_classes


def test_animate_and_save_all_formats(tmp_path, speech_wav, animator):
    m = toonsync.animate(speech_wav, animator=animator, seed=1)
    T = m.n_frames
    assert m.landmarks.shape == (T, 68, 2) and m.pose.shape == (T, 3) and m.visemes.shape == (T,)
    assert m.closed.shape == (T,) and np.all((m.closed >= 0) & (m.closed <= 1))  # the shipped decoder's head
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
    # with a closure head its probability decides "A": shut where it is sure (even over an opening or a bite),
    # parted ("B") where the mouth parameters alone say closed but it does not; NaN frames have no head
    closed = np.array([0.3, 0.9, np.nan, 0.3, 0.9, 0.3], np.float32)
    assert "".join(viseme_classes(mouth, closed=closed)) == "BACFAB"
    assert "".join(viseme_classes(mouth, np.array([-60, -10, -10, -10, -10, -10.0]), closed)) == "XACFAB"
    # a closed mouth held longer than a lip closure is a pause, cued as rest even over room noise
    shut = np.zeros((REST_FRAMES, 3), np.float32)
    pause = np.concatenate([mouth[1:2], shut, mouth[1:2], shut[: REST_FRAMES - 1], mouth[1:2]])
    assert "".join(viseme_classes(pause)) == "D" + "X" * REST_FRAMES + "D" + "A" * (REST_FRAMES - 1) + "D"
    assert mouth_cues(np.array(list("AAB"))) == [
        {"start": 0.0, "end": 0.08, "value": "A"},
        {"start": 0.08, "end": 0.12, "value": "B"},
    ]


def test_silence_is_rest(animator):
    m = toonsync.animate(np.zeros(16000, np.float32), sample_rate=16000, animator=animator)
    assert set(m.visemes) == {"X"}


def test_rhubarb_formats(tmp_path, speech_wav):
    """``toonsync motion --format rhubarb|tsv|dat``: Rhubarb Lip Sync's JSON, TSV and Moho switch data, to a
    file or standard output."""
    import json
    import re
    import subprocess
    import sys

    import soundfile as sf

    from toonsync.cli import main

    out = tmp_path / "cues.json"
    assert main(["-q", "motion", str(speech_wav), "-o", str(out), "--format", "rhubarb"]) == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"metadata", "mouthCues"} and doc["metadata"]["soundFile"] == str(speech_wav)
    assert doc["metadata"]["duration"] == round(sf.info(str(speech_wav)).duration, 2)
    cues = doc["mouthCues"]
    assert cues and all(set(c) == {"start", "end", "value"} and c["value"] in "ABCDEFGHX" for c in cues)
    assert cues[0]["start"] == 0.0 and all(a["end"] == b["start"] for a, b in zip(cues, cues[1:]))
    assert all(a["value"] != b["value"] for a, b in zip(cues, cues[1:]))  # runs, not frames
    assert re.search(r'\n    \{ "start": 0\.00, "end": \d+\.\d\d, "value": "[A-HX]" \}', out.read_text())

    r = subprocess.run(
        [sys.executable, "-m", "toonsync", "-q", "motion", str(speech_wav), "-o", "-", "--format", "tsv"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [ln.split("\t") for ln in r.stdout.splitlines()]
    assert len(rows) == len(cues) + 1 and rows[-1][1] == "X"
    assert [float(t) for t, _ in rows[:-1]] == [c["start"] for c in cues]

    dat = tmp_path / "cues.dat"
    assert main(["-q", "motion", str(speech_wav), "-o", str(dat), "--format", "dat", "--dat-preston-blair"]) == 0
    lines = dat.read_text().splitlines()
    assert lines[0] == "MohoSwitch1"
    frames = [int(ln.split()[0]) for ln in lines[1:]]
    names = {ln.split()[1] for ln in lines[1:]}
    assert frames[0] == 1 and frames == sorted(set(frames)) and lines[-1].endswith(" rest")
    assert names <= {"MBP", "etc", "E", "AI", "O", "U", "FV", "L", "rest"}
    assert main(["-q", "motion", str(speech_wav), "-o", str(dat), "--format", "dat", "--dat-fps", "12"]) == 1
    assert main(["-q", "motion", str(speech_wav), "-o", "-"]) == 1  # stdout needs a text cue format
