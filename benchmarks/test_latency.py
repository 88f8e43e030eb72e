"""pytest-benchmark suite: ``pytest benchmarks/ --benchmark-only`` (add ``--benchmark-json out.json`` to keep it).

Every case of ``toonsync bench`` that is a compute benchmark, under the same stable names
(``test_case[model.audio2motion.cpu.int8.b1]`` ...), each run pedantically: ``warmup`` untimed
calls, then ``rounds`` timed calls of one iteration each:

- each model per 40 ms frame at batch 1 and batch N, per backend available here and precision
  (fp32 / fp16 / int8), the fused PCM-in graph, and the torch-eager baseline (``test_torch_eager``);
- the audio frontend (streaming log-mel), the renderer (one frame drawn), the H.264 encoder;
- streaming steady state (40 ms of audio in, one drawn frame out) and a full offline ``render``;
- model load time and cold start (a fresh process: interpreter start -> first frame drawn).

The live stream in real time (``e2e.stream_realtime``) is paced by the wall clock, so it is not a
pytest-benchmark case: ``toonsync bench`` measures it. Targets are read from these reports and from
docs/benchmarks.md, never asserted (tests/test_bench.py runs this suite once with
``--benchmark-disable`` so it cannot rot).
"""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest
from conftest import BACKEND, BATCH, FRAMES, SECONDS

from toonsync.runtime.errors import ModelError
from toonsync.tools.cases import build_case, case_specs
from toonsync.tools.measure import available_backends, resolve_precisions

SPECS = case_specs(
    available_backends() if BACKEND == "auto" else [BACKEND],
    resolve_precisions("all"),
    BATCH,
    SECONDS,
    FRAMES,
    streams=(1, 4, 16, 64),
)


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_case(benchmark, bctx, spec):
    if spec.kind == "cold":  # time the child to its first frame only (toonsync bench also renders, for RSS)
        spec = dataclasses.replace(spec, params={**spec.params, "render": False})
    try:
        fn = build_case(spec, bctx)
        if spec.stage == "model":
            fn()  # fails fast (and skips) on a backend/precision that cannot run here
    except ModelError as e:
        pytest.skip(f"{spec.name}: {e}")
    benchmark.group = spec.stage
    benchmark.extra_info.update(spec.info())
    benchmark.pedantic(fn, rounds=spec.rounds, warmup_rounds=spec.warmup, iterations=1)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (toonsync[train])")
@pytest.mark.parametrize("batch", sorted({1, BATCH}), ids=lambda b: f"model.audio2motion.torch-eager.fp32.b{b}")
def test_torch_eager(benchmark, batch):
    from toonsync.tools.bench_torch import make_step

    step = make_step(batch, threads=1)  # torch's best thread count on 2 cores (docs/benchmarks.md)
    benchmark.group = "model"
    benchmark.extra_info.update(
        {
            "stage": "model",
            "backend": "torch-eager",
            "precision": "fp32",
            "batch": batch,
            "frames_per_call": batch,
            "threads": 1,
        }
    )
    benchmark.pedantic(step, rounds=FRAMES if batch == 1 else max(5, FRAMES // 2), warmup_rounds=10, iterations=1)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (toonsync[train])")
def test_torch_eager_motion_decoder(benchmark):
    """model.motion.torch-eager.fp32.b1: one 40 ms step of the transformer motion decoder in torch eager
    (compare with model.motion.cpu.fp32.b1 from test_case)."""
    from toonsync.tools.bench_torch import make_motion_step

    step = make_motion_step(threads=1)
    if step is None:
        pytest.skip("no motion decoder checkpoint ships (checkpoints/motion.pt)")
    benchmark.group = "model"
    benchmark.extra_info.update(
        {
            "stage": "model",
            "backend": "torch-eager",
            "precision": "fp32",
            "batch": 1,
            "frames_per_call": 1,
            "threads": 1,
            "model": "motion",
        }
    )
    benchmark.pedantic(step, rounds=FRAMES, warmup_rounds=10, iterations=1)
