"""Synthetic lip-sync corpus: text-to-speech with phoneme timings -> HDF5 clips with mouth targets.

Engines: Debian's ``flite`` (voices slt, awb, rms, kal16), whose ``-psdur`` prints every phone's end time,
``espeak-ng`` through libespeak-ng's phoneme events (accents x variants; training.espeak) and ``festival`` (kal/ked
diphone, slt HTS voices; segment end times; training.festival, batched many utterances per process). Voices vary in
pitch (``int_f0_target_mean``) and rate (``duration_stretch``); audio is augmented with gain, noise and telephone
band-limiting. Sentences come from a seeded grammar; ~8% of training clips are flat non-speech (tones, hum,
stationary noise, DC, silence) with a closed mouth, so such audio gives a neutral face. Speed perturbation
(0.85-1.2x, which shifts pitch and formants like a different vocal tract) widens the voice range. Held out for
evaluation, never trained on: the whole ``festival`` engine (``HELDOUT_ENGINES``: a train build refuses it), flite's
whole ``rms`` voice and the espeak-ng accents/variants in ``_ESPEAK_TEST_*`` (``split="test"``).

    python -m training.corpus build -o corpus/train.h5 --minutes 20
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from toonsync.runtime.errors import InputError
from toonsync.runtime.mel import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from toonsync.runtime.progress import Progress
from toonsync.training.dataset import Clip, phones_array, write_clips

from . import festival
from .visemes import Phone, mouth_trajectory

log = logging.getLogger(__name__)

# "engine:voice". espeak-ng voices are "accent+variant"; held-out accents and variants never appear in training.
_ESPEAK_TRAIN_ACCENTS = ("en", "en-us", "en-gb-x-rp", "en-gb-x-gbclan", "en-us-nyc")
_ESPEAK_TRAIN_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "f1",
    "f2",
    "f3",
    "klatt",
    "klatt2",
    "klatt3",
    "Annie",
    "Andy",
    "belinda",
    "benjamin",
    "linda",
    "max",
    "paul",
    "steph",
    "travis",
)
_ESPEAK_TEST_ACCENTS = ("en-gb-scotland", "en-029", "en-gb-x-gbcwmd")
_ESPEAK_TEST_VARIANTS = ("f4", "f5", "m6", "m7", "shelby", "robert")
TRAIN_VOICES = ("flite:slt", "flite:awb", "flite:kal16") + tuple(
    f"espeak:{a}+{v}" for a in _ESPEAK_TRAIN_ACCENTS for v in _ESPEAK_TRAIN_VARIANTS
)
# festival is held out as a whole engine: its voices only ever appear in test builds
HELDOUT_ENGINES = ("festival",)
_FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
HELDOUT_VOICES = (
    ("flite:rms",)
    + tuple(f"espeak:{a}+{v}" for a in _ESPEAK_TEST_ACCENTS for v in _ESPEAK_TEST_VARIANTS)
    + tuple(f"festival:{v}" for v in _FESTIVAL_VOICES)
)
FESTIVAL_BATCH = 16  # utterances per festival process (start-up and voice loading paid once per batch)


class HeldOutError(InputError):
    """A held-out voice or engine was asked for in a training build."""


def check_split(voices: tuple[str, ...], split: str) -> None:
    """Refuse held-out voices and engines anywhere but the test split."""
    if split == "test":
        return
    bad = [v for v in voices if v in HELDOUT_VOICES or v.split(":", 1)[0] in HELDOUT_ENGINES]
    if bad:
        raise HeldOutError(
            f"{', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} held out for evaluation: "
            f"only split='test' may use them (held-out engines: {', '.join(HELDOUT_ENGINES)})"
        )


_SUBJ = [
    "the old farmer",
    "my little sister",
    "a quiet robot",
    "every teacher",
    "the happy baker",
    "our neighbour",
    "that tall wizard",
    "the brave pilot",
    "a curious child",
    "the museum guide",
    "her grandfather",
    "the young doctor",
    "a friendly shopkeeper",
    "this tiny puppy",
    "the busy mayor",
    "my best friend",
    "the weather reporter",
    "a famous painter",
    "the sleepy cat",
    "our football coach",
]
_VERB = [
    "bought",
    "painted",
    "found",
    "carried",
    "wanted",
    "cooked",
    "borrowed",
    "fixed",
    "loved",
    "threw",
    "measured",
    "showed us",
    "explained",
    "opened",
    "forgot",
    "watched",
    "pushed",
    "shared",
    "knew",
    "followed",
]
_OBJ = [
    "a bright yellow umbrella",
    "seven purple balloons",
    "the broken violin",
    "a map of the moon",
    "two cups of warm milk",
    "the heavy wooden box",
    "a basket of ripe peaches",
    "the shiny blue bicycle",
    "five fresh loaves of bread",
    "a very old photograph",
    "the quick brown fox",
    "a pile of smooth pebbles",
    "the secret garden gate",
    "three funny cartoons",
    "a thick woollen sweater",
    "the owl's feather",
    "a jar of thick honey",
    "the huge orange pumpkin",
    "a bowl of vegetable soup",
    "the fishing boat",
]
_TAIL = [
    "yesterday morning",
    "before the storm",
    "at the village fair",
    "under the bridge",
    "every Friday",
    "without a word",
    "in the big city",
    "near the beach",
    "after lunch",
    "with great joy",
    "on a cold evening",
    "by the window",
    "just for fun",
    "at half past nine",
    "all through the summer",
]
_EXTRA = [
    "Why do you think so?",
    "Wow, that is amazing!",
    "Please pass the pepper.",
    "No, thank you very much.",
    "Who will be there?",
    "I would love a cup of coffee.",
    "We should go home now.",
    "Oh my, how lovely!",
    "Maybe we can meet on Monday.",
    "Five, four, three, two, one, go!",
    "Really? I never knew that.",
    "Look at those beautiful mountains.",
    "She sells sea shells by the sea shore.",
    "Peter Piper picked a peck of pickled peppers.",
    "The rain in Spain stays mainly in the plain.",
]


def sentence(rng: np.random.Generator) -> str:
    """One sentence from the grammar (seeded)."""
    r = rng.random()
    if r < 0.15:
        return str(rng.choice(_EXTRA))
    s = f"{rng.choice(_SUBJ)} {rng.choice(_VERB)} {rng.choice(_OBJ)} {rng.choice(_TAIL)}"
    if r < 0.35:
        s += f", and {rng.choice(_SUBJ)} {rng.choice(_VERB)} {rng.choice(_OBJ)}"
    s = s[0].upper() + s[1:]
    return s + ("?" if r > 0.9 else ".")


@dataclass
class Job:
    """One utterance to synthesise into the corpus: its id, text, voice and split."""

    clip_id: str
    text: str
    voice: str
    split: str
    f0_mean: float | None
    stretch: float
    seed: int


def flite_available() -> bool:
    return shutil.which("flite") is not None


def available_voices(voices: tuple[str, ...]) -> tuple[str, ...]:
    """Drop voices whose engine (or festival voice package) is missing here, each reason logged
    once; error if none is left."""
    from .espeak import espeak_available

    engines = {v.split(":", 1)[0] for v in voices}
    have = {"flite": "flite" in engines and flite_available(), "espeak": "espeak" in engines and espeak_available()}
    for eng, pkg in (("flite", "flite"), ("espeak", "espeak-ng")):
        if eng in engines and not have[eng]:
            log.warning("%s is not installed: its voices are skipped (apt-get install %s)", eng, pkg)
    out, reasons = [], []
    for v in voices:
        eng, name = v.split(":", 1)
        if eng == "festival" and not festival.festival_available(name):
            reasons.append(festival.missing_reason(name))
        elif eng == "festival" or have.get(eng, False):
            out.append(v)
    for reason in dict.fromkeys(reasons):
        log.warning("%s: its clips are skipped", reason)
    if not out:
        raise RuntimeError("no TTS engine available: apt-get install flite espeak-ng festival festvox-kallpc16k")
    return tuple(out)


def synthesize_flite(
    text: str, voice: str, f0_mean: float | None = None, stretch: float = 1.0
) -> tuple[np.ndarray, list[Phone]]:
    """Run flite; return 16 kHz mono float32 audio and timed phones (rescaled to the wav length)."""
    with tempfile.TemporaryDirectory() as td:
        wav = os.path.join(td, "x.wav")
        cmd = ["flite", "-voice", voice, "-t", text, "-psdur", "-o", wav, "--setf", f"duration_stretch={stretch:.3f}"]
        if f0_mean:
            cmd += ["--setf", f"int_f0_target_mean={f0_mean:.0f}"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        audio, sr = sf.read(wav, dtype="float32")
    if sr != SAMPLE_RATE:
        from toonsync.runtime.audio_io import to_mono_16k

        audio = to_mono_16k(audio, sr)
    ends = []
    for tok in out.split():
        lab, _, t = tok.rpartition(":")
        if lab:
            ends.append((lab, float(t)))
    dur = audio.size / SAMPLE_RATE
    scale = dur / ends[-1][1] if ends and ends[-1][1] > 0 else 1.0  # kal16 reports ~5% long
    phones, start = [], 0.0
    for lab, end in ends:
        phones.append(Phone(lab, start * scale, end * scale))
        start = end
    return audio, phones


def augment(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Random gain, additive noise, telephone band-limiting; returns (audio, description)."""
    desc = []
    a = audio * float(10 ** rng.uniform(-0.6, 0.25))
    desc.append("gain")
    if rng.random() < 0.2:  # 8 kHz telephone: down-sample to 8 kHz and back
        from .recording import through_8k

        a = through_8k(a, SAMPLE_RATE)
        desc.append("tel8k")
    if rng.random() < 0.15:
        a = a + float(rng.uniform(-0.2, 0.2))
        desc.append("dc")
    if rng.random() < 0.2:  # a steady background (hum, tone, chord) under the speech
        kind = str(rng.choice(["hum", "tone", "chord"]))
        bed = nonspeech(kind, a.size / SAMPLE_RATE + 0.01, rng)[: a.size]
        a = a + bed * float(10 ** rng.uniform(-1.5, 0)) * (np.abs(a).max() + 1e-3) / (np.abs(bed).max() + 1e-9)
        desc.append(f"bed-{kind}")
    if rng.random() < 0.5:
        snr_db = rng.uniform(10, 35)
        p = float(np.mean(a**2)) + 1e-9
        a = a + rng.normal(0, np.sqrt(p / 10 ** (snr_db / 10)), a.size).astype(np.float32)
        desc.append(f"noise{snr_db:.0f}dB")
    return np.clip(a, -1, 1).astype(np.float32), "+".join(desc)


