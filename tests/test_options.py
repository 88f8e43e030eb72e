"""RenderOptions: one frozen, validated options object shared by render, stream, serve and the CLI."""

import dataclasses

import numpy as np
import pytest

import toonsync
from toonsync.cli import build_parser
from toonsync.runtime.errors import InputError
from toonsync.runtime.options import RenderOptions


def test_frozen_with_defaults_and_replace():
    o = RenderOptions()
    assert (o.size, o.fps, o.seed, o.emotion, o.backend, o.precision, o.renderer) == (
        512,
        25,
        0,
        "auto",
        "auto",
        "auto",
        "auto",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.size = 128
    o2 = o.replace(size=128, emotion="happy")
    assert (o2.size, o2.emotion, o.size) == (128, "happy", 512)
    assert o2.emotion_override == "happy" and o.emotion_override is None
    assert RenderOptions(emotion=None).emotion == "auto" and RenderOptions(background="default").background is None


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"size": 255}, "even number of pixels in 64..2048"),
        ({"size": 4096}, "64..2048"),
        ({"size": "256"}, "size"),
        ({"fps": 0}, "fps must be an integer in 1..60"),
        ({"seed": 1.5}, "seed"),
        ({"backend": "tpu"}, "accepted: auto, cpu"),
        ({"precision": "int4"}, "accepted: auto, fp32, int8, fp16"),
        ({"renderer": "gan"}, "accepted: auto, procedural"),
        ({"emotion": "ecstatic"}, "happy"),
        ({"max_backlog": -1}, "max_backlog"),
        ({"colour": "red"}, "unknown option"),
    ],
)
def test_bad_values_are_one_typed_error(changes, match):
    with pytest.raises(InputError, match=match):
        RenderOptions().replace(**changes)


def test_cli_options_come_from_the_one_declaration():
    a = build_parser().parse_args(
        [
            "render",
            "f.jpg",
            "s.wav",
            "-o",
            "o.mp4",
            "--size",
            "128",
            "--emotion",
            "sad",
            "--precision",
            "fp32",
            "--background",
            "transparent",
        ]
    )
    o = RenderOptions.from_namespace(a)
    assert (o.size, o.emotion, o.precision, o.background, o.fps) == (128, "sad", "fp32", "transparent", 25)
    s = build_parser().parse_args(["stream", "--wav", "s.wav", "--face", "f.jpg", "--max-backlog", "5"])
    assert RenderOptions.from_namespace(s).max_backlog == 5 and not hasattr(s, "fps")  # live streams are 25 fps


def test_render_takes_options_whole_or_by_field(frontal_face, speech_wav, animator):
    opts = RenderOptions(size=128, seed=3, emotion="happy")
    a = toonsync.render(frontal_face, speech_wav, None, opts, animator=animator)
    b = toonsync.render(frontal_face, speech_wav, None, size=128, seed=3, emotion="happy", animator=animator)
    c = toonsync.render(frontal_face, speech_wav, None, opts, seed=4, animator=animator)
    assert a.size == b.size == 128
    np.testing.assert_array_equal(a.motion.pose, b.motion.pose)
    assert not np.array_equal(a.motion.pose, c.motion.pose)  # the override took effect
    with pytest.raises(InputError, match="RenderOptions"):
        toonsync.render(frontal_face, speech_wav, None, {"size": 128})


def test_stream_refuses_another_frame_rate(frontal_face, speech_wav):
    with pytest.raises(InputError, match="25 fps"):
        toonsync.stream(str(speech_wav), frontal_face, fps=30)
