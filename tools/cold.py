"""A fresh process, timed from interpreter start to its first drawn frame (``toonsync bench``'s
``startup.cold_first_frame``), then optionally a whole offline render for its peak RSS.

``cold_start`` spawns ``python -m toonsync.tools.cold T0 SPEECH FACE BACKEND PRECISION RENDER_TO SIZE`` and reads
the milestones (ms since ``T0``, the parent's ``time.monotonic()`` at spawn) it prints as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from toonsync.runtime.errors import ToonsyncError


def main(argv: list[str] | None = None) -> None:
    """The child: import the runtime, load the model, the face and the audio, draw one frame; print the times."""
    import resource

    t0, speech, face, backend, precision, render_to, size = sys.argv[1:] if argv is None else argv
    t0, size, mono = float(t0), int(size), time.monotonic
    m: dict = {"python_ms": (mono() - t0) * 1e3}
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.mel import SAMPLES_PER_FRAME
    from toonsync.runtime.pipeline import Animator, render
    from toonsync.runtime.prepare import load_face
    from toonsync.runtime.streaming import Stream

    m["import_ms"] = (mono() - t0) * 1e3
    an = Animator(backend, precision)
    m["model_ms"] = (mono() - t0) * 1e3
    av = load_face(face)
    m["face_ms"] = (mono() - t0) * 1e3
    pcm = load_audio(speech)
    m["audio_ms"] = (mono() - t0) * 1e3
    s = Stream(an.audio_model, av.neutral, av.renderer(size))
    i = 0
    while not s.ready():
        s.accept_audio(pcm[i : i + SAMPLES_PER_FRAME])
        i += SAMPLES_PER_FRAME
    if s.step().image is None:
        raise SystemExit("the first frame was not drawn")
    m["first_frame_ms"] = (mono() - t0) * 1e3
    if render_to != "-":
        t1 = mono()
        res = render(av, speech, render_to, animator=an, size=size)  # from the file, as the CLI does
        m["render_ms"], m["render_frames"] = (mono() - t1) * 1e3, res.frames
    ru = resource.getrusage(resource.RUSAGE_SELF)
    m["cpu_s"] = ru.ru_utime + ru.ru_stime
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the parent's RSS
    with open("/proc/self/status") as f:
        hwm = [ln for ln in f if ln.startswith("VmHWM:")]
    m["peak_rss_mb"] = float(hwm[0].split()[1]) / 1024.0 if hwm else ru.ru_maxrss / 1024.0
    m["backend"], m["precision"] = an.model.backend.name, an.model.precision
    print(json.dumps(m))


def cold_start(
    speech: Path,
    face: Path,
    backend: str = "auto",
    precision: str = "auto",
    render_to: Path | None = None,
    size: int = 256,
) -> dict:
    """Spawn a fresh interpreter; time process start -> first drawn frame (then, with ``render_to``, a full
    offline render of ``speech`` in the same process, for its peak RSS). Milestones are ms since spawn."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "toonsync.tools.cold",
            repr(t0),
            str(speech),
            str(face),
            backend,
            precision,
            str(render_to) if render_to else "-",
            str(size),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    wall = (time.monotonic() - t0) * 1e3
    if r.returncode != 0:
        raise ToonsyncError(f"cold-start child failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    m = json.loads(r.stdout.strip().splitlines()[-1])
    m["process_ms"] = wall
    return m


if __name__ == "__main__":
    main()
