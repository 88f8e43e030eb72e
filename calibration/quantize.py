"""INT8 quantization from real calibration data, and the quantization report.

audio2motion: Convs and MatMul/Gemm are quantized *statically* (QDQ, per-channel weights, MinMax ranges
from the calibration set); the LSTM stays fp32. Dynamic quantization of the LSTM measured 1.78x faster
per 10 s clip but is chunk-dependent (activation scales are computed per call), so streamed output would
no longer equal offline output; static scales keep chunked == whole exactly. A model's
INT8 variant becomes the runtime default only if its accuracy loss against fp32 stays inside the
budget below; the report says which way it went and why.

    toonsync calibrate            # -> audio2motion.int8.onnx, calibration manifest, report JSON + docs table
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from runtime.atomic import atomic_path
from runtime.backend import OrtBackend, read_sidecar
from runtime.mel import MELS_PER_FRAME, N_MELS, log_mel
from runtime.audio_io import load_audio

from .reader import Audio2MotionReader, CalibrationSet

log = logging.getLogger(__name__)
IOD = 0.28  # inter-ocular distance of the canonical avatar canvas (runtime.avatar)
REPO = Path(__file__).resolve().parent.parent
EVAL_CLIPS = (REPO / "runtime/assets/demo_speech.wav", REPO / "tests/data/speech_short.wav")


STATIC_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class Budget:
    """Largest accuracy loss of an INT8 model vs its fp32 original that still makes it the default."""

    max_drift_pct_iod: float = 1.0  # mean landmark drift, % of inter-ocular distance
    min_open_corr: float = 0.99  # correlation of the mouth-opening track with fp32's


def quantize_audio2motion(fp32: Path, out: Path, cal: CalibrationSet, ctx: int, hidden: int) -> int:
    """Static QDQ (per-channel) of STATIC_OPS; returns the number of calibration batches used."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # onnxruntime's quantizer logs chatter on the root logger
    try:
        return _quantize(fp32, out, cal, ctx, hidden)
    finally:
        root.setLevel(level)


def _quantize(fp32: Path, out: Path, cal: CalibrationSet, ctx: int, hidden: int) -> int:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as td:
        pre = Path(td) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre))
        reader = Audio2MotionReader(cal, ctx, hidden)
        with atomic_path(out) as tmp:
            quantize_static(str(pre), str(tmp), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            op_types_to_quantize=list(STATIC_OPS), activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8)
    return reader.count


def _state(ctx: int, hidden: int) -> dict[str, np.ndarray]:
    return {"mel_ctx": np.zeros((1, N_MELS, ctx), np.float32), "h": np.zeros((1, 1, hidden), np.float32),
            "c": np.zeros((1, 1, hidden), np.float32)}


def _latency(be: OrtBackend, feed: dict, n: int) -> dict:
    for _ in range(5):
        be.run(feed)
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        be.run(feed)
        ts.append((time.perf_counter() - t) * 1e3)
    return {"p50_ms": round(float(np.percentile(ts, 50)), 4), "p99_ms": round(float(np.percentile(ts, 99)), 4)}


