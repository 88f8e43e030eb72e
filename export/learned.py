"""Export the image models — stylizer, identity encoder, refinement generator — to ONNX + sidecar.

Same conventions as ``export.onnx_export``: a wrapper module with named I/O, a dynamic batch axis,
opset 17, the torch-vs-onnxruntime parity check (``export.parity``) and ``name.onnx.json`` written by
``export.sidecar`` (config, I/O, training report, metrics, sha256). Image I/O is what the runtime
holds: RGB ``[batch, S, S, 3]`` float32 in 0..1 (the layout change and [-1, 1] scaling are inside
the graph, so training and serving share them).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from .fp16 import to_fp16
from .onnx_export import OPSET, GraphSpec, export_onnx, fp16_parity
from .parity import check_parity
from .sidecar import write_sidecar

log = logging.getLogger(__name__)


class ImageToImage(nn.Module):
    """RGB 0..1 NHWC (+ conditioning vector) -> the U-Net -> RGB 0..1 NHWC, as a 1-tuple."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, *cond: torch.Tensor):
        y = self.generator(image.permute(0, 3, 1, 2) * 2.0 - 1.0, *cond)
        return (((y + 1.0) * 0.5).permute(0, 2, 3, 1),)


class Embedder(nn.Module):
    """Wraps an image encoder so its exported graph returns the embedding as a 1-tuple."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, image: torch.Tensor):
        return (self.encoder(image),)


def _export(
    name: str,
    wrapper: nn.Module,
    spec: GraphSpec,
    example: tuple,
    model,
    model_dir: Path,
    extra: dict,
    fp16: bool = True,
) -> dict:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    wrapper.eval()
    path = model_dir / f"{name}.fp32.onnx"
    export_onnx(wrapper, example, spec, path)
    parity = check_parity(wrapper, path, spec, batches=(1, 3), frames=(1,))
    if fp16:  # for CUDA / TensorRT (load_model picks it on a GPU)
        half = to_fp16(path, model_dir / f"{name}.fp16.onnx")
        extra = {**extra, "parity_fp16": fp16_parity(path, half, spec)}
    info = getattr(model, "info", {})
    meta = {
        "name": name,
        "format_version": 1,
        "opset": OPSET,
        "config": model.cfg.to_dict(),
        "inputs": spec.inputs,
        "outputs": spec.outputs,
        "image": "RGB float32 [batch, size, size, 3] in 0..1",
        "training": {
            k: info.get(k)
            for k in (
                "train_data",
                "train_config",
                "train_seconds",
                "params",
                "torch",
                "loss",
                "loss_weights",
                "losses",
                "distributed",
                "init",
            )
            if k in info
        },
        "metrics": info.get("metrics", {}),
        "parity": parity,
        **extra,
    }
    meta = write_sidecar(model_dir, name, meta)
    log.info("exported %s (%d bytes), parity max|diff| %.2e", path, path.stat().st_size, parity["max_abs_diff"])
    return meta


def export_stylizer(checkpoint: Path, model_dir: Path) -> dict:
    """``stylizer.pt`` -> ``stylizer.fp32.onnx`` (image -> stylized) + ``stylizer.onnx.json``."""
    from toonsync.training.train_stylizer import load_checkpoint

    g = load_checkpoint(Path(checkpoint))
    s = g.cfg.size
    spec = GraphSpec(inputs={"image": ["batch", s, s, 3]}, outputs={"stylized": ["batch", s, s, 3]})
    return _export(
        "stylizer",
        ImageToImage(g),
        spec,
        (torch.rand(2, s, s, 3),),
        g,
        model_dir,
        {
            "alignment": "runtime.stylizer.align_face: eyes level, 0.28 x size apart, midpoint (0.5, 0.42) x size",
            "made_by": "toonsync training/train_stylizer.py + export/learned.py",
        },
    )


def export_identity(checkpoint: Path, model_dir: Path) -> dict:
    """``identity.pt`` -> ``identity.fp32.onnx`` (image -> unit embedding) + ``identity.onnx.json``."""
    from toonsync.training.train_identity import load_checkpoint

    m = load_checkpoint(Path(checkpoint))
    s, d = m.cfg.size, m.cfg.embed_dim
    spec = GraphSpec(inputs={"image": ["batch", s, s, 3]}, outputs={"embedding": ["batch", d]})
    return _export(
        "identity",
        Embedder(m),
        spec,
        (torch.rand(2, s, s, 3),),
        m,
        model_dir,
        {
            "similarity": "cosine (embeddings are unit length): dot product",
            "threshold": m.info.get("metrics", {}).get("held_out", {}).get("threshold_eer"),
            "made_by": "toonsync training/train_identity.py + export/learned.py",
        },
    )


def export_refiner(checkpoint: Path, model_dir: Path) -> dict:
    """``refiner.pt`` -> ``refiner.fp32.onnx`` (image, embedding -> refined) + ``refiner.onnx.json``."""
    from toonsync.training.train_refiner import load_checkpoint

    g = load_checkpoint(Path(checkpoint))
    s, d = g.cfg.size, g.cfg.cond_dim
    spec = GraphSpec(
        inputs={"image": ["batch", s, s, 3], "embedding": ["batch", d]}, outputs={"refined": ["batch", s, s, 3]}
    )
    example = (torch.rand(2, s, s, 3), nn.functional.normalize(torch.randn(2, d), dim=1))
    return _export(
        "refiner",
        ImageToImage(g),
        spec,
        example,
        g,
        model_dir,
        {"made_by": "toonsync training/train_refiner.py + export/learned.py"},
    )


def export_landmarks(checkpoint: Path, model_dir: Path) -> dict:
    """``landmarks.pt`` -> ``landmarks.fp32.onnx`` (window -> 68 points + face logit) + ``landmarks.onnx.json``."""
    from toonsync.training.anime_synth import REFINE, SEARCH_RATIO
    from toonsync.training.train_landmarks import load_checkpoint

    m = load_checkpoint(Path(checkpoint))
    s = m.cfg.size
    spec = GraphSpec(inputs={"image": ["batch", s, s, 3]}, outputs={"points": ["batch", 68, 2], "face": ["batch"]})
    return _export(
        "landmarks",
        m,
        spec,
        (torch.rand(2, s, s, 3),),
        m,
        model_dir,
        {
            "points": "iBUG 300-W order, x y in window units (0..1 of the input side)",
            "face": "logit: the window frames one whole drawn face at a usable scale",
            "framing": {"refine": REFINE, "search_ratio": list(SEARCH_RATIO)},
            "made_by": "toonsync training/train_landmarks.py + export/learned.py",
        },
        fp16=False,  # the runtime runs fp32 everywhere: a fit is a one-off per drawing, and the bytes count
    )


def export_emotion(checkpoint: Path, model_dir: Path) -> dict:
    """``emotion.pt`` -> ``emotion.fp32.onnx`` + ``emotion.onnx.json`` (``export.emotion``)."""
    from .emotion import export_emotion as export

    return export(checkpoint, model_dir)


EXPORTERS = {
    "stylizer": export_stylizer,
    "identity": export_identity,
    "refiner": export_refiner,
    "landmarks": export_landmarks,
    "emotion": export_emotion,
}


def export_trained(name: str, checkpoint: Path, model_dir: Path) -> dict:
    """Export the checkpoint a trainer just wrote (``toonsync train MODEL --export DIR``); returns the card."""
    if name not in EXPORTERS:
        raise ValueError(f"no exporter for {name!r}; these export after training: {', '.join(EXPORTERS)}")
    return EXPORTERS[name](Path(checkpoint), Path(model_dir))
