"""``toonsync eval``: held-out lip-sync report (JSON) + plots for a checkpoint or the shipped ONNX model.

toonsync eval --test corpus/test.h5 --out runs/eval     # shipped model (onnxruntime, fp32)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.mel import MELS_PER_FRAME
from toonsync.runtime.motion_io import VISEMES, viseme_classes
from toonsync.training.dataset import ClipStore

from .evaluate import lipsync_metrics

log = logging.getLogger(__name__)


def predict_onnx(
    mel: np.ndarray, precision: str = "fp32", audio: np.ndarray | None = None, decoder: bool = True
) -> np.ndarray:
    """Whole-clip mouth parameters of the shipped graphs alone (no silence gate): audio2motion, then the
    motion decoder on its speech embedding (neutral emotion, noise seed 0) when one ships and ``decoder``."""
    am = _audio_model(precision)
    L = am.lookahead
    silent = np.full((L * MELS_PER_FRAME, mel.shape[1]), -1.0, np.float32)
    out, _ = am.run(np.concatenate([mel, silent]), am.initial_state())
    if not decoder or am.decoder is None or audio is None:
        return out["mouth"][0, L:]
    from toonsync.runtime.emotion import NEU
    from toonsync.runtime.motion import MotionNoise, speech_energy

    n = out["mouth"].shape[1] - L
    emo = np.zeros((n, 6), np.float32)
    emo[:, NEU] = 1.0
    noise = MotionNoise(0)
    noise.step(speech_energy(audio, n))
    ((dec, _),) = am.decoder.run_many(
        [
            {
                "speech": out["embedding"][0, L:],
                "speech_mouth": out["mouth"][0, L:],
                "emotion": emo,
                "noise": noise.features,
            }
        ],
        [am.decoder.initial_state()],
    )
    return dec["mouth"][0]


def predict_stream(audio: np.ndarray, precision: str = "fp32") -> np.ndarray:
    """Mouth parameters exactly as users get them: the clip's audio through ``runtime.Stream`` (log-mel,
    the shipped graph, the silence gate), motion only."""
    from toonsync.runtime.streaming import Stream

    s = Stream(_audio_model(precision), np.zeros((68, 2), np.float32), emotion="neutral")
    s.accept_audio(audio)
    s.flush()
    return np.stack([s.step(draw=False).mouth for _ in range(s.ready())])


def _audio_model(precision: str):
    from toonsync.runtime.streaming import AudioModel

    if _MODEL.get(precision) is None:
        _MODEL[precision] = AudioModel("cpu", precision)
    return _MODEL[precision]


_MODEL: dict = {}


def _mel(c) -> np.ndarray:
    return c.mel[: c.mouth.shape[0] * MELS_PER_FRAME]


def evaluate_store(test: Path, predict: Callable[[np.ndarray], np.ndarray]) -> tuple[dict, list, list]:
    """``predict`` (log-mel -> mouth) on every test clip of the corpus ``test``; metrics, predictions, clips."""
    preds, clips = [], []
    with ClipStore(test) as store:
        for cid in store.ids("test") or store.ids():
            c = store[cid]
            if c.mouth is None:
                continue
            preds.append(predict(c))
            clips.append(c)
    rep = lipsync_metrics(preds, clips)
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        groups.setdefault(f"{c.attrs.get('engine', '?')}", []).append(i)
    if len(groups) > 1:
        rep["by_engine"] = {
            g: lipsync_metrics([preds[i] for i in ix], [clips[i] for i in ix]) for g, ix in groups.items()
        }
    return rep, preds, clips


def plots(preds: list, clips: list, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(3, 1, figsize=(12, 7), sharey=True)
    for ax, i in zip(axes, np.linspace(0, len(clips) - 1, 3).astype(int)):
        c, p = clips[i], preds[i]
        t = np.arange(len(p)) / 25
        ax.plot(t, c.mouth[: len(p), 0], label="target (visemes + co-articulation)")
        ax.plot(t, p[:, 0], label="predicted")
        ax.set_title(
            f'{c.clip_id}: {c.attrs.get("engine")} {c.attrs.get("voice")} — "{c.attrs.get("text", "")[:60]}"',
            fontsize=8,
        )
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    paths.append(out_dir / "mouth_opening.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    ref = np.concatenate([viseme_classes(c.mouth[: len(p)]) for p, c in zip(preds, clips)])
    got = np.concatenate([viseme_classes(p) for p in preds])
    labels = [v for v in VISEMES if v != "X"]
    cm = np.array([[np.sum((ref == a) & (got == b)) for b in labels] for a in labels], float)
    cm /= np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted viseme")
    ax.set_ylabel("target viseme")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "viseme_confusion.png")
    fig.savefig(paths[-1], dpi=80)
    plt.close(fig)
    return paths


def run_eval(test: Path, out_dir: Path, checkpoint: Path | None = None, precision: str = "fp32") -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    if checkpoint:
        from .train_audio2motion import load_checkpoint, predict_clip

        if (checkpoint.parent / "motion.pt").exists():  # a `toonsync train motion` run: speech model + decoder
            from toonsync.runtime.motion import speech_energy

            from .train_motion import load_run
            from .train_motion import predict_clip as predict_motion

            motion = load_run(checkpoint.parent)
            rep, preds, clips = evaluate_store(
                test, lambda c: predict_motion(motion, _mel(c), speech_energy(c.audio, c.mouth.shape[0]))["mouth"]
            )
        else:
            model = load_checkpoint(checkpoint)
            rep, preds, clips = evaluate_store(test, lambda c: predict_clip(model, _mel(c)))
        rep["model"] = str(checkpoint)
    else:  # the runtime as users get it (the top-level figures), and the graphs alone for comparison
        rep, preds, clips = evaluate_store(
            test,
            lambda c: predict_stream(c.audio, precision) if c.audio is not None else predict_onnx(_mel(c), precision),
        )
        dec = _audio_model(precision).decoder is not None
        rep["model"] = (
            f"shipped audio2motion.{precision}.onnx"
            + (" + motion decoder (motion.onnx)" if dec else "")
            + " through runtime.Stream (with its silence gate)"
        )
        graph, _, _ = evaluate_store(test, lambda c: predict_onnx(_mel(c), precision, c.audio))
        rep["graph_only"] = {k: v for k, v in graph.items() if k != "by_engine"}
        if dec:
            head, _, _ = evaluate_store(test, lambda c: predict_onnx(_mel(c), precision, c.audio, decoder=False))
            rep["audio_head_only"] = {k: v for k, v in head.items() if k != "by_engine"}
    rep["test_data"] = str(test)
    rep["plots"] = [str(p) for p in plots(preds, clips, out_dir)]
    with atomic_path(out_dir / "eval.json") as tmp:
        tmp.write_text(json.dumps(rep, indent=2) + "\n")
    log.info("eval: %s", {k: v for k, v in rep.items() if k not in ("by_engine", "plots")})
    return rep


SUMMARY_KEYS = (
    "clips",
    "r_target",
    "viseme_acc",
    "silence_closed",
    "silence_closed_frames",
    "silent_frames",
    "onset_lag_ms",
    "drift_pct_iod",
    "mse",
)
