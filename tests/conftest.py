from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
ASSETS = Path(__file__).resolve().parent.parent / "runtime" / "assets"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def frontal_face() -> Path:
    return ASSETS / "demo_face.jpg"  # scikit-image astronaut (public domain), cropped


@pytest.fixture(scope="session")
def speech_wav() -> Path:
    return DATA / "speech_short.wav"  # flite voice rms: held out from training


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A tiny real TTS corpus (flite + espeak-ng; train.h5 0.5 min, test.h5 0.2 min) for training-path tests."""
    import shutil

    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (apt-get install flite): cannot build the training corpus")
    from toonsync.training import corpus

    d = tmp_path_factory.mktemp("tiny_corpus")
    corpus.build(d / "train.h5", minutes=0.5, split="train", seed=0, workers=2)
    corpus.build(d / "test.h5", minutes=0.2, split="test", seed=1, workers=2)
    return d


@pytest.fixture(scope="session")
def animator():
    from toonsync.runtime.pipeline import Animator

    return Animator("cpu")


@pytest.fixture(scope="module")
def model():
    """The kiosk server's shared audio model on the CPU (server tests)."""
    from toonsync.runtime.server import SharedAudioModel

    return SharedAudioModel("cpu")


@pytest.fixture(scope="module")
def avatar(frontal_face):
    """The demo photo's avatar."""
    from toonsync.runtime.prepare import load_face

    return load_face(frontal_face)


def read_phones(path: Path) -> list[tuple[str, float, float]]:
    """flite -psdur output (phone:end ...) -> [(label, start, end)]."""
    out, start = [], 0.0
    for tok in path.read_text().split():
        lab, _, end = tok.rpartition(":")
        out.append((lab, start, float(end)))
        start = float(end)
    return out


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def pytest_terminal_summary(terminalreporter):
    """Print the size of the bad-input catalogue and how many of its cases passed in this session."""
    from .catalogue import CASES

    ran = [
        r
        for rs in terminalreporter.stats.values()
        for r in rs
        if "test_catalogue.py::test_catalogue[" in getattr(r, "nodeid", "")
    ]
    if not ran:  # the catalogue was not part of this session
        return
    passed = [r for r in terminalreporter.stats.get("passed", []) if "test_catalogue.py::test_catalogue[" in r.nodeid]
    terminalreporter.write_line(
        f"toonsync bad-input catalogue: {len(passed)}/{len(CASES)} cases passed "
        "(tests/catalogue.py, docs/reliability.md)"
    )
