"""The MesoNet importer reproduces the published Keras models on real data."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from fakescope import scan
from fakescope.errors import ModelLoadError
from fakescope.importers import import_mesonet
from fakescope.models import build_model, load_checkpoint
from fakescope.models.mesonet import import_keras_mesonet
from fakescope.models.zoo import WEIGHTS_DIR, load_detector, zoo_entries


def _load_face(path) -> torch.Tensor:
    image = Image.open(path).convert("RGB").resize((256, 256), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _rows(folder):
    with open(folder / "manifest.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def meso4_df(shared_dir):
    return import_keras_mesonet(shared_dir / "weights/mesonet/Meso4_DF.h5", "meso4")


def test_meso4_df_classifies_the_authors_samples(shared_dir, meso4_df):
    folder = shared_dir / "data/mesonet-samples"
    rows = _rows(folder)
    with torch.no_grad():
        p_fake = torch.sigmoid(meso4_df(torch.stack([_load_face(folder / r["path"]) for r in rows]))["logits"])
    for row, p in zip(rows, p_fake.tolist()):
        assert (p >= 0.5) == (row["label"] == "1"), (row["path"], p)


def test_meso4_df_auc_on_ffpp_deepfakes(shared_dir, meso4_df):
    folder = shared_dir / "data/ffpp-crops"
    rows = [r for r in _rows(folder) if r["path"].startswith("deepfakes/")]
    with torch.no_grad():
        p_fake = torch.sigmoid(meso4_df(torch.stack([_load_face(folder / r["path"]) for r in rows]))["logits"])
    labels = [int(r["label"]) for r in rows]
    assert len(set(labels)) == 2
    assert roc_auc_score(labels, p_fake.numpy()) >= 0.90


def test_scan_of_crops_folder_matches_published_quality(shared_dir):
    """End to end through `scan(..., crops=True)` with the shipped default (Meso-4 DF)."""
    folder = shared_dir / "data/ffpp-crops/deepfakes"
    report = scan(folder, crops=True, model="meso4-df")
    assert all(r.status == "ok" for r in report.results) and len(report.results) == 30
    labels = [1 if "/fake/" in r.path else 0 for r in report.results]
    assert roc_auc_score(labels, [r.score for r in report.results]) >= 0.90


@pytest.mark.parametrize("name", sorted(n for n, e in zoo_entries().items() if e["arch"].startswith("meso")))
def test_shipped_weights_are_the_converted_published_ones(shared_dir, name, tmp_path):
    entry = zoo_entries()[name]
    shipped = load_detector(name)  # also verifies the sha256 in zoo.json
    h5_name = entry["source"].split()[0]
    fresh = import_mesonet(shared_dir / "weights/mesonet" / h5_name, entry["arch"], tmp_path / "fresh.pt")
    assert len(fresh) == 64
    reconverted = load_checkpoint(tmp_path / "fresh.pt")
    for key, value in reconverted.model.state_dict().items():
        assert torch.equal(value, shipped.model.state_dict()[key]), key
    assert shipped.preprocess.input_size == 256 and shipped.preprocess.margin == 1.3


def test_published_convention_is_flipped_to_p_fake(shared_dir, meso4_df):
    """The Keras output unit is P(real); ours must be its complement."""
    import h5py

    with h5py.File(shared_dir / "weights/mesonet/Meso4_DF.h5") as h5:
        keras_bias = float(np.asarray(h5["dense_4/dense_4/bias:0"])[0])
    assert meso4_df.fc2.bias.item() == pytest.approx(-keras_bias)


def test_wrong_architecture_is_a_clear_error(shared_dir):
    with pytest.raises(ModelLoadError, match="not mesoinception4"):
        import_keras_mesonet(shared_dir / "weights/mesonet/Meso4_DF.h5", "mesoinception4")


def test_unknown_model_name_suggests_the_closest(tmp_path):
    with pytest.raises(ModelLoadError, match="meso4-df"):
        load_detector("meso4_df")
    with pytest.raises(ModelLoadError, match="not a fakescope checkpoint"):
        bogus = tmp_path / "bogus.pt"
        torch.save({"weights": torch.zeros(1)}, bogus)
        load_detector(bogus)


def test_architectures_build_and_output_the_contract():
    for arch in ("meso4", "mesoinception4"):
        model = build_model(arch).eval()
        out = model(torch.rand(2, 3, 256, 256))
        assert out["logits"].shape == (2,)
        assert out["features"].shape == (2, 16)


def test_zoo_index_lists_files_that_exist():
    for name, entry in zoo_entries().items():
        assert (WEIGHTS_DIR / entry["file"]).is_file(), name
        assert json.dumps(entry)  # serialisable for `fakescope models --json`
