"""The motion model's training data: clips of an HDF5 clip store as training samples them (``TrainClip``) and the
random crops of a batch (``sample_batch``): warped, level-changed, some heard through a recording chain, some
from recordings of people, with emotion/noise inputs and the procedural pose/blink targets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from toonsync.runtime.emotion import NEU, arousal_mass
from toonsync.runtime.mel import FPS, HOP, MELS_PER_FRAME, N_MELS, SAMPLE_RATE, SAMPLES_PER_FRAME, log_mel
from toonsync.runtime.motion import MotionNoise, speech_energy
from toonsync.training.dataset import ClipStore

from .recording import degrade
from .train_audio2motion import SILENT_MEL, spec_augment
from .visemes import Phone, closed_frames, lip_contacts

if TYPE_CHECKING:
    from .train_motion import MotionTrainConfig


class TrainClip(NamedTuple):
    """One clip as training samples it: mel [4T, 80], mouth targets [T, 3], speech energy [T] (0..1), whether it
    is flat non-speech, its audio [T * 640], the frames of a lip contact [T] (bool) and whether the lips are shut
    at each frame [T] (``visemes.closed_frames``: 1 shut, 0 not, -1 unknown: a speech clip without phones)."""

    mel: np.ndarray
    mouth: np.ndarray
    energy: np.ndarray
    flat: bool
    audio: np.ndarray
    contact: np.ndarray
    shut: np.ndarray | None = None  # None: unknown (the closure head does not learn from the clip)


def shut_frames(phones: np.ndarray | None, n: int, flat: bool) -> np.ndarray:
    """[n] float32 closure-head targets of a clip store's clip: 1 where the lips are shut, 0 where not, -1 where
    unknown (a speech clip without phone timings); flat non-speech is shut throughout."""
    if flat:
        return np.ones(n, np.float32)
    if phones is None:
        return np.full(n, -1.0, np.float32)
    timed = [Phone(bytes(lab).decode(), float(a), float(b)) for lab, a, b in phones]
    return closed_frames(timed, n, FPS).astype(np.float32)


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
                    shut_frames(c.phones, t, c.attrs.get("engine") == "synthetic"),
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
    shut = np.ones((B, D), np.float32)  # past a clip's end the crop is silent: shut
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
        shut[b, : tgt.shape[0]] = -1.0 if clip.shut is None else clip.shut[s : s + D]
        e = np.zeros(D, np.float32)
        e[: min(D, n - s)] = en[s : s + D]
        emo[b] = random_emotion(D, rng)
        proc = MotionNoise(int(rng.integers(2**31)))
        pose[b], blink[b] = proc.step(e, arousal_mass(emo[b]))
        noise[b] = proc.features
    return tuple(torch.from_numpy(x) for x in (mels, aux, mouth, emo, noise, pose, blink, weight, frame_w, shut))


def neutral_inputs(n: int, energy: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Emotion (neutral), noise embedding and the procedural pose/blink of an n-frame clip."""
    emo = np.zeros((n, 6), np.float32)
    emo[:, NEU] = 1.0
    proc = MotionNoise(seed)
    pose, blink = proc.step(energy[:n], arousal_mass(emo))
    return emo, proc.features, pose, blink
