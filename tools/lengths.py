"""``toonsync bench``: cost against the length of the audio -- offline render time for several clip lengths
(linear in the audio, flat per frame), and ``--long``: a long render vs 10 s in fresh processes (time per audio
second and peak RSS)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from toonsync.runtime.assets import DEMO_FACE, asset
from toonsync.runtime.mel import SAMPLE_RATE

from .cases import BenchContext
from .cold import cold_start
from .measure import _quiet, _r


def cost_vs_length(ctx: BenchContext, lengths: Iterable[float], reps: int = 3) -> dict:
    """Offline render time for several clip lengths: linear in the audio, flat per frame."""
    from toonsync.runtime.pipeline import render

    pts = []
    for s in lengths:
        clip = ctx.tile(s)
        ms = []
        for _ in range(reps):
            t = time.perf_counter()
            with _quiet("toonsync.runtime.pipeline"):
                res = render(ctx.avatar, clip, ctx.tmp / "len.mp4", animator=ctx.animator, size=ctx.size)
            ms.append((time.perf_counter() - t) * 1e3)
        med = float(np.median(ms))
        pts.append(
            {
                "clip_s": _r(s, 3),
                "frames": res.frames,
                "ms": _r(med, 1),
                "ms_per_frame": _r(med / res.frames),
                "rtf": _r(med / (s * 1e3), 4),
                "runs_ms": [_r(x, 1) for x in ms],
            }
        )
    x = np.array([p["clip_s"] for p in pts], np.float64)
    y = np.array([p["ms"] for p in pts], np.float64)
    fit = {}
    if len(pts) >= 2:
        slope, icpt = np.polyfit(x, y, 1)
        pred = slope * x + icpt
        ss = float(((y - y.mean()) ** 2).sum())
        per = np.array([p["ms_per_frame"] for p in pts])
        fit = {
            "ms_per_audio_s": _r(slope, 1),
            "fixed_ms": _r(icpt, 1),
            "r2": _r(1 - float(((y - pred) ** 2).sum()) / ss, 4) if ss > 0 else None,
            "ms_per_frame_spread": _r(float(per.max() / per.min()), 3),
        }
    return {"points": pts, "fit": fit}


def long_audio(ctx: BenchContext, minutes: float) -> dict:
    """Offline renders of a 10 s clip and of ``minutes`` of speech (the demo speech tiled), each in a fresh
    process: render time per audio second (flat if the cost is linear) and peak RSS (flat if memory is bounded)."""
    import soundfile as sf

    pts = []
    for secs in (10.0, 60.0 * minutes):
        wav = ctx.tmp / f"long{secs:g}.wav"
        sf.write(str(wav), ctx.tile(secs), SAMPLE_RATE, subtype="PCM_16")
        m = cold_start(wav, asset(DEMO_FACE), render_to=ctx.tmp / "long.mp4", size=ctx.size)
        pts.append(
            {
                "audio_s": _r(secs, 1),
                "frames": m["render_frames"],
                "render_s": _r(m["render_ms"] / 1e3, 2),
                "ms_per_audio_s": _r(m["render_ms"] / secs, 2),
                "peak_rss_mb": _r(m["peak_rss_mb"], 1),
            }
        )
        wav.unlink()
    return {
        "size": ctx.size,
        "points": pts,
        "rss_growth_mb": _r(pts[-1]["peak_rss_mb"] - pts[0]["peak_rss_mb"], 1),
        "time_per_audio_s_ratio": _r(pts[-1]["ms_per_audio_s"] / pts[0]["ms_per_audio_s"], 3),
    }
