"""Bundled inputs: the demo photo and speech (with its text and phone timings) and the mel filterbank."""

from __future__ import annotations

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
DEMO_FACE = "demo_face.jpg"  # scikit-image's `astronaut` (NASA, public domain), cropped
DEMO_SPEECH = "demo_speech.wav"  # flite voice rms (held out from training), text in demo_speech.txt


def asset(name: str) -> Path:
    """The path of the bundled file ``name`` (e.g. ``asset(DEMO_SPEECH)``)."""
    return ASSETS_DIR / name
