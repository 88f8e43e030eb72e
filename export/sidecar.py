"""Writing a model's card (``NAME.onnx.json``) and the matching ONNX metadata (needs only ``onnx``, not torch).

The card's fields are stamped into every ``NAME.<precision>.onnx`` file as metadata, then the files are hashed
and the card written with their sha256 and sizes. The runtime reads the card back once as a
:class:`toonsync.runtime.model_card.ModelCard`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.model_card import ModelCard, sha256_file

# fields measured after export (``toonsync calibrate``, ``toonsync eval --record``), in the order they are added
MEASURED = ("default_precision", "quantization", "heldout_eval")


def carried_measurements(model_dir: Path, name: str, run_id: str | None) -> dict:
    """The measured fields of the card a re-export replaces, when that card describes the same training run
    (same ``run_id``: the same weights, so its INT8 calibration and held-out figures still hold)."""
    if run_id is None or not ModelCard.exists(model_dir, name):
        return {}
    old = ModelCard.load(model_dir, name)
    return {k: old[k] for k in MEASURED if k in old} if old.run_id == run_id else {}


def write_sidecar(model_dir: Path, name: str, meta: Mapping[str, Any]) -> dict:
    """Stamp ``meta`` (all keys but ``files``) into every ``name.*.onnx`` as metadata, hash the files,
    write ``name.onnx.json``; returns the card as a dict. Deterministic: the same inputs give byte-identical files.

    Measured fields of the card being replaced (``MEASURED``) are kept when it is the same training run and
    ``meta`` does not set them, so re-exporting into a calibrated model directory reproduces it."""
    meta = {k: v for k, v in dict(meta).items() if k != "files"}
    meta.setdefault("name", name)
    for k, v in carried_measurements(Path(model_dir), name, meta.get("run_id")).items():
        meta.setdefault(k, v)
    files = sorted(Path(model_dir).glob(f"{name}.*.onnx"))
    for f in files:  # metadata first (it changes the bytes), hashes after
        m = onnx.load(str(f))
        del m.metadata_props[:]
        for k, v in meta.items():
            m.metadata_props.add(key=k, value=json.dumps(v) if not isinstance(v, str) else v)
        with atomic_path(f) as tmp:
            onnx.save(m, str(tmp))
    meta["files"] = {
        f.name: {"sha256": sha256_file(f), "bytes": f.stat().st_size, "precision": f.name.split(".")[-2]} for f in files
    }
    card = ModelCard.from_dict(meta, Path(model_dir) / f"{name}.onnx.json")  # validates before anything is written
    card.save(model_dir)
    return card.to_dict()


def update_sidecar(model_dir: Path, name: str, **changes: Any) -> dict:
    """Merge ``changes`` into an existing card and re-stamp/re-hash every file of the model."""
    return write_sidecar(model_dir, name, {**ModelCard.load(model_dir, name).to_dict(), **changes})
