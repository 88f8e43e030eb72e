"""The runtime's ``toonsync`` sub-commands: demo, render, prepare, stream, motion, serve, doctor.

``register(sub)`` adds them to the command tree ``toonsync.cli`` assembles; each handler imports what it runs
only when it runs. Options shared with the library (size, emotion, backend, ...) are declared once, on
``RenderOptions``;
``import_extra`` is shared with the other packages' command modules.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from .atomic import check_folder_exists, check_not_input
from .errors import ToonsyncError
from .options import RenderOptions

log = logging.getLogger("toonsync")
# the rendering options render, say and (without fps) stream take on the command line
RENDER_KNOBS = (
    "size",
    "fps",
    "seed",
    "emotion",
    "backend",
    "precision",
    "renderer",
    "background",
    "mouth_gain",
    "head_motion",
    "style",
)


def import_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` or fail in one line naming the pip extra that provides its dependencies."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ToonsyncError(f"this command needs `pip install toonsync[{extra}]` ({e})") from None


DEFAULT_OUT_DIR = Path("toonsync-models")  # where export/calibrate write unless told otherwise


def add_output_options(p: argparse.ArgumentParser, what: str) -> None:
    """``-o/--out-dir DIR`` or ``--install``: where a command that writes models puts them."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "-o",
        "--out-dir",
        type=Path,
        metavar="DIR",
        help=f"where to write {what} (default: ./{DEFAULT_OUT_DIR}); use them with TOONSYNC_MODEL_DIR=DIR",
    )
    g.add_argument(
        "--install",
        action="store_true",
        help="write into the installed package's model directory (what every toonsync command loads)",
    )


def output_dir(a: argparse.Namespace) -> Path:
    """The directory chosen by :func:`add_output_options`' flags."""
    from .backend import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR if a.install else (a.out_dir or DEFAULT_OUT_DIR)


