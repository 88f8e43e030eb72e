"""Conditional-GAN (pix2pix) training on ``training.distributed``'s Trainer, shared by the stylizer
(``train_stylizer``: photo -> comic) and the refinement generator (``train_refiner``: rough render ->
clean render, FiLM-conditioned on the identity embedding).

Each optimizer step on a global batch ``(x, y[, cond])`` is two ``distributed.Trainer`` steps: the
discriminator (LSGAN on the PatchGAN logits of the real pair and of a generated pair, one forward over
both) and then the generator (LSGAN + L1 + MSE + discriminator feature matching; see
``training.models.stylizer``). Under torchrun both networks are wrapped in DDP and every rank draws
the same global batch and trains on its rows, as the other trainers do; inside one network's step the
other is used unwrapped (its gradients are not needed: the discriminator's parameters are frozen
during the generator step and the generator runs under ``no_grad`` during the discriminator step),
so DDP never sees a forward without its backward. Instance norm (no batch statistics) keeps a
multi-process step equal to the single-process one. Adam(2e-4, betas 0.5/0.999), constant for the
first half of the steps then linearly to 0, as pix2pix.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed
from .models.encoder import load_model_checkpoint
from .models.stylizer import GanLosses, LossWeights, PatchConfig, PatchDiscriminator, UNetConfig, UNetGenerator

log = logging.getLogger(__name__)


@dataclass
class GanTrainConfig:
    """Training settings shared by the image GANs (stylizer, refiner): steps, batch, optimiser, loss weights."""

    steps: int = 20000
    batch: int = 8
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0
    threads: int = 2
    eval_every: int = 1000
    log_every: int = 100  # loss window (steps) of the logged/recorded curve
    accum: int = 1  # micro-batches per optimizer step; batch % (processes * accum) == 0
    device: str = "auto"
    amp: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


def linear_decay(steps: int) -> Callable[[int], float]:
    """pix2pix's schedule: factor 1 for the first half of ``steps``, then linearly to 0."""
    half = max(steps // 2, 1)
    return lambda s: 1.0 if s < half else max(0.0, 1.0 - (s - half) / max(steps - half, 1))


class Pix2Pix:
    """Generator + PatchGAN discriminator with their two Trainers."""

    def __init__(
        self,
        gcfg: UNetConfig,
        dcfg: PatchConfig,
        weights: LossWeights,
        tcfg: GanTrainConfig,
        ctx: distributed.DistContext,
    ):
        self.gcfg, self.dcfg, self.weights, self.tcfg, self.ctx = gcfg, dcfg, weights, tcfg, ctx
        self.losses = GanLosses(weights)
        self.G = distributed.wrap(UNetGenerator(gcfg), ctx)
        self.D = distributed.wrap(PatchDiscriminator(dcfg), ctx)
        self.trainers = {}
        for name, m in (("G", self.G), ("D", self.D)):
            opt = torch.optim.Adam(m.parameters(), lr=tcfg.lr, betas=(tcfg.beta1, 0.999))
            sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(tcfg.steps))
            self.trainers[name] = distributed.Trainer(
                m, opt, sched, ctx, accum=tcfg.accum, clip_norm=None, amp=tcfg.amp
            )

    @property
    def generator(self) -> UNetGenerator:
        return distributed.unwrap(self.G)

    @property
    def discriminator(self) -> PatchDiscriminator:
        return distributed.unwrap(self.D)

    @staticmethod
    def _split(micro: Sequence[torch.Tensor]):
        x, y, *cond = micro
        return x, y, (cond[0] if cond else None)

    def _d_loss(self, D: nn.Module, micro, batch):
        x, y, c = self._split(micro)
        share = x.shape[0] / batch[0].shape[0]
        with torch.no_grad():
            fake = self.generator(x, c)
        logits, _ = D(torch.cat([x, x]), torch.cat([y, fake]))
        real, fake_l = logits.split(x.shape[0])
        loss = self.losses.d_loss(real, fake_l)
        return loss * share, {"d": loss * share}

    def _g_loss(self, G: nn.Module, micro, batch):
        x, y, c = self._split(micro)
        share = x.shape[0] / batch[0].shape[0]
        fake = G(x, c)
        D = self.discriminator
        with frozen(D):
            fake_out = D(x, fake)
            with torch.no_grad():
                real_out = D(x, y)
        terms = self.losses.g_terms(fake, y, fake_out, real_out)
        total = self.losses.g_total(terms)
        return total * share, {"g": total * share, **{k: v * share for k, v in terms.items()}}

    def step(self, batch: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """One discriminator step, then one generator step, on the same global batch."""
        terms = self.trainers["D"].step(batch, self._d_loss)
        terms.update(self.trainers["G"].step(batch, self._g_loss))
        return terms

    @torch.no_grad()
    def predict(self, x: np.ndarray, cond: np.ndarray | None = None, chunk: int = 16) -> np.ndarray:
        """Eval-mode generator (no dropout) over ``x`` [N, C, S, S] in [-1, 1] -> [N, C, S, S]."""
        G = self.generator
        was = G.training
        G.eval()
        dev = self.ctx.device
        out = []
        for i in range(0, len(x), chunk):
            c = None if cond is None else torch.from_numpy(cond[i : i + chunk]).to(dev)
            out.append(G(torch.from_numpy(x[i : i + chunk]).to(dev), c).cpu().numpy())
        G.train(was)
        return np.concatenate(out)

    def checkpoint(self, info: dict) -> dict:
        """Generator config + weights (``load_model_checkpoint`` layout) and the discriminator's, to resume."""
        return {
            "config": self.gcfg.to_dict(),
            "state_dict": {k: v.cpu() for k, v in self.generator.state_dict().items()},
            "discriminator": {
                "config": self.dcfg.to_dict(),
                "state_dict": {k: v.cpu() for k, v in self.discriminator.state_dict().items()},
            },
            "loss_weights": self.weights.to_dict(),
            "info": info,
        }


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] ``[N, 3, S, S]`` -> RGB uint8 ``[N, S, S, 3]``."""
    return np.clip(np.round((x.transpose(0, 2, 3, 1) + 1) * 127.5), 0, 255).astype(np.uint8)


def image_metrics(pred: np.ndarray, target: np.ndarray) -> dict:
    """``runtime.metrics.image_metrics`` (MSE in 0..255 units, PSNR, SSIM; mean over images) of images in
    [-1, 1], as the uint8 frames the runtime would show, plus the mean absolute error on the 0..1 scale."""
    from toonsync.training.metrics import image_metrics as frame_metrics

    p, t = to_uint8(pred), to_uint8(target)
    return {**frame_metrics(list(p), list(t)), "l1": round(float(np.abs(p / 255.0 - t / 255.0).mean()), 5)}


class LossCurve:
    """Per-window sums of the step terms, reduced over ranks at each window end (a collective)."""

    def __init__(self, ctx: distributed.DistContext, every: int):
        self.ctx, self.every = ctx, max(1, every)
        self.sums: dict[str, torch.Tensor] = {}
        self.n = 0
        self.records: list[dict] = []

    def add(self, step: int, terms: dict[str, torch.Tensor], last: bool) -> dict | None:
        for k, v in terms.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.n += 1
        if (step + 1) % self.every and not last:
            return None
        tot = distributed.reduce_sum(self.sums, self.ctx)
        rec = {"step": step + 1, **{k: round(v / self.n, 6) for k, v in sorted(tot.items())}}
        self.sums, self.n = {}, 0
        self.records.append(rec)
        return rec


def fit(
    gan: Pix2Pix, name: str, sample: Callable[[], Sequence[np.ndarray]], evaluate: Callable[[], dict]
) -> tuple[LossCurve, list[dict], float]:
    """The loop of every GAN trainer: ``tcfg.steps`` steps on global batches from ``sample()``, the windowed
    loss curve, and rank 0's ``evaluate()`` every ``eval_every`` steps. Returns (curve, history, seconds)."""
    tcfg, ctx = gan.tcfg, gan.ctx
    curve, history, t0 = LossCurve(ctx, tcfg.log_every), [], time.time()
    for step in distributed.progress(range(tcfg.steps), ctx, desc=name, mininterval=5):
        terms = gan.step(tuple(torch.from_numpy(a) for a in sample()))
        last = step + 1 == tcfg.steps
        curve.add(step, terms, last)
        if ((step + 1) % tcfg.eval_every == 0 or last) and ctx.is_main:
            history.append(
                {
                    "step": step + 1,
                    "seconds": round(time.time() - t0, 1),
                    "held_out": evaluate(),
                    "train_window": curve.records[-1] if curve.records else None,
                }
            )
            log.info("%s", history[-1])
    return curve, history, time.time() - t0


