"""torch -> ONNX through small wrapper modules with named I/O and dynamic axes, plus the JSON sidecar.

Artifacts per model (in the runtime's model directory): ``name.fp32.onnx`` and ``name.onnx.json``
(config, I/O names and shapes, sample rate, fps, training data, metrics, per-file sha256). The
sidecar's keys except ``files`` are also written as ONNX metadata (JSON-encoded strings).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.mel import FPS, HOP, N_MELS, SAMPLE_RATE, SAMPLES_PER_FRAME, WIN_LENGTH
from toonsync.runtime.motion import EMOTIONS

from .parity import check_parity, random_inputs
from .sidecar import MEASURED, write_sidecar

log = logging.getLogger(__name__)
OPSET = 17


@dataclass
class GraphSpec:
    """Named inputs and outputs of an exported graph with their shapes (symbolic axes as strings)."""

    inputs: dict[str, list]  # name -> shape with symbolic dims as strings
    outputs: dict[str, list]


class MelStateWrapper(nn.Module):
    """Exported I/O of the streaming speech models: mel, mel_ctx, h, c -> the model's outputs, then mel_ctx_out,
    h_out, c_out (audio2motion: mouth, landmarks, embedding; emotion: logits)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, mel, mel_ctx, h, c):
        return self.model(mel, mel_ctx, h, c)


def mel_state_spec(cfg: Any, outputs: dict[str, list]) -> GraphSpec:
    """The I/O of a streaming speech model: log-mel and its state (conv context, LSTM h/c) in; ``outputs``, then
    the new state, out."""
    ctx, hid = ["batch", cfg.n_mels, cfg.kernel - 1], [1, "batch", cfg.hidden]
    return GraphSpec(
        inputs={"mel": ["batch", "mel_frames", cfg.n_mels], "mel_ctx": ctx, "h": hid, "c": hid},
        outputs={**outputs, "mel_ctx_out": ctx, "h_out": hid, "c_out": hid},
    )


def audio2motion_spec(cfg: Any) -> GraphSpec:
    """The speech model's graph I/O: log-mel and streaming state in; mouth, landmarks, embedding, state out."""
    return mel_state_spec(
        cfg,
        {
            "mouth": ["batch", "frames", cfg.n_params],
            "landmarks": ["batch", "frames", 68, 2],
            "embedding": ["batch", "frames", cfg.hidden],
        },
    )


def audio2motion_pcm_spec(cfg: Any) -> GraphSpec:
    """The fused graph's I/O: raw PCM and its tail instead of log-mel."""
    base = audio2motion_spec(cfg)
    ctx = WIN_LENGTH - HOP
    return GraphSpec(
        inputs={
            "pcm": ["batch", "samples"],
            "pcm_ctx": ["batch", ctx],
            **{k: v for k, v in base.inputs.items() if k != "mel"},
        },
        outputs={
            **{k: v for k, v in base.outputs.items() if k in ("mouth", "landmarks", "embedding")},
            "pcm_ctx_out": ["batch", ctx],
            **{k: v for k, v in base.outputs.items() if k in ("mel_ctx_out", "h_out", "c_out")},
        },
    )


def _dynamic_axes(spec: GraphSpec) -> dict[str, dict[int, str]]:
    return {
        n: {i: d for i, d in enumerate(shape) if isinstance(d, str)}
        for n, shape in {**spec.inputs, **spec.outputs}.items()
    }


def sidecar_head(name: str, cfg: Any, spec: GraphSpec) -> dict:
    """The keys every model card starts with: name, format, opset, config, named I/O shapes."""
    return {
        "name": name,
        "format_version": 1,
        "opset": OPSET,
        "config": cfg.to_dict(),
        "inputs": spec.inputs,
        "outputs": spec.outputs,
    }


def training_fields(info: dict) -> dict:
    """How the model was trained (``info`` from its checkpoint) and its training-run metrics; they follow the
    model's own fields in its card."""
    return {
        "training": {k: info.get(k) for k in ("train_data", "train_config", "train_seconds", "params", "torch")},
        "metrics": info.get("metrics", {}),
    }


def export_onnx(wrapper: nn.Module, example: tuple, spec: GraphSpec, path: Path) -> None:
    """Legacy (TorchScript) exporter: native LSTM op, named dynamic axes; written atomically as one file."""
    wrapper.eval()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            example,
            str(tmp),
            input_names=list(spec.inputs),
            output_names=list(spec.outputs),
            dynamic_axes=_dynamic_axes(spec),
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
        onnx.checker.check_model(str(tmp), full_check=True)


