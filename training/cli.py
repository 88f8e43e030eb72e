"""``toonsync train``: build the synthetic corpus if needed, then train.

Under torchrun (``torchrun --standalone --nproc_per_node N -m runtime train audio2motion``) rank 0
builds a missing corpus while the other ranks wait, then all of them train (``training.distributed``).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from . import corpus, distributed
from .models.audio2motion import Audio2MotionConfig
from .train_audio2motion import TrainConfig, train

log = logging.getLogger(__name__)
TEST_MINUTES = 5.0


def ensure_corpus(corpus_dir: Path, minutes: float, seed: int = 0) -> tuple[Path, Path]:
    train_h5, test_h5 = corpus_dir / "train.h5", corpus_dir / "test.h5"
    if not train_h5.exists():
        log.info("building %.0f min training corpus in %s", minutes, train_h5)
        corpus.build(train_h5, minutes, "train", seed)
    if not test_h5.exists():
        corpus.build(test_h5, min(TEST_MINUTES, max(minutes / 4, 0.5)), "test", seed + 1)
    return train_h5, test_h5


def train_cli(a: argparse.Namespace) -> int:
    # --batch/--accum/--device/--no-amp (defaults: TrainConfig's; getattr keeps older callers working)
    tcfg = TrainConfig(steps=a.steps, seed=a.seed, eval_every=max(a.steps // 8, 1),
                       batch=getattr(a, "batch", TrainConfig.batch), accum=getattr(a, "accum", TrainConfig.accum),
                       device=getattr(a, "device", TrainConfig.device), amp=getattr(a, "amp", TrainConfig.amp))
    with distributed.session(tcfg.device) as ctx:
        distributed.check_batch(tcfg.batch, ctx, tcfg.accum)  # fail before a long corpus build
        with distributed.main_first(ctx):
            train_h5, test_h5 = ensure_corpus(a.corpus_dir, a.minutes, a.seed)
        info = train(train_h5, test_h5, a.out, Audio2MotionConfig(), tcfg)
    if info is not None:
        log.info("held-out lip-sync metrics: %s", info["metrics"])
    return 0
