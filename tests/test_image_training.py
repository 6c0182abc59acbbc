"""Whole-image detectors' data side: the image-forensics layout, native-resolution views, and a
tiny `fakescope train` of a whole-image recipe (fakescope.data.images)."""
from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.data.images import (
    FAMILIES, WholeImageDataset, centre_view, family_of, fit_min_side, image_views, stratified_split, view_offsets,
)
from fakescope.data.layouts import read_layout
from fakescope.data.manifest import Manifest, Sample
from fakescope.models.spec import PreprocessSpec

SHARED = Path(os.environ.get("FAKESCOPE_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
IMAGE_FORENSICS = SHARED / "data" / "image-forensics"
needs_data = pytest.mark.skipif(not (IMAGE_FORENSICS / "cifake-sd14" / "manifest.csv").is_file(),
                                reason=f"shared image-forensics data not at {IMAGE_FORENSICS}")
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the layout


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    out = tmp_path_factory.mktemp("index") / "manifest.csv"
    manifest = read_layout("image-forensics", IMAGE_FORENSICS)
    manifest.write(out)
    with open(out, newline="") as handle:
        return manifest, list(csv.DictReader(handle)), out


@needs_data
def test_layout_counts_per_dataset_label_family(indexed):
    _, rows, _ = indexed
    assert list(rows[0])[:6] == ["path", "label", "generator", "family", "dataset", "split"]
    counts = Counter((r["dataset"], r["label"], r["family"]) for r in rows)
    assert counts == {
        ("cifake-sd14", "1", "diffusion"): 1000, ("cifake-sd14", "0", "real"): 1000,
        ("styleclip-stylegan2-e4e", "1", "gan"): 40,
        ("faces140k-sample", "1", "gan"): 7, ("faces140k-sample", "0", "real"): 6,
        ("ciplab-faces", "0", "real"): 1076,  # the reals only; the Photoshop edits are left out
    }
    assert all(r["family"] in FAMILIES for r in rows)


@needs_data
def test_layout_split_is_stratified_and_disjoint(indexed):
    manifest, rows, out = indexed
    splits = Counter((r["dataset"], r["label"], r["split"]) for r in rows)
    for label in ("0", "1"):  # 70 / 15 / 15 within each (dataset, label)
        assert [splits["cifake-sd14", label, s] for s in ("train", "val", "test")] == [700, 150, 150]
    assert [splits["styleclip-stylegan2-e4e", "1", s] for s in ("train", "val", "test")] == [28, 6, 6]
    for label in ("0", "1"):  # tiny groups still get one val and one test item
        assert splits["faces140k-sample", label, "val"] >= 1 and splits["faces140k-sample", label, "test"] >= 1
    # CIPLAB keeps its own split
    with open(IMAGE_FORENSICS.parent / "ciplab-faces" / "manifest.csv", newline="") as handle:
        ciplab = Counter(r["split"] for r in csv.DictReader(handle) if r["label"] == "0")
    assert {s: splits["ciplab-faces", "0", s] for s in ciplab} == ciplab
    resolved = [os.path.normpath(out.parent / r["path"]) for r in rows]
    assert len(set(resolved)) == len(resolved)  # so no path is in two splits
    assert all(Path(p).is_file() for p in resolved[:50] + resolved[-50:])
    again = read_layout("image-forensics", IMAGE_FORENSICS)  # fixed: the same split every time
    assert [s.split for s in again] == [s.split for s in manifest]
    reread = Manifest.read(out)  # a plain manifest reader sees the generator as method
    assert {family_of(s.method, s.label) for s in reread} == set(FAMILIES)


@needs_data
def test_layout_options(indexed):
    plain = read_layout("image-forensics", IMAGE_FORENSICS, ciplab="none", holdout="styleclip-stylegan2-e4e")
    assert "ciplab-faces" not in {s.dataset for s in plain}
    assert {s.split for s in plain if s.dataset == "styleclip-stylegan2-e4e"} == {"test"}
    other = read_layout("image-forensics", IMAGE_FORENSICS, seed="1")
    assert [s.split for s in other] != [s.split for s in indexed[0]]


def test_family_names():
    assert family_of("stable-diffusion-1.4") == "diffusion"
    assert family_of("stylegan2-ffhq(e4e-inversion)") == family_of("stylegan1(140k)") == "gan"
    assert family_of("real-cifar10") == family_of("original") == family_of(None, 0) == "real"
    assert family_of("mystery-model") is None


def test_stratified_split_pure_and_per_group():
    keys = [("a", 0)] * 20 + [("a", 1)] * 20 + [("b", 1)] * 3
    ids = [f"f{i:03d}" for i in range(len(keys))]
    first = stratified_split(keys, ids, seed=3)
    assert first == stratified_split(keys, ids, seed=3)
    assert Counter(first[:20]) == Counter(first[20:40]) == {"train": 14, "val": 3, "test": 3}
    assert Counter(first[40:]) == {"train": 1, "val": 1, "test": 1}


# --------------------------------------------------------------------------- views


def _picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_image_views_are_crops_of_a_large_picture_not_resizes():
    picture = _picture(1024, 1024)
    views = image_views(picture, 224, 5)
    assert len(views) == 5 and all(v.shape == (224, 224, 3) and v.dtype == np.uint8 for v in views)
    offsets = view_offsets(1024, 1024, 224, 5)
    assert offsets == [(400, 400), (0, 0), (0, 800), (800, 0), (800, 800)]
    for view, (top, left) in zip(views, offsets):  # pixel for pixel a slice of the original
        np.testing.assert_array_equal(view, picture[top:top + 224, left:left + 224])
    again = image_views(picture.copy(), 224, 5)
    assert all(np.array_equal(a, b) for a, b in zip(views, again))  # deterministic
    np.testing.assert_array_equal(centre_view(picture, 224), views[0])


def test_image_views_counts_and_small_pictures():
    picture = _picture(300, 500)
    assert len(image_views(picture, 128, 1)) == 1
    many = image_views(picture, 128, 10)
    assert len(many) == 10 and all(v.shape == (128, 128, 3) for v in many)
    assert len({v.tobytes() for v in many}) == 10  # distinct positions on a picture this size
    tiny = _picture(32, 32)  # a CIFAKE thumbnail is upsampled, aspect kept, to the view size
    up = fit_min_side(tiny, 96)
    assert up.shape == (96, 96, 3)
    assert all(v.shape == (96, 96, 3) for v in image_views(tiny, 96, 5))
    assert fit_min_side(picture, 128) is picture  # large enough: untouched
    with pytest.raises(ValueError):
        image_views(picture.astype(np.float32), 128)


def _manifest(tmp_path: Path, sizes: list[tuple[int, int]]) -> Manifest:
    samples = []
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(_picture(h, w, seed=i)).save(tmp_path / f"{i}.png")
        samples.append(Sample(f"{i}.png", i % 2, method="stylegan2" if i % 2 else "original"))
    return Manifest(samples, tmp_path)


def test_training_samples_are_random_native_crops(tmp_path):
    manifest = _manifest(tmp_path, [(200, 260), (64, 64)])
    spec = PreprocessSpec(input_size=64, subject="image")
    train = WholeImageDataset(manifest, spec, seed=5, train=True)
    original = np.asarray(Image.open(tmp_path / "0.png"))
    views = []
    for epoch in range(4):
        train.set_epoch(epoch)
        view = train.view(0)
        hits = [(t, l) for t in range(200 - 63) for l in range(260 - 63)
                if view[0, 0].tolist() == original[t, l].tolist() and np.array_equal(view, original[t:t + 64, l:l + 64])]
        assert hits, "a training sample must be a crop of the native picture"
        views.append(view.tobytes())
    assert len(set(views)) > 1  # a fresh offset each epoch ...
    train.set_epoch(2)
    assert train.view(0).tobytes() == views[2]  # ... reproducible from (seed, epoch, index)
    val = WholeImageDataset(manifest, spec)
    np.testing.assert_array_equal(val.view(0), centre_view(original, 64))
    item = train[1]
    assert tuple(item["image"].shape) == (3, 64, 64) and int(item["family"]) == FAMILIES.index("gan")


def test_face_dataset_takes_centre_crop_for_image_subject(tmp_path):
    from fakescope.data.dataset import FaceCropDataset

    manifest = _manifest(tmp_path, [(200, 260)])
    image_spec = PreprocessSpec(input_size=64, subject="image", mean=(0, 0, 0), std=(1, 1, 1))
    item = FaceCropDataset(manifest, image_spec)[0]["image"].numpy()
    original = np.asarray(Image.open(tmp_path / "0.png"))
    np.testing.assert_allclose(item.transpose(1, 2, 0) * 255, centre_view(original, 64), atol=1e-3)


# --------------------------------------------------------------------------- a tiny training run


def _tiny_manifest(tmp_path: Path) -> Path:
    """32 train + 16 val whole images of the shared sets (2 StyleGAN2 1024 px faces among them)."""
    manifest = read_layout("image-forensics", IMAGE_FORENSICS, ciplab="none")
    picked = []
    for split, per_class in (("train", 15), ("val", 7)):
        rows = [s for s in manifest if s.split == split]
        big = [s for s in rows if s.dataset == "styleclip-stylegan2-e4e"][:2]
        for label in (0, 1):
            picked += [s for s in rows if s.label == label and s.dataset == "cifake-sd14"][:per_class]
        picked += big if split == "train" else big[:1] + [s for s in rows if s.dataset == "faces140k-sample"][:1]
    out = tmp_path / "tiny.csv"
    Manifest([Sample(str(manifest.resolve(s.path)), s.label, method=s.method, split=s.split, dataset=s.dataset)
              for s in picked], tmp_path).write(out)
    return out


@needs_data
@pytest.mark.slow
def test_tiny_train_of_a_whole_image_recipe(tmp_path):
    from typer.testing import CliRunner

    from fakescope.cli import app
    from fakescope.models import MODELS

    if "cnnf" not in MODELS:
        pytest.skip("the whole-image architectures (fakescope.models.image_forensics) are not registered yet")
    manifest = _tiny_manifest(tmp_path)
    recipe = ROOT / "configs" / "image" / "cnnf.yaml"
    result = CliRunner().invoke(app, [
        "train", str(recipe), f"data.train.manifest={manifest}", f"data.val.manifest={manifest}",
        "train.epochs=1", "data.batch_size=8", "data.num_workers=0", "preprocess.input_size=64",
        "train.device=cpu", f"output={tmp_path / 'run'}", "model.kwargs.pretrained=false",
    ])
    assert result.exit_code == 0, result.output
    import torch

    saved = torch.load(tmp_path / "run" / "best.pt", map_location="cpu", weights_only=False)
    assert "image" in str(saved)  # the checkpoint's preprocessing says subject image
