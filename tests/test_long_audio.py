"""Long audio: offline motion and rendering go through the stream in bounded windows, so memory stays flat and
time linear in the audio's length, and the result equals streaming it in small chunks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from toonsync.runtime.audio_io import iter_audio, load_audio
from toonsync.runtime.streaming import MAX_STEPS, Stream
from toonsync.runtime.video import probe

SPF = 640


@pytest.fixture(scope="module")
def speech(speech_wav):
    return load_audio(speech_wav)


_PEAK = """
import json, sys, toonsync
kind, src, out = sys.argv[1:]
if kind == "motion":
    toonsync.save_motion(toonsync.animate(src), out)
else:
    toonsync.render(toonsync.runtime.assets.asset("demo_face.jpg"), src, out, size=64)
with open("/proc/self/status") as f:
    print(json.dumps({"peak_mb": [int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:")][0]}))
"""


def _long_wav(path, speech: np.ndarray, seconds: float, rate: int = 16000, channels: int = 1):
    n = int(seconds * 16000)
    x = np.tile(speech, -(-n // speech.size))[:n]
    if rate != 16000:
        import soxr

        x = soxr.resample(x, 16000, rate)
    if channels > 1:
        x = np.stack([x * (0.5 + 0.5 * c / channels) for c in range(channels)], 1)
    sf.write(path, x, rate, subtype="PCM_16")
    return path


def _peak_mb(kind: str, src, out) -> float:
    r = subprocess.run(
        [sys.executable, "-c", "import toonsync.runtime.assets\n" + _PEAK, kind, str(src), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_mb"]


def test_offline_motion_equals_small_chunk_streaming_across_windows(animator, speech):
    pcm = np.tile(speech, -(-(MAX_STEPS * SPF * 2 + 12345) // speech.size))[: MAX_STEPS * SPF * 2 + 12345]
    neutral = np.full((68, 2), 0.5, np.float32)
    m = animator.animate(pcm, neutral, seed=2)
    s = Stream(animator.audio_model, neutral, seed=2)
    ref = []
    for i in range(0, pcm.size, SPF):
        s.accept_audio(pcm[i : i + SPF])
        ref += [s.step(draw=False) for _ in range(s.ready())]
    s.flush()
    ref += [s.step(draw=False) for _ in range(s.ready())]
    assert m.n_frames == len(ref) == -(-pcm.size // SPF)
    np.testing.assert_allclose(m.landmarks, np.stack([f.landmarks for f in ref]), atol=1e-5)
    np.testing.assert_allclose(m.pose, np.stack([f.pose for f in ref]), atol=1e-5)


def test_blockwise_reading_equals_reading_whole(tmp_path, speech):
    wav = _long_wav(tmp_path / "s.wav", speech, 25.0, rate=44100, channels=2)
    data, rate = sf.read(wav, dtype="float32", always_2d=True)
    from toonsync.runtime.audio_io import to_mono_16k

    whole = to_mono_16k(data, rate)
    blocks = list(iter_audio(wav, block_seconds=3.0))
    assert len(blocks) > 5 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    np.testing.assert_array_equal(load_audio(wav), whole)


def test_many_channels_are_downmixed_along_the_channel_axis(tmp_path, speech):
    wav = _long_wav(tmp_path / "c12.wav", speech, 3.0, channels=12)
    assert load_audio(wav).size == 3 * 16000  # 3 s stay 3 s (not 12 samples)


def test_memory_does_not_grow_with_the_audio_length(tmp_path, speech):
    """Peak RSS of a fresh process: motion of 8 min vs 30 s, and a render of 4 min vs 30 s (48 kHz stereo input,
    which as one float32 array would be 90 MB for 4 min). The margins are a fraction of what holding the audio
    and the muxed video would cost."""
    short = _long_wav(tmp_path / "short.wav", speech, 30.0, rate=48000, channels=2)
    long_m = _long_wav(tmp_path / "long8.wav", speech, 480.0)
    long_r = _long_wav(tmp_path / "long4.wav", speech, 240.0, rate=48000, channels=2)
    motion_short, motion_long = (
        _peak_mb("motion", short, tmp_path / "a.npy"),
        _peak_mb("motion", long_m, tmp_path / "b.npy"),
    )
    assert motion_long - motion_short < 40, (motion_short, motion_long)
    render_short = _peak_mb("render", short, tmp_path / "a.mp4")
    render_long = _peak_mb("render", long_r, tmp_path / "b.mp4")
    assert render_long - render_short < 40, (render_short, render_long)
    info = probe(tmp_path / "b.mp4")
    assert info.frames == 240 * 25 and abs(info.duration_s - 240.0) < 0.1


def test_outputs_keep_the_input_audio_rate_and_channels(tmp_path, speech):
    """A 44.1 kHz stereo WAV comes out at 44.1 kHz stereo (MP4, PNG sequence); WebM's Opus stores 48 kHz; the
    models still hear 16 kHz mono."""
    import av

    import toonsync
    from toonsync.runtime.assets import DEMO_FACE, asset

    wav = _long_wav(tmp_path / "st.wav", speech[: 3 * 16000], 3.0, rate=44100, channels=2)
    for name, rate in (("o.mp4", 44100), ("o.webm", 48000)):
        toonsync.render(asset(DEMO_FACE), wav, tmp_path / name, size=64)
        with av.open(str(tmp_path / name)) as c:
            a = c.streams.audio[0]
            n = sum(f.samples for f in c.decode(a))
            assert (a.rate, a.codec_context.layout.name) == (rate, "stereo"), name
            assert abs(n / rate - 3.0) < 0.05, (name, n / rate)
    toonsync.render(asset(DEMO_FACE), wav, tmp_path / "o.png-seq", size=64)
    info = sf.info(str(tmp_path / "o.png-seq" / "audio.wav"))
    assert (info.samplerate, info.channels) == (44100, 2) and abs(info.duration - 3.0) < 0.01
