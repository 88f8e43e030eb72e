"""CREMA-D loader (emotional speech, 91 actors, 6 emotions) for the emotion classifier.

Real layout: ``<root>/AudioWAV/{ActorID}_{Sentence}_{Emotion}_{Level}.wav``, e.g. ``1001_DFA_ANG_XX.wav``
(actors 1001-1091; 12 sentences; emotions ANG DIS FEA HAP NEU SAD; levels LO MD HI XX = unspecified).
Names are parsed strictly: anything else is skipped and logged. ``root`` may also be the
``AudioWAV`` folder itself. ``VideoDemographics.csv`` is not needed. Splits are by actor, so no
speaker is in two splits. CREMA-D is not on this machine; the tests use ``tests/data/cremad_tiny``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.mel import log_mel
from toonsync.runtime.motion import EMOTIONS

log = logging.getLogger(__name__)

ACTORS = range(1001, 1092)
SENTENCES = ("DFA", "IEO", "IOM", "ITH", "ITS", "IWL", "IWW", "MTI", "TAI", "TIE", "TSI", "WSI")
LEVELS = ("LO", "MD", "HI", "XX")
_NAME = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.wav")


@dataclass(frozen=True)
class CremaItem:
    """One CREMA-D clip: its file, actor, sentence and emotion label."""

    path: Path
    actor: int
    sentence: str
    emotion: str  # one of runtime.motion.EMOTIONS
    level: str

    @property
    def label(self) -> int:
        """Class index in CREMA-D order (``runtime.motion.EMOTIONS``)."""
        return EMOTIONS.index(self.emotion)


def parse_name(name: str) -> tuple[int, str, str, str] | None:
    """``'1001_DFA_ANG_XX.wav'`` -> (1001, 'DFA', 'ANG', 'XX'); None for anything not in CREMA-D's scheme."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    actor, sentence, emotion, level = int(m[1]), m[2], m[3], m[4]
    if actor not in ACTORS or sentence not in SENTENCES or emotion not in EMOTIONS or level not in LEVELS:
        return None
    return actor, sentence, emotion, level


class Split(NamedTuple):
    """CREMA-D clips split by actor (speaker-independent): train, validation and test."""

    train: list[CremaItem]
    val: list[CremaItem]
    test: list[CremaItem]


ActorSpec = int | Sequence[int]


class CremaD:
    """The clips of a CREMA-D copy, sorted by file name; ``skipped`` lists names that did not parse."""

    def __init__(self, root: str | Path):
        root = Path(root)
        wav_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
        if not wav_dir.is_dir():
            raise FileNotFoundError(f"CREMA-D folder {root} not found (expected {root}/AudioWAV/*.wav)")
        self.root = wav_dir
        self.items: list[CremaItem] = []
        self.skipped: list[str] = []
        for p in sorted(wav_dir.iterdir()):
            if not p.is_file():
                continue
            parsed = parse_name(p.name)
            if parsed is None:
                self.skipped.append(p.name)
                continue
            self.items.append(CremaItem(p, *parsed))
        if self.skipped:
            log.warning(
                "CREMA-D: skipped %d file(s) not named ACTOR_SENTENCE_EMOTION_LEVEL.wav, e.g. %s",
                len(self.skipped),
                self.skipped[0],
            )
        if not self.items:
            raise FileNotFoundError(f"no CREMA-D clips (e.g. 1001_DFA_ANG_XX.wav) in {wav_dir}")
        log.info("CREMA-D: %d clips, %d actors in %s", len(self.items), len(self.actors), wav_dir)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> CremaItem:
        return self.items[i]

    def __iter__(self) -> Iterator[CremaItem]:
        return iter(self.items)

    @property
    def actors(self) -> list[int]:
        return sorted({it.actor for it in self.items})

    def counts(self) -> dict[str, int]:
        c = Counter(it.emotion for it in self.items)
        return {e: c.get(e, 0) for e in EMOTIONS}

    def split(self, val_actors: ActorSpec = 8, test_actors: ActorSpec = 10, seed: int = 0) -> Split:
        """Speaker-independent split. Each of ``val_actors`` / ``test_actors`` is an explicit list of
        actor IDs or a count drawn (deterministically, from ``seed``) from the remaining actors."""
        actors = self.actors
        rng = np.random.default_rng(seed)
        pool = rng.permutation(actors).tolist()

        def pick(spec: ActorSpec, taken: set[int]) -> set[int]:
            if isinstance(spec, (int, np.integer)):
                free = [a for a in pool if a not in taken]
                if spec > len(free) - 1:
                    raise ValueError(f"cannot hold out {spec} actors: only {len(free)} left and training needs one")
                return set(free[: int(spec)])
            chosen = {int(a) for a in spec}
            unknown = chosen - set(actors)
            if unknown:
                raise ValueError(f"actors {sorted(unknown)} are not in this copy of CREMA-D ({len(actors)} actors)")
            return chosen

        test = pick(test_actors, set())
        val = pick(val_actors, test)
        if val & test:
            raise ValueError(f"actors {sorted(val & test)} are in both the validation and the test split")
        out = Split([], [], [])
        for it in self.items:
            (out.test if it.actor in test else out.val if it.actor in val else out.train).append(it)
        log.info(
            "split: train %d clips / %d actors, val %d / %d, test %d / %d",
            len(out.train),
            len(actors) - len(val) - len(test),
            len(out.val),
            len(val),
            len(out.test),
            len(test),
        )
        return out


def load_item_audio(item: CremaItem) -> np.ndarray:
    """Mono float32 16 kHz samples of one clip."""
    return load_audio(item.path)


def item_features(item: CremaItem) -> np.ndarray:
    """Log-mel [frames, 80] of one clip (the runtime frontend: ``runtime.mel.log_mel``)."""
    return log_mel(load_item_audio(item))
