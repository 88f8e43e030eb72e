"""``toonsync calibrate``."""
from __future__ import annotations

import argparse
import logging

from toonsync.runtime.backend import model_dir

from .quantize import calibrate
from .reader import CalibrationSet

log = logging.getLogger(__name__)


def calibrate_cli(a: argparse.Namespace) -> int:
    cal = CalibrationSet.from_corpus(a.corpus) if a.corpus else CalibrationSet.from_wavs()
    rep = calibrate(a.model_dir or model_dir(), cal, report=a.report, docs=a.docs)
    for name, m in rep["models"].items():
        log.info("%s: fp32 %d KiB -> int8 %d KiB; frame p50 %.3f -> %.3f ms (%.2fx); 10 s clip %.2f -> %.2f ms "
                 "(%.2fx); drift %.3f %% IOD; default %s", name, m["fp32"]["bytes"] // 1024, m["int8"]["bytes"] // 1024,
                 m["fp32"]["frame"]["p50_ms"], m["int8"]["frame"]["p50_ms"], m["speedup_frame"],
                 m["fp32"]["clip_10s"]["p50_ms"], m["int8"]["clip_10s"]["p50_ms"], m["speedup_clip_10s"],
                 m["accuracy_vs_fp32"]["landmark_drift_pct_iod"], m["default_precision"])
    log.info("wrote %s and %s", a.report, a.docs)
    return 0
