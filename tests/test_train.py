"""`fakescope train`: config errors, outputs, exact resume, torchrun DDP, SAM,
schedules and augmentation. Real Meso-4 at 256 px on 16 CIPLAB train and 8 val
images, batch 8, so a run takes seconds on a 2-core CPU."""
from __future__ import annotations

import csv
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.errors import ModelLoadError
from fakescope.models.base import DetectorModel, PreprocessSpec
from fakescope.train.config import ConfigError, TrainConfig, load_config, validate_config

CIPLAB = "data/ciplab-faces"


def _subset_manifest(shared_dir: Path, folder: Path) -> Path:
    """8 real + 8 fake train, 4 + 4 val and 2 + 2 test CIPLAB faces, by absolute path."""
    root = shared_dir / CIPLAB
    rows = list(csv.DictReader(open(root / "manifest.csv", newline="")))
    picked = []
    for split, per_class in (("train", 8), ("val", 4), ("test", 2)):
        for label in ("0", "1"):
            picked += [r for r in rows if r["split"] == split and r["label"] == label][:per_class]
    path = folder / "manifest.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for r in picked:
            writer.writerow([str(root / r["path"]), r["label"], r["split"]])
    return path


BASE = {
    "model": {"arch": "meso4"},
    "data": {"train": {"manifest": "manifest.csv", "split": "train"},
             "val": {"manifest": "manifest.csv", "split": "val"}, "batch_size": 8},
    "augment": {"transforms": [{"name": "HorizontalFlip", "p": 0.5},
                               {"name": "ImageCompression", "p": 0.5, "params": {"quality_range": [40, 90]}}],
                "face_part_cutout": {"p": 0.3}},
    "optim": {"name": "adamw", "lr": 1e-3},
    "schedule": {"name": "cosine_restarts", "t0": 1},
    "train": {"epochs": 2, "log_every": 1},
    "output": "run",
}


def _write(folder: Path, data: dict, name: str = "cfg.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_dir) -> Path:
    folder = tmp_path_factory.mktemp("train")
    _subset_manifest(shared_dir, folder)
    _write(folder, BASE)
    return folder


def _train(cfg: Path, *overrides: str, resume: bool = False):
    from fakescope.train import train

    return train(load_config(cfg, list(overrides)), resume=resume)


@pytest.fixture(scope="module")
def run_a(workdir):
    """The reference: two epochs, uninterrupted."""
    return _train(workdir / "cfg.yaml", "output=run_a")


# ---------------------------------------------------------------------------- (1) config


def _error(tmp_path: Path, data: dict, *overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, data), list(overrides))
    return info.value.message


