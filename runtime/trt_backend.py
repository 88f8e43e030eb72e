"""TensorRT engines: build on first use (cached), run through the same ``Backend`` interface.

Needs an NVIDIA GPU, ``tensorrt`` (10.x) and ``cuda-python`` (``pip install toonsync[trt]``; on a
Jetson both come with JetPack). Engines are cached per machine under ``$TOONSYNC_ENGINE_CACHE``
(default ``~/.cache/toonsync/engines``), keyed by GPU name + compute capability + TensorRT version +
the ONNX file's sha256, so a new driver/GPU/model rebuilds and everything else reuses. A timing cache
beside them makes rebuilds fast. ``trtexec_command`` gives the equivalent ``trtexec`` line.

Without a GPU nothing here is imported by the runtime: ``backend="auto"`` falls back to
onnxruntime's CUDA or CPU providers, with a logged reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from .errors import ModelError
from .model_card import ModelCard, sha256_file

log = logging.getLogger(__name__)

# (min, opt, max) for the symbolic dims our graphs use; opt = the streaming case (batch 1, one frame)
DIM_RANGES = {"batch": (1, 1, 64), "mel_frames": (4, 4, 4096), "frames": (1, 1, 1024)}


def engine_cache_dir() -> Path:
    return Path(os.environ.get("TOONSYNC_ENGINE_CACHE", Path.home() / ".cache" / "toonsync" / "engines"))


def trt_unavailable_reason() -> str | None:
    """None when TensorRT + a CUDA GPU are usable here, else why not."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed (pip install toonsync[trt], or JetPack on a Jetson)"
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            return "cuda-python is not installed (pip install cuda-python)"
    err, n = cudart.cudaGetDeviceCount()
    if int(err) != 0 or n == 0:
        return "no CUDA GPU visible"
    return None


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        from cuda import cudart
    return cudart


def _check(res):
    err, *rest = res if isinstance(res, tuple) else (res,)
    if int(err) != 0:
        raise ModelError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


def profile_shapes(card: ModelCard) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """(min, opt, max) shape per input from the model card's symbolic shapes."""
    out = {}
    for t in card.inputs:
        dims = [[DIM_RANGES[d][i] if isinstance(d, str) else int(d) for d in t.shape] for i in range(3)]
        out[t.name] = tuple(tuple(x) for x in dims)
    return out


def cache_key(onnx_path: Path, precision: str, gpu: str, trt_version: str) -> str:
    h = hashlib.sha256(f"{sha256_file(onnx_path)}|{precision}|{gpu}|{trt_version}".encode()).hexdigest()
    return h[:16]


def trtexec_command(onnx_path: Path, plan: Path, card: ModelCard, precision: str = "fp16") -> str:
    """The equivalent trtexec invocation (e.g. on a Jetson: /usr/src/tensorrt/bin/trtexec)."""
    shp = profile_shapes(card)
    fmt = lambda i: ",".join(f"{n}:{'x'.join(map(str, s[i]))}" for n, s in shp.items())  # noqa: E731
    flag = {"fp16": "--fp16", "int8": "--int8", "fp32": ""}[precision]
    return (
        f"trtexec --onnx={onnx_path} --saveEngine={plan} {flag} --minShapes={fmt(0)} --optShapes={fmt(1)} "
        f"--maxShapes={fmt(2)} --timingCacheFile={plan.parent / 'timing.cache'}"
    ).replace("  ", " ")


