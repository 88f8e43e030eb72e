"""Export the analytic warp renderer (``training/models/warp_renderer.py``) to ``render.fp32.onnx`` + sidecar.

No checkpoint: the renderer has no learned weights, so export needs only torch and is cheap (seconds).
Same conventions as ``export.onnx_export``: a wrapper with named I/O, named dynamic axes (batch, and
the square image size, so 256 and 512 both run), opset 17, a torch-vs-onnxruntime parity check on
realistic inputs at both sizes, and ``render.onnx.json`` written by ``export.sidecar``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .onnx_export import OPSET, GraphSpec, export_onnx
from .parity import check_parity
from .sidecar import write_sidecar

log = logging.getLogger(__name__)
NAME = "render"
PARITY_ATOL = 1.0  # uint8 levels: float-order noise may flip a rounding (measured: a handful of values per frame)
PARITY_SIZES = (256, 512)


class RenderWrapper(nn.Module):
    """Named I/O around the renderer: (base, neutral, landmarks, pose, blink, eyes, colours) -> (rgba,)."""

    def __init__(self, renderer: nn.Module):
        super().__init__()
        self.renderer = renderer

    def forward(self, base, neutral, landmarks, pose, blink, eyes, colours):
        return (self.renderer(base, neutral, landmarks, pose, blink, eyes, colours),)


def render_spec() -> GraphSpec:
    return GraphSpec(
        inputs={
            "base": [1, "size", "size", 16],
            "neutral": [1, 68, 2],
            "landmarks": ["batch", 68, 2],
            "pose": ["batch", 3],
            "blink": ["batch", 1],
            "eyes": [1, 2, 4],
            "colours": [1, 6, 3],
        },
        outputs={"rgba": ["batch", "size", "size", 4]},
    )


def render_inputs(spec: GraphSpec, batch: int, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible random renderer inputs: a premultiplied random base, the mean face, mouth shapes from the
    mouth basis plus jitter, poses within the runtime's +-0.6 rad clip, any blink."""
    from toonsync.runtime.avatar import mean_face_landmarks
    from toonsync.runtime.mouth import apply_mouth
    from toonsync.runtime.warp_renderer import pack_quads

    rgb, a = rng.uniform(0, 255, (1, size, size, 3)), rng.uniform(0.5, 1, (1, size, size, 1))
    neutral = mean_face_landmarks()
    mouth = np.stack([rng.uniform(0, 1, batch), rng.uniform(-1, 1, batch), rng.uniform(0, 0.5, batch)], 1)
    lm = apply_mouth(neutral, mouth) + rng.normal(0, 0.004, (batch, 68, 2))
    eyes = np.array([[-0.07, -0.2, 0.68, 0.5], [0.07, -0.2, 0.68, 0.5]]) + rng.normal(0, 0.02, (2, 4))
    base = np.round(np.concatenate([rgb * a, 255 * a], -1)).astype(np.uint8)[0]
    return {
        "base": pack_quads(base),
        "neutral": neutral[None],
        "landmarks": lm.astype(np.float32),
        "pose": rng.uniform(-0.6, 0.6, (batch, 3)).astype(np.float32),
        "blink": rng.uniform(0, 1, (batch, 1)).astype(np.float32),
        "eyes": eyes[None].astype(np.float32),
        "colours": rng.uniform(0, 1, (1, 6, 3)).astype(np.float32),
    }


def export_render(model_dir: Path) -> dict:
    """``render.fp32.onnx`` and ``render.onnx.json`` in ``model_dir``; returns the sidecar.

    No fp16 variant: the graph computes flat pixel indices (y * S + x, up to S * S = 262 144 at 512) and
    sub-pixel sample coordinates in float, which fp16 (integers exact to 2048, max 65 504) cannot hold."""
    from toonsync.training.models.warp_renderer import (
        COLOURS,
        EYE_PARAMS,
        EYES_CROP,
        GRID,
        KAPPA,
        MOUTH_CROP,
        OPEN_FROM,
        SIGMAS,
        WarpRenderer,
    )

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    spec = render_spec()
    wrapper = RenderWrapper(WarpRenderer()).eval()
    rng = np.random.default_rng(0)
    example = tuple(torch.from_numpy(v) for v in render_inputs(spec, 2, 64, rng).values())
    path = model_dir / f"{NAME}.fp32.onnx"
    export_onnx(wrapper, example, spec, path)
    parity = check_parity(
        wrapper, path, spec, batches=(1, 3), frames=PARITY_SIZES, atol=PARITY_ATOL, make_inputs=render_inputs
    )
    parity["unit"] = "uint8 levels"  # "frames" are the image sizes here
    meta = {
        "name": NAME,
        "format_version": 1,
        "opset": OPSET,
        "config": {
            "grid": GRID,
            "kappa": KAPPA,
            "sigmas": SIGMAS,
            "mouth_crop": MOUTH_CROP,
            "eyes_crop": EYES_CROP,
            "open_from": OPEN_FROM,
        },
        "inputs": spec.inputs,
        "outputs": spec.outputs,
        "colours": list(COLOURS),
        "eye_params": list(EYE_PARAMS),
        "image": "premultiplied RGBA uint8 (square canvas; landmarks in its 0..1 units); base: each pixel with "
        "its 2x2 neighbourhood, [1, S, S, 16] (runtime.warp_renderer.pack_quads)",
        "weights": "none: an analytic renderer (RBF + head-pose warp, bilinear sampling with border clamping, "
        "mouth/eyelid layers); nothing is learned",
        "training": {"train_data": None},
        "parity": parity,
        "fp16": "not made: flat pixel indices (up to S * S) and sub-pixel coordinates need fp32",
        "made_by": "toonsync training/models/warp_renderer.py + export/render_export.py",
    }
    meta = write_sidecar(model_dir, NAME, meta)
    log.info(
        "exported %s (%d bytes), parity max|diff| %.2e at sizes %s",
        path,
        path.stat().st_size,
        parity["max_abs_diff"],
        PARITY_SIZES,
    )
    return meta
