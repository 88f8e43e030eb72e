"""Measurement tools: ``toonsync bench`` (latency, throughput, streaming), the kiosk load test, the
streaming soak, render evaluation and its metrics, documentation figures; and the pytest-benchmark cases.
"""

if __name__ != "toonsync.benchmarks":  # loaded by its folder name (e.g. from a checkout on sys.path): refuse a second copy
    raise ImportError(f"import this package as toonsync.benchmarks, not {__name__} (install it: pip install -e .)")
