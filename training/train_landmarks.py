"""Train the landmark model for drawn faces on faces this project draws (``training.anime_synth``).

    toonsync train landmarks [--steps 4500] [--export MODEL_DIR]
    python -m toonsync.training.train_landmarks -o runs/landmarks --steps 4500

Data: a pool of ``pool`` random characters (half the runtime's procedural avatar at random identities,
expressions and poses, half flat-colour faces drawn by ``anime_synth.flat_character``); every step ``refresh``
of them are replaced by new ones. A batch is ``batch`` windows of pool characters: ``refine_share`` in the
refine framing, ``negative_share`` without a usable face, the rest in the search framing, each over a random
background and degraded (``anime_synth.window``). Loss: L1 of the points of windows holding a face (window
units) + ``face_w`` x binary cross-entropy of the face logit.

Evaluation (seed stream ``[seed, 7919]``, never trained on): ``eval_chars`` characters in the refine framing,
no flip: NME (mean point error over the outer-eye-corner distance, the 300-W normalisation), per kind and per
region, and the face logit's accuracy at 0 on as many search windows and negative windows.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from . import distributed
from .anime_synth import Character, avatar_character, flat_character, random_character, window
from .models.encoder import load_model_checkpoint
from .models.landmarker import Landmarker, LandmarkerConfig

log = logging.getLogger(__name__)
REGIONS = {"jaw": slice(0, 17), "brows": slice(17, 27), "nose": slice(27, 36), "eyes": slice(36, 48),
           "mouth": slice(48, 68)}  # fmt: skip


@dataclass
class TrainConfig(distributed.RunSettings):
    """Training settings of the landmark model (and ``distributed.RunSettings``)."""

    steps: int = 4500
    batch: int = 48
    pool: int = 1200  # characters held at once
    refresh: int = 4  # replaced per step
    refine_share: float = 0.5
    negative_share: float = 0.2
    face_w: float = 0.1
    lr: float = 2e-3
    weight_decay: float = 1e-4
    eval_chars: int = 200


def nme(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-face mean point error over the outer-eye-corner distance (points 36 and 45): [N]."""
    iod = np.linalg.norm(true[:, 36] - true[:, 45], axis=1)
    return np.linalg.norm(pred - true, axis=2).mean(1) / np.maximum(iod, 1e-6)


