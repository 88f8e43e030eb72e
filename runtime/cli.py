"""``toonsync`` command line. Run ``toonsync --help`` or ``toonsync COMMAND --help``."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
import warnings
from pathlib import Path

from .errors import ToonsyncError

log = logging.getLogger("toonsync")

EPILOG = """examples:
  toonsync demo                                   # bundled photo + speech -> demo.mp4 + demo_sheet.png
  toonsync render face.jpg speech.wav -o out.mp4  # your photo, your speech
  toonsync render face.avatar speech.flac -o out.mp4 --emotion happy --seed 3
  toonsync prepare face.jpg -o face.avatar        # prepare once, render/stream many times
  toonsync render drawing.png speech.wav --landmarks drawing.json -o out.mp4  # a drawn character
  toonsync stream --mic --face face.avatar --record live.mp4     # live microphone, 25 fps
  toonsync stream --wav speech.wav --face face.jpg --record o.mp4 # a file played as if live
  toonsync preprocess clip.mp4 -o clips.h5        # frames + 68 landmarks + log-mel -> HDF5
  toonsync motion speech.wav -o motion.json       # landmarks/pose/blink/visemes for animators
  toonsync corpus build -o corpus/test.h5 --split test --minutes 8
  toonsync corpus check --corpus corpus/test.h5 --json runs/align_check.json  # engine timings vs pocketsphinx
  toonsync eval --test corpus/test.h5             # held-out lip-sync metrics + plots
  toonsync eval render --out runs/eval_render     # MSE/PSNR/SSIM, landmark drift, jitter of rendered video
  toonsync sheet face.jpg -o docs/side_by_side.png # photo | avatar | mouth shapes, blink, emotion, head turn
  toonsync soak --minutes 30                      # memory / lost-sample soak of the streaming runtime
  toonsync train motion --minutes 120             # build the TTS corpus, train speech model + motion decoder
  toonsync train audio2motion --minutes 60        # the speech model alone (needs toonsync[train])
  toonsync train stylizer --data face2comics/     # pix2pix face -> comic stylizer (docs/learned_models.md)
  toonsync export                                 # checkpoint -> ONNX + sidecar in the model dir
  toonsync export --triton triton_repo            # the models as a Triton Inference Server repository
  toonsync bench                                  # latency per stage (p50/p99) and real-time factor
  toonsync doctor                                 # versions, providers, model files and checksums
