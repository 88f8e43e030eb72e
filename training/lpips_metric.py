"""LPIPS (Zhang et al. 2018) for ``toonsync eval render --lpips-weights PATH``: the torch half of
``runtime.metrics.lpips_score`` (the runtime itself never imports torch). Needs the ``lpips`` package
(torch + torchvision) and the ImageNet-pretrained backbone already in the torch hub cache: nothing is
downloaded here, and a missing piece is reported, never faked."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def lpips_values(
    frames: Sequence[np.ndarray], reference: Sequence[np.ndarray], weights: str, net: str = "alex"
) -> list[float]:
    """Per-pair LPIPS distances of uint8 RGB(A) frames; raises ImportError without ``lpips``/torch."""
    import lpips
    import torch

    model = lpips.LPIPS(net=net, model_path=str(weights), verbose=False).eval()

    def t(x: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x[..., :3])).permute(2, 0, 1)[None].float() / 127.5 - 1.0

    with torch.no_grad():
        return [float(model(t(f), t(g)).item()) for f, g in zip(frames, reference)]
