"""Train the learned face -> comic stylizer (pix2pix U-Net + PatchGAN) on Face2Comics.

    toonsync train stylizer --data PATH/TO/face2comics [--size 256] [--steps 20000] [--export MODEL_DIR]
    python -m toonsync.training.train_stylizer --data PATH/TO/face2comics -o runs/stylizer
    torchrun --standalone --nproc_per_node 4 -m training.train_stylizer --data ... --batch 32

Data: ``training.face2comics`` (the real Kaggle/GitHub layouts, pairs by file stem, a deterministic
held-out split, the same random crop + flip for photo and comic). Model and losses:
``training.models.stylizer`` — LSGAN adversarial + 100 x L1 + MSE (weight 0 by default) + 10 x
discriminator feature matching as the perceptual term (no pretrained VGG here). Loop: ``training.gan``
on ``training.distributed`` (DDP-ready; rank 0 evaluates and writes ``stylizer.pt`` — generator config
and weights, plus the discriminator's — and ``stylizer.train.json``: configs, the loss curve, held-out
L1 / MSE / PSNR). ``toonsync train stylizer --export DIR`` then writes ``stylizer.fp32.onnx`` + card
(``toonsync.export.learned``).

No Face2Comics copy is on the build machine, so **no stylizer weights ship**; the tests train a few
steps on ``tests/data/face2comics_tiny``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import distributed
from .face2comics import Face2Comics
from .gan import GanTrainConfig, Pix2Pix, add_gan_arguments, fit, gan_config, image_metrics, load_generator, save_report
from .models.stylizer import PERCEPTUAL_NOTE, LossWeights, PatchConfig, UNetConfig

log = logging.getLogger(__name__)


@dataclass
class StylizerTrainConfig(GanTrainConfig):
    """The stylizer's GAN settings: image size and the validation fraction of Face2Comics."""

    size: int = 256
    val_fraction: float = 0.1


def model_configs(size: int, ngf: int = 64, ndf: int = 64) -> tuple[UNetConfig, PatchConfig]:
    """pix2pix's unet_256 / 70x70 PatchGAN at 256; shallower for smaller images (innermost level 1 x 1)."""
    depth = max(2, min(8, int(np.log2(size))))
    return UNetConfig(size=size, depth=depth, ngf=ngf), PatchConfig(ndf=ndf, n_layers=3 if size >= 128 else 2)


def evaluate(gan: Pix2Pix, data: Face2Comics) -> dict:
    x, y = data.held_out()
    return image_metrics(gan.predict(x), y)


def train(
    data_dir: Path,
    out_dir: Path,
    tcfg: StylizerTrainConfig,
    gcfg: UNetConfig | None = None,
    dcfg: PatchConfig | None = None,
    weights: LossWeights | None = None,
) -> dict | None:
    """Train; rank 0 writes ``stylizer.pt`` + ``stylizer.train.json`` and returns the report (None elsewhere)."""
    with distributed.run_session(tcfg) as (ctx, rng):
        data = Face2Comics(data_dir, tcfg.size, val_fraction=tcfg.val_fraction)
        dg, dd = model_configs(tcfg.size)
        gcfg, dcfg, weights = gcfg or dg, dcfg or dd, weights or LossWeights()
        gan = Pix2Pix(gcfg, dcfg, weights, tcfg, ctx)
        fitted = fit(gan, "stylizer", lambda: data.batch(tcfg.batch, rng), lambda: evaluate(gan, data))
        if not ctx.is_main:
            return None
        about = {
            "losses": {
                "adversarial": "LSGAN on 70x70-style PatchGAN logits (conditional: photo + image)",
                "l1": "mean |G(x) - y|",
                "mse": "mean (G(x) - y)^2",
                "perceptual": PERCEPTUAL_NOTE,
                "lpips": "not computed: LPIPS needs pretrained backbone weights, unavailable here",
            },
            "train_data": {
                "path": str(data_dir),
                "layout": str(data.pairs[0].face.parent.parent),
                "pairs": len(data.pairs),
                "train_pairs": len(data.train),
                "held_out_pairs": len(data.val),
                "size": tcfg.size,
                "load_size": data.load_size,
            },
        }
        return save_report(gan, out_dir, "stylizer", about, fitted, {"held_out": evaluate(gan, data)})


load_checkpoint = load_generator


def run(a: argparse.Namespace) -> dict | None:
    """Train from parsed flags; shared by ``python -m`` and ``toonsync train stylizer``."""
    tcfg = gan_config(StylizerTrainConfig, a, size=a.size)
    gcfg, dcfg = model_configs(a.size, a.ngf or a.width, a.ndf or a.width)
    out = a.out or Path("runs/stylizer")
    return distributed.finished(train(a.data, out, tcfg, gcfg, dcfg), "stylizer", out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train_stylizer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="Face2Comics folder (any level above faces/ + comics/)")
    p.add_argument("--size", type=int, default=StylizerTrainConfig.size, help="image side (default 256)")
    p.add_argument("--width", type=int, default=64, help="first-level channels of both networks (pix2pix: 64)")
    p.add_argument("--ngf", type=int, help="generator width (default --width)")
    p.add_argument("--ndf", type=int, help="discriminator width (default --width)")
    add_gan_arguments(p, StylizerTrainConfig())
    return p


main = distributed.main_function(build_parser, run)


if __name__ == "__main__":
    main()
