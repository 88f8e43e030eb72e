"""Train the audio -> mouth-motion model on an HDF5 clip store (from training.corpus).

    python -m training.train_audio2motion --train corpus/train.h5 --test corpus/test.h5 -o runs/a2m
    torchrun --standalone --nproc_per_node 4 -m training.train_audio2motion --train ... --accum 2

Under torchrun each step's global batch (``--batch``) is split over the processes and ``--accum``
micro-batches; the result matches a single-process run (``training.distributed``, docs/distributed.md).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from toonsync.runtime.mel import LOG_FLOOR, MELS_PER_FRAME, N_MELS
from toonsync.training.dataset import ClipStore

from . import distributed
from .evaluate import lipsync_metrics
from .models.audio2motion import Audio2Motion, Audio2MotionConfig
from .models.encoder import load_model_checkpoint

log = logging.getLogger(__name__)
SILENT_MEL = (LOG_FLOOR + 4.0) / 4.0  # value of a mel bin of digital silence


@dataclass
class TrainConfig:
    """Training settings of the speech model: steps, batch, crops, optimiser, evaluation, devices."""

    steps: int = 8000
    batch: int = 32
    crop_frames: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    eval_every: int = 500
    freq_masks: int = 0  # SpecAugment: masks of up to 12 mel bins ... (2+2 measured worse held-out)
    time_masks: int = 0  # ... and up to 8 mel frames, per example
    accum: int = 1  # micro-batches per optimizer step (gradient accumulation); batch % (processes * accum) == 0
    device: str = "auto"  # auto: cuda:LOCAL_RANK when CUDA is available, else cpu
    amp: bool = True  # fp16 autocast + GradScaler, on CUDA only


def load_pairs(path: Path, split: str | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(mel [4T, 80], mouth [T, 3])] for every clip with mouth targets."""
    out = []
    with ClipStore(path) as store:
        for cid in store.ids(split):
            c = store[cid]
            if c.mouth is None or c.mel is None:
                continue
            t = min(c.mouth.shape[0], c.mel.shape[0] // MELS_PER_FRAME)
            out.append((c.mel[: t * MELS_PER_FRAME].astype(np.float32), c.mouth[:t].astype(np.float32)))
    return out


def describe_train_data(clips: list, path: Path, needs: str = "mouth targets") -> dict:
    """The ``train_data`` record of a run (path, clips, hours), logged; refuses a store with no usable clips.
    ``clips``: tuples whose second item is the [T, 3] mouth target."""
    if not clips:
        raise ValueError(f"{path} has no train clips with {needs}")
    hours = sum(c[1].shape[0] for c in clips) / 25 / 3600
    log.info("train: %d clips, %.2f h", len(clips), hours)
    return {"path": str(path), "clips": len(clips), "hours": round(hours, 3)}


def sample_batch(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], cfg: TrainConfig, lookahead: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random crops; targets shifted by ``lookahead`` (output t -> frame t - lookahead, silence before 0)."""
    T = cfg.crop_frames
    mels = np.full((cfg.batch, T * MELS_PER_FRAME, N_MELS), SILENT_MEL, np.float32)
    tgts = np.zeros((cfg.batch, T, 3), np.float32)
    for b in range(cfg.batch):
        mel, mouth = pairs[rng.integers(len(pairs))]
        n = mouth.shape[0]
        s = int(rng.integers(0, max(1, n - T + lookahead)))
        m = mel[s * MELS_PER_FRAME : (s + T) * MELS_PER_FRAME]
        mels[b, : m.shape[0]] = m
        shifted = np.concatenate([np.zeros((lookahead, 3), np.float32), mouth])[s : s + T]
        tgts[b, : shifted.shape[0]] = shifted
        spec_augment(mels[b], cfg, rng)
    return torch.from_numpy(mels), torch.from_numpy(tgts)


def spec_augment(mel: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> None:
    """In place on one crop [4T, 80]: ``cfg.freq_masks`` masks of up to 12 mel bins, ``cfg.time_masks`` of up
    to 8 mel frames (set to digital silence)."""
    for _ in range(cfg.freq_masks):
        w, f0 = int(rng.integers(0, 13)), int(rng.integers(0, N_MELS - 12))
        mel[:, f0 : f0 + w] = SILENT_MEL
    for _ in range(cfg.time_masks):
        w, t0 = int(rng.integers(0, 9)), int(rng.integers(0, mel.shape[0] - 8))
        mel[t0 : t0 + w] = SILENT_MEL


@torch.no_grad()
def predict_clip(model: Audio2Motion, mel: np.ndarray) -> np.ndarray:
    """Offline prediction for one clip: pad ``lookahead`` silent frames, drop the first outputs -> [T, 3]."""
    L = model.cfg.lookahead
    dev = next(model.parameters()).device
    pad = np.full((L * MELS_PER_FRAME, N_MELS), SILENT_MEL, np.float32)
    x = torch.from_numpy(np.concatenate([mel, pad]))[None].to(dev)
    mouth, *_ = model(x, *(s.to(dev) for s in model.initial_state(1)))
    return mouth[0, L:].cpu().numpy()


def evaluate(model: Audio2Motion, path: Path, split: str | None = None) -> dict:
    """Lip-sync metrics over all clips, plus the same per engine (``by_engine``)."""
    model.eval()
    preds, refs = [], []
    with ClipStore(path) as store:
        for cid in store.ids(split):
            c = store[cid]
            preds.append(predict_clip(model, c.mel[: c.mouth.shape[0] * MELS_PER_FRAME]))
            refs.append(c)
    out = lipsync_metrics(preds, refs)
    engines = sorted({c.attrs.get("engine", "?") for c in refs})
    if len(engines) > 1:
        out["by_engine"] = {
            e: lipsync_metrics(
                [p for p, c in zip(preds, refs) if c.attrs.get("engine", "?") == e],
                [c for c in refs if c.attrs.get("engine", "?") == e],
            )
            for e in engines
        }
    return out


def train(
    train_path: Path,
    test_path: Path | None,
    out_dir: Path,
    mcfg: Audio2MotionConfig,
    tcfg: TrainConfig,
    init: Path | None = None,
) -> dict | None:
    """Train; rank 0 writes ``audio2motion.pt`` + ``audio2motion.train.json`` and returns the report
    (other ranks of a torchrun job return None). Each step's global batch of ``tcfg.batch`` crops is
    split over processes x ``tcfg.accum`` micro-batches (``training.distributed``)."""
    with distributed.run_session(tcfg) as (ctx, rng):
        pairs = load_pairs(train_path, "train")
        train_data = describe_train_data(pairs, train_path)
        model = Audio2Motion(mcfg)
        if init is not None:  # fine-tune: start from a checkpoint (its config wins)
            model = load_checkpoint(init)
            mcfg = model.cfg
            log.info("fine-tuning from %s", init)
        model = distributed.wrap(model, ctx)
        opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=tcfg.steps, pct_start=0.1)
        trainer = distributed.Trainer(model, opt, sched, ctx, accum=tcfg.accum, amp=tcfg.amp)
        w = torch.tensor([2.0, 1.0, 1.0], device=ctx.device)

        def loss_fn(m: nn.Module, micro, batch):
            mel, tgt = micro
            share = mel.shape[0] / batch[0].shape[0]  # rows of the global batch in this micro-batch
            state = [s.to(ctx.device) for s in distributed.unwrap(m).initial_state(mel.shape[0])]
            mouth, *_ = m(mel, *state)
            loss = (((mouth - tgt) ** 2) * w).mean()
            vel = ((mouth[:, 1:] - mouth[:, :-1]) - (tgt[:, 1:] - tgt[:, :-1])).pow(2).mean()
            return (loss + 2.0 * vel) * share, {"loss": loss * share, "vel": vel * share}

        t0 = time.time()
        history = []
        for step in distributed.progress(range(tcfg.steps), ctx, desc="audio2motion", mininterval=5):
            terms = trainer.step(sample_batch(pairs, tcfg, mcfg.lookahead, rng), loss_fn)
            if (step + 1) % tcfg.eval_every == 0 or step + 1 == tcfg.steps:
                terms = distributed.reduce_sum(terms, ctx)
                if ctx.is_main:
                    rec = {
                        "step": step + 1,
                        "loss": terms["loss"],
                        "vel": terms["vel"],
                        "seconds": round(time.time() - t0, 1),
                    }
                    if test_path is not None:
                        rec.update(
                            {
                                k: v
                                for k, v in evaluate(distributed.unwrap(model), test_path).items()
                                if k.startswith("r_")
                            }
                        )
                    history.append(rec)
                    log.info("%s", rec)
        if not ctx.is_main:
            return None
        model = distributed.unwrap(model)
        train_seconds = time.time() - t0
        metrics = evaluate(model, test_path) if test_path is not None else {}
        info = {
            "model": "audio2motion",
            "config": mcfg.to_dict(),
            "train_config": asdict(tcfg),
            "distributed": ctx.describe(),
            "train_data": train_data,
            "init": str(init) if init else None,
            "eval_data": str(test_path) if test_path else None,
        }
        return distributed.finish_run(
            ctx,
            out_dir,
            "audio2motion",
            model,
            mcfg.to_dict(),
            info,
            train_seconds=train_seconds,
            metrics=metrics,
            history=history,
        )


def load_checkpoint(path: Path) -> Audio2Motion:
    return load_model_checkpoint(path, Audio2Motion, Audio2MotionConfig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m training.train_audio2motion",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--test", type=Path)
    p.add_argument("-o", "--out", type=Path, default=Path("runs/audio2motion"))
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--init", type=Path, help="fine-tune from this checkpoint")
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--channels", type=int, default=Audio2MotionConfig.channels)
    p.add_argument("--hidden", type=int, default=Audio2MotionConfig.hidden)
    p.add_argument("--crop-frames", type=int, default=TrainConfig.crop_frames)
    p.add_argument("--eval-every", type=int, default=TrainConfig.eval_every)
    distributed.add_arguments(p)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tcfg = TrainConfig(
        steps=a.steps,
        batch=a.batch,
        seed=a.seed,
        threads=a.threads,
        lr=a.lr,
        crop_frames=a.crop_frames,
        eval_every=a.eval_every,
        accum=a.accum,
        device=a.device,
        amp=a.amp,
    )
    train(a.train, a.test, a.out, Audio2MotionConfig(channels=a.channels, hidden=a.hidden), tcfg, init=a.init)


if __name__ == "__main__":
    main()
