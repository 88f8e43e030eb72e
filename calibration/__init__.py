"""Calibration data, INT8 quantization and the quantization report (numpy + onnxruntime + onnx)."""

if (
    __name__ != "toonsync.calibration"
):  # loaded by its folder name (e.g. from a checkout on sys.path): refuse a second copy
    raise ImportError(f"import this package as toonsync.calibration, not {__name__} (install it: pip install -e .)")
