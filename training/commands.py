"""The training package's ``toonsync`` sub-commands: train, preprocess, corpus (build / check).

Registering them imports only argparse; each handler imports torch-side code when it runs and fails in one
line naming ``toonsync[train]`` when that extra is missing.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from toonsync.runtime.commands import import_extra
from toonsync.runtime.errors import ToonsyncError

log = logging.getLogger("toonsync")


def register(sub: argparse._SubParsersAction) -> None:
    """Add train, preprocess and corpus to ``sub``."""
    pp = sub.add_parser("preprocess", help="video/audio files -> HDF5 clips (frames, 68 landmarks, pose, log-mel)")
    pp.add_argument(
        "inputs",
        nargs="+",
        help="video (.mp4 .mov .mkv .webm .avi) and audio (.wav .flac) files; an audio file is the soundtrack of "
        "the video of the same name (talk.mp4 + talk.wav), or of the one video given; a video alone keeps its own "
        "track; audio files alone are speech-only clips",
    )
    pp.add_argument("-o", "--output", required=True, type=Path, help="output .h5")
    pp.add_argument("--frame-size", type=int, default=256, help="downscale stored frames to this long side (0 = keep)")
    pp.set_defaults(func=cmd_preprocess)

    t = sub.add_parser("train", help="train a model (needs `pip install toonsync[train]`)")
    t.add_argument(
        "model",
        choices=["motion", "audio2motion", "stylizer", "identity", "refiner", "landmarks"],
        help="motion (speech embedding + transformer motion decoder, the shipped pair; TTS corpus), "
        "audio2motion (the speech model alone), stylizer (Face2Comics, --data), identity / refiner "
        "(avatars drawn here), landmarks (the 68 points of drawn faces, faces drawn here); docs/learned_models.md, "
        "docs/motion.md, docs/drawings.md",
    )
    t.add_argument("--corpus-dir", type=Path, default=Path("corpus"), help="where the TTS corpus is built/read")
    t.add_argument("--minutes", type=float, default=100.0, help="minutes of training speech to synthesise")
    t.add_argument("--steps", type=int, help="optimisation steps (default: the model's; audio2motion 8000)")
    t.add_argument("--out", type=Path, help="checkpoint directory (default runs/MODEL)")
    t.add_argument("--data", type=Path, help="stylizer: the Face2Comics folder (faces/ or face/ beside comics/)")
    t.add_argument("--size", type=int, help="stylizer / identity / refiner: image side (default: the model's)")
    t.add_argument(
        "--width", type=int, help="stylizer / identity / refiner: first-level channels (default: the model's)"
    )
    t.add_argument(
        "--export",
        type=Path,
        metavar="MODEL_DIR",
        help="stylizer / identity / refiner: also export MODEL.fp32.onnx + sidecar to MODEL_DIR",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--batch",
        type=int,
        help="global batch per step, split over torchrun processes x --accum (default: the model's; audio2motion 32)",
    )
    t.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step (gradient accumulation)")
    t.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="auto: this process's GPU under torchrun when CUDA is present, else CPU",
    )
    t.add_argument("--no-amp", dest="amp", action="store_false", help="no fp16 mixed precision on CUDA")
    t.add_argument("--resume", type=Path, help="motion: continue an interrupted run (its --out directory)")
    t.add_argument("--init", type=Path, help="motion: fine-tune from a previous run directory")
    t.set_defaults(func=cmd_train)

    co = sub.add_parser(
        "corpus",
        help="build the synthetic lip-sync corpus (flite + espeak-ng; festival held out) as "
        "HDF5, or check its phone timings against pocketsphinx (toonsync[train])",
    )
    co.add_argument("action", choices=["build", "check"])
    co.add_argument("-o", "--out", type=Path, help="build: output .h5")
    co.add_argument("--corpus", type=Path, help="check: corpus .h5 whose engine timings to cross-check")
    co.add_argument("--sample", type=int, default=30, help="check: clips per engine (default 30)")
    co.add_argument("--json", type=Path, help="check: also write the agreement report as JSON")
    co.add_argument("--minutes", type=float, default=60.0)
    co.add_argument(
        "--split",
        choices=["train", "test"],
        default="train",
        help="train voices, or the held-out test voices (never trained on)",
    )
    co.add_argument("--seed", type=int, default=0)
    co.set_defaults(func=cmd_corpus)


def cmd_preprocess(a: argparse.Namespace) -> int:
    """``toonsync preprocess``."""
    preprocess = import_extra("toonsync.training.preprocess", "train")
    n = preprocess.preprocess(a.inputs, a.output, a.frame_size or None)
    log.info("wrote %d clips to %s", n, a.output)
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    """``toonsync train MODEL``."""
    return import_extra("toonsync.training.cli", "train").train_cli(a)


def cmd_corpus(a: argparse.Namespace) -> int:
    """``toonsync corpus build|check``."""
    if a.action == "check":
        if a.corpus is None:
            raise ToonsyncError("corpus check needs --corpus FILE.h5")
        import_extra("toonsync.training.align_check", "train").check_cli(a.corpus, a.sample, a.json, a.seed)
        return 0
    if a.out is None:
        raise ToonsyncError("corpus build needs -o/--out FILE.h5")
    import_extra("toonsync.training.corpus", "train").build(a.out, a.minutes, a.split, a.seed)
    return 0
