"""``toonsync export`` / ``calibrate`` write where they are asked (never into the installed package unless
``--install``), and a re-export of the shipped checkpoints reproduces the shipped models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from toonsync import cli
from toonsync.runtime.backend import DEFAULT_MODEL_DIR
from toonsync.runtime.model_card import CARD_SUFFIX

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "checkpoints" / "audio2motion.pt"
# exported fresh from the checkpoints/ folder (the others are calibrated or not shipped as checkpoints)
REEXPORTED = ("audio2motion", "audio2motion_pcm", "motion", "render", "identity")


def _installed_state() -> dict[str, int]:
    return {f.name: f.stat().st_mtime_ns for f in DEFAULT_MODEL_DIR.iterdir()}


def test_export_needs_a_checkpoint_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pytest.importorskip("torch", reason="export needs toonsync[export]")
    assert cli.main(["export", "-o", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("toonsync export: error: export needs --checkpoint") and "\n" not in err
    assert cli.main(["export", "--checkpoint", str(tmp_path / "nope.pt")]) == 1
    assert "not found" in capsys.readouterr().err


def test_export_writes_under_the_current_directory_by_default(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="export needs toonsync[export]")
    monkeypatch.chdir(tmp_path)
    before = _installed_state()
    assert cli.main(["-q", "export", "--only", "render"]) == 0
    out = tmp_path / "toonsync-models"
    assert (out / "render.fp32.onnx").is_file() and (out / f"render{CARD_SUFFIX}").is_file()
    assert (out / "render.fp32.onnx").read_bytes() == (DEFAULT_MODEL_DIR / "render.fp32.onnx").read_bytes()
    assert _installed_state() == before  # the installed package is never written unless --install


def _graph_bytes(path: Path) -> bytes:
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]  # the card's fields, stamped in: compared through the card
    return m.SerializeToString()


def _without_parity(card: dict) -> dict:
    return {k: v for k, v in card.items() if not k.startswith("parity") and k != "files"}


def _same_weights(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal but for the last bit: fp32 within 1e-5, fp16 within one half-precision step (a last-bit difference
    of the fp32 weight can round to the neighbouring fp16 value)."""
    if a.dtype == np.float16:
        step = np.spacing(np.maximum(np.abs(a), np.abs(b))).astype(np.float32)
        return bool(np.all(np.abs(a.astype(np.float32) - b.astype(np.float32)) <= step))
    return bool(np.allclose(a, b, atol=1e-5))


def test_reexport_reproduces_the_shipped_models(tmp_path):
    """Exporting the shipped checkpoints into a copy of the shipped model directory gives the same graphs and
    the same cards (INT8 calibration and held-out figures carried over: same training run). On the machine
    the models were made on the files are byte-identical; elsewhere the parity figures (float sums of a
    check run) may differ in their last bits, so those are compared within their tolerance here."""
    pytest.importorskip("torch", reason="export needs toonsync[export]")
    pytest.importorskip("onnx", reason="export needs toonsync[export]")
    if not CHECKPOINT.is_file():
        pytest.skip("checkpoints/ is not in this checkout")
    d = tmp_path / "models"
    shutil.copytree(DEFAULT_MODEL_DIR, d, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    assert cli.main(["-q", "export", "--checkpoint", str(CHECKPOINT), "-o", str(d), "--report", ""]) == 0
    for name in REEXPORTED:
        old = json.loads((DEFAULT_MODEL_DIR / f"{name}{CARD_SUFFIX}").read_text())
        new = json.loads((d / f"{name}{CARD_SUFFIX}").read_text())
        assert list(new) == list(old), f"{name}: card fields or their order changed"
        assert _without_parity(new) == _without_parity(old), name
        for k in (k for k in old if k.startswith("parity")):
            assert abs(new[k]["max_abs_diff"] - old[k]["max_abs_diff"]) <= 0.1 * old[k]["atol"], (name, k)
        assert set(new["files"]) == set(old["files"])
        for f in old["files"]:
            if name == "identity":  # batch-norm folding sums in another order on other CPUs: last-bit weights
                import onnx
                from onnx import numpy_helper

                wa = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(DEFAULT_MODEL_DIR / f)).graph.initializer}
                wb = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(d / f)).graph.initializer}
                assert wa.keys() == wb.keys()
                assert all(_same_weights(wa[k], wb[k]) for k in wa), f
            else:
                assert _graph_bytes(d / f) == _graph_bytes(DEFAULT_MODEL_DIR / f), f
    int8 = "audio2motion.int8.onnx"  # not re-exported: kept, re-stamped with the same card
    assert _graph_bytes(d / int8) == _graph_bytes(DEFAULT_MODEL_DIR / int8)


def test_calibrate_copies_then_quantizes_in_the_output_directory(tmp_path, monkeypatch):
    """``toonsync calibrate -o DIR`` copies the installed models to DIR and quantizes there."""
    pytest.importorskip("onnx", reason="calibration needs toonsync[export]")
    pytest.importorskip("onnxruntime.quantization", reason="calibration needs toonsync[export]")
    monkeypatch.chdir(tmp_path)
    before = _installed_state()
    out = tmp_path / "q"
    assert cli.main(["-q", "calibrate", "-o", str(out)]) == 0
    assert _installed_state() == before
    card = json.loads((out / f"audio2motion{CARD_SUFFIX}").read_text())
    assert card["default_precision"] in ("int8", "fp32") and "int8" in card["quantization"]
    assert card["quantization"]["int8"]["calibration"]["files"], "calibrated on the bundled speech"
    rep = json.loads((out / "quantization.json").read_text())
    assert rep["models"]["audio2motion"]["default_precision"] == card["default_precision"]
    assert (out / "quantization.md").is_file() and (out / "render.fp32.onnx").is_file()  # a complete model dir
