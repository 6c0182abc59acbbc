"""The model zoo as a whole: `fakescope models --json`, GFLOPs, every recipe in
configs/zoo, and the trainer hooks papers' extra losses plug into."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.models import MODELS
from fakescope.models.mesonet import Meso4
from fakescope.models.profile import profile
from fakescope.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_models_json_lists_every_architecture_with_size_and_cost():
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listed = {a["name"]: a for a in json.loads(result.output)["architectures"]}
    ours = [(name, cls) for name, cls in MODELS.items() if cls.__module__.startswith("fakescope.")]
    assert len(ours) >= 13  # other test modules register tiny test architectures too
    assert set(listed) == {name for name, _ in ours}  # listed from models/catalog.json
    for name, cls in ours:
        entry = listed[name]
        assert entry["input_size"] == cls.default_preprocess.input_size
        assert entry["parameters"] == sum(p.numel() for p in cls().parameters())
        assert entry["gflops"] is not None and entry["gflops"] > 0, name
        assert entry["summary"]


def test_gflops_count_multiply_accumulates():
    # Meso-4 at 256 px, by hand (output pixels x out channels x in channels x kernel area):
    # conv1 256^2*8*3*9 + conv2 128^2*8*8*25 + conv3 64^2*16*8*25 + conv4 32^2*16*16*25 + fc 1024*16 + 16
    by_hand = 256**2 * 8 * 3 * 9 + 128**2 * 8 * 8 * 25 + 64**2 * 16 * 8 * 25 + 32**2 * 16 * 16 * 25 + 1024 * 16 + 16
    assert profile("meso4")["gflops"] == pytest.approx(by_hand / 1e9, rel=1e-6)
    # the count scales with the input: a conv net at twice the side costs ~4x
    assert profile("efficientnet_lite0", 448)["gflops"] == pytest.approx(4 * profile("efficientnet_lite0")["gflops"], rel=0.02)


def _zoo_recipes() -> list[Path]:
    return sorted(p for p in (CONFIGS / "zoo").glob("*.yaml") if p.name != "small_shared.yaml")


def test_every_zoo_recipe_loads_and_trains_on_ciplab(monkeypatch):
    monkeypatch.delenv("FAKESCOPE_SHARED", raising=False)
    recipes = _zoo_recipes()
    assert recipes, "configs/zoo holds no recipes"
    for path in recipes:
        cfg = load_config(path)
        assert cfg.model.arch in MODELS, path.name
        assert cfg.data.train.split == "train" and cfg.data.val.split == "val", path.name
        assert cfg.resolve_path(cfg.data.train.manifest) == CONFIGS.parents[1] / "shared/data/ciplab-faces/manifest.csv"
    # the shared small recipe takes any architecture by override
    for arch in MODELS:
        assert load_config(CONFIGS / "zoo/small_shared.yaml", [f"model.arch={arch}"]).model.arch == arch


class _HookedMeso4(Meso4):
    """Meso-4 with a constant extra loss term and an augmentation that records its calls."""

    calls: list = []

    def training_losses(self, out, labels):
        assert labels.shape == out["logits"].shape
        return {"constant": out["logits"].sum() * 0.0 + 5.0}

    def augment_training_batch(self, images, labels):
        type(self).calls.append((tuple(images.shape), torch.is_grad_enabled()))
        return torch.flip(images, dims=[3])


@pytest.fixture
def hooked_arch(register_model):
    _HookedMeso4.calls = []
    return register_model("test_hooked_meso4", _HookedMeso4)


def test_trainer_adds_model_losses_and_runs_its_augmentation(tmp_path, shared_dir, hooked_arch):
    from fakescope.train import train

    root = shared_dir / "data/ciplab-faces"
    rows = list(csv.DictReader(open(root / "manifest.csv", newline="")))
    with open(tmp_path / "m.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for split in ("train", "val"):
            for label in ("0", "1"):
                for r in [r for r in rows if r["split"] == split and r["label"] == label][:4]:
                    writer.writerow([str(root / r["path"]), label, split])
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(json.dumps({
        "model": {"arch": hooked_arch},
        "data": {"train": {"manifest": "m.csv", "split": "train"}, "val": {"manifest": "m.csv", "split": "val"},
                 "batch_size": 4},
        "train": {"epochs": 1},
        "output": "run",
    }))
    result = train(load_config(cfg_path))
    row = next(csv.DictReader(open(result.output_dir / "metrics.csv")))
    # train loss = BCE (about 0.7) + the model's constant 5; validation loss is BCE alone
    assert 5.0 < float(row["train_loss"]) < 7.0
    assert float(row["val_loss"]) < 2.0
    # two training batches of 4, each augmented once, with gradients off
    assert _HookedMeso4.calls == [((4, 3, 256, 256), False)] * 2
