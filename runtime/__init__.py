"""What a deployed app needs: inputs, face, avatar, engines, motion, streaming, render, live I/O, serve.

numpy + onnxruntime (+ opencv, soundfile, PyAV); never torch, never the training, export, calibration or
benchmark packages. The public API is re-exported lazily by ``toonsync``.
"""

if __name__ != "toonsync.runtime":  # loaded by its folder name (e.g. from a checkout on sys.path): refuse a second copy
    raise ImportError(f"import this package as toonsync.runtime, not {__name__} (install it: pip install -e .)")
