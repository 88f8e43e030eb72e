"""Mouth cues in Rhubarb Lip Sync's file formats, so its integrations (After Effects, Spine, Blender, Moho,
OpenToonz, Godot and game-engine importers) take toonsync's lip sync unchanged.

* ``rhubarb``: Rhubarb's JSON (``metadata`` with ``soundFile`` and ``duration``; ``mouthCues`` of
  ``start`` / ``end`` / ``value``, times in seconds with two decimals, shapes A-H and X).
* ``tsv``: one ``start<TAB>shape`` line per cue and a last line giving the end time with ``X``.
* ``dat``: Moho / OpenToonz switch data: ``MohoSwitch1``, then ``<frame> <shape>`` lines on a 1-based frame
  count at ``dat_fps`` (24..100), shapes as letters or, with ``preston_blair``, Preston Blair's drawing names.

The cues are toonsync's per-frame visemes (``runtime.motion_io``), run-length encoded.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from .atomic import atomic_path
from .errors import InputError
from .mel import FPS

FORMATS = ("rhubarb", "tsv", "dat")
PRESTON_BLAIR = {"A": "MBP", "B": "etc", "C": "E", "D": "AI", "E": "O", "F": "U", "G": "FV", "H": "L", "X": "rest"}
DAT_FPS = (24, 100)


def cues(visemes: Any, fps: int = FPS) -> list[tuple[float, float, str]]:
    """(start, end, shape) runs of the per-frame visemes, in seconds."""
    out: list[tuple[float, float, str]] = []
    start = 0
    vis = [str(v) for v in visemes]
    for i in range(1, len(vis) + 1):
        if i == len(vis) or vis[i] != vis[start]:
            out.append((start / fps, i / fps, vis[start]))
            start = i
    return out


def rhubarb_json(visemes: Any, sound_file: str, duration: float) -> str:
    """Rhubarb's JSON document (its layout: two-space indent, one cue per line, two-decimal times)."""
    rows = [f'    {{ "start": {s:.2f}, "end": {e:.2f}, "value": {json.dumps(v)} }}' for s, e, v in cues(visemes)]
    return (
        "{\n"
        '  "metadata": {\n'
        f'    "soundFile": {json.dumps(sound_file)},\n'
        f'    "duration": {duration:.2f}\n'
        "  },\n"
        '  "mouthCues": [\n' + ",\n".join(rows) + "\n  ]\n}\n"
    )


def rhubarb_tsv(visemes: Any) -> str:
    """``start<TAB>shape`` per cue, then ``end<TAB>X`` closing the last one."""
    cs = cues(visemes)
    lines = [f"{s:.2f}\t{v}" for s, _, v in cs]
    if cs:
        lines.append(f"{cs[-1][1]:.2f}\tX")
    return "\n".join(lines) + "\n"


def moho_dat(visemes: Any, fps: float = 24, preston_blair: bool = False) -> str:
    """``MohoSwitch1`` switch data: a cue starts on frame ``int(start * fps) + 1``; cues that land on one frame
    keep the last; a closing rest at the end frame."""
    if not DAT_FPS[0] <= fps <= DAT_FPS[1]:
        raise InputError(f"--dat-fps must be {DAT_FPS[0]}..{DAT_FPS[1]}, got {fps:g}")

    def name(shape: str) -> str:
        return PRESTON_BLAIR.get(shape, shape) if preston_blair else shape

    rows: dict[int, str] = {}
    cs = cues(visemes)
    for s, _, v in cs:
        rows[int(s * fps) + 1] = name(v)
    if cs:
        end = int(cs[-1][1] * fps) + 1
        if end in rows and rows[end] != name("X"):
            end += 1
        rows[end] = name("X")
    return "MohoSwitch1\n" + "".join(f"{f} {v}\n" for f, v in sorted(rows.items()))


def write_lipsync(
    visemes: Any,
    out: str | os.PathLike,
    fmt: str,
    *,
    sound_file: str = "",
    duration: float | None = None,
    dat_fps: float = 24,
    preston_blair: bool = False,
) -> Path | None:
    """Write the cues in ``fmt`` (``FORMATS``) to ``out`` (atomically), or to standard output for ``-``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown lip-sync format {fmt!r}; accepted: {', '.join(FORMATS)}")
    if fmt == "rhubarb":
        text = rhubarb_json(visemes, sound_file, len(visemes) / FPS if duration is None else duration)
    elif fmt == "tsv":
        text = rhubarb_tsv(visemes)
    else:
        text = moho_dat(visemes, dat_fps, preston_blair)
    if str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return Path(out)
