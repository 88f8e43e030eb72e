"""``toonsync export --triton DIR``: the runtime's ONNX models as a Triton Inference Server model repository.

Layout (one directory per model, one version)::

    DIR/README.md                      how to serve it (generated)
    DIR/toonsync_triton.json           manifest: sources, sha256, parity, settings
    DIR/audio2motion/config.pbtxt      I/O names, dims, data types; dynamic batching; instance groups
    DIR/audio2motion/1/model.onnx      the batch-first-state variant (or 1/model.plan: a TensorRT plan)
    DIR/audio2motion_pcm/...

State is explicit I/O carried by the client (``runtime.triton_client``), not Triton's sequence batcher:
the server stays stateless, so the dynamic batcher can put steps of any streams into one batch on any
instance. Triton batches on dim 0 of every tensor, and the runtime's graphs keep the LSTM state as
[1, batch, hidden] (the ONNX LSTM layout), so each model is rewritten with the ``onnx`` helper API:
Transpose nodes make h/c/h_out/c_out [batch, 1, hidden]. The rewrite is checked with onnxruntime
against the original (several steps carrying state) before it is written. docs/triton.md has the
reasons and the commands. Needs ``onnx`` (toonsync[export]), not torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from toonsync.runtime.atomic import atomic_path
from toonsync.runtime.backend import Backend, OrtBackend, load_model, model_dir
from toonsync.runtime.errors import ModelError
from toonsync.runtime.mel import MELS_PER_FRAME, SAMPLES_PER_FRAME
from toonsync.runtime.model_card import ModelCard, sha256_file
from toonsync.runtime.triton_client import META_PARAMETER, STATE_INPUTS, STATE_LAYOUT, STATE_OUTPUTS

log = logging.getLogger(__name__)

MODELS = ("audio2motion", "audio2motion_pcm")
DEVICES = ("cpu", "gpu", "tensorrt")  # KIND_CPU; KIND_GPU (CUDA EP); KIND_GPU + ORT's TensorRT accelerator
MANIFEST = "toonsync_triton.json"
PARITY_ATOL = 1e-5  # the rewrite only adds Transposes: differences are float re-association at most
TRT_CACHE = "/tmp/toonsync_trt_cache"  # inside the server container
# Values for symbolic dims: one streaming step (warm-up, the "opt" shape) and the largest call profiled.
DIM_STEP = {"mel_frames": MELS_PER_FRAME, "samples": SAMPLES_PER_FRAME, "frames": 1}
DIM_MAX = {"mel_frames": 1024 * MELS_PER_FRAME, "samples": 1024 * SAMPLES_PER_FRAME, "frames": 1024}
_TRITON_TYPES = {
    TensorProto.FLOAT: "TYPE_FP32",
    TensorProto.FLOAT16: "TYPE_FP16",
    TensorProto.DOUBLE: "TYPE_FP64",
    TensorProto.INT64: "TYPE_INT64",
    TensorProto.INT32: "TYPE_INT32",
    TensorProto.INT8: "TYPE_INT8",
    TensorProto.UINT8: "TYPE_UINT8",
    TensorProto.BOOL: "TYPE_BOOL",
}


# -- protobuf text format ------------------------------------------------------------------------------
class Enum(str):
    """A protobuf enum value (written unquoted)."""


def _scalar(v: Any) -> str:
    if isinstance(v, Enum):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{s}"'


def to_pbtxt(msg: dict, indent: int = 0) -> str:
    """A nested dict as protobuf text format: dict = message, list of dicts = repeated message (also map
    entries ``{"key": k, "value": v}``), list of scalars = repeated scalar, ``Enum`` = enum value."""
    pad, lines = "  " * indent, []
    for key, value in msg.items():
        if value is None:
            continue
        if isinstance(value, dict):
            lines += [f"{pad}{key} {{", to_pbtxt(value, indent + 1), f"{pad}}}"]
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            for v in value:
                lines += [f"{pad}{key} {{", to_pbtxt(v, indent + 1), f"{pad}}}"]
        elif isinstance(value, (list, tuple)):
            lines.append(f"{pad}{key}: [ {', '.join(_scalar(v) for v in value)} ]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(line for line in lines if line)


# -- the batch-first-state graph -----------------------------------------------------------------------
def _swap_batch_axis(vi: onnx.ValueInfoProto) -> None:
    dims = vi.type.tensor_type.shape.dim
    if len(dims) != 3:
        raise ModelError(f"state tensor {vi.name!r} has rank {len(dims)}; expected [1, batch, hidden]")
    d0, d1 = onnx.TensorShapeProto.Dimension(), onnx.TensorShapeProto.Dimension()
    d0.CopyFrom(dims[1])
    d1.CopyFrom(dims[0])
    dims[0].CopyFrom(d0)
    dims[1].CopyFrom(d1)


def batch_first_state(
    model: onnx.ModelProto, inputs: Iterable[str] = STATE_INPUTS, outputs: Iterable[str] = STATE_OUTPUTS
) -> onnx.ModelProto:
    """A copy of ``model`` whose state inputs/outputs are [batch, 1, hidden] instead of [1, batch, hidden]:
    a Transpose after each state input and before each state output; names and everything else unchanged."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    graph_in = {v.name: v for v in g.input}
    graph_out = {v.name: v for v in g.output}

    def rename(old: str, new: str, producers: bool) -> None:
        for node in g.node:
            node.input[:] = [new if x == old else x for x in node.input]
            if producers:
                node.output[:] = [new if x == old else x for x in node.output]
        for vi in g.value_info:
            if vi.name == old:
                vi.name = new

    added: dict[bool, list] = {False: [], True: []}  # Transposes before (graph inputs) / after (outputs)
    for names, present, is_out in ((inputs, graph_in, False), (outputs, graph_out, True)):
        for name in names:
            if name not in present:
                raise ModelError(
                    f"{g.name or 'graph'}: no state {'output' if is_out else 'input'} {name!r} (has: {sorted(present)})"
                )
            inner = f"{name}__seq_first"
            rename(name, inner, producers=is_out)
            _swap_batch_axis(present[name])
            src, dst = (inner, name) if is_out else (name, inner)
            added[is_out].append(
                helper.make_node(
                    "Transpose",
                    [src],
                    [dst],
                    perm=[1, 0, 2],
                    name=f"toonsync/{name}_to_{'batch' if is_out else 'seq'}_first",
                )
            )
    nodes = added[False] + list(g.node) + added[True]
    del g.node[:]
    g.node.extend(nodes)
    m.metadata_props.add(
        key="triton_state_layout", value=f"{STATE_LAYOUT}: {', '.join([*inputs, *outputs])} are [batch, 1, hidden]"
    )
    onnx.checker.check_model(m)
    return m


