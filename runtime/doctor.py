"""``toonsync doctor``: what this machine has, and whether the shipped models are intact."""

from __future__ import annotations

import importlib.metadata as md
import platform
import shutil
import sys
from typing import TextIO

from .backend import available_providers, model_dir
from .errors import ModelError
from .model_card import CARD_SUFFIX, ModelCard, sha256_file


def _ver(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def doctor(out: TextIO = sys.stdout) -> bool:
    """Print a report; return False if something the runtime needs is broken."""
    ok = True
    w = lambda s="": print(s, file=out)  # noqa: E731  (doctor output is the product here, not logging)
    w(f"toonsync {_ver('toonsync')}  Python {platform.python_version()}  {platform.platform()}")
    w("packages:")
    for pkg in (
        "numpy",
        "onnxruntime",
        "onnxruntime-gpu",
        "opencv-python-headless",
        "soundfile",
        "av",
        "h5py",
        "dlib-bin",
        "soxr",
        "torch",
        "onnx",
        "tensorrt",
        "sounddevice",
    ):
        w(f"  {pkg:24s} {_ver(pkg)}")
    w(f"onnxruntime providers: {', '.join(available_providers())}")
    try:
        from .face import find_predictor

        w(f"landmarks: dlib 68-point predictor at {find_predictor()}")
    except ModelError as e:
        ok = False
        w(f"landmarks: MISSING — {e}")
    w(f"flite (training corpus): {shutil.which('flite') or 'not installed'}")
    d = model_dir()
    w(f"models in {d}:")
    names = sorted(p.name[: -len(CARD_SUFFIX)] for p in d.glob(f"*{CARD_SUFFIX}"))
    if not names:
        ok = False
        w("  none — run `toonsync train audio2motion && toonsync export`")
    listed: set[str] = set()
    for name in names:
        try:
            card = ModelCard.load(d, name)
        except ModelError as e:
            ok = False
            w(f"  {name}: {e}")
            continue
        listed.update(card.files)
        for fname, info in card.files.items():
            f = d / fname
            if not f.exists():
                ok, state = False, "MISSING"
            else:
                state = "ok" if sha256_file(f) == info.sha256 else "SHA256 MISMATCH"
                ok = ok and state == "ok"
            w(f"  {fname:28s} {info.bytes / 1024:8.0f} KiB  sha256 {info.sha256[:16]}…  {state}")
        if card.metrics:
            w("    metrics: " + ", ".join(f"{k}={v}" for k, v in card.metrics.items()))
    for f in sorted(d.glob("*.onnx")):
        if f.name not in listed:  # load_model refuses these (no sha256 to check them against)
            ok = False
            w(f"  {f.name:28s} not listed in any model card: refused at load")
    if ModelCard.exists(d, "motion") and ModelCard.exists(d, "audio2motion"):
        rid = [ModelCard.load(d, n).run_id for n in ("motion", "audio2motion")]
        paired = bool(rid[0]) and rid[0] == rid[1]
        state = "paired with audio2motion" if paired else "NOT paired (trained with another audio model)"
        alone = "" if paired else " -- the runtime uses the audio model alone"
        w(f"motion decoder: {state} (run_id {rid[0]} / {rid[1]}){alone}")
    else:
        w("motion decoder: none (mouth from audio2motion, pose/blink procedural)")
    w("status: " + ("ok" if ok else "PROBLEMS FOUND (see above)"))
    return ok
