"""``ModelCard``: the typed contents of a model's ``NAME.onnx.json`` card, read once beside the model files.

A model ships as ``NAME.<precision>.onnx`` files (fp32, int8, fp16) plus one card, ``NAME.onnx.json``, written
by ``toonsync export`` (and extended by ``toonsync calibrate`` and ``toonsync eval --record``). The card says
how the model was made and how well it scores, and everything the runtime needs to drive it: graph inputs and
outputs with their shapes, the streaming state (every input ``X`` with an output ``X_out``), frame rate, hop,
look-ahead, the calibrated default precision, and the sha256 of every file.

``ModelCard.load(directory, name)`` parses and validates a card once (cached per file version); every reader
uses it. ``save`` writes it back deterministically (the same card gives the same bytes), keeping every field,
known or not, in its order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import ModelError

BATCH = "batch"  # the name of the batch axis in the cards' shapes
CARD_SUFFIX = ".onnx.json"


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: its name and shape (ints, or axis names such as ``batch`` and ``frames``)."""

    name: str
    shape: tuple[int | str, ...]

    def concrete(self, batch: int = 1) -> tuple[int, ...]:
        """The shape with the batch axis set to ``batch`` (other named axes are not allowed here)."""
        out = []
        for d in self.shape:
            if d == BATCH:
                out.append(batch)
            elif isinstance(d, int):
                out.append(d)
            else:
                raise ModelError(f"{self.name}: axis {d!r} has no fixed size")
        return tuple(out)


@dataclass(frozen=True)
class ModelFile:
    """One file of the model: name, sha256, size in bytes, precision."""

    name: str
    sha256: str
    bytes: int
    precision: str


def _specs(raw: Any, what: str, where: str) -> tuple[TensorSpec, ...]:
    if not isinstance(raw, Mapping) or not all(isinstance(s, list) for s in raw.values()):
        raise ModelError(f"model card {where}: '{what}' must map tensor names to shapes")
    return tuple(TensorSpec(str(k), tuple(v)) for k, v in raw.items())