def add_drawing_options(p: argparse.ArgumentParser) -> None:
    """--landmarks --drawing."""
    p.add_argument(
        "--landmarks",
        type=Path,
        metavar="JSON",
        help="the face is a drawn character with these 68 [x, y] pixel points (iBUG 300-W order; a list "
        'or {"landmarks": [...]}); its own pixels are animated',
    )
    p.add_argument(
        "--drawing",
        action="store_true",
        help="the face is a drawn character (animated from its own pixels; photos are refused); without "
        "--landmarks its points are fitted by the landmark model for drawings (flat-colour drawings are "
        "recognised without this flag)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the runtime's sub-commands to ``sub``."""
    d = sub.add_parser("demo", help="render the bundled demo (photo + speech) to demo.mp4 and a contact sheet")
    d.add_argument("--out-dir", type=Path, default=Path("."), help="where demo.mp4 and demo_sheet.png go (default .)")
    RenderOptions.add_arguments(d, "size", "fps", "seed", "emotion", "backend", "precision")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("render", help="FACE + AUDIO -> anime talking-avatar MP4 (H.264 + AAC)")
    r.add_argument("face", help="face photo (PNG/JPEG/BMP/WebP) or a prepared .avatar bundle")
    r.add_argument(
        "audio",
        help="speech, WAV or FLAC (any rate, mono or stereo); - reads it from standard input; a folder renders "
        "each of its WAV/FLAC files (one model load) into the output folder",
    )
    r.add_argument(
        "-o",
        "--output",
        required=True,
        help="output .mp4 (H.264 + AAC); .webm (VP9 + alpha), .mov (qtrle + alpha) or a PNG-sequence "
        "directory (ending in / or .png-seq) keep a transparent background; written atomically. With a folder of "
        "audio: the folder the videos go to (NAME.mp4 per NAME.wav)",
    )
    r.add_argument(
        "--format", choices=["mp4", "webm", "mov"], help="with a folder of audio: the videos' container (default mp4)"
    )
    r.add_argument("--sheet", type=Path, help="also write a contact sheet PNG of the frames")
    add_drawing_options(r)
    RenderOptions.add_arguments(r, *RENDER_KNOBS)
    r.set_defaults(func=cmd_render)

    sy = sub.add_parser("say", help="TEXT -> the avatar speaking it (MP4), through an installed TTS engine")
    sy.add_argument("text", help="what to say; - reads the text from standard input")
    sy.add_argument("--face", help="face photo or .avatar bundle (default: the bundled demo face)")
    sy.add_argument("-o", "--output", required=True, help="output .mp4 (or .webm / .mov / PNG-sequence directory)")
    sy.add_argument(
        "--voice",
        choices=["auto", "festival", "flite", "espeak"],
        default="auto",
        help="TTS engine (default auto: Festival's HTS voice, else flite, else eSpeak NG; Debian packages "
        "festival festvox-us-slt-hts / flite / espeak-ng)",
    )
    add_drawing_options(sy)
    RenderOptions.add_arguments(sy, *RENDER_KNOBS)
    sy.set_defaults(func=cmd_say)

    pr = sub.add_parser("prepare", help="face photo -> reusable .avatar bundle (no photo pixels inside)")
    pr.add_argument("face", help="face photo (PNG/JPEG/BMP/WebP)")
    pr.add_argument("-o", "--output", required=True, type=Path, help="output .avatar file")
    pr.add_argument(
        "--stylizer",
        choices=["procedural", "learned"],
        default="procedural",
        help="procedural (default): the avatar is drawn from the photo's colours + landmarks; learned: "
        "also the pix2pix stylizer's comic of the face (needs weights trained on Face2Comics with "
        "`toonsync train stylizer`; none ship)",
    )
    add_drawing_options(pr)
    RenderOptions.add_arguments(pr, "style")
    pr.set_defaults(func=cmd_prepare)

    lm = sub.add_parser(
        "landmarks",
        help="drawing -> its face's 68 points (JSON for --landmarks, to correct by hand) + a numbered preview PNG",
    )
    lm.add_argument("drawing", help="a drawn character (PNG/JPEG/BMP/WebP)")
    lm.add_argument("-o", "--output", required=True, type=Path, help="output .json (68 [x, y] pixel points)")
    lm.add_argument("--preview", type=Path, help="preview PNG with the points drawn and numbered (default: OUTPUT.png)")
    lm.set_defaults(func=cmd_landmarks)

    s = sub.add_parser("stream", help="live: microphone (or a WAV played as if live) -> avatar at 25 fps")
    src = s.add_mutually_exclusive_group()
    src.add_argument(
        "--mic",
        nargs="?",
        const="default",
        metavar="DEVICE",
        help="record from a microphone (default device, or a name/index from `toonsync devices`)",
    )
    s.add_argument(
        "--mic-device",
        metavar="DEVICE",
        help="the microphone to record from: an index or (part of) a name from `toonsync devices`; implies --mic",
    )
    src.add_argument("--wav", help="stream a WAV/FLAC file as if it were live (- reads it from standard input)")
    s.add_argument("--face", required=True, help="face photo or .avatar bundle")
    s.add_argument(
        "--record",
        help="also record the frames + audio (.mp4; .webm/.mov/PNG-sequence directory keep alpha), finalised on Ctrl-C",
    )
    s.add_argument("--window", action="store_true", help="show an OpenCV window (needs a display + GUI OpenCV)")
    s.add_argument("--fast", action="store_true", help="with --wav: as fast as possible instead of real time")
    RenderOptions.add_arguments(s, *(k for k in RENDER_KNOBS if k != "fps"), "max_backlog")  # live: 25 fps
    s.add_argument(
        "--triton",
        metavar="URL",
        help="run the audio model on a Triton server instead (host:8000, grpc://host:8001, optional "
        "/MODEL; needs toonsync[triton]; docs/triton.md)",
    )
    s.set_defaults(func=cmd_stream)

    mo = sub.add_parser("motion", help="AUDIO -> per-frame landmarks/pose/blink/emotion/visemes (.json .npy .csv)")
    mo.add_argument("audio", help="speech, WAV or FLAC; - reads it from standard input")
    mo.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="motion.json (with Rhubarb-style mouth cues), .npy or .csv; with --format rhubarb/tsv/dat any name, "
        "or - for standard output",
    )
    mo.add_argument(
        "--format",
        choices=["toonsync", "rhubarb", "tsv", "dat"],
        default="toonsync",
        help="toonsync (by the suffix: .json .npy .csv), or Rhubarb Lip Sync's: rhubarb (its JSON), tsv, dat "
        "(Moho / OpenToonz switch data)",
    )
    mo.add_argument("--dat-fps", type=float, default=24.0, help="dat: frame rate of the frame numbers (24..100)")
    mo.add_argument(
        "--dat-preston-blair", action="store_true", help="dat: Preston Blair drawing names (MBP, etc, E, AI, ...)"
    )
    mo.add_argument("--face", help="photo or .avatar whose neutral face the landmarks move (default: a mean face)")
    RenderOptions.add_arguments(mo, "seed", "emotion", "mouth_gain", "head_motion")
    mo.set_defaults(func=cmd_motion)

    from .server import add_serve_parser  # argparse only; the web extra is needed when `serve` runs

    add_serve_parser(sub).set_defaults(func=cmd_serve)

    dv = sub.add_parser("devices", help="list the audio input devices (microphones) `stream --mic-device` can use")
    dv.add_argument("--json", action="store_true", help="print them as JSON")
    dv.set_defaults(func=cmd_devices)

    doc = sub.add_parser("doctor", help="versions, execution providers, model files, checksums and how well they score")
    doc.add_argument("--verbose", action="store_true", help="also every model card's raw training-run metrics")
    doc.set_defaults(func=cmd_doctor)


