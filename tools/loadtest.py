"""Load test of the kiosk server on loopback: N simulated WebSocket clients sending real speech in real time.

    python -m toonsync.tools.loadtest --clients 1,2,4,8 --seconds 10            # starts its own server
    python -m toonsync.tools.loadtest --url ws://127.0.0.1:8000/ws --server-pid 1234

Each client streams the bundled demo speech (looped) as 20 ms int16 chunks paced by the clock,
reads the frames that come back and measures, per client, frames/s and the round trip from sending
the audio chunk that completed a frame to receiving that frame (the model's 80 ms look-ahead comes on
top). The server's CPU use (from /proc) shows how close it is to the machine's cores. After the
requested steps it keeps adding clients until the server saturates (CPU >= 90 % of the cores, fewer
than 24 frames/s for some client, more than 1 % frames dropped, p99 round trip over 250 ms or any
error), bounded by ``--max-clients`` and ``--budget-s``. Only 127.0.0.1 / localhost / ::1 are accepted.
Needs the ``websockets`` package (client) and, for a self-started server, starlette + uvicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

log = logging.getLogger(__name__)
CHUNK_S = 0.02
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SATURATION = {"cpu_frac": 0.9, "min_fps": 24.0, "drop_frac": 0.01, "p99_ms": 250.0}


@dataclass
class ClientResult:
    """What one load-test client saw: frames, drops, errors, round-trip times."""

    frames: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    rtt_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class StepResult:
    """One load-test step (N clients): frame rates, round trips, server latency, drops, errors, CPU."""

    clients: int
    seconds: float
    fps_mean: float
    fps_min: float
    rtt_p50_ms: float
    rtt_p99_ms: float
    server_p99_ms: float
    frames: int
    dropped: int
    errors: int
    error_examples: list[str]
    server_cpu_cores: float | None
    client_cpu_cores: float
    saturated: bool
    reasons: list[str]


def _speech() -> np.ndarray:
    import soundfile as sf

    from toonsync.runtime.assets import __file__ as assets

    a, sr = sf.read(str(Path(assets).parent / "demo_speech.wav"), dtype="int16")
    if sr != 16000:
        raise RuntimeError(f"demo speech is {sr} Hz, expected 16000")
    return a if a.ndim == 1 else a[:, 0]


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) of ``pid`` and all its live descendants (the drawing processes)."""
    procs: dict[int, tuple[int, float]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))  # ppid, utime+stime
    if pid not in procs:
        return None
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += procs[p][1]
        todo.extend(c for c, (pp, _) in procs.items() if pp == p)
    return total


def check_loopback(url: str) -> str:
    u = urlsplit(url)
    if u.scheme not in ("ws", "wss") or (u.hostname or "") not in LOOPBACK:
        raise SystemExit(f"loadtest: only ws://127.0.0.1 / localhost / ::1 URLs are allowed, got {url!r}")
    return url


