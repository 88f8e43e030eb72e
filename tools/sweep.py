"""``toonsync bench --threads-sweep``: onnxruntime thread settings compared on one and two streams, with the
CPU they burn (spinning thread pools show up here)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from toonsync.runtime.backend import model_dir
from toonsync.runtime.sysinfo import loadavg

from .cases import BenchContext, _a2m_step
from .measure import FRAME_MS, _r, measure, summarize

log = logging.getLogger(__name__)


# -- thread settings sweep -------------------------------------------------------------------------------
THREAD_CONFIGS = [
    {"name": "ort-default", "intra": 0, "inter": 0, "spinning": None, "parallel": False},  # ORT's own defaults
    {"name": "intra1", "intra": 1, "inter": 1, "spinning": "0", "parallel": False},
    {"name": "intra2-spin", "intra": 2, "inter": 1, "spinning": "1", "parallel": False},
    {"name": "intra2-nospin", "intra": 2, "inter": 1, "spinning": "0", "parallel": False},
    {"name": "parallel-inter2", "intra": 1, "inter": 2, "spinning": "1", "parallel": True},
]


class _SweepBackend:
    """An onnxruntime CPU session with explicit thread settings (the sweep's stand-in for OrtBackend)."""

    def __init__(self, path: Path, cfg: dict):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.intra_op_num_threads = cfg["intra"]
        so.inter_op_num_threads = cfg["inter"]
        if cfg["parallel"]:
            so.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        if cfg["spinning"] is not None:
            so.add_session_config_entry("session.intra_op.allow_spinning", cfg["spinning"])
            so.add_session_config_entry("session.inter_op.allow_spinning", cfg["spinning"])
        self._s = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self.name = f"onnxruntime:CPUExecutionProvider[{cfg['name']}]"
        self.input_names = [i.name for i in self._s.get_inputs()]
        self.output_names = [o.name for o in self._s.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self._s.run(self.output_names, {k: inputs[k] for k in self.input_names})))


def _two_streams(am, ctx: BenchContext, frames: int) -> dict:
    """Two conversations on two threads over one shared model (a small server): per-frame latency, fps."""
    from toonsync.runtime.streaming import Stream

    chunks = list(ctx.pcm_frames)
    lat: list[list[float]] = [[], []]
    barrier = threading.Barrier(2)

    def worker(j: int) -> None:
        s = Stream(am, ctx.avatar.neutral, ctx.avatar.renderer(ctx.size), seed=j)
        for i in range(5):
            s.accept_audio(chunks[(i + 50 * j) % len(chunks)])
            while s.ready():
                s.step()
        barrier.wait()
        for i in range(frames):
            t = time.perf_counter()
            s.accept_audio(chunks[(i + 5 + 50 * j) % len(chunks)])
            while s.ready():
                s.step()
            lat[j].append((time.perf_counter() - t) * 1e3)

    ths = [threading.Thread(target=worker, args=(j,)) for j in range(2)]
    c0, w0 = time.process_time(), time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    wall = time.perf_counter() - w0
    st = summarize(lat[0] + lat[1], cpu_pct=100.0 * (time.process_time() - c0) / wall)
    st["fps_total"] = _r(2 * frames / wall, 1)
    return st


def _paced_cpu(step: Callable[[], None], seconds: float) -> float:
    """CPU % of one stream drawn at 25 fps in real time (what an idle-spinning thread pool costs)."""
    n = max(1, int(seconds * 1e3 / FRAME_MS))
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        step()
        delay = w0 + (i + 1) * FRAME_MS / 1e3 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return 100.0 * (time.process_time() - c0) / (time.perf_counter() - w0)


