"""``toonsync export``: trained checkpoints -> ONNX (fp32, fp16, fused PCM graph) + sidecars, the analytic
warp renderer (render.onnx, no checkpoint), and a report."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.backend import OrtBackend
from toonsync.runtime.commands import output_dir
from toonsync.runtime.errors import ToonsyncError
from toonsync.runtime.mel import SAMPLES_PER_FRAME, MelStream, log_mel
from toonsync.runtime.progress import Progress

from .onnx_export import export_audio2motion, export_motion, onnx_node_count, optimized_node_count
from .render_export import export_render

log = logging.getLogger(__name__)


def _p50_p99(fn, n: int) -> tuple[float, float]:
    for _ in range(10):
        fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    return float(np.percentile(ts, 50)), float(np.percentile(ts, 99))


def measure_fusion(d: Path, audio: np.ndarray) -> dict:
    """Streaming (one 40 ms frame per call) and whole-clip cost: numpy mel + audio2motion vs the fused PCM graph."""
    unf, fus = (
        OrtBackend(d / "audio2motion.fp32.onnx", "cpu", 1),
        OrtBackend(d / "audio2motion_pcm.fp32.onnx", "cpu", 1),
    )
    from toonsync.runtime.model_card import ModelCard

    cfg = ModelCard.load(d, "audio2motion").config
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    st = {"mel_ctx": z(1, 80, cfg["kernel"] - 1), "h": z(1, 1, cfg["hidden"]), "c": z(1, 1, cfg["hidden"])}
    ms, chunk = MelStream(), audio[:SAMPLES_PER_FRAME]
    res = {
        "frame_unfused_ms": _p50_p99(lambda: unf.run({"mel": ms.accept(chunk)[None], **st}), 400),
        "frame_fused_ms": _p50_p99(lambda: fus.run({"pcm": chunk[None], "pcm_ctx": z(1, 240), **st}), 400),
        "clip_unfused_ms": _p50_p99(lambda: unf.run({"mel": log_mel(audio)[None], **st}), 30),
        "clip_fused_ms": _p50_p99(lambda: fus.run({"pcm": audio[None], "pcm_ctx": z(1, 240), **st}), 30),
    }
    res["streaming_default"] = "fused" if res["frame_fused_ms"][0] < res["frame_unfused_ms"][0] else "unfused"
    return res


def write_report(d: Path, metas: dict, fusion: dict, path: Path) -> None:
    from toonsync.runtime.sysinfo import cpu_model

    lines = [
        "# Export report",
        "",
        f"Produced by `toonsync export` on {cpu_model()} (1 onnxruntime thread).",
        "",
        "| file | KiB | nodes | nodes after ORT optimisation | parity vs torch (max abs) |",
        "|---|---|---|---|---|",
    ]
    for _name, meta in metas.items():
        for f, info in meta["files"].items():
            par = (
                f"{meta['parity']['max_abs_diff']:.1e} {meta['parity'].get('unit', '')}".rstrip()
                if ".fp32." in f
                else "see docs/quantization.md"
                if ".int8." in f
                else f"{meta['parity_fp16']['max_abs_diff']:.1e} vs fp32"
            )
            lines.append(
                f"| {f} | {info['bytes'] // 1024} | {onnx_node_count(d / f)} | {optimized_node_count(d / f)} | {par} |"
            )
    u, fu = fusion["frame_unfused_ms"], fusion["frame_fused_ms"]
    cu, cf = fusion["clip_unfused_ms"], fusion["clip_fused_ms"]
    lines += [
        "",
        "## Fusion: numpy log-mel + `audio2motion` vs the fused `audio2motion_pcm` graph (PCM in)",
        "",
        "| case | unfused p50 / p99 ms | fused p50 / p99 ms |",
        "|---|---|---|",
        f"| one 40 ms frame (streaming) | {u[0]:.3f} / {u[1]:.3f} | {fu[0]:.3f} / {fu[1]:.3f} |",
        f"| 4 s clip in one call | {cu[0]:.2f} / {cu[1]:.2f} | {cf[0]:.2f} / {cf[1]:.2f} |",
        "",
        f"Streaming is what the runtime does (offline rendering runs the same `Stream`), so the per-frame "
        f"figure decides: **{fusion['streaming_default']}** is faster per frame on this machine. The runtime "
        "uses the unfused pair by default; the fused graph ships for GPU/TensorRT deployments and batch "
        "pipelines that want raw PCM in.",
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


LEARNED = ("identity", "stylizer", "refiner", "landmarks")  # image models: exported when their checkpoint is there


def export_learned(checkpoints: Path, d: Path, only: str | None = None) -> dict:
    """Export each learned image model whose ``NAME.pt`` is in ``checkpoints`` (identity ships; stylizer
    and refiner only when someone trained them); a missing one is logged, not an error -- unless asked for."""
    from .learned import EXPORTERS

    metas = {}
    for name in (only,) if only else LEARNED:
        ck = checkpoints / f"{name}.pt"
        if not ck.exists():
            if only:
                raise ToonsyncError(f"checkpoint {ck} not found; train first: `toonsync train {name}`")
            log.info("%s: no %s, not exported (train it with `toonsync train %s`)", name, ck, name)
            continue
        metas[name] = EXPORTERS[name](ck, d)
    return metas


def export_paired_motion(audio_checkpoint: Path, d: Path, required: bool = False) -> dict | None:
    """Export ``motion.pt`` beside ``audio_checkpoint`` when it was trained with that very audio model (same
    ``run_id``, see training.train_motion); otherwise say why and export nothing (an error if ``required``)."""
    import torch

    ck = audio_checkpoint.parent / "motion.pt"
    why = None
    if not ck.exists():
        why = f"no {ck} (train it: `toonsync train motion`)"
    else:
        rid = torch.load(ck, map_location="cpu", weights_only=False).get("info", {}).get("run_id")
        aid = torch.load(audio_checkpoint, map_location="cpu", weights_only=False).get("info", {}).get("run_id")
        if not rid or rid != aid:
            why = f"{ck} was trained with another audio model (run_id {rid} != {aid} of {audio_checkpoint})"
    if why:
        if required:
            raise ToonsyncError(f"motion decoder not exported: {why}")
        log.info("motion decoder not exported: %s", why)
        stale = d / "motion.onnx.json"
        if stale.exists():
            log.warning("%s stays, but the runtime will not pair it with the new audio2motion (run_id differs)", stale)
        return None
    return export_motion(ck, d)


def export_cli(a: argparse.Namespace) -> int:
    """``toonsync export``: one thread for torch and onnxruntime, so a re-export gives the same bytes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _export(a)
    finally:
        torch.set_num_threads(threads)


