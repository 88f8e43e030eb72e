"""What machine this is: CPU model, cores, memory, GPUs, library versions (for reports and benchmarks).

Reads ``/proc`` where Linux has it and falls back to ``platform``; never fails, returns ``None`` or ``[]``
for what it cannot tell.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess

import numpy as np


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores() -> int | None:
    """Physical CPU cores (distinct core ids), or None."""
    try:
        cores, phys = set(), None
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    cores.add((phys, line.split(":", 1)[1].strip()))
        return len(cores) or None
    except OSError:
        return None


def mem_total_mb() -> float | None:
    """Total memory in MB, or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024.0, 0)
    except OSError:
        pass
    return None


def gpus() -> list[str]:
    """NVIDIA GPUs as nvidia-smi names them (name, driver, memory), or []."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        r = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in r.stdout.splitlines() if ln.strip()] if r.returncode == 0 else []


def package_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(thread_settings: dict | None = None) -> dict:
    """CPU, cores, memory, GPU, versions and thread settings (recorded in the JSON)."""
    import cv2
    import onnxruntime as ort

    from .backend import available_providers

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
        "av": package_version("av"),
        "torch": package_version("torch"),
        "toonsync": package_version("toonsync"),
    }
    env = {
        k: os.environ[k]
        for k in sorted(os.environ)
        if k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS") or k.startswith("TOONSYNC_ORT_")
    }
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "affinity_cores": affinity,
        "memory_mb": mem_total_mb(),
        "gpus": gpus(),
        "onnxruntime_providers": available_providers(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "threads": {"onnxruntime": thread_settings or {}, "opencv": cv2.getNumThreads(), "env": env},
        "loadavg_start": loadavg(),
    }


def loadavg() -> list[float] | None:
    """The 1/5/15 min load averages, or None."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
