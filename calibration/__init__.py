"""Calibration data, INT8 quantization and the quantization report (numpy + onnxruntime)."""
