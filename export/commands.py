"""The export package's ``toonsync`` sub-command: ``export`` (checkpoints -> ONNX + model cards, or a Triton
repository). Registering it imports only argparse; torch and onnx are imported when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from toonsync.runtime.commands import add_output_options, import_extra


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` to ``sub``."""
    e = sub.add_parser("export", help="trained checkpoint -> name.fp32.onnx + name.onnx.json (needs toonsync[export])")
    e.add_argument(
        "--checkpoint",
        type=Path,
        help="trained audio2motion checkpoint (a checkout ships checkpoints/audio2motion.pt; `toonsync train` "
        "writes runs/MODEL/MODEL.pt); the other models' NAME.pt are read beside it",
    )
    add_output_options(e, "the models, their cards and the report")
    e.add_argument("--report", type=Path, help="export report, markdown (default: OUT_DIR/export.md; '' for none)")
    e.add_argument(
        "--model-dir",
        type=Path,
        help="with --triton: the models to serve (default: the installed ones or $TOONSYNC_MODEL_DIR)",
    )
    e.add_argument(
        "--only",
        choices=["audio2motion", "motion", "render", "identity", "stylizer", "refiner", "landmarks"],
        help="export one model: audio2motion (+ its fp16 and fused PCM graphs, from --checkpoint), motion "
        "(the transformer motion decoder, motion.pt next to --checkpoint, same training run), render "
        "(the warp renderer; no checkpoint, seconds), or a learned image model (NAME.pt next to "
        "--checkpoint); default: all of them whose checkpoint exists",
    )
    e.add_argument(
        "--triton",
        type=Path,
        metavar="DIR",
        help="instead of exporting: write the models in --model-dir as a Triton model repository "
        "(needs onnx only; docs/triton.md)",
    )
    e.add_argument(
        "--triton-precision",
        default="fp32",
        choices=["fp32", "int8", "fp16"],
        help="with --triton: which model files to serve (default fp32)",
    )
    e.add_argument(
        "--triton-device",
        default="cpu",
        choices=["cpu", "gpu", "tensorrt"],
        help="with --triton: KIND_CPU, KIND_GPU, or KIND_GPU + the TensorRT accelerator (default cpu)",
    )
    e.add_argument("--triton-max-batch", type=int, default=64, help="with --triton: max_batch_size (default 64)")
    e.add_argument("--triton-instances", type=int, default=1, help="with --triton: instances per model (default 1)")
    e.add_argument(
        "--triton-models",
        nargs="+",
        choices=["audio2motion", "audio2motion_pcm"],
        help="with --triton: which models (default both)",
    )
    e.add_argument(
        "--triton-plan",
        action="append",
        metavar="MODEL=PLAN",
        help="with --triton: serve this TensorRT plan as MODEL's version (repeatable)",
    )
    e.set_defaults(func=cmd_export)


def cmd_export(a: argparse.Namespace) -> int:
    """``toonsync export``."""
    if a.triton:  # needs onnx, not torch
        return import_extra("toonsync.export.triton", "export").triton_cli(a)
    return import_extra("toonsync.export.cli", "export").export_cli(a)
