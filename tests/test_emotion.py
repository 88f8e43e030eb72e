"""Emotion: prosody heuristic, user schedules, CREMA-D loader, EmotionNet train/stream/export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soxr

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.emotion import (
    NEU,
    ProsodyEmotion,
    arousal_mass,
    emotion_schedule,
    estimate_emotion,
    prosody_probs,
)
from toonsync.runtime.errors import InputError
from toonsync.runtime.mel import log_mel
from toonsync.runtime.motion import EMOTIONS
from toonsync.training.cremad import CremaD, item_features, parse_name

from .conftest import ASSETS, DATA, tone

SR = 16000
CREMAD_TINY = DATA / "cremad_tiny"


def excite(x: np.ndarray, factor: float = 1.3, gain: float = 2.5) -> np.ndarray:
    """The same speech ~30 % higher and faster (resampled as if played fast) and ~8 dB louder."""
    y = soxr.resample(x, SR * factor, SR).astype(np.float32)
    return np.clip(y * gain, -1.0, 1.0)


@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    return {"short": load_audio(DATA / "speech_short.wav"), "demo": load_audio(ASSETS / "demo_speech.wav")}


# -- prosody heuristic ---------------------------------------------------------------------------------
def _flat(kind: str) -> np.ndarray:
    n, rng = 5 * SR, np.random.default_rng(0)
    return {
        "silence": np.zeros(n, np.float32),
        "tone440": tone(5.0, 440.0, 0.3),
        "hum50": tone(5.0, 50.0, 0.2),
        "white_noise_low": (0.01 * rng.standard_normal(n)).astype(np.float32),
        "white_noise_loud": (0.3 * rng.standard_normal(n)).astype(np.float32),
        "dc": np.full(n, 0.25, np.float32),
    }[kind]


@pytest.mark.parametrize("kind", ["silence", "tone440", "hum50", "white_noise_low", "white_noise_loud", "dc"])
def test_flat_audio_is_neutral_on_every_frame(kind):
    p = estimate_emotion(_flat(kind))
    assert p.shape == (125, 6)
    assert p[:, NEU].min() >= 0.9, (kind, p[:, NEU].min())


def test_rows_are_probability_vectors(speech):
    for x in (speech["demo"], excite(speech["demo"]), _flat("silence")):
        p = estimate_emotion(x)
        assert p.dtype == np.float32 and (p >= 0).all()
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("n", [0, 1, 639, 640, 641, 46240])
def test_frame_count_is_ceil(n):
    assert estimate_emotion(np.zeros(n, np.float32)).shape == (-(-n // 640), 6)


def test_chunked_equals_whole(speech):
    x = np.concatenate([speech["short"], excite(speech["short"])[:20000]])
    whole = estimate_emotion(x)
    rng = np.random.default_rng(3)
    est, rows, i = ProsodyEmotion(), [], 0
    while i < x.size:
        k = int(rng.choice([1, 7, 160, 333, 640, 1001, 4000]))
        rows.append(est.update(x[i : i + k]))
        i += k
    rows.append(est.flush())
    np.testing.assert_allclose(np.concatenate(rows), whole, atol=1e-6)
    est.reset()  # reset starts over: int16 input gives the same rows as float
    pcm16 = np.round(x * 32767).astype(np.int16)
    again = np.concatenate([est.update(pcm16), est.flush()])
    np.testing.assert_allclose(again, whole, atol=2e-3)


def test_calm_speech_stays_mostly_neutral(speech):
    for name, x in speech.items():
        p = estimate_emotion(x)
        assert np.mean(p.argmax(1) == NEU) >= 0.7, (name, p.mean(0))


def test_excited_speech_has_more_arousal(speech):
    for name, x in speech.items():
        calm, hot = arousal_mass(estimate_emotion(x)).mean(), arousal_mass(estimate_emotion(excite(x))).mean()
        assert hot > calm + 0.1, (name, calm, hot)


def test_slow_quiet_low_speech_leans_sad(speech):
    x = speech["demo"]
    sad = np.clip(soxr.resample(x, SR * 0.85, SR) * 0.4, -1, 1).astype(np.float32)
    p_calm, p_sad = estimate_emotion(x).mean(0), estimate_emotion(sad).mean(0)
    assert p_sad[EMOTIONS.index("SAD")] > p_calm[EMOTIONS.index("SAD")] + 0.1


def test_output_is_smooth_over_time(speech):
    p = estimate_emotion(excite(speech["demo"]))
    assert np.abs(np.diff(p, axis=0)).max() < 0.1  # no per-frame flips


def test_prototype_mapping():
    p = prosody_probs(np.array([0.0, 1.2, -0.9]), np.array([0.0, 0.0, -0.5]))
    assert [EMOTIONS[k] for k in p.argmax(1)] == ["NEU", "FEA", "SAD"]


# -- user schedule ---------------------------------------------------------------------------------
def test_schedule_constant():
    s = emotion_schedule("happy", 10)
    assert s.shape == (10, 6) and (s[:, EMOTIONS.index("HAP")] == 1).all()
    assert emotion_schedule("SAD", 3)[0, EMOTIONS.index("SAD")] == 1


def test_schedule_keyframes_with_crossfades():
    s = emotion_schedule("0:neutral, 2.5:happy, 6:sad", 200, fade_s=0.4)
    np.testing.assert_allclose(s.sum(1), 1.0, atol=1e-6)
    hap, neu, sad = (EMOTIONS.index(k) for k in ("HAP", "NEU", "SAD"))
    assert s[0, neu] == 1 and s[55, neu] == 1
    assert 0 < s[62, hap] < 1  # mid-fade at 2.5 s (frame 62.5)
    assert s[70, hap] == 1 and s[175, sad] == 1
    mixed = ~np.isclose(s.max(1), 1.0)
    assert mixed.sum() <= 2 * 0.4 * 25 + 2  # fades are short
    assert np.all(np.diff(s[50:75, hap]) >= 0)  # monotone ramp


def test_schedule_first_key_holds_before_it():
    s = emotion_schedule("1:angry,2:fearful", 75)
    assert s[0, EMOTIONS.index("ANG")] == 1 and s[-1, EMOTIONS.index("FEA")] == 1


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "  ",
        "furious",
        "0:happy,1:furious",
        "1:happy,0.5:sad",
        "x:happy",
        "happy,2:sad",
        "-1:happy",
        "0:happy,0:sad",
        "nan:happy",
    ],
)
def test_bad_schedule_names_accepted_emotions(spec):
    with pytest.raises(InputError, match="happy.*neutral.*sad"):
        emotion_schedule(spec, 10)


def test_runtime_emotion_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, toonsync.runtime.emotion\n"
        "assert 'torch' not in sys.modules and 'toonsync.training' not in sys.modules"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    assert r.returncode == 0, r.stderr


# -- CREMA-D loader --------------------------------------------------------------------------------
def test_cremad_parses_fixture_and_skips_bad_name():
    d = CremaD(CREMAD_TINY)
    assert len(d) == 12 and d.skipped == ["1001_DFA_XXX_XX.wav"]
    assert d.actors == [1001, 1002] and d.counts() == {e: 2 for e in EMOTIONS}
    it = next(i for i in d if i.path.name == "1002_IEO_FEA_LO.wav")
    assert (it.actor, it.sentence, it.emotion, it.level, it.label) == (1002, "IEO", "FEA", "LO", 2)
    assert it.path.is_file()
    assert len(CremaD(CREMAD_TINY / "AudioWAV")) == 12  # the AudioWAV folder itself works too


@pytest.mark.parametrize(
    "name",
    [
        "notes.wav",
        "1001_DFA_XXX_XX.wav",
        "1000_DFA_ANG_XX.wav",
        "1092_DFA_ANG_XX.wav",
        "1001_ABC_ANG_XX.wav",
        "1001_DFA_ANG_XY.wav",
        "1001_DFA_ANG_XX.WAV",
        "1001_DFA_ANG_XX.wav.bak",
        "1001_dfa_ang_xx.wav",
        "01001_DFA_ANG_XX.wav",
    ],
)
def test_parse_name_is_strict(name):
    assert parse_name(name) is None


def test_parse_name_good():
    assert parse_name("1091_WSI_SAD_HI.wav") == (1091, "WSI", "SAD", "HI")


def test_split_is_speaker_independent_and_deterministic(tmp_path):
    wav = tmp_path / "AudioWAV"
    wav.mkdir()
    for a in range(1001, 1021):
        for e in ("ANG", "NEU"):
            (wav / f"{a}_IEO_{e}_XX.wav").touch()  # the loader lists names; audio is read on demand
    d = CremaD(tmp_path)
    s1, s2 = d.split(val_actors=3, test_actors=4, seed=1), d.split(val_actors=3, test_actors=4, seed=1)
    assert s1 == s2
    actors = [{it.actor for it in part} for part in s1]
    assert [len(a) for a in actors] == [13, 3, 4]
    assert not (actors[0] & actors[1] or actors[0] & actors[2] or actors[1] & actors[2])
    assert sum(len(p) for p in s1) == len(d)
    assert {it.actor for it in d.split(0, [1005, 1007]).test} == {1005, 1007}
    with pytest.raises(ValueError, match="not in this copy"):
        d.split(0, [1090])


def test_fixture_split_and_features():
    sp = CremaD(CREMAD_TINY).split(val_actors=0, test_actors=[1002])
    assert {it.actor for it in sp.train} == {1001} and {it.actor for it in sp.test} == {1002} and not sp.val
    it = sp.train[0]
    mel = item_features(it)
    audio = load_audio(it.path)
    assert audio.size <= 0.8 * SR and mel.shape == (audio.size // 160, 80)
    np.testing.assert_array_equal(mel, log_mel(audio))


# -- EmotionNet (torch) ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_clips():
    pytest.importorskip("torch")
    from toonsync.training.train_emotion import load_clips

    return load_clips(CremaD(CREMAD_TINY).items)


def test_model_is_small():
    pytest.importorskip("torch")
    from toonsync.training.models.emotion import EmotionConfig, EmotionNet, param_bytes

    assert param_bytes(EmotionNet(EmotionConfig())) < 1_000_000


def test_training_steps_reduce_loss(tiny_clips):
    torch = pytest.importorskip("torch")
    from toonsync.training.models.emotion import EmotionConfig, EmotionNet
    from toonsync.training.train_emotion import TrainConfig, frame_loss, sample_batch

    torch.manual_seed(0)
    assert len(tiny_clips) == 12
    mel, mask, y = sample_batch(
        tiny_clips, TrainConfig(batch=12, crop_frames=20, gain_db=0.0), np.random.default_rng(0)
    )
    assert sorted(y.tolist()) != [y[0].item()] * 12 and mask.sum(1).min() > 0
    model = EmotionNet(EmotionConfig(dropout=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        logits, *_ = model(mel, *model.initial_state(mel.shape[0]))
        loss = frame_loss(logits, mask, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.5 and losses[-1] < 0.5 * losses[0], losses[::10]


def test_streaming_inference_equals_whole_clip(tiny_clips):
    torch = pytest.importorskip("torch")
    from toonsync.training.models.emotion import EmotionConfig, EmotionNet

    torch.manual_seed(1)
    model = EmotionNet(EmotionConfig()).eval()
    mel = torch.from_numpy(np.concatenate([m.astype(np.float32) for m, _ in tiny_clips[:4]]))[None]
    with torch.no_grad():
        whole, *_ = model(mel, *model.initial_state(1))
        state, parts, i = model.initial_state(1), [], 0
        for k in [1, 3, 7, 2, 10, 1] * 20:  # chunks of k video frames (4k mel frames)
            if i >= mel.shape[1]:
                break
            out, *state = model(mel[:, i : i + 4 * k], *state)
            parts.append(out)
            i += 4 * k
    assert i >= mel.shape[1]
    np.testing.assert_allclose(torch.cat(parts, 1).numpy(), whole.numpy(), atol=1e-5)


def test_train_cli_report_and_onnx_export(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnx

    from toonsync.export.emotion import export_emotion
    from toonsync.runtime.backend import load_model
    from toonsync.runtime.model_card import sha256_file
    from toonsync.training.train_emotion import main

    run, models = tmp_path / "run", tmp_path / "models"
    main(
        [
            "--data",
            str(CREMAD_TINY),
            "-o",
            str(run),
            "--steps",
            "6",
            "--batch",
            "6",
            "--val-actors",
            "0",
            "--test-actors",
            "1002",
        ]
    )
    export_emotion(run / "emotion.pt", models)
    report = json.loads((run / "emotion.train.json").read_text())
    test = report["metrics"]["test"]
    assert report["train_data"]["actors"] == {"train": [1001], "val": [], "test": [1002]}
    assert test["clips"] == 6 and np.array(test["confusion"]).shape == (6, 6) and np.sum(test["confusion"]) == 6
    assert set(test["recall"]) == set(EMOTIONS) and 0 <= test["uar"] <= 1

    side = json.loads((models / "emotion.onnx.json").read_text())
    f = models / "emotion.fp32.onnx"
    for key in ("config", "inputs", "outputs", "classes", "parity", "files"):
        assert key in side
    assert side["files"]["emotion.fp32.onnx"]["sha256"] == sha256_file(f)
    assert side["parity"]["max_abs_diff"] <= 1e-4 and side["classes"] == list(EMOTIONS)
    assert f.stat().st_size < 1_000_000
    g = onnx.load(str(f)).graph
    assert [i.name for i in g.input] == ["mel", "mel_ctx", "h", "c"]
    assert [o.name for o in g.output] == ["logits", "mel_ctx_out", "h_out", "c_out"]

    # the runtime (onnxruntime, sha256-checked) matches torch on a real clip, streamed in two halves
    import torch

    from toonsync.training.train_emotion import load_checkpoint

    model = load_checkpoint(run / "emotion.pt")
    mel = log_mel(load_audio(CREMAD_TINY / "AudioWAV" / "1002_IEO_HAP_HI.wav"))
    mel = mel[: mel.shape[0] // 4 * 4][None]
    with torch.no_grad():
        ref, *_ = model(torch.from_numpy(mel), *model.initial_state(1))
    lm = load_model("emotion", directory=models, backend="cpu")
    cfg = side["config"]
    state = {
        "mel_ctx": np.zeros((1, 80, cfg["kernel"] - 1), np.float32),
        "h": np.zeros((1, 1, cfg["hidden"]), np.float32),
        "c": np.zeros((1, 1, cfg["hidden"]), np.float32),
    }
    half = mel.shape[1] // 8 * 4
    outs = []
    for part in (mel[:, :half], mel[:, half:]):
        o = lm.run({"mel": part, **state})
        state = {"mel_ctx": o["mel_ctx_out"], "h": o["h_out"], "c": o["c_out"]}
        outs.append(o["logits"])
    np.testing.assert_allclose(np.concatenate(outs, 1), ref.numpy(), atol=1e-4)
