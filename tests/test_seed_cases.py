"""The seed's five test cases, end to end through runtime.render (real photos, real speech)."""

from __future__ import annotations

import numpy as np
import pytest

from toonsync.runtime.errors import NoFaceError, SideProfileWarning, UnsupportedAudioFormat
from toonsync.runtime.mouth import MAX_GAP, inner_lip_gap
from toonsync.runtime.pipeline import render
from toonsync.runtime.video import probe

from .conftest import tone


def test_valid_face_and_wav_gives_synced_video(tmp_path, frontal_face, speech_wav, animator):
    out = tmp_path / "out.mp4"
    res = render(frontal_face, speech_wav, out, animator=animator)
    info = probe(out)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.fps == 25 and info.width == info.height == 512  # the default size
    assert abs(info.frames - res.duration_s * 25) <= 1  # duration = audio +- 1 frame
    assert res.warnings == []
    gap = inner_lip_gap(res.motion.landmarks)
    assert gap.max() > 0.3 * MAX_GAP  # the mouth really opens while speaking
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp files left


def test_grace_hopper_also_works(tmp_path, data_dir, speech_wav, animator):
    res = render(data_dir / "grace_hopper.jpg", speech_wav, tmp_path / "g.mp4", animator=animator)
    assert res.frames > 0 and res.warnings == []


def test_side_profile_warns_and_falls_back(tmp_path, data_dir, speech_wav, animator):
    with pytest.warns(SideProfileWarning, match="turned to the side"):
        res = render(data_dir / "side_profile_camera.jpg", speech_wav, tmp_path / "p.mp4", animator=animator)
    assert res.output.exists() and res.frames > 0


def test_side_profile_bundle_records_the_fallback(data_dir):
    from toonsync.runtime.prepare import load_face

    with pytest.warns(SideProfileWarning):
        av = load_face(data_dir / "side_profile_camera.jpg")
    assert av.meta["fallback"].startswith("side-profile")


@pytest.mark.parametrize("image", ["no_face_coffee.jpg", "blank"])
def test_no_face_raises_and_leaves_no_file(tmp_path, data_dir, speech_wav, image, animator):
    face = np.full((240, 320, 3), 200, np.uint8) if image == "blank" else data_dir / image
    out = tmp_path / "x.mp4"
    with pytest.raises(NoFaceError, match="no face"):
        render(face, speech_wav, out, animator=animator)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["silence", "tone440", "hum"])
def test_flat_audio_gives_neutral_closed_mouth(frontal_face, animator, kind):
    a = {
        "silence": np.zeros(48000, np.float32),
        "tone440": tone(3.0, 440.0),
        "hum": tone(3.0, 50.0, 0.2) + tone(3.0, 100.0, 0.1),
    }[kind]
    res = render(frontal_face, a, None, animator=animator, sample_rate=16000)
    gap = inner_lip_gap(res.motion.landmarks)
    assert gap.max() < 0.15 * MAX_GAP, f"mouth opened to {gap.max() / MAX_GAP:.2f} of max on {kind}"
    assert (res.motion.emotion.argmax(1) == 4).all()  # NEU


def test_mp3_is_a_format_error_before_any_work(tmp_path, data_dir):
    # the face is a no-face image: the audio format error must come first, before face detection
    with pytest.raises(UnsupportedAudioFormat, match="accepted audio formats"):
        render(data_dir / "no_face_coffee.jpg", data_dir / "speech_short.mp3", tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []
