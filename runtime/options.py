"""``RenderOptions``: how an avatar is rendered and streamed, one frozen object for every entry point.

``toonsync.render``, ``toonsync.stream``, the kiosk server and the command line all take the same options,
declared once here (type, default, accepted values, help text). They can be passed whole or field by field::

    opts = RenderOptions(size=512, emotion="happy", precision="fp32")
    toonsync.render("face.jpg", "speech.wav", "out.mp4", opts)
    toonsync.render("face.jpg", "speech.wav", "out.mp4", opts, seed=3)   # a field overridden
    toonsync.stream("speech.wav", "face.jpg", size=128)                  # fields alone

Bad values raise ``InputError`` naming what is accepted when the object is made, before any work.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from .background import BackgroundLike
from .errors import InputError
from .mouth import MOUTH_GAIN, MOUTH_GAIN_RANGE

BackendName = Literal["auto", "cpu", "cuda", "tensorrt"]
PrecisionName = Literal["auto", "fp32", "int8", "fp16"]
RendererName = Literal["auto", "procedural", "onnx"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
PRECISIONS: tuple[str, ...] = get_args(PrecisionName)
RENDERERS: tuple[str, ...] = get_args(RendererName)
MIN_SIZE, MAX_SIZE = 64, 2048
MIN_FPS, MAX_FPS = 1, 60
MODEL_FPS = 25  # the models' frame rate; live streams run at it
HEAD_MOTION_MAX = 2.0


def _opt(default: Any, help: str, flag: str | None = None, metavar: str | None = None, choices: tuple | None = None):
    return field(default=default, metadata={"help": help, "flag": flag, "metavar": metavar, "choices": choices})


@dataclass(frozen=True)
class RenderOptions:
    """The options of an offline render or a live stream (immutable; ``replace`` makes a changed copy)."""

    size: int = _opt(512, "output width = height in pixels (even, 64..2048; default 512)")
    fps: int = _opt(25, "output frame rate (1..60; the models run at 25, live streams always do; default 25)")
    seed: int = _opt(0, "seed of head motion and blinks (default 0)")
    emotion: str = _opt(
        "auto",
        "expression: auto (estimated from the speech's prosody, default), a name (angry, "
        "disgusted, fearful, happy, neutral, sad) or a schedule like "
        "'0:neutral,2.5:happy,6:sad'",
    )
    backend: BackendName = _opt("auto", "inference backend (default auto: the fastest available)", choices=BACKENDS)
    precision: PrecisionName = _opt(
        "auto",
        "model precision (default auto: INT8 where calibration kept it inside its accuracy budget)",
        choices=PRECISIONS,
    )
    renderer: RendererName = _opt(
        "auto",
        "procedural: draw the anime face from scratch each frame; onnx: warp the "
        "avatar's image with the render.onnx engine (docs/renderer.md); auto "
        "(default): procedural for photos, onnx for drawn characters",
        choices=RENDERERS,
    )
    background: BackgroundLike = _opt(
        None,
        "behind the avatar: default (its own pastel), a colour (#rrggbb, #rgb "
        "or a name: white, black, gray, green, blue, ...), an image file "
        "(cover-cropped), or transparent (RGBA; needs .webm, .mov or a "
        "PNG-sequence output)",
        metavar="COLOR|IMAGE|transparent",
    )
    style: str | None = _opt(
        None,
        "change the avatar's estimated attributes: key=value pairs (hair=long_wavy,glasses=none,"
        "hair_colour=#6b3b2a,facial_hair=beard,...) or a JSON file of them (docs/avatars.md)",
        metavar="KEY=VALUE,...|FILE.json",
    )
    max_backlog: int = _opt(2, "live: frames allowed to queue before the oldest are dropped (default 2)")
    mouth_gain: float = _opt(
        MOUTH_GAIN,
        f"how wide the drawn mouth opens for the speech: 1 = the model's opening as it is, {MOUTH_GAIN:g} "
        f"(default) = anime-scale, up to {MOUTH_GAIN_RANGE[1]:g}; closures stay closed",
    )
    head_motion: float = _opt(
        1.0,
        f"head motion: 0 = perfectly still, 1 = nods and turns with the speech (default), up to {HEAD_MOTION_MAX:g}",
    )

    def __post_init__(self) -> None:
        if self.emotion is None:  # None and "auto" mean the same
            object.__setattr__(self, "emotion", "auto")
        if self.background == "default":
            object.__setattr__(self, "background", None)
        if not _is_int(self.size) or not MIN_SIZE <= self.size <= MAX_SIZE or self.size % 2:
            raise InputError(f"size must be an even number of pixels in {MIN_SIZE}..{MAX_SIZE}, got {self.size!r}")
        _check_int("fps", self.fps, MIN_FPS, MAX_FPS)
        _check_int("seed", self.seed, -(2**63), 2**63 - 1)
        _check_int("max_backlog", self.max_backlog, 0, 10_000)
        gain, head = check_expression(self.mouth_gain, self.head_motion)
        object.__setattr__(self, "mouth_gain", gain)
        object.__setattr__(self, "head_motion", head)
        for name, accepted in (("backend", BACKENDS), ("precision", PRECISIONS), ("renderer", RENDERERS)):
            if getattr(self, name) not in accepted:
                raise InputError(f"unknown {name} {getattr(self, name)!r}; accepted: {', '.join(accepted)}")
        if self.style is not None:
            from .avatar_attributes import parse_overrides

            parse_overrides(self.style)  # raises InputError naming the accepted keys
        if not isinstance(self.emotion, str):
            raise InputError(
                f"emotion must be a string (auto, a name or a schedule), got {type(self.emotion).__name__}"
            )
        if self.emotion != "auto":
            from .emotion import emotion_schedule

            emotion_schedule(self.emotion, 1)  # raises InputError naming the accepted names

    @property
    def emotion_override(self) -> str | None:
        """The emotion as the motion code takes it: None for auto (from the speech), else the name/schedule."""
        return None if self.emotion == "auto" else self.emotion

    def replace(self, **changes: Any) -> RenderOptions:
        """A copy with ``changes`` applied (validated); unknown names raise ``InputError``."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InputError(
                f"unknown option(s) {', '.join(sorted(unknown))}; accepted: "
                f"{', '.join(f.name for f in dataclasses.fields(self))}"
            )
        return dataclasses.replace(self, **changes) if changes else self

    @classmethod
    def from_namespace(cls, args: argparse.Namespace, **changes: Any) -> RenderOptions:
        """The options among parsed command-line ``args`` (those ``add_arguments`` added), plus ``changes``."""
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        return cls(**{**given, **changes})

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *names: str, **defaults: Any) -> None:
        """Add ``--NAME`` options for the fields ``names`` (all when none are given) to ``parser``, with their
        help, accepted values and defaults (``defaults`` overrides a default, e.g. for a server)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in names or tuple(fields):
            f = fields[name]
            meta = f.metadata
            default = defaults.get(name, "default" if name == "background" else f.default)
            kwargs: dict[str, Any] = {"default": default, "help": meta["help"]}
            if meta["choices"]:
                kwargs["choices"] = list(meta["choices"])
            elif isinstance(f.default, int):
                kwargs["type"] = int
            elif isinstance(f.default, float):
                kwargs["type"] = float
            if meta["metavar"]:
                kwargs["metavar"] = meta["metavar"]
            parser.add_argument(meta["flag"] or "--" + name.replace("_", "-"), dest=name, **kwargs)


def check_expression(mouth_gain: Any, head_motion: Any) -> tuple[float, float]:
    """``mouth_gain`` and ``head_motion`` as floats, or ``InputError`` naming their ranges."""
    out = []
    for name, value, hi in (
        ("mouth_gain", mouth_gain, MOUTH_GAIN_RANGE[1]),
        ("head_motion", head_motion, HEAD_MOTION_MAX),
    ):
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not ok or not 0.0 <= float(value) <= hi:
            raise InputError(f"{name} must be a number in 0..{hi:g}, got {value!r}")
        out.append(float(value))
    return out[0], out[1]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if not _is_int(value) or not lo <= value <= hi:
        raise InputError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")


def resolve_options(options: RenderOptions | None, changes: dict[str, Any]) -> RenderOptions:
    """``options`` (default ``RenderOptions()``) with the keyword ``changes`` a caller gave alongside it."""
    base = options if options is not None else RenderOptions()
    if not isinstance(base, RenderOptions):
        raise InputError(f"options must be a RenderOptions, got {type(base).__name__}")
    return base.replace(**changes)
