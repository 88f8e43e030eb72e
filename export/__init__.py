"""Export (torch -> ONNX): fp32/fp16 graphs, the fused PCM graph, model cards, parity checks, Triton
repositories. Needs ``pip install toonsync[export]``.
"""

if __name__ != "toonsync.export":  # loaded by its folder name (e.g. from a checkout on sys.path): refuse a second copy
    raise ImportError(f"import this package as toonsync.export, not {__name__} (install it: pip install -e .)")
