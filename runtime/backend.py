"""One ``Backend`` protocol over inference engines; outputs are looked up by name.

``OrtBackend`` runs ONNX files with onnxruntime (CPU, CUDA or TensorRT execution providers).
Model files follow ``name.<precision>.onnx`` with a ``name.onnx.json`` model card (``ModelCard``) whose
sha256 is checked on load. ``TrtBackend`` (native TensorRT engines, ``trt_backend``) follows the same protocol.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import ModelError
from .model_card import ModelCard
from .options import BACKENDS, PRECISIONS

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models"


@runtime_checkable
class Backend(Protocol):
    """An inference engine: named inputs in, named outputs out (numpy arrays)."""

    name: str
    input_names: list[str]
    output_names: list[str]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _providers_for(backend: str) -> list[str]:
    avail = available_providers()
    if backend == "tensorrt":  # reached only when native engines are unavailable: try ORT's TensorRT EP
        backend = "tensorrt" if "TensorrtExecutionProvider" in avail else backend
    wanted = {
        "cpu": ["CPUExecutionProvider"],
        "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        "auto": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    }[backend]
    if backend in ("cuda", "tensorrt") and wanted[0] not in avail:
        raise ModelError(
            f"backend {backend!r} needs {wanted[0]}, but onnxruntime here offers {avail}; "
            "install toonsync[gpu] on a machine with an NVIDIA GPU, or use --backend cpu"
        )
    return [p for p in wanted if p in avail]


class OrtBackend:
    """onnxruntime session; ``run`` takes and returns dicts keyed by graph I/O names."""

    def __init__(self, path: str | os.PathLike, backend: str = "auto", threads: int | None = None):
        import onnxruntime as ort

        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; accepted: {', '.join(BACKENDS)}")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # Thread defaults, chosen from `toonsync bench --threads-sweep` on a 2-core CPU (docs/benchmarks.md,
        # "Thread settings"): our graphs are tiny (~0.05 ms a step), so a pool buys no speed, and onnxruntime's
        # default pool (one thread per core, spinning between runs) steals the renderer's core: with the other
        # core busy a streamed frame took 8.4 ms p50 / 13.5 ms p99 with it vs 3.8 / 4.5 ms with one thread and
        # no spinning (equal when a core is idle), and one real-time stream used 81 % CPU vs 14 %. Inter-op
        # threads / ORT_PARALLEL gained nothing reliable. Precedence: ``threads`` > env > default.
        env = os.environ.get
        try:
            intra = int(threads if threads else env("TOONSYNC_ORT_INTRA_OP_THREADS", "1"))
            inter = int(env("TOONSYNC_ORT_INTER_OP_THREADS", "1"))
        except ValueError:
            raise ModelError("TOONSYNC_ORT_INTRA_OP_THREADS / TOONSYNC_ORT_INTER_OP_THREADS must be integers") from None
        spinning = "1" if env("TOONSYNC_ORT_SPINNING", "0") == "1" else "0"
        so.intra_op_num_threads = intra  # 0 = onnxruntime's own default (one per physical core)
        so.inter_op_num_threads = inter
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", spinning)
        so.add_session_config_entry("session.inter_op.allow_spinning", spinning)
        self.thread_settings = {
            "intra_op": intra,
            "inter_op": inter,
            "spinning": spinning == "1",
            "execution_mode": "sequential",
        }
        providers = _providers_for(backend)
        if ".fp16." in Path(path).name and providers[0] == "CPUExecutionProvider":
            # onnxruntime's CPU graph optimizer crashes on some fp16 graphs; fp16 is meant for GPUs anyway
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            log.info("%s: fp16 on CPU runs unoptimised (fp16 targets CUDA/TensorRT)", Path(path).name)
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for corrupt graphs
            raise ModelError(f"cannot load ONNX model {path}: {str(e).splitlines()[0][:300]}") from None
        self.name = f"onnxruntime:{self._sess.get_providers()[0]}"
        self.input_names = [i.name for i in self._sess.get_inputs()]
        self.output_names = [o.name for o in self._sess.get_outputs()]

    def graph_io(self) -> dict[str, list]:
        """Every graph input and output with its shape (ints, or axis names / None where dynamic)."""
        return {t.name: list(t.shape) for t in (*self._sess.get_inputs(), *self._sess.get_outputs())}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise ModelError(f"missing model inputs {sorted(missing)}; the graph takes {self.input_names}")
        outs = self._sess.run(self.output_names, {k: inputs[k] for k in self.input_names})
        return dict(zip(self.output_names, outs))


def check_card_matches_graph(card: ModelCard, graph: dict[str, list], path: Path) -> None:
    """``ModelError`` unless the card names the graph's inputs and outputs with the graph's fixed sizes: the
    runtime sizes its streaming state from the card, so a card that lies would fail deep inside a run."""
    names = {t.name for t in card.inputs} | {t.name for t in card.outputs}
    if names != set(graph):
        raise ModelError(
            f"model card of {path.name} does not describe its graph (card: {sorted(names)}, graph: {sorted(graph)}); "
            "re-export the model"
        )
    for t in (*card.inputs, *card.outputs):
        g = graph[t.name]
        fixed = [(a, b) for a, b in zip(t.shape, g) if isinstance(a, int) and isinstance(b, int)]
        if len(g) != len(t.shape) or any(a != b for a, b in fixed):
            raise ModelError(
                f"model card of {path.name} gives {t.name} the shape {list(t.shape)}, the graph {g}; "
                "re-export the model"
            )


@dataclass
class LoadedModel:
    """A backend plus the model's card."""

    name: str
    path: Path
    backend: Backend
    card: ModelCard
    precision: str = "fp32"

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.backend.run(inputs)


