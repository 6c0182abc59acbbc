"""Training on clips (`data.sequence`): clip datasets, sampling by video or picture,
clip-consistent augmentation, the combined frame + video loss, video metrics, 7:2:1
splits by video, and a real run of ASRID on clips of FF++ face crops with an exact
resume. Small images and inputs keep the file to well under a minute on one core."""
from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import fakescope.models.asrid  # noqa: F401  (registers asrid)
from fakescope.data.dataset import VideoClipDataset
from fakescope.data.manifest import Manifest, Sample
from fakescope.data.splits import SEQUENCE_SPLIT, leaks, shared_videos, split_by_video
from fakescope.models.base import PreprocessSpec
from fakescope.train.augment import Augmenter
from fakescope.train.config import ConfigError, load_config, validate_config
from fakescope.train.trainer import clip_loss, log_loss

SMALL = PreprocessSpec(input_size=16)


def _frames(folder: Path, rows: list[tuple]) -> Manifest:
    """Tiny PNGs whose pixel value encodes the row number (so a clip's rows can be read
    back from its images); rows are (video, frame, label)."""
    samples = []
    for i, (video, frame, label) in enumerate(rows):
        path = folder / f"r{i}.png"
        image = np.full((16, 16, 3), 10 * i % 250, dtype=np.uint8)
        image[:, :4] = 255  # a bright left edge: a horizontal flip moves it to the right
        Image.fromarray(image).save(path)
        samples.append(Sample(path=path.name, label=label, video=video, frame=frame))
    return Manifest(samples, folder)


@pytest.fixture
def videos(tmp_path) -> Manifest:
    # video "a": 10 frames listed out of order; "b": 2 frames; fake "a" is another video; one row without a video
    rows = [("a", f, 0) for f in (3, 0, 9, 1, 2, 8, 4, 7, 5, 6)] + [("b", 1, 0), ("b", 0, 0)] + [("a", 0, 1), (None, None, 1)]
    return _frames(tmp_path, rows)


def _frame_numbers(dataset: VideoClipDataset, rows: list[int]) -> list:
    return [dataset.manifest.samples[r].frame for r in rows]


def test_clips_are_consecutive_frames_of_one_video(videos):
    ds = VideoClipDataset(videos, SMALL, frames=4, mode="video", seed=1)
    assert len(ds.videos) == 4 and len(ds) == 4  # real a, real b, fake a (same id, other label), the loose row
    assert ds.labels() == [0, 0, 1, 1]
    assert ds.short_videos == 3
    for epoch in range(5):
        ds.set_epoch(epoch)
        frames = _frame_numbers(ds, ds.clip_rows(0))
        assert frames == list(range(frames[0], frames[0] + 4))  # consecutive, in `frame` order
    assert _frame_numbers(ds, ds.clip_rows(1)) == [0, 1, 1, 1]  # 2 frames: the last one repeats
    assert ds.clip_rows(3) == [13] * 4  # a row without a video is a one-frame video
    item = ds[0]
    assert item["image"].shape == (4, 3, 16, 16) and item["label"].item() == 0.0 and item["rows"].shape == (4,)


def test_clip_starts_depend_only_on_seed_epoch_index(videos):
    starts = {}
    for epoch in range(8):
        a = VideoClipDataset(videos, SMALL, frames=4, mode="video", seed=7)
        a.set_epoch(epoch)
        b = VideoClipDataset(videos, SMALL, frames=4, mode="video", seed=7)
        b.set_epoch(epoch)
        assert a.clip_rows(0) == b.clip_rows(0)
        starts[epoch] = _frame_numbers(a, a.clip_rows(0))[0]
    assert len(set(starts.values())) > 1 and set(starts.values()) <= set(range(7))  # starts 0..10-4


