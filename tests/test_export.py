"""Training code path (tiny) -> ONNX export -> parity with torch; shipped model sidecar and streaming state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.backend import load_model, model_dir
from toonsync.runtime.errors import ModelError
from toonsync.runtime.mel import log_mel
from toonsync.runtime.model_card import sha256_file

torch = pytest.importorskip("torch", reason="export tests need toonsync[export]")


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_corpus, tmp_path_factory):
    """Train a few steps on a tiny real corpus (the CI proof of the training path)."""
    from toonsync.training.models.audio2motion import Audio2MotionConfig
    from toonsync.training.train_audio2motion import TrainConfig, train

    d = tmp_path_factory.mktemp("tiny")
    info = train(
        tiny_corpus / "train.h5",
        tiny_corpus / "test.h5",
        d / "run",
        Audio2MotionConfig(channels=32, hidden=32),
        TrainConfig(steps=30, batch=8, crop_frames=32, eval_every=30),
    )
    assert info["history"][-1]["loss"] < 0.2 and info["metrics"]["clips"] > 0
    return d / "run" / "audio2motion.pt"


def test_export_parity_and_sidecar(tiny_checkpoint, tmp_path):
    from toonsync.export.onnx_export import export_audio2motion

    meta = export_audio2motion(tiny_checkpoint, tmp_path)
    assert meta["parity"]["max_abs_diff"] <= meta["parity"]["atol"] == 1e-4
    assert meta["parity_fp16"]["max_abs_diff"] <= meta["parity_fp16"]["atol"] == 2e-2
    fused = json.loads((tmp_path / "audio2motion_pcm.onnx.json").read_text())
    assert fused["parity"]["max_abs_diff"] <= 1e-4 and list(fused["inputs"])[:2] == ["pcm", "pcm_ctx"]
    f = tmp_path / "audio2motion.fp32.onnx"
    assert meta["files"]["audio2motion.fp32.onnx"]["sha256"] == sha256_file(f)
    side = json.loads((tmp_path / "audio2motion.onnx.json").read_text())
    for key in ("config", "inputs", "outputs", "sample_rate", "fps", "training", "metrics", "files"):
        assert key in side
    props = {p.key: p.value for p in onnx.load(str(f)).metadata_props}
    assert json.loads(props["config"]) == side["config"] and props["name"] == "audio2motion"
    g = onnx.load(str(f)).graph
    assert [i.name for i in g.input] == ["mel", "mel_ctx", "h", "c"]
    assert [o.name for o in g.output] == ["mouth", "landmarks", "embedding", "mel_ctx_out", "h_out", "c_out"]
    assert g.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_tampered_model_is_refused(tiny_checkpoint, tmp_path):
    from toonsync.export.onnx_export import export_audio2motion

    export_audio2motion(tiny_checkpoint, tmp_path)
    f = tmp_path / "audio2motion.fp32.onnx"
    f.write_bytes(f.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match="does not match its model card"):
        load_model("audio2motion", directory=tmp_path)
    f.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        load_model("audio2motion", directory=tmp_path, verify=False)


def test_shipped_model_has_sidecar_metrics_and_size():
    side = json.loads((model_dir() / "audio2motion.onnx.json").read_text())
    shipped = [*model_dir().glob("*.onnx"), *(Path(__file__).resolve().parents[1] / "checkpoints").glob("*.pt")]
    assert sum(f.stat().st_size for f in shipped) < 60 * 2**20  # every model we ship, ONNX and checkpoints
    assert side["training"]["train_data"]["hours"] > 0.5 and side["metrics"]["r_target"] > 0.5
    assert side["parity"]["max_abs_diff"] <= 1e-4


def test_shipped_model_chunked_equals_whole(speech_wav):
    """Streaming state (mel_ctx, h, c) is explicit graph I/O: 1-frame chunks reproduce the whole-clip run."""
    m = load_model("audio2motion", backend="cpu")
    cfg = m.card["config"]
    mel = log_mel(load_audio(speech_wav))[None, : 4 * 50]
    zero = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    state = {"mel_ctx": zero(1, 80, cfg["kernel"] - 1), "h": zero(1, 1, cfg["hidden"]), "c": zero(1, 1, cfg["hidden"])}
    whole = m.run({"mel": mel, **state})["mouth"]
    parts = []
    for i in range(0, mel.shape[1], 4):
        o = m.run({"mel": mel[:, i : i + 4], **state})
        state = {"mel_ctx": o["mel_ctx_out"], "h": o["h_out"], "c": o["c_out"]}
        parts.append(o["mouth"])
    np.testing.assert_allclose(np.concatenate(parts, 1), whole, atol=1e-5)


def test_calibrate_int8_within_budget_and_auto_precision(tiny_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    from toonsync.calibration.quantize import Budget, calibrate
    from toonsync.calibration.reader import DATA_DIR, CalibrationSet
    from toonsync.export.onnx_export import export_audio2motion

    export_audio2motion(tiny_checkpoint, tmp_path)
    cal = CalibrationSet.from_wavs(sorted(DATA_DIR.glob("*.wav"))[:2])
    assert cal.manifest["count"] == 2 and all(len(f["sha256"]) == 64 for f in cal.manifest["files"])
    rep = calibrate(tmp_path, cal, report=tmp_path / "r.json", docs=tmp_path / "q.md")
    m = rep["models"]["audio2motion"]
    side = json.loads((tmp_path / "audio2motion.onnx.json").read_text())
    assert "audio2motion.int8.onnx" in side["files"] and side["default_precision"] == m["default_precision"]
    assert side["quantization"]["int8"]["calibration"]["files"][0]["file"].startswith("calib_")
    assert load_model("audio2motion", directory=tmp_path).precision == m["default_precision"]
    assert m["within_budget"] and m["speedup_clip_10s"] > 0 and m["speedup_frame_b16"] > 0
    lenient = calibrate(tmp_path, cal, Budget(min_speedup=0.0))  # the speed gate open: accuracy decides
    assert lenient["models"]["audio2motion"]["default_precision"] == "int8"
    assert load_model("audio2motion", directory=tmp_path).precision == "int8"
    strict = calibrate(tmp_path, cal, Budget(max_drift_pct_iod=0.0, min_open_corr=1.01, min_speedup=0.0))
    assert strict["models"]["audio2motion"]["default_precision"] == "fp32"  # over budget -> not the default
    assert load_model("audio2motion", directory=tmp_path).precision == "fp32"


def test_budget_counts_the_closure_heads_flips():
    from toonsync.calibration.quantize import Budget, within_budget

    ok = {"landmark_drift_pct_iod": 0.03, "mouth_open_corr": 0.999}
    assert within_budget(ok, Budget()) and within_budget({**ok, "through_motion_decoder": ok}, Budget())
    flips = {**ok, "closed_flips": 0.05}  # a closure head whose drawn closures INT8 flips on 5 % of frames
    assert not within_budget({**ok, "through_motion_decoder": flips}, Budget())
    assert within_budget({**ok, "through_motion_decoder": flips}, Budget(max_closed_flips=0.1))
    assert not within_budget({**ok, "mouth_open_corr": 0.9}, Budget())


def test_shipped_int8_is_within_its_stated_budget():
    """Recompute (not read) the shipped INT8 model's drift against fp32 on held-out speech."""
    from toonsync.calibration.quantize import Budget, accuracy_delta, measure, through_decoder, within_budget

    side = json.loads((model_dir() / "audio2motion.onnx.json").read_text())
    if "audio2motion.int8.onnx" not in side["files"]:
        pytest.skip("no INT8 model shipped (run `toonsync calibrate`)")
    ctx, hidden = side["config"]["kernel"] - 1, side["config"]["hidden"]
    m = measure(model_dir(), ("fp32", "int8"), ctx, hidden, timing=False)
    d = accuracy_delta(m["fp32"]["_outs"], m["int8"]["_outs"])
    b = Budget(**side["quantization"]["int8"]["budget"])
    assert d["landmark_drift_pct_iod"] <= b.max_drift_pct_iod and d["mouth_open_corr"] >= b.min_open_corr
    d32, d8 = through_decoder(model_dir(), m["fp32"]["_outs"]), through_decoder(model_dir(), m["int8"]["_outs"])
    if d32 is not None:  # what the runtime shows: the decoder's mouth and closure head, from INT8 embeddings
        d["through_motion_decoder"] = accuracy_delta(d32, d8)
        assert "closed_flips" in d["through_motion_decoder"]  # the shipped decoder has a closure head
    assert within_budget(d, b)
    assert side["quantization"]["int8"]["within_budget"] is True
    assert side["default_precision"] in ("int8", "fp32")  # int8 only when also >= min_speedup (a timing: not asserted)


