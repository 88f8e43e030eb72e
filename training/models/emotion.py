"""Speech -> emotion classifier: causal CNN over log-mel + LSTM -> per-frame 6-class logits.

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

from toonsync.runtime.motion import EMOTIONS

from .encoder import CausalMelLSTM


@dataclass
class EmotionConfig:
    """Shape of the emotion classifier: mel input, conv channels and kernel, LSTM size, classes."""

    n_mels: int = 80
    mels_per_frame: int = 4
    channels: int = 96
    kernel: int = 5  # first conv over mel frames (causal, left context kernel - 1)
    hidden: int = 64
    n_classes: int = len(EMOTIONS)
    dropout: float = 0.1  # on conv features (training only)

    def to_dict(self) -> dict:
        return asdict(self)


class EmotionNet(CausalMelLSTM):
    """Log-mel -> per-frame logits of the six CREMA-D emotions, streaming (causal CNN + LSTM)."""

    def __init__(self, cfg: EmotionConfig):
        super().__init__(cfg)
        self.head = nn.Linear(cfg.hidden, cfg.n_classes)

    def forward(self, mel, mel_ctx, h, c):
        """mel [B, 4T, 80], mel_ctx [B, 80, k-1], h/c [1, B, H] -> logits [B, T, 6], mel_ctx', h', c'."""
        y, new_ctx, h2, c2 = self.encode(mel, mel_ctx, h, c)
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
