"""Training toward real recordings: the recording chain (rooms, microphones, codecs, noise), lip contacts held in
the targets, and their weight in the loss."""

from __future__ import annotations

import numpy as np
import pytest

from toonsync.training.visemes import Phone, mouth_trajectory

recording = pytest.importorskip("toonsync.training.recording", reason="needs scipy (toonsync[train])")


def _speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Voiced bursts (a 150 Hz pulse train through two formants) with pauses between them."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    x = np.zeros(n, np.float32)
    x[:: 16000 // 150] = 1.0
    for f in (700, 1200):
        b, a = signal.iirpeak(f, 8, fs=16000)
        x = signal.lfilter(b, a, x).astype(np.float32)
    env = (np.sin(2 * np.pi * 2.5 * np.arange(n) / 16000) > 0).astype(np.float32)
    return (0.3 * x / np.abs(x).max() * env + 1e-4 * rng.standard_normal(n)).astype(np.float32)


def test_degrade_is_seeded_bounded_and_changes_the_sound():
    a = _speech_like()
    outs = [recording.degrade(a, np.random.default_rng(k)) for k in range(12)]
    for y in outs:
        assert y.shape == a.shape and y.dtype == np.float32 and np.isfinite(y).all()
        assert 10 ** (-30 / 20) * 0.99 <= np.abs(y).max() <= 10 ** (-1 / 20) * 1.01
    np.testing.assert_array_equal(outs[0], recording.degrade(a, np.random.default_rng(0)))
    spectra = [np.abs(np.fft.rfft(y / np.abs(y).max())) for y in outs]
    assert min(np.corrcoef(spectra[0], s)[0, 1] for s in spectra[1:]) < 0.9  # chains differ audibly
    silent = np.zeros(1000, np.float32)
    np.testing.assert_array_equal(recording.degrade(silent, np.random.default_rng(0)), silent)


def test_room_impulse_has_a_direct_path_and_a_decaying_tail():
    for k in range(5):
        ir = recording.room_impulse(np.random.default_rng(k))
        assert np.sum(ir**2) == pytest.approx(1.0, rel=1e-4)
        assert np.argmax(np.abs(ir)) == 0  # the direct path comes first and is the strongest
        q = np.array_split(ir[1:] ** 2, 4)
        assert q[0].sum() > q[-1].sum()  # the reverberation decays


def test_noise_is_added_at_the_asked_snr_over_the_speech():
    a = _speech_like()
    for snr in (5.0, 20.0):
        y = recording.add_noise(a, np.random.default_rng(1), snr)
        noise = y - a
        measured = 10 * np.log10(recording.active_power(a) / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.5)


def test_mp3_roundtrip_keeps_length_and_alignment():
    av = pytest.importorskip("av")
    if "libmp3lame" not in av.codecs_available:
        pytest.skip("this FFmpeg build has no MP3 encoder (libmp3lame)")
    a = _speech_like()
    y = recording.mp3_roundtrip(a, 32000)
    assert y.shape == a.shape and np.corrcoef(a, y)[0, 1] > 0.9  # aligned: no codec delay left


def test_targets_hold_every_lip_contact_however_short():
    # a 30 ms /b/ and a 40 ms /m/ between open vowels: blending alone leaves them half open
    phones = [Phone("aa", 0.0, 0.2), Phone("b", 0.2, 0.23), Phone("aa", 0.23, 0.5), Phone("m", 0.5, 0.54)]
    phones += [Phone("aa", 0.54, 0.8), Phone("f", 0.8, 0.88), Phone("iy", 0.88, 1.1)]
    m = mouth_trajectory(phones, 28)
    t = (np.arange(28) + 0.5) / 25
    for p in phones:
        inside = (t >= p.start) & (t < p.end)
        if p.label in ("b", "m"):
            assert inside.any() and (m[inside, 0] == 0).all() and (m[inside, 2] == 0).all(), p
        if p.label == "f":
            assert (m[inside, 2] == 1.0).all() and (m[inside, 0] <= 0.08).all()
    assert m[:, 0].max() > 0.8  # the vowels still open
    short = mouth_trajectory([Phone("aa", 0.0, 0.21), Phone("p", 0.21, 0.225), Phone("aa", 0.225, 0.5)], 12)
    assert short[5, 0] == 0.0  # a 15 ms /p/ with no frame centre inside still shuts the nearest frame
    blended = mouth_trajectory(
        [Phone("aa", 0.0, 0.21), Phone("p", 0.21, 0.225), Phone("aa", 0.225, 0.5)], 12, hold=False
    )
    assert blended[5, 0] > 0.05  # without held contacts the blend leaves that /p/ open


def test_training_weighs_contacts_and_rerecords_crops(tmp_path):
    pytest.importorskip("torch", reason="training needs torch (toonsync[train])")
    from toonsync.runtime.mel import MELS_PER_FRAME, log_mel
    from toonsync.runtime.motion import speech_energy
    from toonsync.training.dataset import phones_array
    from toonsync.training.motion_data import TrainClip, contact_frames, sample_batch, shut_frames
    from toonsync.training.train_motion import MotionTrainConfig

    audio = _speech_like(3.0)
    n = audio.size // 640
    phones = phones_array([("aa", 0.0, 1.0), ("m", 1.0, 1.12), ("aa", 1.12, 2.0), ("f", 2.0, 2.1), ("pau", 2.1, 3.0)])
    contact = contact_frames(phones, n)
    assert contact.sum() == 3 + 2 and contact[25:28].all() and contact[50:52].all()
    mel = log_mel(audio)[: n * MELS_PER_FRAME]
    shut = shut_frames(phones, n, flat=False)  # the closure head's targets: the M and the pause, not the F
    assert shut.sum() == 3 + 23 and shut[25:28].all() and not shut[50:52].any() and shut[52:].all()
    assert (shut_frames(None, n, flat=False) == -1).all() and shut_frames(None, n, flat=True).all()
    short = phones_array([("aa", 0.0, 1.01), ("p", 1.01, 1.03), ("aa", 1.03, 3.0)])  # a P shorter than a frame
    assert np.flatnonzero(shut_frames(short, n, flat=False)).tolist() == [25]  # is shut on one frame, as held
    clip = TrainClip(mel, np.zeros((n, 3), np.float32), speech_energy(audio, n), False, audio, contact, shut)
    base = dict(batch=4, crop_frames=n, warp=0.0, gain_db=0.0, freq_masks=0, time_masks=0)
    plain = sample_batch([clip], MotionTrainConfig(**base, contact_w=3.0), 2, np.random.default_rng(0))
    heard = sample_batch([clip], MotionTrainConfig(**base, real_share=1.0), 2, np.random.default_rng(0))
    for b in range(4):  # a crop starts at frame 0 or 1 (the look-ahead); its aux targets lag by 2 frames
        fw, s = plain[8][b].numpy(), 0 if np.array_equal(plain[0][b, 4:8], mel[4:8]) else 1
        np.testing.assert_array_equal(plain[0][b, : (n - s) * 4], mel[s * 4 :])  # no re-recording: the stored mel
        want = 1.0 + 3.0 * np.concatenate([np.zeros(2, bool), contact])[s : s + n]
        np.testing.assert_array_equal(fw, want)
        np.testing.assert_array_equal(plain[9][b].numpy(), np.concatenate([shut[s:], np.ones(s)])[: n - 2])
        assert not np.allclose(heard[0][b, : (n - 1) * 4].numpy(), plain[0][b, : (n - 1) * 4].numpy(), atol=0.05)
    assert heard[0].shape == plain[0].shape


def test_flat_crops_also_start_mid_sound():
    """Extra flat crops sometimes start at their clip's first sound, from the model's zero state (audio that
    starts mid-hum): the model must learn to keep the mouth shut through such a cold start too."""
    pytest.importorskip("torch", reason="training needs torch (toonsync[train])")
    from toonsync.runtime.mel import MELS_PER_FRAME, log_mel
    from toonsync.runtime.motion import speech_energy
    from toonsync.training.motion_data import TrainClip, sample_batch
    from toonsync.training.train_motion import MotionTrainConfig

    t = np.arange(32000) / 16000
    audio = np.concatenate([np.zeros(8000), 0.2 * np.sin(2 * np.pi * 50 * t)]).astype(np.float32)  # 0.5 s silence
    n = audio.size // 640
    mel = log_mel(audio)[: n * MELS_PER_FRAME]
    energy = speech_energy(audio, n)
    first = int(np.argmax(energy > 0.05))
    hum = TrainClip(mel, np.zeros((n, 3), np.float32), energy, True, audio, np.zeros(n, bool))
    cfg = MotionTrainConfig(batch=64, crop_frames=20, warp=0.0, gain_db=0.0, flat_share=1.0)
    mels = sample_batch([hum], cfg, 2, np.random.default_rng(0))[0].numpy()
    cold = log_mel(audio[first * 640 : (first + 20) * 640])  # the crop that starts at the first sound
    assert 0 < first < 20
    starts = [np.allclose(m, cold, atol=1e-5) for m in mels]
    at_zero = [np.allclose(m, mel[:80], atol=1e-5) for m in mels]  # the crop that starts in the silence
    assert 5 <= sum(starts) <= 40 and sum(at_zero) >= 5  # about a quarter each