def test_fused_pcm_graph_equals_numpy_frontend_plus_model(speech_wav):
    """The shipped fused graph (log-mel as Conv1d DFT inside) matches runtime.mel + audio2motion, in chunks too."""
    from toonsync.runtime.backend import OrtBackend

    d = model_dir()
    fused = OrtBackend(d / "audio2motion_pcm.fp32.onnx", "cpu")
    plain = OrtBackend(d / "audio2motion.fp32.onnx", "cpu")
    a = load_audio(speech_wav)[: 640 * 40]
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    cfg = json.loads((d / "audio2motion.onnx.json").read_text())["config"]
    st = {"mel_ctx": z(1, 80, cfg["kernel"] - 1), "h": z(1, 1, cfg["hidden"]), "c": z(1, 1, cfg["hidden"])}
    ref = plain.run({"mel": log_mel(a)[None], **st})["mouth"]
    pc, parts = z(1, 240), []
    for i in range(0, a.size, 640 * 7):
        o = fused.run({"pcm": a[None, i : i + 640 * 7], "pcm_ctx": pc, **st})
        pc, st = o["pcm_ctx_out"], {"mel_ctx": o["mel_ctx_out"], "h": o["h_out"], "c": o["c_out"]}
        parts.append(o["mouth"])
    np.testing.assert_allclose(np.concatenate(parts, 1), ref, atol=1e-4)