@contextlib.contextmanager
def audio_arg(arg: str | Path) -> Iterator[str | Path]:
    """A command's audio argument as a path: ``-`` is standard input, spooled to a temporary file."""
    if str(arg) != "-":
        yield arg
        return
    from .audio_io import spooled_stdin

    with spooled_stdin() as path:
        yield path


def cmd_render(a: argparse.Namespace) -> int:
    """``toonsync render``: one audio file (or ``-``), or a folder of them (a batch into a folder)."""
    from .pipeline import render
    from .sheet import contact_sheet

    if a.audio != "-" and Path(a.audio).is_dir():
        return _render_batch(a)
    if a.format is not None:
        raise ToonsyncError("--format is for a folder of audio files; a single output's suffix sets its format")
    check_not_input(a.sheet, a.face, a.audio, a.landmarks, a.output)
    if a.sheet:
        check_folder_exists(a.sheet)
    with audio_arg(a.audio) as audio:
        res = render(a.face, audio, a.output, RenderOptions.from_namespace(a), landmarks=a.landmarks, drawing=a.drawing)
    log.info(
        "wrote %s: %d frames, %.2f s, %dx%d @ %d fps (%s) in %.1f s",
        res.output,
        res.frames,
        res.duration_s,
        res.size,
        res.size,
        res.fps,
        res.backend,
        res.timings_ms["total_ms"] / 1e3,
    )
    if a.sheet:
        contact_sheet(res.output, a.sheet)
        log.info("wrote %s", a.sheet)
    return 0


def cmd_say(a: argparse.Namespace) -> int:
    """``toonsync say``: the text spoken by a TTS engine, then rendered like ``render``."""
    import sys

    from .assets import DEMO_FACE, asset
    from .pipeline import render
    from .tts import spoken

    text = sys.stdin.read(1 << 20) if a.text == "-" else a.text
    face = a.face or asset(DEMO_FACE)
    check_not_input(a.output, face, a.landmarks)
    with spoken(text, a.voice) as wav:
        res = render(face, wav, a.output, RenderOptions.from_namespace(a), landmarks=a.landmarks, drawing=a.drawing)
    log.info("wrote %s: %.2f s of speech, %d frames", res.output, res.duration_s, res.frames)
    return 0


