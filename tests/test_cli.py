"""The CLI: readable help, one-line errors with a non-zero exit, no output left on failure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toonsync.cli import build_parser, main


def run(*args):
    return subprocess.run([sys.executable, "-m", "toonsync", *args], capture_output=True, text=True)


def test_help_lists_every_command():
    h = build_parser().format_help()
    for cmd in (
        "demo",
        "render",
        "prepare",
        "preprocess",
        "train",
        "export",
        "bench",
        "doctor",
        "stream",
        "calibrate",
        "motion",
        "corpus",
        "eval",
        "soak",
    ):
        assert cmd in h


def test_render_bad_audio_is_one_line_and_nonzero(tmp_path, data_dir, frontal_face):
    out = tmp_path / "o.mp4"
    r = run("render", str(frontal_face), str(data_dir / "speech_short.mp3"), "-o", str(out))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "accepted audio formats" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_render_no_face_and_bad_size(tmp_path, data_dir, speech_wav, frontal_face):
    assert (
        main(["-q", "render", str(data_dir / "no_face_coffee.jpg"), str(speech_wav), "-o", str(tmp_path / "o.mp4")])
        == 1
    )
    assert (
        main(["-q", "render", str(frontal_face), str(speech_wav), "-o", str(tmp_path / "o.mp4"), "--size", "-5"]) == 1
    )
    assert main(["-q", "render", str(frontal_face), str(speech_wav), "-o", str(speech_wav)]) == 1
    assert list(tmp_path.iterdir()) == []


def test_unknown_flag_exits_2():
    with pytest.raises(SystemExit) as e:
        main(["render", "--no-such-flag"])
    assert e.value.code == 2


def test_prepare_then_render_from_bundle(tmp_path, frontal_face, speech_wav):
    bundle = tmp_path / "me.avatar"
    assert main(["-q", "prepare", str(frontal_face), "-o", str(bundle)]) == 0
    assert (
        main(
            [
                "-q",
                "render",
                str(bundle),
                str(speech_wav),
                "-o",
                str(tmp_path / "b.mp4"),
                "--emotion",
                "happy",
                "--fps",
                "30",
                "--size",
                "192",
            ]
        )
        == 0
    )
    from toonsync.runtime.video import probe

    info = probe(tmp_path / "b.mp4")
    assert info.fps == 30 and info.width == 192


def test_doctor_reports_models_ok(capsys):
    """Files and checksums, and the held-out figures of the model cards in words (not raw dicts)."""
    import re

    from toonsync.runtime.backend import model_dir
    from toonsync.runtime.model_card import ModelCard

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "audio2motion.fp32.onnx" in out and "status: ok" in out and "{" not in out
    r = ModelCard.load(model_dir(), "audio2motion").to_dict()["heldout_eval"]["runtime"]["r_target"]
    assert re.search(rf"held-out speech \(\d+ clips.*mouth-opening r {r:.2f}", out)
    assert "held-out avatars (300 identities): ROC-AUC" in out and "INT8: within its accuracy budget" in out
    assert main(["doctor", "--verbose"]) == 0
    assert "training-run metrics: {" in capsys.readouterr().out


def test_stream_cli_wav_records_and_mic_fails_clearly(tmp_path, frontal_face, speech_wav):
    out = tmp_path / "s.mp4"
    assert (
        main(["-q", "stream", "--wav", str(speech_wav), "--face", str(frontal_face), "--record", str(out), "--fast"])
        == 0
    )
    from toonsync.runtime.live import input_devices
    from toonsync.runtime.video import probe

    assert probe(out).frames > 0
    if not input_devices():  # no sound card, or no PortAudio library: one line naming the fix and --wav
        r = run("stream", "--mic", "--face", str(frontal_face))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "--wav" in r.stderr
        assert "available input devices: none" in r.stderr or "libportaudio2" in r.stderr


def test_global_flags_also_after_the_command(tmp_path, capsys):
    """``-q`` / ``--debug`` work before or after the command (an error still ends in one line)."""
    for argv in (["-q", "render"], ["render", "-q"]):
        rc = main([*argv, str(tmp_path / "nope.jpg"), str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.mp4")])
        err = capsys.readouterr().err.strip()
        assert rc == 1 and err.startswith("toonsync render: error:") and "\n" not in err
    with pytest.raises(Exception, match="nope"):  # --debug after the command: the traceback, not one line
        main(
            ["render", str(tmp_path / "nope.jpg"), str(tmp_path / "nope.wav"), "-o", str(tmp_path / "o.mp4"), "--debug"]
        )
