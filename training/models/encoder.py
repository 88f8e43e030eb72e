"""The causal speech encoder both audio models share: log-mel -> LayerNorm -> causal
Conv1d (explicit left context) -> stride-4 Conv1d to 25 fps -> LSTM (explicit h/c).

Subclasses add their head; all streaming state is an explicit input/output, so chunked == whole.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class MelAffine(nn.Module):
    """Per-mel-bin affine input normalisation (``(x - shift) * scale``, both learned, initialised from data
    statistics by ``init_from``). Unlike a per-frame LayerNorm it keeps the frame's level, so digital
    silence, a whisper and speech stay distinguishable (a LayerNorm turns a near-silent frame into a
    normalised noise spectrum that looks like a fricative)."""

    def __init__(self, n_mels: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(n_mels))
        self.scale = nn.Parameter(torch.ones(n_mels))

    @torch.no_grad()
    def init_from(self, mel: torch.Tensor) -> None:
        """mel [..., n_mels]: a sample of training input."""
        flat = mel.reshape(-1, mel.shape[-1])
        self.shift.copy_(flat.mean(0))
        self.scale.copy_(1.0 / flat.std(0).clamp_min(1e-3))

    def forward(self, x):
        return (x - self.shift) * self.scale


class CausalMelLSTM(nn.Module):
    """``cfg`` needs: n_mels, mels_per_frame, channels, kernel, hidden, dropout; optional ``norm``
    ("layer": per-frame LayerNorm, the original; "affine": level-preserving :class:`MelAffine`)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        norm = getattr(cfg, "norm", "layer")
        if norm not in ("layer", "affine"):
            raise ValueError(f"norm must be 'layer' or 'affine', got {norm!r}")
        self.norm = nn.LayerNorm(cfg.n_mels) if norm == "layer" else MelAffine(cfg.n_mels)
        self.conv1 = nn.Conv1d(cfg.n_mels, c, cfg.kernel)  # causal via explicit left context
        self.conv2 = nn.Conv1d(c, c, cfg.mels_per_frame, stride=cfg.mels_per_frame)  # -> 25 fps
        self.act = nn.GELU()
        self.drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(c, cfg.hidden, batch_first=True)

    @property
    def ctx_len(self) -> int:
        return self.cfg.kernel - 1

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = torch.zeros
        return (z(batch, self.cfg.n_mels, self.ctx_len), z(1, batch, self.cfg.hidden), z(1, batch, self.cfg.hidden))

    def encode(self, mel, mel_ctx, h, c):
        """mel [B, 4T, 80], mel_ctx [B, 80, k-1], h/c [1, B, H] -> embedding [B, T, H], mel_ctx', h', c'."""
        x = self.norm(mel).transpose(1, 2)  # [B, 80, 4T]
        x = torch.cat([mel_ctx, x], dim=2)
        new_ctx = x[:, :, x.shape[2] - self.ctx_len :]
        x = self.act(self.conv1(x))
        x = self.drop(self.act(self.conv2(x))).transpose(1, 2)  # [B, T, C]
        emb, (h2, c2) = self.lstm(x, (h, c))
        return emb, new_ctx, h2, c2


def load_model_checkpoint(path: Path, model_cls: type[nn.Module], cfg_cls: type) -> nn.Module:
    """Rebuild ``model_cls(cfg_cls(**config))`` from a checkpoint saved with its config inside; eval mode."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = model_cls(cfg_cls(**ck["config"]))
    model.load_state_dict(ck["state_dict"])
    model.eval()
    model.info = ck.get("info", {})
    return model
