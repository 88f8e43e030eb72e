"""FP16 ONNX variants (for CUDA / TensorRT execution providers).

onnxruntime's float16 converter with fp32 graph I/O (``keep_io_types``) and the LSTM kept fp32
(its fp16 kernels are missing on some providers). The converter can leave nodes out of topological
order, so they are re-sorted before ``onnx.checker`` runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from toonsync.runtime.atomic import atomic_path

log = logging.getLogger(__name__)
KEEP_FP32 = ["LSTM"]


def toposort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs."""
    avail = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for n in pending:
            if all(i in avail for i in n.input):
                ordered.append(n)
                avail.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or dangling inputs at {rest[0].name}")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(fp32: Path, out: Path) -> Path:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    m = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True, op_block_list=KEEP_FP32)
    toposort(m.graph)
    with atomic_path(out) as tmp:
        onnx.save(m, str(tmp))
        onnx.checker.check_model(str(tmp), full_check=True)
    log.info("wrote %s (%d KiB)", out, out.stat().st_size // 1024)
    return out