def speed_perturb(audio: np.ndarray, phones: list[Phone], factor: float) -> tuple[np.ndarray, list[Phone]]:
    """Play ``factor`` times faster: pitch and formants rise by ``factor``, timings shrink by it."""
    import soxr

    out = soxr.resample(audio, SAMPLE_RATE * factor, SAMPLE_RATE).astype(np.float32)
    return out, [Phone(p.label, p.start / factor, p.end / factor) for p in phones]


def _make(job: Job, synth: tuple[np.ndarray, list[Phone]] | None = None) -> Clip:
    """The clip of one job; ``synth``: its speech and phones when already synthesized (festival batches)."""
    rng = np.random.default_rng(job.seed)
    if job.voice == "nonspeech":
        audio = nonspeech(job.text, float(rng.uniform(1.5, 5.0)), rng)
        if rng.random() < 0.7:  # onsets out of digital silence: the mouth must not twitch when a hum starts
            audio = np.concatenate([np.zeros(int(rng.uniform(0.1, 1.0) * SAMPLE_RATE), np.float32), audio])
        n_frames = audio.size // SAMPLES_PER_FRAME
        return Clip(
            job.clip_id,
            audio=audio[: n_frames * SAMPLES_PER_FRAME],
            mouth=np.zeros((n_frames, 3), np.float32),
            phones=phones_array([("pau", 0.0, audio.size / SAMPLE_RATE)]),
            attrs=dict(
                text="",
                voice="nonspeech",
                engine="synthetic",
                split=job.split,
                source=f"nonspeech {job.text}",
                emotion="NEU",
            ),
        )
    audio, phones = synth or synthesize(job)
    aug = ""
    if job.split == "train":
        if rng.random() < 0.6:
            factor = float(rng.uniform(0.85, 1.2))
            audio, phones = speed_perturb(audio, phones, factor)
            aug = f"speed{factor:.2f}+"
        audio, desc = augment(audio, rng)
        aug += desc
    n_frames = audio.size // SAMPLES_PER_FRAME
    audio = audio[: n_frames * SAMPLES_PER_FRAME]
    mouth = mouth_trajectory(phones, n_frames, FPS)
    return Clip(
        job.clip_id,
        audio=audio,
        mouth=mouth,
        phones=phones_array([(p.label, p.start, p.end) for p in phones]),
        attrs=dict(
            text=job.text,
            voice=job.voice.split(":", 1)[1],
            engine=job.voice.split(":", 1)[0],
            split=job.split,
            source=f"{job.voice} stretch={job.stretch:.2f} f0={job.f0_mean or 0:.0f} {aug}",
            emotion="NEU",
        ),
    )


