"""Dataset layout readers: small trees in each dataset's on-disk layout, built
from symlinks to the real shared videos and crops, indexed row for row."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.data.layouts import LAYOUTS, read_layout
from fakescope.data.manifest import Manifest, ManifestError

# --------------------------------------------------------------------------- tree helpers


def link(target: Path, link_path: Path) -> None:
    link_path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link_path)


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def rows(manifest: Manifest, *columns: str) -> list[tuple]:
    return [tuple(getattr(s, c) for c in columns) for s in manifest]


def assert_files_exist(manifest: Manifest) -> None:
    for sample in manifest:
        assert manifest.resolve(sample.path).is_file(), sample.path
        if sample.mask:
            assert manifest.resolve(sample.mask).is_file(), sample.mask


@pytest.fixture(scope="module")
def videos(shared_dir) -> dict[str, Path]:
    folder = shared_dir / "data" / "ffpp-videos"
    return {"real": folder / "real" / "004.mp4", "deepfakes": folder / "fake" / "519_515.mp4",
            "neuraltextures": folder / "fake" / "004_982.mp4"}


@pytest.fixture(scope="module")
def crops(shared_dir) -> Path:
    return shared_dir / "data" / "ffpp-crops"


def test_every_layout_is_registered():
    assert list(LAYOUTS) == ["celebdf", "deepfakebench", "dfdc", "dfdcp", "ffpp", "folders", "image-forensics"]


# --------------------------------------------------------------------------- FaceForensics++

FFPP_COLUMNS = ("path", "label", "video", "method", "split", "mask", "source", "dataset")


def make_ffpp(root: Path, videos: dict[str, Path], splits: bool = True) -> Path:
    """Originals 004 and 982 (both the real 004 video), NeuralTextures 004_982,
    Deepfakes 519_515 with its mask, and the four classic method folders."""
    link(videos["real"], root / "original_sequences/youtube/c23/videos/004.mp4")
    link(videos["real"], root / "original_sequences/youtube/c23/videos/982.mp4")
    link(videos["neuraltextures"], root / "manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4")
    link(videos["deepfakes"], root / "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4")
    # a stand-in mask video: FF++ keeps masks beside the method's compressions
    link(videos["deepfakes"], root / "manipulated_sequences/Deepfakes/masks/videos/519_515.mp4")
    for method in ("Face2Face", "FaceSwap"):
        link(videos["neuraltextures"], root / f"manipulated_sequences/{method}/c23/videos/004_982.mp4")
    if splits:
        write_json(root / "splits/train.json", [["004", "982"]])
        write_json(root / "splits/val.json", [])
        write_json(root / "splits/test.json", [["519", "515"]])
    return root


def test_ffpp_rows(tmp_path, videos):
    root = make_ffpp(tmp_path / "ffpp", videos)
    manifest = read_layout("ffpp", root, methods="deepfakes,neuraltextures")
    assert rows(manifest, *FFPP_COLUMNS) == [
        ("original_sequences/youtube/c23/videos/004.mp4", 0, "004", "original", "train", None, None, "ffpp"),
        ("original_sequences/youtube/c23/videos/982.mp4", 0, "982", "original", "train", None, None, "ffpp"),
        ("manipulated_sequences/Deepfakes/c23/videos/519_515.mp4", 1, "519_515", "deepfakes", "test",
         "manipulated_sequences/Deepfakes/masks/videos/519_515.mp4", "519", "ffpp"),
        ("manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4", 1, "004_982", "neuraltextures", "train",
         None, "004", "ffpp"),
    ]
    assert manifest.root == root
    assert_files_exist(manifest)


def test_ffpp_default_methods_and_csv_round_trip(tmp_path, videos):
    root = make_ffpp(tmp_path / "ffpp", videos)
    manifest = read_layout("ffpp", root)
    assert sorted({s.method for s in manifest}) == ["deepfakes", "face2face", "faceswap", "neuraltextures", "original"]
    written = Manifest.read(manifest.write(tmp_path / "out" / "manifest.csv"))
    columns = ("label", "video", "method", "split", "source", "dataset")
    assert rows(written, *columns) == rows(manifest, *columns)
    located = lambda m: [(os.path.normpath(m.resolve(s.path)), s.mask and os.path.normpath(m.resolve(s.mask)))  # noqa: E731
                         for s in m]
    assert located(written) == located(manifest)
    assert_files_exist(written)


def test_ffpp_without_splits(tmp_path, videos):
    root = make_ffpp(tmp_path / "ffpp", videos, splits=False)
    with pytest.raises(ManifestError, match=r"no FaceForensics\+\+ split folder .*splits.*require_splits=false"):
        read_layout("ffpp", root)
    manifest = read_layout("ffpp", root, require_splits="false")
    assert {s.split for s in manifest} == {None}
    with pytest.raises(ManifestError, match="elsewhere"):  # an explicit splits_dir must exist
        read_layout("ffpp", root, splits_dir=tmp_path / "elsewhere", require_splits=False)


def test_ffpp_missing_pieces_are_named(tmp_path, videos):
    root = make_ffpp(tmp_path / "ffpp", videos)
    with pytest.raises(ManifestError, match=r"no original_sequences/youtube/c40/videos folder .*present there: c23"):
        read_layout("ffpp", root, compression="c40")
    present = "present: Deepfakes, Face2Face, FaceSwap, NeuralTextures"
    with pytest.raises(ManifestError, match=rf"no manipulated_sequences/FaceShifter .*{present}"):
        read_layout("ffpp", root, methods="deepfakes,faceshifter")
    with pytest.raises(ManifestError, match="Did you mean 'faceswap'"):
        read_layout("ffpp", root, methods="faceswop")
    (root / "splits/val.json").unlink()
    with pytest.raises(ManifestError, match="missing split file.*val.json"):
        read_layout("ffpp", root)
    with pytest.raises(ManifestError, match="no original_sequences/youtube/c23/videos"):
        read_layout("ffpp", tmp_path)


def test_ffpp_video_outside_the_split_files_is_an_error(tmp_path, videos):
    root = make_ffpp(tmp_path / "ffpp", videos)
    link(videos["real"], root / "original_sequences/youtube/c23/videos/777.mp4")
    with pytest.raises(ManifestError, match=r"1 video in no split file .*777.mp4"):
        read_layout("ffpp", root)


# --------------------------------------------------------------------------- Celeb-DF


def make_celebdf(root: Path, videos: dict[str, Path], test_list: str | None = None) -> Path:
    link(videos["real"], root / "Celeb-real/id0_0000.mp4")
    link(videos["real"], root / "Celeb-real/id1_0001.mp4")
    link(videos["real"], root / "YouTube-real/00000.mp4")
    link(videos["deepfakes"], root / "Celeb-synthesis/id0_id1_0000.mp4")
    link(videos["neuraltextures"], root / "Celeb-synthesis/id1_id0_0001.mp4")
    if test_list is None:  # the official file's convention: 1 = real, 0 = fake
        test_list = "1 Celeb-real/id0_0000.mp4\n1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id1_id0_0001.mp4\n"
    (root / "List_of_testing_videos.txt").write_text(test_list)
    return root


def test_celebdf_rows(tmp_path, videos):
    manifest = read_layout("celebdf", make_celebdf(tmp_path / "celebdf", videos))
    assert rows(manifest, "path", "label", "video", "method", "split", "source", "dataset") == [
        ("Celeb-real/id0_0000.mp4", 0, "id0_0000", "original", "test", None, "celebdf"),
        ("Celeb-real/id1_0001.mp4", 0, "id1_0001", "original", "train", None, "celebdf"),
        ("YouTube-real/00000.mp4", 0, "00000", "original", "test", None, "celebdf"),
        ("Celeb-synthesis/id0_id1_0000.mp4", 1, "id0_id1_0000", "celeb-synthesis", "train", "id0_0000", "celebdf"),
        ("Celeb-synthesis/id1_id0_0001.mp4", 1, "id1_id0_0001", "celeb-synthesis", "test", "id1_0001", "celebdf"),
    ]
    assert_files_exist(manifest)


def test_celebdf_list_in_our_convention_is_refused(tmp_path, videos):
    # "0" would mean fake in the official file: a real video listed so is a wrong list, not a label to trust
    root = make_celebdf(tmp_path / "celebdf", videos, test_list="0 Celeb-real/id0_0000.mp4\n")
    with pytest.raises(ManifestError, match=r"List_of_testing_videos.txt:1: .*marks a fake video \(1 = real, 0 = fake"):
        read_layout("celebdf", root)


def test_celebdf_missing_pieces_are_named(tmp_path, videos):
    root = make_celebdf(tmp_path / "celebdf", videos, test_list="1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id9_id1_0003.mp4\n")
    with pytest.raises(ManifestError, match=r"lists 1 video not found .*Celeb-synthesis/id9_id1_0003.mp4"):
        read_layout("celebdf", root)
    (root / "List_of_testing_videos.txt").unlink()
    with pytest.raises(ManifestError, match="no List_of_testing_videos.txt"):
        read_layout("celebdf", root)
    assert {s.split for s in read_layout("celebdf", root, require_splits=False)} == {None}
    (root / "Celeb-synthesis/id0_id1_0000.mp4").unlink()
    (root / "Celeb-synthesis/id1_id0_0001.mp4").unlink()
    (root / "Celeb-synthesis").rmdir()
    with pytest.raises(ManifestError, match="no Celeb-synthesis/ folder"):
        read_layout("celebdf", root, require_splits=False)


# --------------------------------------------------------------------------- DFDC


def make_dfdc(root: Path, videos: dict[str, Path]) -> Path:
    for part, (real, fake, fake_video) in enumerate((("aaaaaaaaaa", "bbbbbbbbbb", "deepfakes"),
                                                     ("cccccccccc", "dddddddddd", "neuraltextures"))):
        folder = root / f"dfdc_train_part_{part}"
        link(videos["real"], folder / f"{real}.mp4")
        link(videos[fake_video], folder / f"{fake}.mp4")
        write_json(folder / "metadata.json", {
            f"{fake}.mp4": {"label": "FAKE", "split": "train", "original": f"{real}.mp4"},
            f"{real}.mp4": {"label": "REAL", "split": "train"},
        })
    return root


def test_dfdc_rows_and_held_out_parts(tmp_path, videos):
    root = make_dfdc(tmp_path / "dfdc", videos)
    columns = ("path", "label", "video", "method", "split", "source", "dataset")
    assert rows(read_layout("dfdc", root), *columns) == [
        ("dfdc_train_part_0/aaaaaaaaaa.mp4", 0, "aaaaaaaaaa", "original", "train", None, "dfdc"),
        ("dfdc_train_part_0/bbbbbbbbbb.mp4", 1, "bbbbbbbbbb", None, "train", "aaaaaaaaaa", "dfdc"),
        ("dfdc_train_part_1/cccccccccc.mp4", 0, "cccccccccc", "original", "train", None, "dfdc"),
        ("dfdc_train_part_1/dddddddddd.mp4", 1, "dddddddddd", None, "train", "cccccccccc", "dfdc"),
    ]
    held_out = read_layout("dfdc", root, test_parts="1")
    assert [s.split for s in held_out] == ["train", "train", "test", "test"]
    with pytest.raises(ManifestError, match="no dfdc_train_part_7"):
        read_layout("dfdc", root, val_parts="7")


def test_dfdc_missing_pieces_are_named(tmp_path, videos):
    root = make_dfdc(tmp_path / "dfdc", videos)
    (root / "dfdc_train_part_1/dddddddddd.mp4").unlink()
    with pytest.raises(ManifestError, match=r"lists 1 video missing .*dfdc_train_part_1/dddddddddd.mp4"):
        read_layout("dfdc", root)
    (root / "dfdc_train_part_1/metadata.json").unlink()
    with pytest.raises(ManifestError, match="no dfdc_train_part_1/metadata.json"):
        read_layout("dfdc", root)
    with pytest.raises(ManifestError, match="no dfdc_train_part_N/ folders"):
        read_layout("dfdc", tmp_path)


# --------------------------------------------------------------------------- DFDC Preview

DFDCP_INDEX = {
    "original_videos/643049/643049_A_001.mp4": {"label": "real", "set": "train"},
    "method_A/643049/643049_A/1955_A.mp4": {"label": "fake", "set": "train"},
    "method_B/643049/643049_B/1955_B.mp4": {"label": "fake", "set": "test"},
}


def make_dfdcp(root: Path, videos: dict[str, Path]) -> Path:
    link(videos["real"], root / "original_videos/643049/643049_A_001.mp4")
    link(videos["deepfakes"], root / "method_A/643049/643049_A/1955_A.mp4")
    link(videos["neuraltextures"], root / "method_B/643049/643049_B/1955_B.mp4")
    write_json(root / "dataset.json", DFDCP_INDEX)
    return root


def test_dfdcp_rows(tmp_path, videos):
    manifest = read_layout("dfdcp", make_dfdcp(tmp_path / "dfdcp", videos))
    assert rows(manifest, "path", "label", "video", "method", "split", "source", "dataset") == [
        ("method_A/643049/643049_A/1955_A.mp4", 1, "1955_A", "method_a", "train", None, "dfdcp"),
        ("method_B/643049/643049_B/1955_B.mp4", 1, "1955_B", "method_b", "test", None, "dfdcp"),
        ("original_videos/643049/643049_A_001.mp4", 0, "643049_A_001", "original", "train", None, "dfdcp"),
    ]


def test_dfdcp_missing_pieces_are_named(tmp_path, videos):
    root = make_dfdcp(tmp_path / "dfdcp", videos)
    write_json(root / "dataset.json", {**DFDCP_INDEX, "method_A/1/1_A/2_A.mp4": {"label": "fake", "set": "test"}})
    with pytest.raises(ManifestError, match=r"lists 1 video missing .*method_A/1/1_A/2_A.mp4"):
        read_layout("dfdcp", root)
    write_json(root / "dataset.json", {"method_A/643049/643049_A/1955_A.mp4": {"label": "fake"}})
    with pytest.raises(ManifestError, match="1955_A.mp4: no 'set' field"):
        read_layout("dfdcp", root)
    (root / "dataset.json").unlink()
    with pytest.raises(ManifestError, match="no dataset.json"):
        read_layout("dfdcp", root)


# --------------------------------------------------------------------------- DeepfakeBench


def make_deepfakebench(root: Path) -> Path:
    """A DeepfakeBench index over the shared FF++ crops, frame paths relative to
    the crops folder (DeepfakeBench's rgb_dir). FaceForensics++ has a compression
    level; the Celeb-DF-style set does not and repeats its test videos as val,
    as DeepfakeBench's own Celeb-DF index does. Fake partner ids are made up."""
    entry = lambda label, frames, **more: {"label": label, "frames": frames, **more}  # noqa: E731
    index = {
        "FaceForensics++": {
            "FF-real": {
                "train": {"c23": {"13": entry("FF-real", ["deepfakes/real/image_13_2.png"])}},
                "val": {"c23": {}},
                "test": {"c23": {"160": entry("FF-real", ["deepfakes\\real\\image_160_17.png"])}},
            },
            "FF-DF": {
                "train": {"c23": {"105_278": entry(
                    "FF-DF", ["deepfakes/fake/image_105_23.png"], masks=["masks/105_278/image_105_23.png"])}},
                "val": {"c23": {}},
                "test": {"c23": {}},
            },
        },
        "Celeb-DF-v2": {
            "CelebDFv2_fake": {
                "train": {},
                "val": {"id0_id1_0000": entry("CelebDFv2_fake", ["neuraltextures/fake/image_183_10.png"])},
                "test": {"id0_id1_0000": entry("CelebDFv2_fake", ["neuraltextures/fake/image_183_10.png"])},
            },
        },
    }
    write_json(root / "dataset_json" / "bench.json", index)
    return root / "dataset_json" / "bench.json"


def test_deepfakebench_rows(tmp_path, crops):
    index = make_deepfakebench(tmp_path)
    manifest = read_layout("deepfakebench", index, frames_root=crops)
    assert manifest.root == crops
    assert rows(manifest, "path", "label", "video", "method", "split", "mask", "source", "frame", "dataset") == [
        ("deepfakes/real/image_13_2.png", 0, "13", "original", "train", None, None, 2, "deepfakebench"),
        ("deepfakes/real/image_160_17.png", 0, "160", "original", "test", None, None, 17, "deepfakebench"),
        ("deepfakes/fake/image_105_23.png", 1, "105_278", "deepfakes", "train",
         "masks/105_278/image_105_23.png", "105", 23, "deepfakebench"),
        ("neuraltextures/fake/image_183_10.png", 1, "id0_id1_0000", "celebdfv2_fake", "val", None, "id0_0000", 10, "deepfakebench"),
        ("neuraltextures/fake/image_183_10.png", 1, "id0_id1_0000", "celebdfv2_fake", "test", None, "id0_0000", 10, "deepfakebench"),
    ]
    assert all(manifest.resolve(s.path).is_file() for s in manifest)
    only = read_layout("deepfakebench", index, frames_root=crops, datasets="Celeb-DF-v2", splits="test")
    assert rows(only, "video", "split") == [("id0_id1_0000", "test")]


def test_deepfakebench_missing_pieces_are_named(tmp_path, crops):
    index = make_deepfakebench(tmp_path)
    with pytest.raises(ManifestError, match=r"frames of bench.json not found under .*dataset_json: .*image_13_2.png.*frames_root"):
        read_layout("deepfakebench", index)  # frame paths are not relative to the JSON's folder
    assert len(read_layout("deepfakebench", index, check_files="false")) == 5
    with pytest.raises(ManifestError, match=r"FaceForensics\+\+/FF-real/train has no compression 'c40'; present: c23"):
        read_layout("deepfakebench", index, frames_root=crops, compression="c40")
    with pytest.raises(ManifestError, match="no dataset 'DFDC'"):
        read_layout("deepfakebench", index, frames_root=crops, datasets="DFDC")
    data = json.loads(index.read_text())
    data["FaceForensics++"]["FF-XYZ"] = {"train": {"c23": {"1_2": {"label": "FF-XYZ", "frames": []}}}}
    index.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="cannot tell whether label 'FF-XYZ' is real or fake"):
        read_layout("deepfakebench", index, frames_root=crops)
    with pytest.raises(ManifestError, match="no DeepfakeBench index"):
        read_layout("deepfakebench", tmp_path / "absent.json")


