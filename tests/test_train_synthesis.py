"""`fakescope train` with synthetic fakes (data.*.synthesis) and mask supervision
(loss.mask_weight). A tiny test-only detector with a mask head, at 64 px, on 12
real FF++ crops (plus 4 more as an extra_train source, and 4 real + 4 fake for
validation). MTCNN is never run: the landmarks cache lists every face as null,
so masks take SyntheticFakeDataset's ellipse fallback."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console
from torch import nn

from fakescope.models.base import MODELS, DetectorModel, PreprocessSpec
from fakescope.train.config import ConfigError, load_config, validate_config

FFPP = "data/ffpp-crops"
ARCH = "_test_synth_masknet"
ARCH_NO_MASK = "_test_synth_nomasknet"


class _TinyMaskNet(DetectorModel):
    """Two convolutions; logits from the pooled features, mask logits at 1/4 of the input."""

    default_preprocess = PreprocessSpec(input_size=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self, mask_head: bool = True):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, 1)
        self.mask = nn.Conv2d(8, 1, 1) if mask_head else None

    def forward(self, x):
        f = self.body(x)
        out = {"logits": self.fc(f.mean(dim=(2, 3))).squeeze(1)}
        if self.mask is not None:
            out["mask"] = self.mask(f)
        return out

    def cam_layer(self):
        return self.body[-1]


class _TinyNoMaskNet(_TinyMaskNet):
    def __init__(self):
        super().__init__(mask_head=False)


for _name, _cls in ((ARCH, _TinyMaskNet), (ARCH_NO_MASK, _TinyNoMaskNet)):
    if _name not in MODELS:
        MODELS.register(_name)(_cls)


def _write_manifest(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return path


BASE = {
    "model": {"arch": ARCH},
    "data": {
        "train": {"manifest": "train.csv", "synthesis": {"kind": "sbi", "p_fake": 0.5,
                                                         "landmarks_json": "landmarks.json"}},
        "extra_train": [{"manifest": "extra.csv"}],
        "val": {"manifest": "val.csv"},
        "batch_size": 4,
    },
    "augment": {"transforms": [{"name": "HorizontalFlip", "p": 0.5},
                               {"name": "ImageCompression", "p": 0.5, "params": {"quality_range": [40, 90]}},
                               {"name": "Downscale", "p": 0.3, "params": {"scale_range": [0.5, 0.9]}}]},
    "loss": {"mask_weight": 1.0, "mask_target": "mask"},
    "optim": {"name": "adamw", "lr": 3e-3},
    "train": {"epochs": 2, "log_every": 1, "device": "cpu"},
    "output": "run",
}


def _write(folder: Path, data: dict, name: str = "cfg.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_dir) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    root = shared_dir / FFPP
    rows = list(csv.DictReader(open(root / "manifest.csv", newline="")))
    reals = [str(root / r["path"]) for r in rows if r["label"] == "0"]
    fakes = [str(root / r["path"]) for r in rows if r["label"] == "1"]
    # train: 12 reals + 2 real fakes (used only with keep_real_fakes); extra: 4 reals; val: 4 + 4
    _write_manifest(folder / "train.csv", [(p, "0") for p in reals[:12]] + [(p, "1") for p in fakes[:2]])
    _write_manifest(folder / "extra.csv", [(p, "0") for p in reals[12:16]])
    _write_manifest(folder / "val.csv", [(p, "0") for p in reals[-4:]] + [(p, "1") for p in fakes[-4:]])
    # No face listed with landmarks: the ellipse fallback, and MTCNN never runs.
    (folder / "landmarks.json").write_text(json.dumps({p: None for p in reals}))
    _write(folder, BASE)
    return folder


def _train(cfg: Path, *overrides: str, resume: bool = False):
    from fakescope.train import train

    return train(load_config(cfg, list(overrides)), resume=resume)


@pytest.fixture(scope="module")
def run_a(workdir):
    return _train(workdir / "cfg.yaml", "output=run_a")


def _data(**data) -> dict:
    return {**BASE, "data": {**BASE["data"], **data}}


def test_config_keys_are_validated():
    cfg = validate_config(BASE)
    assert cfg.data.train.synthesis.kind == "sbi" and cfg.data.train.synthesis.keep_real_fakes is False
    assert cfg.loss.mask_weight == 1.0 and cfg.data.extra_train[0].split is None and cfg.data.val.synthesis is None
    bad = [
        (_data(train={"manifest": "train.csv", "synthesis": {"kind": "sbi", "pfake": 0.3}}),
         "data.train.synthesis.pfake: unknown key; did you mean p_fake?"),
        (_data(train={"manifest": "train.csv", "synthesis": {"kind": "blend"}}), "data.train.synthesis.kind"),
        (_data(extra_train=[{"manifest": "extra.csv", "spilt": "train"}]),
         "data.extra_train[0].spilt: unknown key; did you mean split?"),
        (_data(extra_train=[{"manifest": "extra.csv", "split": "test"}]), "data.extra_train[0].split"),
        (_data(balanced=True), "data.balanced: not with data.train.synthesis"),
        ({**BASE, "loss": {"mask_wieght": 1.0}}, "loss.mask_wieght: unknown key; did you mean mask_weight?"),
        ({**BASE, "loss": {"mask_target": "edge"}}, "loss.mask_target"),
        ({**BASE, "data": {**BASE["data"], "train": {"manifest": "train.csv"}}},
         "loss.mask_weight: mask supervision needs data.train.synthesis"),
    ]
    for data, expected in bad:
        with pytest.raises(ConfigError, match=None) as info:
            validate_config(data)
        assert expected in str(info.value), str(info.value)
    # New sections at their defaults leave an existing recipe's hash (and derived seed) alone.
    plain = {k: v for k, v in BASE.items() if k != "loss"}
    plain["data"] = {k: v for k, v in BASE["data"].items() if k != "extra_train"}
    plain["data"]["train"] = {"manifest": "train.csv"}
    spelt = {**plain, "loss": {"mask_weight": 0.0}, "data": {**plain["data"], "extra_train": [],
                                                              "train": {"manifest": "train.csv", "synthesis": None}}}
    assert validate_config(plain).config_hash() == validate_config(spelt).config_hash()


def test_synthetic_training_writes_outputs_with_balanced_labels(run_a, workdir):
    out = workdir / "run_a"
    assert run_a.epochs_completed == 2 and (out / "best.pt").is_file() and (out / "last.pt").is_file()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(float(r["train_loss"]) > 0 for r in rows)
    assert float(rows[-1]["val_auc"]) == float(rows[-1]["val_auc"])  # a number: val holds both classes

    from fakescope.train.trainer import _set_epoch, _Distributed, _Run

    cfg = load_config(workdir / "cfg.yaml", ["output=probe"])
    run = _Run(cfg, _Distributed(cfg), Console(stderr=True))
    model, preprocess = run._build_model()
    run._setup_data(preprocess)
    ds = run.train_ds
    assert len(ds) == 16  # 12 train reals + 4 extra; the 2 real fakes are left out by default
    labels, masked = [], 0
    for epoch in range(3):
        _set_epoch(ds, epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["image"].shape == (3, 64, 64) and item["mask"].shape == (1, 64, 64)
            assert item["has_mask"] == 1
            labels.append(int(item["label"]))
            if item["label"] == 1:
                masked += int(item["mask"].sum() > 0)
            else:
                assert item["mask"].sum() == 0
    assert 0.3 < sum(labels) / len(labels) < 0.7 and masked == sum(labels)
    # Fakes change per epoch, but an item is a pure function of (seed, epoch, index).
    _set_epoch(ds, 1)
    first = ds[3]
    _set_epoch(ds, 0)
    ds[3], ds[5]
    _set_epoch(ds, 1)
    again = ds[3]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])
    sequence = [(int(ds[i]["label"]), float(ds[i]["image"].sum())) for i in range(len(ds))]
    _set_epoch(ds, 2)
    assert sequence != [(int(ds[i]["label"]), float(ds[i]["image"].sum())) for i in range(len(ds))]


def test_resume_after_an_epoch_matches_uninterrupted(run_a, workdir):
    cfg = workdir / "cfg.yaml"
    first = _train(cfg, "output=run_b", "train.epochs=1")
    assert first.epochs_completed == 1
    second = _train(cfg, "output=run_b", resume=True)
    assert second.epochs_completed == 2
    a = torch.load(workdir / "run_a" / "last.pt", weights_only=True)["model"]
    b = torch.load(workdir / "run_b" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_keep_real_fakes_boundary_target_and_synthetic_val(workdir):
    """Real fake rows mixed in (zero mask, has_mask 0), the boundary target, and a
    validation set of fixed synthetic fakes made from the val reals."""
    result = _train(workdir / "cfg.yaml", "output=run_c", "train.epochs=1",
                    "data.train.synthesis.keep_real_fakes=true", "loss.mask_target=boundary",
                    "data.val.synthesis={kind: sbi, landmarks_json: landmarks.json}")
    assert result.best_checkpoint is not None

    from fakescope.train.trainer import _Distributed, _Run

    cfg = load_config(workdir / "cfg.yaml", ["output=probe", "data.train.synthesis.keep_real_fakes=true",
                                             "loss.mask_target=boundary"])
    run = _Run(cfg, _Distributed(cfg), Console(stderr=True))
    _, preprocess = run._build_model()
    run._setup_data(preprocess)
    assert len(run.train_ds) == 18
    real_fake = run.train_ds[17]
    assert real_fake["label"] == 1 and real_fake["has_mask"] == 0 and real_fake["mask"].shape == (1, 64, 64)
    # The mask loss leaves has_mask 0 samples out:
    logits = torch.zeros(2, 1, 16, 16)
    target = torch.ones(2, 1, 64, 64)
    only_first = run._mask_loss(logits, target, torch.tensor([1.0, 0.0]))
    assert torch.isclose(only_first, torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:1], torch.zeros(1, 1, 16, 16)))  # boundary of an all-ones mask is 0
    assert run._mask_loss(logits, target, torch.zeros(2)) == 0


def test_mask_weight_without_a_mask_head_is_a_config_error(workdir):
    with pytest.raises(ConfigError, match="needs a model with a mask head"):
        _train(workdir / "cfg.yaml", "output=run_d", f"model.arch={ARCH_NO_MASK}")
    assert not (workdir / "run_d" / "last.pt").exists()


def test_sbi_recipe_loads(monkeypatch):
    monkeypatch.delenv("FAKESCOPE_SHARED", raising=False)
    configs = Path(__file__).resolve().parents[1] / "configs"
    cfg = load_config(configs / "efficientnet_lite0_sbi.yaml")
    assert cfg.model.arch == "efficientnet_lite0" and cfg.model.kwargs == {"imagenet_init": True, "mask_head": True}
    assert cfg.data.train.synthesis.kind == "sbi" and cfg.loss.mask_weight > 0 and cfg.data.val.split == "val"
    assert cfg.resolve_path(cfg.data.extra_train[0].manifest) == configs.parents[1] / "shared/data/ffpp-crops/manifest.csv"
