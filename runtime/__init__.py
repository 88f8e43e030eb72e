"""toonsync runtime: face photo + speech -> anime talking avatar (numpy + onnxruntime; never torch).

    import runtime
    result = runtime.render("face.jpg", "speech.wav", "out.mp4")
"""
from __future__ import annotations

import importlib

from .errors import (ImageTooLarge, InputError, InputNotFound, InvalidAudio, InvalidLandmarks, ModelError,
                     MultipleFacesWarning, OutputError, NoFaceError, SideProfileWarning, ToonsyncError,
                     UnsupportedAudioFormat, UnsupportedImageFormat)

__version__ = "0.1.0"

_LAZY = {
    "render": "pipeline", "RenderResult": "pipeline", "Animator": "pipeline", "Motion": "pipeline",
    "load_image": "image_io", "load_audio": "audio_io", "log_mel": "mel", "MelStream": "mel",
    "detect_face": "face", "Avatar": "prepare", "load_face": "prepare", "load_model": "backend",
    "Backend": "backend", "stream": "live", "Microphone": "live", "WavSource": "live", "WindowSink": "live",
    "StreamStats": "live", "WarpRenderer": "warp_renderer", "animate": "motion_io", "save_motion": "motion_io", "Stream": "streaming", "Frame": "streaming", "AudioModel": "streaming", "OrtBackend": "backend", "ClipStore": "dataset", "write_clips": "dataset",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")


__all__ = sorted(_LAZY) + ["ToonsyncError", "InputError", "InputNotFound", "UnsupportedImageFormat",
                           "UnsupportedAudioFormat", "ImageTooLarge", "InvalidAudio", "NoFaceError", "InvalidLandmarks", "ModelError", "OutputError",
                           "SideProfileWarning", "MultipleFacesWarning"]