def _make_batch(jobs: list[Job]) -> list[Clip]:
    """Clips of ``jobs``; their festival ones are synthesized together, in one festival process."""
    fest = [j for j in jobs if j.voice.startswith("festival:")]
    pre: dict[str, tuple[np.ndarray, list[Phone]]] = {}
    if fest:
        pre = dict(zip((j.clip_id for j in fest), festival.synthesize_batch([_festival_request(j) for j in fest])))
    return [_make(j, pre.get(j.clip_id)) for j in jobs]


def _batches(jobs: list[Job], size: int = 8) -> list[list[Job]]:
    """Work units for the process pool: festival jobs grouped by voice, ``FESTIVAL_BATCH`` per
    festival process; the others ``size`` at a time."""
    fest: dict[str, list[Job]] = {}
    rest: list[Job] = []
    for j in jobs:
        (fest.setdefault(j.voice, []) if j.voice.startswith("festival:") else rest).append(j)
    out = [rest[i : i + size] for i in range(0, len(rest), size)]
    for group in fest.values():
        out += [group[i : i + FESTIVAL_BATCH] for i in range(0, len(group), FESTIVAL_BATCH)]
    return out


def _festival_request(job: Job) -> festival.Request:
    return festival.Request(job.text, job.voice.split(":", 1)[1], job.stretch, job.f0_mean)


