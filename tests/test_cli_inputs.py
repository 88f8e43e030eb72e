"""Inputs beyond one file: a folder of audio rendered in one go, and audio piped into standard input."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
import soundfile as sf

from toonsync.runtime.audio_io import spooled_stdin
from toonsync.runtime.errors import InputError, InvalidAudio, UnsupportedAudioFormat
from toonsync.runtime.video import probe


def run(*args, stdin: bytes | None = None):
    return subprocess.run(
        [sys.executable, "-m", "toonsync", *args], input=stdin, capture_output=True, timeout=300, check=False
    )


def test_render_a_folder_of_audio_loads_once_and_goes_past_a_bad_file(tmp_path, frontal_face, speech_wav):
    from toonsync import render_batch

    src = tmp_path / "speech"
    src.mkdir()
    shutil.copy(speech_wav, src / "one.wav")
    x, sr = sf.read(speech_wav)
    sf.write(src / "two.flac", np.stack([x[:sr], x[:sr]], 1), sr)  # 1 s, stereo
    (src / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (src / "notes.txt").write_text("not audio")
    b = render_batch(frontal_face, src, tmp_path / "out", size=64)
    assert sorted(b.results) == ["one.wav", "two.flac"] and list(b.failed) == ["broken.wav"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.mp4", "two.mp4"]
    assert probe(tmp_path / "out" / "two.mp4").frames == b.results["two.flac"].frames == 25
    with av.open(str(tmp_path / "out" / "two.mp4")) as c:
        assert c.streams.audio[0].codec_context.channels == 2  # the file's own stereo

    r = run("render", str(frontal_face), str(src), "-o", str(tmp_path / "web"), "--format", "webm", "--size", "64")
    assert r.returncode == 1 and b"1 file(s) failed: broken.wav" in r.stderr
    assert sorted(p.name for p in (tmp_path / "web").iterdir()) == ["one.webm", "two.webm"]
    with pytest.raises(InputError, match="does not exist"):
        render_batch(frontal_face, src, tmp_path / "no" / "out")
    (src / "one.flac").write_bytes(b"")
    with pytest.raises(InputError, match="more than one audio file named one"):
        render_batch(frontal_face, src, tmp_path / "out")


def test_audio_from_standard_input(tmp_path, frontal_face, speech_wav):
    wav = speech_wav.read_bytes()
    r = run("render", str(frontal_face), "-", "-o", str(tmp_path / "o.mp4"), "--size", "64", stdin=wav)
    assert r.returncode == 0, r.stderr
    info = sf.info(speech_wav)
    assert abs(probe(tmp_path / "o.mp4").duration_s - info.duration) < 0.1
    r = run("motion", "-", "-o", "-", "--format", "rhubarb", stdin=wav)
    cues = json.loads(r.stdout)
    assert cues["metadata"]["soundFile"] == "-" and abs(cues["metadata"]["duration"] - info.duration) < 0.01
    r = run("motion", "-", "-o", str(tmp_path / "m.json"), stdin=b"ID3\x03" + bytes(200))
    assert r.returncode == 1 and b"standard input: MP3 audio is not supported" in r.stderr
    assert not (tmp_path / "m.json").exists()


def test_spooled_stdin_checks_before_and_while_copying():
    with spooled_stdin(io.BytesIO(b"fLaC" + bytes(100))) as p:
        assert p.suffix == ".flac" and p.stat().st_size == 104
    assert not p.exists()  # removed afterwards
    with pytest.raises(InvalidAudio, match="empty"):
        with spooled_stdin(io.BytesIO(b"")):
            pass
    with pytest.raises(InvalidAudio, match="cap for piped audio"):
        with spooled_stdin(io.BytesIO(b"RIFF\0\0\0\0WAVE" + bytes(5 << 20)), max_bytes=1 << 20):
            pass
    with pytest.raises(UnsupportedAudioFormat, match="Ogg"):
        with spooled_stdin(io.BytesIO(b"OggS" + bytes(60))):
            pass
