"""The bad-input catalogue: every hostile or broken input and the answer toonsync gives.

Each case builds a real input in a temp dir, feeds it to the public API (or the CLI) and states the
expected outcome: a typed error (class + message fragment), a warning plus a documented fallback, or
acceptance. ``tests/test_catalogue.py`` runs them; ``python -m tests.catalogue`` regenerates
``docs/reliability.md`` (a test fails if the document drifts from this table).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from toonsync.runtime import errors as E

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "runtime/assets/demo_face.jpg"
SPEECH = ROOT / "tests/data/speech_short.wav"
DATA = ROOT / "tests/data"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # audio | image | landmarks | background | model | cli
    what: str  # the input, in words
    make: Callable[[Path], object]  # tmp dir -> the input (path or args)
    expect: str  # "error" | "warn" | "ok"
    exc: type | None = None  # error/warning class
    match: str = ""  # fragment of the message
    answer: str = ""  # the behaviour, in words (docs)


def _speech() -> tuple[np.ndarray, int]:
    a, sr = sf.read(str(SPEECH), dtype="float32")
    return a, sr


def _wav(tmp: Path, name: str, data: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    p = tmp / name
    sf.write(str(p), data, sr, subtype=subtype)
    return p


def _bytes(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def _resampled(sr: int) -> Callable[[Path], Path]:
    import soxr

    return lambda t: _wav(t, f"s{sr}.wav", soxr.resample(_speech()[0], 16000, sr), sr)


def _media(tmp: Path, name: str, fmt: str, codec: str) -> Path:
    import av

    p = tmp / name
    a = (_speech()[0] * 32767).astype(np.int16)
    with av.open(str(p), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=16000, layout="mono")
        f = av.AudioFrame.from_ndarray(a[None], format="s16", layout="mono")
        f.sample_rate = 16000
        for pk in s.encode(f):
            c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return p


def _ogg(tmp: Path) -> Path:
    p = tmp / "s.ogg"
    sf.write(str(p), _speech()[0], SR, format="OGG", subtype="VORBIS")
    return p


def _photo() -> np.ndarray:
    return cv2.imread(str(FACE))  # BGR


def _img(tmp: Path, name: str, bgr: np.ndarray, params=()) -> Path:
    p = tmp / name
    cv2.imwrite(str(p), bgr, list(params))
    return p


def _png_header(w: int, h: int, depth: int = 8, colour: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def _pil_save(tmp: Path, name: str, mode: str, **kw) -> Path:
    from PIL import Image

    im = Image.open(FACE)
    if kw.pop("rotate", False):  # store the photo turned 90 degrees, with EXIF saying how to turn it back
        im = im.transpose(Image.Transpose.ROTATE_270)
        exif = Image.Exif()
        exif[0x0112] = 8
        kw["exif"] = exif.tobytes()
    p = tmp / name
    im.convert(mode).save(p, "JPEG", **kw)
    return p


def _two_faces(tmp: Path) -> Path:
    a, g = _photo(), cv2.imread(str(DATA / "grace_hopper.jpg"))
    h = max(a.shape[0], g.shape[0])
    c = np.full((h, a.shape[1] + g.shape[1], 3), 255, np.uint8)
    c[: a.shape[0], : a.shape[1]] = a
    c[: g.shape[0], a.shape[1] :] = g
    return _img(tmp, "two.png", c)


def _tiny_face(tmp: Path) -> Path:
    c = np.full((480, 640, 3), 235, np.uint8)
    c[200:240, 300:340] = cv2.resize(_photo(), (40, 40), interpolation=cv2.INTER_AREA)
    return _img(tmp, "tiny.png", c)


def _drawn_face(tmp: Path) -> Path:
    from toonsync.runtime.prepare import load_face

    av = load_face(FACE)
    return _img(tmp, "drawn.png", cv2.cvtColor(av.renderer(256).draw(av.neutral), cv2.COLOR_RGB2BGR))


def _full_dir(tmp: Path) -> str:
    d = tmp / "frames"
    d.mkdir()
    (d / "keep.txt").write_text("a file of the user's")
    return str(d)


DRAWN = DATA / "drawn_character.png"


def _drawn_landmarks(tmp: Path, mutate: Callable[[list], object]) -> Path:
    """The drawn fixture's landmarks JSON, changed by ``mutate`` (which returns the new document)."""
    import json

    pts = json.loads((DATA / "drawn_character.json").read_text())["landmarks"]
    p = tmp / "lm.json"
    p.write_text(json.dumps(mutate(pts)))
    return p


def _models(tmp: Path, mutate: Callable[[Path], None] | None) -> Path:
    import shutil

    from toonsync.runtime.backend import model_dir

    d = tmp / "models"
    d.mkdir()
    for f in model_dir().glob("audio2motion.*"):
        shutil.copy(f, d / f.name)
    if mutate:
        mutate(d / "audio2motion.fp32.onnx")
    return d


def _fifo(tmp: Path, name: str) -> Path:
    """A named pipe: reading it would block until a writer comes (a hang), so it must be refused."""
    p = tmp / name
    os.mkfifo(p)
    return p


def _bundle(tmp: Path, doc: object = None, raw: bytes | None = None, member: str = "avatar.json") -> Path:
    """An .avatar zip whose avatar.json is ``doc`` (JSON) or ``raw`` bytes, edited from a real bundle's."""
    import json
    import zipfile

    base = {
        "format": "toonsync-avatar",
        "version": 1,
        "style": {
            "skin": [230, 190, 170],
            "hair": [90, 60, 40],
            "eyes": [80, 60, 50],
            "lips": [200, 100, 110],
            "background": [240, 220, 230],
            "hair_length": 0.4,
            "glasses": False,
            "beard": False,
        },
        "neutral_landmarks": np.full((68, 2), 0.5).tolist(),
        "meta": {},
    }
    data = raw if raw is not None else json.dumps(doc(base) if callable(doc) else doc).encode()
    p = tmp / "a.avatar"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, data)
    return p