def model_dir() -> Path:
    """The models' folder: ``$TOONSYNC_MODEL_DIR``, else the models installed with the package."""
    return Path(os.environ.get("TOONSYNC_MODEL_DIR", DEFAULT_MODEL_DIR))


def load_model(
    name: str,
    precision: str = "auto",
    backend: str = "auto",
    directory: str | os.PathLike | None = None,
    threads: int | None = None,
    verify: bool = True,
) -> LoadedModel:
    """Load ``name.<precision>.onnx`` from the model directory, checking its sha256 against the model card.

    ``backend="auto"``: TensorRT engines > onnxruntime CUDA > CPU, falling back with a logged reason.
    ``precision="auto"``: fp16 on a GPU; on a CPU the card's ``default_precision`` (set by
    ``toonsync calibrate`` only when INT8 stayed inside its accuracy budget), else fp32.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    d = Path(directory) if directory else model_dir()
    if not d.is_dir():
        raise ModelError(f"model directory {d} does not exist")
    card = ModelCard.load(d, name)
    trt_reason = None
    if backend in ("auto", "tensorrt"):
        from .trt_backend import trt_unavailable_reason

        trt_reason = trt_unavailable_reason()
        if backend == "tensorrt" and trt_reason and "TensorrtExecutionProvider" not in available_providers():
            raise ModelError(f"--backend tensorrt: {trt_reason}")
    gpu = (backend in ("auto", "tensorrt") and trt_reason is None) or (
        backend in ("auto", "cuda") and "CUDAExecutionProvider" in available_providers()
    )
    if precision == "auto":  # GPUs: fp16; CPUs: the calibrated default (INT8 only if within budget)
        precision = "fp16" if gpu else card.default_precision
        if not (d / f"{name}.{precision}.onnx").is_file():
            log.warning("%s: precision %s has no file in %s; using fp32", name, precision, d)
            precision = "fp32"
    path = d / f"{name}.{precision}.onnx"
    if not path.is_file():
        have = sorted(p.name for p in d.glob(f"{name}.*.onnx"))
        raise ModelError(f"model file {path} not found (have: {have or 'none'}); run `toonsync export`")
    if verify:
        card.verify(path)
    if backend in ("auto", "tensorrt") and trt_reason is None:
        from .trt_backend import TrtBackend

        be: Backend = TrtBackend(d, card, precision)
    else:
        if backend == "auto" and trt_reason:
            log.debug("TensorRT engines not used: %s", trt_reason)
        be = OrtBackend(path, backend, threads)
        check_card_matches_graph(card, be.graph_io(), path)
    lm = LoadedModel(name, path, be, card, precision)
    log.debug("loaded %s on %s", path.name, lm.backend.name)
    return lm
