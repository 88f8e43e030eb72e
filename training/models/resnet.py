"""ResNet-18 written here (torchvision does not import beside torch 2.13 on the build machine), and the
identity encoder built on it ("captures speaker identity with a ResNet-18 based encoder").

``ResNet18``: the He et al. (2016) ImageNet layout — 7x7/2 stem + 3x3/2 max-pool, four stages of two
``BasicBlock``s (3x3 conv-BN-ReLU-3x3 conv-BN + shortcut; 1x1/2 conv-BN shortcut where the shape
changes), strides 1, 2, 2, 2, global average pool. ``width`` is the first stage's channel count
(64 in the paper; stages are width x 1, 2, 4, 8), so the shipped encoder can be a quarter of the
paper's parameters without changing the topology.

``IdentityEncoder``: ResNet-18 trunk -> 2-layer projection head -> L2-normalised embedding
(``embed_dim``). Its input is what the runtime has: RGB images ``[B, H, W, 3]`` with values in 0..1,
resized to ``size`` x ``size``; the layout change and the [-1, 1] scaling happen inside the model,
so the exported ONNX graph and the training code share one preprocessing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3x3 convolutions with batch norm and a residual connection."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 trunk: ``[B, in_ch, H, W]`` -> pooled features ``[B, 8 * width]`` (no classifier)."""

    LAYERS = (2, 2, 2, 2)

    def __init__(self, width: int = 64, in_ch: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, cin = [], width
        for i, n in enumerate(self.LAYERS):
            cout = width * 2**i
            blocks = [BasicBlock(cin, cout, 1 if i == 0 else 2)] + [BasicBlock(cout, cout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.out_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for blk in self.modules():  # zero-init the last BN of each residual branch (Goyal et al. 2017)
            if isinstance(blk, BasicBlock):
                nn.init.zeros_(blk.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


@dataclass
class IdentityConfig:
    """Shape of the identity encoder: input size, ResNet-18 width, embedding size."""

    size: int = 96  # input images are resized to size x size (RGB, 0..1)
    width: int = 32  # ResNet-18 first-stage channels (paper: 64); 32 -> ~2.9 M parameters, ~11 MB fp32
    embed_dim: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


class IdentityEncoder(nn.Module):
    """RGB ``[B, size, size, 3]`` in 0..1 -> unit-length identity embedding ``[B, embed_dim]``."""

    def __init__(self, cfg: IdentityConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = ResNet18(cfg.width)
        f = self.trunk.out_features
        self.head = nn.Sequential(
            nn.Linear(f, f), nn.BatchNorm1d(f), nn.ReLU(inplace=True), nn.Linear(f, cfg.embed_dim)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2) * 2.0 - 1.0
        return F.normalize(self.head(self.trunk(x)), dim=1)