def test_config_errors_name_the_key(tmp_path):
    assert "optim.lrr: unknown key; did you mean lr?" in _error(tmp_path, BASE, "optim.lrr=0.1")
    assert "optimizer: unknown key; did you mean optim?" in _error(tmp_path, {**BASE, "optimizer": {}})
    assert "data.batch_size: Input should be greater than 0" in _error(tmp_path, BASE, "data.batch_size=0")
    assert "did you mean adamw?" in _error(tmp_path, BASE, "optim.name=adam")
    assert "schedule.name: unknown choice 'cosine'; did you mean cosine_restarts?" in _error(tmp_path, BASE, "schedule.name=cosine")
    assert "schedule.patience: unknown key" in _error(tmp_path, BASE, "schedule.patience=3")
    assert "model.arch: Unknown detector architecture 'meso5'" in _error(tmp_path, BASE, "model.arch=meso5")
    assert "model.kwargs.dropuot: unknown key for meso4; did you mean dropout?" in _error(tmp_path, BASE, "model.kwargs.dropuot=0.2")
    assert "augment.transforms[1].name: 'ImageCompresion' is not an albumentations transform; did you mean ImageCompression?" in \
        _error(tmp_path, BASE, "augment.transforms.1.name=ImageCompresion")
    assert "augment.transforms[1].params.quality_rang: unknown key for ImageCompression; did you mean quality_range?" in \
        _error(tmp_path, BASE, "augment.transforms.1.params.quality_rang=[40,90]")
    assert "augment.transforms[1].params.quality_range:" in _error(tmp_path, BASE, "augment.transforms.1.params.quality_range=[1,400]")
    assert "augment.transforms[0].p: Input should be less than or equal to 1" in _error(tmp_path, BASE, "augment.transforms.0.p=2")
    assert "data.val.split: 'test' is held out" in _error(tmp_path, BASE, "data.val.split=test")
    assert "data.train: required key missing" in _error(tmp_path, {**BASE, "data": {"val": BASE["data"]["val"]}})
    assert "train.amp: amp must be auto, true or false" in _error(tmp_path, BASE, "train.amp=maybe")
    assert "expected dotted.key=value" in _error(tmp_path, BASE, "optim.lr")
    (tmp_path / "bad.yaml").write_text("model: {arch: meso4\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_cli_config_error_is_one_line_exit_2(workdir):
    result = CliRunner().invoke(app, ["train", str(workdir / "cfg.yaml"), "optim.lrr=0.1"])
    assert result.exit_code == 2
    text = result.output.strip()
    assert "optim.lrr: unknown key; did you mean lr?" in text
    assert "Traceback" not in text and len(text.splitlines()) == 1


def test_overrides_paths_and_derived_seed(tmp_path, monkeypatch):
    cfg = load_config(_write(tmp_path, BASE), ["optim.lr=3e-4", "augment.transforms.0.p=0.25", "schedule=plateau",
                                               "data.balanced=true"])
    assert cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.augment.transforms[0].p == 0.25 and cfg.schedule.name == "plateau" and cfg.data.balanced
    assert cfg.resolve_path(cfg.data.train.manifest) == tmp_path / "manifest.csv"  # relative to the config's folder
    monkeypatch.delenv("FAKESCOPE_TEST_ROOT", raising=False)
    assert cfg.resolve_path("${FAKESCOPE_TEST_ROOT:-../shared}/x.csv") == tmp_path.parent / "shared" / "x.csv"
    monkeypatch.setenv("FAKESCOPE_TEST_ROOT", "/data")
    assert cfg.resolve_path("${FAKESCOPE_TEST_ROOT}/x.csv") == Path("/data/x.csv")
    assert "FAKESCOPE_UNSET_VAR is not set" in _error(tmp_path, {**BASE, "output": "${FAKESCOPE_UNSET_VAR}/run"})

    seed = load_config(_write(tmp_path, BASE)).effective_seed
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert load_config(_write(other, BASE)).effective_seed == seed  # same recipe, any folder: same seed
    assert load_config(_write(tmp_path, BASE)).effective_seed == seed
    assert load_config(_write(tmp_path, BASE), ["optim.lr=3e-4"]).effective_seed != seed
    assert load_config(_write(tmp_path, BASE), ["data.batch_size=4"]).effective_seed != seed
    # Operational keys leave it alone: a longer run or another output is the same run.
    assert load_config(_write(tmp_path, BASE), ["train.epochs=7", "output=x", "data.num_workers=1"]).effective_seed == seed
    assert load_config(_write(tmp_path, BASE), ["seed=123"]).effective_seed == 123
    explicit_defaults = {**BASE, "data": {**BASE["data"], "num_workers": 0, "balanced": False}}
    assert validate_config(explicit_defaults).effective_seed == seed  # canonical: defaults spelt out or not


def test_repository_recipes_load(monkeypatch):
    monkeypatch.delenv("FAKESCOPE_SHARED", raising=False)
    configs = Path(__file__).resolve().parents[1] / "configs"
    for name, arch in (("mesoinception4_ciplab.yaml", "mesoinception4"), ("meso4_ciplab.yaml", "meso4")):
        cfg = load_config(configs / name)
        assert cfg.model.arch == arch and cfg.data.train.split == "train" and cfg.data.val.split == "val"
        # ${FAKESCOPE_SHARED:-../../shared}: the shared folder beside the repository
        assert cfg.resolve_path(cfg.data.train.manifest) == configs.parents[1] / "shared/data/ciplab-faces/manifest.csv"


# ---------------------------------------------------------------------------- (2) outputs


def test_training_writes_checkpoint_metrics_and_tensorboard(run_a, workdir, shared_dir):
    import fakescope
    from fakescope.models import load_checkpoint

    out = workdir / "run_a"
    assert run_a.epochs_completed == 2 and run_a.global_step == 4 and not run_a.stopped_early
    detector = load_checkpoint(out / "best.pt")
    prov = detector.provenance
    assert detector.arch == "meso4" and detector.preprocess.input_size == 256
    assert prov["epoch"] in (1, 2) and prov["selected_on"] == "val_auc" and prov["val"]["split"] == "val"
    assert prov["seed"] == load_config(workdir / "cfg.yaml").effective_seed
    assert prov["config"]["model"]["arch"] == "meso4" and prov["val"]["n"] == 8

    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"] and list(rows[0]) == \
        ["epoch", "step", "train_loss", "val_loss", "val_auc", "val_auc_mean", "val_acc", "lr", "seconds"]
    assert max(float(r["val_auc"]) for r in rows) == pytest.approx(prov["val"]["auc"])
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "last.pt").is_file() and (out / "config.yaml").is_file()
    with pytest.raises(ModelLoadError, match=r"a training state .*best\.pt"):  # last.pt is for --resume
        load_checkpoint(out / "last.pt")

    faces = sorted((shared_dir / CIPLAB / "fake").glob("*.jpg"))[:2]
    threads = torch.get_num_threads()
    try:
        report = fakescope.scan(faces, crops=True, model=str(out / "best.pt"))
    finally:
        # the CPU scanner sets torch's thread count to every core; the resume tests below
        # compare runs bit for bit, and another thread count sums in another order
        torch.set_num_threads(threads)
    assert [r.status for r in report.results] == ["ok", "ok"]
    assert all(0.0 <= r.score <= 1.0 for r in report.results)


