"""``toonsync calibrate``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from toonsync.runtime.backend import model_dir
from toonsync.runtime.commands import output_dir
from toonsync.runtime.errors import ModelError, ToonsyncError

from .quantize import calibrate
from .reader import CalibrationSet

log = logging.getLogger(__name__)


def calibrate_cli(a: argparse.Namespace) -> int:
    """``toonsync calibrate``: quantize audio2motion where the models are written (``output_dir``, or
    ``--model-dir`` alone: in place). The models are read from ``--model-dir``, else from the output directory
    when it already holds an export, else from the installed ones; read elsewhere, they are copied over first."""
    from toonsync.runtime.model_card import ModelCard

    in_place = a.model_dir is not None and a.out_dir is None and not a.install
    dst = Path(a.model_dir) if in_place else output_dir(a)
    src = Path(a.model_dir or (dst if ModelCard.exists(dst, "audio2motion") else model_dir()))
    if src.resolve() != dst.resolve():
        copy_models(src, dst)
    report, docs = a.report or Path(dst) / "quantization.json", a.docs or Path(dst) / "quantization.md"
    cal = CalibrationSet.from_corpus(a.corpus) if a.corpus else CalibrationSet.from_wavs()
    try:
        rep = calibrate(Path(dst), cal, report=report, docs=docs)
    except ImportError as e:  # a part of the export extra missing (onnx, sympy for onnxruntime's quantizer)
        raise ToonsyncError(f"this command needs `pip install toonsync[export]` ({e})") from None
    for name, m in rep["models"].items():
        log.info(
            "%s: fp32 %d KiB -> int8 %d KiB; frame p50 %.3f -> %.3f ms (%.2fx); 10 s clip %.2f -> %.2f ms "
            "(%.2fx); drift %.3f %% IOD; default %s",
            name,
            m["fp32"]["bytes"] // 1024,
            m["int8"]["bytes"] // 1024,
            m["fp32"]["frame"]["p50_ms"],
            m["int8"]["frame"]["p50_ms"],
            m["speedup_frame"],
            m["fp32"]["clip_10s"]["p50_ms"],
            m["int8"]["clip_10s"]["p50_ms"],
            m["speedup_clip_10s"],
            m["accuracy_vs_fp32"]["landmark_drift_pct_iod"],
            m["default_precision"],
        )
    log.info("wrote %s, %s and %s", Path(dst) / "audio2motion.onnx.json", report, docs)
    return 0


def copy_models(src: Path, dst: Path) -> None:
    """Copy every model (ONNX files and cards) from ``src`` to ``dst``, atomically file by file: ``dst`` is then
    a complete model directory (``TOONSYNC_MODEL_DIR=dst``)."""
    import shutil

    from toonsync.runtime.atomic import atomic_path
    from toonsync.runtime.model_card import CARD_SUFFIX

    dst.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("*.onnx")) + sorted(src.glob(f"*{CARD_SUFFIX}"))
    if not files:
        raise ModelError(f"no models in {src}; run `toonsync export` first")
    for f in files:
        with atomic_path(dst / f.name) as tmp:
            shutil.copyfile(f, tmp)
    log.info("copied %d model files from %s to %s", len(files), src, dst)