def batch_first_shapes(meta: ModelCard) -> dict[str, list]:
    """The sidecar's named shapes of every input/output, state tensors batch-first."""
    shapes = {**meta.get("inputs", {}), **meta.get("outputs", {})}
    return {n: ([s[1], s[0], *s[2:]] if n in (*STATE_INPUTS, *STATE_OUTPUTS) else list(s)) for n, s in shapes.items()}


def _concrete(shape: list, batch: int, table: dict[str, int], steps: int = 1) -> list[int]:
    """A named shape with ``batch`` and ``steps`` x ``table`` values for the symbolic dims."""
    out = []
    for d in shape:
        if isinstance(d, int):
            out.append(d)
        elif d == "batch":
            out.append(batch)
        elif d in table:
            out.append(table[d] * steps)
        else:
            raise ModelError(f"no example value for the symbolic dim {d!r}; known: batch, {', '.join(table)}")
    return out


def state_parity(
    original: Backend, variant: Backend, meta: ModelCard, batch: int = 3, steps: int = 4, frames: int = 3, seed: int = 0
) -> float:
    """Max |difference| of every output, original vs batch-first variant, over ``steps`` calls of ``frames``
    frames each, carrying the state (every ``X`` input that has an ``X_out`` output) from call to call."""
    rng = np.random.default_rng(seed)
    shapes = meta["inputs"]
    carried = [n for n in shapes if f"{n}_out" in meta["outputs"]]
    state = {n: (rng.standard_normal(_concrete(shapes[n], batch, DIM_STEP)) * 0.5).astype(np.float32) for n in carried}
    worst = 0.0
    for _ in range(steps):
        x = {
            n: (rng.standard_normal(_concrete(s, batch, DIM_STEP, frames)) * (0.1 if n == "pcm" else 1.0)).astype(
                np.float32
            )
            for n, s in shapes.items()
            if n not in carried
        }
        ref = original.run({**x, **state})
        got = variant.run({**x, **{n: (v.transpose(1, 0, 2) if n in STATE_INPUTS else v) for n, v in state.items()}})
        for name, r in ref.items():
            g = got[name].transpose(1, 0, 2) if name in STATE_OUTPUTS else got[name]
            if g.shape != r.shape:
                raise ModelError(f"batch-first variant: output {name} has shape {g.shape}, original {r.shape}")
            worst = max(worst, float(np.abs(g.astype(np.float64) - r).max()))
        state = {n: ref[f"{n}_out"] for n in carried}
    return worst