@dataclass(frozen=True)
class ModelCard:
    """The parsed card of one model (immutable). ``data`` holds every field of the file, in order."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, ModelFile] = field(default_factory=dict)
    fps: int | None = None
    sample_rate: int | None = None
    hop: int | None = None
    lookahead_frames: int = 0
    run_id: str | None = None
    default_precision: str = "fp32"
    metrics: Mapping[str, Any] = field(default_factory=dict)
    emotion_classes: tuple[str, ...] | None = None
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)
    path: Path | None = field(default=None, compare=False)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: Path | None = None) -> ModelCard:
        """Validate and type a card's JSON object (``path``: where it was read from, for messages)."""
        where = str(path) if path else "(in memory)"
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
            raise ModelError(f"model card {where} has no 'name'; re-export the model")
        try:
            files = {
                k: ModelFile(k, str(v["sha256"]), int(v["bytes"]), str(v["precision"]))
                for k, v in (d.get("files") or {}).items()
            }
            card = cls(
                name=d["name"],
                inputs=_specs(d.get("inputs", {}), "inputs", where),
                outputs=_specs(d.get("outputs", {}), "outputs", where),
                config=MappingProxyType(dict(d.get("config") or {})),
                files=MappingProxyType(files),
                fps=_opt_int(d.get("fps")),
                sample_rate=_opt_int(d.get("sample_rate")),
                hop=_opt_int(d.get("hop")),
                lookahead_frames=int(d.get("lookahead_frames", 0)),
                run_id=d.get("run_id"),
                default_precision=str(d.get("default_precision", "fp32")),
                metrics=MappingProxyType(dict(d.get("metrics") or {})),
                emotion_classes=tuple(d["emotion_classes"]) if d.get("emotion_classes") else None,
                data=MappingProxyType(json.loads(json.dumps(d))),
                path=path,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(
                f"model card {where} is malformed ({type(e).__name__}: {e}); re-export the model"
            ) from None
        problems = [what for what, bad in _range_checks(card) if bad]
        if problems:
            raise ModelError(f"model card {where} is malformed ({'; '.join(problems)}); re-export the model")
        return card

    @classmethod
    def load(cls, directory: str | os.PathLike, name: str) -> ModelCard:
        """The card ``directory/NAME.onnx.json`` (parsed once per file version), or a one-line ``ModelError``."""
        path = Path(directory) / f"{name}{CARD_SUFFIX}"
        try:
            st = path.stat()
        except OSError:
            raise ModelError(f"model card {path} not found; run `toonsync export` or reinstall toonsync") from None
        return _load_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)

    @staticmethod
    def exists(directory: str | os.PathLike, name: str) -> bool:
        """Whether ``directory`` holds a card for ``name``."""
        return (Path(directory) / f"{name}{CARD_SUFFIX}").is_file()

    # ------------------------------------------------------------------ what the runtime needs
    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def state(self) -> tuple[TensorSpec, ...]:
        """The streaming state: each input ``X`` that the graph returns updated as ``X_out``."""
        outs = set(self.output_names)
        return tuple(t for t in self.inputs if f"{t.name}_out" in outs)

    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """Shape of every state tensor for ``batch`` streams."""
        return {t.name: t.concrete(batch) for t in self.state}

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Zeros for every state tensor (float32): the state of a stream that has heard nothing yet."""
        return {k: np.zeros(s, np.float32) for k, s in self.state_shapes(batch).items()}

    def batch_axis(self, tensor: str) -> int:
        """Which axis of ``tensor`` (an input or output) carries the batch."""
        for t in self.inputs + self.outputs:
            if t.name == tensor:
                if BATCH not in t.shape:
                    raise ModelError(f"{self.name}: {tensor} has no batch axis")
                return t.shape.index(BATCH)
        raise ModelError(f"{self.name}: no tensor {tensor!r}; the graph has {self.input_names + self.output_names}")

    def file(self, precision: str) -> ModelFile | None:
        """The card's entry for ``NAME.<precision>.onnx``, if listed."""
        return self.files.get(f"{self.name}.{precision}.onnx")

    def get(self, key: str, default: Any = None) -> Any:
        """Any field of the card by its JSON name (e.g. ``quantization``, ``training``, ``threshold``)."""
        return self.data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    # ------------------------------------------------------------------ writing
    def to_dict(self) -> dict[str, Any]:
        """The card as a JSON object (a deep copy, fields in their order)."""
        return json.loads(json.dumps(dict(self.data)))

    def to_json(self) -> str:
        """The file's exact text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def updated(self, **changes: Any) -> ModelCard:
        """A new card with fields changed or added (existing fields keep their place)."""
        return ModelCard.from_dict({**self.to_dict(), **changes}, self.path)

    def without(self, *keys: str) -> ModelCard:
        """A new card without the fields ``keys``."""
        return ModelCard.from_dict({k: v for k, v in self.to_dict().items() if k not in keys}, self.path)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/NAME.onnx.json`` atomically; returns its path."""
        path = Path(directory) / f"{self.name}{CARD_SUFFIX}"
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json())
        return path

    def verify(self, path: Path) -> None:
        """Raise ``ModelError`` unless the card lists ``path`` and its sha256 matches (a file the card does not
        name, or names without a checksum, is refused: the check fails closed)."""
        want = self.files.get(path.name)
        if want is None or len(want.sha256) != 64:
            where = str(self.path) if self.path else f"{self.name}.onnx.json"
            raise ModelError(
                f"{path.name} is not listed with a sha256 in its model card {where}; re-export the model "
                "(`toonsync export`) or reinstall toonsync"
            )
        got = sha256_file(path)
        if want.sha256 != got:
            raise ModelError(
                f"{path} does not match its model card (sha256 {got[:12]}… != {want.sha256[:12]}…); "
                "the file is corrupt or was replaced — re-export it"
            )


def _range_checks(card: ModelCard) -> list[tuple[str, bool]]:
    """(what must hold, whether it is broken) for the fields the runtime sizes things from."""
    dims = [d for t in card.inputs + card.outputs for d in t.shape]
    return [
        ("lookahead_frames must be 0..1000", not 0 <= card.lookahead_frames <= 1000),
        ("fps must be 1..240", card.fps is not None and not 1 <= card.fps <= 240),
        ("hop must be positive", card.hop is not None and card.hop <= 0),
        ("sample_rate must be 1000..768000", card.sample_rate is not None and not 1000 <= card.sample_rate <= 768_000),
        (
            "tensor sizes must be positive integers or axis names",
            any(not (isinstance(d, str) or (isinstance(d, int) and not isinstance(d, bool) and d > 0)) for d in dims),
        ),
    ]


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int, size: int) -> ModelCard:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"model card {p} is not valid JSON ({e})") from None
    return ModelCard.from_dict(d, p)


__all__ = ["ModelCard", "ModelFile", "TensorSpec", "sha256_file", "BATCH"]