def test_mean_dataset_auc_weighs_each_dataset_once():
    """A small val set of another domain counts as much as a large one: pooled AUC and
    the per-dataset mean disagree on which of two epochs is better."""
    from fakescope.train.trainer import _is_better, _mean_dataset_auc

    # 8 rows of dataset A (perfectly separated), 2 of dataset B (inverted).
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 1])
    datasets = ["a"] * 8 + ["b"] * 2
    probs = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.05])
    assert _mean_dataset_auc(labels, probs, datasets) == pytest.approx((1.0 + 0.0) / 2)
    # a dataset with one class only has no AUC and is left out of the mean
    assert _mean_dataset_auc(labels, probs, ["a"] * 8 + ["c", "d"]) == pytest.approx(1.0)
    first = {"val_auc": 0.9, "val_auc_mean": 0.5, "val_loss": 0.5}
    second = {"val_auc": 0.8, "val_auc_mean": 0.7, "val_loss": 0.5}
    assert not _is_better(second, first, "val_auc") and _is_better(second, first, "val_auc_mean")


def test_select_mean_dataset_auc_picks_best_by_it(workdir):
    out = workdir / "run_select"
    result = _train(workdir / "cfg.yaml", "output=run_select", "train.select=mean_dataset_auc", "train.epochs=1")
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    prov = torch.load(out / "best.pt", map_location="cpu", weights_only=False)["provenance"]
    assert result.epochs_completed == 1 and prov["selected_on"] == "val_auc_mean"
    # one dataset in this val manifest: the mean over datasets is its AUC
    assert float(rows[0]["val_auc_mean"]) == pytest.approx(float(rows[0]["val_auc"]))
    assert prov["val"]["auc_mean_over_datasets"] == pytest.approx(float(rows[0]["val_auc_mean"]))


# ---------------------------------------------------------------------------- (3) exact resume


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _rows(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(path))]


def _assert_same_run(a: Path, b: Path) -> None:
    wa, wb = _weights(a / "last.pt"), _weights(b / "last.pt")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    assert _rows(a / "metrics.csv") == _rows(b / "metrics.csv")
    best_a = torch.load(a / "best.pt", weights_only=True)["state_dict"]
    best_b = torch.load(b / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)


