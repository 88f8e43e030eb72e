"""Torch-eager baseline for ``toonsync bench`` (kept out of runtime/, which never imports torch).

``toonsync bench`` runs this module in a child process (``python -m toonsync.tools.bench_torch``) so that
torch never enters the runtime's process (its peak RSS and thread pools stay the runtime's own); the
child prints one JSON object with the raw per-call latencies. The pytest-benchmark suite uses
``make_step`` in-process.

The baseline is the shipped checkpoint (``checkpoints/audio2motion.pt``) stepped exactly like the
runtime steps its ONNX export: one 40 ms frame (4 mel frames) per call, streaming state (conv
context, LSTM h/c) carried between calls, ``torch.inference_mode``. Input mel frames rotate through
the demo speech so every call sees real audio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from toonsync.training.train_audio2motion import load_checkpoint

CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "audio2motion.pt"


def demo_mel_frames() -> np.ndarray:
    """Log-mel of the demo speech, [T, 4, 80] (one row per 40 ms video frame)."""
    from toonsync.runtime.assets import DEMO_SPEECH, asset
    from toonsync.runtime.audio_io import load_audio
    from toonsync.runtime.mel import MELS_PER_FRAME, log_mel

    mel = log_mel(load_audio(asset(DEMO_SPEECH)))
    t = mel.shape[0] // MELS_PER_FRAME
    return mel[: t * MELS_PER_FRAME].reshape(t, MELS_PER_FRAME, -1)


def make_step(batch: int = 1, threads: int | None = None, mel_frames: np.ndarray | None = None) -> Callable[[], None]:
    """One streaming step of ``batch`` independent streams per call (state carried)."""
    if threads:
        torch.set_num_threads(threads)
    model = load_checkpoint(CHECKPOINT)
    frames = demo_mel_frames() if mel_frames is None else mel_frames
    t = frames.shape[0]
    inputs = [torch.from_numpy(np.ascontiguousarray(frames[(np.arange(batch) * 37 + k) % t])) for k in range(t)]
    state = list(model.initial_state(batch))
    k = 0

    def step() -> None:
        nonlocal state, k
        with torch.inference_mode():
            _, _, _, *state = model(inputs[k % t], *state)
        k += 1

    return step


def time_calls(step: Callable[[], None], n: int, warmup: int = 10) -> tuple[list[float], float]:
    """Per-call latencies (ms) and the process CPU % while they ran."""
    for _ in range(warmup):
        step()
    out = []
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        step()
        out.append((time.perf_counter() - t) * 1e3)
    wall = time.perf_counter() - w0
    return out, 100.0 * (time.process_time() - c0) / wall if wall > 0 else 0.0


def audio2motion_per_frame_ms(mel4: np.ndarray, n: int = 200, threads: int | None = None) -> list[float]:
    """Latency of one 40 ms streaming step of the shipped checkpoint in torch eager (state carried)."""
    step = make_step(1, threads, np.asarray(mel4, np.float32).reshape(1, *np.shape(mel4)[-2:]))
    return time_calls(step, n)[0]


def make_motion_step(threads: int | None = None) -> Callable[[], None] | None:
    """One 40 ms step of the transformer motion decoder (``checkpoints/motion.pt``), cache carried, on the
    demo speech's embedding from the paired audio model; None when no decoder checkpoint ships."""
    from toonsync.runtime.motion import decoder_inputs
    from toonsync.training.models.encoder import load_model_checkpoint
    from toonsync.training.models.motion_decoder import MotionDecoder, MotionDecoderConfig

    path = CHECKPOINT.parent / "motion.pt"
    if not path.exists():
        return None
    if threads:
        torch.set_num_threads(threads)
    dec = load_model_checkpoint(path, MotionDecoder, MotionDecoderConfig)
    audio = load_checkpoint(CHECKPOINT)
    with torch.inference_mode():
        mel = torch.from_numpy(demo_mel_frames().reshape(1, -1, 80))
        mouth, _lm, emb, *_ = audio(mel, *audio.initial_state(1))
    feeds = [
        {k: torch.from_numpy(v) for k, v in f.items()}
        for f in decoder_inputs(emb.shape[1], emb[0].numpy(), mouth[0].numpy())
    ]
    cache = dec.initial_state(1)
    k = 0

    def step() -> None:
        nonlocal cache, k
        f = feeds[k % len(feeds)]
        with torch.inference_mode():
            cache = dec(f["speech"], f["speech_mouth"], f["emotion"], f["noise"], cache)[-1]
        k += 1

    return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m toonsync.tools.bench_torch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--frames", type=int, default=200, help="timed calls per case (default 200)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes (streams per call)")
    p.add_argument(
        "--threads", type=int, nargs="+", default=[0], help="torch intra-op thread counts to try (0 = torch's default)"
    )
    a = p.parse_args(argv)
    default_threads = torch.get_num_threads()
    mel = demo_mel_frames()
    cases = []
    for threads in a.threads:
        torch.set_num_threads(threads or default_threads)
        for b in a.batch:
            step = make_step(b, None, mel)
            ms, cpu = time_calls(step, a.frames, a.warmup)
            cases.append(
                {
                    "batch": b,
                    "threads": torch.get_num_threads(),
                    "samples_ms": [round(x, 5) for x in ms],
                    "cpu_pct": round(cpu, 1),
                }
            )
    motion = None
    torch.set_num_threads(1 if 1 in a.threads else default_threads)  # one 40 ms frame: one thread is fastest
    if (mstep := make_motion_step()) is not None:
        ms, cpu = time_calls(mstep, a.frames, a.warmup)
        motion = {"threads": torch.get_num_threads(), "samples_ms": [round(x, 5) for x in ms], "cpu_pct": round(cpu, 1)}
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    try:  # VmHWM: ru_maxrss survives exec on Linux, so a child would report its parent's RSS
        with open("/proc/self/status") as f:
            peak = next(float(ln.split()[1]) / 1024.0 for ln in f if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    rep = {
        "torch": torch.__version__,
        "default_threads": default_threads,
        "checkpoint": str(CHECKPOINT),
        "peak_rss_mb": round(peak, 1),
        "cases": cases,
        "motion": motion,
    }
    json.dump(rep, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