async def _client(url: str, speech: np.ndarray, seconds: float, delay: float, offset: int) -> ClientResult:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from toonsync.runtime.server import FRAME_HEADER, FRAME_MAGIC

    res = ClientResult()
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}
    n_chunk = int(16000 * CHUNK_S)
    stopped = asyncio.Event()
    try:
        async with connect(url, max_size=1 << 22, open_timeout=20, close_timeout=5, compression=None) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if hello.get("type") != "hello":
                res.errors.append(f"{hello.get('type')}: {hello.get('message', '')}")
                return res
            await ws.send(json.dumps({"type": "start", "format": "s16", "sample_rate": 16000, "emotion": "auto"}))

            async def receive():
                async for msg in ws:
                    if isinstance(msg, bytes):
                        magic, idx, seq, dropped, flags, ts, srv_ms, mo, gap = FRAME_HEADER.unpack_from(msg)
                        if magic != FRAME_MAGIC:
                            res.errors.append("bad frame magic")
                            continue
                        res.frames += 1
                        res.dropped = dropped
                        res.server_ms.append(srv_ms)
                        if seq in sent and not flags & 1:
                            res.rtt_ms.append((loop.time() - sent[seq]) * 1e3)
                    else:
                        doc = json.loads(msg)
                        if doc.get("type") in ("error", "busy"):
                            res.errors.append(f"{doc.get('code', doc['type'])}: {doc.get('message', '')}")
                        elif doc.get("type") == "stopped":
                            stopped.set()
                            return

            rx = asyncio.create_task(receive())
            t0 = loop.time()
            k = 0
            n_chunks = int(round(seconds / CHUNK_S))
            while k < n_chunks:  # real time, paced by the clock (catches up after a late wake-up)
                due = t0 + (k + 1) * CHUNK_S
                now = loop.time()
                if due > now:
                    await asyncio.sleep(due - now)
                i = (offset + k * n_chunk) % max(1, speech.size - n_chunk)
                await ws.send(speech[i : i + n_chunk].tobytes())
                k += 1
                sent[k] = loop.time()
                if rx.done():
                    break
            res.seconds = loop.time() - t0
            await ws.send(json.dumps({"type": "stop"}))
            try:
                await asyncio.wait_for(stopped.wait(), 10)
            except asyncio.TimeoutError:
                res.errors.append("no 'stopped' reply within 10 s")
            rx.cancel()
            await asyncio.gather(rx, return_exceptions=True)
    except (OSError, asyncio.TimeoutError, ConnectionClosed) as e:
        res.errors.append(f"{type(e).__name__}: {e}")
    return res


