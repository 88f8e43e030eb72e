"""ONNX-vs-torch parity: the exported graph must reproduce the torch model within a stated tolerance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toonsync.runtime.backend import OrtBackend
from toonsync.runtime.mel import SAMPLES_PER_FRAME

FP32_ATOL = 1e-4  # absolute tolerance for fp32 graphs (outputs are O(1))


def check_parity(
    model: torch.nn.Module,
    path: Path,
    spec: Any,
    batches: tuple[int, ...] = (1, 3),
    frames: tuple[int, ...] = (7, 25),
    seed: int = 0,
    atol: float = FP32_ATOL,
    make_inputs: Callable[..., dict[str, np.ndarray]] | None = None,
) -> dict:
    """Run torch and onnxruntime on random inputs at several batch/time sizes; return the worst difference.
    ``make_inputs(spec, batch, frames, rng)`` replaces the standard-normal inputs where those are meaningless."""
    make_inputs = make_inputs or random_inputs
    rng = np.random.default_rng(seed)
    be = OrtBackend(path, "cpu", 1)  # one thread: the same sums every run
    worst = 0.0
    for b in batches:
        for t in frames:
            x = make_inputs(spec, b, t, rng)
            with torch.no_grad():
                ref = model(*[torch.from_numpy(x[n]) for n in spec.inputs])
            got = be.run(x)
            for name, r in zip(spec.outputs, ref):
                worst = max(worst, float(np.abs(got[name].astype(np.float64) - r.numpy()).max()))  # uint8-safe
    if worst > atol:
        raise AssertionError(f"ONNX parity failed for {path.name}: max|diff| {worst:.2e} > {atol:.0e}")
    return {"max_abs_diff": worst, "atol": atol, "batches": list(batches), "frames": list(frames)}


def random_inputs(spec: Any, batch: int, frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Standard-normal float32 inputs of ``spec``'s shapes, named axes set from ``batch`` and ``frames``."""
    dims = {"batch": batch, "mel_frames": frames * 4, "frames": frames, "samples": frames * SAMPLES_PER_FRAME}
    return {
        n: rng.standard_normal([dims.get(d, d) if isinstance(d, str) else d for d in shape]).astype(np.float32)
        for n, shape in spec.inputs.items()
    }
