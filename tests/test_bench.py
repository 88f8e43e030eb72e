"""Smoke runs of the benchmarks so they cannot rot (structure only: no timing asserts)."""
from __future__ import annotations

import json

from runtime.cli import main


def test_bench_smoke_json(tmp_path):
    out = tmp_path / "b.json"
    assert main(["-q", "bench", "--seconds", "1", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["schema"] == "toonsync-bench/1" and rep["machine"]["cores"] >= 1
    for case in ("logmel_per_frame", "audio2motion_per_frame", "audio2motion_per_frame_fp32", "draw_per_frame"):
        c = rep["cases"][case]
        assert 0 < c["p50_ms"] <= c["p90_ms"] <= c["p99_ms"] <= c["max_ms"]
    r = rep["cases"]["render_offline"]
    assert r["frames"] == 25 and r["rtf"] > 0 and rep["peak_rss_mb"] > 0
    assert set(rep["ratios"]) <= {"onnxruntime_fp32_vs_torch_eager", "int8_vs_fp32"}


def test_bench_stream_smoke(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["-q", "bench", "--stream", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["frames"] + rep["dropped"] == 250 and rep["latency_p50_ms"] > 0 and abs(rep["av_sync_ms"]) <= 40
