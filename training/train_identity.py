"""Train the avatar identity encoder (ResNet-18) on avatars this project draws.

    toonsync train identity [--steps 1800] [--export MODEL_DIR]
    python -m toonsync.training.train_identity -o runs/identity --steps 1800 --threads 1
    torchrun --standalone --nproc_per_node 4 -m training.train_identity --batch 128

Data (``training.synthetic_avatars``): a bank of random identities (style colours, hair, glasses,
beard, face shape), ``frames`` random frames each (expression, emotion, blink, head pose, own or
random background), drawn by ``runtime.avatar``; every step ``refresh`` identities are replaced by
new ones, so the encoder sees thousands of identities. Each step takes ``batch`` identities and two
different frames of each (random small shift/scale and brightness jitter), and minimises the
symmetric InfoNCE / NT-Xent loss (temperature ``tau``): each frame's embedding must be nearer to the
other frame of its identity than to the ``2 * batch - 2`` frames of the other identities.

Evaluation: identities drawn from a separate seed stream (never trained on), ``eval_frames`` frames
each: verification over all frame pairs (ROC-AUC, equal error rate and its cosine threshold), top-1
retrieval (is a frame's nearest other frame of the same identity), and the bundled photos' avatars
(``runtime/assets/demo_face.jpg``, ``tests/data/grace_hopper.jpg`` via ``runtime.prepare.load_face``):
similarity of their own frames vs across the two; and hard negatives: held-out identities against
themselves with one attribute changed (face shape, hair / eye / skin colour, glasses, hair length),
reported as the false-accept rate at the equal-error threshold — which attributes the embedding
actually tells apart.

Under torchrun, the rows split over processes are identities (both views stay on one rank), and each
rank's InfoNCE uses its own identities as negatives and its own BatchNorm statistics: a multi-process
run is equal in distribution, not in value, to one process.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import distributed
from .models.encoder import load_model_checkpoint
from .models.resnet import IdentityConfig, IdentityEncoder
from .synthetic_avatars import VARIANTS, Identity, random_identity, render_identity, variant

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
PHOTOS = (REPO / "runtime" / "assets" / "demo_face.jpg", REPO / "tests" / "data" / "grace_hopper.jpg")


@dataclass
class TrainConfig(distributed.RunSettings):
    """Training settings of the identity encoder: steps, identities per step, bank, frames, hard negatives (and
    ``distributed.RunSettings``)."""

    steps: int = 1800
    batch: int = 32  # identities per step (two frames each)
    bank: int = 1000  # identities held at once
    frames: int = 6  # frames drawn per identity in the bank
    refresh: int = 2  # identities replaced by new ones per step
    hard: float = 0.5  # share of a batch's identities drawn as families (one attribute apart)
    tau: float = 0.1
    lr: float = 2e-3
    weight_decay: float = 5e-4
    eval_ids: int = 300
    eval_frames: int = 4
    hard_ids: int = 60  # held-out identities per attribute of the hard-negative check
    eval_every: int = 300


class IdentityBank:
    """``n`` identities x ``frames`` rendered frames (uint8), refreshed round-robin from one generator.

    Slots come in *families* of two: slot ``2k + 1`` is slot ``2k``'s identity with one attribute
    changed (``synthetic_avatars.variant``: face shape, a colour, glasses or hair length) — a distinct
    identity that differs only there. ``pairs`` puts a share ``hard`` of its identities in whole
    families, so every batch holds hard negatives and colour alone cannot separate identities.
    """

    def __init__(self, n: int, frames: int, size: int, rng: np.random.Generator):
        self.size, self.rng, self.next, self.made = size, rng, 0, 0
        self.images = np.empty((n + n % 2, frames, size, size, 3), np.uint8)
        for k in range(0, len(self.images), 2):
            self._make_family(k)

    def _make_family(self, k: int) -> None:
        base = random_identity(self.rng)
        kind = VARIANTS[int(self.rng.integers(len(VARIANTS)))]
        for j, idt in enumerate((base, variant(base, kind, self.rng))):
            self.images[k + j] = render_identity(idt, self.images.shape[1], self.size, self.rng)
        self.made += 2

    def refresh(self, k: int) -> None:
        """Replace about ``k`` identities (whole families)."""
        for _ in range(max(1, (k + 1) // 2)):
            self._make_family(self.next)
            self.next = (self.next + 2) % len(self.images)

    def pairs(self, p: int, rng: np.random.Generator, hard: float = 0.5) -> np.ndarray:
        """``p`` distinct identities (a share ``hard`` of them as whole families), two different frames each,
        jittered: uint8 ``[p, 2, S, S, 3]``."""
        n_fam = min(int(round(p * hard / 2)), len(self.images) // 2)
        fams = rng.choice(len(self.images) // 2, n_fam, replace=False)
        ids = [2 * f + j for f in fams for j in (0, 1)]
        rest = np.setdiff1d(np.arange(len(self.images)), ids)
        ids += rng.choice(rest, p - len(ids), replace=False).tolist()
        out = np.empty((p, 2, self.size, self.size, 3), np.uint8)
        for j, i in enumerate(ids):
            for v, f in enumerate(rng.choice(self.images.shape[1], 2, replace=False)):
                out[j, v] = jitter(self.images[i, f], rng)
        return out


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = img.shape[0]
    M = cv2.getRotationMatrix2D((s / 2, s / 2), 0.0, rng.uniform(0.92, 1.08))
    M[:, 2] += rng.uniform(-0.05, 0.05, 2) * s
    out = cv2.warpAffine(img, M, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.clip(out.astype(np.float32) * rng.uniform(0.92, 1.08), 0, 255).astype(np.uint8)


def info_nce(emb: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric NT-Xent over ``emb`` [2P, D] laid out as (id0 view0, id0 view1, id1 view0, ...); mean over rows."""
    n = emb.shape[0]
    sim = emb @ emb.t() / tau
    sim = sim.masked_fill(torch.eye(n, dtype=torch.bool, device=emb.device), float("-inf"))
    target = torch.arange(n, device=emb.device) ^ 1  # the other view of the same identity
    return F.cross_entropy(sim, target)


