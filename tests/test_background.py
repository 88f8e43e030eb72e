"""Backgrounds (solid colour, image, transparent) and outputs with alpha (WebM VP9, MOV qtrle, PNG sequences)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import toonsync
from toonsync.runtime.background import COLOUR_NAMES, compose, over, parse_background, with_background
from toonsync.runtime.errors import AlphaUnsupported, InvalidBackground, OutputError
from toonsync.runtime.mel import SAMPLES_PER_FRAME
from toonsync.runtime.video import probe, read_video, write_video


@pytest.fixture(scope="module")
def avatar(frontal_face):
    from toonsync.runtime.prepare import load_face

    return load_face(frontal_face)


@pytest.fixture(scope="module")
def rgba_frames(avatar):
    r = avatar.renderer(128)
    return [r.draw_rgba(avatar.neutral, (0.2 * np.sin(i / 3), 0.0, 0.0), 0.0, None) for i in range(12)]


def _expected_frames(path) -> int:
    import soundfile as sf

    return -(-sf.info(str(path)).frames // SAMPLES_PER_FRAME)


def test_parse_specs(tmp_path, data_dir):
    assert parse_background(None).is_default and parse_background("default").is_default
    assert parse_background("transparent").alpha and parse_background("none").alpha
    assert parse_background("#203040").color == (0x20, 0x30, 0x40)
    assert parse_background("#fFf").color == (255, 255, 255)
    assert parse_background("Green").color == COLOUR_NAMES["green"] == (0, 177, 64)
    assert parse_background((1, 2, 3)).color == (1, 2, 3)
    bg = parse_background(str(data_dir / "no_face_coffee.jpg"))
    assert bg.kind == "image" and bg.layer(40, 60).shape == (40, 60, 3)
    for bad in ("#12345", "#ggg", "bleu", (1, 2), (0, 0, 256)):
        with pytest.raises(InvalidBackground, match="accepted"):
            parse_background(bad)


def test_image_background_covers_and_centre_crops(tmp_path):
    img = np.zeros((50, 100, 3), np.uint8)
    img[:, :25], img[:, 25:75], img[:, 75:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    p = tmp_path / "wide.png"
    cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    layer = parse_background(str(p)).layer(64, 64)  # 50x100 scaled to 64x128, 32 px cropped each side
    assert layer.shape == (64, 64, 3)
    assert (np.abs(layer[:, 4:60].astype(int) - (0, 255, 0)) <= 2).all()  # only the green middle third
    assert not layer.flags.writeable


def test_draw_rgba_alpha_and_compose(avatar):
    r = avatar.renderer(128)
    rgba = r.draw_rgba(avatar.neutral, (0.1, 0.0, 0.05), 0.3, None)
    a = rgba[..., 3]
    assert rgba.shape == (128, 128, 4) and rgba.dtype == np.uint8
    assert a[0, 0] == a[0, -1] == 0 and a[64, 64] == 255  # corners are background, the face is opaque
    assert 0.2 < (a == 0).mean() < 0.8 and ((a > 0) & (a < 255)).any()  # anti-aliased edges
    # composited over the avatar's own (downsampled) background it is what draw() paints, to rounding
    own = cv2.resize(r._bg, (128, 128), interpolation=cv2.INTER_AREA)
    diff = np.abs(over(rgba, own).astype(int) - r.draw(avatar.neutral, (0.1, 0.0, 0.05), 0.3))
    assert diff.max() <= 3 and diff.mean() < 0.05  # rounding of premultiplied edges at the downsample only
    solid = compose(rgba, "green")
    assert (solid[a == 0] == COLOUR_NAMES["green"]).all()
    assert (solid[a == 255] == rgba[..., :3][a == 255]).all()
    assert compose(rgba, "transparent") is rgba
    with pytest.raises(InvalidBackground, match="renderer's own"):
        compose(rgba, "default")
    assert with_background(r, "default") is r
    wrapped = with_background(r, "#ff00ff")
    assert wrapped.size == r.size and wrapped.draw(avatar.neutral)[0, 0].tolist() == [255, 0, 255]


@pytest.mark.parametrize("suffix", [".webm", ".mov", "/", ".png-seq"])
def test_alpha_outputs_round_trip(tmp_path, rgba_frames, suffix):
    out = str(tmp_path / "clip") + suffix
    audio = (0.1 * np.sin(np.arange(len(rgba_frames) * SAMPLES_PER_FRAME) / 7)).astype(np.float32)
    path = write_video(out, rgba_frames, audio, alpha=True)
    info = probe(path)
    assert info.alpha and info.frames == len(rgba_frames) and (info.width, info.height) == (128, 128)
    frames, fps, back = read_video(path, rgba=True)
    assert frames.shape == (len(rgba_frames), 128, 128, 4) and fps == 25
    tol = 8 if suffix == ".webm" else 0  # VP9 codes alpha lossily
    assert frames[:, :4, :4, 3].max() <= tol and frames[:, 60:68, 60:68, 3].min() >= 255 - tol
    assert back is not None and abs(back.size - audio.size) <= 1024  # Opus/AAC pad a little
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_render_transparent_webm_via_cli(tmp_path, frontal_face, speech_wav):
    from toonsync.cli import main

    out = tmp_path / "t.webm"
    assert (
        main(["-q", "render", str(frontal_face), str(speech_wav), "-o", str(out), "--background", "transparent"]) == 0
    )
    info = probe(out)
    assert (info.video_codec, info.audio_codec, info.alpha) == ("vp9", "opus", True)
    assert info.frames == _expected_frames(speech_wav)
    frames, _, _ = read_video(out, rgba=True, max_frames=20)
    a = frames[..., 3]
    assert a[:, :8, :8].max() <= 8 and a[:, -8:, :8].max() <= 8  # background corners: transparent
    assert a[:, 120:136, 120:136].min() >= 247  # the face: opaque
    assert a.std() > 50  # alpha really varies


def test_render_colour_and_image_backgrounds(tmp_path, frontal_face, speech_wav, data_dir, animator):
    res = toonsync.render(
        frontal_face, speech_wav, tmp_path / "g.mp4", background="#2040c0", animator=animator, size=128
    )
    frames, _, _ = read_video(res.output, max_frames=5)
    assert np.abs(frames[:, 2:6, 2:6].astype(int) - (0x20, 0x40, 0xC0)).max() <= 8  # H.264 tolerance
    seq = toonsync.render(
        frontal_face,
        speech_wav,
        str(tmp_path / "img") + "/",
        animator=animator,
        size=128,
        background=str(data_dir / "no_face_coffee.jpg"),
    )
    doc = json.loads((seq.output / "sequence.json").read_text())
    assert doc["frames"] == res.frames == len(list(seq.output.glob("frame_*.png"))) and not doc["alpha"]
    first = read_video(seq.output, max_frames=1)[0][0]
    layer = parse_background(str(data_dir / "no_face_coffee.jpg")).layer(128, 128)
    assert (first[:6, :6] == layer[:6, :6]).all()  # the image, exactly, where there is no character
    assert (seq.output / "audio.wav").is_file()


def test_transparent_mp4_is_refused_before_any_work(tmp_path, frontal_face, speech_wav):
    with pytest.raises(AlphaUnsupported, match=r"\.webm.*\.mov.*PNG-sequence"):
        toonsync.render(frontal_face, speech_wav, tmp_path / "o.mp4", background="transparent")
    with pytest.raises(AlphaUnsupported):
        toonsync.stream(str(speech_wav), frontal_face, record=tmp_path / "r.mp4", background="transparent")
    assert not list(tmp_path.iterdir())


def test_failed_writes_leave_nothing(tmp_path, rgba_frames):
    def broken():
        yield from rgba_frames[:3]
        raise RuntimeError("renderer crashed")

    for out in ("a.webm", "a.mov", "seq/"):
        with pytest.raises(RuntimeError, match="crashed"):
            write_video(f"{tmp_path}/{out}", broken(), None, alpha=True)
    assert not list(tmp_path.iterdir())
    with pytest.raises(AlphaUnsupported):  # RGBA frames into an MP4 writer
        write_video(tmp_path / "x.mp4", rgba_frames, None)
    assert not list(tmp_path.iterdir())


def test_png_sequence_replaces_its_own_output_only(tmp_path, rgba_frames):
    d = tmp_path / "seq"
    write_video(str(d) + "/", rgba_frames[:3], None, alpha=True)
    write_video(str(d) + "/", rgba_frames[:5], None, alpha=True)  # an earlier sequence is replaced
    assert len(list(d.glob("frame_*.png"))) == 5 and not (d / "audio.wav").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="holding other files"):
        write_video(str(other) + "/", rgba_frames, None, alpha=True)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_stream_transparent_records_webm(tmp_path, frontal_face, speech_wav, animator):
    import soundfile as sf

    speech, sr = sf.read(str(speech_wav), dtype="float32")
    images = []
    stats = toonsync.stream(
        (c for c in np.array_split(speech, 20)),
        frontal_face,
        model=animator.audio_model,
        sink=lambda f: images.append(f.image),
        record=tmp_path / "live.webm",
        size=128,
        background="transparent",
        sample_rate=sr,
    )
    assert images and all(im.shape == (128, 128, 4) for im in images)
    info = probe(stats.recording)
    assert info.alpha and info.frames == stats.frames + stats.dropped