"""


def _add_render_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=256, help="output width = height in pixels (even, 64..2048; default 256)")
    p.add_argument("--fps", type=int, default=25, help="output frame rate (1..60; the models run at 25; default 25)")
    p.add_argument("--seed", type=int, default=0, help="seed of head motion and blinks (default 0)")
    p.add_argument("--emotion", default="auto",
                   help="expression: auto (estimated from the speech's prosody, default), a name (angry, "
                        "disgusted, fearful, happy, neutral, sad) or a schedule like '0:neutral,2.5:happy,6:sad'")
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="inference backend (default auto: the fastest available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8", "fp16"],
                   help="model precision (default auto: INT8 where calibration kept it inside its accuracy budget)")


def _add_background_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--background", default="default", metavar="COLOR|IMAGE|transparent",
                   help="behind the avatar: default (its own pastel), a colour (#rrggbb, #rgb or a name: white, "
                        "black, gray, green, blue, ... see runtime/background.py), an image file (cover-cropped), "
                        "or transparent (RGBA; needs .webm, .mov or a PNG-sequence output)")


def _add_renderer_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--renderer", default="auto", choices=["auto", "procedural", "onnx"],
                   help="procedural: draw the anime face from scratch each frame; onnx: warp the avatar's image "
                        "with the render.onnx engine (docs/renderer.md); auto (default): procedural for photos, "
                        "onnx for drawn characters")


def _add_drawing_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landmarks", type=Path, metavar="JSON",
                   help="the face is a drawn character with these 68 [x, y] pixel points (iBUG 300-W order; a list "
                        "or {\"landmarks\": [...]}); its own pixels are animated")
    p.add_argument("--drawing", action="store_true",
                   help="the face is a drawn character (animated from its own pixels); without --landmarks its "
                        "landmarks are detected")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toonsync", description="Anime talking avatars from a face photo and speech.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    d = sub.add_parser("demo", help="render the bundled demo (photo + speech) to demo.mp4 and a contact sheet")
    d.add_argument("--out-dir", type=Path, default=Path("."), help="where demo.mp4 and demo_sheet.png go (default .)")
    _add_render_opts(d)

    r = sub.add_parser("render", help="FACE + AUDIO -> anime talking-avatar MP4 (H.264 + AAC)")
    r.add_argument("face", help="face photo (PNG/JPEG/BMP/WebP) or a prepared .avatar bundle")
    r.add_argument("audio", help="speech, WAV or FLAC (any rate, mono or stereo)")
    r.add_argument("-o", "--output", required=True,
                   help="output .mp4 (H.264 + AAC); .webm (VP9 + alpha), .mov (qtrle + alpha) or a PNG-sequence "
                        "directory (ending in / or .png-seq) keep a transparent background; written atomically")
    r.add_argument("--sheet", type=Path, help="also write a contact sheet PNG of the frames")
    _add_background_opt(r)
    _add_renderer_opt(r)
    _add_drawing_opts(r)
    _add_render_opts(r)

    sh = sub.add_parser("sheet", help="side-by-side figure: photo | avatar | mouth shapes from speech, a blink, "
                                      "an emotion, a head turn (PNG)")
    sh.add_argument("face", help="face photo (PNG/JPEG/BMP/WebP); shown in the figure's first tile")
    sh.add_argument("-o", "--output", required=True, type=Path, help="output .png (e.g. docs/side_by_side.png)")
    sh.add_argument("--audio", help="speech whose mouth shapes are shown (default: the bundled demo speech)")
    sh.add_argument("--tile", type=int, default=192, help="tile size in pixels (default 192)")

    pr = sub.add_parser("prepare", help="face photo -> reusable .avatar bundle (no photo pixels inside)")
    pr.add_argument("face", help="face photo (PNG/JPEG/BMP/WebP)")
    pr.add_argument("-o", "--output", required=True, type=Path, help="output .avatar file")
    pr.add_argument("--stylizer", choices=["procedural", "learned"], default="procedural",
                    help="procedural (default): the avatar is drawn from the photo's colours + landmarks; learned: "
                         "also the pix2pix stylizer's comic of the face (needs weights trained on Face2Comics with "
                         "`toonsync train stylizer`; none ship)")
    _add_drawing_opts(pr)

    s = sub.add_parser("stream", help="live: microphone (or a WAV played as if live) -> avatar at 25 fps")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--mic", nargs="?", const="default", metavar="DEVICE",
                     help="record from a microphone (default device, or a name/index)")
    src.add_argument("--wav", type=Path, help="stream a WAV/FLAC file as if it were live")
    s.add_argument("--face", required=True, help="face photo or .avatar bundle")
    s.add_argument("--record", help="also record the frames + audio (.mp4; .webm/.mov/PNG-sequence directory keep "
                                    "alpha), finalised on Ctrl-C")
    _add_background_opt(s)
    _add_renderer_opt(s)
    s.add_argument("--window", action="store_true", help="show an OpenCV window (needs a display + GUI OpenCV)")
    s.add_argument("--fast", action="store_true", help="with --wav: as fast as possible instead of real time")
    s.add_argument("--max-backlog", type=int, default=2, help="frames allowed to queue before dropping (default 2)")
    s.add_argument("--size", type=int, default=256, help="frame size in pixels (default 256)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--emotion", default="auto", help="auto (from prosody), a name, or a schedule '0:neutral,3:happy'")
    s.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    s.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8", "fp16"])
    s.add_argument("--triton", metavar="URL",
                   help="run the audio model on a Triton server instead (host:8000, grpc://host:8001, optional "
                        "/MODEL; needs toonsync[triton]; docs/triton.md)")

    pp = sub.add_parser("preprocess", help="video/audio files -> HDF5 clips (frames, 68 landmarks, pose, log-mel)")
    pp.add_argument("inputs", nargs="+", help="video (.mp4 .mov .mkv .webm .avi) or audio (.wav .flac) files")
    pp.add_argument("-o", "--output", required=True, type=Path, help="output .h5")
    pp.add_argument("--frame-size", type=int, default=256, help="downscale stored frames to this long side (0 = keep)")

    t = sub.add_parser("train", help="train a model (needs `pip install toonsync[train]`)")
    t.add_argument("model", choices=["motion", "audio2motion", "stylizer", "identity", "refiner"],
                   help="motion (speech embedding + transformer motion decoder, the shipped pair; TTS corpus), "
                        "audio2motion (the speech model alone), stylizer (Face2Comics, --data), identity / refiner "
                        "(avatars drawn here); docs/learned_models.md, docs/motion.md")
    t.add_argument("--corpus-dir", type=Path, default=Path("corpus"), help="where the TTS corpus is built/read")
    t.add_argument("--minutes", type=float, default=100.0, help="minutes of training speech to synthesise")
    t.add_argument("--steps", type=int, help="optimisation steps (default: the model's; audio2motion 8000)")
    t.add_argument("--out", type=Path, help="checkpoint directory (default runs/MODEL)")
    t.add_argument("--data", type=Path, help="stylizer: the Face2Comics folder (faces/ or face/ beside comics/)")
    t.add_argument("--size", type=int, help="stylizer / identity / refiner: image side (default: the model's)")
    t.add_argument("--width", type=int, help="stylizer / identity / refiner: first-level channels (default: the model's)")
    t.add_argument("--export", type=Path, metavar="MODEL_DIR",
                   help="stylizer / identity / refiner: also export MODEL.fp32.onnx + sidecar to MODEL_DIR")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch", type=int, help="global batch per step, split over torchrun processes x --accum "
                                             "(default: the model's; audio2motion 32)")
    t.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step (gradient accumulation)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: this process's GPU under torchrun when CUDA is present, else CPU")
    t.add_argument("--no-amp", dest="amp", action="store_false", help="no fp16 mixed precision on CUDA")
    t.add_argument("--resume", type=Path, help="motion: continue an interrupted run (its --out directory)")
    t.add_argument("--init", type=Path, help="motion: fine-tune from a previous run directory")

    c = sub.add_parser("calibrate", help="INT8 from real calibration speech + quantization report (needs toonsync[export])")
    c.add_argument("--model-dir", type=Path, help="models to quantize (default: the runtime's model directory)")
    c.add_argument("--corpus", type=Path, help="calibrate on held-out clips of this corpus .h5 instead of calibration/data")
    c.add_argument("--report", type=Path, default=Path("calibration/report.json"), help="report JSON path")
    c.add_argument("--docs", type=Path, default=Path("docs/quantization.md"), help="markdown table path")

    e = sub.add_parser("export", help="trained checkpoint -> name.fp32.onnx + name.onnx.json (needs toonsync[export])")
    e.add_argument("--checkpoint", type=Path, default=Path("checkpoints/audio2motion.pt"),
                   help="trained checkpoint (default: the shipped one, checkpoints/audio2motion.pt)")
    e.add_argument("--model-dir", type=Path, help="destination (default: the runtime's model directory)")
    e.add_argument("--report", type=Path, default=Path("docs/export.md"), help="export report (markdown)")
    e.add_argument("--only", choices=["audio2motion", "motion", "render", "identity", "stylizer", "refiner"],
                   help="export one model: audio2motion (+ its fp16 and fused PCM graphs, from --checkpoint), motion "
                        "(the transformer motion decoder, motion.pt next to --checkpoint, same training run), render "
                        "(the warp renderer; no checkpoint, seconds), or a learned image model (NAME.pt next to "
                        "--checkpoint); default: all of them whose checkpoint exists")
    e.add_argument("--triton", type=Path, metavar="DIR",
                   help="instead of exporting: write the models in --model-dir as a Triton model repository "
                        "(needs onnx only; docs/triton.md)")
    e.add_argument("--triton-precision", default="fp32", choices=["fp32", "int8", "fp16"],
                   help="with --triton: which model files to serve (default fp32)")
    e.add_argument("--triton-device", default="cpu", choices=["cpu", "gpu", "tensorrt"],
                   help="with --triton: KIND_CPU, KIND_GPU, or KIND_GPU + the TensorRT accelerator (default cpu)")
    e.add_argument("--triton-max-batch", type=int, default=64, help="with --triton: max_batch_size (default 64)")
    e.add_argument("--triton-instances", type=int, default=1, help="with --triton: instances per model (default 1)")
    e.add_argument("--triton-models", nargs="+", choices=["audio2motion", "audio2motion_pcm"],
                   help="with --triton: which models (default both)")
    e.add_argument("--triton-plan", action="append", metavar="MODEL=PLAN",
                   help="with --triton: serve this TensorRT plan as MODEL's version (repeatable)")

    b = sub.add_parser("bench", help="latency per stage and end to end (p50/p90/p99/max, fps, RTF, CPU %%, RSS) "
                                     "across backends and precisions",
                       description="Runs every benchmark case without pytest (the same cases as "
                                   "`pytest benchmarks/ --benchmark-only`) and prints one table. Figures and the "
                                   "commands behind them: docs/benchmarks.md; JSON layout: benchmarks/bench.schema.json.")
    b.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="auto (default): the models on every backend available here, end to end on the runtime's "
                        "own choice; a name: only that backend")
    b.add_argument("--precision", default="all", choices=["fp32", "fp16", "int8", "all"],
                   help="model precisions to measure (default all; fp32 is always measured as the baseline)")
    b.add_argument("--seconds", type=float, default=10.0, help="length of the speech clip to benchmark (default 10)")
    b.add_argument("--frames", type=int, default=200, help="timed rounds of each per-frame case (default 200)")
    b.add_argument("--batch", type=int, default=16, help="streams per call of the throughput cases (default 16)")
    b.add_argument("--json", type=Path, help="also write the results as JSON (toonsync-bench/2)")
    b.add_argument("--compare", type=Path, metavar="OLD_JSON",
                   help="show speed-ups / regressions against an earlier --json file")
    b.add_argument("--plot", nargs="?", const="", metavar="PNG",
                   help="write latency distributions + cost vs clip length as a PNG "
                        "(default: the --json path with .png, else bench.png; needs matplotlib)")
    b.add_argument("--quick", action="store_true",
                   help="one round of the heavy cases (a smoke run: structure, not figures)")
    b.add_argument("--threads-sweep", action="store_true",
                   help="also explore onnxruntime thread settings (intra/inter-op threads, spinning, mode)")
    b.add_argument("--no-torch", action="store_true", help="skip the torch-eager baseline")
    b.add_argument("--streams", type=_stream_counts, default=(1, 4, 16, 64), metavar="N,N,...",
                   help="multi-stream cases: N live streams per 40 ms tick, model batched (step_many) vs one "
                        "call per stream (default 1,4,16,64; 0 = none)")
    b.add_argument("--stream", action="store_true",
                   help="benchmark live streaming only: the demo speech in real time, audio->frame latency")

    mo = sub.add_parser("motion", help="AUDIO -> per-frame landmarks/pose/blink/emotion/visemes (.json .npy .csv)")
    mo.add_argument("audio", help="speech, WAV or FLAC")
    mo.add_argument("-o", "--output", required=True, type=Path, help="motion.json (with Rhubarb-style mouth cues), .npy or .csv")
    mo.add_argument("--face", help="photo or .avatar whose neutral face the landmarks move (default: a mean face)")
    mo.add_argument("--seed", type=int, default=0)
    mo.add_argument("--emotion", default="auto", help="auto, a name, or a schedule")

    co = sub.add_parser("corpus", help="build the synthetic lip-sync corpus (flite + espeak-ng; festival held out) as "
                                       "HDF5, or check its phone timings against pocketsphinx (toonsync[train])")
    co.add_argument("action", choices=["build", "check"])
    co.add_argument("-o", "--out", type=Path, help="build: output .h5")
    co.add_argument("--corpus", type=Path, help="check: corpus .h5 whose engine timings to cross-check")
    co.add_argument("--sample", type=int, default=30, help="check: clips per engine (default 30)")
    co.add_argument("--json", type=Path, help="check: also write the agreement report as JSON")
    co.add_argument("--minutes", type=float, default=60.0)
    co.add_argument("--split", choices=["train", "test"], default="train",
                    help="train voices, or the held-out test voices (never trained on)")
    co.add_argument("--seed", type=int, default=0)

    ev = sub.add_parser("eval", help="held-out lip-sync metrics (--test corpus.h5), or `eval render`: image metrics, "
                                     "landmark drift, jitter of rendered video (JSON)")
    ev.add_argument("mode", nargs="?", choices=["lipsync", "render"], default="lipsync",
                    help="lipsync (default; needs --test) or render (docs/metrics.md)")
    ev.add_argument("--test", type=Path, help="lipsync: held-out corpus .h5 (toonsync corpus build --split test)")
    ev.add_argument("--checkpoint", type=Path, help="lipsync: a torch checkpoint instead of the shipped ONNX model")
    ev.add_argument("--precision", default="fp32", choices=["fp32", "int8", "fp16"])
    ev.add_argument("--record", action="store_true",
                    help="lipsync, shipped model: also write the figures into its sidecars (heldout_eval)")
    ev.add_argument("--out", type=Path, help="directory for eval.json / eval_render.json and plots "
                                             "(default runs/eval, runs/eval_render)")
    ev.add_argument("--face", help="render: photo or .avatar (default: the bundled demo photo)")
    ev.add_argument("--audio", help="render: speech WAV/FLAC (default: the bundled demo speech)")
    ev.add_argument("--renderer", default="procedural", choices=["procedural", "onnx"], help="render: which renderer")
    ev.add_argument("--size", type=int, default=256, help="render: frame size (default 256)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--lpips-weights", metavar="PATH",
                    help="render: LPIPS linear-layer weights; LPIPS is reported only with these and an importable "
                         "lpips (torch), else as unavailable with the reason")

    so = sub.add_parser("soak", help="stream synthetic speech for N minutes faster than real time; report RSS, frames, drops")
    so.add_argument("--minutes", type=float, default=30.0)
    so.add_argument("--draw", action="store_true", help="draw every frame too (slower; exercises the renderer)")
    so.add_argument("--json", type=Path, help="write the report as JSON")

    try:
        from .server import add_serve_parser
    except ImportError:  # the web extra is not installed
        add_serve_parser = None
    if add_serve_parser is not None:
        add_serve_parser(sub)

    sub.add_parser("doctor", help="versions, execution providers, model files and checksums, detectors")
    return p


def cmd_render(a: argparse.Namespace) -> int:
    from .pipeline import render
    from .sheet import contact_sheet

    res = render(a.face, a.audio, a.output, size=a.size, fps=a.fps, seed=a.seed, emotion=a.emotion, backend=a.backend,
                 precision=a.precision, background=a.background, renderer=a.renderer, landmarks=a.landmarks,
                 drawing=a.drawing)
    log.info("wrote %s: %d frames, %.2f s, %dx%d @ %d fps (%s) in %.1f s", res.output, res.frames, res.duration_s,
             res.size, res.size, res.fps, res.backend, res.timings_ms["total_ms"] / 1e3)
    if a.sheet:
        contact_sheet(res.output, a.sheet)
        log.info("wrote %s", a.sheet)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(a.out_dir, size=a.size, fps=a.fps, seed=a.seed, emotion=a.emotion, backend=a.backend,
             precision=a.precision)
    return 0


def cmd_stream(a: argparse.Namespace) -> int:
    from .live import Microphone, WindowSink, stream

    if a.mic is not None:
        mic = Microphone(None if a.mic == "default" else int(a.mic) if a.mic.isdigit() else a.mic)
    else:
        mic = a.wav
    sink = WindowSink() if a.window else (lambda f: None)

    def report(st):
        s = st.summary()
        log.info("%6.1f s  fps %5.1f  latency p50 %5.1f ms p99 %5.1f ms  dropped %d  underruns %d", s["audio_s"],
                 s["fps"], s["latency_p50_ms"], s["latency_p99_ms"], s["dropped"], s["underruns"])

    model = None
    if a.triton:
        from .triton_client import TritonAudioModel

        model = TritonAudioModel(a.triton)
    stats = stream(mic, a.face, sink=sink, backend=a.backend, precision=a.precision, size=a.size, seed=a.seed, emotion=a.emotion,
                   realtime=not a.fast, max_backlog=a.max_backlog, record=a.record, on_stats=report, model=model,
                   background=a.background, renderer=a.renderer)
    log.info("done: %s", json.dumps(stats.summary()))
    return 0


def cmd_sheet(a: argparse.Namespace) -> int:
    from .sheet import side_by_side

    if a.output.suffix.lower() != ".png":
        raise ToonsyncError(f"sheet output must be a .png, got {a.output.name}")
    side_by_side(a.face, a.output, a.audio, tile=a.tile)
    log.info("wrote %s", a.output)
    return 0


def cmd_prepare(a: argparse.Namespace) -> int:
    from .prepare import load_face

    if a.output.suffix != ".avatar":
        raise ToonsyncError(f"output must end in .avatar, got {a.output.name}")
    av = load_face(a.face, stylizer=a.stylizer, landmarks=a.landmarks, drawing=a.drawing)
    av.save(a.output)
    log.info("wrote %s (style %s)", a.output, av.style.to_dict())
    return 0


def cmd_preprocess(a: argparse.Namespace) -> int:
    from .preprocess import preprocess

    n = preprocess(a.inputs, a.output, a.frame_size or None)
    log.info("wrote %d clips to %s", n, a.output)
    return 0


def _heavy(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ToonsyncError(f"this command needs `pip install toonsync[{extra}]` ({e})") from None


def cmd_train(a: argparse.Namespace) -> int:
    return _heavy("training.cli", "train").train_cli(a)


def cmd_export(a: argparse.Namespace) -> int:
    if a.triton:  # needs onnx, not torch
        return _heavy("export.triton", "export").triton_cli(a)
    return _heavy("export.cli", "export").export_cli(a)


def cmd_calibrate(a: argparse.Namespace) -> int:
    return _heavy("calibration.cli", "export").calibrate_cli(a)


def _stream_counts(text: str) -> tuple[int, ...]:
    try:
        ns = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected stream counts like 1,4,16,64") from None
    if any(n < 0 for n in ns):
        raise argparse.ArgumentTypeError(f"{text!r}: stream counts must be positive")
    return tuple(n for n in ns if n > 0)


def cmd_bench(a: argparse.Namespace) -> int:
    from .bench import (
        compare_reports,
        plot_report,
        print_compare,
        print_report,
        print_stream_report,
        run_bench,
        run_stream_bench,
    )

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
        rep = run_bench(backend=a.backend, seconds=a.seconds, frames=a.frames, precisions=a.precision,
                        batch=a.batch, quick=a.quick, torch=not a.no_torch, sweep=a.threads_sweep, streams=a.streams,
                        command="toonsync bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else []))
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
        from .atomic import atomic_path

        with atomic_path(a.json) as tmp:
            tmp.write_text(json.dumps(rep, indent=1))
    return 0


def cmd_motion(a: argparse.Namespace) -> int:
    from .motion_io import animate, save_motion

    if a.output.suffix.lower() not in (".json", ".npy", ".csv"):
        raise ToonsyncError(f"motion output must be .json, .npy or .csv, got {a.output.name}")
    m = animate(a.audio, face=a.face, seed=a.seed, emotion=a.emotion)
    save_motion(m, a.output)
    log.info("wrote %s: %d frames at 25 fps", a.output, m.n_frames)
    return 0


def cmd_corpus(a: argparse.Namespace) -> int:
    if a.action == "check":
        if a.corpus is None:
            raise ToonsyncError("corpus check needs --corpus FILE.h5")
        _heavy("training.align_check", "train").check_cli(a.corpus, a.sample, a.json, a.seed)
        return 0
    if a.out is None:
        raise ToonsyncError("corpus build needs -o/--out FILE.h5")
    corpus = _heavy("training.corpus", "train")
    corpus.build(a.out, a.minutes, a.split, a.seed)
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    if a.mode == "render":
        from .eval_render import eval_render, format_table

        rep = eval_render(a.face, a.audio, a.out or Path("runs/eval_render"), renderer=a.renderer, size=a.size,
                          seed=a.seed, precision=a.precision, lpips_weights=a.lpips_weights)
        log.info("%s", format_table(rep))
        return 0 if rep["frames"]["ok"] and rep["privacy"].get("ok", True) else 1
    if a.test is None:
        raise ToonsyncError("eval needs --test corpus.h5 (lip-sync), or use `toonsync eval render`")
    a.out = a.out or Path("runs/eval")
    er = _heavy("training.eval_report", "train")
    rep = er.run_eval(a.test, a.out, a.checkpoint, a.precision)
    keys = ("clips", "r_target", "r_phoneme", "viseme_acc", "silence_closed", "silence_closed_frames", "onset_lag_ms",
            "drift_pct_iod")
    log.info("eval: %s", ", ".join(f"{k}={rep[k]}" for k in keys))
    log.info("wrote %s/eval.json and plots", a.out)
    if a.record:
        if a.checkpoint is not None:
            raise ToonsyncError("--record writes the shipped model's sidecars: drop --checkpoint")
        names = er.record_in_sidecars(rep, f"toonsync eval --test {a.test} --precision {a.precision}")
        log.info("recorded the figures in %s", ", ".join(f"{n}.onnx.json" for n in names))
    return 0


def cmd_soak(a: argparse.Namespace) -> int:
    from .soak import soak

    rep = soak(a.minutes, draw=a.draw).to_dict()
    log.info("soak: %s", json.dumps({k: v for k, v in rep.items() if k != "rss_mb"}))
    if a.json:
        from .atomic import atomic_path

        with atomic_path(a.json) as tmp:
            tmp.write_text(json.dumps(rep, indent=2))
    return 0 if rep["lost_samples"] == 0 else 1


def cmd_serve(a: argparse.Namespace) -> int:
    from .server import cmd_serve as serve

    return serve(a)


def cmd_doctor(a: argparse.Namespace) -> int:
    from .doctor import doctor

    ok = doctor()
    return 0 if ok else 1


COMMANDS = {"demo": cmd_demo, "render": cmd_render, "sheet": cmd_sheet, "stream": cmd_stream, "prepare": cmd_prepare, "preprocess": cmd_preprocess,
            "train": cmd_train, "export": cmd_export, "calibrate": cmd_calibrate, "bench": cmd_bench, "doctor": cmd_doctor,
            "motion": cmd_motion, "corpus": cmd_corpus, "eval": cmd_eval, "soak": cmd_soak, "serve": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    level = logging.DEBUG if a.debug else logging.ERROR if a.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s" if not a.debug else "%(levelname)s %(name)s: %(message)s")
    if not a.cmd:
        parser.print_help()
        return 2
    warnings.simplefilter("default")
    logging.captureWarnings(True)
    t0 = time.perf_counter()
    try:
        rc = COMMANDS[a.cmd](a)
    except ToonsyncError as e:
        if a.debug:
            raise
        print(f"toonsync {a.cmd}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"toonsync {a.cmd}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, permissions... : one line, not a traceback
        if a.debug:
            raise
        print(f"toonsync {a.cmd}: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    log.debug("%s took %.2f s", a.cmd, time.perf_counter() - t0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
