"""`fakescope extract` on the real FF++ videos of ../shared, plus videos made here:

- short.mp4: the first 16 frames of real/004.mp4 downscaled to 960x540 and re-encoded
  (a cut of a real video: a face that MTCNN finds, cheap to process), with
  mask.mp4: a synthetic mask video of the same size and frame count (a left-to-right
  gray ramp, so any misplaced or flipped mask crop shows);
- short_800.mp4: the same frames at 800x450 (a "fake" whose size differs from its source);
- gray.mp4 (no face) and corrupt.mp4 (random bytes).

One in-process MTCNN is shared by the in-process runs and counts its calls, so
resume and source pairing can be checked by the detection work they save.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from media_factory import lossless_video

from fakescope.data import Manifest
from fakescope.data.extract import MARKER, REPORT, extract_faces
from fakescope.errors import FakescopeError
from fakescope.scan.faces import MTCNNFaceDetector, crop_face
from fakescope.scan.results import EXIT_ALL_SCORED, EXIT_USAGE

FRAMES = 4
SIZE = 256
MARGIN = 1.3


class CountingDetector:
    """Wraps MTCNN; counts detect() calls and the frames they were given."""

    def __init__(self, inner):
        self.inner, self.calls, self.frames = inner, 0, 0

    def detect(self, frames):
        self.calls += 1
        self.frames += len(frames)
        return self.inner.detect(frames)


def _mask_image() -> np.ndarray:
    ramp = np.linspace(0, 255, 960).round().astype(np.uint8)
    return np.repeat(np.broadcast_to(ramp, (540, 960))[:, :, None], 3, axis=2).copy()


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    columns = ["path", "label", "video", "method", "split", "mask", "source"]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


@pytest.fixture(scope="module")
def media(shared_dir, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    videos = shared_dir / "data/ffpp-videos"
    frames = []
    with av.open(str(videos / "real/004.mp4")) as container:
        for frame in container.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (960, 540), interpolation=cv2.INTER_AREA))
            if len(frames) == 16:
                break
    small = [cv2.resize(f, (800, 450), interpolation=cv2.INTER_AREA) for f in frames]
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return {
        "real": videos / "real/004.mp4",
        "nt": videos / "fake/004_982.mp4",
        "df": videos / "fake/519_515.mp4",
        "short": lossless_video(folder / "short.mp4", frames),
        "small": lossless_video(folder / "short_800.mp4", small),
        "mask": lossless_video(folder / "mask.mp4", [_mask_image()] * len(frames)),
        "gray": lossless_video(folder / "gray.mp4", [np.full((128, 128, 3), 128, np.uint8)] * 12),
        "corrupt": corrupt,
    }


@pytest.fixture(scope="module")
def detector() -> CountingDetector:
    return CountingDetector(MTCNNFaceDetector(min_face_size=64))


@pytest.fixture(scope="module")
def main_run(media, detector, tmp_path_factory):
    folder = tmp_path_factory.mktemp("main")
    manifest_path = _write_manifest(folder / "videos.csv", [
        {"path": media["real"], "label": 0, "video": "004", "method": "original"},
        {"path": media["nt"], "label": 1, "video": "004_982", "method": "neuraltextures", "source": "004"},
        {"path": media["df"], "label": 1, "video": "519_515", "method": "deepfakes"},
        {"path": media["short"], "label": 1, "video": "short", "method": "synthetic", "mask": media["mask"]},
        {"path": media["gray"], "label": 0, "video": "gray", "method": "original"},
        {"path": media["corrupt"], "label": 1, "video": "corrupt", "method": "deepfakes"},
    ])
    out = folder / "crops"
    frames_before = detector.frames
    report = extract_faces(Manifest.read(manifest_path), out, frames_per_video=FRAMES, margin=MARGIN, size=SIZE,
                           detector=detector)
    return {"manifest": manifest_path, "out": out, "report": report,
            "frames_detected": detector.frames - frames_before}


def _by_video(report):
    return {v.video: v for v in report.videos}


def _marker(out: Path, folder: str) -> dict:
    return json.loads((out / folder / MARKER).read_text())


# ----------------------------------------------------------------------------- main run


def test_crops_and_manifest_rows(main_run):
    out, videos = main_run["out"], _by_video(main_run["report"])
    assert [v.status for v in main_run["report"].videos] == ["ok", "ok", "ok", "ok", "no_face", "corrupt"]
    assert videos["004"].folder == "all/real/original/004"
    assert videos["004_982"].folder == "all/fake/neuraltextures/004_982"

    manifest = Manifest.read(out)
    expected = {"004": (0, "original", None), "004_982": (1, "neuraltextures", "004"),
                "519_515": (1, "deepfakes", None), "short": (1, "synthetic", None)}
    assert {s.video for s in manifest} == set(expected)
    for video, (label, method, source) in expected.items():
        rows = [s for s in manifest if s.video == video]
        assert len(rows) == FRAMES == videos[video].crops, video
        assert {(s.label, s.method, s.source) for s in rows} == {(label, method, source)}
        marker_frames = [f["index"] for f in _marker(out, videos[video].folder)["frames"]]
        assert sorted(s.frame for s in rows) == marker_frames
        for sample in rows:
            assert sample.path == f"{videos[video].folder}/{sample.frame:06d}.png"
            with Image.open(manifest.resolve(sample.path)) as crop:
                assert crop.format == "PNG" and crop.mode == "RGB" and crop.size == (SIZE, SIZE)


def test_fake_is_cropped_with_its_source_boxes(main_run):
    out, videos = main_run["out"], _by_video(main_run["report"])
    fake, real = videos["004_982"], videos["004"]
    assert (fake.boxes_from, fake.paired_with, fake.fallback) == ("source", "004", None)
    assert videos["519_515"].boxes_from == "detected" and videos["519_515"].paired_with is None
    fake_frames = _marker(out, fake.folder)["frames"]
    real_frames = _marker(out, real.folder)["frames"]
    assert [f["index"] for f in fake_frames] == [f["index"] for f in real_frames]
    assert all(f["faces"] for f in real_frames)
    assert [[face["box"] for face in f["faces"]] for f in fake_frames] == \
           [[face["box"] for face in f["faces"]] for f in real_frames]
    # The fake's frames never went through the detector.
    detected = sum(v.frames for v in main_run["report"].videos if v.boxes_from == "detected")
    assert main_run["frames_detected"] == detected
    # Same boxes on the same frames: background pixels match, so crops are aligned.
    frame = f"{fake_frames[0]['index']:06d}.png"
    real_crop = np.asarray(Image.open(out / real.folder / frame), dtype=np.int16)
    fake_crop = np.asarray(Image.open(out / fake.folder / frame), dtype=np.int16)
    assert np.abs(real_crop - fake_crop)[:, :40].mean() < 12  # left strip: background, not re-rendered face


def test_mask_is_cropped_with_the_same_boxes(main_run):
    out, short = main_run["out"], _by_video(main_run["report"])["short"]
    assert short.masks == short.crops == FRAMES
    rows = [s for s in Manifest.read(out) if s.video == "short"]
    boxes = {f["index"]: f["faces"][0]["box"] for f in _marker(out, short.folder)["frames"]}
    gray = cv2.cvtColor(_mask_image(), cv2.COLOR_RGB2GRAY)
    for sample in rows:
        assert sample.mask == f"masks/{short.folder}/{sample.frame:06d}.png"
        with Image.open(out / sample.mask) as mask:
            assert mask.mode == "L" and mask.size == (SIZE, SIZE)
            saved = np.asarray(mask, dtype=np.int16)
        expected = crop_face(gray, boxes[sample.frame], MARGIN, SIZE).astype(np.int16)
        assert np.abs(saved - expected).mean() < 2
    assert all(s.mask is None for s in Manifest.read(out) if s.video != "short")


def test_no_face_and_corrupt_videos_are_reported(main_run, media):
    out, report = main_run["out"], main_run["report"]
    problems = {v.video: v for v in report.problems}
    assert set(problems) == {"gray", "corrupt"}
    assert problems["gray"].status == "no_face" and "no face" in problems["gray"].message
    assert problems["corrupt"].status == "corrupt" and str(media["corrupt"]) in problems["corrupt"].message
    saved = json.loads((out / REPORT).read_text())
    assert {(p["path"], p["status"]) for p in saved["problems"]} == {
        (str(media["gray"]), "no_face"), (str(media["corrupt"]), "corrupt")}
    assert saved["totals"]["rows"] == 4 * FRAMES


# ----------------------------------------------------------------------------- resume


def test_rerun_does_no_detection_and_an_interrupted_video_is_redone(main_run, detector, tmp_path):
    out = tmp_path / "crops"
    shutil.copytree(main_run["out"], out)
    manifest = Manifest.read(main_run["manifest"])
    before = (out / "manifest.csv").read_text()

    calls = detector.calls
    report = extract_faces(manifest, out, frames_per_video=FRAMES, margin=MARGIN, size=SIZE, detector=detector)
    assert detector.calls == calls
    assert [v.resumed for v in report.videos] == [True, True, True, True, True, False]  # corrupt: tried again
    assert (out / "manifest.csv").read_text() == before

    # An interrupted video: crops (and a stray one) written, marker not yet.
    short = _by_video(report)["short"]
    (out / short.folder / MARKER).unlink()
    (out / short.folder / "999999.png").write_bytes(b"partial")
    report = extract_faces(manifest, out, frames_per_video=FRAMES, margin=MARGIN, size=SIZE, detector=detector)
    assert detector.calls == calls + 1
    assert [v.video for v in report.videos if not v.resumed and v.ok] == ["short"]
    assert not (out / short.folder / "999999.png").exists()
    assert (out / "manifest.csv").read_text() == before


# ----------------------------------------------------------------------------- options


def test_all_faces_split_runs_share_one_manifest_and_new_settings_redo(media, detector, tmp_path):
    out = tmp_path / "crops"
    train = _write_manifest(tmp_path / "train.csv", [
        {"path": media["short"], "label": 0, "video": "short", "split": "train"}])
    val = _write_manifest(tmp_path / "val.csv", [
        {"path": media["small"], "label": 0, "video": "short_800", "split": "val"}])
    for path in (train, val):
        report = extract_faces(Manifest.read(path), out, frames_per_video=2, all_faces=True, detector=detector)
        assert report.videos[0].ok
    names = sorted(p.name for p in (out / "val/real/original/short_800").glob("*.png"))
    assert len(names) == 2 and all(n.endswith("_t0.png") for n in names)
    manifest = Manifest.read(out)  # the val run's manifest still lists the train crops
    assert {(s.split, s.video) for s in manifest} == {("train", "short"), ("val", "short_800")}
    assert report.rows_from_earlier_runs == 2

    # Other settings make other crops: the video is extracted again, not resumed.
    report = extract_faces(Manifest.read(train), out, frames_per_video=2, all_faces=True, size=128, detector=detector)
    assert not report.videos[0].resumed and report.videos[0].ok
    with Image.open(out / report.videos[0].crop_files[0]["path"]) as crop:
        assert crop.size == (128, 128)
    assert report.rows_from_earlier_runs == 0  # the val crops were made at 256: not mixed in


def test_a_fake_whose_size_differs_from_its_source_is_detected_and_reported(media, detector, tmp_path):
    manifest_path = _write_manifest(tmp_path / "videos.csv", [
        {"path": media["small"], "label": 1, "video": "short_800", "method": "resized", "source": "short"},
        {"path": media["short"], "label": 0, "video": "short"},
    ])
    seen = []
    report = extract_faces(Manifest.read(manifest_path), tmp_path / "crops", frames_per_video=2, detector=detector,
                           progress=lambda result, done, total: seen.append((result.video, done, total)))
    assert seen == [("short", 1, 2), ("short_800", 2, 2)]  # the source first, whatever the manifest order
    assert [v.video for v in report.videos] == ["short_800", "short"]  # the report keeps the manifest order
    fake = _by_video(report)["short_800"]
    assert fake.ok and fake.boxes_from == "detected" and fake.paired_with == "short"
    assert "800x450" in fake.fallback and "960x540" in fake.fallback
    assert [v.video for v in report.fallbacks] == ["short_800"]


def test_runs_of_consecutive_frames_for_clip_training(media, detector, tmp_path):
    """--run-length: frames come in runs of consecutive decoded frames, on the short video
    (decoded from the start) and on the FF++ pair (12 s: seeks to each run); a paired fake
    gets its source's boxes for every frame, masks follow the same frames, and the clip
    dataset's validation tiles are exactly the runs."""
    from fakescope.data.dataset import VideoClipDataset
    from fakescope.models.base import PreprocessSpec

    manifest_path = _write_manifest(tmp_path / "videos.csv", [
        {"path": media["short"], "label": 1, "video": "short", "method": "synthetic", "mask": media["mask"]},
        {"path": media["real"], "label": 0, "video": "004", "method": "original"},
        {"path": media["nt"], "label": 1, "video": "004_982", "method": "neuraltextures", "source": "004"},
    ])
    out = tmp_path / "crops"
    report = extract_faces(Manifest.read(manifest_path), out, frames_per_video=8, run_length=4, size=128,
                           detector=detector)
    videos = _by_video(report)
    assert all(v.ok and v.crops == 8 for v in videos.values()), report.to_dict()
    manifest = Manifest.read(out)
    frames = {video: sorted(s.frame for s in manifest if s.video == video) for video in videos}
    # 16 frames (0.64 s at 25 fps): runs centred at 0.16 s and 0.48 s
    assert frames["short"] == [2, 3, 4, 5, 10, 11, 12, 13]
    for video in ("004", "004_982"):  # 309 frames: two runs of 4 consecutive frames, far apart
        first, second = frames[video][:4], frames[video][4:]
        assert first == list(range(first[0], first[0] + 4)) and second == list(range(second[0], second[0] + 4))
        assert second[0] - first[-1] > 50
    assert frames["004_982"] == frames["004"]
    assert videos["004_982"].boxes_from == "source" and videos["004_982"].frames_detected_on_fake == 0
    assert sum(s.mask is not None for s in manifest if s.video == "short") == 8

    # Real consecutive frames: neighbours within a run look alike, far more than across runs.
    crops = {s.frame: np.asarray(Image.open(manifest.resolve(s.path)), dtype=float) for s in manifest if s.video == "004"}
    f = frames["004"]
    within = np.mean([np.abs(crops[a] - crops[b]).mean() for a, b in zip(f[:3] + f[4:7], f[1:4] + f[5:8])])
    across = np.abs(crops[f[3]] - crops[f[4]]).mean()
    assert within < 0.5 * across, (within, across)

    clips = VideoClipDataset(manifest, PreprocessSpec(input_size=64), frames=4, mode="tile")
    runs = sorted(tuple(manifest.samples[r].frame for r in clips.clip_rows(i)) for i in range(len(clips)))
    assert runs == sorted(tuple(frames[v][i:i + 4]) for v in videos for i in (0, 4))

    # A marker written before run_length existed counts as run_length 1: not redone.
    plain = tmp_path / "plain"
    first = extract_faces(Manifest.read(manifest_path).filter(video="short"), plain, frames_per_video=2,
                          detector=detector)
    marker_path = plain / first.videos[0].folder / MARKER
    marker = json.loads(marker_path.read_text())
    del marker["settings"]["run_length"]
    marker_path.write_text(json.dumps(marker))
    again = extract_faces(Manifest.read(manifest_path).filter(video="short"), plain, frames_per_video=2,
                          detector=detector)
    assert again.videos[0].resumed

    with pytest.raises(FakescopeError, match="multiple of the run length"):
        extract_faces(Manifest.read(manifest_path), out, frames_per_video=6, run_length=4, detector=detector)


