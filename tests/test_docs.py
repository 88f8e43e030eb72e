"""The README's and docs' code blocks work as written.

- Every ```python block runs, in a folder holding the files the examples name (face.jpg, speech.wav, ...).
- Every ``toonsync`` command in a ```bash block parses with the real command line (flags, choices, arguments).
- The README's commands that make a file from bundled-size inputs (render, prepare, motion, say, sheet, a
  stream of a WAV) run and exit 0.

A block preceded by ``<!-- docs-test: skip REASON -->`` is skipped with that reason (only for blocks that need
a service that is not here, e.g. a Triton server).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from toonsync.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s+(.*?)\s*-->")
RUNS = {"render", "prepare", "motion", "say", "sheet", "stream"}  # quick on a 3 s clip


@dataclass
class Block:
    file: Path
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.file.name}:{self.line}"


def blocks() -> list[Block]:
    """Every fenced code block of the README and docs/*.md."""
    found = []
    for f in DOCS:
        lines = f.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"^```(\w*)\s*$", lines[i])
            if not m:
                i += 1
                continue
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            prev = lines[start - 1] if start else ""
            sk = SKIP.search(prev)
            found.append(Block(f, start + 1, m.group(1), "\n".join(body), sk.group(1) if sk else None))
            i += 1
    return found


def commands(block: Block) -> list[tuple[int, list[str], str | None]]:
    """The ``toonsync`` command lines of a shell block: (line number, argv after ``toonsync``, the file piped
    into it by ``cat FILE |`` or None)."""
    out = []
    joined, first = "", None
    for n, raw in enumerate(block.code.splitlines(), block.line + 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            joined, first = joined + line[:-1] + " ", first or n
            continue
        line, n = joined + line, first or n
        joined, first = "", None
        piped = None
        for part in re.split(r"&&|\|", line):
            words = shlex.split(part)
            while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value toonsync ...
                words = words[1:]
            if words[:1] == ["toonsync"]:
                out.append((n, words[1:], piped))
            elif words[:3] == ["python", "-m", "toonsync"]:
                out.append((n, words[3:], piped))
            piped = words[1] if words[:1] == ["cat"] and len(words) == 2 else None
    return out


ALL = blocks()
PYTHON = [b for b in ALL if b.lang == "python"]
SHELL = [(b, n, argv, piped) for b in ALL if b.lang in ("bash", "sh", "") for n, argv, piped in commands(b)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, frontal_face, speech_wav, data_dir):
    """A folder with the files the examples name."""
    d = tmp_path_factory.mktemp("docs")
    shutil.copy(frontal_face, d / "face.jpg")
    shutil.copy(speech_wav, d / "speech.wav")
    x, sr = sf.read(speech_wav)
    sf.write(d / "speech.flac", x, sr)
    shutil.copy(data_dir / "drawn_character.png", d / "drawing.png")
    shutil.copy(data_dir / "drawn_character.json", d / "drawing.json")
    shutil.copy(data_dir / "grace_hopper.jpg", d / "office.jpg")  # a background picture
    (d / "speech_dir").mkdir()
    shutil.copy(speech_wav, d / "speech_dir" / "hello.wav")
    sf.write(d / "speech_dir" / "short.flac", x[: sr // 2], sr)
    assert main(["-q", "prepare", str(d / "face.jpg"), "-o", str(d / "face.avatar")]) == 0
    assert (
        main(
            [
                "-q",
                "prepare",
                str(d / "drawing.png"),
                "--landmarks",
                str(d / "drawing.json"),
                "-o",
                str(d / "char.avatar"),
            ]
        )
        == 0
    )
    return d


def test_the_docs_have_code_to_check():
    assert len(PYTHON) >= 5 and len(SHELL) >= 40
    assert sum(b.skip is not None for b in ALL) <= 2  # skipping stays the exception


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block_runs(block, sandbox, monkeypatch):
    if block.skip:
        pytest.skip(block.skip)
    monkeypatch.chdir(sandbox)
    exec(compile(block.code, block.id, "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize(("block", "n", "argv", "piped"), SHELL, ids=[f"{b.file.name}:{n}" for b, n, *_ in SHELL])
def test_shell_command_parses(block, n, argv, piped):
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as e:
        pytest.fail(f"{block.file.name}:{n}: `toonsync {shlex.join(argv)}` does not parse (exit {e.code})")
    assert a.cmd or argv in ([], ["--help"]), argv


README_RUNS = [
    (n, argv, piped)
    for b, n, argv, piped in SHELL
    if b.file.name == "README.md" and argv and argv[0] in RUNS and not {"--mic", "--mic-device", "--triton"} & set(argv)
]


@pytest.mark.parametrize(("n", "argv", "piped"), README_RUNS, ids=[f"README.md:{n}" for n, *_ in README_RUNS])
def test_readme_command_runs(n, argv, piped, sandbox, monkeypatch):
    if argv[0] == "say":
        from toonsync.runtime.tts import available_engines

        if not available_engines():
            pytest.skip("no TTS engine installed (apt-get install flite espeak-ng festival)")
    monkeypatch.chdir(sandbox)
    argv = [*argv, "-q"] + (["--size", "64"] if argv[0] in ("render", "stream", "say") and "--size" not in argv else [])
    if argv[0] == "stream":
        argv.append("--fast")
    if piped is not None:  # `cat FILE | toonsync ... -`: standard input is the file
        r = subprocess.run(
            [sys.executable, "-m", "toonsync", *argv],
            stdin=(sandbox / piped).open("rb"),
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert r.returncode == 0, f"README.md:{n}: {r.stderr.decode(errors='replace')}"
        return
    assert main(argv) == 0, f"README.md:{n}: toonsync {shlex.join(argv)}"
