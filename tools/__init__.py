"""Measurement and documentation tools: ``toonsync bench`` (latency, throughput, streaming), the kiosk load test,
the streaming soak, render evaluation, and the documentation figures. The pytest-benchmark suite and recorded
results live in the repository's ``benchmarks/`` folder.
"""

if __name__ != "toonsync.tools":  # loaded by its folder name (e.g. from a checkout on sys.path): refuse a second copy
    raise ImportError(f"import this package as toonsync.tools, not {__name__} (install it: pip install -e .)")