@contextlib.contextmanager
def _busy(n: int):
    """``n`` busy-loop child processes: another program hogging cores, as on a kiosk running its UI."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.2 if n else 0.0)
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def thread_sweep(
    ctx: BenchContext,
    frames: int = 300,
    repeats: int = 3,
    batch: int = 16,
    configs: list[dict] | None = None,
    paced_s: float = 2.0,
    cpu_window_s: float = 0.3,
    busy: Iterable[int] = (0, 1),
) -> dict:
    """Intra-op threads x inter-op threads x spinning x execution mode, on the cases that decide a small CPU:
    one model step (b1 and b``batch``), one streamed frame (model + draw), two concurrent streams, and the
    CPU % of one real-time stream; each with the machine otherwise idle and with ``n`` busy-loop processes
    (``busy``). Repeated ``repeats`` times in rotating order; medians reported."""
    return {
        "precision": ctx.audio_model("cpu").model.precision,
        "frames": frames,
        "repeats": repeats,
        "batch": batch,
        "conditions": {
            ("idle" if n == 0 else f"{n} busy core{'s' if n > 1 else ''}"): _sweep_once(
                ctx, frames, repeats, batch, configs or THREAD_CONFIGS, paced_s, cpu_window_s, n
            )
            for n in busy
        },
    }


def _sweep_once(
    ctx: BenchContext,
    frames: int,
    repeats: int,
    batch: int,
    configs: list[dict],
    paced_s: float,
    cpu_window_s: float,
    busy: int,
) -> dict:
    from toonsync.runtime.streaming import AudioModel, Stream

    d = model_dir()
    prec = ctx.audio_model("cpu").model.precision
    runs: dict[str, list[dict]] = {c["name"]: [] for c in configs}
    load0 = loadavg()
    with _busy(busy):
        for rep in range(repeats):
            order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
            for cfg in order:
                row: dict[str, Any] = {}
                ams = {}
                for p in sorted({"fp32", prec}):
                    am = AudioModel("cpu", p)
                    am.model = dataclasses.replace(am.model, backend=_SweepBackend(d / f"audio2motion.{p}.onnx", cfg))
                    ams[p] = am
                    for b in (1, batch):
                        m = measure(
                            _a2m_step(am.model, ctx, b, False),
                            frames if b == 1 else max(5, frames // 2),
                            20,
                            cpu_window_s=cpu_window_s,
                        )
                        row[f"model_{p}_b{b}"] = summarize(m.samples_ms, b, FRAME_MS * b, m.cpu_pct)
                s = Stream(ams[prec], ctx.avatar.neutral, ctx.renderer, seed=0)
                chunks = list(ctx.pcm_frames)
                it = iter(range(10**12))

                def frame(s=s, chunks=chunks, it=it):
                    s.accept_audio(chunks[next(it) % len(chunks)])
                    while s.ready():
                        s.step()

                m = measure(frame, frames, 10, cpu_window_s=cpu_window_s)
                row["stream_frame"] = summarize(m.samples_ms, cpu_pct=m.cpu_pct)
                row["two_streams"] = _two_streams(ams[prec], ctx, frames)
                row["paced_cpu_pct"] = _r(_paced_cpu(frame, paced_s), 1)
                runs[cfg["name"]].append(row)
                log.info(
                    "threads %-16s busy %d rep %d: stream frame p50 %.2f ms, two streams p50 %.2f ms, "
                    "paced CPU %.0f %%",
                    cfg["name"],
                    busy,
                    rep + 1,
                    row["stream_frame"]["p50_ms"],
                    row["two_streams"]["p50_ms"],
                    row["paced_cpu_pct"],
                )
    out: dict[str, Any] = {"busy_processes": busy, "loadavg_start": load0, "loadavg_end": loadavg(), "configs": {}}
    for cfg in configs:
        rows = runs[cfg["name"]]
        med: dict[str, Any] = {"settings": {k: cfg[k] for k in ("intra", "inter", "spinning", "parallel")}}
        for key in rows[0]:
            if isinstance(rows[0][key], dict):
                med[key] = {
                    f: _r(float(np.median([r[key][f] for r in rows if r[key][f] is not None])), 3)
                    for f in ("p50_ms", "p99_ms", "cpu_pct")
                    if rows[0][key].get(f) is not None
                }
                if "fps_total" in rows[0][key]:
                    med[key]["fps_total"] = _r(float(np.median([r[key]["fps_total"] for r in rows])), 1)
            else:
                med[key] = _r(float(np.median([r[key] for r in rows])), 1)
        out["configs"][cfg["name"]] = med
    return out


def print_thread_sweep(sw: dict, file: TextIO | None = None) -> None:
    """The thread-settings table of ``--threads-sweep``."""
    b = sw["batch"]
    cols = list(
        dict.fromkeys(
            [
                ("model_fp32_b1", "model fp32 b1"),
                (f"model_{sw['precision']}_b1", f"model {sw['precision']} b1"),
                (f"model_fp32_b{b}", f"model fp32 b{b}"),
                ("stream_frame", "stream frame"),
                ("two_streams", "2 streams"),
            ]
        )
    )
    print(
        f"\nthread settings (median of {sw['repeats']} repeats): p50 / p99 ms (process CPU %); "
        "paced = CPU % of one stream drawn at 25 fps in real time",
        file=file,
    )
    for cond, cd in sw["conditions"].items():
        print(f"-- {cond} (load average {cd['loadavg_start']} -> {cd['loadavg_end']})", file=file)
        print(
            f"{'config':16s} {'intra':>5s} {'inter':>5s} {'spin':>5s} {'mode':>5s}"
            + "".join(f"{h:>24s}" for _, h in cols)
            + f"{'paced':>7s}",
            file=file,
        )
        for name, c in cd["configs"].items():
            st = c["settings"]
            spin = {None: "dflt", "0": "no", "1": "yes"}.get(st["spinning"], str(st["spinning"]))
            cells = "".join(
                f"{c[k]['p50_ms']:>9.3f} /{c[k]['p99_ms']:>7.3f} ({c[k]['cpu_pct']:>3.0f}%)" for k, _ in cols
            )
            print(
                f"{name:16s} {st['intra'] or 'dflt':>5} {st['inter'] or 'dflt':>5} {spin:>5s} "
                f"{'par' if st['parallel'] else 'seq':>5s}{cells}{c['paced_cpu_pct']:>6.0f}%",
                file=file,
            )
