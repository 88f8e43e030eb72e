"""The transformer motion decoder: causal, streaming state as graph I/O, trained jointly with the speech
model (`toonsync train motion`), resumable, exported, paired by run_id, and used by the runtime."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from toonsync.runtime.audio_io import load_audio
from toonsync.runtime.mel import SAMPLES_PER_FRAME

torch = pytest.importorskip("torch", reason="decoder tests need toonsync[train]")

from toonsync.training.models.motion_decoder import MotionDecoder, MotionDecoderConfig  # noqa: E402

CFG = MotionDecoderConfig(speech_dim=24, d_model=32, heads=4, layers=2, ffn=48, window=6, residual=True, closure=True)


def _inputs(T: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(1, T, CFG.speech_dim, generator=g),
        torch.rand(1, T, 3, generator=g) * 0.6,
        torch.rand(1, T, 6, generator=g),
        torch.randn(1, T, 6, generator=g),
    )


@pytest.fixture(scope="module")
def decoder():
    torch.manual_seed(0)
    m = MotionDecoder(CFG).eval()
    with torch.no_grad():
        for layer in m.layers:
            layer.rel_bias.normal_(0, 0.5)  # a non-trivial position bias
        m.mouth_head.weight.normal_(0, 0.3)  # a trained decoder corrects the audio model's mouth
    return m


def test_residual_decoder_starts_as_the_audio_models_mouth():
    torch.manual_seed(1)
    fresh = MotionDecoder(CFG).eval()
    s, m, e, n = _inputs(12)
    with torch.no_grad():
        out = fresh(s, m, e, n, fresh.initial_state(1))
    assert torch.equal(out[0], m)  # zero-initialised correction: identity at the start of training


@torch.no_grad()
def test_a_new_closure_head_leaves_the_motion_as_it_was(decoder):
    from dataclasses import replace

    from toonsync.training.train_motion import with_closure_head

    plain = MotionDecoder(replace(CFG, closure=False)).eval()
    plain.load_state_dict({k: v for k, v in decoder.state_dict().items() if not k.startswith("closure_head.")})
    s, m, e, n = _inputs(16)
    before = plain(s, m, e, n, plain.initial_state(1))
    after = with_closure_head(plain)(s, m, e, n, plain.initial_state(1))
    assert len(before) == 5 and len(after) == 6 and after[4].shape == (1, 16)  # the logit, before the cache
    for i in range(4):
        assert torch.equal(before[i], after[i])


@torch.no_grad()
def test_chunked_equals_whole_any_chunking(decoder):
    s, m, e, n = _inputs(40)
    whole = decoder(s, m, e, n, decoder.initial_state(1))
    for sizes in ([1] * 40, [3, 7, 1, 12, 17], [40]):
        cache, outs, t = decoder.initial_state(1), [], 0
        for k in sizes:
            o = decoder(s[:, t : t + k], m[:, t : t + k], e[:, t : t + k], n[:, t : t + k], cache)
            cache = o[-1]
            outs.append(o[:-1])  # mouth, landmarks, pose, blink, closure logit
            t += k
        for i in range(5):
            np.testing.assert_allclose(torch.cat([o[i] for o in outs], 1).numpy(), whole[i].numpy(), atol=2e-5)


@torch.no_grad()
def test_causal_and_windowed(decoder):
    """Output t never depends on inputs after t (no look-ahead of its own); with 2 layers of window W it
    forgets inputs more than 2(W-1) frames back."""
    s, m, e, n = _inputs(40)
    ref = decoder(s, m, e, n, decoder.initial_state(1))[0]
    s2 = s.clone()
    s2[:, 20] += 5.0
    got = decoder(s2, m, e, n, decoder.initial_state(1))[0]
    diff = (got - ref).abs().amax(-1)[0]
    assert float(diff[:20].max()) == 0.0 and float(diff[20]) > 1e-3
    assert float(diff[20 + 2 * (CFG.window - 1) + 1 :].max()) == 0.0


@torch.no_grad()
def test_emotion_and_noise_are_inputs(decoder):
    s, m, e, n = _inputs(20)
    a = decoder(s, m, e, n, decoder.initial_state(1))
    b = decoder(s, m, torch.roll(e, 1, -1), n, decoder.initial_state(1))
    c = decoder(s, m, e, -n, decoder.initial_state(1))
    assert float((a[2] - b[2]).abs().max()) > 1e-4 and float((a[2] - c[2]).abs().max()) > 1e-4


# -- the trainer, on a tiny real corpus -------------------------------------------------------------
def _tiny_cfgs(steps: int, **kw):
    from toonsync.training.models.audio2motion import Audio2MotionConfig
    from toonsync.training.train_motion import MotionConfig, MotionTrainConfig

    m = MotionConfig(Audio2MotionConfig(channels=32, hidden=24, norm="affine"), CFG)
    t = MotionTrainConfig(steps=steps, batch=8, crop_frames=24, eval_every=kw.pop("eval_every", steps), lr=3e-3, **kw)
    return m, t


@pytest.fixture(scope="module")
def tiny_run(tiny_corpus, tmp_path_factory):
    from toonsync.training.train_motion import train

    out = tmp_path_factory.mktemp("motion_run")
    m, t = _tiny_cfgs(40, eval_every=20)
    info = train(tiny_corpus / "train.h5", tiny_corpus / "test.h5", out, m, t)
    return out, info


def test_training_lowers_every_loss_and_saves_paired_checkpoints(tiny_run, tiny_corpus):
    from toonsync.training.train_motion import MotionModel, _loss_terms, load_clips, load_run, sample_batch

    out, info = tiny_run
    assert info["history"][-1]["step"] == 40 and info["metrics"]["clips"] > 0
    for k in ("r_target", "viseme_acc", "aux_head", "pose_rmse_rad_vs_prior", "blink_mae_vs_prior"):
        assert k in info["metrics"]
    # losses on one fixed batch: the trained model against the same architecture untrained
    m_cfg, t_cfg = _tiny_cfgs(1)
    batch = sample_batch(load_clips(tiny_corpus / "train.h5", "train"), t_cfg, 2, np.random.default_rng(123))
    torch.manual_seed(0)
    trained, fresh = load_run(out), MotionModel(m_cfg).eval()
    with torch.no_grad():
        lt = _loss_terms(trained, batch, batch, t_cfg)[1]
        lf = _loss_terms(fresh, batch, batch, t_cfg)[1]
    for k in ("mouth", "aux", "pose", "blink", "closed"):
        assert float(lt[k]) < float(lf[k]), (k, float(lt[k]), float(lf[k]))
    a = torch.load(out / "audio2motion.pt", weights_only=False)
    d = torch.load(out / "motion.pt", weights_only=False)
    assert a["config"]["norm"] == "affine" and d["config"]["window"] == CFG.window and d["config"]["residual"]
    assert a["info"]["run_id"] == d["info"]["run_id"] and len(d["info"]["run_id"]) == 16
    assert a["info"]["metrics"] == d["info"]["metrics"] and a["info"]["params"] != d["info"]["params"]
    assert json.loads((out / "motion.train.json").read_text())["targets"]["pose_blink"].startswith("procedural")


def test_resume_continues_bit_exactly(tiny_corpus, tmp_path):
    """A 6-step run interrupted after 3 steps and resumed ends with exactly the weights of one straight run."""
    from toonsync.training.train_motion import train

    m, t = _tiny_cfgs(6, eval_every=3)
    train(tiny_corpus / "train.h5", None, tmp_path / "straight", m, t)
    assert train(tiny_corpus / "train.h5", None, tmp_path / "cut", m, t, stop_after=3) is None
    assert not (tmp_path / "cut" / "motion.pt").exists() and (tmp_path / "cut" / "motion.resume.pt").exists()
    train(tiny_corpus / "train.h5", None, tmp_path / "cut", m, t, resume=tmp_path / "cut")
    a = torch.load(tmp_path / "straight" / "motion.pt", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "cut" / "motion.pt", weights_only=False)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_new_decoder_on_a_frozen_speech_model(tiny_run, tiny_corpus, tmp_path):
    """--init RUN --new-decoder --freeze-audio: the speech model (and so the run_id) stays exactly the same."""
    from toonsync.training.train_motion import train

    src, _ = tiny_run
    m, t = _tiny_cfgs(4)
    t.freeze_audio = True
    info = train(tiny_corpus / "train.h5", None, tmp_path, m, t, init=src, init_decoder=False)
    a0 = torch.load(src / "audio2motion.pt", weights_only=False)
    a1 = torch.load(tmp_path / "audio2motion.pt", weights_only=False)
    for k, v in a0["state_dict"].items():
        assert torch.equal(v, a1["state_dict"][k]), k
    assert info["run_id"] == a0["info"]["run_id"] and info["init_decoder"] is False
    d0 = torch.load(src / "motion.pt", weights_only=False)["state_dict"]
    d1 = torch.load(tmp_path / "motion.pt", weights_only=False)["state_dict"]
    assert not torch.equal(d0["inp.weight"], d1["inp.weight"])  # a new decoder, trained


def test_closure_head_fitted_on_a_frozen_model(tiny_run, tiny_corpus, tmp_path):
    """training.closure_head: the head of a trained run refitted on its clips, the rest exactly as it was; it
    finds the shut frames (P/B/M, pauses) far better than their share would by chance."""
    from toonsync.training.closure_head import fit_closure_head

    src, _ = tiny_run
    info = fit_closure_head(src, [tiny_corpus / "train.h5"], tmp_path, test=tiny_corpus / "test.h5", steps=300)
    fit = info["closure_head"]
    assert (
        0.05 < fit["train"]["shut_share"] < 0.95
        and info["run_id"] == torch.load(src / "motion.pt", weights_only=False)["info"]["run_id"]
    )
    assert fit["train"]["precision_at_0.5"] > fit["train"]["shut_share"] + 0.2, fit
    assert fit["test"]["precision_at_recall_0.65"] > 1.5 * fit["test"]["shut_share"], fit  # a tiny model: above chance
    d0 = torch.load(src / "motion.pt", weights_only=False)["state_dict"]
    d1 = torch.load(tmp_path / "motion.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(v, d1[k]) for k, v in d0.items() if not k.startswith("closure_head."))
    assert not torch.equal(d0["closure_head.weight"], d1["closure_head.weight"])
    assert (tmp_path / "audio2motion.pt").read_bytes() == (src / "audio2motion.pt").read_bytes()


# -- export + runtime ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_models(tiny_run, tmp_path_factory):
    from toonsync.export.cli import export_paired_motion
    from toonsync.export.onnx_export import export_audio2motion

    out, _ = tiny_run
    d = tmp_path_factory.mktemp("motion_models")
    export_audio2motion(out / "audio2motion.pt", d)
    meta = export_paired_motion(out / "audio2motion.pt", d, required=True)
    assert meta["parity"]["max_abs_diff"] <= 1e-4 and meta["parity_fp16"]["max_abs_diff"] <= 2e-2
    assert list(meta["outputs"])[-2:] == ["closed", "cache_out"]  # the closure head's probability
    return d


def _frames(model, pcm, chunks, seed=0, emotion=None):
    from toonsync.runtime.streaming import Stream

    s = Stream(model, np.zeros((68, 2), np.float32), seed=seed, emotion=emotion)
    frames, i = [], 0
    rng = np.random.default_rng(1)
    while i < pcm.size:
        k = int(rng.integers(1, chunks + 1)) if chunks else pcm.size
        s.accept_audio(pcm[i : i + k])
        i += k
        frames += [s.step(draw=False) for _ in range(s.ready())]
    s.flush()
    return frames + [s.step(draw=False) for _ in range(s.ready())]


def test_runtime_uses_the_decoder_and_streams_exactly(tiny_models, speech_wav):
    from toonsync.runtime.streaming import AudioModel

    model = AudioModel("cpu", "fp32", tiny_models)
    assert model.decoder is not None
    pcm = load_audio(speech_wav)[: 60 * SAMPLES_PER_FRAME]
    whole = _frames(model, pcm, 0)
    chunked = _frames(model, pcm, 2000)
    assert len(whole) == len(chunked) == 60
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a.mouth, b.mouth, atol=1e-5)
        np.testing.assert_allclose(a.pose, b.pose, atol=1e-5)
        assert abs(a.blink - b.blink) < 1e-5
    # the decoder's output, not the audio model's head, drives the frames
    plain = _frames(AudioModel("cpu", "fp32", tiny_models, decoder=False), pcm, 0)
    assert max(float(np.abs(a.pose - p.pose).max()) for a, p in zip(whole, plain)) > 1e-3
    assert max(float(np.abs(a.mouth - p.mouth).max()) for a, p in zip(whole, plain)) > 0


def test_closure_head_shapes_only_the_drawn_mouth(tiny_run, tiny_models, speech_wav, tmp_path):
    """A decoder without a closure head (a model folder of before) still runs; the head changes the drawn mouth
    (landmarks) and nothing the model says (mouth parameters, pose, blink)."""
    import shutil

    from toonsync.export.cli import export_paired_motion
    from toonsync.export.onnx_export import export_audio2motion
    from toonsync.runtime.streaming import AudioModel

    src, _ = tiny_run
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy2(src / "audio2motion.pt", run / "audio2motion.pt")
    ck = torch.load(src / "motion.pt", weights_only=False)
    ck["config"] = {**ck["config"], "closure": False}
    ck["state_dict"] = {k: v for k, v in ck["state_dict"].items() if not k.startswith("closure_head.")}
    torch.save(ck, run / "motion.pt")
    plain = tmp_path / "models"
    export_audio2motion(run / "audio2motion.pt", plain)
    assert "closed" not in export_paired_motion(run / "audio2motion.pt", plain, required=True)["outputs"]
    pcm = load_audio(speech_wav)[: 60 * SAMPLES_PER_FRAME]
    with_head = _frames(AudioModel("cpu", "fp32", tiny_models), pcm, 0)
    without = _frames(AudioModel("cpu", "fp32", plain), pcm, 0)
    assert len(with_head) == len(without) == 60
    assert all(0.0 <= f.closed <= 1.0 for f in with_head) and all(np.isnan(f.closed) for f in without)
    for a, b in zip(with_head, without):
        np.testing.assert_array_equal(a.mouth, b.mouth)
        np.testing.assert_array_equal(a.pose, b.pose)
        np.testing.assert_allclose(a.landmarks[17:48], b.landmarks[17:48], atol=1e-6)  # brows, eyes, nose...
    lips = np.array([np.abs(a.landmarks[48:] - b.landmarks[48:]).max() for a, b in zip(with_head, without)])
    assert lips.max() > 1e-3  # ... and the lips differ where the head shuts or parts them


def test_batched_streams_equal_solo_with_decoder(tiny_models, speech_wav):
    from toonsync.runtime.streaming import AudioModel, Stream

    model = AudioModel("cpu", "fp32", tiny_models)
    pcm = load_audio(speech_wav)[: 30 * SAMPLES_PER_FRAME]
    solo = [_frames(model, pcm * g, 0, seed=k) for k, g in enumerate((1.0, 0.3, 0.0))]
    streams = [Stream(model, np.zeros((68, 2), np.float32), seed=k, defer=True) for k in range(3)]
    got = [[], [], []]
    for i in range(0, pcm.size, SAMPLES_PER_FRAME):
        for s, g in zip(streams, (1.0, 0.3, 0.0)):
            s.accept_audio(pcm[i : i + SAMPLES_PER_FRAME] * g)
        for k, f in enumerate(model.step_many(streams, draw=False)):
            if f is not None:
                got[k].append(f)
    for s in streams:
        s.flush()
    for k, s in enumerate(streams):
        got[k] += [s.step(draw=False) for _ in range(s.ready())]
    for a_list, b_list in zip(solo, got):
        assert len(a_list) == len(b_list)
        for a, b in zip(a_list, b_list):
            np.testing.assert_allclose(a.mouth, b.mouth, atol=2e-5)
            np.testing.assert_allclose(a.pose, b.pose, atol=2e-5)


def test_decoder_from_another_run_is_not_paired(tiny_models, tmp_path, caplog):
    import shutil

    from toonsync.export.sidecar import update_sidecar
    from toonsync.runtime.streaming import AudioModel

    for f in tiny_models.iterdir():
        shutil.copy(f, tmp_path / f.name)
    update_sidecar(tmp_path, "motion", run_id="0123456789abcdef")
    with caplog.at_level(logging.WARNING, logger="toonsync.runtime.streaming"):
        model = AudioModel("cpu", "fp32", tmp_path)
    assert model.decoder is None and "another audio model" in caplog.text


def test_int8_budget_is_judged_through_the_decoder(tiny_models, speech_wav):
    """calibrate's accuracy check also runs the paired decoder on fp32 vs INT8-like speech embeddings."""
    from toonsync.calibration.quantize import accuracy_delta, through_decoder
    from toonsync.runtime.backend import OrtBackend
    from toonsync.runtime.mel import log_mel

    meta = json.loads((tiny_models / "audio2motion.onnx.json").read_text())["config"]
    be = OrtBackend(tiny_models / "audio2motion.fp32.onnx", "cpu", 1)
    mel = log_mel(load_audio(speech_wav))[None, : 4 * 50]
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    out = be.run(
        {
            "mel": mel,
            "mel_ctx": z(1, 80, meta["kernel"] - 1),
            "h": z(1, 1, meta["hidden"]),
            "c": z(1, 1, meta["hidden"]),
        }
    )
    noisy = {
        **out,
        "embedding": out["embedding"]
        + np.random.default_rng(0).normal(0, 0.05, out["embedding"].shape).astype(np.float32),
    }
    ref, same, got = (through_decoder(tiny_models, [o]) for o in (out, out, noisy))
    assert ref[0]["mouth"].shape == (1, 50, 3)
    assert accuracy_delta(ref, same)["landmark_drift_pct_iod"] == 0.0
    assert accuracy_delta(ref, got)["landmark_drift_pct_iod"] > 0.0
    assert accuracy_delta(ref, same)["closed_mae"] == 0.0 < accuracy_delta(ref, got)["closed_mae"]  # the head too


def test_toonsync_train_motion_cli(tmp_path):
    """`toonsync train motion` builds a missing corpus, trains, and writes the paired checkpoints."""
    import shutil

    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (apt-get install flite): cannot build the training corpus")
    from toonsync.cli import main

    rc = main(
        [
            "-q",
            "train",
            "motion",
            "--corpus-dir",
            str(tmp_path / "corpus"),
            "--minutes",
            "0.3",
            "--steps",
            "2",
            "--batch",
            "4",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 0 and (tmp_path / "corpus" / "train.h5").exists()
    a = torch.load(tmp_path / "run" / "audio2motion.pt", weights_only=False)
    d = torch.load(tmp_path / "run" / "motion.pt", weights_only=False)
    assert a["info"]["run_id"] == d["info"]["run_id"] and d["config"]["residual"]
    assert d["info"]["train_config"]["steps"] == 2 and d["info"]["history"][-1]["step"] == 2
