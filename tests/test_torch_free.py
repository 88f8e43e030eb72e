"""The runtime must never import torch (checked in a fresh interpreter)."""
import subprocess
import sys


def test_runtime_imports_without_torch():
    code = (
        "import sys, runtime, runtime.pipeline, runtime.cli, runtime.prepare, runtime.video, runtime.dataset, "
        "runtime.preprocess, runtime.bench, runtime.doctor, runtime.identity, runtime.stylizer, runtime.background, "
        "runtime.metrics, runtime.eval_render, runtime.sheet, runtime.warp_renderer, runtime.drawing\n"
        "runtime.render\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m.startswith('training'))\n"
        "assert not bad, bad\n"
        "print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
