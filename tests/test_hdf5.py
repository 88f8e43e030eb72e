"""HDF5 clip store round trip and video preprocessing (frames -> per-frame 68 landmarks)."""

from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest

from toonsync.runtime.errors import InputError
from toonsync.runtime.mel import log_mel
from toonsync.runtime.video import write_mp4
from toonsync.training.dataset import Clip, ClipStore, phones_array, write_clips


def test_round_trip_every_field(tmp_path):
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, 16000).astype(np.float32)
    clip = Clip(
        "c1",
        audio=audio,
        frames=rng.integers(0, 255, (25, 32, 32, 3), dtype=np.uint8),
        landmarks=rng.random((25, 68, 2), dtype=np.float32),
        pose=rng.random((25, 3), dtype=np.float32),
        mouth=rng.random((25, 3), dtype=np.float32),
        phones=phones_array([("hh", 0.0, 0.1), ("aa", 0.1, 0.5)]),
        attrs={"text": "hi", "voice": "slt", "split": "train"},
    )
    write_clips(tmp_path / "c.h5", [clip, Clip("c2", audio=audio[:800])])
    with ClipStore(tmp_path / "c.h5") as s:
        assert len(s) == 2 and s.ids("train") == ["c1"]
        got = s["c1"]
        for name in ("audio", "frames", "landmarks", "pose", "mouth"):
            np.testing.assert_array_equal(getattr(got, name), getattr(clip, name))
        np.testing.assert_array_equal(got.mel, log_mel(audio))  # mel computed on write
        assert got.phones["label"].tolist() == [b"hh", b"aa"]
        assert got.attrs["text"] == "hi" and got.n_frames == 25
        assert s["c2"].frames is None and s["c2"].mel.shape == (5, 80)


def test_not_a_clip_store_is_a_typed_error(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="not a toonsync clip store"):
        ClipStore(tmp_path / "other.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable HDF5"):
        ClipStore(tmp_path / "junk.h5")


def test_video_preprocessing_tracks_the_face(tmp_path, frontal_face, speech_wav):
    """A real photo panned across 10 frames -> the landmarks follow the pan; audio track -> mel."""
    from toonsync.runtime.audio_io import load_audio
    from toonsync.training.preprocess import preprocess

    photo = cv2.cvtColor(cv2.imread(str(frontal_face)), cv2.COLOR_BGR2RGB)
    frames = [np.roll(photo, 4 * i, axis=1) for i in range(10)]
    audio = load_audio(speech_wav)[: 16000 * 10 // 25]
    write_mp4(tmp_path / "pan.mp4", frames, audio)
    n = preprocess([tmp_path / "pan.mp4"], tmp_path / "pan.h5", frame_size=None)
    assert n == 1
    with ClipStore(tmp_path / "pan.h5") as s:
        c = s["pan"]
    assert c.frames.shape == (10, *photo.shape)
    assert np.isfinite(c.landmarks).all()
    dx = np.diff(c.landmarks[:, :, 0].mean(1) * photo.shape[1])
    np.testing.assert_allclose(dx, 4.0, atol=1.5)  # the face moves 4 px per frame
    assert c.mel is not None and c.mel.shape[1] == 80 and abs(c.mel.shape[0] - 40) <= 4


def test_preprocess_pairs_a_video_with_its_audio_file(tmp_path, frontal_face, speech_wav):
    """A silent video + a WAV -> one clip with that WAV as its audio; same-stem files pair among several;
    an audio file with no video of its name among several videos is refused, naming it."""
    from toonsync.runtime.audio_io import load_audio
    from toonsync.training.preprocess import pair_inputs, preprocess

    photo = cv2.cvtColor(cv2.imread(str(frontal_face)), cv2.COLOR_BGR2RGB)
    write_mp4(tmp_path / "silent.mp4", [photo] * 10, None)
    assert preprocess([tmp_path / "silent.mp4", speech_wav], tmp_path / "p.h5", frame_size=64) == 1
    with ClipStore(tmp_path / "p.h5") as s:
        assert s.ids() == ["silent"]
        c = s["silent"]
    np.testing.assert_allclose(c.audio, load_audio(speech_wav), atol=1e-6)
    assert c.attrs["audio_source"] == speech_wav.name and c.frames.shape[0] == 10

    a, b, wa = tmp_path / "a.mp4", tmp_path / "b.mov", tmp_path / "a.wav"
    assert pair_inputs([a, b, wa]) == [(a, wa), (b, None)]
    assert pair_inputs([wa, tmp_path / "x.flac"]) == [(wa, None), (tmp_path / "x.flac", None)]
    with pytest.raises(InputError, match=r"no video of the same name: .*x\.flac"):
        pair_inputs([a, b, tmp_path / "x.flac"])
    with pytest.raises(InputError, match=r"cannot preprocess \.mp3"):
        pair_inputs([a, tmp_path / "s.mp3"])
