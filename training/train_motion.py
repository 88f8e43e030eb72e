"""Train the full motion model: speech embedding (causal CNN + LSTM over log-mel, ``Audio2Motion``) and the
transformer motion decoder (``MotionDecoder``) on top of it, jointly, on an HDF5 clip store.

    toonsync train motion --train corpus/train.h5 --test corpus/val.h5 -o runs/motion --steps 20000
    python -m training.train_motion --train corpus/train.h5 --test corpus/val.h5 --resume runs/motion

Targets: the mouth from the corpus's phone timings (co-articulated visemes, real); head pose and blinks
from the procedural prior (``runtime.motion.MotionNoise`` driven by the very noise embedding the decoder
sees, its sway scaled by the arousal of a random emotion input) -- there is no head-motion video
offline, so the decoder learns that prior; the mouth must stay the same whatever the emotion input.
The audio model's own mouth head keeps training as an auxiliary (weight ``aux``), so both graphs work.

Writes ``audio2motion.pt`` (the speech model, ``Audio2MotionConfig`` inside), ``motion.pt`` (the
decoder, ``MotionDecoderConfig`` inside), ``motion.train.json``, and every ``eval_every`` steps
``motion.resume.pt`` (weights, optimizer, schedule and every RNG: ``--resume`` continues bit-exactly).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from toonsync.runtime.mel import MELS_PER_FRAME, N_MELS
from toonsync.runtime.motion import speech_energy
from toonsync.training.dataset import ClipStore

from . import distributed
from .evaluate import lipsync_metrics
from .models.audio2motion import Audio2Motion, Audio2MotionConfig
from .models.encoder import load_model_checkpoint
from .models.motion_decoder import MotionDecoder, MotionDecoderConfig
from .motion_data import load_clips, neutral_inputs, sample_batch
from .train_audio2motion import SILENT_MEL, TrainConfig, describe_train_data

log = logging.getLogger(__name__)
MOUTH_W = (2.0, 1.0, 1.0)  # open counts double


@dataclass
class MotionTrainConfig(TrainConfig):
    """The speech model's training config (batch, crops, optimiser, SpecAugment, DDP) plus the decoder's."""

    steps: int = 20000
    lr: float = 2e-3
    eval_every: int = 1000
    aux: float = 0.5  # weight of the audio model's own mouth head
    vel: float = 2.0  # weight of the mouth velocity term
    pose_w: float = 0.5
    blink_w: float = 1.0
    warp: float = 0.1  # vocal-tract-length perturbation: mel axis stretched by 1 +- warp
    gain_db: float = 6.0  # random level change (+- dB; digital silence stays silent)
    flat_share: float = 0.0  # extra share of crops from flat non-speech clips, half of them from their onset
    flat_weight: float = 1.0  # mouth-loss weight of crops from flat non-speech clips (a hum must not open it)
    real_share: float = 0.0  # share of speech crops heard through a random recording chain (training.recording)
    contact_w: float = 0.0  # extra mouth-loss weight on frames of a lip contact (P, B, M closures; F, V tucks)
    closure_w: float = 1.0  # weight of the closure head's loss (binary cross-entropy; decoders with ``closure``)
    recorded_share: float = 0.0  # share of crops from recordings of people (``--recorded``), by their length
    freeze_audio: bool = False  # train the decoder only (the speech model, e.g. from --init, stays fixed)


@dataclass
class MotionConfig:
    """Both halves' configs, as stored in ``motion.train.json``."""

    audio: Audio2MotionConfig = field(default_factory=lambda: Audio2MotionConfig(norm="affine"))
    decoder: MotionDecoderConfig = field(default_factory=lambda: MotionDecoderConfig(residual=True))