ATTRIBUTES = {
    "glasses": False, "glasses_shape": "round", "glasses_colour": "#3e3848", "facial_hair": "none",
    "facial_hair_colour": "#5a3c28", "hair_length": "short", "hair_reach": 0.15, "hair_style": "short_crop",
    "hair_colour": "#5a3c28", "skin_colour": "#e6beaa", "eye_colour": "#503c32", "lip_colour": "#c8646e",
    "background_colour": "#f0dce6", "clothing_colour": "#334455", "headwear": "none", "fringe": 0.5, "part": 0.0,
    "volume": 0.4, "brow_weight": 0.5,
}  # fmt: skip


def _attrs(**changes: object) -> Callable[[dict], dict]:
    """A version-3 bundle whose attributes are the valid ``ATTRIBUTES`` with ``changes`` (``_DROP`` removes one)."""

    def f(d: dict) -> dict:
        a = {k: v for k, v in {**ATTRIBUTES, **changes}.items() if v is not _DROP}
        return {**{k: v for k, v in d.items() if k != "style"}, "version": 3, "attributes": a}

    return f


def _edit(**changes: object) -> Callable[[dict], dict]:
    def f(d: dict) -> dict:
        d = {**d, **changes}
        return {k: v for k, v in d.items() if v is not _DROP}

    return f


_DROP = object()


def _card(tmp: Path, edit: Callable[[dict], None]) -> Path:
    """The shipped audio2motion model copied with its card edited by ``edit``."""
    import json

    d = _models(tmp, None)
    card = d / "audio2motion.onnx.json"
    doc = json.loads(card.read_text())
    edit(doc)
    card.write_text(json.dumps(doc))
    return d


def _copy(tmp: Path, src: Path, name: str) -> Path:
    """A copy of an input under ``name`` (cases that would overwrite an input never touch the repository)."""
    p = tmp / name
    p.write_bytes(src.read_bytes())
    return p


def _jpeg_late_sof(tmp: Path, w: int, h: int, padding: int) -> Path:
    """A JPEG whose frame header (with its size) comes after ``padding`` bytes of APP segments."""
    segs = b""
    while len(segs) < padding:
        body = b"\0" * 65000
        segs += b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    return _bytes(tmp, "late.jpg", b"\xff\xd8" + segs + sof + b"\xff\xd9")


def _odd_name(tmp: Path) -> Path:
    """The speech under a file name holding a byte that is not UTF-8."""
    p = Path(os.fsdecode(os.fsencode(str(tmp)) + b"/voice\xff.wav"))
    p.write_bytes(SPEECH.read_bytes())
    return p


def _card_text(tmp: Path, text: str) -> Path:
    """The shipped audio2motion model copied with ``text`` as its card."""
    d = _models(tmp, None)
    (d / "audio2motion.onnx.json").write_text(text)
    return d


def _bundle_with(tmp: Path, members: dict[str, bytes]) -> Path:
    """An .avatar zip holding a valid avatar.json plus ``members`` (name -> bytes)."""
    import zipfile

    p = _bundle(tmp, lambda d: d)
    with zipfile.ZipFile(p, "a", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return p


def _linked(tmp: Path, kind: str) -> Path:
    """``o.webm`` as a hard link or a symlink to a copy of the speech: writing it would destroy the input."""
    src = _copy(tmp, SPEECH, "in.wav")
    out = tmp / "o.webm"
    (os.link if kind == "hard" else os.symlink)(src, out)
    return src


def _wrong_opset(p: Path) -> None:
    import onnx

    m = onnx.load(str(p))
    m.opset_import[0].version = 99
    onnx.save(m, str(p))


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))


