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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from toonsync.runtime.emotion import NEU, arousal_mass
from toonsync.runtime.mel import FPS, HOP, MELS_PER_FRAME, N_MELS, SAMPLE_RATE, SAMPLES_PER_FRAME, log_mel
from toonsync.runtime.motion import MotionNoise, speech_energy
from toonsync.training.dataset import ClipStore

from . import distributed
from .evaluate import lipsync_metrics
from .models.audio2motion import Audio2Motion, Audio2MotionConfig
from .models.encoder import load_model_checkpoint
from .models.motion_decoder import MotionDecoder, MotionDecoderConfig
from .recording import degrade
from .train_audio2motion import SILENT_MEL, TrainConfig, describe_train_data, spec_augment
from .visemes import Phone, lip_contacts

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


class TrainClip(NamedTuple):
    """One clip as training samples it: mel [4T, 80], mouth targets [T, 3], speech energy [T] (0..1), whether it
    is flat non-speech, its audio [T * 640] and the frames of a lip contact [T] (bool)."""

    mel: np.ndarray
    mouth: np.ndarray
    energy: np.ndarray
    flat: bool
    audio: np.ndarray
    contact: np.ndarray


def contact_frames(phones: np.ndarray | None, n: int) -> np.ndarray:
    """[n] bool: the 25 fps frames of a lip contact (P/B/M closures, F/V tucks; ``visemes.lip_contacts``) of a
    clip store's phones."""
    out = np.zeros(n, bool)
    if phones is not None:
        timed = [Phone(bytes(lab).decode(), float(a), float(b)) for lab, a, b in phones]
        for _key, idx in lip_contacts(timed, n, FPS):
            out[idx] = True
    return out


