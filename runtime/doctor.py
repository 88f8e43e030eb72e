"""``toonsync doctor``: what this machine has, and whether the shipped models are intact."""

from __future__ import annotations

import importlib.metadata as md
import json
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


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _speech_quality(card: ModelCard) -> list[str]:
    """The speech model's / motion decoder's figures in words: held-out test, training validation, INT8."""
    raw = card.to_dict()
    lines = []
    ev = raw.get("heldout_eval") or {}
    rt = ev.get("runtime")
    if rt:
        engines = " · ".join(f"{e} {m['r_target']:.2f}" for e, m in sorted((ev.get("by_engine") or {}).items()))
        lines.append(
            f"held-out speech ({rt['clips']} clips of voices never trained on): mouth-opening r {rt['r_target']:.2f}"
            f", viseme accuracy {_pct(rt['viseme_acc'])}, mouth closed in {_pct(rt['silence_closed_frames'])} of "
            f"silent frames" + (f"; r by engine: {engines}" if engines else "")
        )
    elif card.metrics.get("r_target") is not None:
        lines.append("held-out speech: not evaluated yet (`toonsync eval --test corpus/test.h5 --record`)")
    if card.metrics.get("r_target") is not None:
        lines.append(f"validation during training: mouth-opening r {card.metrics['r_target']:.2f}")
    q = (raw.get("quantization") or {}).get("int8")
    if q:
        acc = q.get("accuracy_vs_fp32", {})
        verdict = "within" if q.get("within_budget") else "outside"
        lines.append(
            f"INT8: {verdict} its accuracy budget (mouth r vs fp32 {acc.get('mouth_open_corr', float('nan')):.3f}, "
            f"landmark drift {acc.get('landmark_drift_pct_iod', float('nan')):.2f} % of the eye distance); "
            f"default precision on CPUs: {raw.get('default_precision', 'fp32')}"
        )
    return lines


def quality(card: ModelCard) -> list[str]:
    """How well a shipped model scores, in a few lines a person reads (from its model card)."""
    raw = card.to_dict()
    lines = _speech_quality(card) if card.name in ("audio2motion", "motion") else []
    held = (card.metrics or {}).get("held_out")
    if card.name == "identity" and held:
        lines.append(
            f"held-out avatars ({held['identities']} identities): ROC-AUC {held['roc_auc']:.5f}, equal error rate "
            f"{100 * held['eer']:.2f} % at similarity {raw.get('threshold', held.get('threshold_eer')):.3f}"
        )
    par = raw.get("parity") or {}
    if "max_abs_diff" in par:
        unit = par.get("unit", "")
        lines.append(f"parity with its torch model: max |diff| {par['max_abs_diff']:.3g} {unit}".rstrip())
    return lines


def doctor(out: TextIO = sys.stdout, verbose: bool = False) -> bool:
    """Print a report; return False if something the runtime needs is broken. ``verbose``: also each model
    card's raw training-run metrics."""
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
        for line in quality(card):
            w(f"    {line}")
        if verbose and card.metrics:
            w("    training-run metrics: " + json.dumps(card.to_dict()["metrics"], sort_keys=True))
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