def build_engine(onnx_path: Path, plan: Path, card: ModelCard, precision: str = "fp16") -> Path:
    """Parse ONNX, add an optimisation profile for the dynamic axes, build and save a serialized engine.

    ``precision="int8"`` expects a QDQ model (explicit quantization: the scales come from calibration).
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse {onnx_path}: {errs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile_shapes(card).items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    tc_path = plan.parent / "timing.cache"
    cache = config.create_timing_cache(tc_path.read_bytes() if tc_path.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ModelError(f"TensorRT failed to build an engine for {onnx_path}")
    plan.parent.mkdir(parents=True, exist_ok=True)
    from .atomic import atomic_path

    with atomic_path(plan) as tmp:
        tmp.write_bytes(bytes(blob))
    with atomic_path(tc_path) as tmp:
        tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    log.info("built TensorRT %s engine %s", precision, plan)
    return plan


def trt_int8_problem(path: Path) -> str | None:
    """Why TensorRT cannot build an INT8 engine from this QDQ graph, or None. TensorRT's explicit
    quantization wants symmetric int8 (zero points 0, int8 type) and standard ONNX ops only; our CPU INT8
    graph is tuned for onnxruntime (uint8 activations with zero points, its fused com.microsoft Gelu).
    Needs the ``onnx`` package to look; without it the check is skipped (TensorRT's parser will say)."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx ships with toonsync[export]
        return None
    g = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name: t for t in g.initializer}
    custom = sorted({f"{n.domain}:{n.op_type}" for n in g.node if n.domain not in ("", "ai.onnx")})
    uint8 = [
        n.name or n.output[0]
        for n in g.node
        if n.op_type == "QuantizeLinear"
        and len(n.input) > 2
        and n.input[2] in inits
        and inits[n.input[2]].data_type == onnx.TensorProto.UINT8
    ]
    if not custom and not uint8:
        return None
    parts = ([f"onnxruntime-only ops {', '.join(custom)}"] if custom else []) + (
        [f"{len(uint8)} uint8 (asymmetric) activation quantizers"] if uint8 else []
    )
    return (
        f"{path.name} is quantized for onnxruntime's CPU kernels ({'; '.join(parts)}); TensorRT INT8 needs a "
        "symmetric int8 QDQ graph of standard ops. Use --precision fp16 on TensorRT (its default), or int8 "
        "through onnxruntime (--backend cpu/cuda)"
    )


class TrtBackend:
    """TensorRT engine behind the ``Backend`` interface (dicts of numpy arrays keyed by tensor name)."""

    def __init__(self, model_dir: Path, card: ModelCard, precision: str = "fp16"):
        import tensorrt as trt

        reason = trt_unavailable_reason()
        if reason:
            raise ModelError(f"TensorRT backend unavailable: {reason}")
        cudart = _cudart()
        name = card.name
        src = model_dir / f"{name}.{'int8' if precision == 'int8' else 'fp32'}.onnx"
        if precision == "int8" and (problem := trt_int8_problem(src)):
            raise ModelError(problem)
        props = _check(cudart.cudaGetDeviceProperties(0))
        gpu = f"{props.name.decode() if isinstance(props.name, bytes) else props.name}-sm{props.major}{props.minor}"
        plan = engine_cache_dir() / f"{name}.{precision}.{cache_key(src, precision, gpu, trt.__version__)}.plan"
        if not plan.exists():
            build_engine(src, plan, card, precision)
        self._trt = trt
        self._cudart = cudart
        self.engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan.read_bytes())
        if self.engine is None:
            raise ModelError(f"cannot deserialize {plan}; delete it to rebuild")
        self.context = self.engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        self.name = f"tensorrt:{precision}"
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device ptr, bytes)

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self._cudart.cudaFree(ptr)
            ptr = _check(self._cudart.cudaMalloc(nbytes))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cu, H2D, D2H = self._cudart, 1, 2  # cudaMemcpyHostToDevice / DeviceToHost
        for n in self.input_names:
            a = np.ascontiguousarray(inputs[n], dtype=np.float32)
            self.context.set_input_shape(n, a.shape)
            ptr = self._buffer(n, a.nbytes)
            _check(cu.cudaMemcpyAsync(ptr, a.ctypes.data, a.nbytes, H2D, self.stream))
            self.context.set_tensor_address(n, ptr)
        outs = {}
        for n in self.output_names:
            shape = tuple(self.context.get_tensor_shape(n))
            dtype = self._trt.nptype(self.engine.get_tensor_dtype(n))
            outs[n] = np.empty(shape, dtype)
            self.context.set_tensor_address(n, self._buffer(n, outs[n].nbytes))
        if not self.context.execute_async_v3(self.stream):
            raise ModelError("TensorRT execution failed")
        for n, a in outs.items():
            _check(cu.cudaMemcpyAsync(a.ctypes.data, self._buffers[n][0], a.nbytes, D2H, self.stream))
        _check(cu.cudaStreamSynchronize(self.stream))
        return outs
