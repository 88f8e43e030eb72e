"""Export a trained speech-emotion classifier (``emotion.pt``) to ``emotion.fp32.onnx`` + its card.

The graph streams: ``mel, mel_ctx, h, c -> logits, mel_ctx_out, h_out, c_out`` with a dynamic batch axis,
checked against torch (``export.parity``) before the card is written.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from toonsync.runtime.mel import FPS, HOP, N_MELS, SAMPLE_RATE
from toonsync.runtime.motion import EMOTIONS
from toonsync.training.models.emotion import EmotionConfig
from toonsync.training.train_emotion import load_checkpoint

from .onnx_export import (
    GraphSpec,
    MelStateWrapper,
    export_onnx,
    mel_state_spec,
    sidecar_head,
    training_fields,
    write_sidecar,
)
from .parity import check_parity

log = logging.getLogger(__name__)


def emotion_spec(cfg: EmotionConfig) -> GraphSpec:
    """The graph's named inputs and outputs with their shapes."""
    return mel_state_spec(cfg, {"logits": ["batch", "frames", cfg.n_classes]})


def export_emotion(checkpoint: Path, model_dir: Path) -> dict:
    """Export an ``emotion.pt`` checkpoint to ``emotion.fp32.onnx`` + ``emotion.onnx.json``; returns the sidecar."""
    model = load_checkpoint(Path(checkpoint))
    cfg = model.cfg
    spec = emotion_spec(cfg)
    b, t = 2, 12
    example = (torch.randn(b, t * cfg.mels_per_frame, cfg.n_mels), *model.initial_state(b))
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / "emotion.fp32.onnx"
    export_onnx(MelStateWrapper(model), example, spec, path)
    parity = check_parity(model, path, spec)
    info = getattr(model, "info", {})
    meta = {
        **sidecar_head("emotion", cfg, spec),
        "classes": list(EMOTIONS),
        "sample_rate": SAMPLE_RATE,
        "fps": FPS,
        "hop": HOP,
        "n_mels": N_MELS,
        "utterance": "mean of frame log_softmax(logits)",
        **training_fields(info),
        "parity": parity,
        "made_by": "toonsync training/train_emotion.py + export/emotion.py",
    }
    meta = write_sidecar(model_dir, "emotion", meta)
    log.info("exported %s (%d bytes), parity max|diff| %.2e", path, path.stat().st_size, parity["max_abs_diff"])
    return meta
