"""``toonsync bench --uploads``: the kiosk server's peak RSS under its heaviest single uploads.

A fresh process (``python -m toonsync.tools.uploads DIR``) runs the kiosk server and posts each ``*.bin`` body
in DIR to ``/api/avatar``, printing one JSON line: per upload the HTTP status and the process's peak RSS after
it (the high-water mark only grows, so each figure includes the uploads before it).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import cv2
import numpy as np

from .measure import peak_rss_mb


def _png_header(w: int, h: int, depth: int, colour: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def write_bodies(d: Path) -> list[str]:
    """The uploads: a 49 MP PNG and a 22 MP 16-bit RGBA PNG (both decoded, then no face), a 16-bit RGBA PNG
    header that would decode to 288 MB, a JPEG whose 12000x12000 frame header hides after 130 KB."""
    img = np.zeros((7000, 7000, 3), np.uint8)
    img[::7, ::5] = 255
    (d / "1-png-49mp.bin").write_bytes(cv2.imencode(".png", img)[1].tobytes())
    del img
    deep = np.zeros((4700, 4700, 4), np.uint16)  # 22 MP, 169 MB decoded: inside the decode budget
    deep[::3, ::2], deep[..., 3] = 65535, 65535
    (d / "2-png-16bit-rgba-22mp.bin").write_bytes(cv2.imencode(".png", deep)[1].tobytes())
    del deep
    (d / "3-png-16bit-rgba-bomb.bin").write_bytes(_png_header(6000, 6000, 16, 6))
    app1 = b"\xff\xe1" + struct.pack(">H", 65002) + b"\0" * 65000
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 12000, 12000, 1) + b"\x01\x11\x00"
    (d / "4-jpeg-late-size-bomb.bin").write_bytes(b"\xff\xd8" + app1 * 2 + sof + b"\xff\xd9")
    return sorted(p.name for p in d.glob("*.bin"))


def main(argv: list[str] | None = None) -> None:
    """The child: serve, post every body, print the statuses and peak RSS."""
    from toonsync.runtime.server import BackgroundServer, ServerConfig, create_app

    d = Path((sys.argv[1:] if argv is None else argv)[0])
    out: dict = {}
    with BackgroundServer(create_app(ServerConfig(draw_processes=0))) as srv:
        out["idle_peak_rss_mb"] = round(peak_rss_mb(), 1)
        for f in sorted(d.glob("*.bin")):
            req = urllib.request.Request(srv.url + "/api/avatar", data=f.read_bytes(), method="POST")
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    status = r.status
            except urllib.error.HTTPError as e:
                status = e.code
            out[f.stem] = {"bytes": f.stat().st_size, "status": status, "peak_rss_mb": round(peak_rss_mb(), 1)}
    print(json.dumps(out))


def upload_peaks(tmp: Path) -> dict:
    """Run ``main`` in a fresh process over ``write_bodies``; its JSON."""
    d = tmp / "uploads"
    d.mkdir(exist_ok=True)
    write_bodies(d)
    r = subprocess.run(
        [sys.executable, "-m", "toonsync.tools.uploads", str(d)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if r.returncode != 0:
        raise RuntimeError(f"upload child failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