class Pool:
    """Characters held for windows; ``refresh`` replaces the oldest with new ones."""

    def __init__(self, n: int, size: int, rng: np.random.Generator):
        self.rng, self.size, self.next = rng, size, 0
        self.items: list[Character] = [random_character(rng) for _ in range(n)]
        self.made = n

    def refresh(self, k: int) -> None:
        for _ in range(k):
            self.items[self.next] = random_character(self.rng)
            self.next = (self.next + 1) % len(self.items)
        self.made += k

    def batch(self, n: int, tcfg: TrainConfig, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        imgs, pts, face = [], [], []
        for _ in range(n):
            u = rng.random() - tcfg.refine_share
            kind = "refine" if u < 0 else "negative" if u < tcfg.negative_share else "search"
            img, p, f = window(self.items[int(rng.integers(len(self.items)))], rng, self.size, kind)
            imgs.append(img), pts.append(p), face.append(f)
        x = torch.from_numpy(np.stack(imgs)).float() / 255.0
        return x, torch.from_numpy(np.stack(pts)), torch.tensor(face, dtype=torch.float32)


def eval_set(tcfg: TrainConfig, size: int) -> dict:
    """The held-out windows: refine framing per kind, and search/negative windows for the face logit."""
    rng = np.random.default_rng([tcfg.seed, 7919])
    out: dict = {}
    for name, make in (("avatar", avatar_character), ("flat", flat_character)):
        chars = [make(rng) for _ in range(tcfg.eval_chars // 2)]
        ws = [window(c, rng, size, "refine") for c in chars]
        out[name] = (np.stack([w[0] for w in ws]), np.stack([w[1] for w in ws]))
        out[f"{name}_face"] = np.stack([window(c, rng, size, "search")[0] for c in chars])
        out[f"{name}_none"] = np.stack([window(c, rng, size, "negative")[0] for c in chars])
    return out


@torch.no_grad()
def predict(model: Landmarker, images: np.ndarray, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    pts, logit = [], []
    for i in range(0, len(images), chunk):
        p, f = model(torch.from_numpy(images[i : i + chunk]).float() / 255.0)
        pts.append(p.numpy()), logit.append(f.numpy())
    return np.concatenate(pts), np.concatenate(logit)


def metrics(model: Landmarker, held: dict) -> dict:
    """NME per kind and region on the refine windows, face-logit accuracy on search and negative windows."""
    res: dict = {}
    all_e, reg = [], {k: [] for k in REGIONS}
    for name in ("avatar", "flat"):
        imgs, true = held[name]
        pred, _ = predict(model, imgs)
        e = nme(pred, true)
        all_e.append(e)
        res[f"nme_{name}"] = round(float(e.mean()), 4)
        iod = np.linalg.norm(true[:, 36] - true[:, 45], axis=1)[:, None]
        for k, s in REGIONS.items():
            reg[k].append((np.linalg.norm(pred[:, s] - true[:, s], axis=2) / iod).mean(1))
        pos = predict(model, held[f"{name}_face"])[1] > 0
        neg = predict(model, held[f"{name}_none"])[1] <= 0
        res[f"face_acc_{name}"] = round(float(np.r_[pos, neg].mean()), 4)
    e = np.concatenate(all_e)
    res["nme"] = round(float(e.mean()), 4)
    res["nme_median"] = round(float(np.median(e)), 4)
    res["failure_rate_0.1"] = round(float((e > 0.1).mean()), 4)
    res["nme_by_region"] = {k: round(float(np.concatenate(v).mean()), 4) for k, v in reg.items()}
    return res


def mean_points(pool: Pool, size: int, rng: np.random.Generator) -> torch.Tensor:
    """Mean target of refine windows: the points head starts there."""
    return torch.from_numpy(np.mean([window(c, rng, size, "refine")[1] for c in pool.items[:64]], axis=0))


def train(out_dir: Path, mcfg: LandmarkerConfig, tcfg: TrainConfig, init: Path | None = None) -> dict | None:
    """Train; rank 0 writes ``landmarks.pt`` + ``landmarks.train.json`` and returns the report (None elsewhere)."""
    start, init_info = None, None
    if init is not None:  # fine-tune: start from a checkpoint (its config wins)
        start = load_checkpoint(init)
        mcfg = start.cfg
        init_info = {"checkpoint": str(init), **{k: start.info.get(k) for k in ("train_config", "metrics")}}
        log.info("fine-tuning from %s", init)
    with distributed.run_session(tcfg) as (ctx, rng):
        t0 = time.time()
        pool = Pool(tcfg.pool, mcfg.size, np.random.default_rng([tcfg.seed, 1]))
        held = eval_set(tcfg, mcfg.size) if ctx.is_main else None
        log.info("landmarks: pool of %d characters drawn in %.0f s", tcfg.pool, time.time() - t0)
        if start is None:
            start = Landmarker(mcfg, mean_points(pool, mcfg.size, rng))
        model = distributed.wrap(start, ctx)
        opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=tcfg.steps, pct_start=0.1)
        trainer = distributed.Trainer(model, opt, sched, ctx, accum=tcfg.accum, amp=tcfg.amp)

        def loss_fn(m, micro, batch):
            x, p, f = micro
            share = x.shape[0] / batch[0].shape[0]
            pp, logit = m(x)
            w = f[:, None, None]
            l1 = ((pp - p).abs() * w).sum() / (w.sum() * 136).clamp(min=1.0)
            bce = F.binary_cross_entropy_with_logits(logit, f)
            loss = l1 + tcfg.face_w * bce
            return loss * share, {"loss": loss * share, "l1": l1 * share, "bce": bce * share}

        history, win = [], []
        t1 = time.time()
        for step in distributed.progress(range(tcfg.steps), ctx, desc="landmarks", mininterval=10):
            terms = trainer.step(pool.batch(tcfg.batch, tcfg, rng), loss_fn)
            pool.refresh(tcfg.refresh)
            win.append(terms)
            if (step + 1) % tcfg.eval_every == 0 or step + 1 == tcfg.steps:
                tot = distributed.reduce_sum({k: sum(w[k] for w in win) / len(win) for k in win[0]}, ctx)
                win = []
                if ctx.is_main:
                    distributed.record_eval(
                        history, step + 1, t1, tot, held_out=metrics(distributed.unwrap(model), held)
                    )
        if not ctx.is_main:
            return None
        model = distributed.unwrap(model).cpu()
        train_seconds = time.time() - t1
        info = {
            "model": "landmarks",
            "config": mcfg.to_dict(),
            "train_config": asdict(tcfg),
            "distributed": ctx.describe(),
            "train_data": {
                "what": "drawn faces made here (training.anime_synth): the runtime's procedural avatar at random "
                "identities, expressions and head poses, and flat-colour anime faces of random shape, eye, brow, "
                "nose, mouth, fringe and line styles; in refine / search / negative windows over random "
                "backgrounds, with hue, grey, gamma, line-weight, blur, noise and JPEG changes",
                "characters_seen": pool.made,
                "windows_seen": tcfg.steps * tcfg.batch,
                "held_out": f"{tcfg.eval_chars} characters from seed stream [{tcfg.seed}, 7919] (never trained on)",
            },
            "loss": f"L1 of the points (window units) + {tcfg.face_w} x BCE of the face logit",
            "init": init_info,
        }
        info = distributed.finish_run(
            ctx, out_dir, "landmarks", model, mcfg.to_dict(), info,
            train_seconds=train_seconds, metrics=metrics(model, held), history=history,
        )  # fmt: skip
        store_half(Path(out_dir) / "landmarks.pt")
        return info


def store_half(path: Path) -> None:
    """Rewrite a checkpoint with its floating-point tensors in float16 (half the bytes; ``load_checkpoint`` puts
    them back into the float32 model). The metrics stay those of the float32 weights: exporting and scoring the
    half-stored weights changes NME by under 0.001 (docs/drawings.md)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    ck["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    ck["weights"] = "float16 (loaded into float32)"
    torch.save(ck, path)


def load_checkpoint(path: Path) -> Landmarker:
    return load_model_checkpoint(path, Landmarker, LandmarkerConfig)


def run(a: argparse.Namespace) -> dict | None:
    """Train from parsed flags; shared by ``python -m`` and ``toonsync train landmarks``."""
    tcfg = TrainConfig(
        steps=a.steps, batch=a.batch, pool=a.pool, seed=a.seed, threads=a.threads, lr=a.lr,
        eval_every=min(a.eval_every, a.steps), eval_chars=a.eval_chars, accum=a.accum, device=a.device, amp=a.amp,
    )  # fmt: skip
    out = a.out or Path("runs/landmarks")
    info = train(out, LandmarkerConfig(size=a.size, width=a.width), tcfg, init=a.init)
    return distributed.finished(info, "landmarks", out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toonsync.training.train_landmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    distributed.add_image_trainer_arguments(p, TrainConfig, LandmarkerConfig, "landmarks", "windows per step")
    p.add_argument("--pool", type=int, default=TrainConfig.pool, help="characters held in memory at once")
    p.add_argument("--eval-chars", type=int, default=TrainConfig.eval_chars)
    p.add_argument("--init", type=Path, metavar="CHECKPOINT", help="fine-tune from this landmarks.pt")
    distributed.add_arguments(p)
    return p


main = distributed.main_function(build_parser, run)


if __name__ == "__main__":
    main()
