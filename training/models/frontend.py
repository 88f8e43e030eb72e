"""The log-mel frontend as torch ops (Conv1d DFT), for graphs that take raw PCM (fused export).

Numerically the same contract as ``runtime.mel`` (causal 400-sample Hann frames zero-padded to a
512-point DFT, hop 160, the shipped librosa filters, whisper-style log scaling with a fixed floor);
the PCM left context (240 samples) is explicit state so chunked equals whole.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from toonsync.runtime import mel as M


class LogMel(nn.Module):
    """The runtime's log-mel frontend as a torch module (DFT as Conv1d), for the fused PCM graph."""

    def __init__(self):
        super().__init__()
        n = np.arange(M.WIN_LENGTH)
        k = np.arange(M.N_FFT // 2 + 1)
        ang = 2 * np.pi * np.outer(k, n) / M.N_FFT  # [257, 400]
        w = M._window().astype(np.float64)
        basis = np.concatenate([np.cos(ang) * w, -np.sin(ang) * w]).astype(np.float32)[:, None, :]
        self.register_buffer("basis", torch.from_numpy(basis), persistent=False)  # [514, 1, 400]
        self.register_buffer("filters", torch.from_numpy(M.mel_filters()), persistent=False)  # [80, 257]
        self.ctx = M.WIN_LENGTH - M.HOP

    def forward(self, pcm, pcm_ctx):
        """pcm [B, N] (N a multiple of 160), pcm_ctx [B, 240] -> log-mel [B, N/160, 80], pcm_ctx_out [B, 240]."""
        x = torch.cat([pcm_ctx, pcm], dim=1)
        spec = nn.functional.conv1d(x[:, None, :], self.basis, stride=M.HOP)  # [B, 514, frames]
        half = spec.shape[1] // 2
        power = spec[:, :half] ** 2 + spec[:, half:] ** 2
        mel = torch.matmul(self.filters, power).transpose(1, 2)
        logmel = torch.log10(torch.clamp(mel, min=1e-10))
        return (torch.clamp(logmel, min=M.LOG_FLOOR) + 4.0) / 4.0, x[:, x.shape[1] - self.ctx :]


class Audio2MotionPCM(nn.Module):
    """Fused graph: raw 16 kHz PCM -> mouth/landmarks, with pcm_ctx + mel_ctx + h/c as explicit state."""

    def __init__(self, model):
        super().__init__()
        self.frontend = LogMel()
        self.model = model

    def forward(self, pcm, pcm_ctx, mel_ctx, h, c):
        mel, pcm_ctx_out = self.frontend(pcm, pcm_ctx)
        mouth, lms, emb, mel_ctx_out, h2, c2 = self.model(mel, mel_ctx, h, c)
        return mouth, lms, emb, pcm_ctx_out, mel_ctx_out, h2, c2
