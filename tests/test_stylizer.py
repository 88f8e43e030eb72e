"""Learned stylizer (pix2pix U-Net + PatchGAN) and refinement generator: the Face2Comics loader on its real
layouts, a few training steps on the tiny fixture with decreasing loss, ONNX export parity, the runtime's
learned-stylizer path with its privacy check, and the "no weights ship" error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from toonsync.runtime.backend import model_dir

torch = pytest.importorskip("torch", reason="needs toonsync[train]")

from toonsync.training.face2comics import (  # noqa: E402
    Face2Comics,
    Face2ComicsError,
    Face2ComicsNotFound,
    UnpairedFilesError,
    find_layout,
    find_pairs,
)

DATA = Path(__file__).parent / "data"
TINY = DATA / "face2comics_tiny"
PHOTO = Path(__file__).resolve().parent.parent / "runtime" / "assets" / "demo_face.jpg"
STEPS = 24


def early_late(curve: list[dict], key: str, n: int = 5) -> tuple[float, float]:
    v = [r[key] for r in curve]
    return float(np.mean(v[:n])), float(np.mean(v[-n:]))


def copy_layout(tmp: Path, face_dir: str, stems_f, stems_c, nest: tuple[str, ...] = ()) -> Path:
    """A Face2Comics-shaped folder from the fixture's images (``face_dir``: faces or face)."""
    src_root = find_layout(TINY)[0].parent
    root = tmp.joinpath("copy", *nest)
    for sub, stems in ((face_dir, stems_f), ("comics", stems_c)):
        (root / sub).mkdir(parents=True)
        for s in stems:
            shutil.copy(src_root / ("faces" if sub != "comics" else "comics") / f"{s}.jpg", root / sub / f"{s}.jpg")
    return tmp / "copy"


# ---------------------------------------------------------------- loader
def test_fixture_is_in_the_kaggle_v2_layout():
    faces, comics = find_layout(TINY)
    assert faces.name == "faces" and comics.name == "comics"
    assert faces.parent.name == faces.parent.parent.name == "face2comics_v2.0.0_by_Sxela"  # the double folder
    pairs = find_pairs(TINY)
    assert [p.stem for p in pairs] == [str(i) for i in range(8)]
    assert all(p.face.stem == p.comic.stem for p in pairs)


@pytest.mark.parametrize(
    "face_dir,nest", [("face", ("face2comics_v1.0.0_by_Sxela", "face2comics_v1.0.0_by_Sxela")), ("faces", ())]
)
def test_accepts_v1_and_flat_layouts(tmp_path, face_dir, nest):
    root = copy_layout(tmp_path, face_dir, range(3), range(3), nest)
    assert [p.stem for p in find_pairs(root)] == ["0", "1", "2"]


def test_layout_errors_are_typed_and_say_what_is_expected(tmp_path):
    with pytest.raises(Face2ComicsNotFound, match="does not exist") as e:
        find_pairs(tmp_path / "nope")
    assert isinstance(e.value, FileNotFoundError)
    (tmp_path / "empty").mkdir()
    with pytest.raises(Face2ComicsError, match=r"faces/ \(v2\) or face/ \(v1\) beside comics/"):
        find_pairs(tmp_path / "empty")
    (tmp_path / "half" / "faces").mkdir(parents=True)
    with pytest.raises(Face2ComicsError, match="no comics/"):
        find_pairs(tmp_path / "half")


def test_unpaired_files_are_listed(tmp_path):
    root = copy_layout(tmp_path, "faces", [0, 1, 2, 3, 4, 5], [0, 1, 2])
    with pytest.raises(UnpairedFilesError, match=r"3 in faces/ only \(e\.g\. 3, 4, 5\)"):
        find_pairs(root)
    assert [p.stem for p in find_pairs(root, allow_unpaired=True)] == ["0", "1", "2"]


def test_split_is_deterministic_and_augmentation_is_shared():
    a, b = Face2Comics(TINY, 64), Face2Comics(TINY, 64)
    assert [p.stem for p in a.val] == [p.stem for p in b.val] and len(a.val) >= 1
    assert not {p.stem for p in a.val} & {p.stem for p in a.train}
    # a pair whose comic is its own photo stays identical under the random crop + flip
    same = Face2Comics(TINY, 64)
    same.train = [type(p)(p.stem, p.face, p.face) for p in same.train]
    x, y = same.batch(6, np.random.default_rng(0))
    assert x.shape == (6, 3, 64, 64) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x[0], x[1]) or not np.array_equal(x[1], x[2])  # crops/flips vary