def to_input(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float() / 255.0


@torch.no_grad()
def embed(model: nn.Module, images: np.ndarray, chunk: int = 128) -> np.ndarray:
    model.eval()
    dev = next(model.parameters()).device
    flat = images.reshape(-1, *images.shape[-3:])
    out = np.concatenate(
        [model(to_input(flat[i : i + chunk]).to(dev)).cpu().numpy() for i in range(0, len(flat), chunk)]
    )
    return out.reshape(*images.shape[:-3], -1)


def verification_metrics(emb: np.ndarray) -> dict:
    """``emb`` [N identities, F frames, D] -> ROC-AUC, EER (+ cosine threshold) over all frame pairs,
    top-1 retrieval."""
    n, f, _ = emb.shape
    flat = emb.reshape(n * f, -1)
    labels = np.repeat(np.arange(n), f)
    sim = flat @ flat.T
    iu = np.triu_indices(n * f, 1)
    s, same = sim[iu], labels[iu[0]] == labels[iu[1]]
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    auc = (ranks[same].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    # EER: threshold where the false-accept rate (impostors >= t) equals the false-reject rate (genuine < t)
    ss, sm = s[order], same[order]
    frr = np.cumsum(sm) / n_pos  # genuine below or at each candidate threshold
    far = 1.0 - np.cumsum(~sm) / n_neg  # impostors above it
    k = int(np.argmin(np.abs(far - frr)))
    np.fill_diagonal(sim, -np.inf)
    top1 = float(np.mean(labels[sim.argmax(1)] == labels))
    return {
        "identities": n,
        "frames_per_identity": f,
        "genuine_pairs": n_pos,
        "impostor_pairs": n_neg,
        "roc_auc": round(float(auc), 5),
        "eer": round(float((far[k] + frr[k]) / 2), 5),
        "threshold_eer": round(float(ss[k]), 4),
        "top1_retrieval": round(top1, 5),
        "genuine_mean": round(float(s[same].mean()), 4),
        "impostor_mean": round(float(s[~same].mean()), 4),
    }


def photo_identities() -> list[tuple[str, Identity]]:
    """The bundled photos' procedural avatars (``toonsync prepare``), as identities."""
    from toonsync.runtime.prepare import load_face

    out = []
    for p in PHOTOS:
        av = load_face(p)
        out.append((p.name, Identity(av.style, av.neutral)))
    return out


def photo_check(model: nn.Module, size: int, frames: int = 8, seed: int = 1) -> dict:
    """Frames of each bundled photo's avatar: their own similarity vs across photos."""
    rng = np.random.default_rng(seed)
    ids = photo_identities()
    emb = embed(model, np.stack([render_identity(idt, frames, size, rng) for _, idt in ids]))
    within = [emb[i] @ emb[i].T for i in range(len(ids))]
    iu = np.triu_indices(frames, 1)
    cross = emb[0] @ emb[1].T
    return {
        "photos": [n for n, _ in ids],
        "frames": frames,
        "within_mean": [round(float(w[iu].mean()), 4) for w in within],
        "within_min": [round(float(w[iu].min()), 4) for w in within],
        "across_mean": round(float(cross.mean()), 4),
        "across_max": round(float(cross.max()), 4),
    }


def hard_negatives(model: nn.Module, size: int, threshold: float, n: int = 60, frames: int = 3, seed: int = 2) -> dict:
    """Per attribute: ``n`` held-out identities vs the same identity with only that attribute changed.
    ``false_accept``: share of (identity, variant) frame pairs above ``threshold`` (judged the same avatar);
    ``auc``: own-frame pairs vs identity-variant pairs."""
    out = {}
    for kind in VARIANTS:
        rng = np.random.default_rng([seed, VARIANTS.index(kind)])
        sims_same, sims_var = [], []
        for _ in range(n):
            base = random_identity(rng)
            e = embed(
                model,
                np.stack(
                    [
                        render_identity(base, frames, size, rng),
                        render_identity(variant(base, kind, rng), frames, size, rng),
                    ]
                ),
            )
            iu = np.triu_indices(frames, 1)
            sims_same.append((e[0] @ e[0].T)[iu])
            sims_var.append((e[0] @ e[1].T).ravel())
        same, var = np.concatenate(sims_same), np.concatenate(sims_var)
        auc = float((same[:, None] > var[None, :]).mean() + 0.5 * (same[:, None] == var[None, :]).mean())
        out[kind] = {
            "false_accept": round(float((var >= threshold).mean()), 4),
            "auc": round(auc, 4),
            "variant_mean": round(float(var.mean()), 4),
            "own_mean": round(float(same.mean()), 4),
        }
    return {"identities": n, "frames": frames, "threshold": threshold, "by_attribute": out}


def final_metrics(model: nn.Module, size: int, held_out: np.ndarray, hard_ids: int, photos: bool = True) -> dict:
    """The report's metrics: held-out verification, hard negatives (one attribute changed), bundled photos."""
    m = {"held_out": verification_metrics(embed(model, held_out))}
    m["hard_negatives"] = hard_negatives(model, size, m["held_out"]["threshold_eer"], hard_ids)
    if photos:
        m["bundled_photos"] = photo_check(model, size)
    return m


def reevaluate(checkpoint: Path) -> dict:
    """Recompute ``final_metrics`` of a saved run and rewrite its ``identity.pt`` + ``identity.train.json``
    (``--reevaluate``; the checkpoint must be named identity.pt)."""
    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = load_checkpoint(checkpoint)
    tcfg = TrainConfig(**ck["info"]["train_config"])
    ck["info"]["metrics"] = final_metrics(model, model.cfg.size, eval_bank(tcfg, model.cfg.size), tcfg.hard_ids)
    distributed.save_run(distributed.DistContext(), Path(checkpoint).parent, "identity", ck, ck["info"])
    return ck["info"]["metrics"]


def eval_bank(tcfg: TrainConfig, size: int) -> np.ndarray:
    """Held-out identities from their own seed stream: uint8 ``[eval_ids, eval_frames, S, S, 3]``."""
    rng = np.random.default_rng([tcfg.seed, 7919])
    return np.stack([render_identity(random_identity(rng), tcfg.eval_frames, size, rng) for _ in range(tcfg.eval_ids)])


def train(
    out_dir: Path, mcfg: IdentityConfig, tcfg: TrainConfig, photos: bool = True, init: Path | None = None
) -> dict | None:
    """Train; rank 0 writes ``identity.pt`` + ``identity.train.json`` and returns the report (None elsewhere)."""
    with distributed.run_session(tcfg) as (ctx, rng):
        t0 = time.time()
        bank = IdentityBank(tcfg.bank, tcfg.frames, mcfg.size, np.random.default_rng([tcfg.seed, 1]))
        held_out = eval_bank(tcfg, mcfg.size) if ctx.is_main else None
        log.info(
            "identity: bank of %d identities x %d frames drawn in %.0f s", tcfg.bank, tcfg.frames, time.time() - t0
        )
        model, init_info = IdentityEncoder(mcfg), None
        if init is not None:  # fine-tune: start from a checkpoint (its config wins)
            model = load_checkpoint(init)
            mcfg = model.cfg
            init_info = {
                "checkpoint": str(init),
                **{k: model.info.get(k) for k in ("train_seconds", "train_config", "metrics")},
            }
            log.info("fine-tuning from %s", init)
        model = distributed.wrap(model, ctx)
        opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=tcfg.steps, pct_start=0.1)
        trainer = distributed.Trainer(model, opt, sched, ctx, accum=tcfg.accum, amp=tcfg.amp)

        def loss_fn(m: nn.Module, micro, batch):
            (x,) = micro
            share = x.shape[0] / batch[0].shape[0]
            emb = m(x.reshape(-1, *x.shape[2:]))
            loss = info_nce(emb, tcfg.tau)
            with torch.no_grad():
                e = emb.reshape(x.shape[0], 2, -1)
                pos = (e[:, 0] * e[:, 1]).sum(-1).mean()
            return loss * share, {"loss": loss * share, "pos_sim": pos * share}

        history, window = [], []
        t1 = time.time()
        for step in distributed.progress(range(tcfg.steps), ctx, desc="identity", mininterval=10):
            terms = trainer.step((to_input(bank.pairs(tcfg.batch, rng, tcfg.hard)),), loss_fn)
            bank.refresh(tcfg.refresh)
            window.append(terms)
            last = step + 1 == tcfg.steps
            if (step + 1) % tcfg.eval_every == 0 or last:
                tot = distributed.reduce_sum({k: sum(w[k] for w in window) / len(window) for k in window[0]}, ctx)
                window = []
                if ctx.is_main:
                    held = verification_metrics(embed(distributed.unwrap(model), held_out))
                    distributed.record_eval(history, step + 1, t1, tot, identities_seen=bank.made, held_out=held)
        if not ctx.is_main:
            return None
        model = distributed.unwrap(model).cpu()
        train_seconds = time.time() - t1
        metrics = final_metrics(model, mcfg.size, held_out, tcfg.hard_ids, photos)
        info = {
            "model": "identity",
            "config": mcfg.to_dict(),
            "train_config": asdict(tcfg),
            "distributed": ctx.describe(),
            "train_data": {
                "what": "procedural avatars of random identities (training.synthetic_avatars) drawn by "
                "runtime.avatar at random expressions, emotions, blinks, head poses and backgrounds",
                "identities_seen": bank.made,
                "frames_per_identity": tcfg.frames,
                "size": mcfg.size,
                "held_out": f"{tcfg.eval_ids} identities x {tcfg.eval_frames} frames from seed stream "
                f"[{tcfg.seed}, 7919] (never trained on)",
            },
            "loss": f"symmetric InfoNCE (NT-Xent), temperature {tcfg.tau}, two frames per identity",
            "init": init_info,
        }
        return distributed.finish_run(
            ctx,
            out_dir,
            "identity",
            model,
            mcfg.to_dict(),
            info,
            train_seconds=train_seconds,
            metrics=metrics,
            history=history,
        )


def load_checkpoint(path: Path) -> IdentityEncoder:
    return load_model_checkpoint(path, IdentityEncoder, IdentityConfig)


def run(a: argparse.Namespace) -> dict | None:
    """Train from parsed flags; shared by ``python -m`` and ``toonsync train identity``."""
    if getattr(a, "reevaluate", None):  # rewrites the run's identity.pt + identity.train.json in place
        metrics = reevaluate(a.reevaluate)
        log.info("re-evaluated %s: %s", a.reevaluate, metrics)
        return distributed.finished({"metrics": metrics}, "identity", a.reevaluate.parent)
    tcfg = TrainConfig(
        steps=a.steps,
        batch=a.batch,
        seed=a.seed,
        threads=a.threads,
        bank=a.bank,
        lr=a.lr,
        hard=a.hard,
        eval_every=min(a.eval_every, a.steps),
        eval_ids=a.eval_ids,
        accum=a.accum,
        device=a.device,
        amp=a.amp,
    )
    out = a.out or Path("runs/identity")
    info = train(out, IdentityConfig(size=a.size, width=a.width, embed_dim=a.embed_dim), tcfg, init=a.init)
    return distributed.finished(info, "identity", out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training.train_identity",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    distributed.add_image_trainer_arguments(
        p, TrainConfig, IdentityConfig, "identity", "identities per step (two frames each)"
    )
    p.add_argument("--bank", type=int, default=TrainConfig.bank, help="identities held in memory at once")
    p.add_argument("--eval-ids", type=int, default=TrainConfig.eval_ids)
    p.add_argument("--embed-dim", type=int, default=IdentityConfig.embed_dim)
    p.add_argument("--init", type=Path, metavar="CHECKPOINT", help="fine-tune from this identity.pt")
    p.add_argument(
        "--hard",
        type=float,
        default=TrainConfig.hard,
        help="share of each batch drawn as families of identities one attribute apart",
    )
    p.add_argument(
        "--reevaluate",
        type=Path,
        metavar="CHECKPOINT",
        help="instead of training: recompute the metrics of identity.pt and rewrite its reports",
    )
    distributed.add_arguments(p)
    return p


main = distributed.main_function(build_parser, run)


if __name__ == "__main__":
    main()