def test_sampling_by_video_or_by_picture(videos):
    by_video = VideoClipDataset(videos, SMALL, frames=4, mode="video")
    by_picture = VideoClipDataset(videos, SMALL, frames=4, mode="picture", seed=3)
    assert len(by_video) == 4  # every video once: the 10-frame video counts like the 1-frame one
    assert len(by_picture) == len(videos) == 14  # every frame row once: video "a" gives 10 of the 14 clips
    assert Counter(v for v, _ in by_picture.items) == {0: 10, 1: 2, 2: 1, 3: 1}
    for epoch in range(3):
        by_picture.set_epoch(epoch)
        for index, (video, position) in enumerate(by_picture.items):
            rows = by_picture.clip_rows(index)
            assert by_picture.videos[video][position] in rows  # the clip holds its frame


def test_tiles_cover_every_frame(videos):
    ds = VideoClipDataset(videos, SMALL, frames=4, mode="tile")
    starts = [(v, s) for v, s in ds.items if v == 0]
    assert starts == [(0, 0), (0, 4), (0, 6)]  # 0-3, 4-7, and 6-9 to reach the last frame
    covered = {r for i in range(len(ds)) for r in ds.clip_rows(i)}
    assert covered == set(range(len(videos)))


def test_augmentation_is_the_same_for_all_frames_of_a_clip(tmp_path):
    import albumentations as A

    manifest = _frames(tmp_path, [(f"v{i // 3}", i % 3, 0) for i in range(60)])  # 20 videos of 3 frames
    augment = Augmenter([A.HorizontalFlip(p=0.5), A.ImageCompression(quality_range=(20, 90), p=0.5)])
    ds = VideoClipDataset(manifest, SMALL, frames=3, mode="video", augment=augment, seed=5)
    flips = []
    for index in range(len(ds)):
        images = ds[index]["image"]
        right_bright = images[:, 0, :, -2:].mean(dim=(1, 2)) > images[:, 0, :, :2].mean(dim=(1, 2))
        assert right_bright.all() or not right_bright.any(), "frames of one clip flipped differently"
        flips.append(bool(right_bright[0]))
    assert 0 < sum(flips) < len(flips)  # and clips do differ


def test_split_by_video_is_7_2_1_and_keeps_videos_whole():
    samples = [Sample(path=f"{label}/{v}/{f}.png", label=label, video=f"{label}v{v}", frame=f,
                      method="deepfakes" if label else "original")
               for label in (0, 1) for v in range(50) for f in range(3)]
    result = split_by_video(Manifest(samples, "."), seed=0)
    assert SEQUENCE_SPLIT == (0.2, 0.1)
    per_video = defaultdict(set)
    for s in result:
        per_video[s.video].add(s.split)
    assert all(len(splits) == 1 for splits in per_video.values()) and not leaks(result)
    counts = Counter(next(iter(splits)) for splits in per_video.values())
    assert counts == {"train": 70, "val": 20, "test": 10}
    train, val = result.filter(split="train"), result.filter(split="val")
    assert shared_videos(train, val) == [] and shared_videos(train, train)


def test_log_loss_is_dfdc_clipped():
    from sklearn.metrics import log_loss as sklearn_log_loss

    y, p = np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3])
    assert log_loss(y, p) == pytest.approx(sklearn_log_loss(y, p))
    # a certain, wrong answer costs -log(1e-15) = 34.54, not infinity
    assert log_loss(np.array([1]), np.array([0.0])) == pytest.approx(-math.log(1e-15))


