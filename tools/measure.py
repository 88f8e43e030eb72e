"""Measuring for ``toonsync bench``: timed rounds, summaries (p50/p90/p99, fps, real-time factor, CPU %),
per-case peak RSS, and which backends and precisions this machine can run."""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toonsync.runtime.backend import available_providers, model_dir
from toonsync.runtime.errors import ToonsyncError
from toonsync.runtime.mel import SAMPLE_RATE, SAMPLES_PER_FRAME

log = logging.getLogger(__name__)

FRAME_MS = 1000.0 * SAMPLES_PER_FRAME / SAMPLE_RATE  # 40 ms
PRECISION_CHOICES = ("fp32", "fp16", "int8")


# -- measuring -------------------------------------------------------------------------------------
def _status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak RSS of this process so far (over every case, even after per-case resets). From VmHWM where
    Linux has it: ``ru_maxrss`` survives exec, so it can report the RSS of whatever spawned us."""
    hwm = _status_kb("VmHWM")
    if hwm is None:
        import resource

        return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, _PEAK["overall_mb"])
    return max(hwm / 1024.0, _PEAK["overall_mb"])


_PEAK = {"overall_mb": 0.0}


def _reset_peak() -> bool:
    """Start a new per-case high-water mark (Linux: ``echo 5 > /proc/self/clear_refs``)."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        _PEAK["overall_mb"] = max(_PEAK["overall_mb"], hwm / 1024.0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _case_peak_mb() -> float:
    hwm = _status_kb("VmHWM")
    if hwm is None:
        return peak_rss_mb()
    _PEAK["overall_mb"] = max(_PEAK["overall_mb"], hwm / 1024.0)
    return hwm / 1024.0


@dataclass
class Measurement:
    """Timed samples of one case with the CPU it used, its wall time and peak RSS."""

    samples_ms: list[float]
    cpu_pct: float
    wall_s: float
    peak_rss_mb: float
    results: list = field(default_factory=list, repr=False)


def measure(
    fn: Callable[[], Any], rounds: int, warmup: int = 0, keep_results: bool = False, cpu_window_s: float = 0.3
) -> Measurement:
    """Pedantic timing: ``warmup`` untimed calls, then ``rounds`` timed calls one by one (GC paused).

    CPU % is process CPU time / wall time (all threads). Other threads' CPU time is only accounted at
    scheduler ticks, so when the timed rounds take less than ``cpu_window_s`` more untimed calls run
    until the window is long enough to give a meaningful figure."""
    for _ in range(warmup):
        fn()
    _reset_peak()
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    out, res = [], []
    try:
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            t = time.perf_counter()
            r = fn()
            out.append((time.perf_counter() - t) * 1e3)
            if keep_results:
                res.append(r)
        while time.perf_counter() - w0 < cpu_window_s:
            fn()
        wall = time.perf_counter() - w0
        cpu = time.process_time() - c0
    finally:
        if was:
            gc.enable()
    return Measurement(out, 100.0 * cpu / wall if wall > 0 else 0.0, wall, _case_peak_mb(), res)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def summarize(
    samples_ms: Iterable[float],
    frames_per_call: float = 1.0,
    audio_ms_per_call: float | None = FRAME_MS,
    cpu_pct: float | None = None,
    peak_rss: float | None = None,
) -> dict:
    a = np.asarray(list(samples_ms), np.float64)
    p50 = float(np.percentile(a, 50))
    return {
        "n": int(a.size),
        "mean_ms": _r(a.mean()),
        "p50_ms": _r(p50),
        "p90_ms": _r(np.percentile(a, 90)),
        "p99_ms": _r(np.percentile(a, 99)),
        "max_ms": _r(a.max()),
        "fps": _r(frames_per_call * 1e3 / p50, 1) if frames_per_call and p50 > 0 else None,
        "rtf": _r(p50 / audio_ms_per_call, 4) if audio_ms_per_call else None,
        "cpu_pct": _r(cpu_pct, 1),
        "peak_rss_mb": _r(peak_rss, 1),
    }


@contextlib.contextmanager
def _quiet(*names: str):
    """Silence per-call INFO logs of the code under test (``rendered 250 frames ...``) while timing it."""
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old):
            lg.setLevel(lv)


# -- backends, precisions ----------------------------------------------------------------------------
def available_backends() -> list[str]:
    """Backends usable here, CPU first: cpu, cuda (onnxruntime CUDA EP), tensorrt (engines or ORT's TRT EP)."""
    out = ["cpu"]
    prov = available_providers()
    if "CUDAExecutionProvider" in prov:
        out.append("cuda")
    from toonsync.runtime.trt_backend import trt_unavailable_reason

    if trt_unavailable_reason() is None or "TensorrtExecutionProvider" in prov:
        out.append("tensorrt")
    return out


def available_precisions(name: str = "audio2motion") -> list[str]:
    d = model_dir()
    return [p for p in PRECISION_CHOICES if (d / f"{name}.{p}.onnx").is_file()]


def resolve_precisions(precision: str | Iterable[str]) -> list[str]:
    """``all`` -> every precision with a model file; one precision -> it plus the fp32 baseline."""
    have = available_precisions()
    if isinstance(precision, str):
        want = have if precision == "all" else [precision]
    else:
        want = list(precision)
    for p in want:
        if p not in PRECISION_CHOICES:
            raise ToonsyncError(f"unknown precision {p!r}; accepted: {', '.join(PRECISION_CHOICES)}, all")
    return sorted({"fp32", *want}, key=PRECISION_CHOICES.index)


def _secs(s: float) -> str:
    return f"{s:g}s"