def load_clips(path: Path, split: str | None = None) -> list[TrainClip]:
    """Every clip with mouth targets and audio, as ``TrainClip``."""
    out = []
    with ClipStore(path) as store:
        for cid in store.ids(split):
            c = store[cid]
            if c.mouth is None or c.mel is None or c.audio is None:
                continue
            t = min(c.mouth.shape[0], c.mel.shape[0] // MELS_PER_FRAME)
            out.append(
                TrainClip(
                    c.mel[: t * MELS_PER_FRAME].astype(np.float32),
                    c.mouth[:t].astype(np.float32),
                    speech_energy(c.audio, t),
                    c.attrs.get("engine") == "synthetic",
                    c.audio[: t * SAMPLES_PER_FRAME].astype(np.float32),
                    contact_frames(c.phones, t),
                )
            )
    return out


ROOM_CONTEXT = SAMPLE_RATE  # audio heard before a re-recorded crop (the room's reverb and the mel's window)


def rerecorded_mel(
    clip: TrainClip, start: int, frames: int, rng: np.random.Generator, murmur: np.ndarray
) -> np.ndarray:
    """The log-mel [4 * frames, 80] of ``frames`` video frames from ``start``, heard through a random recording
    chain (``training.recording.degrade``) with up to a second of the clip before it, computed by the runtime's
    own ``log_mel``."""
    s0 = start * SAMPLES_PER_FRAME
    ctx = min(ROOM_CONTEXT, s0)
    seg = clip.audio[s0 - ctx : s0 + frames * SAMPLES_PER_FRAME]
    return log_mel(degrade(seg, rng, murmur))[ctx // HOP :]


def random_emotion(n: int, rng: np.random.Generator) -> np.ndarray:
    """An emotion track [n, 6] for one crop: mostly neutral or one class (soft), sometimes a mixture,
    sometimes switching class at a random frame -- the decoder must follow any user override."""

    def one() -> np.ndarray:
        u = rng.random()
        if u < 0.4:
            k = NEU
        elif u < 0.8:
            k = int(rng.integers(6))
        else:
            return rng.dirichlet(np.full(6, 0.5)).astype(np.float32)
        v = np.full(6, (1 - 0.9) / 5, np.float32) if rng.random() < 0.5 else np.zeros(6, np.float32)
        v[k] = 1.0 - v.sum() + v[k] if v.sum() else 1.0
        return v

    a = np.repeat(one()[None], n, 0)
    if rng.random() < 0.3:
        a[int(rng.integers(1, max(2, n))) :] = one()
    return a


def sample_batch(
    clips: Sequence[Any], cfg: MotionTrainConfig, lookahead: int, rng: np.random.Generator, recorded: Sequence = ()
) -> tuple:
    """Random crops (VTLP warp + gain) -> mel [B, 4T, 80], aux mouth targets [B, T, 3] (shifted by the
    look-ahead), emotion/noise inputs and mouth/pose/blink targets for the decoder's T - L frames. With
    ``recorded`` clips (people, force-aligned), ``cfg.recorded_share`` of the crops come from them, each clip
    chosen by its length; they are already real recordings, so never heard through the recording chain."""
    T, L, B = cfg.crop_frames, lookahead, cfg.batch
    D = T - L
    mels = np.full((B, T * MELS_PER_FRAME, N_MELS), SILENT_MEL, np.float32)
    aux = np.zeros((B, T, 3), np.float32)
    mouth = np.zeros((B, D, 3), np.float32)
    emo = np.zeros((B, D, 6), np.float32)
    noise = np.zeros((B, D, 6), np.float32)
    pose = np.zeros((B, D, 3), np.float32)
    blink = np.zeros((B, D), np.float32)
    weight = np.ones(B, np.float32)
    frame_w = np.ones((B, T), np.float32)  # per frame of the aux targets (contacts weigh more); the decoder's: L..T
    bins = np.arange(N_MELS, dtype=np.float32)
    flat = [i for i, c in enumerate(clips) if c.flat] if cfg.flat_share > 0 else []
    rec_p = np.array([c.mouth.shape[0] for c in recorded], np.float64)
    for b in range(B):
        rec = bool(len(recorded)) and cfg.recorded_share > 0 and rng.random() < cfg.recorded_share
        extra = not rec and bool(flat) and rng.random() < cfg.flat_share
        if rec:
            clip = recorded[int(rng.choice(len(recorded), p=rec_p / rec_p.sum()))]
        else:
            clip = clips[flat[rng.integers(len(flat))] if extra else rng.integers(len(clips))]
        mel, mo, en, is_flat = clip.mel, clip.mouth, clip.energy, clip.flat
        weight[b] = cfg.flat_weight if is_flat else 1.0
        n = mo.shape[0]
        s = 0 if extra and rng.random() < 0.5 else int(rng.integers(0, max(1, n - T + L)))
        if not is_flat and not rec and rng.random() < cfg.real_share:
            m = rerecorded_mel(clip, s, min(T, n - s), rng, clips[rng.integers(len(clips))].audio)
        elif extra and s == 0 and rng.random() < 0.5:  # audio that starts mid-sound: the zero state at its onset
            s = int(np.argmax(en > 0.05)) if (en > 0.05).any() else 0
            m = log_mel(clip.audio[s * SAMPLES_PER_FRAME : (s + T) * SAMPLES_PER_FRAME])
        else:
            m = mel[s * MELS_PER_FRAME : (s + T) * MELS_PER_FRAME]
        if cfg.warp > 0:  # stretch the mel axis about 0 (a different vocal tract length)
            src = np.clip(bins / float(rng.uniform(1 - cfg.warp, 1 + cfg.warp)), 0, N_MELS - 1)
            i0 = np.floor(src).astype(int)
            i1 = np.minimum(i0 + 1, N_MELS - 1)
            f = src - i0
            m = m[:, i0] * (1 - f) + m[:, i1] * f
        if cfg.gain_db > 0:
            m = np.maximum(m + float(rng.uniform(-cfg.gain_db, cfg.gain_db)) / 40.0, SILENT_MEL)
        mels[b, : m.shape[0]] = m
        spec_augment(mels[b], cfg, rng)
        shifted = np.concatenate([np.zeros((L, 3), np.float32), mo])[s : s + T]
        aux[b, : shifted.shape[0]] = shifted
        closed = np.concatenate([np.zeros(L, bool), clip.contact])[s : s + T]
        frame_w[b, : closed.size] += cfg.contact_w * closed
        tgt = mo[s : s + D]
        mouth[b, : tgt.shape[0]] = tgt
        e = np.zeros(D, np.float32)
        e[: min(D, n - s)] = en[s : s + D]
        emo[b] = random_emotion(D, rng)
        proc = MotionNoise(int(rng.integers(2**31)))
        pose[b], blink[b] = proc.step(e, arousal_mass(emo[b]))
        noise[b] = proc.features
    return tuple(torch.from_numpy(x) for x in (mels, aux, mouth, emo, noise, pose, blink, weight, frame_w))


def neutral_inputs(n: int, energy: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Emotion (neutral), noise embedding and the procedural pose/blink of an n-frame clip."""
    emo = np.zeros((n, 6), np.float32)
    emo[:, NEU] = 1.0
    proc = MotionNoise(seed)
    pose, blink = proc.step(energy[:n], arousal_mass(emo))
    return emo, proc.features, pose, blink


@torch.no_grad()
def predict_clip(model: MotionModel, mel: np.ndarray, energy: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Offline, as the runtime streams it: pad ``lookahead`` silent frames, the first L speech embeddings
    describe no frame; the decoder starts from its zero cache at frame 0. -> mouth/pose/blink [T, ...]."""
    L = model.cfg.audio.lookahead
    dev = next(model.parameters()).device
    pad = np.full((L * MELS_PER_FRAME, N_MELS), SILENT_MEL, np.float32)
    x = torch.from_numpy(np.concatenate([mel, pad]))[None].to(dev)
    aux, _l, emb, *_ = model.audio(x, *(s.to(dev) for s in model.audio.initial_state(1)))
    n = emb.shape[1] - L
    emo, feats, tpose, tblink = neutral_inputs(n, energy, seed)
    t = lambda a: torch.from_numpy(a)[None].to(dev)  # noqa: E731
    mouth, _lm, pose, blink, _c = model.decoder(
        emb[:, L:], aux[:, L:], t(emo), t(feats), model.decoder.initial_state(1).to(dev)
    )
    return {
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
    mel, aux_t, mouth_t, emo, noise, pose_t, blink_t, rows, frame_w = micro
    share = mel.shape[0] / batch[0].shape[0]
    aux, (mouth, _lm, pose, blink, _c) = model(mel, emo, noise)
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
        if getattr(model.audio.norm, "init_from", None) is not None:  # input statistics of the corpus
            sample = np.concatenate([clips[i].mel for i in rng.permutation(len(clips))[:64]])
            model.audio.norm.init_from(torch.from_numpy(sample))
        if init is not None:  # fine-tune from a previous run's checkpoints (their configs win)
            model.audio = load_model_checkpoint(init / "audio2motion.pt", Audio2Motion, Audio2MotionConfig)
            if init_decoder:
                model.decoder = load_model_checkpoint(init / "motion.pt", MotionDecoder, MotionDecoderConfig)
            model.cfg = mcfg = MotionConfig(model.audio.cfg, model.decoder.cfg)
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
                 "recorded_share"):  # fmt: skip
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
        recorded_share=a.recorded_share,
        freeze_audio=a.freeze_audio,
        accum=a.accum,
        device=a.device,
        amp=a.amp,
    )
    mcfg = MotionConfig(
        Audio2MotionConfig(norm="affine", hidden=a.hidden, channels=a.channels),
        MotionDecoderConfig(
            speech_dim=a.hidden, d_model=a.d_model, layers=a.layers, window=a.window, residual=not a.no_residual
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