def _render_batch(a: argparse.Namespace) -> int:
    """``toonsync render FACE DIR -o OUT_DIR``: every WAV/FLAC in DIR, one model load; exit 1 if any failed."""
    from .pipeline import render_batch

    if a.sheet:
        raise ToonsyncError("--sheet takes one video; render the files one by one for their contact sheets")
    t0 = time.perf_counter()
    b = render_batch(
        a.face,
        a.audio,
        a.output,
        RenderOptions.from_namespace(a),
        container=a.format or "mp4",
        landmarks=a.landmarks,
        drawing=a.drawing,
    )
    seconds = sum(r.duration_s for r in b.results.values())
    log.info(
        "wrote %d video(s) to %s: %.1f s of speech in %.1f s%s",
        len(b.results),
        a.output,
        seconds,
        time.perf_counter() - t0,
        f"; {len(b.failed)} file(s) failed: " + ", ".join(b.failed) if b.failed else "",
    )
    return 1 if b.failed else 0


def cmd_demo(a: argparse.Namespace) -> int:
    """``toonsync demo``."""
    from .demo import run_demo

    run_demo(a.out_dir, RenderOptions.from_namespace(a))
    return 0


def cmd_stream(a: argparse.Namespace) -> int:
    """``toonsync stream``."""
    if a.mic_device is not None:
        if a.wav is not None or a.mic not in (None, "default", a.mic_device):
            raise ToonsyncError("--mic-device picks the microphone; give it alone, or with a bare --mic")
        a.mic = a.mic_device
    if a.mic is None and a.wav is None:
        raise ToonsyncError("stream needs a source: --mic (or --mic-device DEVICE) or --wav FILE")
    if a.wav is not None:
        with audio_arg(a.wav) as wav:  # standard input is read to its end first, then played
            return _stream(a, Path(wav))
    return _stream(a, None)


def _stream(a: argparse.Namespace, wav: Path | None) -> int:
    from .live import Microphone, WindowSink, stream

    if a.mic is not None:
        mic = Microphone(None if a.mic == "default" else int(a.mic) if a.mic.isdigit() else a.mic)
    else:
        mic = wav
    sink = WindowSink() if a.window else (lambda f: None)

    def report(st):
        s = st.summary()
        log.info(
            "%6.1f s  fps %5.1f  latency p50 %5.1f ms p99 %5.1f ms  dropped %d  underruns %d",
            s["audio_s"],
            s["fps"],
            s["latency_p50_ms"],
            s["latency_p99_ms"],
            s["dropped"],
            s["underruns"],
        )

    model = None
    if a.triton:
        from .triton_client import TritonAudioModel

        model = TritonAudioModel(a.triton)
    run = stream(
        mic, a.face, RenderOptions.from_namespace(a), realtime=not a.fast, record=a.record, on_stats=report, model=model
    )
    try:
        for f in run:
            sink(f)
    except KeyboardInterrupt:  # Ctrl-C / SIGTERM: the end of a live session (a file cut short is an interruption)
        if a.mic is None:
            raise
    finally:
        run.close()  # finalises the recording
        if hasattr(sink, "close"):
            sink.close()
    if run.stats.recording is not None:
        log.info("recorded %s", run.stats.recording)
    log.info("done: %s", json.dumps(run.summary()))
    return 0


def cmd_prepare(a: argparse.Namespace) -> int:
    """``toonsync prepare``."""
    from .prepare import load_face

    if a.output.suffix != ".avatar":
        raise ToonsyncError(f"output must end in .avatar, got {a.output.name}")
    check_not_input(a.output, a.face, a.landmarks)
    check_folder_exists(a.output)
    av = load_face(a.face, stylizer=a.stylizer, landmarks=a.landmarks, drawing=a.drawing, style=a.style)
    av.save(a.output)
    side = " (a standard face shape: the photo is a side view)" if av.meta.get("fallback") else ""
    log.info("wrote %s: %s%s", a.output, av.style.describe(), side)
    return 0


