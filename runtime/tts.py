"""Text to speech for ``toonsync say``: the text is spoken by a TTS engine installed on this machine.

Engines, in the order ``voice="auto"`` tries them: Festival (``text2wave``, the HTS voice ``cmu_us_slt_arctic_hts``
when installed), flite (voice ``slt``), eSpeak NG. Each runs as a child process on a text file (the text never
reaches a shell or an argument list) with a time limit that grows with the text's length. Debian packages:
``festival festvox-us-slt-hts``, ``flite``, ``espeak-ng``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError, ToonsyncError

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 20_000  # about 25 minutes of speech
ENGINES = ("festival", "flite", "espeak")
_PACKAGES = {"festival": "festival festvox-us-slt-hts", "flite": "flite", "espeak": "espeak-ng"}
_HTS_VOICE = Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts")


class NoTTSEngine(ToonsyncError, RuntimeError):
    """No text-to-speech engine is installed (or the one asked for is not)."""


def available_engines() -> list[str]:
    """The engines installed here, in the order ``auto`` tries them."""
    exe = {"festival": "text2wave", "flite": "flite", "espeak": "espeak-ng"}
    return [e for e in ENGINES if shutil.which(exe[e])]


def _command(engine: str, text_file: Path, wav: Path) -> list[str]:
    if engine == "festival":
        cmd = ["text2wave", str(text_file), "-o", str(wav)]
        return cmd + (["-eval", "(voice_cmu_us_slt_arctic_hts)"] if _HTS_VOICE.is_dir() else [])
    if engine == "flite":
        return ["flite", "-voice", "slt", "-f", str(text_file), "-o", str(wav)]
    return ["espeak-ng", "-v", "en-us", "-f", str(text_file), "-w", str(wav)]


def check_text(text: str) -> str:
    """The text to speak, stripped; ``InputError`` when it is empty, too long or has control characters."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise InputError("the text to say is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"the text is {len(text)} characters; the cap is {MAX_TEXT_CHARS} (split it into parts)")
    if any(ord(c) < 32 and c not in "\n\t\r" for c in text):
        raise InputError("the text contains control characters; give plain text")
    return text


@contextlib.contextmanager
def spoken(text: str, voice: str = "auto") -> Iterator[Path]:
    """``text`` spoken by ``voice`` (``auto`` or one of ``ENGINES``) as a temporary WAV file, removed afterwards.

    Raises ``InputError`` for bad text, ``NoTTSEngine`` naming the Debian packages when no engine is installed."""
    text = check_text(text)
    have = available_engines()
    if voice != "auto" and voice not in ENGINES:
        raise InputError(f"unknown voice {voice!r}; accepted: auto, {', '.join(ENGINES)}")
    engines = have if voice == "auto" else [voice] if voice in have else []
    if not engines:
        wanted = ENGINES if voice == "auto" else (voice,)
        raise NoTTSEngine(
            "no text-to-speech engine installed"
            + ("" if voice == "auto" else f" for voice {voice!r}")
            + ": apt-get install "
            + " or ".join(_PACKAGES[e] for e in wanted)
        )
    with tempfile.TemporaryDirectory(prefix="toonsync-say-") as d:
        text_file, wav = Path(d) / "text.txt", Path(d) / "speech.wav"
        text_file.write_text(text + "\n", encoding="utf-8")
        errors = []
        for engine in engines:
            try:
                r = subprocess.run(
                    _command(engine, text_file, wav),
                    capture_output=True,
                    text=True,
                    timeout=30 + len(text) / 10,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                errors.append(f"{engine}: {e}")
                continue
            if r.returncode == 0 and wav.is_file() and wav.stat().st_size > 44:
                log.info("spoke %d characters with %s", len(text), engine)
                yield wav
                return
            errors.append(f"{engine}: exit {r.returncode} {(r.stderr or '').strip()[:200]}")
        raise NoTTSEngine("text-to-speech failed: " + "; ".join(errors))


def speak_wav(text: str, voice: str = "auto") -> bytes:
    """``text`` spoken by ``voice``: the WAV file's bytes (see ``spoken``)."""
    with spoken(text, voice) as wav:
        return wav.read_bytes()