def export_audio2motion(checkpoint: Path, model_dir: Path) -> dict:
    """Export a trained audio2motion checkpoint to ``audio2motion.fp32.onnx`` + sidecar; returns the sidecar."""
    from toonsync.training.train_audio2motion import load_checkpoint

    model = load_checkpoint(checkpoint)
    cfg = model.cfg
    spec = audio2motion_spec(cfg)
    b, t = 2, 12
    example = (torch.randn(b, t * cfg.mels_per_frame, cfg.n_mels), *model.initial_state(b))
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "audio2motion.fp32.onnx"
    export_onnx(MelStateWrapper(model), example, spec, path)
    parity = check_parity(model, path, spec)
    from .fp16 import to_fp16

    fp16 = to_fp16(path, model_dir / "audio2motion.fp16.onnx")
    parity_fp16 = fp16_parity(path, fp16, spec)
    info = getattr(model, "info", {})
    meta = {
        **sidecar_head("audio2motion", cfg, spec),
        "sample_rate": SAMPLE_RATE,
        "fps": FPS,
        "hop": HOP,
        "n_mels": N_MELS,
        "lookahead_frames": cfg.lookahead,
        "mouth_params": ["open", "spread", "labio"],
        "landmarks": "offsets from the neutral face, canonical canvas units (eye centres 0.28 apart)",
        **training_fields(info),
        "parity": parity,
        "parity_fp16": parity_fp16,
        "made_by": "toonsync training/train_audio2motion.py + export/onnx_export.py",
        "run_id": info.get("run_id"),
    }
    meta = write_sidecar(model_dir, "audio2motion", meta)
    log.info("exported %s (%d bytes) + fp16, parity max|diff| %.2e", path, path.stat().st_size, parity["max_abs_diff"])
    export_audio2motion_pcm(model, model_dir, meta)
    return meta


def export_audio2motion_pcm(model: nn.Module, model_dir: Path, base_meta: dict) -> dict:
    """The fused graph: raw PCM in (log-mel as Conv1d DFT inside), same outputs; ``audio2motion_pcm.fp32.onnx``."""
    from toonsync.training.models.frontend import Audio2MotionPCM

    cfg = model.cfg
    spec = audio2motion_pcm_spec(cfg)
    fused = Audio2MotionPCM(model).eval()
    b = 2
    example = (torch.randn(b, 12 * SAMPLES_PER_FRAME) * 0.1, torch.zeros(b, WIN_LENGTH - HOP), *model.initial_state(b))
    path = model_dir / "audio2motion_pcm.fp32.onnx"
    export_onnx(fused, example, spec, path)
    parity = check_parity(fused, path, spec)
    dropped = ("files", "parity", "inputs", "outputs", *MEASURED)  # the fused graph is neither calibrated nor evaluated
    meta = {
        **{k: v for k, v in base_meta.items() if k not in dropped},
        "name": "audio2motion_pcm",
        "inputs": spec.inputs,
        "outputs": spec.outputs,
        "parity": parity,
        "fused": "runtime.mel log-mel frontend (Conv1d DFT) + audio2motion in one graph; pcm samples must be "
        "a multiple of 640 per call",
    }
    return write_sidecar(model_dir, "audio2motion_pcm", meta)


FP16_ATOL = 2e-2  # fp16 vs fp32 on random O(1) inputs and states (fp16 keeps ~3 significant digits)


def fp16_parity(fp32: Path, fp16: Path, spec: GraphSpec, seed: int = 0) -> dict:
    """Worst |fp16 - fp32| over the outputs on random inputs (onnxruntime CPU)."""
    from toonsync.runtime.backend import OrtBackend

    rng = np.random.default_rng(seed)
    a, b = OrtBackend(fp32, "cpu", 1), OrtBackend(fp16, "cpu", 1)  # one thread: the same sums every run
    worst = 0.0
    for batch, frames in ((1, 25), (3, 7)):
        x = random_inputs(spec, batch, frames, rng)
        ra, rb = a.run(x), b.run(x)
        worst = max(worst, max(float(np.abs(ra[k] - rb[k]).max()) for k in ra))
    if worst > FP16_ATOL:
        raise AssertionError(f"fp16 parity failed for {fp16.name}: {worst:.2e} > {FP16_ATOL:.0e}")
    return {"max_abs_diff": worst, "atol": FP16_ATOL}


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