def measure(model_dir: Path, precision: str, ctx: int, hidden: int, threads: int = 1) -> dict:
    """Size, latency (one 40 ms frame; a 10 s clip) and outputs on the evaluation clips."""
    f = model_dir / f"audio2motion.{precision}.onnx"
    be = OrtBackend(f, "cpu", threads)
    mels = [log_mel(load_audio(p)) for p in EVAL_CLIPS]
    outs = [be.run({"mel": m[None, : m.shape[0] // 4 * 4], **_state(ctx, hidden)}) for m in mels]
    clip = np.concatenate(mels)[: 1000][None]
    return {"bytes": f.stat().st_size, "frame": _latency(be, {"mel": clip[:, :MELS_PER_FRAME], **_state(ctx, hidden)}, 300),
            "clip_10s": _latency(be, {"mel": clip, **_state(ctx, hidden)}, 30), "_outs": outs}


def accuracy_delta(ref: list[dict], got: list[dict]) -> dict:
    drift = np.concatenate([np.linalg.norm(g["landmarks"] - r["landmarks"], axis=-1).ravel() for r, g in zip(ref, got)])
    a = np.concatenate([r["mouth"][0, :, 0] for r in ref])
    b = np.concatenate([g["mouth"][0, :, 0] for g in got])
    return {"landmark_drift_pct_iod": round(float(drift.mean() / IOD * 100), 4),
            "landmark_drift_p99_pct_iod": round(float(np.percentile(drift, 99) / IOD * 100), 4),
            "mouth_open_corr": round(float(np.corrcoef(a, b)[0, 1]), 5),
            "mouth_mae": round(float(np.abs(a - b).mean()), 5)}


def calibrate(model_dir: Path, cal: CalibrationSet, budget: Budget = Budget(), report: Path | None = None,
              docs: Path | None = None) -> dict:
    """Quantize audio2motion, judge it against the budget, update its sidecar, write the report."""
    from export.sidecar import update_sidecar

    meta = read_sidecar(model_dir, "audio2motion")
    ctx, hidden = int(meta["config"]["kernel"]) - 1, int(meta["config"]["hidden"])
    fp32 = model_dir / "audio2motion.fp32.onnx"
    batches = quantize_audio2motion(fp32, model_dir / "audio2motion.int8.onnx", cal, ctx, hidden)
    m32, m8 = measure(model_dir, "fp32", ctx, hidden), measure(model_dir, "int8", ctx, hidden)
    delta = accuracy_delta(m32.pop("_outs"), m8.pop("_outs"))
    ok = delta["landmark_drift_pct_iod"] <= budget.max_drift_pct_iod and delta["mouth_open_corr"] >= budget.min_open_corr
    decision = "int8" if ok else "fp32"
    reason = ("INT8 within budget" if ok else "INT8 exceeds the accuracy budget") + f" ({delta})"
    manifest = {**cal.manifest, "batches": batches, "method": "static QDQ per-channel Conv/MatMul/Gemm (MinMax); LSTM fp32"}
    update_sidecar(model_dir, "audio2motion", default_precision=decision,
                   quantization={"int8": {"calibration": manifest, "accuracy_vs_fp32": delta,
                                          "budget": asdict(budget), "within_budget": ok}})
    rep = {"schema": "toonsync-quant-report/1", "budget": asdict(budget), "models": {"audio2motion": {
        "fp32": m32, "int8": m8, "accuracy_vs_fp32": delta, "default_precision": decision, "reason": reason,
        "speedup_frame": round(m32["frame"]["p50_ms"] / m8["frame"]["p50_ms"], 2),
        "speedup_clip_10s": round(m32["clip_10s"]["p50_ms"] / m8["clip_10s"]["p50_ms"], 2),
        "calibration": manifest}}}
    if report:
        with atomic_path(report) as tmp:
            tmp.write_text(json.dumps(rep, indent=2) + "\n")
    if docs:
        write_markdown(rep, docs)
    log.info("audio2motion: default %s — %s", decision, reason)
    return rep


def write_markdown(rep: dict, path: Path) -> None:
    from runtime.bench import cpu_model

    lines = ["# Quantization report", "",
             f"Produced by `toonsync calibrate` on {cpu_model()} (1 onnxruntime thread). Budget: mean landmark "
             f"drift ≤ {rep['budget']['max_drift_pct_iod']} % of the inter-ocular distance and mouth-opening "
             f"correlation with fp32 ≥ {rep['budget']['min_open_corr']}.", "",
             "| model | precision | size KiB | 40 ms frame p50 / p99 ms | 10 s clip p50 / p99 ms | drift % IOD (mean / p99) | open corr | default |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in rep["models"].items():
        d = m["accuracy_vs_fp32"]
        for prec in ("fp32", "int8"):
            x = m[prec]
            acc = "—" if prec == "fp32" else f"{d['landmark_drift_pct_iod']:.3f} / {d['landmark_drift_p99_pct_iod']:.3f}"
            corr = "—" if prec == "fp32" else f"{d['mouth_open_corr']:.4f}"
            lines.append(f"| {name} | {prec} | {x['bytes'] / 1024:.0f} | {x['frame']['p50_ms']:.3f} / {x['frame']['p99_ms']:.3f} | "
                         f"{x['clip_10s']['p50_ms']:.2f} / {x['clip_10s']['p99_ms']:.2f} | {acc} | {corr} | "
                         f"{'**yes**' if m['default_precision'] == prec else ''} |")
        lines += ["", f"{name}: INT8 speed-up {m['speedup_frame']}× per frame, {m['speedup_clip_10s']}× per 10 s clip. "
                  f"{m['reason'].split(' (')[0]}. Calibration: {m['calibration']['count']} files, "
                  f"{m['calibration'].get('seconds', '?')} s, {m['calibration']['batches']} batches "
                  f"({m['calibration']['method']}).", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
