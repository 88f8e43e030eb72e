"""The landmark model for drawn faces: an RGB window -> 68 points (iBUG 300-W order) + "a face is framed here".

A ResNet-18 trunk (``training.models.resnet``, narrow) keeps its last 4 x 4 feature map (flattened, not pooled:
where a feature is matters for coordinates) -> a hidden layer -> 136 coordinates in window units (0..1, x then
y per point, started at the mean face of the refine framing) and one logit (the window holds one whole face at
a usable scale). Input is what the runtime holds: RGB ``[B, size, size, 3]`` in 0..1; the layout change and the
[-1, 1] scaling are inside the model, so the exported graph and training share them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .resnet import ResNet18


@dataclass
class LandmarkerConfig:
    """Input side, ResNet-18 width, hidden units."""

    size: int = 128
    width: int = 24  # first-stage channels (stages x1 x2 x4 x8)
    hidden: int = 256

    def to_dict(self) -> dict:
        return asdict(self)


class Landmarker(nn.Module):
    """RGB ``[B, size, size, 3]`` in 0..1 -> (points ``[B, 68, 2]`` in window units, face logit ``[B]``)."""

    def __init__(self, cfg: LandmarkerConfig, mean_points: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        self.trunk = ResNet18(cfg.width)
        cells = (cfg.size // 32) ** 2
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(self.trunk.out_features * cells, cfg.hidden), nn.ReLU(inplace=True)
        )
        self.points = nn.Linear(cfg.hidden, 136)
        self.face = nn.Linear(cfg.hidden, 1)
        nn.init.zeros_(self.points.weight)
        with torch.no_grad():
            init = torch.full((136,), 0.5) if mean_points is None else mean_points.reshape(136).float()
            self.points.bias.copy_(init)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.permute(0, 3, 1, 2) * 2.0 - 1.0
        h = self.head(self.trunk.stages(self.trunk.stem(x)))
        return self.points(h).reshape(-1, 68, 2), self.face(h).squeeze(1)