def _export(a: argparse.Namespace) -> int:
    only = getattr(a, "only", None)  # None: every model
    d = output_dir(a)
    if a.report is None:
        a.report = d / "export.md"
    elif str(a.report) in ("", "."):  # --report '': no report
        a.report = None
    if only != "render" and a.checkpoint is None:
        raise ToonsyncError(
            "export needs --checkpoint PATH.pt (a checkout ships checkpoints/audio2motion.pt; "
            "`toonsync train` writes runs/MODEL/MODEL.pt), or --only render"
        )
    if only != "render" and not a.checkpoint.is_file():
        raise ToonsyncError(f"checkpoint {a.checkpoint} not found; train first: `toonsync train audio2motion`")
    log.info("exporting to %s", d)
    if only in LEARNED:
        export_learned(a.checkpoint.parent, d, only)
        return 0
    if only == "render":  # no checkpoint: the renderer has no learned weights
        meta = export_render(d)
        log.info(
            "render: parity vs torch max|diff| %.0f uint8 level(s) at sizes %s",
            meta["parity"]["max_abs_diff"],
            meta["parity"]["frames"],
        )
        return 0
    if only == "motion":
        return 0 if export_paired_motion(a.checkpoint, d, required=True) else 1
    from toonsync.runtime.assets import DEMO_SPEECH, asset
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.model_card import ModelCard

    with Progress("exporting", 1 if only else 4, "models") as bar:
        bar.advance(0, "audio2motion")
        meta = export_audio2motion(a.checkpoint, d)
        metas = {"audio2motion": meta, "audio2motion_pcm": ModelCard.load(d, "audio2motion_pcm").to_dict()}
        if only is None:
            bar.advance(1, "motion decoder")
            motion = export_paired_motion(a.checkpoint, d)
            if motion is not None:
                metas["motion"] = motion
            bar.advance(1, "renderer")
            metas["render"] = export_render(d)
            bar.advance(1, "image models")
            metas.update(export_learned(a.checkpoint.parent, d))
        bar.advance(1, "done")
    for name, m in metas.items():
        for f, info in m["files"].items():
            log.info(
                "%s: %d KiB, %d nodes (%d after onnxruntime optimisation), sha256 %s",
                f,
                info["bytes"] // 1024,
                onnx_node_count(d / f),
                optimized_node_count(d / f),
                info["sha256"][:16],
            )
        log.info(
            "%s parity vs torch: max|diff| %.2e (atol %.0e)", name, m["parity"]["max_abs_diff"], m["parity"]["atol"]
        )
    fusion = measure_fusion(d, load_audio(asset(DEMO_SPEECH))[: 100 * SAMPLES_PER_FRAME])
    log.info(
        "fusion: per frame unfused %.3f ms vs fused %.3f ms -> %s",
        fusion["frame_unfused_ms"][0],
        fusion["frame_fused_ms"][0],
        fusion["streaming_default"],
    )
    if a.report:
        write_report(d, metas, fusion, a.report)
        log.info("wrote %s", a.report)
    return 0