def synthesize(job: Job) -> tuple[np.ndarray, list[Phone]]:
    """Dispatch to the job's engine; pitch and rate variation mapped onto each engine's controls."""
    engine, voice = job.voice.split(":", 1)
    if engine == "flite":
        return synthesize_flite(job.text, voice, job.f0_mean, job.stretch)
    if engine == "espeak":
        from .espeak import synthesize_espeak

        accent, _, variant = voice.partition("+")
        pitch = int(np.clip(((job.f0_mean or 140) - 90) / 130 * 60 + 20, 10, 90))
        return synthesize_espeak(
            job.text,
            accent,
            variant or None,
            rate=int(175 / job.stretch),
            pitch=pitch,
            pitch_range=int(30 + (job.seed % 50)),
        )
    if engine == "festival":
        return festival.synthesize_batch([_festival_request(job)])[0]
    raise ValueError(f"unknown TTS engine {engine!r} in voice {job.voice!r}")


NONSPEECH_KINDS = ("silence", "tone", "chord", "hum", "white", "pink", "brown", "dc")


def nonspeech(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Flat, non-speech audio (tones, hum, stationary noise, DC, silence): the mouth must stay closed."""
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    amp = float(10 ** rng.uniform(-2.5, -0.3))
    if kind == "silence":
        a = np.zeros(n)
    elif kind == "tone":
        f = rng.uniform(60, 4000) * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(2, 6) * t))
        a = np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE)
    elif kind == "chord":
        a = sum(np.sin(2 * np.pi * rng.uniform(80, 1500) * t + rng.uniform(0, 6)) for _ in range(3)) / 3
    elif kind == "hum":
        f0 = rng.choice([50.0, 60.0])
        a = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    elif kind == "dc":
        a = np.full(n, rng.choice([-1.0, 1.0])) + 0.01 * rng.standard_normal(n)
    else:
        w = rng.standard_normal(n)
        if kind == "pink":
            spec = np.fft.rfft(w) / np.sqrt(np.maximum(np.arange(n // 2 + 1), 1))
            w = np.fft.irfft(spec, n)
        elif kind == "brown":
            w = np.cumsum(w)
            w -= np.convolve(w, np.ones(801) / 801, mode="same")
        a = w / (np.abs(w).max() + 1e-9)
    return np.clip(amp * a / (np.abs(a).max() + 1e-9), -1, 1).astype(np.float32)


def _pick_voice(voices: tuple[str, ...], i: int, rng: np.random.Generator) -> str:
    """Balance engines: clip i uses engine i mod n_engines, then a random voice of that engine."""
    engines = sorted({v.split(":", 1)[0] for v in voices})
    pool = [v for v in voices if v.startswith(engines[i % len(engines)] + ":")]
    return pool[int(rng.integers(len(pool)))]


def plan_jobs(minutes: float, voices: tuple[str, ...], split: str, seed: int) -> list[Job]:
    """Enough sentences (~4 s each) for ``minutes`` of audio, spread across ``voices``."""
    rng = np.random.default_rng(seed)
    n = max(1, int(minutes * 60 / 4.0))
    jobs = []
    for i in range(n):
        voice = _pick_voice(voices, i, rng)
        f0 = float(rng.uniform(90, 220)) if rng.random() < 0.7 else None
        stretch = float(rng.uniform(0.8, 1.35))
        jobs.append(
            Job(f"{split}_{voice}_{i:05d}", sentence(rng), voice, split, f0, stretch, int(rng.integers(1 << 31)))
        )
    if split == "train":  # ~20% flat non-speech clips with a closed mouth
        for i in range(max(1, n // 4)):
            kind = NONSPEECH_KINDS[i % len(NONSPEECH_KINDS)]
            jobs.append(
                Job(f"{split}_nonspeech_{i:05d}", kind, "nonspeech", split, None, 1.0, int(rng.integers(1 << 31)))
            )
    return jobs


def build(
    out: Path,
    minutes: float,
    split: str = "train",
    seed: int = 0,
    workers: int | None = None,
    voices: tuple[str, ...] | None = None,
) -> int:
    """Synthesize a corpus split to HDF5; returns the number of clips."""
    voices = voices or (HELDOUT_VOICES if split == "test" else TRAIN_VOICES)
    check_split(voices, split)
    voices = available_voices(voices)
    jobs = plan_jobs(minutes, voices, split, seed)
    workers = workers or os.cpu_count() or 1
    made: list = []
    with ProcessPoolExecutor(workers) as ex, Progress("synthesising", len(jobs), "clips") as bar:
        for batch in ex.map(_make_batch, _batches(jobs)):
            made += batch
            bar.advance(len(batch))
    order = {j.clip_id: i for i, j in enumerate(jobs)}
    clips = sorted(made, key=lambda c: order[c.clip_id])
    n = write_clips(out, clips)
    total = sum(c.audio.size for c in clips) / SAMPLE_RATE
    log.info("wrote %d clips (%.1f min, %d voices) to %s", n, total / 60, len(voices), out)
    return n


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m training.corpus", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("cmd", choices=["build"])
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--split", choices=["train", "test"], default="train")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    build(a.out, a.minutes, a.split, a.seed)


if __name__ == "__main__":
    main()
