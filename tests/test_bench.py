"""Smoke runs of the benchmarks so they cannot rot (structure only: no timing asserts).

``toonsync bench --quick`` runs every case once or a few times on a 1 s clip; its JSON is validated
against ``benchmarks/bench.schema.json`` (with ``jsonschema`` when installed, else the small validator
below); ``--precision all``, ``--compare``, ``--plot`` and the pytest-benchmark suite are exercised.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from toonsync.cli import main
from toonsync.tools.measure import available_precisions
from toonsync.tools.report import compare_reports

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "benchmarks" / "bench.schema.json").read_text())
QUICK = ["-q", "bench", "--quick", "--seconds", "1", "--frames", "10", "--batch", "4", "--streams", "1,4"]


# -- a small JSON-schema validator (the subset bench.schema.json uses) ---------------------------------
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value, t: str) -> bool:
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[t])


def schema_errors(value, schema: dict, root: dict | None = None, path: str = "$") -> list[str]:
    root = root or schema
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return schema_errors(value, node, root, path)
    errs: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in types):
            return [f"{path}: {value!r:.60} is not {types}"]
    if "const" in schema and value != schema["const"]:
        errs.append(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: {value!r} not in {schema['enum']}")
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{path}: {value} < {schema['minimum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errs.append(f"{path}: {value} <= {schema['exclusiveMinimum']}")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                errs.append(f"{path}: missing {k!r}")
        if len(value) < schema.get("minProperties", 0):
            errs.append(f"{path}: fewer than {schema['minProperties']} properties")
        props = schema.get("properties", {})
        for k, v in value.items():
            if "propertyNames" in schema and not re.search(schema["propertyNames"]["pattern"], k):
                errs.append(f"{path}: property name {k!r} does not match {schema['propertyNames']['pattern']}")
            if k in props:
                errs += schema_errors(v, props[k], root, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}: unexpected property {k!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += schema_errors(v, schema["additionalProperties"], root, f"{path}.{k}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errs.append(f"{path}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for i, v in enumerate(value):
                errs += schema_errors(v, schema["items"], root, f"{path}[{i}]")
    return errs


def validate(rep: dict) -> None:
    errs = schema_errors(rep, SCHEMA)
    assert not errs, "\n".join(errs[:20])
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.validate(rep, SCHEMA)


# -- one quick run with every option, shared -------------------------------------------------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    out, png = d / "a.json", d / "a.png"
    assert main([*QUICK, "--precision", "all", "--long", "0.5", "--json", str(out), "--plot", str(png)]) == 0
    return json.loads(out.read_text()), png


def test_long_audio_case(quick_run):
    """``--long``: fresh-process renders of 10 s and 30 s of speech, every frame there, memory not growing."""
    la = quick_run[0]["long_audio"]
    assert [p["audio_s"] for p in la["points"]] == [10.0, 30.0]
    assert [p["frames"] for p in la["points"]] == [250, 750]
    assert la["rss_growth_mb"] < 40 and all(p["peak_rss_mb"] > 50 for p in la["points"])


def test_quick_run_validates_against_schema(quick_run):
    rep, _ = quick_run
    validate(rep)
    assert rep["schema"] == "toonsync-bench/2" and rep["machine"]["cores"] >= 1
    assert rep["machine"]["threads"]["onnxruntime"]["intra_op"] >= 0 and rep["machine"]["versions"]["onnxruntime"]


def test_quick_run_cases(quick_run):
    rep, _ = quick_run
    cases = rep["cases"]
    for prec in available_precisions():  # --precision all: every model file, batch 1 and batch N
        for b in (1, 4):
            assert f"model.audio2motion.cpu.{prec}.b{b}" in cases or any(
                s["case"] == f"model.audio2motion.cpu.{prec}.b{b}" for s in rep["skipped"]
            )
    for name in (
        "frontend.logmel.40ms",
        "renderer.draw.256",
        "renderer.draw.512",
        "encode.h264.512",
        "e2e.stream_frame.256",
        "e2e.stream_frame.512",
        "e2e.render_offline.1s",
        "e2e.stream_realtime.20ms",
        "startup.face_prepare",
        "startup.model_load.cpu.fp32",
        "startup.cold_first_frame.photo",
        "startup.cold_first_frame.avatar",
        "model.audio2motion_pcm.cpu.fp32.b1",
    ):
        c = cases[name]
        assert 0 <= c["p50_ms"] <= c["p90_ms"] <= c["p99_ms"] <= c["max_ms"], name
        assert len(rep["samples_ms"][name]) == c["n"]
    assert cases["e2e.render_offline.1s"]["frames"] == 25
    for n in (1, 4):  # N live streams per tick, the model batched vs called per stream
        b, q = cases[f"multistream.batched.n{n}"], cases[f"multistream.sequential.n{n}"]
        assert b["frames_per_call"] == q["frames_per_call"] == n and b["fps"] > 0 and q["fps"] > 0
    assert rep["ratios"]["multistream_batched_vs_sequential_n4"] > 0 and rep["options"]["streams"] == [1, 4]
    assert cases["model.audio2motion.cpu.fp32.b4"]["fps"] > 0 and cases["model.audio2motion.cpu.fp32.b4"]["batch"] == 4
    assert cases["startup.cold_first_frame.photo"]["milestones_ms"]["first_frame_ms"] > 0
    st = cases["e2e.stream_realtime.20ms"]
    assert st["frames"] + st["dropped"] == 25 and st["audio_to_frame_p99_ms"] >= st["p99_ms"]
    assert "int8_vs_fp32" in rep["ratios"] and cases["model.audio2motion.cpu.int8.b1"]["speedup"]["fp32"] > 0
    if "model.audio2motion.torch-eager.fp32.b1" in cases:  # torch installed: the baseline ran in a child
        assert rep["ratios"]["onnxruntime_fp32_vs_torch_eager"] > 0
    assert len(rep["cost_vs_length"]["points"]) == 2 and rep["cost_vs_length"]["fit"]["ms_per_audio_s"] is not None
    assert set(rep["headline"]) == {
        "per_frame_compute_ms",
        "per_frame_compute_ms_256",
        "offline_rtf",
        "onnxruntime_vs_torch_eager",
        "int8_vs_fp32",
        "stream_p99_latency_ms",
        "peak_rss_mb",
    }


def test_quick_run_plot(quick_run):
    _, png = quick_run
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_schema_validator_catches_mistakes(quick_run):
    rep, _ = quick_run
    bad = copy.deepcopy(rep)
    bad["cases"]["frontend.logmel.40ms"]["p50_ms"] = "fast"
    del bad["headline"]["offline_rtf"]
    bad["cases"]["Not A Stable Name"] = bad["cases"]["renderer.draw.256"]
    errs = schema_errors(bad, SCHEMA)
    assert any("p50_ms" in e for e in errs) and any("offline_rtf" in e for e in errs)
    assert any("Not A Stable Name" in e for e in errs)


def test_compare_reports(quick_run):
    rep, _ = quick_run
    old = copy.deepcopy(rep)
    old["cases"]["renderer.draw.256"]["p50_ms"] *= 2.0  # the new run is 2x faster here
    old["cases"]["frontend.logmel.40ms"]["p50_ms"] /= 2.0  # ... and 2x slower here
    old["cases"]["startup.old_case"] = dict(old["cases"]["startup.face_prepare"])
    cmp = compare_reports(old, rep)
    verdicts = {r["case"]: r["verdict"] for r in cmp["cases"]}
    assert verdicts["renderer.draw.256"] == "faster" and verdicts["frontend.logmel.40ms"] == "slower"
    assert verdicts["e2e.stream_frame.256"] == "same"
    assert cmp["regressions"] == ["frontend.logmel.40ms"] and cmp["only_old"] == ["startup.old_case"]
    v1 = {
        "schema": "toonsync-bench/1",
        "cases": {"draw_per_frame": {"p50_ms": 1.0}, "render_offline": {"clip_s": 1.0, "median_ms": 100.0, "rtf": 0.1}},
    }
    names = {r["case"] for r in compare_reports(v1, rep)["cases"]}
    assert names == {"renderer.draw.256", "e2e.render_offline.1s"}  # old names mapped onto the new ones


def test_bench_cli_compare(quick_run, tmp_path, capsys):
    rep, _ = quick_run
    old = tmp_path / "old.json"
    old.write_text(json.dumps(rep))
    out = tmp_path / "b.json"
    assert (
        main(
            [*QUICK, "--precision", "int8", "--no-torch", "--threads-sweep", "--json", str(out), "--compare", str(old)]
        )
        == 0
    )
    new = json.loads(out.read_text())
    validate(new)
    assert new["options"]["precisions"] == ["fp32", "int8"]  # fp32 always measured: the baseline
    assert not any(".fp16." in n for n in new["cases"]) and not any("torch" in n for n in new["cases"])
    assert new["runtime"]["precision"] == "int8"
    assert {r["case"] for r in new["compare"]["cases"]} >= {"renderer.draw.256", "e2e.stream_frame.256"}
    assert set(new["threads"]["conditions"]) == {"idle", "1 busy core"}
    sweep = new["threads"]["conditions"]["1 busy core"]["configs"]
    assert {"ort-default", "intra1"} <= set(sweep) and sweep["intra1"]["settings"]["intra"] == 1
    assert sweep["intra1"]["stream_frame"]["p50_ms"] > 0 and sweep["intra1"]["paced_cpu_pct"] >= 0
    text = capsys.readouterr().out
    assert "compare with the run of" in text and "speed-up" in text and "headline" in text
    assert "thread settings" in text


def test_bench_compare_bad_file(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("not json")
    assert main(["bench", "--compare", str(bad)]) == 1
    assert main(["bench", "--compare", str(tmp_path / "missing.json")]) == 1
    assert "--compare" in capsys.readouterr().err


def test_bench_unavailable_backend_is_one_line_error(capsys):
    from toonsync.tools.measure import available_backends

    if "cuda" in available_backends():
        pytest.skip("this machine has CUDA")
    assert main(["bench", "--quick", "--backend", "cuda"]) == 1
    assert "CUDAExecutionProvider" in capsys.readouterr().err


def test_bench_stream_smoke(tmp_path):
    out = tmp_path / "s.json"
    assert main(["-q", "bench", "--stream", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["frames"] + rep["dropped"] == 250 and rep["latency_p50_ms"] > 0 and abs(rep["av_sync_ms"]) <= 40


def test_pytest_benchmark_suite_runs_once():
    """``pytest benchmarks/`` with ``--benchmark-disable``: every case runs once (no timing)."""
    env = {**os.environ, "TOONSYNC_BENCH_SECONDS": "1", "TOONSYNC_BENCH_FRAMES": "3", "TOONSYNC_BENCH_BATCH": "2"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--benchmark-disable",
            str(ROOT / "benchmarks"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert re.search(r"\d+ passed", r.stdout)
    assert "failed" not in r.stdout.splitlines()[-1]
