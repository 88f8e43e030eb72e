"""Typed errors raised at the product boundary.

Every error says what was wrong *and* what is accepted, so a user never has to
read a traceback from numpy, OpenCV or onnxruntime.
"""

from __future__ import annotations

from pathlib import Path


class ToonsyncError(Exception):
    """Base class of every error toonsync raises on purpose.

    ``str(e)`` is the message for Python callers. Where the fix reads differently on another surface, the error
    carries that surface's wording too: ``cli`` (names command-line flags; the ``toonsync`` command prints it)
    and ``kiosk`` (for a visitor at the kiosk page: no flags, no paths). ``for_cli()`` / ``for_kiosk()`` pick the
    right one, with a plain default per kind of error for the kiosk."""

    kiosk_default: str | None = None  # what a kiosk visitor reads for this kind of error, when not given

    def __init__(self, message: str = "", *args: object, cli: str | None = None, kiosk: str | None = None):
        super().__init__(message, *args)
        self.cli_message, self.kiosk_message = cli, kiosk

    def for_cli(self) -> str:
        """The message in command-line terms."""
        return self.cli_message or str(self)

    def for_kiosk(self) -> str:
        """The message for a kiosk visitor."""
        return self.kiosk_message or self.kiosk_default or str(self)


class InputError(ToonsyncError, ValueError):
    """Bad user input (file, array or argument)."""


class InputNotFound(ToonsyncError, FileNotFoundError):
    """An input path does not exist."""


class UnsupportedImageFormat(InputError):
    """The image is not one of the accepted formats (or cannot be decoded)."""

    kiosk_default = "This file is not a photo that can be read here. Please use a JPEG, PNG, BMP or WebP photo."


class UnsupportedAudioFormat(InputError):
    """The audio is not one of the accepted formats (or cannot be decoded)."""


class ImageTooLarge(InputError):
    """The image exceeds the pixel cap; refused before decoding."""

    kiosk_default = "This photo is too large. Please use a smaller photo (a phone or webcam picture works well)."


class InvalidAudio(InputError):
    """Audio decoded but its content is unusable (empty, NaN/inf...)."""


class NoFaceError(InputError):
    """No face was found in the image."""

    kiosk_default = (
        "No face was found in this photo. Please use a photo of one person looking at the camera, in good light."
    )


class PhotoNotDrawing(InputError):
    """A photograph was given where a drawing is animated from its own pixels (no real face's pixels may)."""

    kiosk_default = "This looks like a photo of a person. Please use the photo button: photos become an anime avatar."


class InvalidLandmarks(InputError):
    """A landmarks file/array for a drawn character is not 68 finite [x, y] points inside the image."""


class OutputError(InputError):
    """The output path cannot be written (read-only place, a directory, no space)."""


class InvalidBackground(InputError):
    """A background spec that is neither a colour, an image nor ``transparent`` (see runtime.background)."""


class AlphaUnsupported(InputError):
    """A transparent background was asked for an output that cannot store alpha (MP4 / H.264)."""


def check_input_file(path: Path, what: str, error: type[InputError], accepted: str) -> Path:
    """``path`` if it is a non-empty regular file; else ``InputNotFound`` or ``error`` naming ``accepted``.
    FIFOs, devices and sockets are refused without being read (reading them could block forever)."""
    if not path.exists():
        raise InputNotFound(f"{what} not found: {path}")
    if path.is_dir():
        raise error(f"{path} is a directory; {accepted}")
    if not path.is_file():
        raise error(f"{path} is not a regular file; {accepted}")
    if path.stat().st_size == 0:
        raise error(f"{path} is empty (0 bytes); {accepted}")
    return path


class ModelError(ToonsyncError, RuntimeError):
    """A model file is missing, corrupt or does not match its model card."""


class SideProfileWarning(UserWarning):
    """The face is turned away (profile view); a frontal fallback avatar is used."""


class DrawingFallbackWarning(UserWarning):
    """The picture was taken for a drawing (flat colours, a drawn face found): it is animated as a drawing."""


class UnsureLandmarksWarning(UserWarning):
    """The points fitted to a drawn face may be off (low confidence)."""


class MultipleFacesWarning(UserWarning):
    """More than one face was found; the largest one is used."""
