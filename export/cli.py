"""``toonsync export``: trained checkpoints -> ONNX + sidecars in the runtime's model directory."""
from __future__ import annotations

import argparse
import logging

from runtime.backend import model_dir
from runtime.errors import ToonsyncError

from .onnx_export import export_audio2motion, onnx_node_count, optimized_node_count

log = logging.getLogger(__name__)


def export_cli(a: argparse.Namespace) -> int:
    if not a.checkpoint.exists():
        raise ToonsyncError(f"checkpoint {a.checkpoint} not found; train first: `toonsync train audio2motion`")
    d = a.model_dir or model_dir()
    meta = export_audio2motion(a.checkpoint, d)
    for name, f in meta["files"].items():
        log.info("%s: %d KiB, %d nodes (%d after onnxruntime optimisation), sha256 %s", name, f["bytes"] // 1024,
                 onnx_node_count(d / name), optimized_node_count(d / name), f["sha256"][:16])
    log.info("parity vs torch: max|diff| %.2e (atol %.0e)", meta["parity"]["max_abs_diff"], meta["parity"]["atol"])
    return 0
