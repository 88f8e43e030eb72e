"""The runtime must never import torch, nor the training, export, calibration or benchmark packages (checked in
a fresh interpreter, importing every runtime module)."""

import pkgutil
import subprocess
import sys

import toonsync.runtime


def test_runtime_imports_without_torch():
    mods = sorted(
        f"toonsync.runtime.{m.name}" for m in pkgutil.iter_modules(toonsync.runtime.__path__) if m.name != "__main__"
    )
    assert "toonsync.runtime.pipeline" in mods and "toonsync.runtime.server" in mods
    code = (
        f"import sys, toonsync, {', '.join(mods)}\n"
        "toonsync.render, toonsync.stream, toonsync.AudioModel\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.split('.')[:2] in "
        "(['toonsync', 'training'], ['toonsync', 'export'], ['toonsync', 'calibration'], ['toonsync', 'tools']))\n"
        "assert not bad, bad\n"
        "print('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_cli_registers_every_command_without_heavy_imports():
    """Building the whole command tree imports no torch, onnx or web framework (handlers load them lazily)."""
    code = (
        "import sys, toonsync.cli\ntoonsync.cli.build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'starlette', 'uvicorn', 'h5py'))\n"
        "assert not bad, bad\nprint('ok')"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