# -- config.pbtxt ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a Triton model config: name, data type, dims without the batch, an example shape."""

    name: str
    data_type: str  # Triton's TYPE_*
    dims: tuple[int, ...]  # without the batch dim; -1 = any size
    example: tuple[int, ...] | None  # one streaming step (warm-up), None when a dim has no known value


def triton_io(model: onnx.ModelProto, shapes: dict[str, list]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of a batch-first graph as Triton sees them. A dim the graph leaves symbolic
    takes the sidecar's fixed value where it has one (e.g. mel_ctx_out's 4), else -1."""
    inits = {i.name for i in model.graph.initializer}

    def spec(vi: onnx.ValueInfoProto) -> TensorSpec:
        t = vi.type.tensor_type
        if t.elem_type not in _TRITON_TYPES:
            raise ModelError(f"{vi.name}: ONNX element type {t.elem_type} has no Triton data type here")
        graph = [d.dim_value if d.HasField("dim_value") else d.dim_param or None for d in t.shape.dim]
        side = shapes.get(vi.name, graph)
        if len(side) != len(graph):
            raise ModelError(f"{vi.name}: the sidecar's shape {side} and the graph's {graph} differ in rank")
        if not graph or isinstance(graph[0], int) or side[0] != "batch":
            raise ModelError(f"{vi.name}: batch must be the dynamic dim 0 for Triton's batching (graph {graph})")
        dims, example = [], []
        for g, s in zip(graph[1:], side[1:]):
            if isinstance(g, int) and isinstance(s, int) and g != s:
                raise ModelError(f"{vi.name}: the graph's dim {g} != the sidecar's {s}")
            dims.append(g if isinstance(g, int) else s if isinstance(s, int) else -1)
            example.append(dims[-1] if dims[-1] >= 0 else DIM_STEP.get(s if isinstance(s, str) else g or ""))
        ok = all(e is not None for e in example)
        return TensorSpec(vi.name, _TRITON_TYPES[t.elem_type], tuple(dims), tuple(example) if ok else None)

    return ([spec(v) for v in model.graph.input if v.name not in inits], [spec(v) for v in model.graph.output])


def _profile(inputs: list[TensorSpec], shapes: dict[str, list], batch: int, table: dict[str, int]) -> str:
    """TensorRT shape-profile string ``name:1x4x80,...`` (trtexec and ORT's TensorRT EP take the same)."""
    return ",".join(f"{i.name}:{'x'.join(map(str, _concrete(shapes[i.name], batch, table)))}" for i in inputs)


def model_config(
    name: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    shapes: dict[str, list],
    *,
    meta: ModelCard,
    precision: str,
    plan: bool = False,
    device: str = "cpu",
    max_batch_size: int = 64,
    instances: int = 1,
    max_queue_delay_us: int = 500,
    preferred: list[int] | None = None,
) -> dict:
    """The ModelConfig of one model, as the dict ``to_pbtxt`` writes."""
    if device not in DEVICES:
        raise ModelError(f"unknown Triton device {device!r}; accepted: {', '.join(DEVICES)}")
    if max_batch_size < 1:
        raise ModelError(f"max_batch_size must be >= 1 (state is batched on dim 0), got {max_batch_size}")
    if instances < 1:
        raise ModelError(f"instances must be >= 1, got {instances}")
    if plan and device == "cpu":
        raise ModelError("a TensorRT plan runs on GPU instances: use device 'gpu' or 'tensorrt'")
    if preferred is None:
        preferred = sorted({b for b in (4, 8, 16, 32, 64, 128, 256) if b <= max_batch_size} | {max_batch_size})
    gpu = device != "cpu"

    def io(t: TensorSpec) -> dict:
        return {"name": t.name, "data_type": Enum(t.data_type), "dims": list(t.dims)}

    essentials = {
        k: meta[k]
        for k in ("config", "lookahead_frames", "sample_rate", "fps", "hop", "n_mels", "mouth_params", "run_id")
        if k in meta
    }
    params = {
        META_PARAMETER: json.dumps(
            {"name": name, "precision": precision, "state_layout": STATE_LAYOUT, **essentials},
            separators=(",", ":"),
            sort_keys=True,
        )
    }
    optimization = None
    if not plan:
        if not gpu:  # one thread per instance, no spinning: docs/benchmarks.md "Thread settings"; scale by instances
            params.update(intra_op_thread_count="1", inter_op_thread_count="1")
        if precision == "fp16" and not gpu:  # onnxruntime's CPU optimiser crashes on some fp16 graphs (runtime.backend)
            optimization = {"graph": {"level": 2}}  # 2 = ORT_DISABLE_ALL in the onnxruntime backend
        if device == "tensorrt":
            step, top = _profile(inputs, shapes, 1, DIM_STEP), _profile(inputs, shapes, max_batch_size, DIM_MAX)
            opt = _profile(inputs, shapes, min(16, max_batch_size), DIM_STEP)
            trt = {
                "precision_mode": "INT8" if precision == "int8" else "FP16",
                "max_workspace_size_bytes": str(1 << 30),
                "trt_engine_cache_enable": "1",
                "trt_engine_cache_path": TRT_CACHE,
                "trt_profile_min_shapes": step,
                "trt_profile_opt_shapes": opt,
                "trt_profile_max_shapes": top,
            }
            optimization = {
                "execution_accelerators": {
                    "gpu_execution_accelerator": [
                        {"name": "tensorrt", "parameters": [{"key": k, "value": v} for k, v in trt.items()]}
                    ]
                }
            }
    warm = None
    if all(i.example is not None for i in inputs):
        warm = [
            {
                "name": "one_step_batch_1",
                "batch_size": 1,
                "inputs": [
                    {
                        "key": i.name,
                        "value": {"data_type": Enum(i.data_type), "dims": list(i.example), "zero_data": True},
                    }
                    for i in inputs
                ],
            }
        ]
    return {
        "name": name,
        "backend": "tensorrt" if plan else "onnxruntime",
        "max_batch_size": max_batch_size,
        "input": [io(t) for t in inputs],
        "output": [io(t) for t in outputs],
        "dynamic_batching": {"preferred_batch_size": preferred, "max_queue_delay_microseconds": max_queue_delay_us},
        "instance_group": [{"count": instances, "kind": Enum("KIND_GPU" if gpu else "KIND_CPU")}],
        "optimization": optimization,
        "parameters": [{"key": k, "value": {"string_value": v}} for k, v in params.items()],
        "model_warmup": warm,
        "version_policy": {"latest": {"num_versions": 1}},
    }


def trtexec_command(
    name: str,
    inputs: list[TensorSpec],
    shapes: dict[str, list],
    onnx_path: Path | str,
    plan: Path | str,
    max_batch_size: int,
    precision: str = "fp16",
) -> str:
    """The trtexec line that builds a plan for ``--triton-plan`` from the repository's batch-first model.onnx."""
    flag = {"fp16": " --fp16", "int8": " --int8", "fp32": ""}[precision]
    return (
        f"trtexec --onnx={onnx_path} --saveEngine={plan}{flag} "
        f"--minShapes={_profile(inputs, shapes, 1, DIM_STEP)} "
        f"--optShapes={_profile(inputs, shapes, min(16, max_batch_size), DIM_STEP)} "
        f"--maxShapes={_profile(inputs, shapes, max_batch_size, DIM_MAX)}"
    )


# -- the repository ----------------------------------------------------------------------------------------
def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _remove_stale(version: Path, keep: str) -> None:
    """A version holds model.onnx or model.plan, never both (a stale one would confuse readers, not Triton)."""
    for other in ("model.onnx", "model.plan"):
        if other != keep and (version / other).exists():
            log.info("removing stale %s", version / other)
            (version / other).unlink()


def write_triton_repo(
    model_dir_: str | Path | None,
    out_dir: str | Path,
    models: Iterable[str] = MODELS,
    precision: str = "fp32",
    max_batch_size: int = 64,
    instances: int = 1,
    device: str = "cpu",
    max_queue_delay_us: int = 500,
    plans: dict[str, str | Path] | None = None,
    verify: bool = True,
) -> dict:
    """Write a Triton model repository for ``models`` into ``out_dir``; returns the manifest.

    ``precision``: which ``name.<precision>.onnx`` to serve (a model without that file falls back to fp32,
    logged). ``device``: cpu (KIND_CPU), gpu (KIND_GPU, CUDA) or tensorrt (KIND_GPU + onnxruntime's
    TensorRT accelerator: FP16, or INT8 for the int8 QDQ graph). ``plans``: model name -> a TensorRT plan
    built from this repository's batch-first model.onnx (see the README's trtexec line); served as
    ``1/model.plan`` by Triton's TensorRT backend instead. Every file is written atomically.
    """
    src_dir = Path(model_dir_) if model_dir_ else model_dir()
    out = Path(out_dir)
    plans = {k: Path(v) for k, v in (plans or {}).items()}
    models = list(models)
    unknown = set(plans) - set(models)
    if unknown:
        raise ModelError(f"plans given for models not exported: {sorted(unknown)} (exporting {models})")
    manifest: dict[str, Any] = {
        "format": "toonsync-triton/1",
        "state_layout": STATE_LAYOUT,
        "state_tensors": [*STATE_INPUTS, *STATE_OUTPUTS],
        "max_batch_size": max_batch_size,
        "device": device,
        "instances": instances,
        "models": {},
    }
    for name in models:
        prec = precision
        if not (src_dir / f"{name}.{prec}.onnx").is_file() and prec != "fp32":
            log.warning("%s has no %s file in %s; serving fp32", name, prec, src_dir)
            prec = "fp32"
        original = load_model(name, prec, "cpu", src_dir, threads=1)  # checks the sidecar's sha256
        meta = original.card
        variant = batch_first_state(onnx.load(str(original.path)))
        shapes = batch_first_shapes(meta)
        inputs, outputs = triton_io(variant, shapes)
        version = out / name / "1"
        entry: dict[str, Any] = {
            "source": original.path.name,
            "source_sha256": sha256_file(original.path),
            "precision": prec,
        }
        if name in plans:
            if not plans[name].is_file():
                raise ModelError(f"TensorRT plan {plans[name]} not found")
            with atomic_path(version / "model.plan") as tmp:
                shutil.copyfile(plans[name], tmp)
            _remove_stale(version, "model.plan")
            entry.update(file="1/model.plan", sha256=sha256_file(version / "model.plan"), plan_source=str(plans[name]))
        else:
            # the temp name keeps ".<precision>.onnx" so OrtBackend treats an fp16 graph as it does in the runtime
            with atomic_path(version / "model.onnx", suffix=f".{prec}.onnx") as tmp:
                onnx.save(variant, str(tmp))
                if verify:
                    diff = state_parity(original.backend, OrtBackend(tmp, "cpu", 1), meta)
                    if diff > PARITY_ATOL:
                        raise ModelError(
                            f"{name}: the batch-first variant differs from {original.path.name} by "
                            f"{diff:.2e} > {PARITY_ATOL:.0e}; not written"
                        )
                    entry["parity_max_abs_diff"] = diff
                    log.info(
                        "%s: batch-first variant matches %s (max|diff| %.1e over 4 steps, batch 3)",
                        name,
                        original.path.name,
                        diff,
                    )
            _remove_stale(version, "model.onnx")
            entry.update(file="1/model.onnx", sha256=sha256_file(version / "model.onnx"))
        cfg = model_config(
            name,
            inputs,
            outputs,
            shapes,
            meta=meta,
            precision=prec,
            plan=name in plans,
            device=device,
            max_batch_size=max_batch_size,
            instances=instances,
            max_queue_delay_us=max_queue_delay_us,
        )
        _write_text(
            out / name / "config.pbtxt", f"# written by `toonsync export --triton` (docs/triton.md)\n{to_pbtxt(cfg)}\n"
        )
        entry["trtexec"] = trtexec_command(name, inputs, shapes, f"{name}/1/model.onnx", f"{name}.plan", max_batch_size)
        entry["inputs"] = {t.name: [-1, *t.dims] for t in inputs}
        entry["outputs"] = {t.name: [-1, *t.dims] for t in outputs}
        manifest["models"][name] = entry
        log.info("wrote %s (%s, %s, %s)", out / name, entry["file"], prec, device)
    _write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    _write_text(out / "README.md", _readme(out, manifest))
    return manifest


def _readme(out: Path, manifest: dict) -> str:
    gpu = " --gpus all" if manifest["device"] != "cpu" else ""
    rows = "\n".join(f"| {n} | {e['file']} | {e['precision']} | {e['source']} |" for n, e in manifest["models"].items())
    plans = "\n".join(f"    {e['trtexec']}" for e in manifest["models"].values())
    return f"""# toonsync Triton model repository

Written by `toonsync export --triton {out}`; the design and every command: docs/triton.md.

| model | version file | precision | from |
|---|---|---|---|
{rows}

State is explicit I/O, batch-first: send h/c as [batch, 1, hidden] and feed h_out/c_out (and mel_ctx_out,
pcm_ctx_out) back into the next request of the same stream. `runtime.triton_client` does this for you.

Serve (from the directory that holds `{out.name}`; pick a Triton release, e.g. 24.08 or later):

    docker run --rm{gpu} -p8000:8000 -p8001:8001 -p8002:8002 -v $PWD/{out.name}:/models \\
        nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models

Stream through it:

    toonsync stream --triton localhost:8000 --wav speech.wav --face face.jpg --record out.mp4

TensorRT plans: build them inside `{out.name}`, on the serving GPU, with the TensorRT of the same Triton
release (its container has trtexec), then rerun this export with
`--triton-device gpu --triton-plan NAME=NAME.plan` to serve them instead of the ONNX files:

{plans}
"""


# -- command line ----------------------------------------------------------------------------------------
def _plans(items: list[str] | None) -> dict[str, Path]:
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ModelError(f"--triton-plan takes MODEL=PATH (e.g. audio2motion=audio2motion.plan), got {item!r}")
        out[name] = Path(path)
    return out


def triton_cli(a: argparse.Namespace) -> int:
    """``toonsync export --triton DIR``: the models already in ``--model-dir`` -> a Triton repository."""
    man = write_triton_repo(
        a.model_dir,
        a.triton,
        models=a.triton_models or MODELS,
        precision=a.triton_precision,
        max_batch_size=a.triton_max_batch,
        instances=a.triton_instances,
        device=a.triton_device,
        plans=_plans(a.triton_plan),
    )
    log.info(
        "Triton repository %s: %s; serve it: see %s", a.triton, ", ".join(man["models"]), Path(a.triton) / "README.md"
    )
    return 0
