"""``toonsync`` command line: one tree of sub-commands, each registered by the package that owns it.

Run ``toonsync --help`` or ``toonsync COMMAND --help``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import warnings

from .calibration import commands as calibration_commands
from .export import commands as export_commands
from .runtime import commands as runtime_commands
from .runtime.atomic import catch_interrupts, interrupted
from .runtime.errors import ToonsyncError
from .runtime.progress import enabled as progress_enabled
from .runtime.progress import set_enabled
from .runtime.version import __version__
from .tools import commands as tool_commands
from .training import commands as training_commands

log = logging.getLogger("toonsync")

EPILOG = """examples:
  toonsync demo                                   # bundled photo + speech -> demo.mp4 + demo_sheet.png
  toonsync render face.jpg speech.wav -o out.mp4  # your photo, your speech
  toonsync render face.avatar speech.flac -o out.mp4 --emotion happy --seed 3
  toonsync prepare face.jpg -o face.avatar        # prepare once, render/stream many times
  toonsync render drawing.png speech.wav --landmarks drawing.json -o out.mp4  # a drawn character
  toonsync stream --mic --face face.avatar --record live.mp4     # live microphone, 25 fps
  toonsync stream --wav speech.wav --face face.jpg --record o.mp4 # a file played as if live
  toonsync serve                                  # kiosk web page: the browser's microphone drives the avatar
  toonsync motion speech.wav -o motion.json       # landmarks/pose/blink/visemes for animators
  toonsync preprocess clip.mp4 -o clips.h5        # frames + 68 landmarks + log-mel -> HDF5 (toonsync[train])
  toonsync corpus build -o corpus/test.h5 --split test --minutes 8
  toonsync corpus check --corpus corpus/test.h5 --json runs/align_check.json  # engine timings vs pocketsphinx
  toonsync eval --test corpus/test.h5             # held-out lip-sync metrics + plots
  toonsync eval render --out runs/eval_render     # MSE/PSNR/SSIM, landmark drift, jitter of rendered video
  toonsync sheet face.jpg -o side_by_side.png     # photo | avatar | mouth shapes, blink, emotion, head turn
  toonsync soak --minutes 30                      # memory / lost-sample soak of the streaming runtime
  toonsync train motion --minutes 120             # build the TTS corpus, train speech model + motion decoder
  toonsync train stylizer --data face2comics/     # pix2pix face -> comic stylizer (docs/learned_models.md)
  toonsync export --out-dir models/               # checkpoints -> ONNX + model cards
  toonsync calibrate --model-dir models/          # INT8 from the bundled calibration speech + a report
  toonsync bench                                  # latency per stage (p50/p99) and real-time factor
  toonsync doctor                                 # versions, providers, model files and checksums
"""

# the packages whose register(sub) adds sub-commands, in the order --help lists them
PACKAGES = (runtime_commands, training_commands, export_commands, calibration_commands, tool_commands)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    p = argparse.ArgumentParser(
        prog="toonsync",
        description="Anime talking avatars from a face photo and speech.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"toonsync {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    for package in PACKAGES:
        package.register(sub)
    for command in sub.choices.values():  # the global flags also after the command: `toonsync render ... -q`
        for flags in (("--debug",), ("-q", "--quiet")):
            try:
                command.add_argument(*flags, action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            except argparse.ArgumentError:  # the command has a flag of that name itself
                pass
    return p


def _export_trained(a: argparse.Namespace) -> None:
    """``toonsync train MODEL --export DIR``: the trainer (training layer) leaves its checkpoint in ``a.trained``;
    the exporter (export layer, which may import training) turns it into ONNX + card. Joined here, above both."""
    trained, out = getattr(a, "trained", None), getattr(a, "export", None)
    if trained is not None and out is not None:
        from toonsync.export.learned import export_trained

        export_trained(trained[0], trained[1], out)
        log.info("exported %s to %s", trained[0], out)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's), run the command, return its exit status.

    Errors toonsync raises on purpose, and OS errors (disk full, permissions), end in one line on stderr;
    ``--debug`` shows the traceback instead.
    """
    parser = build_parser()
    a = parser.parse_args(argv)
    level = logging.DEBUG if a.debug else logging.ERROR if a.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s" if not a.debug else "%(levelname)s %(name)s: %(message)s")
    if not a.cmd:
        parser.print_help()
        return 2
    warnings.simplefilter("default")
    shown = warnings.showwarning
    warnings.showwarning = lambda message, category, *rest, **kw: (  # one line, no source path; none with -q
        None if a.quiet else print(f"toonsync {a.cmd}: warning: {message}", file=sys.stderr)
    )
    t0 = time.perf_counter()
    bars = progress_enabled()
    set_enabled(bars and not a.quiet)  # progress bars: only on a terminal, and never with -q
    try:
        with catch_interrupts():  # Ctrl-C and SIGTERM: outputs are removed, never left half-written
            rc = a.func(a)
            if rc == 0:
                _export_trained(a)
    except ToonsyncError as e:
        if a.debug:
            raise
        print(f"toonsync {a.cmd}: error: {e.for_cli()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"toonsync {a.cmd}: interrupted", file=sys.stderr)
        return 128 + (interrupted() or signal.SIGINT)
    except OSError as e:  # disk full, permissions... : one line, not a traceback
        if a.debug:
            raise
        print(f"toonsync {a.cmd}: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    finally:
        set_enabled(bars)
        warnings.showwarning = shown
    log.debug("%s took %.2f s", a.cmd, time.perf_counter() - t0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
