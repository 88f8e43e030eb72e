"""The ``name.onnx.json`` sidecar and the matching ONNX metadata (needs only ``onnx``, not torch)."""
from __future__ import annotations

import json
from pathlib import Path

import onnx

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.backend import read_sidecar, sha256_file


def write_sidecar(model_dir: Path, name: str, meta: dict) -> dict:
    """Stamp ``meta`` (all keys but ``files``) into every ``name.*.onnx`` as metadata, hash the files,
    write ``name.onnx.json``. Deterministic: the same inputs give byte-identical files."""
    meta = {k: v for k, v in meta.items() if k != "files"}
    files = sorted(model_dir.glob(f"{name}.*.onnx"))
    for f in files:  # metadata first (it changes the bytes), hashes after
        m = onnx.load(str(f))
        del m.metadata_props[:]
        for k, v in meta.items():
            m.metadata_props.add(key=k, value=json.dumps(v) if not isinstance(v, str) else v)
        with atomic_path(f) as tmp:
            onnx.save(m, str(tmp))
    meta["files"] = {f.name: {"sha256": sha256_file(f), "bytes": f.stat().st_size,
                              "precision": f.name.split(".")[-2]} for f in files}
    with atomic_path(model_dir / f"{name}.onnx.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def update_sidecar(model_dir: Path, name: str, **changes) -> dict:
    """Merge ``changes`` into an existing sidecar and re-stamp/re-hash every file of the model."""
    meta = read_sidecar(model_dir, name)
    meta.update(changes)
    return write_sidecar(model_dir, name, meta)