class MotionDecoderWrapper(nn.Module):
    """Exported I/O: speech, speech_mouth (the audio model's mouth; residual decoders), emotion, noise, cache ->
    mouth, landmarks, pose, blink, (decoders with a closure head) ``closed``: the probability that the lips are
    shut, cache_out."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, speech, *rest):
        if self.model.cfg.residual:
            out = self.model(speech, *rest)
        else:
            emotion, noise, cache = rest
            out = self.model(speech, None, emotion, noise, cache)
        if self.model.cfg.closure:
            return (*out[:4], torch.sigmoid(out[4]), out[5])
        return out


def motion_spec(cfg: Any) -> GraphSpec:
    """The motion decoder's graph I/O: speech, emotion, noise and its cache in; motion and cache out."""
    cache = [cfg.layers, "batch", cfg.window - 1, cfg.d_model]
    mouth = {"speech_mouth": ["batch", "frames", cfg.n_params]} if cfg.residual else {}  # names are unique in ONNX
    return GraphSpec(
        inputs={
            "speech": ["batch", "frames", cfg.speech_dim],
            **mouth,
            "emotion": ["batch", "frames", cfg.emotion_dim],
            "noise": ["batch", "frames", cfg.noise_dim],
            "cache": cache,
        },
        outputs={
            "mouth": ["batch", "frames", cfg.n_params],
            "landmarks": ["batch", "frames", 68, 2],
            "pose": ["batch", "frames", 3],
            "blink": ["batch", "frames"],
            **({"closed": ["batch", "frames"]} if getattr(cfg, "closure", False) else {}),
            "cache_out": cache,
        },
    )


def export_motion(checkpoint: Path, model_dir: Path) -> dict:
    """Export the transformer motion decoder (``motion.pt`` from ``toonsync train motion``) to
    ``motion.fp32.onnx`` + ``motion.fp16.onnx`` + sidecar. It pairs with the audio2motion checkpoint of
    the same run (``run_id`` in both sidecars); the runtime uses it only when the two match."""
    from toonsync.runtime.motion import NOISE_CHANNELS
    from toonsync.training.models.encoder import load_model_checkpoint
    from toonsync.training.models.motion_decoder import MotionDecoder, MotionDecoderConfig

    from .fp16 import to_fp16

    model = load_model_checkpoint(checkpoint, MotionDecoder, MotionDecoderConfig)
    cfg = model.cfg
    spec = motion_spec(cfg)
    b, t = 2, 12
    mouth = (torch.rand(b, t, cfg.n_params),) if cfg.residual else ()
    example = (
        torch.randn(b, t, cfg.speech_dim),
        *mouth,
        torch.rand(b, t, cfg.emotion_dim),
        torch.randn(b, t, cfg.noise_dim),
        model.initial_state(b),
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "motion.fp32.onnx"
    export_onnx(MotionDecoderWrapper(model), example, spec, path)
    parity = check_parity(MotionDecoderWrapper(model), path, spec)
    fp16 = to_fp16(path, model_dir / "motion.fp16.onnx")
    info = getattr(model, "info", {})
    meta = {
        **sidecar_head("motion", cfg, spec),
        "fps": FPS,
        "run_id": info.get("run_id"),
        "speech_input": "the `embedding` (and, residual decoders, as speech_mouth: `mouth`) outputs of audio2motion "
        "(same run_id), "
        "for the frames that describe video frames",
        "noise_channels": list(NOISE_CHANNELS),
        "emotion_classes": list(EMOTIONS),
        "mouth_params": ["open", "spread", "labio"],
        "landmarks": "offsets from the neutral face, canonical canvas units (eye centres 0.28 apart)",
        "targets": info.get("targets"),
        **training_fields(info),
        "parity": parity,
        "parity_fp16": fp16_parity(path, fp16, spec),
        "made_by": "toonsync training/train_motion.py + export/onnx_export.py",
    }
    meta = write_sidecar(model_dir, "motion", meta)
    log.info("exported %s (%d bytes) + fp16, parity max|diff| %.2e", path, path.stat().st_size, parity["max_abs_diff"])
    return meta