# ---------------------------------------------------------------- training + export
@pytest.fixture(scope="module")
def stylizer_run(tmp_path_factory):
    from toonsync.training.models.stylizer import PatchConfig, UNetConfig
    from toonsync.training.train_stylizer import StylizerTrainConfig, train

    out = tmp_path_factory.mktemp("stylizer")
    tcfg = StylizerTrainConfig(steps=STEPS, batch=4, size=64, threads=1, log_every=1, eval_every=STEPS, device="cpu")
    info = train(TINY, out, tcfg, UNetConfig(size=64, depth=6, ngf=16), PatchConfig(ndf=16, n_layers=2))
    return out, info


def test_stylizer_trains_with_decreasing_loss(stylizer_run):
    out, info = stylizer_run
    curve = info["loss_curve"]
    assert len(curve) == STEPS
    for key in ("l1", "d"):  # L1 to the comic, and the discriminator's loss
        first, last = early_late(curve, key)
        assert last < 0.9 * first, (key, first, last)
    assert set(curve[0]) >= {"adv", "l1", "mse", "feat", "g", "d"}
    report = json.loads((out / "stylizer.train.json").read_text())
    held = report["metrics"]["held_out"]
    assert held["frames"] >= 1 and held["psnr_db"] > 0 and 0 < held["ssim"] < 1 and 0 < held["l1"] < 1
    assert "feature matching" in report["losses"]["perceptual"] and "not a VGG" in report["losses"]["perceptual"]
    ck = torch.load(out / "stylizer.pt", map_location="cpu", weights_only=False)
    assert ck["config"]["size"] == 64 and "discriminator" in ck


@pytest.fixture(scope="module")
def stylizer_dir(stylizer_run, tmp_path_factory):
    from toonsync.export.learned import export_stylizer

    d = tmp_path_factory.mktemp("stylizer_models")
    meta = export_stylizer(stylizer_run[0] / "stylizer.pt", d)
    for f in model_dir().glob("render.*"):  # the comic is animated by the shipped warp renderer
        shutil.copy(f, d / f.name)
    return d, meta


def test_stylizer_onnx_matches_torch(stylizer_dir, stylizer_run):
    from toonsync.runtime.backend import load_model
    from toonsync.training.train_stylizer import load_checkpoint

    d, meta = stylizer_dir
    assert meta["parity"]["max_abs_diff"] <= 1e-4 and meta["inputs"] == {"image": ["batch", 64, 64, 3]}
    model = load_checkpoint(stylizer_run[0] / "stylizer.pt")
    x, _ = Face2Comics(TINY, 64).held_out()
    with torch.no_grad():
        ref = ((model(torch.from_numpy(x)) + 1) / 2).permute(0, 2, 3, 1).numpy()
    got = load_model("stylizer", "fp32", "cpu", d).run({"image": ((x + 1) / 2).transpose(0, 2, 3, 1).copy()})
    np.testing.assert_allclose(got["stylized"], ref, atol=1e-4)


def test_learned_stylizer_in_prepare_passes_the_privacy_check(stylizer_dir, monkeypatch, tmp_path):
    from toonsync.runtime.prepare import Avatar, load_face

    monkeypatch.setenv("TOONSYNC_MODEL_DIR", str(stylizer_dir[0]))
    av = load_face(PHOTO, stylizer="learned")
    assert av.stylized.shape == (64, 64, 3) and av.stylized.dtype == np.uint8
    check = av.meta["stylizer"]["privacy_check"]
    assert check["ok"] and check["patches_checked"] > 20 and check["min_mean_abs_diff"] > check["tolerance"]
    back = Avatar.load(av.save(tmp_path / "face.avatar"))
    np.testing.assert_array_equal(back.stylized, av.stylized)
    # the comic is what gets animated (warp renderer over its own pixels), and its mouth opens with speech
    from toonsync.runtime.mouth import apply_mouth

    r = back.renderer(128)
    assert type(r).__name__ == "WarpRenderer" and back.meta["kind"] == "stylized"
    shut, wide = r.draw(back.neutral), r.draw(apply_mouth(back.neutral, np.array([1.0, 0.0, 0.0], np.float32)))
    assert shut.shape == (128, 128, 3) and np.abs(shut.astype(int) - wide.astype(int)).max() > 40


