"""The source is ruff-clean (lint and format), with the settings in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return [exe]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff(args):
    r = subprocess.run([*_ruff(), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_no_source_file_over_600_lines():
    roots = ("toonsync", "runtime", "training", "export", "calibration", "tools", "benchmarks", "tests")
    long = {
        str(p.relative_to(ROOT)): n
        for r in roots
        for p in (ROOT / r).rglob("*.py")
        if "data" not in p.relative_to(ROOT).parts and (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long
