"""Identity-grouped splits: no FF++ face on two sides, existing splits kept."""
from __future__ import annotations

import csv
from collections import Counter

import pytest
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.data.manifest import Manifest, ManifestError, Sample
from fakescope.data.splits import leaks, merge, split_by_identity


def _ffpp_like() -> Manifest:
    samples = []
    for i in range(40):
        samples.append(Sample(path=f"real/{i}.png", label=0, video=f"{i:03d}", method="original"))
    for i in range(20):  # fake i_(i+20): target i, source i+20, both real videos above
        for method in ("deepfakes", "face2face"):
            samples.append(Sample(path=f"{method}/{i}.png", label=1, video=f"{i}_{i + 20}", method=method))
    return Manifest(samples, "/data")


def test_split_keeps_every_identity_on_one_side():
    result = split_by_identity(_ffpp_like().with_dataset("ffpp"), val=0.2, test=0.4, seed=3)
    assert leaks(result) == []
    side = {}
    for s in result:
        for part in s.video.split("_"):
            side.setdefault(int(part), set()).add(s.split)
    assert all(len(v) == 1 for v in side.values())
    # A fake and both of its real videos land together ("004" and "4" are one video).
    by_path = {s.path: s.split for s in result}
    assert by_path["deepfakes/4.png"] == by_path["real/4.png"] == by_path["real/24.png"] == by_path["face2face/4.png"]
    assert set(Counter(s.split for s in result)) == {"train", "val", "test"}


def test_split_is_a_pure_function_of_seed():
    a = [s.split for s in split_by_identity(_ffpp_like(), seed=1)]
    b = [s.split for s in split_by_identity(_ffpp_like(), seed=1)]
    c = [s.split for s in split_by_identity(_ffpp_like(), seed=2)]
    assert a == b and a != c


def test_fixed_splits_and_assign_win():
    fixed = Manifest([Sample(path="a.jpg", label=0, split="val"), Sample(path="b.jpg", label=1, split="test")], "/x")
    merged = merge({"fixed": fixed, "ffpp": _ffpp_like()})
    result = split_by_identity(merged, assign={"ffpp": "train"})
    assert [s.split for s in result if s.dataset == "fixed"] == ["val", "test"]
    assert {s.split for s in result if s.dataset == "ffpp"} == {"train"}
    with pytest.raises(ManifestError, match="no dataset named nope"):
        split_by_identity(merged, assign={"nope": "train"})
    with pytest.raises(ManifestError, match="val \\+ test < 1"):
        split_by_identity(merged, val=0.6, test=0.5)


def test_split_command_on_shared_crops(shared_dir, tmp_path):
    out = tmp_path / "split.csv"
    result = CliRunner().invoke(app, [
        "split", f"ffpp-crops={shared_dir / 'data/ffpp-crops'}", f"ciplab={shared_dir / 'data/ciplab-faces'}",
        "--test", "0.5", "--val", "0.2", "-o", str(out),
    ])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 120 + 2035
    ciplab = Counter(r["split"] for r in rows if r["dataset"] == "ciplab")
    assert ciplab == {"train": 1432, "val": 287, "test": 316}  # its own split, untouched
    crops = [r for r in rows if r["dataset"] == "ffpp-crops"]
    sides: dict[str, set] = {}
    for r in crops:
        sides.setdefault(r["video"], set()).add(r["split"])
    assert all(len(v) == 1 for v in sides.values())  # ids 368, 462, 606, 850, 900 are real and fake
    for method in ("deepfakes", "face2face", "faceswap", "neuraltextures"):
        held_out = sum(r["method"] == method and r["split"] == "test" for r in crops)
        assert 6 <= held_out <= 9
    assert Manifest.read(out).resolve(rows[0]["path"]).is_file()
    bad = CliRunner().invoke(app, ["split", str(shared_dir / "data/ffpp-crops"), "--assign", "x", "-o", str(out)])
    assert bad.exit_code == 2 and "--assign 'x': expected key=value" in bad.output


def test_split_command_clips_preset_is_the_7_2_1_video_split(shared_dir, tmp_path):
    from fakescope.data.splits import merge, split_by_video

    crops = shared_dir / "data/ffpp-crops"
    runs = {}
    for name, flags in (("clips", ["--clips"]), ("plain", []), ("explicit", ["--val", "0.2", "--test", "0.1"])):
        out = tmp_path / f"{name}.csv"
        result = CliRunner().invoke(app, ["split", f"ffpp-crops={crops}", *flags, "-o", str(out)])
        assert result.exit_code == 0, result.output
        runs[name] = [(r["path"], r["split"]) for r in csv.DictReader(open(out))]
    assert runs["clips"] == runs["explicit"]  # --clips is val 0.2 / test 0.1
    assert runs["clips"] != runs["plain"]  # the plain default stays val 0.2 / test 0.5
    expected = split_by_video(merge({"ffpp-crops": Manifest.read(crops)}))
    assert [s.split for s in expected.samples] == [split for _, split in runs["clips"]]
    shares = Counter(split for _, split in runs["clips"])
    assert shares["train"] > shares["val"] > shares["test"] > 0
