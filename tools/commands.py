"""The measurement tools' ``toonsync`` sub-commands: bench, soak, eval (lipsync | render), sheet.

Registering them imports only argparse; each handler imports its tool when it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from toonsync.runtime.assets import DEMO_SPEECH, asset
from toonsync.runtime.atomic import atomic_path, check_folder_exists, check_not_input
from toonsync.runtime.commands import import_extra
from toonsync.runtime.errors import ToonsyncError
from toonsync.runtime.options import RenderOptions

log = logging.getLogger("toonsync")


def _stream_counts(text: str) -> tuple[int, ...]:
    try:
        ns = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected stream counts like 1,4,16,64") from None
    if any(n < 0 for n in ns):
        raise argparse.ArgumentTypeError(f"{text!r}: stream counts must be positive")
    return tuple(n for n in ns if n > 0)


def register(sub: argparse._SubParsersAction) -> None:
    """Add bench, soak, eval and sheet to ``sub``."""
    b = sub.add_parser(
        "bench",
        help="latency per stage and end to end (p50/p90/p99/max, fps, RTF, CPU %%, RSS) across backends and precisions",
        description="Runs every benchmark case without pytest (the same cases as "
        "`pytest benchmarks/ --benchmark-only`) and prints one table. Figures and the "
        "commands behind them: docs/benchmarks.md; JSON layout: benchmarks/bench.schema.json.",
    )
    b.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "cpu", "cuda", "tensorrt"],
        help="auto (default): the models on every backend available here, end to end on the runtime's "
        "own choice; a name: only that backend",
    )
    b.add_argument(
        "--precision",
        default="all",
        choices=["fp32", "fp16", "int8", "all"],
        help="model precisions to measure (default all; fp32 is always measured as the baseline)",
    )
    b.add_argument("--seconds", type=float, default=10.0, help="length of the speech clip to benchmark (default 10)")
    b.add_argument("--frames", type=int, default=200, help="timed rounds of each per-frame case (default 200)")
    b.add_argument("--batch", type=int, default=16, help="streams per call of the throughput cases (default 16)")
    b.add_argument("--json", type=Path, help="also write the results as JSON (toonsync-bench/2)")
    b.add_argument(
        "--compare", type=Path, metavar="OLD_JSON", help="show speed-ups / regressions against an earlier --json file"
    )
    b.add_argument(
        "--plot",
        nargs="?",
        const="",
        metavar="PNG",
        help="write latency distributions + cost vs clip length as a PNG "
        "(default: the --json path with .png, else bench.png; needs matplotlib)",
    )
    b.add_argument(
        "--quick", action="store_true", help="one round of the heavy cases (a smoke run: structure, not figures)"
    )
    b.add_argument(
        "--threads-sweep",
        action="store_true",
        help="also explore onnxruntime thread settings (intra/inter-op threads, spinning, mode)",
    )
    b.add_argument("--no-torch", action="store_true", help="skip the torch-eager baseline")
    b.add_argument(
        "--streams",
        type=_stream_counts,
        default=(1, 4, 16, 64),
        metavar="N,N,...",
        help="multi-stream cases: N live streams per 40 ms tick, model batched (step_many) vs one "
        "call per stream (default 1,4,16,64; 0 = none)",
    )
    b.add_argument(
        "--long",
        type=float,
        metavar="MINUTES",
        help="also render MINUTES of speech vs 10 s in fresh processes: time per audio second and peak RSS",
    )
    b.add_argument(
        "--uploads",
        action="store_true",
        help="also measure the kiosk server's peak RSS under its heaviest uploads (a 49 MP photo, image bombs)",
    )
    b.add_argument(
        "--stream",
        action="store_true",
        help="benchmark live streaming only: the demo speech in real time, audio->frame latency",
    )
    b.set_defaults(func=cmd_bench)

    ev = sub.add_parser(
        "eval",
        help="held-out lip-sync metrics (--test corpus.h5), or `eval render`: image metrics, "
        "landmark drift, jitter of rendered video (JSON)",
    )
    ev.add_argument(
        "mode",
        nargs="?",
        choices=["lipsync", "render", "real", "landmarks", "people"],
        default="lipsync",
        help="lipsync (default; needs --test), render (docs/metrics.md), real: lip-sync, head motion and blinks "
        "on real human recordings (docs/real_speech.md), or landmarks: the landmark model for drawings on "
        "synthetic, bundled and real drawings (docs/drawings.md), or people: the attributes read from the "
        "labelled real photos (docs/avatars.md; fetch them with `python -m toonsync.tools.people fetch`)",
    )
    ev.add_argument(
        "--test",
        type=Path,
        help="lipsync: held-out corpus .h5 (toonsync corpus build --split test); real: score that TTS split "
        "instead of the recordings, each clip heard through a seeded random recording chain (the set to tune on)",
    )
    ev.add_argument(
        "--sheet",
        type=Path,
        help="landmarks: also draw the drawings' fitted points and avatars; people: the photos beside their "
        "avatars (PNG)",
    )
    ev.add_argument("--clean", action="store_true", help="real --test: the TTS clips as they are, not re-recorded")
    ev.add_argument(
        "--recordings",
        choices=["train", "val"],
        help="real: score that split of the recordings to train and tune on (python -m toonsync.tools.recordings "
        "fetch) instead of the evaluation clips",
    )
    ev.add_argument("--checkpoint", type=Path, help="lipsync: a torch checkpoint instead of the shipped ONNX model")
    ev.add_argument("--precision", default="fp32", choices=["fp32", "int8", "fp16"])
    ev.add_argument(
        "--record",
        action="store_true",
        help="lipsync, shipped model: also write the figures into its sidecars (heldout_eval)",
    )
    ev.add_argument(
        "--out",
        type=Path,
        help="directory for eval.json / eval_render.json and plots (default runs/eval, runs/eval_render)",
    )
    ev.add_argument("--face", help="render: photo or .avatar (default: the bundled demo photo)")
    ev.add_argument("--audio", help="render: speech WAV/FLAC (default: the bundled demo speech)")
    ev.add_argument("--renderer", default="procedural", choices=["procedural", "onnx"], help="render: which renderer")
    ev.add_argument("--size", type=int, default=256, help="render: frame size (default 256)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument(
        "--lpips-weights",
        metavar="PATH",
        help="render: LPIPS linear-layer weights; LPIPS is reported only with these and an importable "
        "lpips (torch), else as unavailable with the reason",
    )
    RenderOptions.add_arguments(ev, "mouth_gain", "head_motion")
    ev.set_defaults(func=cmd_eval)

    so = sub.add_parser(
        "soak", help="stream synthetic speech for N minutes faster than real time; report RSS, frames, drops"
    )
    so.add_argument("--minutes", type=float, default=30.0)
    so.add_argument("--draw", action="store_true", help="draw every frame too (slower; exercises the renderer)")
    so.add_argument("--json", type=Path, help="write the report as JSON")
    so.set_defaults(func=cmd_soak)

    sh = sub.add_parser(
        "sheet",
        help="side-by-side figure: photo | avatar | mouth shapes from speech, a blink, an emotion, a head turn (PNG)",
    )
    sh.add_argument("face", help="face photo (PNG/JPEG/BMP/WebP); shown in the figure's first tile")
    sh.add_argument("-o", "--output", required=True, type=Path, help="output .png (e.g. docs/side_by_side.png)")
    sh.add_argument("--audio", help="speech whose mouth shapes are shown (default: the bundled demo speech)")
    sh.add_argument("--tile", type=int, default=192, help="tile size in pixels (default 192)")
    sh.add_argument(
        "--mouth-strip",
        action="store_true",
        help="instead: the drawn mouth over 20 consecutive frames of the loudest stretch of --audio",
    )
    sh.set_defaults(func=cmd_sheet)


def cmd_bench(a: argparse.Namespace) -> int:
    from .bench import print_stream_report, run_bench, run_stream_bench
    from .report import compare_reports, plot_report, print_compare, print_report

    if a.stream:
        rep = run_stream_bench(backend=a.backend)
        print_stream_report(rep)
    else:
        old = None
        if a.compare:  # read before measuring: a bad path fails in a second, not after the run
            try:
                old = json.loads(Path(a.compare).read_text())
            except FileNotFoundError:
                raise ToonsyncError(f"--compare: {a.compare} does not exist") from None
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ToonsyncError(f"--compare: {a.compare} is not a bench JSON file ({e})") from None
            if not isinstance(old, dict) or "cases" not in old:
                raise ToonsyncError(f"--compare: {a.compare} is not a toonsync bench JSON file (no 'cases')")
        rep = run_bench(
            backend=a.backend,
            seconds=a.seconds,
            frames=a.frames,
            precisions=a.precision,
            batch=a.batch,
            quick=a.quick,
            torch=not a.no_torch,
            sweep=a.threads_sweep,
            streams=a.streams,
            long_minutes=a.long,
            uploads=a.uploads,
            command="toonsync bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else []),
        )
        if old is not None:
            rep["compare"] = compare_reports(old, rep)
        print_report(rep)
        if old is not None:
            print_compare(rep["compare"])
        if a.plot is not None:
            png = Path(a.plot) if a.plot else (a.json.with_suffix(".png") if a.json else Path("bench.png"))
            plot_report(rep, png)
            log.info("wrote %s", png)
    if a.json:
        from toonsync.runtime.atomic import atomic_path

        with atomic_path(a.json) as tmp:
            tmp.write_text(json.dumps(rep, indent=1))
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    if a.mode == "render":
        from .eval_render import eval_render, format_table

        rep = eval_render(
            a.face,
            a.audio,
            a.out or Path("runs/eval_render"),
            renderer=a.renderer,
            size=a.size,
            seed=a.seed,
            precision=a.precision,
            lpips_weights=a.lpips_weights,
        )
        log.info("%s", format_table(rep))
        return 0 if rep["frames"]["ok"] and rep["privacy"].get("ok", True) else 1
    if a.mode == "real":
        return _eval_real(a)
    if a.mode == "landmarks":
        return _eval_landmarks(a)
    if a.mode == "people":
        return _eval_people(a)
    if a.test is None:
        raise ToonsyncError("eval needs --test corpus.h5 (lip-sync), or use `toonsync eval render` / `eval real`")
    a.out = a.out or Path("runs/eval")
    er = import_extra("toonsync.training.eval_report", "train")
    rep = er.run_eval(a.test, a.out, a.checkpoint, a.precision)
    keys = (
        "clips",
        "r_target",
        "r_phoneme",
        "viseme_acc",
        "silence_closed",
        "silence_closed_frames",
        "onset_lag_ms",
        "drift_pct_iod",
    )
    log.info("eval: %s", ", ".join(f"{k}={rep[k]}" for k in keys))
    log.info("wrote %s/eval.json and plots", a.out)
    if a.record:
        if a.checkpoint is not None:
            raise ToonsyncError("--record writes the shipped model's sidecars: drop --checkpoint")
        names = record_in_sidecars(rep, f"toonsync eval --test {a.test} --precision {a.precision}")
        log.info("recorded the figures in %s", ", ".join(f"{n}.onnx.json" for n in names))
    return 0


def _eval_people(a: argparse.Namespace) -> int:
    """``toonsync eval people``: per-attribute accuracy on the labelled photos -> OUT/people_eval.json."""
    from .eval_people import contact_sheet, evaluate_people, format_table

    rep = evaluate_people()
    if not rep["people"]:
        raise ToonsyncError("no labelled photos found: run `python -m toonsync.tools.people fetch` first")
    out = (a.out or Path("runs/eval_people")) / "people_eval.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(rep, indent=2) + "\n")
    print(format_table(rep))
    if a.sheet is not None:
        log.info("wrote %s", contact_sheet(a.sheet))
    log.info("%d people, %.0f ms per photo (p50); wrote %s", rep["people"], rep["ms_per_photo_p50"], out)
    return 0


def _eval_landmarks(a: argparse.Namespace) -> int:
    """``toonsync eval landmarks``: the drawn-face landmark figures -> OUT/landmark_eval.json and a summary."""
    lev = import_extra("toonsync.training.landmark_eval", "train")
    if a.sheet is not None:
        log.info("wrote %s", lev.points_sheet(a.sheet))
    rep = lev.evaluate_landmarks(seed=a.seed)
    out = (a.out or Path("runs/eval_landmarks")) / "landmark_eval.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(rep, indent=2) + "\n")
    for k in ("synthetic_avatar", "synthetic_flat", "bundled", "real"):
        r = rep[k]
        if "skipped" in r:
            log.info("%s: skipped (%s)", k, r["skipped"])
            continue
        log.info(
            "%s: %d pictures, found %.0f %%, NME mean %s median %s, confidence %.2f, %.0f ms per picture",
            k, r["pictures"], 100 * r["found"], r["nme_found_mean"], r["nme_found_median"],
            r["confidence_median"], r["ms_per_picture_p50"],
        )  # fmt: skip
    log.info("wrote %s", out)
    return 0


def _eval_real(a: argparse.Namespace) -> int:
    """``toonsync eval real``: figures on the bundled real recordings -> OUT/real_eval.json and a summary."""
    real = import_extra("toonsync.training.real_eval", "train")
    knobs = {"mouth_gain": a.mouth_gain, "head_motion": a.head_motion, "precision": a.precision}
    if a.test is not None and a.recordings is not None:
        raise ToonsyncError("eval real takes --test (a TTS split) or --recordings (a split of recordings), not both")
    if a.test is not None:
        rep = real.evaluate_split(a.test, rerecord=not a.clean, seed=a.seed, **knobs)
    elif a.recordings is not None:
        from .recordings import pronunciations, recordings

        rep = real.evaluate_real(recordings(a.recordings), pronunciations=pronunciations(), **knobs)
        rep["data"] = {"recordings": a.recordings}
    else:
        rep = real.evaluate_real(**knobs)
    out = (a.out or Path("runs/eval_real")) / "real_eval.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(rep, indent=2) + "\n")
    pose = rep["pose_std_deg"]
    log.info(
        "%s (%d clips, %.0f s, %d speakers): r %.3f (blended targets %.3f), slope %.2f, wide-open median %.2f, closed "
        "precision %.2f / recall %.2f (mouth cues %.2f / %.2f), head std yaw %.1f° pitch %.1f°, %.0f blinks/min; "
        "wrote %s",
        f"recordings ({a.recordings})"
        if a.recordings
        else "real speech"
        if a.test is None
        else f"{a.test}{'' if a.clean else ' re-recorded'}",
        rep["clips"],
        rep["seconds"],
        len(rep["speakers"]),
        rep["r"],
        rep["r_blended"],
        rep["slope"],
        rep["wide_open_median"],
        rep["closed_precision"],
        rep["closed_recall"],
        rep["cue_closed_precision"],
        rep["cue_closed_recall"],
        pose["yaw"],
        pose["pitch"],
        rep["blinks_per_min"],
        out,
    )
    return 0


def record_in_sidecars(rep: dict, command: str) -> list[str]:
    """Write the held-out figures of a shipped-model eval into the sidecars of the models it ran
    (``heldout_eval``: the command, overall, per engine, graph only); returns the sidecars updated."""
    from toonsync.export.sidecar import update_sidecar
    from toonsync.runtime.backend import model_dir
    from toonsync.training.eval_report import SUMMARY_KEYS

    summary = {
        "command": command,
        "model": rep["model"],
        "test_data": rep["test_data"],
        "runtime": {k: rep.get(k) for k in SUMMARY_KEYS},
        "by_engine": {e: {k: m.get(k) for k in SUMMARY_KEYS} for e, m in rep.get("by_engine", {}).items()},
        "graph_only": {k: rep["graph_only"].get(k) for k in SUMMARY_KEYS},
    }
    names = ["audio2motion"] + (["motion"] if "motion decoder" in rep["model"] else [])
    for name in names:
        update_sidecar(model_dir(), name, heldout_eval=summary)
    return names


def cmd_soak(a: argparse.Namespace) -> int:
    from .soak import soak

    rep = soak(a.minutes, draw=a.draw).to_dict()
    log.info("soak: %s", json.dumps({k: v for k, v in rep.items() if k != "rss_mb"}))
    if a.json:
        from toonsync.runtime.atomic import atomic_path

        with atomic_path(a.json) as tmp:
            tmp.write_text(json.dumps(rep, indent=2))
    return 0 if rep["lost_samples"] == 0 else 1


def cmd_sheet(a: argparse.Namespace) -> int:
    from .figures import side_by_side

    if a.output.suffix.lower() != ".png":
        raise ToonsyncError(f"sheet output must be a .png, got {a.output.name}")
    check_not_input(a.output, a.face, a.audio)
    check_folder_exists(a.output)
    if a.mouth_strip:
        from .figures import mouth_strip

        mouth_strip(a.face, a.audio or asset(DEMO_SPEECH), a.output)
        log.info("wrote %s", a.output)
        return 0
    side_by_side(a.face, a.output, a.audio, tile=a.tile)
    log.info("wrote %s", a.output)
    return 0
