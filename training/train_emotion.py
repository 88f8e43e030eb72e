"""Train the speech-emotion classifier (``EmotionNet``) on CREMA-D.

    python -m toonsync.training.train_emotion --data PATH/TO/CREMA-D -o runs/emotion --steps 4000
    torchrun --standalone --nproc_per_node 4 -m toonsync.training.train_emotion --data PATH/TO/CREMA-D ... [--accum N]

Speaker-independent: validation and test actors are held out (``training.cremad.CremaD.split``). Class-balanced
sampling, random crops with gain jitter, AdamW + one-cycle LR; the checkpoint (``emotion.pt``, config dict inside)
keeps the weights with the best validation UAR, and ``emotion.train.json`` reports accuracy, unweighted average
recall, per-class recall and the confusion matrix on the held-out actors. CREMA-D is not on the build machine, so
**no emotion weights are shipped**; the runtime uses the prosody heuristic (``runtime.emotion``) until a model
trained here is exported with ``toonsync.export.emotion.export_emotion``. Under torchrun the global batch is split
over the processes (``training.distributed``, docs/distributed.md); rank 0 evaluates, keeps the best weights and
writes.
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from toonsync.runtime.errors import ToonsyncError
from toonsync.runtime.mel import HOP, MELS_PER_FRAME, N_MELS, SAMPLE_RATE
from toonsync.runtime.motion import EMOTIONS
from toonsync.runtime.streaming import SILENT_MEL

from . import distributed
from .cremad import ACTORS, CremaD, CremaItem, item_features
from .models.emotion import EmotionConfig, EmotionNet, param_bytes, utterance_log_probs
from .models.encoder import load_model_checkpoint

log = logging.getLogger(__name__)

Clip = tuple[np.ndarray, int]  # (log-mel [4T, 80] float16, class index)


@dataclass
class TrainConfig:
    """Training settings of the emotion classifier: steps, batch, crops, optimiser, held-out actors, devices."""

    steps: int = 4000
    batch: int = 32
    crop_frames: int = 50  # 2 s crops (video frames of 40 ms)
    lr: float = 2e-3
    weight_decay: float = 1e-2
    seed: int = 0
    threads: int = 2
    eval_every: int = 500
    gain_db: float = 6.0  # random level change per example (+-)
    val_actors: int | list[int] = 8
    test_actors: int | list[int] = 10
    accum: int = 1  # micro-batches per optimizer step (gradient accumulation); batch % (processes * accum) == 0
    device: str = "auto"  # auto: cuda:LOCAL_RANK when CUDA is available, else cpu
    amp: bool = True  # fp16 autocast + GradScaler, on CUDA only


def load_clips(items: Sequence[CremaItem]) -> list[Clip]:
    """Log-mel + label of every readable clip (CREMA-D has a few empty files: skipped and logged)."""
    out: list[Clip] = []
    for it in items:
        try:
            mel = item_features(it)
        except (ToonsyncError, OSError) as e:
            log.warning("skipping %s: %s", it.path.name, e)
            continue
        n = mel.shape[0] // MELS_PER_FRAME * MELS_PER_FRAME
        if n == 0:
            log.warning("skipping %s: shorter than one 40 ms frame", it.path.name)
            continue
        out.append((mel[:n].astype(np.float16), it.label))
    return out


def sample_batch(
    clips: Sequence[Clip], cfg: TrainConfig, rng: np.random.Generator, balanced: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class-balanced random crops -> mel [B, 4T, 80], valid-frame mask [B, T], labels [B] (torch)."""
    T = cfg.crop_frames
    mels = np.full((cfg.batch, T * MELS_PER_FRAME, N_MELS), SILENT_MEL, np.float32)
    mask = np.zeros((cfg.batch, T), np.float32)
    labels = np.zeros(cfg.batch, np.int64)
    by_class: dict[int, list[int]] = {}
    for i, (_, y) in enumerate(clips):
        by_class.setdefault(y, []).append(i)
    classes = sorted(by_class)
    for b in range(cfg.batch):
        if balanced:
            pool = by_class[classes[int(rng.integers(len(classes)))]]
            mel, y = clips[pool[int(rng.integers(len(pool)))]]
        else:
            mel, y = clips[int(rng.integers(len(clips)))]
        n = mel.shape[0] // MELS_PER_FRAME
        s = int(rng.integers(0, max(1, n - T + 1)))
        m = mel[s * MELS_PER_FRAME : (s + T) * MELS_PER_FRAME].astype(np.float32)
        if cfg.gain_db:
            shift = float(rng.uniform(-cfg.gain_db, cfg.gain_db)) / 40.0  # dB -> whisper-scaled log10 power
            m = np.where(m > SILENT_MEL, np.maximum(m + shift, SILENT_MEL), m)
        mels[b, : m.shape[0]] = m
        mask[b, : m.shape[0] // MELS_PER_FRAME] = 1.0
        labels[b] = y
    return torch.from_numpy(mels), torch.from_numpy(mask), torch.from_numpy(labels)


def frame_loss(
    logits: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, total_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean cross-entropy of the valid frames against the utterance label (= -mean frame log-prob).

    With ``total_mask`` (the valid-frame mask of the whole global batch, of which these rows are a
    part): this part's share of that batch's loss, i.e. divided by the batch's valid frames."""
    ce = F.cross_entropy(logits.transpose(1, 2), labels[:, None].expand(-1, logits.shape[1]), reduction="none")
    return (ce * mask).sum() / (mask if total_mask is None else total_mask).sum().clamp_min(1.0)


@torch.no_grad()
def predict_clip(model: EmotionNet, mel: np.ndarray) -> np.ndarray:
    """Whole utterance -> mean frame log-probabilities [6]."""
    model.eval()
    dev = next(model.parameters()).device
    x = torch.from_numpy(np.asarray(mel, np.float32))[None].to(dev)
    logits, *_ = model(x, *(s.to(dev) for s in model.initial_state(1)))
    return utterance_log_probs(logits)[0].cpu().numpy()


def evaluate(model: EmotionNet, clips: Sequence[Clip]) -> dict:
    """Utterance accuracy, unweighted average recall, per-class recall and confusion (rows = truth)."""
    K = len(EMOTIONS)
    conf = np.zeros((K, K), np.int64)
    for mel, y in clips:
        conf[y, int(predict_clip(model, mel).argmax())] += 1
    support = conf.sum(1)
    recall = {e: (float(conf[k, k] / support[k]) if support[k] else None) for k, e in enumerate(EMOTIONS)}
    seen = [r for r in recall.values() if r is not None]
    return {
        "clips": int(conf.sum()),
        "accuracy": float(np.trace(conf) / max(conf.sum(), 1)),
        "uar": float(np.mean(seen)) if seen else 0.0,
        "recall": recall,
        "confusion": conf.tolist(),
        "classes": list(EMOTIONS),
    }


def train(
    data_root: Path, out_dir: Path, mcfg: EmotionConfig | None = None, tcfg: TrainConfig | None = None
) -> dict | None:
    """Train on the non-held-out actors; rank 0 writes ``emotion.pt`` + ``emotion.train.json`` and returns
    the report (other ranks of a torchrun job return None)."""
    mcfg, tcfg = mcfg or EmotionConfig(), tcfg or TrainConfig()
    with distributed.session(tcfg.device) as ctx:
        distributed.check_batch(tcfg.batch, ctx, tcfg.accum)
        torch.manual_seed(tcfg.seed)
        torch.set_num_threads(tcfg.threads)
        rng = np.random.default_rng(tcfg.seed)
        data = CremaD(data_root)
        split = data.split(tcfg.val_actors, tcfg.test_actors, seed=tcfg.seed)
        train_clips = load_clips(split.train)
        # only rank 0 evaluates, so only it loads the held-out actors' audio
        val_clips, test_clips = (load_clips(s) if ctx.is_main else [] for s in (split.val, split.test))
        if not train_clips:
            raise ValueError(f"{data_root}: no training clips left after holding out actors")
        seconds = sum(m.shape[0] for m, _ in train_clips) * HOP / SAMPLE_RATE
        log.info(
            "train: %d clips (%.2f h), val %d, test %d",
            len(train_clips),
            seconds / 3600,
            len(val_clips),
            len(test_clips),
        )
        model = distributed.wrap(EmotionNet(mcfg), ctx)
        opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=tcfg.steps, pct_start=0.1)
        trainer = distributed.Trainer(model, opt, sched, ctx, accum=tcfg.accum, amp=tcfg.amp)

        def loss_fn(m: nn.Module, micro, batch):
            mel, mask, y = micro
            state = [s.to(ctx.device) for s in distributed.unwrap(m).initial_state(mel.shape[0])]
            logits, *_ = m(mel, *state)
            loss = frame_loss(logits.float(), mask, y, total_mask=batch[1])  # share of the global batch's loss
            return loss, {"loss": loss}

        best_uar, best_state, history = -1.0, None, []
        t0 = time.time()
        for step in distributed.progress(range(tcfg.steps), ctx, desc="emotion", mininterval=5):
            terms = trainer.step(sample_batch(train_clips, tcfg, rng), loss_fn)
            if (step + 1) % tcfg.eval_every == 0 or step + 1 == tcfg.steps:
                terms = distributed.reduce_sum(terms, ctx)
                if not ctx.is_main:
                    continue
                rec = {"step": step + 1, "loss": round(terms["loss"], 4), "seconds": round(time.time() - t0, 1)}
                if val_clips:
                    val = evaluate(distributed.unwrap(model), val_clips)
                    rec.update(val_accuracy=round(val["accuracy"], 4), val_uar=round(val["uar"], 4))
                    if val["uar"] > best_uar:
                        best_uar, best_state = val["uar"], copy.deepcopy(distributed.unwrap(model).state_dict())
                history.append(rec)
                log.info("emotion %s", rec)
        if not ctx.is_main:
            return None
        model = distributed.unwrap(model)
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        info = {
            "model": "emotion",
            "config": mcfg.to_dict(),
            "train_config": asdict(tcfg),
            "distributed": ctx.describe(),
            "train_data": {
                "path": str(data_root),
                "dataset": "CREMA-D",
                "clips": len(train_clips),
                "hours": round(seconds / 3600, 3),
                "actors": {k: sorted({it.actor for it in s}) for k, s in split._asdict().items()},
            },
            "train_seconds": round(time.time() - t0, 1),
            "params": sum(p.numel() for p in model.parameters()),
            "param_bytes": param_bytes(model),
            "metrics": {
                "val": evaluate(model, val_clips) if val_clips else None,
                "test": evaluate(model, test_clips) if test_clips else None,
            },
            "history": history,
            "torch": torch.__version__,
        }
        path = distributed.save_run(
            ctx,
            out_dir,
            "emotion",
            {"config": mcfg.to_dict(), "state_dict": model.cpu().state_dict(), "info": info},
            info,
        )
        test = info["metrics"]["test"]
        log.info(
            "saved %s; test %s",
            path,
            f"accuracy {test['accuracy']:.3f}, UAR {test['uar']:.3f}" if test else "(no test actors)",
        )
        return info


def load_checkpoint(path: Path) -> EmotionNet:
    return load_model_checkpoint(path, EmotionNet, EmotionConfig)


def _actors(s: str) -> int | list[int]:
    """'8' -> a count of actors; '1001,1002' (or one ID in 1001..1091) -> those actors."""
    vals = [int(v) for v in s.split(",") if v.strip()]
    return vals if ("," in s or (len(vals) == 1 and vals[0] in ACTORS)) else (vals[0] if vals else 0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m toonsync.training.train_emotion",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="CREMA-D folder (holding AudioWAV/)")
    p.add_argument("-o", "--out", type=Path, default=Path("runs/emotion"))
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--val-actors", type=_actors, default=TrainConfig.val_actors, help="count or 1001,1002,...")
    p.add_argument("--test-actors", type=_actors, default=TrainConfig.test_actors, help="count or 1003,1004,...")
    distributed.add_arguments(p)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tcfg = TrainConfig(
        steps=a.steps,
        batch=a.batch,
        seed=a.seed,
        threads=a.threads,
        val_actors=a.val_actors,
        test_actors=a.test_actors,
        eval_every=min(TrainConfig.eval_every, a.steps),
        accum=a.accum,
        device=a.device,
        amp=a.amp,
    )
    train(a.data, a.out, EmotionConfig(), tcfg)


if __name__ == "__main__":
    main()
