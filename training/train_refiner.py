"""Train the optional refinement generator (learned refinement) on pairs
this project draws: a rough render of an avatar frame -> the clean render of the same frame.

    toonsync train refiner [--steps 2000] [--size 128] [--export MODEL_DIR]
    python -m training.train_refiner -o runs/refiner --identity-model runtime/models [--lpips-weights alex.pth]

Pairs (``training.synthetic_avatars``): random identities at random expressions, emotions, blinks,
head poses and backgrounds. Target: ``AvatarRenderer.draw`` at ``size``. Input: the same frame
degraded the way a cheap renderer degrades it — drawn at a quarter of the size and scaled back up
(soft, aliased edges), a random small misregistration (up to 1.5 % shift), and mild noise.
Conditioning: the identity embedding (``runtime.identity``, the shipped ``identity.fp32.onnx``) of
the avatar's neutral frame, fed to every decoder level of the U-Net by FiLM
(``training.models.stylizer.UNetGenerator`` with ``cond_dim``). Losses: ``training.gan`` — LSGAN
adversarial (conditional PatchGAN) + 100 x L1 + MSE (weight 10) + discriminator feature matching
(the perceptual term; no pretrained VGG here).

Held-out evaluation (identities from their own seed stream): MSE / PSNR / SSIM / L1 of the refined
frames and of the rough input frames, both against the clean renders (``runtime.metrics``), and
**LPIPS** through ``runtime.metrics.lpips_score``: computed only when the ``lpips`` package imports and
its weights are given (``--lpips-weights``, backbone in the torch hub cache); otherwise reported as
unavailable with the reason (the package needs torchvision, which does not import beside torch 2.13
here, and no weights can be downloaded) — never a stand-in number.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toonsync.runtime.avatar import AvatarRenderer

from . import distributed
from .gan import (
    GanTrainConfig,
    Pix2Pix,
    add_gan_arguments,
    fit,
    gan_config,
    image_metrics,
    load_generator,
    save_report,
    to_uint8,
)
from .models.stylizer import PERCEPTUAL_NOTE, LossWeights, PatchConfig, UNetConfig
from .synthetic_avatars import Identity, random_frame, random_identity, render

log = logging.getLogger(__name__)


@dataclass
class RefinerTrainConfig(GanTrainConfig):
    """The refiner's GAN settings: image size, identities, width, evaluation identities."""

    steps: int = 2000
    batch: int = 8
    lr: float = 5e-4
    size: int = 128
    width: int = 16  # first-level channels of the generator and the discriminator
    identities: int = 300  # training identities held (renderers + embeddings)
    eval_ids: int = 48
    eval_every: int = 500


