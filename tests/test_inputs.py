"""Image and audio input contracts: accepted formats load and convert, everything else gets a typed error."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
import soundfile as sf

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.errors import (
    ImageTooLarge,
    InputNotFound,
    InvalidAudio,
    UnsupportedAudioFormat,
    UnsupportedImageFormat,
)
from toonsync.runtime.image_io import load_image


@pytest.fixture(scope="module")
def photo(frontal_face):
    return cv2.cvtColor(cv2.imread(str(frontal_face)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_accepted_image_formats_load_as_rgb(tmp_path, photo, ext):
    p = tmp_path / f"face{ext}"
    cv2.imwrite(str(p), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    img = load_image(p)
    assert img.shape == photo.shape and img.dtype == np.uint8
    assert np.abs(img.astype(int) - photo).mean() < 8  # same picture (lossy formats differ slightly)


def test_gray_rgba_and_16bit_are_converted(tmp_path, photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = load_image(tmp_path / "g.png")
    assert g.shape == (*gray.shape, 3) and (g[..., 0] == gray).all()
    rgba = np.dstack([photo, np.full(photo.shape[:2], 0, np.uint8)])  # fully transparent -> white
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert (load_image(tmp_path / "a.png") == 255).all()
    cv2.imwrite(str(tmp_path / "w.png"), (photo.astype(np.uint16) * 257)[..., ::-1])
    assert np.array_equal(load_image(tmp_path / "w.png"), photo)


@pytest.mark.parametrize(
    "content,name",
    [
        (b"GIF89a" + b"\0" * 64, "x.gif"),
        (b"II*\0" + b"\0" * 64, "x.tif"),
        (b"this is not an image at all", "x.png"),
        (b"", "empty.jpg"),
    ],
)
def test_other_images_are_refused_naming_accepted_formats(tmp_path, content, name):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(UnsupportedImageFormat, match="PNG, JPEG, BMP, WebP"):
        load_image(p)


def test_truncated_png_is_a_typed_error(tmp_path, photo):
    ok, buf = cv2.imencode(".png", photo)
    p = tmp_path / "t.png"
    p.write_bytes(buf.tobytes()[:200])
    with pytest.raises(UnsupportedImageFormat, match="truncated or corrupt"):
        load_image(p)


def test_huge_image_refused_from_header_before_decoding(tmp_path):
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    p = tmp_path / "huge.png"
    p.write_bytes(png)
    with pytest.raises(ImageTooLarge, match="20000x20000"):
        load_image(p)


def test_missing_image_is_not_found(tmp_path):
    with pytest.raises(InputNotFound):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for callers that catch that
        load_image(tmp_path / "nope.jpg")


def test_wav_and_flac_load_as_16k_mono_float(tmp_path, speech_wav):
    ref = load_audio(speech_wav)
    assert ref.dtype == np.float32 and ref.ndim == 1 and np.abs(ref).max() <= 1.0
    data, sr = sf.read(str(speech_wav), dtype="float32")
    sf.write(str(tmp_path / "s.flac"), data, sr)
    np.testing.assert_allclose(load_audio(tmp_path / "s.flac"), ref, atol=1e-4)


def test_stereo_44k_24bit_is_downmixed_and_resampled(tmp_path, speech_wav):
    import soxr

    ref = load_audio(speech_wav)
    up = soxr.resample(ref, 16000, 44100)
    sf.write(str(tmp_path / "st.wav"), np.stack([up, up], 1), 44100, subtype="PCM_24")
    got = load_audio(tmp_path / "st.wav")
    assert abs(got.size - ref.size) <= 2
    n = min(got.size, ref.size)
    assert np.corrcoef(got[:n], ref[:n])[0, 1] > 0.99


def test_mp3_is_refused_by_content_and_by_name(tmp_path, data_dir):
    with pytest.raises(UnsupportedAudioFormat, match="WAV .* FLAC"):
        load_audio(data_dir / "speech_short.mp3")
    renamed = tmp_path / "speech.wav"  # an mp3 pretending to be a wav
    renamed.write_bytes((data_dir / "speech_short.mp3").read_bytes())
    with pytest.raises(UnsupportedAudioFormat, match="MP3"):
        load_audio(renamed)


@pytest.mark.parametrize("content", [b"", b"hello, this is text", b"RIFF\x10\0\0\0WAVEfmt "])
def test_broken_audio_files_are_typed_errors(tmp_path, content):
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(UnsupportedAudioFormat):
        load_audio(p)


def test_nan_audio_array_is_refused():
    with pytest.raises(InvalidAudio, match="NaN"):
        load_audio(np.array([0.0, np.nan, 0.1], np.float32), 16000)