def test_clip_loss_weighs_frame_and_video_terms():
    torch.manual_seed(0)
    out = {"logits": torch.randn(6), "video_logits": torch.randn(2)}
    labels = torch.tensor([0.0, 1.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    frame = bce(out["logits"], torch.tensor([0.0, 0, 0, 1, 1, 1]))  # each clip's label on its 3 frames
    video = bce(out["video_logits"], labels)
    assert clip_loss(out, labels, 3, 0.2).item() == pytest.approx((0.8 * frame + 0.2 * video).item())
    assert clip_loss(out, labels, 3, 0.0).item() == pytest.approx(frame.item())


# ---------------------------------------------------------------------------- config

BASE = {
    "model": {"arch": "asrid", "kwargs": {"temporal_layers": 1, "temporal_ff": 64}},
    "preprocess": {"input_size": 64},
    "data": {"train": {"manifest": "clips.csv", "split": "train"}, "val": {"manifest": "clips.csv", "split": "val"},
             "batch_size": 4, "sequence": {"frames": 4, "head": "temporal"}},
    "augment": {"transforms": [{"name": "HorizontalFlip", "p": 0.5}]},
    "optim": {"name": "adamw", "lr": 3e-4},
    "train": {"epochs": 1, "log_every": 1},
    "output": "run",
}


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    return info.value.message


def test_sequence_config_is_checked():
    cfg = validate_config(BASE)
    assert cfg.data.sequence.frames == 4 and cfg.data.sequence.sample_by == "video" and cfg.data.sequence.head == "temporal"
    assert validate_config({**BASE, "data": {**BASE["data"], "sequence": {"head": "mean"}}}).data.sequence.frames == 8
    assert cfg.loss.video_weight == pytest.approx(0.2)  # ASRID's w = 0.8 on the frame loss
    meso = {**BASE, "model": {"arch": "meso4"}}
    assert "data.sequence: meso4 has no video heads" in _error(meso)
    assert "data.sequence.head: required key missing" in _error({**BASE, "data": {**BASE["data"], "sequence": {}}})
    bad_head = {**BASE, "data": {**BASE["data"], "sequence": {"head": "tempral"}}}
    assert "data.sequence.head: 'tempral' is not a video head of asrid; did you mean temporal?" in _error(bad_head)
    assert "sample_by" in _error({**BASE, "data": {**BASE["data"], "sequence": {"head": "mean", "sample_by": "frame"}}})
    no_sequence = {**BASE, "data": {k: v for k, v in BASE["data"].items() if k != "sequence"}}
    assert "loss.video_weight: weighs the clip loss of data.sequence" in _error({**no_sequence, "loss": {"video_weight": 0.5}})
    assert "video_weight" in _error({**BASE, "loss": {"video_weight": 1.5}})
    assert "train.select: video_auc is the val AUC of a video head" in _error(
        {**no_sequence, "train": {**BASE["train"], "select": "video_auc"}})
    synth = {**BASE, "data": {**BASE["data"], "train": {**BASE["data"]["train"], "synthesis": {"kind": "sbi"}}}}
    assert "data.sequence: not with synthesis" in _error(synth)
    # adding the section changes the run (its seed); runs without it keep theirs
    assert validate_config(no_sequence).config_hash() != cfg.config_hash()
    assert validate_config({**no_sequence, "loss": {}}).config_hash() == validate_config(no_sequence).config_hash()


# ---------------------------------------------------------------------------- a real run

K = 4


def _pseudo_video_manifest(shared_dir: Path, folder: Path) -> Path:
    """FF++ c23 crops grouped into "videos" of K crops. The crops come from distinct
    videos (shared/data/ffpp-crops has one frame per video), so these clips are not
    consecutive frames of one video: they test the mechanics (grouping, K-frame batches,
    both losses, video metrics), not temporal learning. Per method folder and label, the
    15 crops make videos of 4, 4, 4 and 3 frames; then a 7:2:1 split by video."""
    root = shared_dir / "data/ffpp-crops"
    groups = defaultdict(list)
    for row in csv.DictReader(open(root / "manifest.csv", newline="")):
        groups[(row["path"].split("/")[0], row["label"])].append(row)
    samples = []
    for (folder_name, label), rows in sorted(groups.items()):
        for i, row in enumerate(sorted(rows, key=lambda r: r["path"])):
            samples.append(Sample(path=str(root / row["path"]), label=int(label), video=f"{folder_name}{label}n{i // K}",
                                  frame=i % K, method=row["method"], dataset="ffpp-crops"))
    split = split_by_video(Manifest(samples, folder), seed=0)
    return split.write(folder / "clips.csv")


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory, shared_dir):
    from fakescope.train import train

    folder = tmp_path_factory.mktemp("clips")
    _pseudo_video_manifest(shared_dir, folder)
    (folder / "cfg.yaml").write_text(yaml.safe_dump(BASE, sort_keys=False))
    result = train(load_config(folder / "cfg.yaml"))
    return folder, result


def test_clip_training_writes_video_metrics_and_a_loadable_checkpoint(clip_run):
    from fakescope.models import load_checkpoint

    folder, result = clip_run
    manifest = Manifest.read(folder / "clips.csv")
    train_videos = {s.video for s in manifest.filter(split="train")}
    assert len(train_videos) == 23 and result.global_step == math.ceil(23 / 4)  # one clip per video, 4 a batch
    rows = list(csv.DictReader(open(folder / "run" / "metrics.csv")))
    assert list(rows[0]) == ["epoch", "step", "train_loss", "val_loss", "val_auc", "val_auc_mean", "val_acc", "lr",
                             "seconds", "val_video_auc", "val_video_logloss", "val_video_acc", "val_videos"]
    row = rows[0]
    val = manifest.filter(split="val")
    assert int(row["val_videos"]) == len({s.video for s in val}) == 7
    assert 0.0 <= float(row["val_video_auc"]) <= 1.0 and 0.0 < float(row["val_video_logloss"]) < 35
    assert math.isfinite(float(row["val_auc"])) and math.isfinite(float(row["train_loss"]))
    detector = load_checkpoint(folder / "run" / "best.pt")
    prov = detector.provenance
    assert detector.arch == "asrid" and detector.preprocess.input_size == 64
    assert prov["val"]["n"] == len(val)  # frame metrics on every val row
    assert prov["val"]["video"]["head"] == "temporal" and prov["val"]["video"]["n"] == 7
    assert prov["val"]["video"]["auc"] == pytest.approx(float(row["val_video_auc"]))
    assert prov["train"]["clips"] == {"sample_by": "video", "videos": 23, "video_weight": 0.2}
    assert detector.model.video_window("temporal") == K  # scanning windows tracks at the trained length
    with torch.no_grad():
        out = detector.model(torch.zeros(K, 3, 64, 64))
        assert detector.model.video_logits(out["features"][None], "temporal").shape == (1,)


def test_clip_training_resumes_exactly(clip_run):
    from fakescope.train import train

    folder, _ = clip_run
    stopped = train(load_config(folder / "cfg.yaml", ["output=run_resumed", "train.max_steps=2"]))
    assert stopped.stopped_early and stopped.global_step == 2
    train(load_config(folder / "cfg.yaml", ["output=run_resumed"]), resume=True)
    a = torch.load(folder / "run" / "last.pt", weights_only=True)["model"]
    b = torch.load(folder / "run_resumed" / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda path: [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(path))]
    assert strip(folder / "run" / "metrics.csv") == strip(folder / "run_resumed" / "metrics.csv")


def test_select_video_auc_picks_best_by_the_video_head(clip_run):
    from fakescope.train import train
    from fakescope.train.trainer import _is_better

    folder, _ = clip_run
    train(load_config(folder / "cfg.yaml", ["output=run_video_select", "train.epochs=3", "train.select=video_auc"]))
    rows = list(csv.DictReader(open(folder / "run_video_select" / "metrics.csv")))
    as_numbers = [{"val_video_auc": float(r["val_video_auc"]), "val_loss": float(r["val_loss"])} for r in rows]
    best = None
    for i, row in enumerate(as_numbers):
        if _is_better(row, None if best is None else as_numbers[best], "val_video_auc"):
            best = i
    prov = torch.load(folder / "run_video_select" / "best.pt", weights_only=True)["provenance"]
    assert prov["selected_on"] == "val_video_auc" and prov["epoch"] == best + 1
    assert prov["val"]["video"]["auc"] == pytest.approx(as_numbers[best]["val_video_auc"])


def test_clips_of_one_video_on_both_sides_are_refused(tmp_path, shared_dir):
    from fakescope.train import train

    path = _pseudo_video_manifest(shared_dir, tmp_path)
    manifest = Manifest.read(path)
    leaked = next(s for s in manifest.samples if s.split == "train")
    # move one frame of a train video to val
    samples = [s if s is not leaked else Sample(**{**s.__dict__, "split": "val"}) for s in manifest.samples]
    Manifest(samples, manifest.root).write(path)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(BASE, sort_keys=False))
    with pytest.raises(ConfigError, match="have frames in both train and val"):
        train(load_config(tmp_path / "cfg.yaml"))