# ----------------------------------------------------------------------------- CLI


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FAKESCOPE_DEBUG"}
    done = subprocess.run([sys.executable, "-m", "fakescope", "extract", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def test_cli_with_a_pool_of_two_workers(media, tmp_path):
    """Also the process-pool test: a paired fake gets its source's boxes only if the
    pool finished the source before starting it."""
    fake = shutil.copy(media["short"], tmp_path / "short_fake.mp4")  # same frames as its source
    manifest_path = _write_manifest(tmp_path / "videos.csv", [
        {"path": fake, "label": 1, "video": "short_fake", "method": "copy", "source": "short", "split": "test",
         "mask": media["mask"]},
        {"path": media["short"], "label": 0, "video": "short", "split": "test"},
        {"path": media["small"], "label": 0, "video": "short_800", "split": "test"},
        {"path": media["gray"], "label": 0, "video": "gray", "split": "train"},
    ])
    done = _cli(str(manifest_path), "out", "--frames", "2", "--size", "64", "--split", "test", "--workers", "2",
                cwd=tmp_path)
    assert done.returncode == EXIT_ALL_SCORED, done.stdout + done.stderr
    assert "6 crops from 3 of 3 videos" in done.stdout
    manifest = Manifest.read(tmp_path / "out")
    assert len(manifest) == 6 and {s.split for s in manifest} == {"test"}
    with Image.open(manifest.resolve(manifest.samples[0].path)) as crop:
        assert crop.size == (64, 64)
    assert sum(s.mask is not None for s in manifest) == 2
    videos = {v["video"]: v for v in json.loads((tmp_path / "out" / REPORT).read_text())["videos"]}
    assert videos["short_fake"]["boxes_from"] == "source" and videos["short_fake"]["fallback"] is None
    assert {v["pid"] for v in videos.values()}.isdisjoint({None, os.getpid()})


def test_cli_refuses_a_missing_manifest_in_one_line(tmp_path):
    done = _cli("missing.csv", "out", cwd=tmp_path)
    assert done.returncode == EXIT_USAGE
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing.csv" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()
