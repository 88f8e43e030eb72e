"""Motion decoder: a small causal transformer over the speech, emotion and noise
embeddings -> mouth parameters (-> 68 landmark offsets), head pose and blink, per 40 ms frame.

Inputs per frame: the speech embedding of the audio model (``Audio2Motion``'s LSTM output, which has
already heard ``lookahead`` = 2 frames = 80 ms of the future), the audio model's own mouth estimate [3],
the emotion vector [6] (CREMA-D order) and the noise embedding [6] (``runtime.motion.NoiseEmbedding``).
The decoder's mouth is that estimate plus a bounded correction (zero at initialisation), so it starts
from the speech model's lip-sync and learns what context, emotion and noise change. Each layer attends to the last
``window`` frames only (itself included) with a learned relative-position bias per head, so there is
no look-ahead beyond the audio model's 80 ms.

Streaming: the state is ``cache`` [layers, B, window - 1, d] -- each layer's input at the previous
``window - 1`` frames -- an explicit graph input/output like the LSTM's h/c. Whole-clip inference
starts from the zero cache too, so chunked output equals whole-clip output for any chunking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from toonsync.runtime.motion import N_NOISE
from toonsync.runtime.mouth import mouth_basis

N_EMOTIONS = 6
NEG = -1e4  # additive mask (fp16-safe)


@dataclass
class MotionDecoderConfig:
    """Shape of the motion decoder: input sizes, transformer width, layers, window, outputs."""

    speech_dim: int = 192  # the audio model's embedding size (its LSTM hidden)
    emotion_dim: int = N_EMOTIONS
    noise_dim: int = N_NOISE
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    ffn: int = 256
    window: int = 16  # frames each layer attends to (640 ms), the current one included
    n_params: int = 3  # mouth: open, spread, labio
    dropout: float = 0.0
    residual: bool = False  # mouth = the audio model's mouth (an input) + a bounded correction (shipped: True)
    # a closure head: the logit that the lips are shut (P/B/M or a pause) at each frame, read from the speech inputs
    # alone (the speech embedding and the audio model's mouth), so that emotion and noise cannot move it
    closure: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class DecoderLayer(nn.Module):
    """One causal transformer layer over a sliding window, with its key/value cache as explicit state."""

    def __init__(self, cfg: MotionDecoderConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, d))
        self.rel_bias = nn.Parameter(torch.zeros(cfg.heads, cfg.window))  # per head, per offset 0..W-1
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cache):
        """x [B, T, d] (new frames), cache [B, W-1, d] (this layer's input at the W-1 frames before) ->
        y [B, T, d], new cache [B, W-1, d]."""
        cfg = self.cfg
        B, T, d = x.shape
        W, H = cfg.window, cfg.heads
        full = torch.cat([cache, x], dim=1)  # [B, W-1+T, d]
        new_cache = full[:, full.shape[1] - (W - 1) :]
        q, k, v = self.qkv(self.ln1(full)).split(d, dim=-1)
        q = q[:, W - 1 :]
        hd = d // H
        q = q.reshape(B, T, H, hd).transpose(1, 2)
        k = k.reshape(B, -1, H, hd).transpose(1, 2)
        v = v.reshape(B, -1, H, hd).transpose(1, 2)
        qi = torch.arange(T, device=x.device) + (W - 1)
        kj = torch.arange(full.shape[1], device=x.device)
        off = qi[:, None] - kj[None, :]  # [T, W-1+T]: how many frames back each key is
        valid = (off >= 0) & (off < W)
        bias = self.rel_bias[:, off.clamp(0, W - 1)]  # [H, T, W-1+T]
        scores = (q @ k.transpose(-1, -2)) * (hd**-0.5) + bias + torch.where(valid, 0.0, NEG)
        att = self.drop(F.softmax(scores, dim=-1)) @ v  # [B, H, T, hd]
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(B, T, d)))
        x = x + self.drop(self.ff(self.ln2(x)))
        return x, new_cache


class MotionDecoder(nn.Module):
    """Speech embedding + emotion + noise embedding -> mouth, landmarks, head pose and blink, frame by frame."""

    def __init__(self, cfg: MotionDecoderConfig):
        super().__init__()
        self.cfg = cfg
        n_in = cfg.speech_dim + cfg.emotion_dim + cfg.noise_dim + (cfg.n_params if cfg.residual else 0)
        self.inp = nn.Linear(n_in, cfg.d_model)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.mouth_head = nn.Linear(cfg.d_model, cfg.n_params)
        if cfg.residual:  # start as the identity on the audio model's mouth
            nn.init.zeros_(self.mouth_head.weight)
            nn.init.zeros_(self.mouth_head.bias)
        self.pose_head = nn.Linear(cfg.d_model, 3)
        self.blink_head = nn.Linear(cfg.d_model, 1)
        if cfg.closure:
            self.closure_head = nn.Linear(cfg.speech_dim + (cfg.n_params if cfg.residual else 0), 1)
        self.register_buffer("basis", torch.from_numpy(mouth_basis().reshape(cfg.n_params, -1)), persistent=False)

    POSE_SCALE = 0.1  # pose is predicted in units of 0.1 rad

    def initial_state(self, batch: int) -> torch.Tensor:
        c = self.cfg
        return torch.zeros(c.layers, batch, c.window - 1, c.d_model)

    MAX_CORRECTION = 0.5  # of a mouth parameter

    def forward(self, speech, mouth_in, emotion, noise, cache):
        """speech [B, T, S], mouth_in [B, T, 3] (the audio model's; ignored unless ``residual``), emotion
        [B, T, 6], noise [B, T, 6], cache [layers, B, W-1, d] -> mouth [B, T, 3], landmarks [B, T, 68, 2]
        (offsets), pose [B, T, 3] (rad), blink [B, T], with ``closure`` the closure logit [B, T] (the exported
        graph gives its sigmoid, ``closed``; the runtime shapes the drawn mouth with it), and cache' (last)."""
        x, new_cache = self.trunk(speech, mouth_in, emotion, noise, cache)
        closure = (self.closure_logit(speech, mouth_in),) if self.cfg.closure else ()
        return (*self.heads(x, mouth_in), *closure, new_cache)

    def closure_logit(self, speech, mouth_in):
        """The closure head: speech [B, T, S] (+ mouth_in [B, T, 3], residual decoders) -> logit [B, T]."""
        feats = torch.cat([speech, mouth_in], dim=-1) if self.cfg.residual else speech
        return self.closure_head(feats)[..., 0]

    def trunk(self, speech, mouth_in, emotion, noise, cache):
        """The transformer: inputs as ``forward`` -> the last hidden state [B, T, d] (what the heads read), cache'."""
        feats = [speech, mouth_in, emotion, noise] if self.cfg.residual else [speech, emotion, noise]
        x = self.inp(torch.cat(feats, dim=-1))
        caches = []
        for i, layer in enumerate(self.layers):
            x, c = layer(x, cache[i])
            caches.append(c)
        return self.ln(x), torch.stack(caches)

    def heads(self, x, mouth_in):
        """Hidden state [B, T, d] -> mouth, landmarks, pose, blink, as ``forward``."""
        raw = self.mouth_head(x)
        if self.cfg.residual:
            m = mouth_in + self.MAX_CORRECTION * torch.tanh(raw)
            mouth = torch.cat(
                [m[..., :1].clamp(0.0, 1.0), m[..., 1:2].clamp(-1.0, 1.0), m[..., 2:3].clamp(0.0, 1.0)], -1
            )
        else:
            mouth = torch.cat(
                [torch.sigmoid(raw[..., :1]), torch.tanh(raw[..., 1:2]), torch.sigmoid(raw[..., 2:3])], -1
            )
        lms = (mouth @ self.basis).reshape(mouth.shape[0], mouth.shape[1], 68, 2)
        pose = self.pose_head(x) * self.POSE_SCALE
        blink = torch.sigmoid(self.blink_head(x)[..., 0])
        return mouth, lms, pose, blink