# --------------------------------------------------------------------------- plain folders


def test_folders_rows(tmp_path, videos, crops):
    root = tmp_path / "plain"
    link(videos["real"], root / "real/004.mp4")
    link(crops / "deepfakes/real/image_13_2.png", root / "real/013/0002.png")  # frames of one video
    link(crops / "deepfakes/real/image_160_17.png", root / "real/013/0017.png")
    link(videos["deepfakes"], root / "fake/519_515.mp4")
    link(crops / "deepfakes/fake/image_105_23.png", root / "fake/image_105_23.png")
    (root / "fake/.DS_Store").write_text("")
    (root / "fake/notes.txt").write_text("not media")
    manifest = read_layout("folders", root)
    assert rows(manifest, "path", "label", "video", "method", "frame", "dataset") == [
        ("real/004.mp4", 0, "004", "original", None, "folders"),
        ("real/013/0002.png", 0, "013", "original", 2, "folders"),
        ("real/013/0017.png", 0, "013", "original", 17, "folders"),
        ("fake/519_515.mp4", 1, "519_515", None, None, "folders"),
        ("fake/image_105_23.png", 1, "image_105_23", None, None, "folders"),
    ]
    assert [s.video for s in read_layout("folders", root, video_id="stem")][1:3] == ["0002", "0017"]


