"""``toonsync train``: build the synthetic corpus if needed, then train.

Under torchrun (``torchrun --standalone --nproc_per_node N -m toonsync train audio2motion``) rank 0
builds a missing corpus while the other ranks wait, then all of them train (``training.distributed``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from toonsync.runtime.errors import InputError

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


# `toonsync train MODEL` for the image models: these flags go to the model's own trainer (its build_parser)
IMAGE_TRAINERS = {
    "stylizer": "toonsync.training.train_stylizer",
    "identity": "toonsync.training.train_identity",
    "refiner": "toonsync.training.train_refiner",
    "landmarks": "toonsync.training.train_landmarks",
}
FORWARDED = (
    ("--data", "data"),
    ("--size", "size"),
    ("--steps", "steps"),
    ("--batch", "batch"),
    ("--seed", "seed"),
    ("--width", "width"),
    ("--out", "out"),
    ("--accum", "accum"),
    ("--device", "device"),
)


def train_image_model(a: argparse.Namespace) -> int:
    if a.model == "stylizer" and getattr(a, "data", None) is None:
        raise InputError(
            "toonsync train stylizer needs --data PATH/TO/face2comics (Sxela's Face2Comics: a folder "
            "with faces/ or face/ beside comics/); it is not on this machine, so no stylizer weights ship"
        )
    mod = importlib.import_module(IMAGE_TRAINERS[a.model])
    # the trainer's own defaults, then every flag given to `toonsync train` that the trainer has
    args = mod.build_parser().parse_args(["--data", str(a.data)] if a.model == "stylizer" else [])
    for flag, dest in FORWARDED:
        v = getattr(a, dest, None)
        if v is None:
            continue
        if not hasattr(args, dest):
            raise InputError(f"toonsync train {a.model} does not take {flag}")
        setattr(args, dest, v)
    if getattr(a, "amp", True) is False:
        args.amp = False
    info = mod.run(args)
    if info is not None:  # rank 0: ``toonsync train MODEL --export DIR`` exports this checkpoint afterwards
        log.info("%s held-out metrics: %s", a.model, info["metrics"])
        a.trained = (a.model, Path(info["checkpoint"]))
    return 0


def train_motion_model(a: argparse.Namespace) -> int:
    """``toonsync train motion``: speech embedding + transformer motion decoder, jointly (training.train_motion)."""
    from . import train_motion

    p = train_motion.build_parser()
    d = p.parse_args(["--train", "-"])  # the trainer's defaults
    with distributed.session(a.device) as ctx:
        distributed.check_batch(a.batch or d.batch, ctx, a.accum)  # fail before a long corpus build
        with distributed.main_first(ctx):
            train_h5, test_h5 = ensure_corpus(a.corpus_dir, a.minutes, a.seed)
    for k, v in {
        "train": train_h5,
        "test": test_h5,
        "out": a.out or Path("runs/motion"),
        "steps": a.steps or d.steps,
        "batch": a.batch or d.batch,
        "seed": a.seed,
        "accum": a.accum,
        "device": a.device,
        "amp": a.amp,
        "resume": getattr(a, "resume", None),
        "init": getattr(a, "init", None),
        "eval_every": max((a.steps or d.steps) // 8, 1),
    }.items():
        setattr(d, k, v)
    info = train_motion.run(d)
    if info is not None:
        log.info("motion held-out metrics: %s", {k: v for k, v in info["metrics"].items() if k != "by_engine"})
        log.info("export it: toonsync export --checkpoint %s/audio2motion.pt", d.out)
    return 0


def train_cli(a: argparse.Namespace) -> int:
    """Run ``toonsync train MODEL``; on rank 0 an image model's checkpoint is left in ``a.trained``."""
    if getattr(a, "model", "audio2motion") in IMAGE_TRAINERS:
        return train_image_model(a)
    if getattr(a, "export", None) is not None:
        raise InputError(
            f"--export is for {', '.join(IMAGE_TRAINERS)}; export the speech models with `toonsync export`"
        )
    if getattr(a, "model", None) == "motion":
        return train_motion_model(a)
    # --steps/--batch/--out/--accum/--device/--no-amp (defaults: TrainConfig's; getattr keeps older callers working)
    steps = getattr(a, "steps", None) or TrainConfig.steps
    tcfg = TrainConfig(
        steps=steps,
        seed=a.seed,
        eval_every=max(steps // 8, 1),
        batch=getattr(a, "batch", None) or TrainConfig.batch,
        accum=getattr(a, "accum", TrainConfig.accum),
        device=getattr(a, "device", TrainConfig.device),
        amp=getattr(a, "amp", TrainConfig.amp),
    )
    with distributed.session(tcfg.device) as ctx:
        distributed.check_batch(tcfg.batch, ctx, tcfg.accum)  # fail before a long corpus build
        with distributed.main_first(ctx):
            train_h5, test_h5 = ensure_corpus(a.corpus_dir, a.minutes, a.seed)
        info = train(
            train_h5, test_h5, getattr(a, "out", None) or Path("runs/audio2motion"), Audio2MotionConfig(), tcfg
        )
    if info is not None:
        log.info("held-out lip-sync metrics: %s", info["metrics"])
    return 0