def test_privacy_check_catches_a_stylizer_that_copies_the_photo(stylizer_dir):
    from toonsync.runtime.face import detect_face
    from toonsync.runtime.image_io import load_image
    from toonsync.runtime.stylizer import LearnedStylizer, PhotoLeakError

    sty = LearnedStylizer(stylizer_dir[0])

    class Copy:  # a "stylizer" whose output is its input: every face patch is a photo patch
        def run(self, inputs):
            return {"stylized": inputs["image"]}

    sty.model = Copy()
    image = load_image(PHOTO)
    with pytest.raises(PhotoLeakError, match="privacy check"):
        sty(image, detect_face(image).landmarks)


def test_no_learned_weights_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from toonsync import cli
    from toonsync.runtime.errors import ModelError
    from toonsync.runtime.prepare import load_face
    from toonsync.runtime.stylizer import NoLearnedStylizer

    monkeypatch.setenv("TOONSYNC_MODEL_DIR", str(tmp_path))
    with pytest.raises(NoLearnedStylizer) as e:
        load_face(PHOTO, stylizer="learned")
    assert isinstance(e.value, ModelError)
    rc = cli.main(["prepare", str(PHOTO), "-o", str(tmp_path / "x.avatar"), "--stylizer", "learned"])
    err = capsys.readouterr().err
    assert rc == 1 and not (tmp_path / "x.avatar").exists()
    for words in ("no learned stylizer weights", "none ship", "Face2Comics", "toonsync train stylizer --data"):
        assert words in err, err


def test_toonsync_train_stylizer(tmp_path, capsys):
    from toonsync import cli

    assert cli.main(["train", "stylizer", "--steps", "1"]) == 1
    assert "needs --data" in capsys.readouterr().err
    assert cli.main(["train", "identity", "--data", str(TINY)]) == 1
    assert "does not take --data" in capsys.readouterr().err
    rc = cli.main(
        [
            "train",
            "stylizer",
            "--data",
            str(TINY),
            "--size",
            "64",
            "--width",
            "8",
            "--steps",
            "2",
            "--batch",
            "2",
            "--out",
            str(tmp_path / "run"),
            "--device",
            "cpu",
            "--export",
            str(tmp_path / "models"),
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "stylizer.fp16.onnx",
        "stylizer.fp32.onnx",
        "stylizer.onnx.json",
    ]
    assert json.loads((tmp_path / "run" / "stylizer.train.json").read_text())["train_config"]["steps"] == 2


# ---------------------------------------------------------------- refinement generator
def test_refiner_trains_with_decreasing_loss_and_reports_lpips_honestly(tmp_path):
    from toonsync.runtime.backend import model_dir
    from toonsync.training.models.stylizer import PatchConfig, UNetConfig
    from toonsync.training.train_refiner import RefinerTrainConfig, train

    if not (model_dir() / "identity.fp32.onnx").is_file():
        pytest.skip("the shipped identity model is missing")
    steps = 20  # fresh random frames every step: a higher learning rate than pix2pix's 2e-4 shows the trend sooner
    tcfg = RefinerTrainConfig(
        steps=steps,
        batch=4,
        size=64,
        identities=8,
        eval_ids=4,
        threads=1,
        log_every=1,
        eval_every=steps,
        device="cpu",
        lr=1e-3,
    )
    info = train(
        tmp_path, tcfg, UNetConfig(size=64, depth=5, ngf=8, cond_dim=128, dropout=0.0), PatchConfig(ndf=8, n_layers=2)
    )
    first, last = early_late(info["loss_curve"], "l1")
    assert last < 0.9 * first, (first, last)
    held = info["metrics"]["held_out"]
    assert held["lpips"]["available"] is False and "backbone" in held["lpips"]["reason"]
    assert held["lpips"]["value"] is None  # unavailable, not a stand-in number
    assert info["train_data"]["conditioning"]["embed_dim"] == 128