def cmd_landmarks(a: argparse.Namespace) -> int:
    """``toonsync landmarks``."""
    import cv2

    from .anime_landmarks import check_drawing, fit_drawing_landmarks, preview
    from .atomic import atomic_path
    from .image_io import load_image

    if a.output.suffix.lower() != ".json":
        raise ToonsyncError(f"landmarks output must end in .json, got {a.output.name}")
    png = a.preview or a.output.with_name(a.output.stem + ".preview.png")
    if png.suffix.lower() != ".png":
        raise ToonsyncError(f"--preview must end in .png, got {png.name}")
    for out in (a.output, png):
        check_not_input(out, a.drawing)
        check_folder_exists(out)
    image = load_image(a.drawing)
    fit = fit_drawing_landmarks(image)
    check_drawing(image, fit.points)  # the preview holds the picture's pixels: never a photographed face's
    doc = {"source": Path(a.drawing).name, "image_size": [image.shape[1], image.shape[0]], **fit.to_dict()}
    ok, buf = cv2.imencode(".png", cv2.cvtColor(preview(image, fit.points), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ToonsyncError(f"the preview {png.name} could not be encoded")
    with atomic_path(png) as tmp:
        tmp.write_bytes(buf.tobytes())
    with atomic_path(a.output) as tmp:
        tmp.write_text(json.dumps(doc, indent=1))
    log.info("wrote %s (68 points, confidence %.2f) and %s", a.output, fit.confidence, png)
    return 0


def cmd_motion(a: argparse.Namespace) -> int:
    """``toonsync motion``."""
    from .audio_io import audio_seconds
    from .motion_io import animate, save_motion

    rhubarb = a.format != "toonsync"
    if not rhubarb and a.output.suffix.lower() not in (".json", ".npy", ".csv"):
        raise ToonsyncError(f"motion output must be .json, .npy or .csv, got {a.output.name}")
    if rhubarb and not 24 <= a.dat_fps <= 100:
        raise ToonsyncError(f"--dat-fps must be 24..100, got {a.dat_fps:g}")
    if str(a.output) != "-":
        check_not_input(a.output, a.audio, a.face)
        check_folder_exists(a.output)
    elif not rhubarb:
        raise ToonsyncError("-o - (standard output) needs --format rhubarb, tsv or dat")
    with audio_arg(a.audio) as audio:
        m = animate(
            audio, face=a.face, seed=a.seed, emotion=a.emotion, mouth_gain=a.mouth_gain, head_motion=a.head_motion
        )
        duration = audio_seconds(audio)
    if rhubarb:
        from .lipsync_formats import write_lipsync

        write_lipsync(
            m.visemes,
            a.output,
            a.format,
            sound_file=str(a.audio),
            duration=duration,
            dat_fps=a.dat_fps,
            preston_blair=a.dat_preston_blair,
        )
    else:
        save_motion(m, a.output)
    if str(a.output) != "-":
        log.info("wrote %s: %d frames at 25 fps", a.output, m.n_frames)
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    """``toonsync serve``."""
    from .server import cmd_serve as serve

    return serve(a)


def cmd_devices(a: argparse.Namespace) -> int:
    """``toonsync devices``: the input devices, the default marked; exit 1 when there are none."""
    from dataclasses import asdict

    from .live import list_input_devices

    devices = list_input_devices()
    if a.json:
        print(json.dumps([asdict(d) for d in devices], indent=2))
    elif devices:
        print(f"{'':2}{'index':>5}  {'name':<40} {'host API':<12} {'channels':>8} {'rate':>7}")
        for d in devices:
            mark = "*" if d.is_default else ""
            print(f"{mark:2}{d.index:>5}  {d.name:<40} {d.host_api:<12} {d.channels:>8} {d.default_sample_rate:>7.0f}")
        print("* the default; pick another with `toonsync stream --mic-device INDEX|NAME --face ...`")
    else:
        log.error("no audio input devices found: plug in a microphone (or check that PulseAudio/PipeWire runs)")
    return 0 if devices else 1


def cmd_doctor(a: argparse.Namespace) -> int:
    """``toonsync doctor``."""
    from .doctor import doctor

    return 0 if doctor(verbose=a.verbose) else 1
