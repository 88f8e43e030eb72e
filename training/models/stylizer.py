"""pix2pix image-to-image networks and losses ("U-Net + GAN"; Isola et al. 2017).

``UNetGenerator``: the pix2pix U-Net. ``depth`` stride-2 4x4 convolutions down (the input side is
divided by ``2**depth``: 8 for 256 x 256 as in pix2pix's ``unet_256``, 6 for the 64 x 64 test
fixture), mirrored by transposed convolutions up, each decoder level concatenated with the encoder
level of the same size (skip connections). Encoder: LeakyReLU(0.2) -> conv -> norm (no norm on the
first and innermost levels); decoder: ReLU -> transposed conv -> norm, dropout(0.5) on the three
innermost decoder levels that have a skip (pix2pix's noise), tanh output in [-1, 1]. Channels:
``ngf * 2**level`` capped at ``ngf * 8``. Instance norm by default (no batch statistics, so a
DDP run equals a single-process run and batch 1 works); ``norm="batch"`` is pix2pix's default.

Optional FiLM conditioning (``cond_dim > 0``; Perez et al. 2018): a vector (e.g. the identity
embedding of ``training.models.resnet.IdentityEncoder``) gives a per-channel scale and shift of every
decoder level's features (``x * (1 + gamma) + beta``, zero-initialised so training starts from the
unconditioned U-Net). The refinement generator (``training/train_refiner.py``) uses it.

``PatchDiscriminator``: the conditional 70 x 70 PatchGAN — input and output images concatenated
(6 channels), 4x4 convolutions 64-128-256 (stride 2) - 512 (stride 1) - 1 (stride 1) with
LeakyReLU(0.2) and norm from the second layer on: one real/fake logit per 70 x 70 receptive field.
``n_layers`` / ``ndf`` shrink it for small images. It also returns its intermediate activations
for the feature-matching loss.

Losses (``GanLosses``):

* adversarial: LSGAN (least squares, Mao et al. 2017; pix2pix's ``--gan_mode lsgan``) on the patch
  logits — real -> 1, fake -> 0 for the discriminator, fake -> 1 for the generator;
* L1 to the target, weight 100 as in pix2pix; MSE to the target (weight 0 by default, seed loss);
* "perceptual": no pretrained VGG can be downloaded here, so the perceptual term is
  **discriminator feature matching** (pix2pixHD, Wang et al. 2018): the mean L1 distance between the
  discriminator's intermediate activations on (input, real target) and on (input, generated image),
  every activation layer weighted equally. It is *not* VGG-perceptual and not LPIPS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (instance, batch or none)")


@dataclass
class UNetConfig:
    """Shape of the pix2pix U-Net generator: image size, depth, channels, conditioning."""

    size: int = 256  # square input/output side; must be divisible by 2**depth
    depth: int = 8  # down-sampling levels (pix2pix unet_256: 8)
    ngf: int = 64  # channels of the first level (pix2pix: 64)
    in_ch: int = 3
    out_ch: int = 3
    norm: str = "instance"
    dropout: float = 0.5  # on the three innermost decoder levels (training only)
    cond_dim: int = 0  # > 0: FiLM conditioning vector size (refinement generator)

    def __post_init__(self):
        if self.depth < 2 or self.size % (2**self.depth):
            raise ValueError(f"U-Net size {self.size} must be divisible by 2**depth = {2**self.depth} (depth >= 2)")

    def to_dict(self) -> dict:
        return asdict(self)


class UNetGenerator(nn.Module):
    """``x [B, in_ch, S, S]`` in [-1, 1] (+ ``cond [B, cond_dim]``) -> ``y [B, out_ch, S, S]`` in [-1, 1]."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        ch = [min(cfg.ngf * 2**i, cfg.ngf * 8) for i in range(cfg.depth)]
        self.down = nn.ModuleList()
        for i in range(cfg.depth):
            cin = cfg.in_ch if i == 0 else ch[i - 1]
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, ch[i], 4, 2, 1, bias=cfg.norm != "batch"))
            if 0 < i < cfg.depth - 1:
                layers.append(_norm(cfg.norm, ch[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        self.film = nn.ModuleList()
        for i in reversed(range(cfg.depth)):  # decoder level i produces the size of encoder level i - 1
            cin = ch[i] if i == cfg.depth - 1 else 2 * ch[i]
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(cin, cfg.out_ch, 4, 2, 1), nn.Tanh()))
                continue
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(cin, ch[i - 1], 4, 2, 1, bias=cfg.norm != "batch"),
                _norm(cfg.norm, ch[i - 1]),
            ]
            if cfg.dropout > 0 and i >= cfg.depth - 3:
                layers.append(nn.Dropout(cfg.dropout))
            self.up.append(nn.Sequential(*layers))
            if cfg.cond_dim > 0:
                film = nn.Linear(cfg.cond_dim, 2 * ch[i - 1])
                nn.init.zeros_(film.weight)
                nn.init.zeros_(film.bias)
                self.film.append(film)
        for m in self.modules():  # pix2pix init: N(0, 0.02)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)
        y = skips.pop()
        for j, u in enumerate(self.up):
            y = u(y)
            if skips:
                if cond is not None and self.film:
                    gamma, beta = self.film[j](cond).chunk(2, dim=1)
                    y = y * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
                y = torch.cat([y, skips.pop()], dim=1)
        return y


