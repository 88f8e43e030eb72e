"""Image input: format check from the file's bytes, size cap before decoding, RGB uint8 out."""

from __future__ import annotations

import io
import logging
import os
import struct
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import ImageTooLarge, UnsupportedImageFormat, check_input_file

log = logging.getLogger(__name__)

ACCEPTED_IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "WebP")
ACCEPTED_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
MAX_PIXELS = 50_000_000  # ~ 8660 x 5773; refused from the header, before decoding
MAX_FILE_BYTES = 200 * 1024 * 1024

ImageLike = str | os.PathLike | np.ndarray


def _accepted() -> str:
    return "accepted image formats: " + ", ".join(ACCEPTED_IMAGE_FORMATS)


def sniff_image(head: bytes) -> tuple[str, tuple[int, int] | None]:
    """Return (format, (width, height) or None) from the first bytes of a file.

    Raises UnsupportedImageFormat when the bytes are none of the accepted formats.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(head) >= 24 and head[12:16] == b"IHDR":  # the first chunk of every PNG
            w, h = struct.unpack(">II", head[16:24])
            return "PNG", (w, h)
        return "PNG", None
    if head.startswith(b"\xff\xd8"):
        return "JPEG", _jpeg_size(head)
    if head.startswith(b"BM") and len(head) >= 26:
        w, h = struct.unpack("<ii", head[18:26])
        return "BMP", (abs(w), abs(h))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP", _webp_size(head)
    raise UnsupportedImageFormat(f"not an image toonsync can read ({_accepted()})")


def _jpeg_size(b: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            i += 1
            continue
        marker = b[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        (seg_len,) = struct.unpack(">H", b[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", b[i + 5 : i + 9])
            return w, h
        i += 2 + seg_len
    return None


def _webp_size(b: bytes) -> tuple[int, int] | None:
    chunk = b[12:16]
    if chunk == b"VP8 " and len(b) >= 30:
        w, h = struct.unpack("<HH", b[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(b) >= 25:
        bits = int.from_bytes(b[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(b) >= 30:
        return int.from_bytes(b[24:27], "little") + 1, int.from_bytes(b[27:30], "little") + 1
    return None


MAX_DECODED_BYTES = 200 << 20  # what one decoded image may occupy (50 MP of 8-bit RGB is 150 MB)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # IHDR colour type -> samples per pixel


def _decoded_bytes(data: bytes, fmt: str, size: tuple[int, int]) -> int:
    """Bytes the decoder will allocate: a PNG's bit depth and channels are in its header; others decode to
    8-bit RGB(A)."""
    w, h = size
    if fmt == "PNG" and len(data) >= 26:
        depth, colour = data[24], data[25]
        return w * h * _PNG_CHANNELS.get(colour, 4) * max(1, depth // 8)
    return w * h * 4


def _check_pixels(size: tuple[int, int] | None, what: str) -> None:
    if size is None:
        return
    w, h = size
    if w <= 0 or h <= 0:
        raise UnsupportedImageFormat(f"{what}: image header says {w}x{h} pixels ({_accepted()})")
    if w * h > MAX_PIXELS:
        raise ImageTooLarge(
            f"{what}: {w}x{h} = {w * h / 1e6:.0f} MP exceeds the {MAX_PIXELS / 1e6:.0f} MP cap; "
            "downscale the image first"
        )


def _u16_to_u8(a: np.ndarray) -> np.ndarray:
    """16-bit samples to 8-bit (rounded), in row blocks: a float32 copy of a large image would be 4x its size."""
    out = np.empty(a.shape, np.uint8)
    for i in range(0, a.shape[0], 256):
        out[i : i + 256] = (a[i : i + 256].astype(np.float32) / 257.0).round()
    return out


def to_rgb_uint8(img: np.ndarray, what: str = "image") -> np.ndarray:
    """Convert gray / RGBA / 16-bit / float arrays to contiguous RGB uint8 [H, W, 3]."""
    a = np.asarray(img)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or min(a.shape[:2]) < 1:
        raise UnsupportedImageFormat(
            f"{what}: array of shape {a.shape} is not an image; accepted arrays: [H, W], [H, W, 3] RGB "
            "or [H, W, 4] RGBA"
        )
    if a.dtype == np.uint16:
        a = _u16_to_u8(a)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise UnsupportedImageFormat(f"{what}: float image contains NaN or inf")
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
        a = np.clip(a * scale, 0, 255).round().astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:  # composite over white, in row blocks (bounded float temporaries)
        out = np.empty(a.shape[:2] + (3,), np.uint8)
        for i in range(0, a.shape[0], 256):
            blk = a[i : i + 256]
            alpha = blk[:, :, 3:4].astype(np.float32) / 255.0
            out[i : i + 256] = (blk[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).round()
        a = out
    return np.ascontiguousarray(a)


def decode_image(data: bytes, what: str = "image") -> np.ndarray:
    """Encoded bytes (PNG/JPEG/BMP/WebP) -> RGB uint8: format sniffed, pixel cap checked from the header
    before decoding, EXIF orientation of JPEGs applied."""
    if not data:
        raise UnsupportedImageFormat(f"{what} is empty (0 bytes); {_accepted()}")
    try:  # a JPEG's frame header can sit after any amount of metadata: its segments are walked to it
        fmt, dims = sniff_image(data if data[:2] == b"\xff\xd8" else data[:65536])
    except UnsupportedImageFormat as e:
        raise UnsupportedImageFormat(f"{what}: {e}") from None
    if dims is None and fmt in ("PNG", "JPEG"):
        raise UnsupportedImageFormat(f"{what}: {fmt} without a readable image header ({_accepted()})")
    _check_pixels(dims, what)
    if dims is not None and _decoded_bytes(data, fmt, dims) > MAX_DECODED_BYTES:
        raise ImageTooLarge(
            f"{what}: {dims[0]}x{dims[1]} {fmt} decodes to {_decoded_bytes(data, fmt, dims) >> 20} MB (cap "
            f"{MAX_DECODED_BYTES >> 20} MB); save it as 8-bit or downscale it"
        )
    img = _decode_png(data) if fmt == "PNG" else _decode_cv2(data, fmt)
    if img is None:
        raise UnsupportedImageFormat(f"{what}: {fmt} data is truncated or corrupt ({_accepted()})")
    log.debug("decoded %s %s: %s %s", fmt, what, img.shape, img.dtype)
    return to_rgb_uint8(img, what)


def _decode_png(data: bytes) -> np.ndarray | None:
    """PNG -> RGB or RGBA uint8 with FFmpeg's decoder (through PyAV): the frame is the only full-size buffer
    when it is already 8-bit RGB (OpenCV's ``imdecode`` holds two), one conversion otherwise. Any bit depth,
    palette, grey and tRNS transparency."""
    try:
        with av.open(io.BytesIO(data), format="png_pipe") as c:
            frame = next(c.decode(video=0))
        if frame.width * frame.height == 0:
            return None
        if frame.format.name in ("rgb48be", "rgba64be"):
            return _from_16bit(frame, 3 if frame.format.name == "rgb48be" else 4)
        alpha = frame.format.name in ("pal8", "ya8", "ya16be", "rgba")
        return _packed(frame.reformat(format="rgba" if alpha else "rgb24"), 4 if alpha else 3)
    except (av.FFmpegError, StopIteration, ValueError):
        return None


def _from_16bit(frame: av.VideoFrame, channels: int) -> np.ndarray:
    """A 16-bit RGB(A) frame read in place (big-endian samples) to RGB uint8, alpha composited over white, in
    row blocks: the output is the only new full-size buffer."""
    plane, h, w = frame.planes[0], frame.height, frame.width
    a = np.ndarray((h, w, channels), ">u2", memoryview(plane), strides=(plane.line_size, 2 * channels, 2))
    out = np.empty((h, w, 3), np.uint8)
    for i in range(0, h, 64):
        blk = a[i : i + 64].astype(np.float32)
        blk *= 255.0 / 65535.0
        if channels == 4:  # c * alpha + 255 * (1 - alpha) = (c - 255) * alpha + 255
            rgb = blk[:, :, :3]
            rgb -= 255.0
            rgb *= blk[:, :, 3:4] / 255.0
            rgb += 255.0
        out[i : i + 64] = np.rint(blk[:, :, :3])
    return out


def _packed(frame: av.VideoFrame, channels: int) -> np.ndarray:
    """A one-plane frame's pixels as a C-contiguous [H, W, C] array on the frame's own buffer: each row is
    moved down over the line padding in place (the destination never passes its source), so no copy."""
    plane = frame.planes[0]
    buf = np.frombuffer(memoryview(plane), np.uint8)
    row, line, h = frame.width * channels, plane.line_size, frame.height
    if line != row:
        for r in range(1, h):
            buf[r * row : (r + 1) * row] = buf[r * line : r * line + row]
    return buf[: h * row].reshape(h, frame.width, channels)


def _decode_cv2(data: bytes, fmt: str) -> np.ndarray | None:
    """JPEG / BMP / WebP -> RGB(A) uint8 with OpenCV (EXIF orientation of JPEGs applied)."""
    flags = cv2.IMREAD_COLOR_RGB if fmt == "JPEG" else cv2.IMREAD_UNCHANGED
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None
    if img is not None and flags == cv2.IMREAD_UNCHANGED and img.ndim == 3:
        img = img if img.dtype == np.uint8 else _u16_to_u8(img)
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB if img.shape[2] == 3 else cv2.COLOR_BGRA2RGBA, dst=img)
    return img


def load_image(src: ImageLike) -> np.ndarray:
    """Load an image file (PNG/JPEG/BMP/WebP) or accept an array; return RGB uint8 [H, W, 3].

    EXIF orientation of JPEGs is applied. Images above MAX_PIXELS are refused from the header
    alone, before any pixel is decoded.
    """
    if isinstance(src, np.ndarray):
        return to_rgb_uint8(src)
    if not isinstance(src, (str, os.PathLike)):
        raise UnsupportedImageFormat(f"expected an image path or a numpy array, got {type(src).__name__}")
    path = check_input_file(Path(src), "image", UnsupportedImageFormat, _accepted())
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImageTooLarge(f"{path} is {size / 2**20:.0f} MiB; the cap is {MAX_FILE_BYTES / 2**20:.0f} MiB")
    return decode_image(path.read_bytes(), str(path))
