"""Speech -> mouth motion: causal CNN over log-mel + LSTM.

Streaming-ready: every piece of state is an explicit input/output —
``mel_ctx`` (the causal conv's left context), ``h``/``c`` (LSTM). Chunked output equals
whole-clip output exactly. The model predicts the mouth ``lookahead`` frames late (output step
t describes video frame t - lookahead), so it hears 80 ms of the future without breaking causality.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from toonsync.runtime.mouth import mouth_basis

from .encoder import CausalMelLSTM


@dataclass
class Audio2MotionConfig:
    """Shape of the speech model: mel input, conv channels and kernel, LSTM size, mouth parameters."""

    n_mels: int = 80
    mels_per_frame: int = 4
    channels: int = 192
    kernel: int = 5  # first conv over mel frames (causal, left context kernel - 1)
    hidden: int = 192  # LSTM size = speech embedding size
    n_params: int = 3  # open, spread, labio
    lookahead: int = 2  # video frames (80 ms)
    dropout: float = 0.0  # on conv features (training only; 0.2 measured worse on the held-out voice)
    norm: str = "layer"  # input normalisation: "layer" (per-frame LayerNorm) or "affine" (keeps the level)

    def to_dict(self) -> dict:
        return asdict(self)


class Audio2Motion(CausalMelLSTM):
    """Log-mel -> mouth parameters, landmark offsets and a speech embedding, streaming (causal CNN + LSTM)."""

    def __init__(self, cfg: Audio2MotionConfig):
        super().__init__(cfg)
        self.head = nn.Linear(cfg.hidden, cfg.n_params)
        self.register_buffer("basis", torch.from_numpy(mouth_basis().reshape(cfg.n_params, -1)), persistent=False)

    def forward(self, mel, mel_ctx, h, c):
        """mel [B, 4T, 80], mel_ctx [B, 80, k-1], h/c [1, B, H] ->
        mouth [B, T, 3], landmarks [B, T, 68, 2] (offsets), embedding [B, T, H], mel_ctx', h', c'."""
        emb, new_ctx, h2, c2 = self.encode(mel, mel_ctx, h, c)
        raw = self.head(emb)
        mouth = torch.cat([torch.sigmoid(raw[..., :1]), torch.tanh(raw[..., 1:2]), torch.sigmoid(raw[..., 2:3])], -1)
        lms = (mouth @ self.basis).reshape(mouth.shape[0], mouth.shape[1], 68, 2)
        return mouth, lms, emb, new_ctx, h2, c2