def save_report(
    gan: Pix2Pix, out_dir: Path, name: str, about: dict, fitted: tuple[LossCurve, list[dict], float], metrics: dict
) -> dict:
    """Rank 0: ``name.pt`` (generator + discriminator) and ``name.train.json``; ``about``: losses, train_data..."""
    curve, history, seconds = fitted
    info = {
        "model": name,
        "config": gan.gcfg.to_dict(),
        "discriminator": gan.dcfg.to_dict(),
        "loss_weights": gan.weights.to_dict(),
        **about,
        "train_config": gan.tcfg.to_dict(),
        "distributed": gan.ctx.describe(),
        "train_seconds": round(seconds, 1),
        "params": sum(p.numel() for p in gan.generator.parameters()),
        "metrics": metrics,
        "loss_curve": curve.records,
        "history": history,
        "torch": torch.__version__,
    }
    path = distributed.save_run(gan.ctx, out_dir, name, gan.checkpoint(info), info)
    log.info("saved %s (%.0f s): %s", path, seconds, metrics)
    return info


def load_generator(path: Path) -> UNetGenerator:
    """A saved generator (``stylizer.pt`` / ``refiner.pt``), eval mode."""
    return load_model_checkpoint(path, UNetGenerator, UNetConfig)


def add_gan_arguments(p: argparse.ArgumentParser, defaults: GanTrainConfig) -> None:
    """The flags every GAN trainer shares (``toonsync train`` forwards its own to them; see ``training.cli``)."""
    p.add_argument("-o", "--out", type=Path, default=None, help="run directory (default runs/MODEL)")
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--batch", type=int, default=defaults.batch, help="global batch per step")
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--threads", type=int, default=defaults.threads)
    p.add_argument("--eval-every", type=int, default=defaults.eval_every)
    p.add_argument("--log-every", type=int, default=defaults.log_every)
    distributed.add_arguments(p)


def gan_config(cls: type[GanTrainConfig], a: argparse.Namespace, **extra: Any) -> GanTrainConfig:
    """``cls`` (a ``GanTrainConfig``) from the flags of :func:`add_gan_arguments` plus ``extra`` fields."""
    return cls(
        steps=a.steps,
        batch=a.batch,
        lr=a.lr,
        seed=a.seed,
        threads=a.threads,
        eval_every=min(a.eval_every, a.steps),
        log_every=min(a.log_every, a.steps),
        accum=a.accum,
        device=a.device,
        amp=a.amp,
        **extra,
    )
