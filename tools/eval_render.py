"""``toonsync eval render``: render a face speaking, then measure the video.

Writes ``eval_render.json`` (+ ``eval_render.mp4``, the encoded clip, and ``eval_render_tracks.png``,
driving vs re-detected mouth opening and head position over time) into ``--out``:

- ``frames``: frame count vs the audio (25 fps: one frame per 640 samples, rounded up) and A/V drift;
- ``codec``: MSE / PSNR / SSIM of the decoded MP4 against the frames that were encoded;
- ``vs_procedural``: the same metrics of the chosen renderer against the procedural renderer driven by
  the same motion (where the renderer is not the procedural one itself);
- ``lpips``: only when really computable (see ``runtime.metrics.lpips_score``);
- ``landmark_drift``: landmarks re-detected on the rendered frames vs the driving landmarks;
- ``jitter``: landmark jitter (driving / re-detected) and flicker of the static background;
- ``privacy``: no 8x8 patch of any frame reproduces the photo's face region.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.mel import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from toonsync.training import metrics as M

log = logging.getLogger(__name__)


def make_renderer(avatar: Any, size: int, name: str) -> Any:
    """The avatar's renderer by name (``Avatar.renderer``): ``procedural`` (vector drawing), ``onnx``
    (render.onnx warp) or ``auto``."""
    from toonsync.runtime.prepare import check_renderer

    return avatar.renderer(size, engine=check_renderer(name))


def privacy_check(face: Any, frames: np.ndarray, max_frames: int = 25, max_shift: int = 4) -> dict:
    """No 8x8 patch of the frames reproduces the photo's face: ``runtime.stylizer.photo_leak`` of the photo,
    aligned into the avatar's canonical frame (where the avatar's face is drawn), against up to
    ``max_frames`` evenly spaced frames, each patch searched within +-``max_shift`` px (head motion)."""
    from toonsync.runtime.face import detect_face
    from toonsync.runtime.image_io import load_image
    from toonsync.runtime.stylizer import align_face, face_mask, photo_leak

    if not isinstance(face, (str, os.PathLike, np.ndarray)) or str(face).lower().endswith(".avatar"):
        return {"skipped": "the face is a prepared .avatar bundle (no photo to compare with)"}
    img = load_image(face)
    size = frames.shape[1]
    aligned, lm = align_face(img, detect_face(img).landmarks, size)
    mask = face_mask(lm, size)
    idx = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    reps = [photo_leak(aligned, np.ascontiguousarray(frames[i][..., :3]), mask, max_shift=max_shift) for i in idx]
    return {
        "method": "runtime.stylizer.photo_leak (photo aligned to the avatar frame)",
        "frames_checked": int(len(idx)),
        "patches_checked": int(sum(r.patches_checked for r in reps)),
        "leaked": int(sum(r.leaked for r in reps)),
        "tolerance": round(reps[0].tolerance, 5),
        "closest_mean_abs_diff": round(float(min(r.min_mean_abs_diff for r in reps)), 5),
        "max_shift": max_shift,
        "ok": all(r.ok for r in reps),
    }


def _tracks_plot(found: np.ndarray, driving: np.ndarray, out: Path) -> Path:
    """Driving vs re-detected mouth opening and nose x over time (px), as a small PNG (OpenCV only)."""
    from toonsync.runtime.mouth import inner_lip_gap

    series = [
        ("mouth opening (px)", inner_lip_gap(driving), inner_lip_gap(found)),
        ("nose x (px)", driving[:, 27:36, 0].mean(1), found[:, 27:36, 0].mean(1)),
    ]
    W, H, pad = 900, 200, 40  # per panel; the x axis is the frame index (25 fps)
    img = np.full((H * len(series), W, 3), 255, np.uint8)
    for k, (name, d, f) in enumerate(series):
        y0 = k * H
        ok = np.isfinite(f)
        lo, hi = float(min(d.min(), f[ok].min())), float(max(d.max(), f[ok].max()))
        span = max(hi - lo, 1e-6)

        def pts(v, y0=y0, lo=lo, span=span):
            x = pad + np.arange(len(v)) * (W - 2 * pad) / max(len(v) - 1, 1)
            y = y0 + H - pad + (lo - v) * (H - 2 * pad) / span
            return np.stack([x, y], 1).round().astype(np.int32)

        cv2.rectangle(img, (pad, y0 + pad), (W - pad, y0 + H - pad), (200, 200, 200), 1)
        for v, yy in ((hi, y0 + pad + 4), (lo, y0 + H - pad)):
            cv2.putText(img, f"{v:.1f}", (2, yy), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
        cv2.polylines(img, [pts(d)], False, (40, 90, 200), 2, cv2.LINE_AA)
        cv2.polylines(img, [pts(np.where(ok, f, d))], False, (220, 80, 40), 1, cv2.LINE_AA)
        cv2.putText(
            img,
            f"{name}: driving (blue) vs re-detected (orange), r = {M._corr(d[ok], f[ok])}",
            (pad, y0 + pad - 10),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (30, 30, 30),
            1,
            cv2.LINE_AA,
        )
    with atomic_path(out, suffix=".png") as tmp:
        tmp.write_bytes(cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes())
    return out


def eval_render(
    face: Any = None,
    audio: Any = None,
    out_dir: str | os.PathLike = "runs/eval_render",
    *,
    renderer: str = "procedural",
    size: int = 256,
    seed: int = 0,
    backend: str = "auto",
    precision: str = "auto",
    lpips_weights: str | None = None,
) -> dict:
    """Render ``face`` speaking ``audio`` (default: the bundled demo photo and speech) with ``renderer``,
    compute the metrics and write ``eval_render.json`` into ``out_dir``; returns the report."""
    from toonsync.runtime.assets import DEMO_FACE, DEMO_SPEECH, asset
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.options import RenderOptions
    from toonsync.runtime.pipeline import Animator
    from toonsync.runtime.prepare import load_face
    from toonsync.runtime.video import read_video, write_video

    RenderOptions(size=size, renderer=renderer, backend=backend, precision=precision)  # validates them
    face = asset(DEMO_FACE) if face is None else face
    audio = asset(DEMO_SPEECH) if audio is None else audio
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # the report folder (like --out-dir): made when missing
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    avatar = load_face(face)
    rend = make_renderer(avatar, size, renderer)
    pcm = load_audio(audio)
    motion = Animator(backend, precision).animate(pcm, avatar.neutral, seed=seed)
    T = motion.n_frames
    t["animate_s"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    args = [(motion.landmarks[i], motion.pose[i], float(motion.blink[i]), motion.emotion[i]) for i in range(T)]
    frames = np.stack([rend.draw(*a) for a in args])
    static = np.ones((size, size), bool)  # background pixels in every frame
    if hasattr(rend, "draw_rgba"):
        for a in args:
            static &= rend.draw_rgba(*a)[..., 3] == 0
    geo = rend if hasattr(rend, "posed_landmarks") else avatar.renderer(size)
    driving = np.stack([geo.posed_landmarks(a[0], a[1], a[3]) for a in args]) * size
    t["render_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    video = write_video(out_dir / "eval_render.mp4", iter(frames), pcm, fps=FPS)
    decoded, _fps, _a = read_video(video)
    t["encode_decode_s"] = time.perf_counter() - t2

    expected = math.ceil(pcm.size / SAMPLES_PER_FRAME)
    rep: dict = {
        "format": "toonsync-eval-render",
        "version": 1,
        "inputs": {
            "face": Path(str(face)).name,
            "audio": Path(str(audio)).name,
            "renderer": renderer,
            "size": size,
            "seed": seed,
            "fps": FPS,
        },
        "frames": {
            "rendered": int(T),
            "decoded": int(len(decoded)),
            "expected": expected,
            "audio_s": round(pcm.size / SAMPLE_RATE, 3),
            "video_s": round(T / FPS, 3),
            "av_diff_ms": round((T / FPS - pcm.size / SAMPLE_RATE) * 1e3, 1),
            "ok": bool(T == expected == len(decoded)),
        },
    }
    t3 = time.perf_counter()
    n = min(len(decoded), T)
    rep["codec"] = {
        "what": "decoded eval_render.mp4 (H.264 crf 20) vs the rendered frames",
        **M.image_metrics(list(decoded[:n]), list(frames[:n])),
    }
    if renderer == "procedural":
        rep["vs_procedural"] = {"skipped": "the procedural renderer is the reference"}
        ref = None
    else:
        proc = avatar.renderer(size)
        ref = [proc.draw(*a) for a in args]
        rep["vs_procedural"] = {
            "what": f"{renderer} vs procedural frames of the same motion",
            **M.image_metrics(list(frames), ref),
        }
    rep["lpips"] = M.lpips_score(list(frames), ref if ref is not None else list(decoded[:n]), lpips_weights)
    t["image_metrics_s"] = time.perf_counter() - t3

    t4 = time.perf_counter()
    found, box = M.redetect_landmarks(frames)
    rep["landmark_drift"] = {
        "redetector": M.REDETECTOR,
        "box": list(box) if box else None,
        **M.landmark_drift(found, driving),
    }
    rep["jitter"] = {
        "driving_pct_iod": round(M.landmark_jitter(driving), 3),
        "redetected_pct_iod": round(M.landmark_jitter(found), 3),
        "static_pixels": int(static.sum()),
        "flicker_rendered": round(M.flicker(frames, static), 4),
        "flicker_decoded": round(M.flicker(decoded[:n], static), 4),
    }
    t["landmarks_s"] = time.perf_counter() - t4
    if np.isfinite(found).any():
        _tracks_plot(found, driving, out_dir / "eval_render_tracks.png")

    t5 = time.perf_counter()
    rep["privacy"] = privacy_check(face, frames)
    t["privacy_s"] = time.perf_counter() - t5
    rep["timings_s"] = {k: round(v, 2) for k, v in t.items()}
    with atomic_path(out_dir / "eval_render.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(rep, indent=1))
    log.info("wrote %s", out_dir / "eval_render.json")
    return rep


def format_table(rep: dict) -> str:
    """A short text table of an eval_render report."""
    f, c, d, j, p = rep["frames"], rep["codec"], rep["landmark_drift"], rep["jitter"], rep["privacy"]
    vs = rep["vs_procedural"]
    rows = [
        (
            "frames",
            f"{f['rendered']} rendered / {f['expected']} expected / {f['decoded']} decoded, "
            f"A/V {f['av_diff_ms']:+.0f} ms" + ("" if f["ok"] else "  MISMATCH"),
        ),
        ("codec (mp4 vs frames)", f"MSE {c['mse']:.2f}  PSNR {c['psnr_db']:.2f} dB  SSIM {c['ssim']:.4f}"),
        (
            "vs procedural",
            vs.get("skipped") or f"MSE {vs['mse']:.2f}  PSNR {vs['psnr_db']:.2f} dB  SSIM {vs['ssim']:.4f}",
        ),
        ("LPIPS", f"{rep['lpips']['value']:.4f}" if rep["lpips"]["available"] else "unavailable"),
        (
            "landmark drift",
            f"{d.get('mean_pct_iod', float('nan')):.1f}% IOD (bias-corrected "
            f"{d.get('bias_corrected_pct_iod', float('nan')):.1f}%), mouth r {d.get('mouth_open_r')}, "
            f"head x r {d.get('head_x_r')}",
        ),
        (
            "jitter",
            f"driving {j['driving_pct_iod']:.2f}% IOD, re-detected {j['redetected_pct_iod']:.2f}% IOD; "
            f"flicker {j['flicker_rendered']:.3f} rendered / {j['flicker_decoded']:.3f} decoded",
        ),
        (
            "privacy",
            p.get("skipped")
            or (
                f"{p['leaked']} of {p['patches_checked']} photo patches reproduced "
                f"(closest mean |diff| {p['closest_mean_abs_diff']:.3f}, leak <= "
                f"{p['tolerance']:.3f})"
            ),
        ),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(w)}  {v}" for k, v in rows)
