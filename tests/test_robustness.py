"""Atomic outputs under kill/Ctrl-C, fuzzing of the loaders and Stream.accept_audio, no network at run time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toonsync.runtime.errors import ToonsyncError

FUZZ = settings(
    max_examples=int(os.environ.get("TOONSYNC_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _long_render(tmp_path, frontal_face, speech_wav):
    import soundfile as sf

    a, sr = sf.read(str(speech_wav), dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(str(long), np.tile(a, 20), sr)  # ~1 min of speech: the render takes several seconds
    out = tmp_path / "out.mp4"
    # SIGINT back to its default in the child: a test run started in the background (nohup ... &) ignores
    # SIGINT, the child would inherit that, and Ctrl-C would not reach the render being tested
    p = subprocess.Popen(
        [sys.executable, "-m", "toonsync", "-q", "render", str(frontal_face), str(long), "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".out.mp4.*")):  # wait until encoding has begun
        time.sleep(0.05)
    return p, out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_killed_render_leaves_no_partial_mp4(tmp_path, frontal_face, speech_wav, sig):
    old = tmp_path / "out.mp4"
    p, out = _long_render(tmp_path, frontal_face, speech_wav)
    assert list(tmp_path.glob(".out.mp4.*")), "the render never started writing"
    p.send_signal(sig)
    p.wait(timeout=60)
    assert not out.exists()  # never a half-written out.mp4
    if sig == signal.SIGINT:  # Python unwinds: the temp file is removed too, and the exit is clean
        assert not list(tmp_path.glob(".out.mp4.*")) and p.returncode == 130
    else:  # nothing ran on SIGKILL: the temp file stays, and the next write of out.mp4 sweeps it
        from toonsync.runtime.atomic import atomic_path

        assert list(tmp_path.glob(".out.mp4.*"))
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"new")
        assert out.read_bytes() == b"new" and not list(tmp_path.glob(".out.mp4.*"))
    del old


def test_old_output_survives_a_failed_render(tmp_path, frontal_face, data_dir):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"previous video")
    from toonsync.cli import main

    assert (
        main(["-q", "render", str(data_dir / "no_face_coffee.jpg"), str(data_dir / "speech_short.wav"), "-o", str(out)])
        == 1
    )
    assert out.read_bytes() == b"previous video"


@FUZZ
@given(data=st.binary(max_size=2048), name=st.sampled_from(["a.wav", "a.flac", "a.mp3", "a"]))
def test_fuzz_audio_loader_only_raises_typed_errors(tmp_path, data, name):
    from toonsync.runtime.audio_io import load_audio

    p = tmp_path / name
    p.write_bytes(data)
    try:
        out = load_audio(p)
    except ToonsyncError:
        return
    assert out.dtype == np.float32 and np.isfinite(out).all()


@FUZZ
@given(
    data=st.binary(max_size=4096),
    prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"BM", b"RIFF\0\0\0\0WEBP"]),
)
def test_fuzz_image_loader_only_raises_typed_errors(tmp_path, data, prefix):
    from toonsync.runtime.image_io import load_image

    p = tmp_path / "x.img"
    p.write_bytes(prefix + data)
    try:
        img = load_image(p)
    except ToonsyncError:
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


@pytest.fixture(scope="module")
def fuzz_stream(animator):
    from toonsync.runtime.streaming import Stream

    return Stream(animator.audio_model, np.zeros((68, 2), np.float32))


@FUZZ
@given(
    chunks=st.lists(
        st.tuples(
            st.integers(0, 3000),
            st.sampled_from(["float32", "float64", "int16", "int32", "uint8"]),
            st.sampled_from([8000, 16000, 22050, 44100, 48000]),
            st.integers(1, 2),
            st.sampled_from(["speech", "noise", "silence", "loud", "nan"]),
        ),
        max_size=8,
    )
)
def test_fuzz_stream_accept_audio(fuzz_stream, chunks):
    s = fuzz_stream
    s.reset()
    rng = np.random.default_rng(0)
    fed = 0
    for n, dtype, rate, ch, kind in chunks:
        x = {
            "speech": rng.standard_normal((n, ch)) * 0.1,
            "noise": rng.uniform(-1, 1, (n, ch)),
            "silence": np.zeros((n, ch)),
            "loud": rng.uniform(-50, 50, (n, ch)),
            "nan": np.full((n, ch), np.nan),
        }[kind]
        if np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            x = np.nan_to_num(x, nan=0.0)
            x = np.clip(x * info.max, info.min, info.max).astype(dtype)
        else:
            x = x.astype(dtype)
        try:
            s.accept_audio(x if ch == 2 else x[:, 0], rate)
        except ToonsyncError:
            assert kind == "nan" and n > 0
            continue
        fed += 1
        while s.ready():
            f = s.step(draw=False)
            assert np.isfinite(f.landmarks).all() and np.isfinite(f.pose).all()
    s.flush()
    while s.ready():
        assert np.isfinite(s.step(draw=False).mouth).all()


def test_no_network_at_run_time(monkeypatch, tmp_path, frontal_face, speech_wav):
    """render and stream work with every socket blocked (nothing is downloaded, nothing phones home)."""
    import toonsync
    from toonsync.runtime.pipeline import render

    def blocked(*a, **k):
        raise AssertionError("toonsync tried to open a network socket")

    monkeypatch.setattr(socket, "socket", blocked)
    monkeypatch.setattr(socket, "create_connection", blocked)
    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    res = render(frontal_face, speech_wav, tmp_path / "o.mp4", backend="cpu")
    assert res.output.exists()
    stats = toonsync.stream([np.zeros(3200, np.float32)] * 5, frontal_face, sink=lambda f: None, backend="cpu")
    assert stats.frames == 25


def test_soak_full_runtime_with_drawing():
    """CI-sized soak (1 min of audio, every frame drawn): no lost samples, one frame per 40 ms, flat memory."""
    from toonsync.tools.soak import soak

    rep = soak(minutes=1.0, draw=True, backend="cpu")
    assert rep.lost_samples == 0 and rep.frames + rep.dropped == rep.frames_expected == 1500
    assert rep.rss_growth_mb < 20


def test_a_failed_render_leaves_no_directory_behind(tmp_path, data_dir):
    """Output directories are made when the output is written, and removed again if the write fails."""
    from toonsync.cli import main

    out = tmp_path / "new" / "deeper" / "o.mp4"
    rc = main(
        ["-q", "render", str(data_dir / "no_face_coffee.jpg"), str(data_dir / "speech_short.wav"), "-o", str(out)]
    )
    assert rc == 1 and not (tmp_path / "new").exists()
    from toonsync.runtime.atomic import atomic_path

    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the encoder failed")
    assert not (tmp_path / "new").exists()
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"whole")
    assert out.read_bytes() == b"whole"


def test_mp4_is_faststart(tmp_path, frontal_face, data_dir):
    """The MP4 index (moov) comes before the media data, so a browser can play while it downloads."""
    from toonsync.cli import main

    out = tmp_path / "o.mp4"
    assert (
        main(["-q", "render", str(frontal_face), str(data_dir / "speech_short.wav"), "-o", str(out), "--size", "64"])
        == 0
    )
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
