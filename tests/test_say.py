"""``toonsync say``: text spoken by an installed TTS engine, rendered; a clear error when there is none."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from toonsync.runtime.errors import InputError
from toonsync.runtime.tts import available_engines, check_text, spoken
from toonsync.runtime.video import probe

ENGINES = available_engines()
needs_tts = pytest.mark.skipif(not ENGINES, reason="no TTS engine installed (apt-get install flite espeak-ng festival)")


@needs_tts
@pytest.mark.parametrize("voice", ["auto", *ENGINES])
def test_each_installed_engine_speaks_the_text(voice):
    import soundfile as sf

    with spoken("Hello there, this is a test of the avatar.", voice) as wav:
        info = sf.info(wav)
        assert 1.0 < info.duration < 8.0
        d = wav.parent
    assert not d.exists()  # the temporary speech is removed


@needs_tts
def test_say_renders_the_avatar_speaking(tmp_path):
    out = tmp_path / "hello.mp4"
    r = subprocess.run(
        [sys.executable, "-m", "toonsync", "say", "-", "-o", str(out), "--size", "64"],
        input="Good morning. Welcome to the kiosk.",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert info.audio_codec is not None and 1.5 < info.duration_s < 8 and info.frames == round(info.duration_s * 25)


def test_say_without_an_engine_names_the_packages(tmp_path):
    """A PATH without any engine: one line naming the Debian packages, no output file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    out = tmp_path / "o.mp4"
    r = subprocess.run(
        [sys.executable, "-m", "toonsync", "say", "Hello", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PATH": str(bindir)},
    )
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "no text-to-speech engine installed: apt-get install festival" in r.stderr and "espeak-ng" in r.stderr
    assert not out.exists()


def test_text_is_checked():
    assert check_text("  hi \n") == "hi"
    for bad, msg in (("", "empty"), ("   ", "empty"), ("x" * 20_001, "cap is"), ("a\x00b", "control")):
        with pytest.raises(InputError, match=msg):
            check_text(bad)
    with pytest.raises(InputError, match="unknown voice"):
        with spoken("hi", "sam"):
            pass


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("starlette", reason="the kiosk server needs `pip install toonsync[web]`")
    from starlette.testclient import TestClient

    from toonsync.runtime.server import ServerConfig, create_app

    return TestClient(create_app(ServerConfig(allowed_hosts=("testserver",), draw_processes=0)))


def test_typed_text_is_spoken_as_a_wav(client, monkeypatch):
    """/api/say: the text spoken by an installed TTS engine (a WAV the page plays into the stream); refusals
    in a visitor's words; 503 when no engine is installed."""
    import io

    import soundfile as sf

    from toonsync.runtime import tts

    if tts.available_engines():
        assert client.get("/api/info").json()["say"] is True
        r = client.post("/api/say", json={"text": "Hello, nice to meet you."})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
        assert 0.8 < sf.info(io.BytesIO(r.content)).duration < 6
    for body, status in (({"text": ""}, 422), ({"text": "x" * 301}, 413), ({"txt": "hi"}, 400), ({"text": 3}, 400)):
        r = client.post("/api/say", json=body)
        assert r.status_code == status and r.json()["message"], (body, r.text)
    assert client.post("/api/say", content=b"not json").status_code == 400
    assert client.post("/api/say", json={"text": "hi"}, headers={"origin": "https://evil.example"}).status_code == 403
    monkeypatch.setattr(tts, "available_engines", lambda: [])
    r = client.post("/api/say", json={"text": "hi"})
    assert r.status_code == 503 and r.json()["message"] == "speaking typed text is not available on this kiosk"