def test_folders_reads_a_manifest_csv(shared_dir):
    manifest = read_layout("folders", shared_dir / "data/ciplab-faces/manifest.csv")
    assert len(manifest) == 2035
    assert {s.split for s in manifest} == {"train", "val", "test"}
    assert {s.dataset for s in manifest} == {"folders"}


def test_folders_missing_pieces_are_named(tmp_path, videos, shared_dir):
    root = tmp_path / "plain"
    link(videos["real"], root / "real/004.mp4")
    with pytest.raises(ManifestError, match="no fake/ folder"):
        read_layout("folders", root)
    (root / "fake").mkdir()
    with pytest.raises(ManifestError, match="fake: no images or videos"):
        read_layout("folders", root)
    with pytest.raises(ManifestError, match="no such folder"):
        read_layout("folders", tmp_path / "absent")


def test_unknown_option_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(ManifestError, match="layout 'ffpp' has no option 'compresion'. Did you mean 'compression'"):
        read_layout("ffpp", tmp_path, compresion="c40")


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory, videos) -> dict:
    """`fakescope index` as a user runs it, a success and an error, started
    together: each process spends seconds importing torch."""
    folder = tmp_path_factory.mktemp("cli")
    root = make_ffpp(folder / "ffpp", videos)
    commands = {
        "success": ["index", "ffpp", str(root), "-o", str(folder / "out" / "ffpp.csv"),
                    "--option", "methods=deepfakes,neuraltextures", "--option", "compression=c23"],
        "unknown_layout": ["index", "ffp", str(root), "-o", str(folder / "typo.csv")],
    }
    processes = {name: subprocess.Popen([sys.executable, "-m", "fakescope", *arguments], text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for name, arguments in commands.items()}
    results = {name: (*p.communicate(timeout=120), p.returncode) for name, p in processes.items()}
    return {"folder": folder, **results}


def test_cli_index_writes_the_manifest_and_a_summary(cli_runs):
    stdout, stderr, returncode = cli_runs["success"]
    assert returncode == 0, stderr
    assert "4 rows, 4 videos" in stdout
    for expected in ("fake (1)", "real (0)", "deepfakes", "neuraltextures", "train", "test"):
        assert expected in stdout
    written = Manifest.read(cli_runs["folder"] / "out" / "ffpp.csv")
    assert [s.method for s in written] == ["original", "original", "deepfakes", "neuraltextures"]
    assert_files_exist(written)


def test_cli_index_unknown_layout_is_one_line_exit_2(cli_runs):
    stdout, stderr, returncode = cli_runs["unknown_layout"]
    assert returncode == 2
    assert "Did you mean 'ffpp'" in stderr
    assert "Traceback" not in stderr + stdout
    assert len(stderr.strip().splitlines()) == 1
    assert not (cli_runs["folder"] / "typo.csv").exists()


@pytest.mark.parametrize("arguments, message", [
    (["ffpp", "{tmp}", "--option", "compression"], "expected key=value"),
    (["ffpp", "{tmp}", "--option", "colour=red"], "has no option 'colour'"),
    (["ffpp", "{tmp}"], "no original_sequences/youtube/c23/videos folder"),
])
def test_cli_index_errors_exit_2(tmp_path, arguments, message):
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    result = CliRunner().invoke(app, ["index", *arguments, "-o", str(tmp_path / "m.csv")])
    assert result.exit_code == 2
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