class MotionModel(nn.Module):
    """Audio2Motion (speech embedding + auxiliary mouth head) -> MotionDecoder, for joint training."""

    def __init__(self, cfg: MotionConfig):
        super().__init__()
        self.cfg = cfg
        self.audio = Audio2Motion(cfg.audio)
        self.decoder = MotionDecoder(cfg.decoder)

    def forward(self, mel, emotion, noise):
        """mel [B, 4T, 80], emotion/noise [B, T - L, *] -> (aux mouth [B, T, 3], decoder outputs for the
        frames the last T - L steps describe), both from zero state (a random crop)."""
        B = mel.shape[0]
        dev = mel.device
        frozen = not any(p.requires_grad for p in self.audio.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            aux, _lms, emb, *_ = self.audio(mel, *(s.to(dev) for s in self.audio.initial_state(B)))
        L = self.cfg.audio.lookahead
        out = self.decoder(emb[:, L:], aux[:, L:], emotion, noise, self.decoder.initial_state(B).to(dev))
        return aux, out


@torch.no_grad()
def predict_clip(model: MotionModel, mel: np.ndarray, energy: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Offline, as the runtime streams it: pad ``lookahead`` silent frames, the first L speech embeddings
    describe no frame; the decoder starts from its zero cache at frame 0. -> mouth/pose/blink [T, ...], the
    speech embedding [T, S] and, with a closure head, ``closed`` [T] (its probability)."""
    L = model.cfg.audio.lookahead
    dev = next(model.parameters()).device
    pad = np.full((L * MELS_PER_FRAME, N_MELS), SILENT_MEL, np.float32)
    x = torch.from_numpy(np.concatenate([mel, pad]))[None].to(dev)
    aux, _l, emb, *_ = model.audio(x, *(s.to(dev) for s in model.audio.initial_state(1)))
    n = emb.shape[1] - L
    emo, feats, tpose, tblink = neutral_inputs(n, energy, seed)
    t = lambda a: torch.from_numpy(a)[None].to(dev)  # noqa: E731
    mouth, _lm, pose, blink, *closure, _c = model.decoder(
        emb[:, L:], aux[:, L:], t(emo), t(feats), model.decoder.initial_state(1).to(dev)
    )
    extra = {"closed": torch.sigmoid(closure[0][0]).cpu().numpy()} if closure else {}
    return {
        **extra,
        "speech": emb[0, L:].cpu().numpy(),
        "mouth": mouth[0].cpu().numpy(),
        "aux": aux[0, L:].cpu().numpy(),
        "pose": pose[0].cpu().numpy(),
        "blink": blink[0].cpu().numpy(),
        "pose_target": tpose,
        "blink_target": tblink,
    }


def evaluate(model: MotionModel, path: Path, split: str | None = None) -> dict:
    """Lip-sync metrics of the decoder's mouth (and of the audio model's own head, ``aux``), by engine, plus
    how closely pose/blink follow the procedural prior."""
    model.eval()
    preds, auxs, refs, pose_err, blink_err = [], [], [], [], []
    with ClipStore(path) as store:
        for cid in store.ids(split):
            c = store[cid]
            n = c.mouth.shape[0]
            p = predict_clip(model, c.mel[: n * MELS_PER_FRAME], speech_energy(c.audio, n))
            preds.append(p["mouth"])
            auxs.append(p["aux"])
            refs.append(c)
            pose_err.append(np.sqrt(((p["pose"] - p["pose_target"]) ** 2).mean()))
            blink_err.append(np.abs(p["blink"] - p["blink_target"]).mean())
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
    out["aux_head"] = lipsync_metrics(auxs, refs)
    out["pose_rmse_rad_vs_prior"] = round(float(np.mean(pose_err)), 5)
    out["blink_mae_vs_prior"] = round(float(np.mean(blink_err)), 5)
    return out


def _loss_terms(model, micro, batch, cfg: MotionTrainConfig):
    mel, aux_t, mouth_t, emo, noise, pose_t, blink_t, rows, frame_w, shut_t = micro
    share = mel.shape[0] / batch[0].shape[0]
    aux, (mouth, _lm, pose, blink, *closure, _c) = model(mel, emo, noise)
    w = torch.tensor(MOUTH_W, device=mel.device) * rows[:, None, None]  # per parameter x per crop
    L = aux_t.shape[1] - mouth_t.shape[1]

    def mouth_loss(p, t, fw):  # fw [B, frames]: lip contacts weigh more
        vel = (((p[:, 1:] - p[:, :-1]) - (t[:, 1:] - t[:, :-1])).pow(2) * rows[:, None, None]).mean()
        return (((p - t) ** 2) * w * fw[..., None]).mean() + cfg.vel * vel

    terms = {
        "mouth": mouth_loss(mouth, mouth_t, frame_w[:, L:]),
        "aux": mouth_loss(aux, aux_t, frame_w),
        "pose": (((pose - pose_t) / MotionDecoder.POSE_SCALE) ** 2).mean(),
        "blink": ((blink - blink_t) ** 2).mean(),
    }
    total = terms["mouth"] + cfg.aux * terms["aux"] + cfg.pose_w * terms["pose"] + cfg.blink_w * terms["blink"]
    if closure and cfg.closure_w > 0:  # frames of unknown closure (-1) do not count
        known = (shut_t >= 0).float()
        bce = F.binary_cross_entropy_with_logits(closure[0], shut_t.clamp(min=0.0), reduction="none")
        terms["closed"] = (bce * known).sum() / known.sum().clamp(min=1.0)
        total = total + cfg.closure_w * terms["closed"]
    return total * share, {k: v * share for k, v in terms.items()}


def _resume_state(model, opt, sched, rng, step, history) -> dict:
    return {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "sched": sched.state_dict(),
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "step": step,
        "history": history,
    }


def train(
    train_path: Path,
    test_path: Path | None,
    out_dir: Path,
    mcfg: MotionConfig,
    tcfg: MotionTrainConfig,
    resume: Path | None = None,
    init: Path | None = None,
    stop_after: int | None = None,
    init_decoder: bool = True,
    recorded_path: Path | None = None,
) -> dict | None:
    """Train jointly; rank 0 writes the checkpoints (module docstring) and returns the report.
    ``init``: start from a run directory's checkpoints (their configs win; only its speech model when not
    ``init_decoder``: a new decoder of ``mcfg.decoder`` on a trained speech model). ``stop_after``: stop
    once that many steps are done (an interruption: only ``motion.resume.pt`` is
    written, at the last ``eval_every`` step; returns None). ``recorded_path``: a clip store of recordings of
    people (``tools.recordings build``) that ``tcfg.recorded_share`` of the crops come from."""
    with distributed.run_session(tcfg) as (ctx, rng):
        clips = load_clips(train_path, "train")
        train_data = describe_train_data(clips, train_path, "mouth targets and audio")
        recorded = load_clips(recorded_path, "train") if recorded_path is not None else []
        if recorded:
            train_data["recorded"] = describe_train_data(recorded, recorded_path, "recordings of people")
        model = MotionModel(mcfg)
        want_closure = mcfg.decoder.closure
        if getattr(model.audio.norm, "init_from", None) is not None:  # input statistics of the corpus
            sample = np.concatenate([clips[i].mel for i in rng.permutation(len(clips))[:64]])
            model.audio.norm.init_from(torch.from_numpy(sample))
        if init is not None:  # fine-tune from a previous run's checkpoints (their configs win)
            model.audio = load_model_checkpoint(init / "audio2motion.pt", Audio2Motion, Audio2MotionConfig)
            if init_decoder:
                model.decoder = load_model_checkpoint(init / "motion.pt", MotionDecoder, MotionDecoderConfig)
            if want_closure and not model.decoder.cfg.closure:  # a new closure head on the trained decoder
                model.decoder = with_closure_head(model.decoder)
            model.cfg = mcfg = MotionConfig(model.audio.cfg, model.decoder.cfg)
        if mcfg.decoder.closure and tcfg.closure_w <= 0:
            log.warning("this run does not train the closure head: refit it (python -m toonsync.training.closure_head)")
        if tcfg.freeze_audio:
            model.audio.requires_grad_(False)
        model.to(ctx.device)
        wrapped = distributed.wrap(model, ctx)
        opt = torch.optim.AdamW(
            [p for p in wrapped.parameters() if p.requires_grad], lr=tcfg.lr, weight_decay=tcfg.weight_decay
        )
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tcfg.lr, total_steps=tcfg.steps, pct_start=0.1)
        trainer = distributed.Trainer(wrapped, opt, sched, ctx, accum=tcfg.accum, amp=tcfg.amp)
        start, history = 0, []
        resume_file = (resume / "motion.resume.pt") if resume is not None and resume.is_dir() else resume
        if resume_file is not None:
            st = torch.load(resume_file, map_location=ctx.device, weights_only=False)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            rng.bit_generator.state = st["rng"]
            torch.set_rng_state(st["torch_rng"])
            start, history = int(st["step"]), list(st["history"])
            log.info("resumed %s at step %d", resume_file, start)
        t0 = time.time()
        L = mcfg.audio.lookahead
        for step in distributed.progress(
            range(start, tcfg.steps), ctx, desc="motion", mininterval=5, initial=start, total=tcfg.steps
        ):
            batch = sample_batch(clips, tcfg, L, rng, recorded)
            terms = trainer.step(batch, lambda m, mb, b: _loss_terms(m, mb, b, tcfg))
            if (step + 1) % tcfg.eval_every == 0 or step + 1 == tcfg.steps:
                terms = distributed.reduce_sum(terms, ctx)
                if ctx.is_main:
                    rec = {
                        "step": step + 1,
                        **{k: round(v, 6) for k, v in terms.items()},
                        "seconds": round(time.time() - t0, 1),
                    }
                    if test_path is not None:
                        ev = evaluate(model, test_path)
                        rec.update({k: v for k, v in ev.items() if k in ("r_target", "viseme_acc", "silence_closed")})
                        rec["aux_r_target"] = ev["aux_head"]["r_target"]
                    history.append(rec)
                    log.info("%s", rec)
                    out_dir.mkdir(parents=True, exist_ok=True)
                    tmp = out_dir / "motion.resume.pt.tmp"
                    torch.save(_resume_state(model, opt, sched, rng, step + 1, history), tmp)
                    tmp.replace(out_dir / "motion.resume.pt")
            if stop_after is not None and step + 1 >= stop_after:
                log.info("stopped after step %d (resume with --resume %s)", step + 1, out_dir)
                return None
        if not ctx.is_main:
            return None
        train_seconds = time.time() - t0
        metrics = evaluate(model, test_path) if test_path is not None else {}
        info = {
            "model": "motion",
            "config": {"audio": mcfg.audio.to_dict(), "decoder": mcfg.decoder.to_dict()},
            "train_config": asdict(tcfg),
            "distributed": ctx.describe(),
            "train_data": train_data,
            "init": str(init) if init else None,
            "init_decoder": bool(init) and init_decoder,
            "resumed_from": str(resume_file) if resume_file else None,
            "eval_data": str(test_path) if test_path else None,
            "targets": {
                "mouth": "phone-timed co-articulated visemes of the corpus",
                "pose_blink": "procedural prior (runtime.motion.MotionNoise) on the same noise embedding",
            },
        }
        model.cpu()
        info["run_id"] = run_id(model.audio)
        info = distributed.finish_run(
            ctx,
            out_dir,
            "motion",
            model.decoder,
            mcfg.decoder.to_dict(),
            info,
            train_seconds=train_seconds,
            metrics=metrics,
            history=history,
        )
        save_speech_model(ctx, out_dir, model, info)
        return info


def with_closure_head(decoder: MotionDecoder) -> MotionDecoder:
    """The same decoder (weights copied) with a new closure head (``MotionDecoderConfig.closure``)."""
    out = MotionDecoder(replace(decoder.cfg, closure=True))
    missing, unexpected = out.load_state_dict(decoder.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("closure_head.") for k in missing), (missing, unexpected)
    return out.train(decoder.training)


def save_speech_model(ctx: distributed.DistContext, out_dir: Path, model: MotionModel, info: dict) -> None:
    """``audio2motion.pt`` of a motion run: the speech model with the run's info (metrics, run_id), its own
    parameter count."""
    a_info = {**info, "params": sum(p.numel() for p in model.audio.parameters())}
    distributed.save_run(
        ctx,
        out_dir,
        "audio2motion",
        {"config": model.cfg.audio.to_dict(), "state_dict": model.audio.state_dict(), "info": a_info},
        a_info,
    )


def run_id(audio: nn.Module) -> str:
    """Identifies the speech model a decoder was trained on (sha256 of its weights, 16 hex digits); both
    checkpoints and both exported sidecars carry it, and the runtime pairs the graphs only when equal."""
    import hashlib

    h = hashlib.sha256()
    for k, v in sorted(audio.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def load_run(run_dir: Path) -> MotionModel:
    """The joint model from a run directory (``audio2motion.pt`` + ``motion.pt``), eval mode."""
    audio = load_model_checkpoint(run_dir / "audio2motion.pt", Audio2Motion, Audio2MotionConfig)
    dec = load_model_checkpoint(run_dir / "motion.pt", MotionDecoder, MotionDecoderConfig)
    model = MotionModel(MotionConfig(audio.cfg, dec.cfg))
    model.audio, model.decoder = audio, dec
    return model.eval()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="toonsync train motion", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--train", type=Path, required=True, help="HDF5 clip store (toonsync corpus build)")
    p.add_argument("--test", type=Path, help="held-out/validation store evaluated every --eval-every steps")
    p.add_argument("-o", "--out", type=Path, default=Path("runs/motion"))
    d = MotionTrainConfig()
    for name in ("steps", "batch", "crop_frames", "seed", "threads", "eval_every"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("lr", "warp", "gain_db", "aux", "flat_share", "flat_weight", "real_share", "contact_w",
                 "recorded_share", "closure_w"):  # fmt: skip
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--recorded", type=Path, help="clip store of recordings of people (tools.recordings build)")
    p.add_argument("--resume", type=Path, help="continue a run: its directory or motion.resume.pt")
    p.add_argument("--init", type=Path, help="fine-tune from a run directory (audio2motion.pt + motion.pt)")
    p.add_argument("--d-model", type=int, default=MotionDecoderConfig.d_model)
    p.add_argument("--layers", type=int, default=MotionDecoderConfig.layers)
    p.add_argument("--window", type=int, default=MotionDecoderConfig.window)
    p.add_argument("--hidden", type=int, default=Audio2MotionConfig.hidden, help="speech embedding size")
    p.add_argument(
        "--no-residual",
        action="store_true",
        help="decoder predicts the mouth from scratch instead of correcting the speech model's",
    )
    p.add_argument(
        "--new-decoder",
        action="store_true",
        help="with --init: take only its speech model; the decoder starts fresh (--d-model ...)",
    )
    p.add_argument(
        "--freeze-audio",
        action="store_true",
        help="train the decoder only (the speech model from --init stays as it is)",
    )
    p.add_argument(
        "--closure",
        action="store_true",
        help="give the decoder a closure head (lips shut: P/B/M or a pause), which the runtime draws the mouth "
        "with (a trained model's: training.closure_head fits one)",
    )
    p.add_argument("--channels", type=int, default=Audio2MotionConfig.channels)
    distributed.add_arguments(p)
    return p


def run(a: argparse.Namespace) -> dict | None:
    if (a.recorded is None) != (a.recorded_share <= 0):
        raise SystemExit("--recorded STORE and --recorded-share F (> 0) go together")
    tcfg = MotionTrainConfig(
        steps=a.steps,
        batch=a.batch,
        crop_frames=a.crop_frames,
        seed=a.seed,
        threads=a.threads,
        eval_every=a.eval_every,
        lr=a.lr,
        warp=a.warp,
        gain_db=a.gain_db,
        aux=a.aux,
        flat_share=a.flat_share,
        flat_weight=a.flat_weight,
        real_share=a.real_share,
        contact_w=a.contact_w,
        closure_w=a.closure_w if a.closure else 0.0,  # a fitted head (training.closure_head) is left as it is
        recorded_share=a.recorded_share,
        freeze_audio=a.freeze_audio,
        accum=a.accum,
        device=a.device,
        amp=a.amp,
    )
    mcfg = MotionConfig(
        Audio2MotionConfig(norm="affine", hidden=a.hidden, channels=a.channels),
        MotionDecoderConfig(
            speech_dim=a.hidden,
            d_model=a.d_model,
            layers=a.layers,
            window=a.window,
            residual=not a.no_residual,
            closure=a.closure,
        ),
    )
    return train(
        a.train,
        a.test,
        a.out,
        mcfg,
        tcfg,
        resume=a.resume,
        init=a.init,
        init_decoder=not getattr(a, "new_decoder", False),
        recorded_path=a.recorded,
    )


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
