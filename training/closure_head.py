"""Fit the motion decoder's closure head on a trained motion model, the rest left as it is.

    python -m toonsync.training.closure_head --init checkpoints --train corpus/train.h5 \
        --recorded corpus/recorded.h5 -o runs/closure

The head (``MotionDecoderConfig.closure``) reads the decoder's speech inputs (the audio model's speech embedding
and mouth) and gives the probability that the lips are shut at a frame: a P, B or M, or a pause
(``visemes.closed_frames``). The runtime draws the mouth with it (``runtime.mouth.shape_closures``): shut where the
head is sure, parted on the other spoken frames.

Every clip of the given stores (a TTS store and, optionally, recordings of people) is run through the frozen
model as the runtime hears it (no augmentation; ``train_motion.predict_clip``), and the head is a logistic
regression on those inputs, fitted on the whole set at once. A head trained by SGD inside the augmented training
loop instead (on the decoder's last hidden state, the rest frozen) ranked the closures of the validation
recordings worse than the mouth opening itself did; this fit ranks them better (docs/motion.md).
``train_motion --closure`` trains the head jointly with the rest (a model trained from scratch); a fine-tune
without ``--closure`` leaves it as it is, and it is refitted here afterwards.

Writes ``motion.pt`` (the decoder with the head) and ``motion.train.json`` (the run's info plus the fit's) and
copies ``audio2motion.pt``: the pair keeps its ``run_id``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from toonsync.runtime.motion import speech_energy

from .dataset import ClipStore
from .distributed import DistContext, save_run
from .train_motion import MELS_PER_FRAME, load_run, predict_clip, with_closure_head
from .visemes import Phone, closed_frames

log = logging.getLogger(__name__)


def store_frames(model, path: Path, split: str | None = "train") -> tuple[np.ndarray, np.ndarray]:
    """The closure head's inputs [N, S + 3] (speech embedding + the audio model's mouth) and whether the lips are
    shut [N] (bool) at every frame of the clips of a store's ``split`` (None: all) that have phone timings
    (non-speech clips: shut throughout)."""
    xs, ys = [], []
    with ClipStore(path) as store:
        for cid in store.ids(split):
            c = store[cid]
            if c.mel is None or c.audio is None or c.mouth is None:
                continue
            flat = c.attrs.get("engine") == "synthetic"
            if c.phones is None and not flat:
                continue
            n = min(c.mouth.shape[0], c.mel.shape[0] // MELS_PER_FRAME)
            out = predict_clip(model, c.mel[: n * MELS_PER_FRAME], speech_energy(c.audio, n))
            inputs = closure_inputs(model, out)[:n]
            if flat:
                shut = np.ones(len(inputs), bool)
            else:
                timed = [Phone(bytes(lab).decode(), float(a), float(b)) for lab, a, b in c.phones]
                shut = closed_frames(timed, len(inputs))
            xs.append(inputs)
            ys.append(shut)
    if not xs:
        raise ValueError(f"{path}: no clip with phone timings")
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def closure_inputs(model, out: dict) -> np.ndarray:
    """What the closure head reads, from a ``predict_clip`` result: the speech embedding (+ the audio model's
    mouth, residual decoders)."""
    return np.concatenate([out["speech"], out["aux"]], 1) if model.decoder.cfg.residual else out["speech"]


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 1500, weight_decay: float = 1e-4) -> tuple:
    """Logistic regression of ``y`` [N] on ``x`` [N, d], full batch (Adam on standardised features, folded back):
    -> (weight [d], bias) on the raw features."""
    torch.manual_seed(0)
    X = torch.from_numpy(x)
    Y = torch.from_numpy(y.astype(np.float32))
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Z = (X - mu) / sd
    lin = torch.nn.Linear(x.shape[1], 1)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(Z)[:, 0], Y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        w = lin.weight[0] / sd
        b = lin.bias[0] - (w * mu).sum()
    return w.numpy(), float(b)


def ranking(p: np.ndarray, shut: np.ndarray, recall: float = 0.65) -> dict:
    """How well probabilities ``p`` find the shut frames: precision / recall at 0.5, and the precision where the
    most probable frames first reach ``recall`` of them."""
    said = p >= 0.5
    order = np.argsort(-p, kind="stable")
    hits = np.cumsum(shut[order])
    k = int(np.searchsorted(hits, recall * shut.sum()))
    return {
        "frames": int(p.size),
        "shut_share": round(float(shut.mean()), 4),
        "precision_at_0.5": round(float((said & shut).sum() / max(said.sum(), 1)), 4),
        "recall_at_0.5": round(float((said & shut).sum() / max(shut.sum(), 1)), 4),
        f"precision_at_recall_{recall}": round(float(hits[min(k, p.size - 1)] / (min(k, p.size - 1) + 1)), 4),
    }


def _prob(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ w + b)))


def fit_closure_head(
    init: Path, stores: list[Path], out_dir: Path, test: Path | None = None, steps: int = 1500
) -> dict:
    """Fit the head on the clips of ``stores`` with the model of run directory ``init`` (any decoder: one without
    a head gets one) and write the run to ``out_dir``; ``test``: a store to report the fit's ranking on."""
    t0 = time.time()
    model = load_run(init)
    model.decoder = with_closure_head(model.decoder).eval()
    parts = [store_frames(model, p) for p in stores]
    x, y = np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
    log.info("closure head: %d frames from %d stores, %.1f %% shut", y.size, len(stores), 100 * y.mean())
    w, b = fit_logistic(x, y, steps)
    with torch.no_grad():
        model.decoder.closure_head.weight.copy_(torch.from_numpy(w)[None])
        model.decoder.closure_head.bias.fill_(b)
    fit = {
        "method": "logistic regression on the speech embedding and the audio model's mouth (full batch, Adam, "
        f"{steps} steps), clips heard as the runtime hears them",
        "stores": [str(p) for p in stores],
        "train": ranking(_prob(x, w, b), y),
        "seconds": round(time.time() - t0, 1),
    }
    if test is not None:
        tx, ty = store_frames(model, test, None)
        fit["test"] = {"store": str(test), **ranking(_prob(tx, w, b), ty)}
    src = torch.load(init / "motion.pt", map_location="cpu", weights_only=False)
    info = {**src.get("info", {}), "closure_head": {**fit, "init": str(init)}}
    out_dir.mkdir(parents=True, exist_ok=True)
    dec = model.decoder
    save_run(
        DistContext(),
        out_dir,
        "motion",
        {"config": dec.cfg.to_dict(), "state_dict": dec.state_dict(), "info": info},
        info,
    )
    for name in ("audio2motion.pt", "audio2motion.train.json"):
        if (init / name).exists() and (init / name).resolve() != (out_dir / name).resolve():
            shutil.copy2(init / name, out_dir / name)
    log.info("closure head fitted: %s", fit)
    return info


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m toonsync.training.closure_head",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--init", type=Path, required=True, help="run directory: audio2motion.pt + motion.pt")
    p.add_argument("--train", type=Path, required=True, help="TTS clip store (toonsync corpus build)")
    p.add_argument("--recorded", type=Path, help="clip store of recordings of people (tools.recordings build)")
    p.add_argument("--test", type=Path, help="a store to report the fitted head's ranking on")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("-o", "--out", type=Path, default=Path("runs/closure"))
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stores = [a.train] + ([a.recorded] if a.recorded else [])
    fit_closure_head(a.init, stores, a.out, a.test, a.steps)


if __name__ == "__main__":
    main()
