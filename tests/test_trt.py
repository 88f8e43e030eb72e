"""TensorRT: the pieces that need no GPU are tested everywhere; engines only where a GPU + TensorRT exist."""

from __future__ import annotations

import numpy as np
import pytest

from toonsync.runtime.backend import load_model, model_dir
from toonsync.runtime.errors import ModelError
from toonsync.runtime.model_card import ModelCard
from toonsync.runtime.trt_backend import (
    cache_key,
    profile_shapes,
    trt_int8_problem,
    trt_unavailable_reason,
    trtexec_command,
)


def test_profiles_cover_streaming_and_batch():
    shapes = profile_shapes(ModelCard.load(model_dir(), "audio2motion"))
    lo, opt, hi = shapes["mel"]
    assert lo == (1, 4, 80) and opt == (1, 4, 80) and hi[0] >= 32 and hi[1] >= 4000
    hid = ModelCard.load(model_dir(), "audio2motion").config["hidden"]
    assert shapes["h"] == ((1, 1, hid), (1, 1, hid), (1, hi[0], hid))


def test_trtexec_line_and_cache_key(tmp_path):
    d = model_dir()
    meta = ModelCard.load(d, "audio2motion")
    cmd = trtexec_command(d / "audio2motion.fp32.onnx", tmp_path / "a.plan", meta, "fp16")
    assert "--fp16" in cmd and "--minShapes=mel:1x4x80" in cmd and "--timingCacheFile=" in cmd
    k1 = cache_key(d / "audio2motion.fp32.onnx", "fp16", "H100-sm90", "10.4")
    assert k1 != cache_key(d / "audio2motion.fp32.onnx", "fp16", "A10-sm86", "10.4")
    assert k1 != cache_key(d / "audio2motion.fp32.onnx", "int8", "H100-sm90", "10.4")


def test_tensorrt_backend_request_without_gpu_is_clear():
    reason = trt_unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present here")
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime's TensorRT provider is present")
    with pytest.raises(ModelError, match="tensorrt"):
        load_model("audio2motion", backend="tensorrt")
    assert load_model("audio2motion", backend="auto").backend.name.startswith("onnxruntime")  # logged fallback


def test_tensorrt_engine_matches_onnxruntime():
    reason = trt_unavailable_reason()
    if reason:
        pytest.skip(f"TensorRT engines need an NVIDIA GPU: {reason}")
    trt = load_model("audio2motion", precision="fp16", backend="tensorrt")
    cpu = load_model("audio2motion", precision="fp32", backend="cpu")
    rng = np.random.default_rng(0)
    x = {
        "mel": rng.standard_normal((1, 40, 80)).astype(np.float32),
        "mel_ctx": np.zeros((1, 80, 4), np.float32),
        "h": np.zeros((1, 1, cpu.card.config["hidden"]), np.float32),
        "c": np.zeros((1, 1, cpu.card.config["hidden"]), np.float32),
    }
    np.testing.assert_allclose(trt.run(x)["mouth"], cpu.run(x)["mouth"], atol=2e-2)


def test_cpu_int8_graph_is_refused_for_tensorrt_with_the_reason():
    """The shipped INT8 graph is tuned for onnxruntime (fused com.microsoft Gelu, uint8 activations): a
    TensorRT INT8 build would fail deep in the parser, so it is refused up front and fp16 is named."""
    pytest.importorskip("onnx")
    d = model_dir()
    why = trt_int8_problem(d / "audio2motion.int8.onnx")
    assert why and "com.microsoft:Gelu" in why and "uint8" in why and "fp16" in why
    assert trt_int8_problem(d / "audio2motion.fp32.onnx") is None
