"""Fixtures of the pytest-benchmark suite (``pytest benchmarks/ --benchmark-only``).

The cases come from ``toonsync.tools.cases`` (the registry ``toonsync bench`` runs), so both report the same
stable names. Knobs (environment): ``TOONSYNC_BENCH_SECONDS`` (clip length, default 10),
``TOONSYNC_BENCH_FRAMES`` (timed rounds of a per-frame case, default 200), ``TOONSYNC_BENCH_BATCH``
(streams per call of the throughput cases, default 16), ``TOONSYNC_BENCH_BACKEND`` (auto = every
backend available here, or cpu / cuda / tensorrt).
"""

from __future__ import annotations

import os

import pytest

SECONDS = float(os.environ.get("TOONSYNC_BENCH_SECONDS", "10"))
FRAMES = int(os.environ.get("TOONSYNC_BENCH_FRAMES", "200"))
BATCH = int(os.environ.get("TOONSYNC_BENCH_BATCH", "16"))
BACKEND = os.environ.get("TOONSYNC_BENCH_BACKEND", "auto")


@pytest.fixture(scope="session")
def bctx():
    """Shared inputs: the demo speech tiled to SECONDS, the demo avatar (256 px), loaded models."""
    from toonsync.tools.cases import BenchContext

    ctx = BenchContext(SECONDS, 256, BACKEND, "auto")
    yield ctx
    ctx.close()
