"""The calibration package's ``toonsync`` sub-command: ``calibrate`` (INT8 from real speech + a report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from toonsync.runtime.commands import add_output_options, import_extra


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``calibrate`` to ``sub``."""
    c = sub.add_parser(
        "calibrate", help="INT8 from real calibration speech + quantization report (needs toonsync[export])"
    )
    c.add_argument(
        "--model-dir",
        type=Path,
        help="the models to quantize (default: the installed ones or $TOONSYNC_MODEL_DIR); without "
        "--out-dir/--install they are quantized in place",
    )
    add_output_options(c, "the quantized model (a copy of audio2motion and motion with the INT8 graph), the report")
    c.add_argument(
        "--corpus",
        type=Path,
        help="calibrate on held-out clips of this corpus .h5 instead of the bundled calibration speech",
    )
    c.add_argument("--report", type=Path, help="report JSON (default: OUT_DIR/quantization.json)")
    c.add_argument("--docs", type=Path, help="markdown table (default: OUT_DIR/quantization.md)")
    c.set_defaults(func=cmd_calibrate)


def cmd_calibrate(a: argparse.Namespace) -> int:
    """``toonsync calibrate``."""
    return import_extra("toonsync.calibration.cli", "export").calibrate_cli(a)
