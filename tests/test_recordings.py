"""Recordings of people to train and tune on (tools/recordings.py, tools/pinned.py) and how training mixes them in."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import numpy as np
import pytest

from toonsync.tools import pinned, recordings
from toonsync.training import align_check as ac
from toonsync.training.real_eval import real_clips


def test_manifest_is_consistent_and_apart_from_the_evaluation_clips():
    man = recordings.manifest()
    clips = man["clips"]
    ids = [c["id"] for c in clips]
    assert len(ids) == len(set(ids)) and all(c["split"] in recordings.SPLITS for c in clips)
    assert all(c["package"] in recordings.SOURCES and c["text"].strip() and c["licence"] for c in clips)
    assert {c["split"] for c in clips} == {"train", "val"}
    # nothing here is an evaluation clip: no sentence of the evaluation is among them
    evaluated = {tuple(ac.words_of(c.text)) for c in real_clips(system=False)}
    assert not evaluated & {tuple(ac.words_of(c["text"])) for c in clips}
    assert all(len(p.split()) >= 2 and p.isupper() for p in man["pronunciations"].values())


@pytest.mark.skipif(not ac.pocketsphinx_available(), reason=ac.MISSING_REASON)
def test_every_word_of_the_manifest_can_be_aligned():
    from pocketsphinx import Decoder

    d = Decoder(samprate=16000, lm=None, loglevel="FATAL")
    pron = recordings.pronunciations()
    lacking = set()
    for c in recordings.manifest()["clips"]:
        for w in ac.words_of(c["text"]):
            base = w[:-2] if w.endswith("'s") else w
            if d.lookup_word(w) is None and d.lookup_word(base) is None and w not in pron:
                lacking.add(w)
    assert not lacking, sorted(lacking)


def test_aligner_takes_pronunciations_for_missing_words(data_dir):
    if not ac.pocketsphinx_available():
        pytest.skip(ac.MISSING_REASON)
    import soundfile as sf

    audio, _ = sf.read(data_dir / "speech_short.wav", dtype="float32")
    text = "Please pass me the blue cup of warm milkk."  # a word the dictionary lacks
    with pytest.raises(ac.AlignmentError, match="milkk"):
        ac.Aligner().align(audio, text)
    phones = ac.Aligner(pronunciations={"milkk": "M IH L K"}).align(audio, text)
    assert [p.label for p in phones if p.label != "sil"][-4:] == ["m", "ih", "l", "k"]


def test_members_are_read_from_a_zip_inside_a_tarball(tmp_path):
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("assets/a.txt", b"inner")
    tar_path = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(tar_path, "w:gz") as t:
        for name, data in (("pkg-1.0/res/job.zip", zbuf.getvalue()), ("pkg-1.0/res/b.txt", b"outer")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    src = pinned.Source("pkg", "1.0", "xx/pkg-1.0.tar.gz", "0" * 64, "pkg-1.0/")
    got = pinned.read_members(tar_path, src, {"res/job.zip!assets/a.txt", "res/b.txt"}, recordings.RecordingsError)
    assert got == {"res/job.zip!assets/a.txt": b"inner", "res/b.txt": b"outer"}
    with pytest.raises(recordings.RecordingsError, match="has no pkg-1.0/res/job.zip!assets/c.txt"):
        pinned.read_members(tar_path, src, {"res/job.zip!assets/c.txt"}, recordings.RecordingsError)


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    """An ``ar`` archive (the container of a .deb) of ``members``."""
    out = b"!<arch>\n"
    for name, data in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data + b"\n" * (len(data) & 1)
    return out


def test_members_are_read_from_a_debian_package(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as t:
        info = tarfile.TarInfo("./usr/share/snd/a.g722")
        info.size = 5
        t.addfile(info, io.BytesIO(b"sound"))
    deb = tmp_path / "snd_1.0_all.deb"
    deb.write_bytes(_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", b"odd"), ("data.tar.xz", buf.getvalue())]))
    src = pinned.Source("snd", "1.0", "https://deb.example/pool/snd_1.0_all.deb", "0" * 64, "./usr/share/snd/")
    assert pinned.read_members(deb, src, {"a.g722"}, recordings.RecordingsError) == {"a.g722": b"sound"}
    deb.write_bytes(_ar([("debian-binary", b"2.0\n")]))
    with pytest.raises(recordings.RecordingsError, match="not a readable archive: no data.tar"):
        pinned.read_members(deb, src, {"a.g722"}, recordings.RecordingsError)
    good = _ar([("debian-binary", b"2.0\n")])
    for size in (b"-60      ", b"abc      ", b"999999   "):  # hostile or truncated headers: an error, never a hang
        deb.write_bytes(good[:56] + size.ljust(10) + good[66:])
        with pytest.raises(recordings.RecordingsError, match="bad ar member header at offset 8"):
            pinned.read_members(deb, src, {"a.g722"}, recordings.RecordingsError)


def test_raw_g722_decodes_to_16k():
    import av

    t = np.arange(16000) / 16000.0
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t) * 32767).astype(np.int16)
    buf = io.BytesIO()
    with av.open(buf, "w", format="g722") as c:
        st = c.add_stream("g722", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        frame.sample_rate = 16000
        for pkt in [*st.encode(frame), *st.encode(None)]:
            c.mux(pkt)
    got = recordings.decode(buf.getvalue(), "tone.g722")
    assert abs(got.size - 16000) < 400
    spec = np.abs(np.fft.rfft(got[2000:14000]))
    assert abs(np.argmax(spec) * 16000 / 12000 - 440.0) < 5.0  # the tone, at its pitch: read at 16 kHz


def test_decode_gives_16k_mono_from_mp3_and_a_typed_error_otherwise(data_dir):
    import soundfile as sf

    mp3 = recordings.decode((data_dir / "speech_short.mp3").read_bytes(), "speech_short.mp3")
    wav, sr = sf.read(data_dir / "speech_short.wav", dtype="float32")
    assert sr == 16000 and mp3.dtype == np.float32 and mp3.ndim == 1
    assert abs(mp3.size - wav.size) < 0.1 * 16000  # the same speech, give or take the codec's padding
    with pytest.raises(recordings.RecordingsError, match="cannot decode"):
        recordings.decode(b"not audio at all", "x.mp3")


def test_recordings_of_a_missing_folder_name_the_fetch_command(tmp_path):
    with pytest.raises(recordings.RecordingsError, match="tools.recordings fetch"):
        recordings.recordings("val", tmp_path)
    with pytest.raises(recordings.RecordingsError, match="accepted: train, val"):
        recordings.recordings("test", tmp_path)


def test_training_draws_the_recorded_share_of_crops_from_recordings():
    pytest.importorskip("torch", reason="training needs torch (toonsync[train])")
    from toonsync.runtime.mel import MELS_PER_FRAME
    from toonsync.training.motion_data import TrainClip, sample_batch
    from toonsync.training.train_motion import MotionTrainConfig

    def clip(level: float, n: int = 40) -> TrainClip:
        mel = np.full((n * MELS_PER_FRAME, 80), level, np.float32)
        zeros = np.zeros((n, 3), np.float32)
        return TrainClip(mel, zeros, np.ones(n, np.float32), False, np.zeros(n * 640, np.float32), np.zeros(n, bool))

    tts, rec = [clip(-1.0)], [clip(0.5)]
    base = dict(batch=200, crop_frames=20, warp=0.0, gain_db=0.0, freq_masks=0, time_masks=0, real_share=1.0)
    mels = sample_batch(tts, MotionTrainConfig(**base, recorded_share=0.3), 2, np.random.default_rng(0), rec)[0]
    from_rec = (mels[:, 0, 0].numpy() == 0.5).mean()
    assert 0.2 < from_rec < 0.4  # and recorded crops are never put through the recording chain again
    # without recordings (or with a share of 0) the batches and the generator's state are exactly as before
    cfg = MotionTrainConfig(**base)
    runs = [(np.random.default_rng(0), args) for args in ((), (rec,))]
    plain, zero = (sample_batch(tts, cfg, 2, g, *args) for g, args in runs)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(plain, zero))
    assert runs[0][0].bit_generator.state == runs[1][0].bit_generator.state


@pytest.mark.skipif(not ac.pocketsphinx_available(), reason=ac.MISSING_REASON)
def test_build_writes_an_aligned_clip_store(tmp_path, data_dir, monkeypatch):
    """``build`` on a one-clip manifest: the store holds the clip's audio, mel, phones and mouth targets."""
    import soundfile as sf

    from toonsync.training.dataset import ClipStore

    audio, _ = sf.read(data_dir / "speech_short.wav", dtype="float32")
    sf.write(tmp_path / "one.wav", audio, 16000)
    man = {"pronunciations": {}, "clips": [{"id": "one", "package": "aeneas", "member": "x", "licence": "test",
           "text": (data_dir / "speech_short.txt").read_text(), "speaker": "flite", "split": "train"}]}  # fmt: skip
    path = tmp_path / "recordings.json"
    path.write_text(json.dumps(man))
    monkeypatch.setattr(recordings, "MANIFEST", path)
    rep = recordings.build(tmp_path / "rec.h5", tmp_path)
    assert rep["clips"] == 1 and rep["skipped"] == []
    with ClipStore(tmp_path / "rec.h5") as store:
        c = store["one"]
        assert c.attrs["engine"] == "recorded" and c.mouth.shape == (audio.size // 640, 3)
        assert c.mel.shape[0] == 4 * c.mouth.shape[0] and c.mouth[:, 0].max() > 0.5 and len(c.phones) > 10
