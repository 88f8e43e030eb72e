"""Speech -> emotion classifier (seed module 5): causal CNN over log-mel + LSTM -> per-frame 6-class logits.

Same streaming contract as ``audio2motion``: the causal conv's left context (``mel_ctx``) and the
LSTM ``h``/``c`` are explicit inputs/outputs, so chunked inference equals whole-clip inference.
Output frames are 40 ms (4 mel frames, 25 fps), classes in CREMA-D order (``runtime.motion.EMOTIONS``);
an utterance's prediction is the mean of its frame log-probabilities. Meant to be trained on CREMA-D
(``training/train_emotion.py``); no trained weights ship, because CREMA-D is not on the build machine.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from runtime.motion import EMOTIONS


@dataclass
class EmotionConfig:
    n_mels: int = 80
    mels_per_frame: int = 4
    channels: int = 96
    kernel: int = 5  # first conv over mel frames (causal, left context kernel - 1)
    hidden: int = 64
    n_classes: int = len(EMOTIONS)
    dropout: float = 0.1  # on conv features (training only)

    def to_dict(self) -> dict:
        return asdict(self)


class EmotionNet(nn.Module):
    def __init__(self, cfg: EmotionConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.norm = nn.LayerNorm(cfg.n_mels)
        self.conv1 = nn.Conv1d(cfg.n_mels, c, cfg.kernel)  # causal via explicit left context
        self.conv2 = nn.Conv1d(c, c, cfg.mels_per_frame, stride=cfg.mels_per_frame)  # -> 25 fps
        self.act = nn.GELU()
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(c, cfg.hidden, batch_first=True)
        self.head = nn.Linear(cfg.hidden, cfg.n_classes)

    @property
    def ctx_len(self) -> int:
        return self.cfg.kernel - 1

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = torch.zeros
        return (z(batch, self.cfg.n_mels, self.ctx_len), z(1, batch, self.cfg.hidden), z(1, batch, self.cfg.hidden))

    def forward(self, mel, mel_ctx, h, c):
        """mel [B, 4T, 80], mel_ctx [B, 80, k-1], h/c [1, B, H] -> logits [B, T, 6], mel_ctx', h', c'."""
        x = self.norm(mel).transpose(1, 2)  # [B, 80, 4T]
        x = torch.cat([mel_ctx, x], dim=2)
        new_ctx = x[:, :, x.shape[2] - self.ctx_len:]
        x = self.act(self.conv1(x))
        x = self.drop(self.act(self.conv2(x))).transpose(1, 2)  # [B, T, C]
        y, (h2, c2) = self.lstm(x, (h, c))
        return self.head(y), new_ctx, h2, c2


def utterance_log_probs(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Frame logits [B, T, K] (+ valid-frame mask [B, T]) -> mean frame log-probabilities [B, K]."""
    lp = F.log_softmax(logits, dim=-1)
    if mask is None:
        return lp.mean(dim=1)
    m = mask.to(lp.dtype).unsqueeze(-1)
    return (lp * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def param_bytes(model: nn.Module) -> int:
    """fp32 size of the parameters (the ONNX file is about this big)."""
    return 4 * sum(p.numel() for p in model.parameters())