def degrade(clean_small: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A quarter-size render -> a rough full-size frame (upscaled, shifted, noisy)."""
    up = cv2.resize(clean_small, (size, size), interpolation=cv2.INTER_LINEAR)
    M = np.float32([[1, 0, rng.uniform(-0.015, 0.015) * size], [0, 1, rng.uniform(-0.015, 0.015) * size]])
    up = cv2.warpAffine(up, M, (size, size), borderMode=cv2.BORDER_REPLICATE)
    return np.clip(up.astype(np.float32) + rng.normal(0, 3.0, up.shape), 0, 255).astype(np.uint8)


class PairSource:
    """Identities with a full-size and a quarter-size renderer each, and their identity embeddings."""

    def __init__(self, n: int, size: int, rng: np.random.Generator, embedder):
        self.size, self.rng = size, rng
        ids = [random_identity(rng) for _ in range(n)]
        self.full = [AvatarRenderer(i.style, i.neutral, size) for i in ids]
        self.small = [AvatarRenderer(i.style, i.neutral, size // 4) for i in ids]
        neutral = np.stack([r.draw(i.neutral) for r, i in zip(self.full, ids)])
        self.emb = embedder(neutral).astype(np.float32)
        self.identities: list[Identity] = ids

    def example(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        f = random_frame(self.identities[k], rng)
        return degrade(render(self.small[k], f, self.size // 4), self.size, rng), render(self.full[k], f, self.size)

    def batch(self, n: int, rng: np.random.Generator, ks=None):
        ks = rng.integers(0, len(self.full), n) if ks is None else ks
        ex = [self.example(int(k), rng) for k in ks]
        to = lambda imgs: np.stack(imgs).transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0  # noqa: E731
        return to([e[0] for e in ex]), to([e[1] for e in ex]), self.emb[np.asarray(ks)]


def evaluate(gan: Pix2Pix, held: tuple[np.ndarray, np.ndarray, np.ndarray], lpips_weights: Path | None) -> dict:
    """Refined and rough frames vs the clean renders: MSE / PSNR / SSIM / L1, and LPIPS only when it can
    really be computed (``runtime.metrics.lpips_score``: the lpips package + ``lpips_weights``)."""
    from toonsync.training.metrics import lpips_score

    x, y, c = held
    pred = gan.predict(x, c)
    lp = lpips_score(list(to_uint8(pred)), list(to_uint8(y)), str(lpips_weights) if lpips_weights else None)
    return {"refined": image_metrics(pred, y), "rough_input": image_metrics(x, y), "lpips": lp}


def identity_embedder(model_dir: Path | None) -> tuple[Callable[[np.ndarray], np.ndarray], int, str | None]:
    """The shipped identity encoder as a function (images -> embeddings), its size and the sha256 of its graph."""
    from toonsync.runtime.identity import IdentityModel

    m = IdentityModel(model_dir)
    return m.embed, m.dim, m.model.card.get("files", {}).get("identity.fp32.onnx", {}).get("sha256")


def train(
    out_dir: Path,
    tcfg: RefinerTrainConfig,
    gcfg: UNetConfig | None = None,
    dcfg: PatchConfig | None = None,
    weights: LossWeights | None = None,
    identity_dir: Path | None = None,
    lpips_weights: Path | None = None,
) -> dict | None:
    """Train; rank 0 writes ``refiner.pt`` + ``refiner.train.json`` and returns the report (None elsewhere)."""
    with distributed.run_session(tcfg) as (ctx, rng):
        embedder, dim, id_sha = identity_embedder(identity_dir)
        src = PairSource(tcfg.identities, tcfg.size, np.random.default_rng([tcfg.seed, 1]), embedder)
        held_src = PairSource(tcfg.eval_ids, tcfg.size, np.random.default_rng([tcfg.seed, 7919]), embedder)
        held = held_src.batch(tcfg.eval_ids, np.random.default_rng([tcfg.seed, 7920]), np.arange(tcfg.eval_ids))
        gcfg = gcfg or UNetConfig(
            size=tcfg.size, depth=min(6, int(np.log2(tcfg.size))), ngf=tcfg.width, cond_dim=dim, dropout=0.0
        )
        dcfg = dcfg or PatchConfig(ndf=tcfg.width, n_layers=3 if tcfg.size >= 128 else 2)
        weights = weights or LossWeights(mse=10.0)
        gan = Pix2Pix(gcfg, dcfg, weights, tcfg, ctx)
        fitted = fit(gan, "refiner", lambda: src.batch(tcfg.batch, rng), lambda: evaluate(gan, held, None))
        if not ctx.is_main:
            return None
        about = {
            "losses": {
                "adversarial": "LSGAN on PatchGAN logits (conditional: rough frame + image)",
                "l1": "mean |G(x, e) - y|",
                "mse": "mean (G(x, e) - y)^2",
                "perceptual": PERCEPTUAL_NOTE,
            },
            "train_data": {
                "what": "rough (quarter-size, upscaled, shifted, noisy) -> clean renders of random "
                "avatar frames (training.synthetic_avatars, runtime.avatar)",
                "identities": tcfg.identities,
                "size": tcfg.size,
                "conditioning": {"model": "identity.fp32.onnx", "sha256": id_sha, "embed_dim": dim},
            },
        }
        return save_report(gan, out_dir, "refiner", about, fitted, {"held_out": evaluate(gan, held, lpips_weights)})


load_checkpoint = load_generator


def run(a: argparse.Namespace) -> dict | None:
    tcfg = gan_config(RefinerTrainConfig, a, size=a.size, identities=a.identities, eval_ids=a.eval_ids, width=a.width)
    out = a.out or Path("runs/refiner")
    info = train(out, tcfg, identity_dir=a.identity_model, lpips_weights=a.lpips_weights)
    return distributed.finished(info, "refiner", out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train_refiner",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = RefinerTrainConfig()
    p.add_argument("--size", type=int, default=d.size)
    p.add_argument("--width", type=int, default=d.width, help="first-level channels of the generator and discriminator")
    p.add_argument("--identities", type=int, default=d.identities, help="training identities")
    p.add_argument("--eval-ids", type=int, default=d.eval_ids, help="held-out identities (one frame each)")
    p.add_argument("--identity-model", type=Path, help="folder with identity.fp32.onnx (default: the runtime's)")
    p.add_argument(
        "--lpips-weights",
        type=Path,
        help="LPIPS linear-layer weights (with the lpips package and its backbone in the torch hub cache)",
    )
    add_gan_arguments(p, d)
    return p


main = distributed.main_function(build_parser, run)


if __name__ == "__main__":
    main()
