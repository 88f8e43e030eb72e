"""Identity embedding: the ResNet-18 written here, the metric-learning pieces, ONNX export
parity, and the shipped ``identity.fp32.onnx`` telling avatars apart (torch-free runtime helper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toonsync.runtime.backend import model_dir

ASSETS = Path(__file__).resolve().parent.parent / "runtime" / "assets"
PHOTOS = (ASSETS / "demo_face.jpg", Path(__file__).parent / "data" / "grace_hopper.jpg")


def frames_of(avatar, n: int, seed: int) -> np.ndarray:
    """``n`` frames of a prepared avatar as the product draws them (256 px), random expression/pose/blink
    (``training.synthetic_avatars`` needs numpy + OpenCV only, not torch)."""
    from toonsync.runtime.avatar import AvatarRenderer
    from toonsync.training.synthetic_avatars import Identity, random_frame, render

    rng = np.random.default_rng(seed)
    r = AvatarRenderer(avatar.style, avatar.neutral, 256)
    idt = Identity(avatar.style, avatar.neutral)
    return np.stack([render(r, random_frame(idt, rng, own_background=1.0), 256) for _ in range(n)])


# ---------------------------------------------------------------- shipped model (runtime, no torch needed)
@pytest.fixture(scope="module")
def shipped():
    from toonsync.runtime.identity import IdentityModel

    if not (model_dir() / "identity.fp32.onnx").is_file():
        pytest.fail("runtime/models/identity.fp32.onnx is missing (train_identity --export runtime/models)")
    return IdentityModel(backend="cpu")


def test_shipped_model_is_small_and_documented(shipped):
    meta = shipped.model.card
    assert shipped.model.path.stat().st_size <= 12.5e6
    held = meta["metrics"]["held_out"]
    assert held["roc_auc"] >= 0.95 and held["top1_retrieval"] >= 0.8, held
    assert meta["threshold"] == held["threshold_eer"] and meta["config"]["embed_dim"] == shipped.dim == 128
    assert meta["parity"]["max_abs_diff"] <= 1e-4


def test_frames_of_one_avatar_embed_closer_than_two_avatars(shipped):
    from toonsync.runtime.identity import embed_avatar, similarity
    from toonsync.runtime.prepare import load_face

    a, b = (load_face(p) for p in PHOTOS)
    fa, fb = frames_of(a, 3, 0), frames_of(b, 3, 1)
    ea, eb = shipped.embed(fa), shipped.embed(fb)
    assert ea.shape == (3, 128) and np.allclose(np.linalg.norm(ea, axis=1), 1, atol=1e-4)
    same = [similarity(ea[0], ea[1]), similarity(ea[0], ea[2]), similarity(eb[0], eb[1]), similarity(eb[1], eb[2])]
    diff = [similarity(x, y) for x in ea for y in eb]
    assert min(same) > max(diff), (same, diff)
    assert min(same) > shipped.threshold > max(diff)
    # the module-level helpers agree with the model object
    np.testing.assert_allclose(
        similarity(embed_avatar(a), ea[0]), similarity(shipped.embed(a.renderer(192).draw(a.neutral)), ea[0]), atol=1e-5
    )


def test_embed_rejects_non_images(shipped):
    from toonsync.runtime.errors import InputError

    with pytest.raises(InputError, match="RGB uint8"):
        shipped.embed(np.zeros((10, 10), np.float32))


# ---------------------------------------------------------------- training side
def test_resnet18_matches_the_paper_layout():
    torch = pytest.importorskip("torch")
    from toonsync.training.models.resnet import ResNet18

    net = ResNet18(64)
    assert sum(p.numel() for p in net.parameters()) == 11_176_512  # torchvision resnet18 without its fc layer
    assert [len(s) for s in net.stages] == [2, 2, 2, 2]
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 512)


def test_verification_metrics_and_info_nce():
    torch = pytest.importorskip("torch")
    from toonsync.training.train_identity import info_nce, verification_metrics

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 1, 16))
    tight = centres + 0.01 * rng.normal(size=(20, 4, 16))
    tight /= np.linalg.norm(tight, axis=-1, keepdims=True)
    m = verification_metrics(tight)
    assert m["roc_auc"] == 1.0 and m["eer"] == 0.0 and m["top1_retrieval"] == 1.0
    noise = rng.normal(size=(20, 4, 16))
    noise /= np.linalg.norm(noise, axis=-1, keepdims=True)
    m = verification_metrics(noise)
    assert 0.35 < m["roc_auc"] < 0.65 and m["eer"] > 0.35
    e = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    aligned = e.repeat_interleave(2, dim=0)  # both views identical
    assert info_nce(aligned, 0.1) < info_nce(torch.nn.functional.normalize(torch.randn(16, 16), dim=1), 0.1)


def test_identity_training_export_parity(tmp_path):
    pytest.importorskip("torch")
    from toonsync.export.learned import export_identity
    from toonsync.runtime.identity import IdentityModel
    from toonsync.training.models.resnet import IdentityConfig
    from toonsync.training.train_identity import TrainConfig, embed, load_checkpoint, train

    tcfg = TrainConfig(
        steps=3,
        batch=4,
        bank=8,
        frames=3,
        refresh=1,
        eval_ids=6,
        eval_frames=2,
        hard_ids=2,
        threads=1,
        eval_every=3,
        device="cpu",
    )
    info = train(tmp_path, IdentityConfig(size=32, width=8, embed_dim=16), tcfg, photos=False)
    assert (
        info["train_data"]["identities_seen"] == 8 + 3 * 2 and len(info["history"]) == 1
    )  # refreshed in families of 2
    assert set(info["metrics"]["hard_negatives"]["by_attribute"]) >= {"face_shape", "hair_colour", "glasses"}
    meta = export_identity(tmp_path / "identity.pt", tmp_path / "models")
    assert meta["parity"]["max_abs_diff"] <= 1e-4 and meta["outputs"] == {"embedding": ["batch", 16]}
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    got = IdentityModel(tmp_path / "models").embed(frames)
    import cv2

    small = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in frames])
    np.testing.assert_allclose(got, embed(load_checkpoint(tmp_path / "identity.pt"), small), atol=1e-4)


def test_shipped_fp16_identity_agrees_with_fp32_on_a_real_avatar():
    """The GPU variant (fp16 weights, fp32 I/O): same embedding of a real avatar frame, cosine >= 0.999."""
    from toonsync.runtime.backend import load_model
    from toonsync.runtime.prepare import load_face

    a, b = load_model("identity", "fp32", "cpu"), load_model("identity", "fp16", "cpu")
    s = a.card["config"]["size"]
    av = load_face(Path(__file__).resolve().parents[1] / "runtime/assets/demo_face.jpg")
    img = av.renderer(s).draw(av.neutral, (0.1, 0.0, 0.0), 0.0).astype(np.float32)[None] / 255.0
    ea, eb = a.run({"image": img})["embedding"][0], b.run({"image": img})["embedding"][0]
    assert float(ea @ eb / np.linalg.norm(ea) / np.linalg.norm(eb)) >= 0.999
    assert b.card["parity_fp16"]["max_abs_diff"] <= b.card["parity_fp16"]["atol"]
