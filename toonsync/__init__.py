"""toonsync: a face photo (or a drawn character) + speech -> an anime talking avatar, offline or live at 25 fps.

    import toonsync
    result = toonsync.render("face.jpg", "speech.wav", "out.mp4")
    stats = toonsync.stream(toonsync.Microphone(), "face.jpg", record="live.mp4")

The public API is loaded lazily: ``import toonsync`` costs only this module; the first use of a name imports the
runtime module behind it (numpy + onnxruntime, never torch). Subpackages: ``toonsync.runtime`` (what a deployed
app needs), ``toonsync.training`` (torch), ``toonsync.export`` and ``toonsync.calibration`` (ONNX export, INT8),
``toonsync.tools`` (benchmarks, load test, soak, render evaluation).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .runtime.errors import (
    AlphaUnsupported,
    DrawingFallbackWarning,
    ImageTooLarge,
    InputError,
    InputNotFound,
    InvalidAudio,
    InvalidBackground,
    InvalidLandmarks,
    ModelError,
    MultipleFacesWarning,
    NoFaceError,
    OutputError,
    SideProfileWarning,
    ToonsyncError,
    UnsupportedAudioFormat,
    UnsupportedImageFormat,
    UnsureLandmarksWarning,
)
from .runtime.version import __version__

if TYPE_CHECKING:  # the names below, for type checkers and IDEs (loaded lazily at run time)
    from .runtime.audio_io import load_audio
    from .runtime.backend import Backend, OrtBackend, load_model
    from .runtime.face import detect_face
    from .runtime.image_io import load_image
    from .runtime.live import Microphone, StreamStats, WavSource, WindowSink, stream
    from .runtime.mel import MelStream, log_mel
    from .runtime.model_card import ModelCard
    from .runtime.motion_io import animate, save_motion
    from .runtime.options import RenderOptions
    from .runtime.pipeline import Animator, BatchResult, Motion, RenderResult, render, render_batch
    from .runtime.prepare import Avatar, load_face
    from .runtime.streaming import AudioModel, Frame, Stream
    from .runtime.warp_renderer import WarpRenderer

# public name -> the runtime module that defines it
_LAZY = {
    "render": "pipeline",
    "render_batch": "pipeline",
    "BatchResult": "pipeline",
    "RenderResult": "pipeline",
    "Animator": "pipeline",
    "Motion": "pipeline",
    "RenderOptions": "options",
    "ModelCard": "model_card",
    "load_image": "image_io",
    "load_audio": "audio_io",
    "log_mel": "mel",
    "MelStream": "mel",
    "detect_face": "face",
    "Avatar": "prepare",
    "load_face": "prepare",
    "load_model": "backend",
    "Backend": "backend",
    "OrtBackend": "backend",
    "stream": "live",
    "Microphone": "live",
    "WavSource": "live",
    "WindowSink": "live",
    "StreamStats": "live",
    "Stream": "streaming",
    "Frame": "streaming",
    "AudioModel": "streaming",
    "WarpRenderer": "warp_renderer",
    "animate": "motion_io",
    "save_motion": "motion_io",
}
__all__ = [
    "Animator",
    "AudioModel",
    "Avatar",
    "Backend",
    "BatchResult",
    "Frame",
    "MelStream",
    "Microphone",
    "ModelCard",
    "Motion",
    "OrtBackend",
    "RenderOptions",
    "RenderResult",
    "Stream",
    "StreamStats",
    "WarpRenderer",
    "WavSource",
    "WindowSink",
    "animate",
    "detect_face",
    "load_audio",
    "load_face",
    "load_image",
    "load_model",
    "log_mel",
    "render",
    "render_batch",
    "save_motion",
    "stream",
    "ToonsyncError",
    "InputError",
    "InputNotFound",
    "UnsupportedImageFormat",
    "UnsupportedAudioFormat",
    "ImageTooLarge",
    "InvalidAudio",
    "NoFaceError",
    "InvalidLandmarks",
    "InvalidBackground",
    "AlphaUnsupported",
    "ModelError",
    "OutputError",
    "SideProfileWarning",
    "MultipleFacesWarning",
    "DrawingFallbackWarning",
    "UnsureLandmarksWarning",
    "__version__",
]
_SUBPACKAGES = ["runtime", "training", "export", "calibration", "tools"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".runtime.{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'toonsync' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))
