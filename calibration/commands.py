"""The calibration package's ``toonsync`` sub-command: ``calibrate`` (INT8 from real speech + a report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from toonsync.runtime.commands import import_extra


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``calibrate`` to ``sub``."""
    c = sub.add_parser("calibrate", help="INT8 from real calibration speech + quantization report (needs toonsync[export])")
    c.add_argument("--model-dir", type=Path, help="models to quantize (default: the runtime's model directory)")
    c.add_argument("--corpus", type=Path, help="calibrate on held-out clips of this corpus .h5 instead of calibration/data")
    c.add_argument("--report", type=Path, default=Path("calibration/report.json"), help="report JSON path")
    c.add_argument("--docs", type=Path, default=Path("docs/quantization.md"), help="markdown table path")
    c.set_defaults(func=cmd_calibrate)


def cmd_calibrate(a: argparse.Namespace) -> int:
    """``toonsync calibrate``."""
    return import_extra("toonsync.calibration.cli", "export").calibrate_cli(a)
