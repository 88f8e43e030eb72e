"""``toonsync demo``: the bundled photo and speech -> demo.mp4 + demo_sheet.png, with timings."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .assets import DEMO_FACE, DEMO_SPEECH, asset
from .options import RenderOptions
from .pipeline import render
from .sheet import contact_sheet
from .video import probe

log = logging.getLogger("toonsync")

__all__ = ["DEMO_FACE", "DEMO_SPEECH", "asset", "run_demo"]


def run_demo(out_dir: Path, options: RenderOptions | None = None) -> dict:
    """Render the bundled photo speaking the bundled speech into ``out_dir`` (demo.mp4 + demo_sheet.png)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    face, speech = asset(DEMO_FACE), asset(DEMO_SPEECH)
    text = asset("demo_speech.txt").read_text().strip()
    log.info('demo: face %s, speech %s ("%s")', face.name, speech.name, text)
    t0 = time.perf_counter()
    res = render(face, speech, out_dir / "demo.mp4", options)
    t1 = time.perf_counter()
    sheet = contact_sheet(res.output, out_dir / "demo_sheet.png")
    info = probe(res.output)
    log.info(
        "wrote %s: %s + %s, %d frames @ %.0f fps, %.2f s (audio %.2f s), %dx%d",
        res.output,
        info.video_codec,
        info.audio_codec,
        info.frames,
        info.fps,
        info.duration_s,
        res.duration_s,
        info.width,
        info.height,
    )
    log.info("wrote %s", sheet)
    log.info(
        "timings: "
        + ", ".join(f"{k} {v:.0f}" for k, v in res.timings_ms.items())
        + f"; sheet {1e3 * (time.perf_counter() - t1):.0f} ms; backend {res.backend}"
    )
    log.info("real-time factor: %.2fx faster than real time", res.duration_s / (t1 - t0))
    return {"video": str(res.output), "sheet": str(sheet), "frames": res.frames, "timings_ms": res.timings_ms}