async def run_step(url: str, clients: int, seconds: float, speech: np.ndarray, server_pid: int | None) -> StepResult:
    cpu0 = _cpu_seconds(server_pid) if server_pid else None
    c0, w0 = time.process_time(), time.perf_counter()
    tasks = [
        _client(url, speech, seconds, delay=i * CHUNK_S / max(clients, 1), offset=(i * 7919) % speech.size)
        for i in range(clients)
    ]
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    wall = time.perf_counter() - w0
    cpu1 = _cpu_seconds(server_pid) if server_pid else None
    rtt = np.concatenate([r.rtt_ms for r in results if r.rtt_ms] or [np.zeros(0)])
    srv = np.concatenate([r.server_ms for r in results if r.server_ms] or [np.zeros(0)])
    fps = [r.fps for r in results]
    frames, dropped = sum(r.frames for r in results), sum(r.dropped for r in results)
    errors = [e for r in results for e in r.errors]
    server_cores = (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None
    pct = lambda a, q: round(float(np.percentile(a, q)), 1) if a.size else float("nan")
    step = StepResult(
        clients,
        round(seconds, 2),
        round(float(np.mean(fps)), 2),
        round(float(np.min(fps)), 2),
        pct(rtt, 50),
        pct(rtt, 99),
        pct(srv, 99),
        frames,
        dropped,
        len(errors),
        errors[:3],
        round(server_cores, 2) if server_cores is not None else None,
        round((time.process_time() - c0) / wall, 2),
        False,
        [],
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if server_cores is not None and server_cores >= SATURATION["cpu_frac"] * cores:
        step.reasons.append(f"server CPU {server_cores:.2f} of {cores} cores")
    if step.fps_min < SATURATION["min_fps"]:
        step.reasons.append(f"a client got {step.fps_min:.1f} frames/s")
    if frames + dropped and dropped / (frames + dropped) > SATURATION["drop_frac"]:
        step.reasons.append(f"{dropped} of {frames + dropped} frames dropped")
    if not np.isnan(step.rtt_p99_ms) and step.rtt_p99_ms > SATURATION["p99_ms"]:
        step.reasons.append(f"p99 round trip {step.rtt_p99_ms:.0f} ms")
    if errors:
        step.reasons.append(f"{len(errors)} errors")
    step.saturated = bool(step.reasons)
    return step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    max_streams: int, timeout_s: float = 90.0, extra: list[str] | None = None
) -> tuple[subprocess.Popen, str]:
    """``python -m toonsync.runtime.server`` on a free loopback port; returns (process, ws url) once healthy."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "toonsync.runtime.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-streams",
        str(max_streams),
        "--idle-timeout",
        "120",
    ] + (extra or [])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if json.load(r).get("status") == "ok":
                    return proc, f"ws://127.0.0.1:{port}/ws"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server not healthy within {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def markdown(steps: list[StepResult], cores: int) -> str:
    rows = [
        "| clients | frames/s per client (mean / min) | round trip p50 / p99 (ms) | server p99 (ms) | dropped | errors "
        "| server CPU (cores) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        cpu = "–" if s.server_cpu_cores is None else f"{s.server_cpu_cores:.2f} / {cores}"
        rows.append(
            f"| {s.clients}{' (saturated)' if s.saturated else ''} | {s.fps_mean:.2f} / {s.fps_min:.2f} | "
            f"{s.rtt_p50_ms:.1f} / {s.rtt_p99_ms:.1f} | {s.server_p99_ms:.1f} | {s.dropped} | {s.errors} | {cpu} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m toonsync.tools.loadtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default="1,2,4,8", help="comma-separated client counts (default 1,2,4,8)")
    p.add_argument(
        "--seconds", type=float, default=10.0, help="seconds of speech each client sends per step (default 10)"
    )
    p.add_argument("--url", help="an already running server's ws://127.0.0.1:PORT/ws (default: start one)")
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, to measure its CPU")
    p.add_argument("--max-clients", type=int, default=32, help="stop the saturation search here (default 32)")
    p.add_argument("--no-search", action="store_true", help="only the --clients steps, no saturation search")
    p.add_argument("--budget-s", type=float, default=600.0, help="stop starting steps after this many seconds")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    p.add_argument("--server-args", default="", help="extra arguments for the self-started server")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        counts = [int(c) for c in a.clients.split(",") if c.strip()]
    except ValueError:
        p.error("--clients must be comma-separated integers")
    if not counts or min(counts) < 1 or max(counts) > 256 or a.max_clients > 256:
        p.error("client counts must be 1..256")
    if not 0.5 <= a.seconds <= 600:
        p.error("--seconds must be 0.5..600")
    speech = _speech()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    proc = None
    if a.url:
        url, pid = check_loopback(a.url), a.server_pid
    else:
        proc, url = start_server(max(max(counts), a.max_clients) + 1, extra=a.server_args.split())
        pid = proc.pid
    steps: list[StepResult] = []
    t_start = time.monotonic()
    try:
        plan = list(counts)
        i = 0
        while i < len(plan):
            n = plan[i]
            if time.monotonic() - t_start + a.seconds + 15 > a.budget_s:
                log.info("time budget reached; stopping before %d clients", n)
                break
            step = asyncio.run(run_step(url, n, a.seconds, speech, pid))
            steps.append(step)
            log.info(
                "%3d clients: %5.2f fps/client (min %5.2f), round trip p50 %6.1f ms p99 %6.1f ms, server p99 "
                "%6.1f ms, dropped %d, errors %d, server CPU %s cores%s",
                n,
                step.fps_mean,
                step.fps_min,
                step.rtt_p50_ms,
                step.rtt_p99_ms,
                step.server_p99_ms,
                step.dropped,
                step.errors,
                step.server_cpu_cores,
                f"  SATURATED: {'; '.join(step.reasons)}" if step.saturated else "",
            )
            i += 1
            if i == len(plan) and not a.no_search and not any(s.saturated for s in steps):
                nxt = n + 2 if n >= 8 else n * 2
                if nxt <= a.max_clients:
                    plan.append(nxt)
            time.sleep(1.0)  # let the server close the last step's streams
    finally:
        if proc is not None:
            stop_server(proc)
    sat = next((s.clients for s in steps if s.saturated), None)
    print(markdown(steps, cores))
    print(
        f"saturation ({cores} cores): "
        + (f"{sat} clients" if sat else f"not reached up to {steps[-1].clients if steps else 0} clients")
    )
    if a.json:
        from toonsync.runtime.atomic import atomic_path

        doc = {
            "cores": cores,
            "seconds": a.seconds,
            "saturated_at": sat,
            "criteria": SATURATION,
            "steps": [asdict(s) for s in steps],
        }
        with atomic_path(a.json) as tmp:
            tmp.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
