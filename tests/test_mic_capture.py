"""Real microphone capture: ``toonsync stream --mic`` records from a virtual PulseAudio microphone.

A private PulseAudio server (its own runtime folder and HOME) has a null sink; the sink's monitor is the default
source, so what ``paplay`` plays into the sink is what a microphone would hear, on the sound server's own clock.
PortAudio reaches it through ALSA's PulseAudio plugin. Needs the Debian packages pulseaudio, pulseaudio-utils,
libasound2-plugins and libportaudio2 (CI installs them); skipped with the reason when any is missing.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest


def _missing() -> str | None:
    for exe, pkg in (("pulseaudio", "pulseaudio"), ("paplay", "pulseaudio-utils"), ("pactl", "pulseaudio-utils")):
        if shutil.which(exe) is None:
            return f"{exe} is not installed (apt-get install {pkg})"
    if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"):
        return "ALSA's PulseAudio plugin is not installed (apt-get install libasound2-plugins)"
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as e:
        return f"sounddevice / PortAudio unavailable ({e}; pip install toonsync[mic], apt-get install libportaudio2)"
    return None


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    """Environment variables that point PortAudio (through ALSA) at a private PulseAudio server."""
    why = _missing()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("pulse")
    home, run = d / "home", d / "run"
    home.mkdir()
    run.mkdir(mode=0o700)
    (home / ".asoundrc").write_text("pcm.!default { type pulse }\nctl.!default { type pulse }\n")
    conf = d / "default.pa"
    conf.write_text(
        "load-module module-native-protocol-unix\n"
        "load-module module-null-sink sink_name=virtual_speaker rate=48000\n"
        "set-default-source virtual_speaker.monitor\n"
    )
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(run), "PULSE_RUNTIME_PATH": str(run)}
    env.pop("PULSE_SERVER", None)
    server = subprocess.Popen(
        ["pulseaudio", "-n", "-F", str(conf), "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 15
    while subprocess.run(["pactl", "info"], env=env, capture_output=True, check=False).returncode != 0:
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.skip(f"PulseAudio did not start: {server.stderr.read().decode(errors='replace')[-300:]}")
        time.sleep(0.2)
    yield env
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def test_devices_lists_the_virtual_microphone(pulse):
    r = subprocess.run(
        [sys.executable, "-m", "toonsync", "devices", "--json"], env=pulse, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    devices = json.loads(r.stdout)
    assert any(d["is_default"] for d in devices) and all(d["channels"] >= 1 for d in devices)
    table = subprocess.run(
        [sys.executable, "-m", "toonsync", "devices"], env=pulse, capture_output=True, text=True, timeout=60
    )
    assert "--mic-device" in table.stdout and "default" in table.stdout


def _envelope(x: np.ndarray, hop: int = 640) -> np.ndarray:
    n = x.size // hop
    return np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(1))


def test_stream_records_what_the_microphone_hears(pulse, tmp_path, frontal_face, speech_wav):
    """Speech played into the virtual microphone is heard by ``stream --mic``: the recording's soundtrack
    follows the speech's loudness, the avatar's mouth moves while it plays, and SIGTERM (as Ctrl-C) ends the
    session with the recording kept and exit status 0."""
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.video import read_video

    out = tmp_path / "live.mp4"
    cmd = [sys.executable, "-m", "toonsync", "stream", "--mic-device", "default", "--face", str(frontal_face)]
    cmd += ["--record", str(out), "--size", "96"]
    proc = subprocess.Popen(cmd, env=pulse, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any("fps" in ln for ln in lines):  # the first once-a-second report: capturing
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "stream never started: " + "".join(lines)
        time.sleep(0.1)
    time.sleep(1.0)  # a second of room silence before the speech
    subprocess.run(["paplay", "--device=virtual_speaker", str(speech_wav)], env=pulse, check=True, timeout=60)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    reader.join(timeout=10)
    assert rc == 0, "".join(lines)
    summary = json.loads(next(ln for ln in lines if ln.startswith("done: "))[6:])
    assert summary["recording"] == str(out) and summary["fps"] > 20

    frames, fps, audio = read_video(out)
    speech = load_audio(speech_wav)
    heard, said = _envelope(audio), _envelope(speech)
    scores = [np.corrcoef(heard[k : k + said.size], said)[0, 1] for k in range(heard.size - said.size + 1)]
    lag = int(np.argmax(scores))
    assert scores[lag] > 0.8, f"the recording does not follow the speech (best r {max(scores):.2f})"
    assert heard[: max(1, lag - 5)].max() < 0.05 * said.max()  # before the speech: silence

    # the avatar's mouth region changes while the speech plays, and much less before it
    h, w = frames.shape[1:3]
    mouth = frames[:, int(h * 0.55) : int(h * 0.85), int(w * 0.3) : int(w * 0.7)].astype(np.float32)
    change = np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2, 3))
    during = change[lag : lag + said.size].mean()
    before = change[: max(1, lag - 5)].mean()
    assert during > 3 * before + 0.05, (during, before)
