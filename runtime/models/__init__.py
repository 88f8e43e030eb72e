"""The shipped models: ``NAME.<precision>.onnx`` files and their cards (``NAME.onnx.json``)."""