@dataclass
class PatchConfig:
    """Shape of the PatchGAN discriminator: input channels, width, layers, normalisation."""

    in_ch: int = 6  # condition image + output image
    ndf: int = 64
    n_layers: int = 3  # 3: the 70 x 70 PatchGAN
    norm: str = "instance"

    def to_dict(self) -> dict:
        return asdict(self)


class PatchDiscriminator(nn.Module):
    """``(cond, image)`` -> (patch logits ``[B, 1, h, w]``, [intermediate activations])."""

    def __init__(self, cfg: PatchConfig):
        super().__init__()
        self.cfg = cfg
        blocks: list[nn.Module] = [nn.Sequential(nn.Conv2d(cfg.in_ch, cfg.ndf, 4, 2, 1), nn.LeakyReLU(0.2))]
        ch = cfg.ndf
        for i in range(1, cfg.n_layers + 1):
            cout = cfg.ndf * min(2**i, 8)
            stride = 2 if i < cfg.n_layers else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(ch, cout, 4, stride, 1, bias=cfg.norm != "batch"),
                    _norm(cfg.norm, cout),
                    nn.LeakyReLU(0.2),
                )
            )
            ch = cout
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Conv2d(ch, 1, 4, 1, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, cond: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([cond, image], dim=1)
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return self.out(x), feats


@dataclass
class LossWeights:
    """Weights of the generator's losses: adversarial, L1, MSE, feature matching."""

    adv: float = 1.0
    l1: float = 100.0  # pix2pix's lambda_L1
    mse: float = 0.0
    feat: float = 10.0  # discriminator feature matching (pix2pixHD's lambda_feat)

    def to_dict(self) -> dict:
        return asdict(self)


PERCEPTUAL_NOTE = (
    "perceptual term = discriminator feature matching (pix2pixHD): mean L1 between the "
    "PatchGAN's intermediate activations on (input, target) and (input, output); no pretrained "
    "VGG is available on the build machine, so this is not a VGG-perceptual loss and not LPIPS"
)


class GanLosses:
    """The per-row-mean loss terms of a conditional GAN step (LSGAN adversarial, L1, MSE, feature matching)."""

    def __init__(self, w: LossWeights):
        self.w = w

    @staticmethod
    def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """LSGAN discriminator loss (x 0.5 as in pix2pix)."""
        return 0.5 * (((real_logits - 1) ** 2).mean() + (fake_logits**2).mean())

    def g_terms(self, fake: torch.Tensor, target: torch.Tensor, fake_out, real_out) -> dict[str, torch.Tensor]:
        """Unweighted generator terms; ``*_out``: the discriminator's (logits, feats) on fake / real pairs."""
        (fl, ff), (_, rf) = fake_out, real_out
        return {
            "adv": ((fl - 1) ** 2).mean(),
            "l1": F.l1_loss(fake, target),
            "mse": F.mse_loss(fake, target),
            "feat": sum(F.l1_loss(a, b.detach()) for a, b in zip(ff, rf)) / len(ff),
        }

    def g_total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        w = self.w
        return w.adv * terms["adv"] + w.l1 * terms["l1"] + w.mse * terms["mse"] + w.feat * terms["feat"]