def test_resume_after_an_epoch_matches_uninterrupted(run_a, workdir):
    cfg = str(workdir / "cfg.yaml")
    runner = CliRunner()
    first = runner.invoke(app, ["train", cfg, "output=run_b", "train.epochs=1"])
    assert first.exit_code == 0, first.output
    assert len(_rows(workdir / "run_b" / "metrics.csv")) == 1
    again = runner.invoke(app, ["train", cfg, "output=run_b"])  # a fresh start must not overwrite a run
    assert again.exit_code == 2 and "--resume" in again.output
    changed = runner.invoke(app, ["train", cfg, "output=run_b", "optim.lr=0.01", "--resume"])
    assert changed.exit_code == 2 and "optim.lr" in changed.output
    resumed = runner.invoke(app, ["train", cfg, "output=run_b", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    _assert_same_run(workdir / "run_a", workdir / "run_b")


def test_resume_mid_epoch_matches_uninterrupted(run_a, workdir):
    stopped = _train(workdir / "cfg.yaml", "output=run_c", "train.max_steps=3")  # stops inside epoch 2
    assert stopped.stopped_early and stopped.global_step == 3 and stopped.epochs_completed == 1
    state = torch.load(workdir / "run_c" / "last.pt", weights_only=True)
    assert state["progress"]["batches_done"] == 1
    _train(workdir / "cfg.yaml", "output=run_c", resume=True)
    _assert_same_run(workdir / "run_a", workdir / "run_c")


def test_linear_warmup_scales_each_step_and_leaves_the_schedule_alone():
    from fakescope.train.trainer import LinearWarmup

    def run(warmup_steps: int):
        w = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.SGD([w], lr=0.1)
        schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=10)
        warmup = LinearWarmup(optimizer, warmup_steps)
        positions, scheduled = [], []
        for step in range(6):
            optimizer.zero_grad()
            w.sum().backward()  # gradient 1: each step moves w by minus the rate it ran at
            scheduled.append(optimizer.param_groups[0]["lr"])
            with warmup.scaled(step):
                optimizer.step()
            schedule.step()
            positions.append(w.item())
        return positions, scheduled

    plain, scheduled = run(0)
    warmed, scheduled_warmed = run(4)
    assert scheduled_warmed == scheduled  # the schedule never sees the scaling
    factors = [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    expected = np.cumsum([-lr * f for lr, f in zip(scheduled, factors)])
    assert warmed == pytest.approx(expected.tolist(), abs=1e-7)
    assert plain == pytest.approx(np.cumsum([-lr for lr in scheduled]).tolist(), abs=1e-7)


def test_warmup_in_a_run_logs_the_rate_it_steps_at_and_resumes_exactly(run_a, workdir):
    stopped = _train(workdir / "cfg.yaml", "output=run_w", "optim.warmup_steps=4", "train.max_steps=1")
    assert stopped.stopped_early and stopped.global_step == 1
    _train(workdir / "cfg.yaml", "output=run_w", "optim.warmup_steps=4", resume=True)
    _train(workdir / "cfg.yaml", "output=run_w_whole", "optim.warmup_steps=4")
    _assert_same_run(workdir / "run_w_whole", workdir / "run_w")
    rows = _rows(workdir / "run_w" / "metrics.csv")
    # 2 steps an epoch; cosine t0 = 1 epoch restarts at 1e-3 after step 2, which step 3 of 4 runs at 3/4 of
    assert float(rows[0]["lr"]) == pytest.approx(0.75e-3) and float(rows[1]["lr"]) == pytest.approx(1e-3)
    a = torch.load(workdir / "run_a" / "last.pt", weights_only=True)["model"]
    w = torch.load(workdir / "run_w" / "last.pt", weights_only=True)["model"]
    assert any(not torch.equal(a[k], w[k]) for k in a)  # the warm-up changed the training


class _TinyNoBatchNorm(DetectorModel):
    """No BatchNorm and a per-sample mean loss: micro-batching must not change its step."""

    default_preprocess = PreprocessSpec(input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(8, 1)

    train_batches: list = []  # the batch size of every training-mode forward pass

    def forward(self, x):
        if self.training:
            type(self).train_batches.append(int(x.shape[0]))
        return {"logits": self.fc(self.body(x).mean(dim=(2, 3))).squeeze(1)}

    def cam_layer(self):
        return self.body[-1]


@pytest.fixture
def no_bn_arch(register_model):
    _TinyNoBatchNorm.train_batches = []
    return register_model("_test_no_bn", _TinyNoBatchNorm)


@pytest.mark.parametrize("optimiser", ["adamw", "sam"])
def test_micro_batches_give_the_full_batch_step(workdir, no_bn_arch, optimiser):
    """batch 8 in chunks of 3, 3 and 2 (unequal shares): the same weights after 2 epochs as
    the whole batch at once, for AdamW and for SAM (whose second pass is chunked too)."""
    common = [f"model.arch={no_bn_arch}", f"optim.name={optimiser}", "seed=7", "augment.face_part_cutout.p=0"]
    _train(workdir / "cfg.yaml", *common, f"output=run_whole_{optimiser}")
    _train(workdir / "cfg.yaml", *common, "train.micro_batch=3", f"output=run_micro_{optimiser}")
    whole = _weights(workdir / f"run_whole_{optimiser}" / "last.pt")
    micro = _weights(workdir / f"run_micro_{optimiser}" / "last.pt")
    assert whole.keys() == micro.keys()
    for key in whole:
        assert torch.allclose(whole[key], micro[key], atol=1e-6), (key, (whole[key] - micro[key]).abs().max())
    rows_whole = _rows(workdir / f"run_whole_{optimiser}" / "metrics.csv")
    rows_micro = _rows(workdir / f"run_micro_{optimiser}" / "metrics.csv")
    for a, b in zip(rows_whole, rows_micro):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), abs=1e-6)
    passes = 2 if optimiser == "sam" else 1
    assert _TinyNoBatchNorm.train_batches == [8] * 4 * passes + [3, 3, 2] * 4 * passes  # 2 epochs of 2 steps each


def test_micro_batches_under_torchrun(workdir):
    """Two processes, 8 faces each, chunks of 4: gradients sync once a step (no_sync before)."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
        "-m", "fakescope", "train", str(workdir / "cfg.yaml"), "output=run_ddp_micro", "train.epochs=1",
        "train.device=cpu", "train.micro_batch=4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = list(csv.DictReader(open(workdir / "run_ddp_micro" / "metrics.csv")))
    assert len(rows) == 1 and rows[0]["step"] == "1" and math.isfinite(float(rows[0]["train_loss"]))


# ---------------------------------------------------------------------------- (4) torchrun DDP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_cpu(workdir):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
        "-m", "fakescope", "train", str(workdir / "cfg.yaml"), "output=run_ddp", "train.epochs=1", "train.device=cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = workdir / "run_ddp"
    prov = torch.load(out / "best.pt", weights_only=True)["provenance"]
    assert prov["world_size"] == 2 and prov["epoch"] == 1
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert len(rows) == 1 and rows[0]["step"] == "1"  # 16 images / 2 processes / batch 8
    state = torch.load(out / "last.pt", weights_only=True)
    assert len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["rng"]["torch"], state["ranks"][1]["rng"]["torch"])


# ---------------------------------------------------------------------------- (5) SAM, schedules, augmentation


def test_sam_step_lowers_loss_and_follows_the_definition():
    from fakescope.train.sam import SAM

    torch.manual_seed(0)
    x, y = torch.randn(32, 10), (torch.rand(32) > 0.5).float()
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    reference = [p.detach().clone() for p in model.parameters()]

    def loss_fn():
        return torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), y)

    lr, rho = 0.5, 0.05
    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=rho, lr=lr, momentum=0.0)
    before = loss_fn()
    optimizer.zero_grad()
    before.backward()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        assert loss_fn() < before

    # By hand: w - lr * grad L(w + rho * g / ||g||)
    params = [p.detach().clone().requires_grad_(True) for p in reference]
    probe = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    with torch.no_grad():
        for p, w in zip(probe.parameters(), params):
            p.copy_(w)
    g = torch.autograd.grad(torch.nn.functional.binary_cross_entropy_with_logits(probe(x).squeeze(1), y), list(probe.parameters()))
    norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    with torch.no_grad():
        for p, gi in zip(probe.parameters(), g):
            p.add_(rho * gi / norm)
    g2 = torch.autograd.grad(torch.nn.functional.binary_cross_entropy_with_logits(probe(x).squeeze(1), y), list(probe.parameters()))
    for p, w, gi in zip(model.parameters(), reference, g2):
        assert torch.allclose(p, w - lr * gi, atol=1e-6)


@pytest.mark.parametrize("schedule", [
    {"name": "none"}, {"name": "cosine_restarts", "t0": 1}, {"name": "onecycle"}, {"name": "plateau", "patience": 0},
])
def test_schedules_construct_step_and_round_trip(schedule, tmp_path):
    import io

    from fakescope.train.trainer import BATCHWISE_SCHEDULES, build_optimizer, build_scheduler

    cfg = validate_config({**BASE, "schedule": schedule, "optim": {"name": "sam", "base": "sgd", "lr": 0.1}})
    model = torch.nn.Linear(4, 1)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, steps_per_epoch=4)
    x = torch.randn(2, 4)

    def closure():
        optimizer.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss

    lrs = []
    for step in range(8):
        closure()
        optimizer.step(closure)
        if schedule["name"] in BATCHWISE_SCHEDULES:
            scheduler.step()
        elif schedule["name"] == "plateau" and step % 4 == 3:
            scheduler.step(1.0)  # a validation loss that never improves
        lrs.append(optimizer.param_groups[0]["lr"])
    if schedule["name"] == "none":
        assert scheduler is None and set(lrs) == {0.1}
    else:
        assert len(set(lrs)) > 1, lrs
        buffer = io.BytesIO()
        torch.save(scheduler.state_dict(), buffer)  # last.pt must load with weights_only=True
        buffer.seek(0)
        scheduler.load_state_dict(torch.load(buffer, weights_only=True))
    assert optimizer.base.param_groups[0]["lr"] == lrs[-1]  # schedules acting on SAM reach its base optimizer
    if schedule["name"] == "plateau":
        assert lrs[-1] == pytest.approx(0.01)


def test_augmentation_from_config_changes_the_image_and_keeps_its_shape(shared_dir):
    from fakescope.data.dataset import load_face_crop
    from fakescope.train.augment import FACE_PART_BOXES, build_augmenter, face_part_cutout

    cfg = validate_config({**BASE, "augment": {
        "transforms": [{"name": n, "p": 1.0, "params": p} for n, p in [
            ("ImageCompression", {"quality_range": [30, 50]}), ("GaussNoise", {"std_range": [0.05, 0.1]}),
            ("GaussianBlur", {"blur_limit": [3, 5]}), ("Downscale", {"scale_range": [0.5, 0.75]}),
            ("ColorJitter", {}), ("HorizontalFlip", {}), ("CoarseDropout", {})]],
        "face_part_cutout": {"p": 1.0}}})
    augment = build_augmenter(cfg.augment)
    image = load_face_crop(sorted((shared_dir / CIPLAB / "real").glob("*.jpg"))[0], 256)
    augment.reseed(1, 0, 5)
    out = augment(image)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    augment.reseed(1, 0, 5)
    assert np.array_equal(augment(image), out)  # (seed, epoch, index) decides everything
    augment.reseed(1, 1, 5)
    assert not np.array_equal(augment(image), out)

    x0, y0, x1, y1 = FACE_PART_BOXES["mouth"]
    cut = face_part_cutout(image, "mouth", np.random.default_rng(0), jitter=0.0)
    assert (cut[int(y0 * 256) + 1:int(y1 * 256) - 1, int(x0 * 256) + 1:int(x1 * 256) - 1] == 0).all()
    assert np.array_equal(cut[:int(y0 * 256) - 1], image[:int(y0 * 256) - 1])
    assert validate_config(BASE).augment.face_part_cutout.parts == ["eyes", "nose", "mouth"]
    assert isinstance(cfg, TrainConfig)