SR = 16000
# fmt: off
CASES: list[Case] = [
    # ---- audio ------------------------------------------------------------------------------
    Case("wav-empty-file", "audio", "0-byte .wav", lambda t: _bytes(t, "e.wav", b""), "error", E.UnsupportedAudioFormat, "empty", "UnsupportedAudioFormat: empty file"),
    Case("wav-truncated-header", "audio", "WAV cut inside its header", lambda t: _bytes(t, "t.wav", SPEECH.read_bytes()[:30]), "error", E.UnsupportedAudioFormat, "cannot decode", "UnsupportedAudioFormat naming WAV/FLAC"),
    Case("wav-truncated-data", "audio", "WAV cut in the middle of its samples", lambda t: _bytes(t, "t.wav", SPEECH.read_bytes()[: SPEECH.stat().st_size // 2]), "ok", answer="accepted: the samples present are used"),
    Case("wav-corrupt", "audio", "RIFF/WAVE magic followed by garbage", lambda t: _bytes(t, "c.wav", b"RIFF\x10\0\0\0WAVE" + bytes(range(256)) * 4), "error", E.UnsupportedAudioFormat, "cannot decode", "UnsupportedAudioFormat"),
    Case("flac-truncated", "audio", "FLAC cut after its header", lambda t: _bytes(t, "t.flac", _wav(t, "f.flac", _speech()[0], SR).read_bytes()[:60]), "error", E.ToonsyncError, "", "typed error (cannot decode / no samples)"),
    Case("mp3", "audio", ".mp3 speech", lambda t: DATA / "speech_short.mp3", "error", E.UnsupportedAudioFormat, "MP3 audio is not supported", "UnsupportedAudioFormat naming WAV and FLAC"),
    Case("ogg", "audio", ".ogg (Vorbis) speech", lambda t: _ogg(t), "error", E.UnsupportedAudioFormat, "Ogg", "UnsupportedAudioFormat"),
    Case("m4a", "audio", ".m4a (AAC) speech", lambda t: _media(t, "s.m4a", "mp4", "aac"), "error", E.UnsupportedAudioFormat, "MP4/M4A", "UnsupportedAudioFormat"),
    Case("mp4-as-audio", "audio", "an .mp4 video given as audio", lambda t: _media(t, "v.mp4", "mp4", "aac"), "error", E.UnsupportedAudioFormat, "MP4", "UnsupportedAudioFormat"),
    Case("text-as-wav", "audio", "a text file renamed .wav", lambda t: _bytes(t, "x.wav", b"hello, I am text\n" * 20), "error", E.UnsupportedAudioFormat, "not a WAV or FLAC", "UnsupportedAudioFormat"),
    Case("mp3-as-wav", "audio", "an MP3 renamed .wav", lambda t: _bytes(t, "x.wav", (DATA / "speech_short.mp3").read_bytes()), "error", E.UnsupportedAudioFormat, "MP3", "UnsupportedAudioFormat (content wins over the name)"),
    Case("wav-nan", "audio", "float WAV containing NaN", lambda t: _wav(t, "n.wav", np.where(np.arange(SR) == 500, np.nan, 0.1).astype(np.float32), SR, "FLOAT"), "error", E.InvalidAudio, "NaN", "InvalidAudio"),
    Case("wav-inf", "audio", "float WAV containing inf", lambda t: _wav(t, "i.wav", np.where(np.arange(SR) == 5, np.inf, 0.1).astype(np.float32), SR, "FLOAT"), "error", E.InvalidAudio, "inf", "InvalidAudio"),
    Case("wav-clipped", "audio", "hard-clipped speech (x8 gain)", lambda t: _wav(t, "c.wav", np.clip(_speech()[0] * 8, -1, 1), SR), "ok", answer="accepted"),
    Case("wav-dc-offset", "audio", "speech with a +0.3 DC offset", lambda t: _wav(t, "d.wav", np.clip(_speech()[0] + 0.3, -1, 1), SR), "ok", answer="accepted"),
    Case("wav-8k", "audio", "8 kHz telephone WAV", _resampled(8000), "ok", answer="accepted, resampled to 16 kHz"),
    Case("wav-44k", "audio", "44.1 kHz WAV", _resampled(44100), "ok", answer="accepted, resampled to 16 kHz"),
    Case("wav-48k", "audio", "48 kHz WAV", _resampled(48000), "ok", answer="accepted, resampled to 16 kHz"),
    Case("wav-stereo", "audio", "stereo WAV", lambda t: _wav(t, "st.wav", np.stack([_speech()[0]] * 2, 1), SR), "ok", answer="accepted, down-mixed"),
    Case("wav-24bit", "audio", "24-bit PCM WAV", lambda t: _wav(t, "24.wav", _speech()[0], SR, "PCM_24"), "ok", answer="accepted"),
    Case("wav-float64", "audio", "64-bit float WAV", lambda t: _wav(t, "64.wav", _speech()[0].astype(np.float64), SR, "DOUBLE"), "ok", answer="accepted"),
    Case("wav-0s", "audio", "valid WAV with 0 samples", lambda t: _wav(t, "z.wav", np.zeros(0, np.float32), SR), "error", E.InvalidAudio, "no samples", "InvalidAudio"),
    Case("wav-10ms", "audio", "10 ms of speech", lambda t: _wav(t, "10ms.wav", _speech()[0][:160], SR), "ok", answer="accepted: one frame"),
    Case("wav-1h", "audio", "one hour of audio", lambda t: _wav(t, "1h.wav", np.tile(_speech()[0], 1240)[: 3600 * SR], SR), "ok", answer="accepted (cap: 3 h)"),
    Case("audio-dir", "audio", "a directory given as audio", lambda t: t, "error", E.UnsupportedAudioFormat, "directory", "UnsupportedAudioFormat"),
    Case("audio-missing", "audio", "a path that does not exist", lambda t: t / "nope.wav", "error", E.InputNotFound, "not found", "InputNotFound (a FileNotFoundError)"),
    # ---- images -----------------------------------------------------------------------------
    Case("img-empty", "image", "0-byte .png", lambda t: _bytes(t, "e.png", b""), "error", E.UnsupportedImageFormat, "empty", "UnsupportedImageFormat"),
    Case("png-truncated", "image", "PNG cut after 200 bytes", lambda t: _bytes(t, "t.png", cv2.imencode(".png", _photo())[1].tobytes()[:200]), "error", E.UnsupportedImageFormat, "truncated or corrupt", "UnsupportedImageFormat"),
    Case("jpeg-truncated", "image", "JPEG cut after its headers", lambda t: _bytes(t, "t.jpg", FACE.read_bytes()[:400]), "error", E.ToonsyncError, "", "typed error (corrupt image or no face)"),
    Case("img-1x1", "image", "a 1x1 PNG", lambda t: _img(t, "1.png", np.zeros((1, 1, 3), np.uint8)), "error", E.NoFaceError, "no face", "NoFaceError"),
    Case("img-20000", "image", "PNG header claiming 20000x20000", lambda t: _bytes(t, "h.png", _png_header(20000, 20000)), "error", E.ImageTooLarge, "20000x20000", "ImageTooLarge, refused before decoding"),
    Case("img-gif", "image", "a GIF", lambda t: _bytes(t, "x.gif", b"GIF89a" + b"\0" * 64), "error", E.UnsupportedImageFormat, "PNG, JPEG, BMP, WebP", "UnsupportedImageFormat naming the accepted formats"),
    Case("img-gray", "image", "grayscale photo", lambda t: _img(t, "g.png", cv2.cvtColor(_photo(), cv2.COLOR_BGR2GRAY)), "ok", answer="accepted (converted to RGB)"),
    Case("img-rgba", "image", "RGBA photo", lambda t: _img(t, "a.png", cv2.cvtColor(_photo(), cv2.COLOR_BGR2BGRA)), "ok", answer="accepted (composited over white)"),
    Case("img-16bit", "image", "16-bit PNG photo", lambda t: _img(t, "w.png", _photo().astype(np.uint16) * 257), "ok", answer="accepted (scaled to 8 bit)"),
    Case("img-cmyk", "image", "CMYK JPEG photo", lambda t: _pil_save(t, "cmyk.jpg", "CMYK"), "ok", answer="accepted"),
    Case("img-exif-rotated", "image", "JPEG stored sideways with EXIF orientation", lambda t: _pil_save(t, "rot.jpg", "RGB", rotate=True), "ok", answer="accepted (EXIF orientation applied, face found)"),
    Case("img-webp", "image", "WebP photo", lambda t: _img(t, "p.webp", _photo()), "ok", answer="accepted"),
    Case("img-bmp", "image", "BMP photo", lambda t: _img(t, "p.bmp", _photo()), "ok", answer="accepted"),
    Case("img-two-faces", "image", "two people side by side", _two_faces, "warn", E.MultipleFacesWarning, "2 faces", "MultipleFacesWarning; the largest face is used"),
    Case("img-tiny-face", "image", "a 40 px face in a 640x480 picture", _tiny_face, "error", E.NoFaceError, "face", "NoFaceError"),
    Case("img-side-profile", "image", "side-profile photo (cameraman)", lambda t: DATA / "side_profile_camera.jpg", "warn", E.SideProfileWarning, "turned to the side", "SideProfileWarning; frontal fallback avatar with the photo's colours"),
    Case("img-no-face", "image", "landscape photo without a face", lambda t: DATA / "no_face_coffee.jpg", "error", E.NoFaceError, "no face", "NoFaceError"),
    Case("img-drawn-face", "image", "a drawn (anime) face given as a photo", _drawn_face, "warn", E.DrawingFallbackWarning, "is a drawing", "animated as a drawn character from its fitted points, with DrawingFallbackWarning (photos never are; docs/drawings.md)"),
    Case("img-text-as-png", "image", "a text file renamed .png", lambda t: _bytes(t, "t.png", b"not an image\n" * 10), "error", E.UnsupportedImageFormat, "not an image", "UnsupportedImageFormat"),
    # ---- models -----------------------------------------------------------------------------
    Case("onnx-corrupt", "model", "model file with a flipped byte", lambda t: _models(t, _flip), "error", E.ModelError, "does not match its model card", "ModelError naming the file (sha256 check)"),
    Case("onnx-truncated", "model", "model file cut to a third", lambda t: _models(t, _truncate), "error", E.ModelError, "does not match its model card", "ModelError (sha256 check)"),
    Case("onnx-wrong-opset", "model", "model re-saved with opset 99", lambda t: _models(t, _wrong_opset), "error", E.ModelError, "does not match its model card", "ModelError (sha256 check)"),
    Case("onnx-missing-dir", "model", "model directory that does not exist", lambda t: t / "no-models", "error", E.ModelError, "does not exist", "ModelError"),
    Case("onnx-no-card", "model", "model directory without model cards", lambda t: (t / "m").mkdir() or (t / "m"), "error", E.ModelError, "model card .* not found", "ModelError: run `toonsync export`"),
    # ---- drawn characters: --landmarks JSON (runtime.drawing) -------------------------------
    Case("lm-67-points", "landmarks", "landmarks JSON with 67 points", lambda t: _drawn_landmarks(t, lambda p: p[:67]), "error", E.InvalidLandmarks, "expected 68", "InvalidLandmarks naming the accepted layout"),
    Case("lm-nan", "landmarks", "landmarks JSON with a NaN coordinate", lambda t: _drawn_landmarks(t, lambda p: [[float("nan"), 1.0]] + p[1:]), "error", E.InvalidLandmarks, "not a finite number", "InvalidLandmarks naming the point"),
    Case("lm-outside", "landmarks", "a landmark outside the image", lambda t: _drawn_landmarks(t, lambda p: p[:30] + [[5000.0, 10.0]] + p[31:]), "error", E.InvalidLandmarks, "outside", "InvalidLandmarks naming the point and the image size"),
    Case("lm-collapsed", "landmarks", "landmarks with the jaw, brows, nose and mouth piled on the eyes", lambda t: _drawn_landmarks(t, lambda p: [p[40]] * 36 + p[36:48] + [p[40]] * 20), "error", E.InvalidLandmarks, "do not form a face", "InvalidLandmarks naming the first part out of place"),
    Case("lm-no-key", "landmarks", "landmarks JSON object without a \"landmarks\" key", lambda t: _drawn_landmarks(t, lambda p: {"points": p}), "error", E.InvalidLandmarks, "no \"landmarks\" key", "InvalidLandmarks naming the accepted layouts"),
    Case("lm-not-json", "landmarks", "a text file as landmarks", lambda t: _bytes(t, "lm.json", b"not json"), "error", E.InvalidLandmarks, "not JSON", "InvalidLandmarks"),
    Case("lm-missing", "landmarks", "landmarks file that does not exist", lambda t: t / "nope.json", "error", E.InputNotFound, "landmarks file not found", "InputNotFound (a FileNotFoundError)"),
    Case("lm-drawn-ok", "landmarks", "the drawn fixture + its 68-point JSON", lambda t: DATA / "drawn_character.json", "ok", answer="a drawn-character avatar (its own pixels animated by render.onnx)"),
    # ---- backgrounds (--background, runtime.background) ---------------------------------------
    Case("bg-bad-hex", "background", "background colour `#12345` (5 hex digits)", lambda t: "#12345", "error", E.InvalidBackground, "#rrggbb", "InvalidBackground naming the accepted specs"),
    Case("bg-unknown-name", "background", "background `bleu` (no such colour or file)", lambda t: "bleu", "error", E.InvalidBackground, "accepted: default, transparent", "InvalidBackground listing colours, image types, transparent"),
    Case("bg-bad-tuple", "background", "background colour (300, 0, 0)", lambda t: (300, 0, 0), "error", E.InvalidBackground, "0..255", "InvalidBackground"),
    Case("bg-missing-image", "background", "background image that does not exist", lambda t: str(t / "nope.png"), "error", E.InputNotFound, "background image not found", "InputNotFound (a FileNotFoundError)"),
    Case("bg-text-as-png", "background", "a text file renamed .png as background", lambda t: str(_bytes(t, "b.png", b"not an image\n" * 10)), "error", E.UnsupportedImageFormat, "not an image", "UnsupportedImageFormat, before rendering starts"),
    Case("bg-directory", "background", "a directory as background image", lambda t: str(t), "error", E.UnsupportedImageFormat, "directory", "UnsupportedImageFormat"),
    Case("bg-colour-ok", "background", "background colour `#203040`", lambda t: "#203040", "ok", answer="accepted"),
    Case("bg-image-ok", "background", "a photo as background image", lambda t: str(DATA / "no_face_coffee.jpg"), "ok", answer="accepted (scaled to cover, centre-cropped)"),
    Case("cli-transparent-mp4", "cli", "`render --background transparent -o o.mp4`", lambda t: ["render", str(FACE), str(SPEECH), "-o", str(t / "o.mp4"), "--background", "transparent"], "error", None, "cannot store transparency", "exit 1, one line naming .webm, .mov and PNG sequences"),
    Case("cli-png-seq-into-full-dir", "cli", "PNG-sequence output into a directory holding other files", lambda t: ["render", str(FACE), str(SPEECH), "-o", _full_dir(t) + "/"], "error", None, "holding other files", "exit 1, one line; nothing written"),
    # ---- CLI --------------------------------------------------------------------------------
    Case("cli-unknown-flag", "cli", "`render --no-such-flag`", lambda t: ["render", str(FACE), str(SPEECH), "-o", str(t / "o.mp4"), "--no-such-flag"], "error", None, "unrecognized arguments", "exit 2, usage message"),
    Case("cli-negative-fps", "cli", "`render --fps -5`", lambda t: ["render", str(FACE), str(SPEECH), "-o", str(t / "o.mp4"), "--fps", "-5"], "error", None, "fps must be", "exit 1, one line"),
    Case("cli-unwritable-output", "cli", "output in a read-only directory", lambda t: ["render", str(FACE), str(SPEECH), "-o", "/proc/toonsync/o.mp4"], "error", None, "cannot write", "exit 1, one line"),
    Case("cli-output-is-input", "cli", "output path equal to the audio input", lambda t: ["render", str(FACE), str(SPEECH), "-o", str(SPEECH)], "error", None, "also an input", "exit 1, one line"),
    Case("cli-output-not-mp4", "cli", "output named .avi", lambda t: ["render", str(FACE), str(SPEECH), "-o", str(t / "o.avi")], "error", None, "must be an .mp4", "exit 1, one line"),
    # ---- odd paths, bundles, model cards, outputs that are inputs ----------------------------------
    Case("audio-fifo", "audio", "a named pipe (FIFO) as the audio path", lambda t: _fifo(t, "f.wav"), "error", E.UnsupportedAudioFormat, "not a regular file", "UnsupportedAudioFormat at once (reading a FIFO would block forever)"),
    Case("image-fifo", "image", "a named pipe (FIFO) as the photo path", lambda t: _fifo(t, "f.png"), "error", E.UnsupportedImageFormat, "not a regular file", "UnsupportedImageFormat at once"),
    Case("wav-12-channels", "audio", "a 12-channel WAV", lambda t: _wav(t, "c12.wav", np.tile(_speech()[0][:, None], (1, 12)) * 0.5, SR), "ok", answer="accepted: downmixed along the channel axis (its length kept)"),
    Case("avatar-no-style", "image", ".avatar whose avatar.json has no style", lambda t: _bundle(t, _edit(style=_DROP)), "error", E.InputError, "style is malformed", "InputError naming the bundle"),
    Case("avatar-colour-strings", "image", ".avatar with colours as strings", lambda t: _bundle(t, lambda d: {**d, "style": {**d["style"], "skin": "pink"}}), "error", E.InputError, "style is malformed", "InputError: a colour must be 3 numbers"),
    Case("avatar-colour-inf", "image", ".avatar with an infinite colour value", lambda t: _bundle(t, raw=b'{"format": "toonsync-avatar", "version": 1, "style": {"skin": [1e999, 0, 0]}}'), "error", E.InputError, "style is malformed", "InputError"),
    Case("avatar-landmarks-string", "image", ".avatar whose landmarks are a string", lambda t: _bundle(t, _edit(neutral_landmarks="none")), "error", E.InputError, "neutral landmarks", "InputError: 68 finite points expected"),
    Case("avatar-landmarks-nan", "image", ".avatar whose landmarks contain NaN", lambda t: _bundle(t, raw=("{\"format\": \"toonsync-avatar\", \"version\": 1, \"style\": {\"skin\": [1, 2, 3], \"hair\": [1, 2, 3], \"eyes\": [1, 2, 3], \"lips\": [1, 2, 3], \"background\": [1, 2, 3]}, \"neutral_landmarks\": [" + ", ".join(["[NaN, 0.5]"] * 68) + "]}").encode()), "error", E.InputError, "neutral landmarks", "InputError"),
    Case("avatar-landmarks-huge", "image", ".avatar whose landmarks are 1e9", lambda t: _bundle(t, _edit(neutral_landmarks=[[1e9, 1e9]] * 68)), "error", E.InputError, "neutral landmarks", "InputError"),
    Case("avatar-json-list", "image", ".avatar whose avatar.json is a JSON list", lambda t: _bundle(t, [1, 2, 3]), "error", E.InputError, "not a toonsync .avatar bundle", "InputError"),
    Case("avatar-json-binary", "image", ".avatar whose avatar.json is binary junk", lambda t: _bundle(t, raw=bytes(range(256)) * 4), "error", E.InputError, "not a toonsync .avatar bundle", "InputError"),
    Case("avatar-json-bomb", "image", ".avatar whose avatar.json inflates to 8 MB (a zip bomb)", lambda t: _bundle(t, raw=b" " * (8 << 20)), "error", E.InputError, "inflates to", "InputError from the member's size, before it is read (cap 1 MB)"),
    Case("avatar-no-json", "image", ".avatar without avatar.json", lambda t: _bundle(t, raw=b"{}", member="other.json"), "error", E.InputError, "not a toonsync .avatar bundle", "InputError"),
    Case("avatar-wrong-version", "image", ".avatar of bundle version 99", lambda t: _bundle(t, _edit(version=99)), "error", E.InputError, "version 99 is not supported", "InputError: prepare the avatar again"),
    Case("card-no-sha256", "model", "model card with a file's sha256 removed", lambda t: _card(t, lambda d: d["files"]["audio2motion.fp32.onnx"].pop("sha256")), "error", E.ModelError, "malformed", "ModelError: re-export (the check fails closed)"),
    Case("card-no-files", "model", "model card without its files list", lambda t: _card(t, lambda d: d.pop("files")), "error", E.ModelError, "not listed with a sha256", "ModelError: a file the card does not name is refused"),
    Case("card-inputs-wrong-type", "model", "model card whose inputs are a list", lambda t: _card(t, lambda d: d.__setitem__("inputs", [1, 2])), "error", E.ModelError, "must map tensor names", "ModelError naming the field"),
    Case("cli-sheet-is-input", "cli", "`render --sheet` naming the audio input", lambda t: ["render", str(FACE), str(_copy(t, SPEECH, "a.png")), "-o", str(t / "o.mp4"), "--sheet", str(t / "a.png")], "error", None, "also an input", "exit 1, one line; the input untouched"),
    Case("cli-motion-out-is-input", "cli", "`motion a.json -o a.json` (a WAV named .json)", lambda t: ["motion", str(_copy(t, SPEECH, "a.json")), "-o", str(t / "a.json")], "error", None, "also an input", "exit 1, one line; the input untouched"),
    Case("cli-sheet-cmd-out-is-input", "cli", "`sheet face.jpg -o face.jpg`-style: output = the photo", lambda t: ["sheet", str(_copy(t, FACE, "f.png")), "-o", str(t / "f.png")], "error", None, "also an input", "exit 1, one line; the photo untouched"),
    Case("cli-record-is-input", "cli", "`stream --wav s.webm --record s.webm` (a WAV named .webm)", lambda t: ["stream", "--wav", str(_copy(t, SPEECH, "s.webm")), "--face", str(FACE), "--record", str(t / "s.webm"), "--fast"], "error", None, "also an input", "exit 1, one line; the input untouched"),
    Case("jpeg-late-size-marker", "image", "JPEG whose 12000x12000 frame header comes after 130 KB of metadata", lambda t: _jpeg_late_sof(t, 12000, 12000, 130_000), "error", E.ImageTooLarge, "12000x12000", "ImageTooLarge: the size is read wherever its marker is"),
    Case("png-16bit-rgba-budget", "image", "16-bit RGBA PNG header 6000x6000 (under the pixel cap, 288 MB decoded)", lambda t: _bytes(t, "d.png", _png_header(6000, 6000, 16, 6)), "error", E.ImageTooLarge, "decodes to", "ImageTooLarge: a decode budget of 200 MB, before decoding"),
    Case("jpeg-no-frame-header", "image", "JPEG with no frame header", lambda t: _bytes(t, "n.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 200 + b"\xff\xd9"), "error", E.UnsupportedImageFormat, "without a readable image header", "UnsupportedImageFormat"),
    Case("img-sliver", "image", "a 1x4000 pixel image", lambda t: _img(t, "sliver.png", np.zeros((4000, 1, 3), np.uint8)), "error", E.NoFaceError, "at least 32 pixels", "NoFaceError (no crash in the detector's resize)"),
    Case("wav-non-utf8-name", "audio", "a WAV whose file name is not UTF-8", _odd_name, "ok", answer="accepted (read through a file object)"),
    # ---- model cards that lie about their graph ----------------------------------------------------------
    Case("card-hidden-mismatch", "model", "model card giving the LSTM state 64 units (the graph has 192)", lambda t: _card(t, lambda d: d["inputs"].__setitem__("h", [1, "batch", 64])), "error", E.ModelError, "gives h the shape", "ModelError naming the tensor, at load (not a deep onnxruntime error later)"),
    Case("card-negative-lookahead", "model", "model card with look-ahead -2 frames", lambda t: _card(t, lambda d: d.__setitem__("lookahead_frames", -2)), "error", E.ModelError, "lookahead_frames must be", "ModelError"),
    Case("card-fps-zero", "model", "model card with fps 0", lambda t: _card(t, lambda d: d.__setitem__("fps", 0)), "error", E.ModelError, "fps must be", "ModelError"),
    Case("card-missing-output", "model", "model card without one of the graph's outputs", lambda t: _card(t, lambda d: d["outputs"].pop("h_out")), "error", E.ModelError, "does not describe its graph", "ModelError"),
    Case("card-extra-input", "model", "model card naming an input the graph lacks", lambda t: _card(t, lambda d: d["inputs"].__setitem__("x", [1])), "error", E.ModelError, "does not describe its graph", "ModelError"),
    Case("card-negative-size", "model", "model card with a size of -4", lambda t: _card(t, lambda d: d["inputs"].__setitem__("mel", ["batch", -4, 80])), "error", E.ModelError, "tensor sizes must be", "ModelError"),
    Case("card-short-sha256", "model", "model card whose sha256 is 3 characters", lambda t: _card(t, lambda d: d["files"]["audio2motion.fp32.onnx"].__setitem__("sha256", "abc")), "error", E.ModelError, "not listed with a sha256", "ModelError (fails closed)"),
    Case("card-wrong-sha256", "model", "model card whose sha256 is another file's", lambda t: _card(t, lambda d: d["files"]["audio2motion.fp32.onnx"].__setitem__("sha256", "0" * 64)), "error", E.ModelError, "does not match its model card", "ModelError"),
    Case("card-json-list", "model", "model card that is a JSON list", lambda t: _card_text(t, "[]"), "error", E.ModelError, "has no 'name'", "ModelError"),
    Case("card-not-json", "model", "model card that is not JSON", lambda t: _card_text(t, "{"), "error", E.ModelError, "not valid JSON", "ModelError"),
    # ---- more hostile bundles ---------------------------------------------------------------------------
    Case("avatar-67-points", "image", ".avatar with 67 neutral landmarks", lambda t: _bundle(t, _edit(neutral_landmarks=[[0.5, 0.5]] * 67)), "error", E.InputError, "neutral landmarks", "InputError"),
    Case("avatar-no-landmarks", "image", ".avatar without neutral landmarks", lambda t: _bundle(t, _edit(neutral_landmarks=_DROP)), "error", E.InputError, "neutral landmarks", "InputError"),
    Case("avatar-style-number", "image", ".avatar whose style is a number", lambda t: _bundle(t, _edit(style=5)), "error", E.InputError, "style is malformed", "InputError"),
    Case("avatar-hair-length-text", "image", ".avatar with hair_length \"long\"", lambda t: _bundle(t, lambda d: {**d, "style": {**d["style"], "hair_length": "long"}}), "error", E.InputError, "style is malformed", "InputError"),
    Case("avatar-colour-two-values", "image", ".avatar with a colour of two numbers", lambda t: _bundle(t, lambda d: {**d, "style": {**d["style"], "eyes": [1, 2]}}), "error", E.InputError, "style is malformed", "InputError"),
    Case("avatar-version-text", "image", ".avatar whose version is the string \"1\"", lambda t: _bundle(t, _edit(version="1")), "error", E.InputError, "is not supported", "InputError"),
    Case("avatar-attrs-no-glasses", "image", ".avatar whose attributes lack glasses", lambda t: _bundle(t, _attrs(glasses=_DROP)), "error", E.InputError, "attributes are malformed", "InputError naming the missing key"),
    Case("avatar-attrs-glasses-text", "image", ".avatar with attributes glasses \"yes\"", lambda t: _bundle(t, _attrs(glasses="yes")), "error", E.InputError, "glasses must be true or false", "InputError"),
    Case("avatar-attrs-unknown-style", "image", ".avatar with an unknown hair_style", lambda t: _bundle(t, _attrs(hair_style="mohawk")), "error", E.InputError, "hair_style must be one of", "InputError naming the hairstyles"),
    Case("avatar-attrs-facial-hair", "image", ".avatar with facial_hair \"full\"", lambda t: _bundle(t, _attrs(facial_hair="full")), "error", E.InputError, "facial_hair must be one of", "InputError naming none|stubble|moustache|goatee|beard"),
    Case("avatar-attrs-bad-colour", "image", ".avatar with hair_colour \"#12\"", lambda t: _bundle(t, _attrs(hair_colour="#12")), "error", E.InputError, "hair_colour must be #rrggbb", "InputError"),
    Case("avatar-attrs-length-mismatch", "image", ".avatar whose hair_length says long but hair_reach short", lambda t: _bundle(t, _attrs(hair_length="long")), "error", E.InputError, "does not match hair_reach", "InputError"),
    Case("avatar-attrs-reach-nan", "image", ".avatar with hair_reach NaN", lambda t: _bundle(t, _attrs(hair_reach=float("nan"))), "error", E.InputError, "hair_reach must be a number", "InputError"),
    Case("avatar-attrs-list", "image", ".avatar whose attributes are a list", lambda t: _bundle(t, lambda d: {**_attrs()(d), "attributes": [1, 2]}), "error", E.InputError, "attributes are malformed", "InputError"),
    Case("avatar-other-format", "image", ".avatar whose format is another program's", lambda t: _bundle(t, _edit(format="other")), "error", E.InputError, "not a toonsync .avatar bundle", "InputError"),
    Case("avatar-deep-json", "image", ".avatar whose JSON nests 100 000 lists deep", lambda t: _bundle(t, raw=b"[" * 100_000 + b"]" * 100_000), "error", E.InputError, "not a toonsync .avatar bundle", "InputError (no RecursionError traceback)"),
    Case("avatar-stylized-bomb", "image", ".avatar whose stylized.png inflates to 40 MB", lambda t: _bundle_with(t, {"stylized.png": b"\0" * (40 << 20)}), "error", E.InputError, "inflates to", "InputError from the member's declared size (cap 32 MB)"),
    Case("avatar-base-junk", "image", ".avatar whose base.png is not an image", lambda t: _bundle_with(t, {"base.png": b"junk" * 100}), "error", E.UnsupportedImageFormat, "base.png", "UnsupportedImageFormat naming the member"),
    Case("avatar-directory", "image", "a directory named x.avatar", lambda t: (t / "x.avatar").mkdir() or (t / "x.avatar"), "error", E.InputError, "not a regular file", "InputError"),
    # ---- devices, pipes and sizes -----------------------------------------------------------------------
    Case("audio-dev-null", "audio", "/dev/null as the audio", lambda t: Path("/dev/null"), "error", E.UnsupportedAudioFormat, "not a regular file", "UnsupportedAudioFormat"),
    Case("flac-fifo", "audio", "a named pipe called speech.flac", lambda t: _fifo(t, "s.flac"), "error", E.UnsupportedAudioFormat, "not a regular file", "UnsupportedAudioFormat at once"),
    Case("image-dev-zero", "image", "/dev/zero as the photo (endless zeros)", lambda t: Path("/dev/zero"), "error", E.UnsupportedImageFormat, "not a regular file", "UnsupportedImageFormat at once"),
    Case("wav-24-channels", "audio", "a 24-channel WAV", lambda t: _wav(t, "c24.wav", np.tile(_speech()[0][:8000, None], (1, 24)) * 0.3, SR), "ok", answer="accepted: downmixed along the channel axis"),
    Case("img-wide-sliver", "image", "a 5000x2 pixel image", lambda t: _img(t, "w.png", np.zeros((2, 5000, 3), np.uint8)), "error", E.NoFaceError, "at least 32 pixels", "NoFaceError"),
    Case("img-31px", "image", "a 31x31 pixel image", lambda t: _img(t, "s.png", np.full((31, 31, 3), 128, np.uint8)), "error", E.NoFaceError, "at least 32 pixels", "NoFaceError"),
    Case("jpeg-late-small-frame", "image", "JPEG whose 100x100 frame header comes after 130 KB of metadata, then no data", lambda t: _jpeg_late_sof(t, 100, 100, 130_000), "error", E.UnsupportedImageFormat, "truncated or corrupt", "UnsupportedImageFormat (its size was found and allowed; the data is not there)"),
    Case("png-16bit-gray-header", "image", "16-bit grey PNG header 6000x6000 (72 MB decoded), no data", lambda t: _bytes(t, "g.png", _png_header(6000, 6000, 16, 0)), "error", E.UnsupportedImageFormat, "truncated or corrupt", "within the budget, then UnsupportedImageFormat"),
    # ---- outputs that are inputs, by any name -----------------------------------------------------------
    Case("cli-output-hardlink-of-input", "cli", "`render -o o.webm` where o.webm is a hard link to the audio", lambda t: ["render", str(FACE), str(_linked(t, "hard")), "-o", str(t / "o.webm")], "error", None, "also an input", "exit 1, one line; the audio untouched"),
    Case("cli-output-symlink-to-input", "cli", "`render -o o.webm` where o.webm is a symlink to the audio", lambda t: ["render", str(FACE), str(_linked(t, "sym")), "-o", str(t / "o.webm")], "error", None, "also an input", "exit 1, one line"),
    Case("cli-prepare-out-is-input", "cli", "`prepare f.avatar -o f.avatar`", lambda t: ["prepare", str(_copy(t, SPEECH, "f.avatar")), "-o", str(t / "f.avatar")], "error", None, "also an input", "exit 1, one line"),
    Case("cli-sheet-is-face", "cli", "`render --sheet` naming the photo (a PNG)", lambda t: ["render", str(_copy(t, FACE, "f.png")), str(SPEECH), "-o", str(t / "o.mp4"), "--sheet", str(t / "f.png")], "error", None, "also an input", "exit 1, one line; the photo untouched"),
    Case("cli-motion-out-is-face", "cli", "`motion speech.wav --face f.json -o f.json`", lambda t: ["motion", str(SPEECH), "--face", str(_copy(t, FACE, "f.json")), "-o", str(t / "f.json")], "error", None, "also an input", "exit 1, one line"),
    Case("cli-stream-record-is-face", "cli", "`stream --record` naming the face file", lambda t: ["stream", "--wav", str(SPEECH), "--face", str(_copy(t, FACE, "f.webm")), "--record", str(t / "f.webm"), "--fast"], "error", None, "also an input", "exit 1, one line"),
]
# fmt: on


def run_case(case: Case, tmp: Path):
    """Run one case; returns the result (raises what the API raises)."""
    arg = case.make(tmp)
    if case.kind == "audio":
        from toonsync.runtime.audio_io import load_audio

        return load_audio(arg)
    if case.kind == "image":
        from toonsync.runtime.prepare import load_face

        return load_face(arg)
    if case.kind == "landmarks":
        from toonsync.runtime.prepare import load_face

        return load_face(DRAWN, landmarks=arg)
    if case.kind == "background":
        from toonsync.runtime.background import parse_background

        return parse_background(arg)
    if case.kind == "model":
        from toonsync.runtime.backend import load_model

        return load_model("audio2motion", precision="fp32", backend="cpu", directory=arg)
    r = subprocess.run([sys.executable, "-m", "toonsync", *arg], capture_output=True, text=True, cwd=tmp)
    return r


def render_doc() -> str:
    lines = [
        "# Reliability: the bad-input catalogue",
        "",
        f"{len(CASES)} cases, each a test in `tests/test_catalogue.py` (generated from `tests/catalogue.py` by "
        "`python -m tests.catalogue`; a test fails if this page drifts). Every error is a `ToonsyncError` "
        "subclass (also a `ValueError` / `FileNotFoundError` / `RuntimeError`) with a message naming what is "
        "accepted; no case leaves a partial output file.",
        "",
        "| # | kind | input | behaviour |",
        "|---|---|---|---|",
    ]
    for i, c in enumerate(CASES, 1):
        lines.append(f"| {i} | {c.kind} | {c.what} | {c.answer} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    (ROOT / "docs" / "reliability.md").write_text(render_doc())
    print(f"wrote docs/reliability.md ({len(CASES)} cases)")
