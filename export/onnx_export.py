"""torch -> ONNX through small wrapper modules with named I/O and dynamic axes, plus the JSON sidecar.

Artifacts per model (in the runtime's model directory): ``name.fp32.onnx`` and ``name.onnx.json``
(config, I/O names and shapes, sample rate, fps, training data, metrics, per-file sha256). The
sidecar's keys except ``files`` are also written as ONNX metadata (JSON-encoded strings).
"""
from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from runtime.atomic import atomic_path

from .sidecar import write_sidecar
from runtime.mel import FPS, HOP, N_MELS, SAMPLE_RATE

log = logging.getLogger(__name__)
OPSET = 17


@dataclass
class GraphSpec:
    inputs: dict[str, list]  # name -> shape with symbolic dims as strings
    outputs: dict[str, list]


class Audio2MotionWrapper(nn.Module):
    """Exported I/O: mel, mel_ctx, h, c -> mouth, landmarks, embedding, mel_ctx_out, h_out, c_out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, mel, mel_ctx, h, c):
        return self.model(mel, mel_ctx, h, c)


def audio2motion_spec(cfg) -> GraphSpec:
    return GraphSpec(
        inputs={"mel": ["batch", "mel_frames", cfg.n_mels], "mel_ctx": ["batch", cfg.n_mels, cfg.kernel - 1],
                "h": [1, "batch", cfg.hidden], "c": [1, "batch", cfg.hidden]},
        outputs={"mouth": ["batch", "frames", cfg.n_params], "landmarks": ["batch", "frames", 68, 2],
                 "embedding": ["batch", "frames", cfg.hidden], "mel_ctx_out": ["batch", cfg.n_mels, cfg.kernel - 1],
                 "h_out": [1, "batch", cfg.hidden], "c_out": [1, "batch", cfg.hidden]},
    )


def _dynamic_axes(spec: GraphSpec) -> dict[str, dict[int, str]]:
    return {n: {i: d for i, d in enumerate(shape) if isinstance(d, str)}
            for n, shape in {**spec.inputs, **spec.outputs}.items()}


def export_onnx(wrapper: nn.Module, example: tuple, spec: GraphSpec, path: Path) -> None:
    """Legacy (TorchScript) exporter: native LSTM op, named dynamic axes; written atomically as one file."""
    wrapper.eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, example, str(tmp), input_names=list(spec.inputs), output_names=list(spec.outputs),
                          dynamic_axes=_dynamic_axes(spec), opset_version=OPSET, dynamo=False, do_constant_folding=True)
        onnx.checker.check_model(str(tmp), full_check=True)


def export_audio2motion(checkpoint: Path, model_dir: Path) -> dict:
    """Export a trained audio2motion checkpoint to ``audio2motion.fp32.onnx`` + sidecar; returns the sidecar."""
    from training.train_audio2motion import load_checkpoint

    from .parity import check_parity

    model = load_checkpoint(checkpoint)
    cfg = model.cfg
    spec = audio2motion_spec(cfg)
    b, t = 2, 12
    example = (torch.randn(b, t * cfg.mels_per_frame, cfg.n_mels), *model.initial_state(b))
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "audio2motion.fp32.onnx"
    export_onnx(Audio2MotionWrapper(model), example, spec, path)
    parity = check_parity(model, path, spec)
    from .fp16 import to_fp16

    to_fp16(path, model_dir / "audio2motion.fp16.onnx")
    info = getattr(model, "info", {})
    meta = {
        "name": "audio2motion",
        "format_version": 1,
        "opset": OPSET,
        "config": cfg.to_dict(),
        "inputs": spec.inputs,
        "outputs": spec.outputs,
        "sample_rate": SAMPLE_RATE,
        "fps": FPS,
        "hop": HOP,
        "n_mels": N_MELS,
        "lookahead_frames": cfg.lookahead,
        "mouth_params": ["open", "spread", "labio"],
        "landmarks": "offsets from the neutral face, canonical canvas units (eye centres 0.28 apart)",
        "training": {k: info.get(k) for k in ("train_data", "train_config", "train_seconds", "params", "torch")},
        "metrics": info.get("metrics", {}),
        "parity": parity,
        "made_by": "toonsync training/train_audio2motion.py + export/onnx_export.py",
    }
    meta = write_sidecar(model_dir, "audio2motion", meta)
    log.info("exported %s (%d bytes) + fp16, parity max|diff| %.2e", path, path.stat().st_size, parity["max_abs_diff"])
    return meta


def onnx_node_count(path: Path) -> int:
    return len(onnx.load(str(path)).graph.node)


def optimized_node_count(path: Path) -> int:
    """Nodes left after onnxruntime's full (CPU) graph optimisation."""
    import tempfile

    import onnxruntime as ort

    if ".fp16." in path.name:
        return onnx_node_count(path)  # not optimised on CPU (see runtime.backend)
    with tempfile.TemporaryDirectory() as td:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(Path(td) / "opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return onnx_node_count(Path(td) / "opt.onnx")


def random_inputs(spec: GraphSpec, batch: int, frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    dims = {"batch": batch, "mel_frames": frames * 4, "frames": frames}
    return {n: rng.standard_normal([dims.get(d, d) if isinstance(d, str) else d for d in shape]).astype(np.float32)
            for n, shape in spec.inputs.items()}
