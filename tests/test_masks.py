"""Forgery masks: `scan --masks` on real data (the default model's mask head, Meso-4's
Grad-CAM), the pixel-level metrics `evaluate` reports, and FF++ mask videos from the
layout reader through face extraction.

Real data: ../shared/data/mesonet-samples (four face crops of 342, 264, 256 and 208 px)
and ../shared/data/ffpp-videos/fake/519_515.mp4 (a few frames). Made here: a gray
face-free image, copies of one crop under clashing names, a synthetic FF++ tree.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from media_factory import gray_png, lossless_video
from PIL import Image
from typer.testing import CliRunner

from fakescope import Scanner, ScanSettings
from fakescope.cli import app
from fakescope.data import Manifest
from fakescope.data.dataset import load_face_crop, normalise
from fakescope.data.extract import MARKER, extract_faces
from fakescope.data.layouts import read_layout
from fakescope.evaluate.metrics import MetricInputError, PixelMetrics, compute_pixel_metrics, mask_iou
from fakescope.scan.explain import GRAD_CAM, MASK_HEAD, overlay, uncrop
from fakescope.scan.faces import crop_square
from fakescope.scan.faces import Face, crop_face
from fakescope.models.zoo import load_detector
from fakescope.scan.scanner import media_key


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def default_detector():
    return load_detector()


@pytest.fixture(scope="module")
def meso_detector():
    return load_detector("meso4-df")


def _scan(detector, paths, **settings):
    scanner = Scanner(ScanSettings(device="cpu", **settings), detector=detector)
    torch.set_num_threads(1)  # the Scanner takes every core on CPU; these tests share the machine
    return scanner.scan(paths)


def _faces(report):
    return [face for result in report.results for face in result.faces]


def _png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "L"
        return np.asarray(image)


@pytest.fixture(scope="module")
def samples(shared_dir) -> Path:
    return shared_dir / "data/mesonet-samples"


# ----------------------------------------------------------------------------- scan --masks


@pytest.fixture(scope="module")
def default_crops_run(default_detector, samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("default_masks")
    report = _scan(default_detector, samples, crops=True, masks_dir=str(out / "masks"), heatmap_dir=str(out / "maps"))
    return out, report


def test_mask_head_masks_are_crop_sized_and_equal_the_mask_head(default_crops_run, default_detector):
    out, report = default_crops_run
    faces = _faces(report)
    assert len(faces) == 4 and all(r.status == "ok" for r in report.results)
    assert len(list((out / "masks").glob("*.png"))) == len(faces)  # one PNG per scored face, nothing else
    model, size = default_detector.model.eval(), default_detector.preprocess.input_size
    sides = []
    for result, face in zip(report.results, faces):
        assert face.mask_source == MASK_HEAD
        mask = _png(face.mask)
        with Image.open(result.path) as image:
            width, height = image.size
        assert face.crop_box == [0, 0, width, height]  # --crops: the (square) image is the crop
        assert mask.shape == (height, width)
        sides.append(width)
        # the PNG is the mask head's P(manipulated) upsampled from its grid (input / 8) to the crop, x 255
        batch = normalise(load_face_crop(result.path, size), default_detector.preprocess)[None]
        with torch.no_grad():
            logits = model(batch)["mask"]
        assert logits.shape[-2:] == (size // 8, size // 8)
        expected = torch.sigmoid(F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False))
        assert np.abs(mask.astype(float) - expected[0, 0].numpy() * 255).max() <= 1.0
        assert mask.max() > mask.min()  # a real map, not a constant
    assert sorted(sides) == [208, 256, 264, 342]


def test_heatmap_overlays_the_same_map(default_crops_run, default_detector):
    _, report = default_crops_run
    size = default_detector.preprocess.input_size
    for result, face in zip(report.results, _faces(report)):
        crop = load_face_crop(result.path, size)
        from_mask = cv2.resize(_png(face.mask).astype(np.float32) / 255, (size, size), interpolation=cv2.INTER_AREA)
        with Image.open(face.heatmap) as heatmap:
            written = np.asarray(heatmap.convert("RGB"), dtype=float)
        assert written.shape == (size, size, 3)
        assert np.abs(written - overlay(crop, from_mask)).mean() < 2.0


def test_scores_do_not_change_with_masks(default_crops_run, default_detector, samples):
    _, with_masks = default_crops_run
    plain = _scan(default_detector, samples, crops=True)
    assert [f.score for f in _faces(plain)] == pytest.approx([f.score for f in _faces(with_masks)], abs=1e-6)
    assert all(f.mask is None and f.heatmap is None and f.mask_source is None for f in _faces(plain))


def test_grad_cam_masks_for_a_model_without_mask_head(meso_detector, samples, tmp_path):
    """Meso-4 has no mask head: its masks are Grad-CAM, scaled to peak 1, times the face's P(fake)."""
    result = CliRunner().invoke(app, [
        "scan", str(samples), "--crops", "--model", "meso4-df", "--device", "cpu", "--quiet",
        "--masks", str(tmp_path / "masks"), "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv"),
    ])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["settings"]["masks_dir"] == str(tmp_path / "masks")
    faces = [face for entry in data["results"] for face in entry["faces"]]
    assert len(faces) == 4 == len(list((tmp_path / "masks").glob("*.png")))
    for entry, face in zip(data["results"], faces):
        assert face["mask_source"] == GRAD_CAM and Path(face["mask"]).is_file()
        mask = _png(face["mask"])
        with Image.open(entry["path"]) as image:
            assert mask.shape == image.size[::-1]
        assert mask.max() <= round(255 * face["score"]) + 1  # never above the face's P(fake)
        if face["score"] > 0.5:  # the map reaches (nearly) P(fake) where the evidence peaks
            assert mask.max() >= 0.8 * 255 * face["score"]
    with open(tmp_path / "r.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["mask"], r["mask_source"]) for r in rows] == [(f["mask"], f["mask_source"]) for f in faces]
    assert json.loads(rows[0]["crop_box"]) == faces[0]["crop_box"]


def test_video_frames_get_one_mask_each_and_a_face_free_image_none(default_detector, shared_dir, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "519_515.mp4").symlink_to(shared_dir / "data/ffpp-videos/fake/519_515.mp4")
    gray_png(media / "gray.png")
    report = _scan(default_detector, media, frames=3, masks_dir=str(tmp_path / "masks"))
    by_name = {Path(r.path).name: r for r in report.results}
    video, gray = by_name["519_515.mp4"], by_name["gray.png"]
    assert video.status == "ok" and gray.status == "no_face"
    written = sorted((tmp_path / "masks").glob("*.png"))
    assert len(written) == len(video.faces) >= 3
    assert not [p for p in written if media_key(media / "gray.png") in p.name]
    for face in video.faces:
        mask = _png(face.mask)
        left, top, right, bottom = face.crop_box
        assert mask.shape == (bottom - top, right - left)
        # the square around the face box with the model's margin (0.7 for the default)
        x1, y1, x2, y2 = face.box
        margin = default_detector.preprocess.margin
        assert right - left == pytest.approx(margin * max(x2 - x1, y2 - y1), abs=1.5)
        assert face.mask_source == MASK_HEAD
        assert f"_f{face.frame_index:06d}_" in Path(face.mask).name


def test_mask_names_are_stable_safe_and_collision_free(default_detector, samples, tmp_path):
    crop = samples / "real/real00772.jpg"
    names = ["a/x/face.jpg", "b/x/face.jpg", "a b/x/face.jpg", "a_b/x/face.jpg", "a/x/face.png"]
    for name in names:
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(crop, tmp_path / "in" / name)
    first = _scan(default_detector, tmp_path / "in", crops=True, masks_dir=str(tmp_path / "m1"))
    again = _scan(default_detector, tmp_path / "in", crops=True, masks_dir=str(tmp_path / "m2"))
    first_names = [Path(f.mask).name for f in _faces(first)]
    assert len(set(first_names)) == len(names) == len(list((tmp_path / "m1").glob("*.png")))
    assert first_names == [Path(f.mask).name for f in _faces(again)]  # stable across runs
    for name in first_names:
        assert all(c.isalnum() or c in "-_." for c in name), name


def test_media_key():
    key = media_key("/data/clips ü/my clip (1).mp4")
    assert key.startswith("clips_my_clip_1_.mp4-") and len(key.split("-")[-1]) == 8
    assert all(c.isalnum() or c in "-_." for c in key)
    assert media_key("/data/clips ü/my clip (1).mp4") == key
    assert media_key("/data/clips_/my_clip_1_.mp4") != key


def test_crop_square_is_where_crop_face_cuts_and_uncrop_inverts_it():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    for box in [(30.2, 20.7, 90.4, 100.1), (0.0, 0.0, 160.0, 120.0), (120.0, 80.0, 170.0, 125.0)]:
        left, top, right, bottom = crop_square(box, 1.3)
        side = right - left
        assert side == bottom - top
        padded = cv2.copyMakeBorder(image, 200, 200, 200, 200, cv2.BORDER_REPLICATE)
        expected = padded[top + 200 : bottom + 200, left + 200 : right + 200]
        np.testing.assert_array_equal(crop_face(image, box, 1.3, side), expected)
        # a map of the crop placed back on the frame: the frame pixels it covers, 0 elsewhere
        crop_map = rng.random((side, side)).astype(np.float32)
        placed = uncrop(crop_map, (left, top, right, bottom), (120, 160))
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(bottom, 120), min(right, 160)
        np.testing.assert_array_equal(placed[y0:y1, x0:x1], crop_map[y0 - top : y1 - top, x0 - left : x1 - left])
        assert placed.sum() == pytest.approx(placed[y0:y1, x0:x1].sum())


# ----------------------------------------------------------------------------- pixel metrics by hand


def test_pixel_metrics_by_hand():
    # fake A (2x2): truth [[1,1],[0,0]], predicted P [[.9,.2],[.6,.1]] -> called [[1,0],[1,0]]
    #   correct: (1,1) yes, (1,0) no, (0,1) no, (0,0) yes -> 2 of 4; IoU: inter 1, union 3 -> 1/3
    # real B (2x2): truth all 0, P [[.7,.3],[.1,.0]] -> called one pixel: correct 3 of 4; FP 1 of 4 pixels
    truth_a, p_a = np.array([[1, 1], [0, 0]]), np.array([[0.9, 0.2], [0.6, 0.1]])
    truth_b, p_b = np.zeros((2, 2)), np.array([[0.7, 0.3], [0.1, 0.0]])
    out = compute_pixel_metrics([p_a, p_b], [truth_a, truth_b], [1, 0])
    assert out["pixel_acc"] == pytest.approx(5 / 8)
    assert out["iou"] == pytest.approx(1 / 3) and out["n_iou"] == 1
    assert out["fp_pixel_rate"] == pytest.approx(1 / 4)  # reals only: 1 of B's 4 pristine pixels called
    # pixel AUC: positives {.9, .2}; negatives {.6, .1, .7, .3, .1, .0}
    # .9 beats all 6; .2 beats .1, .1, .0 -> 3; (6 + 3) / (2 * 6) = 0.75
    assert out["pixel_auc"] == pytest.approx(0.75)
    assert (out["n"], out["n_fake"], out["n_real"], out["n_pixels"]) == (2, 1, 1, 8)
    assert out["undefined"] == {}


def test_fp_pixel_rate_counts_real_pixels_only():
    # reals: B above (1 of 4 called) and C (1x2, both called) -> 3 of 6 pristine pixels called
    out = compute_pixel_metrics([np.array([[0.7, 0.3], [0.1, 0.0]]), np.array([[0.5, 0.99]])],
                                [np.zeros((2, 2)), np.zeros((1, 2))], [0, 0])
    assert out["fp_pixel_rate"] == pytest.approx(0.5)
    assert out["pixel_acc"] == pytest.approx(0.5)
    assert out["iou"] is None and "no fake sample" in out["undefined"]["iou"]
    assert out["pixel_auc"] is None and "pristine" in out["undefined"]["pixel_auc"]


def test_pixel_auc_ties_and_merge():
    # one positive and one negative pixel with the same P: a tie, half a pair
    out = compute_pixel_metrics([np.array([[0.4, 0.4]])], [np.array([[1, 0]])], [1])
    assert out["pixel_auc"] == pytest.approx(0.5)
    # merging two halves equals one pass over both
    a, b = PixelMetrics(), PixelMetrics()
    a.add(np.array([[0.9, 0.2]]), np.array([[1, 0]]), 1)
    b.add(np.array([[0.6, 0.1]]), np.array([[0, 1]]), 1)
    both = compute_pixel_metrics([np.array([[0.9, 0.2]]), np.array([[0.6, 0.1]])],
                                 [np.array([[1, 0]]), np.array([[0, 1]])], [1, 1])
    merged = a.merge(b).result()
    assert merged == both
    # IoU per fake then averaged: 1/1 and 0/2 -> 0.5; AUC: .9 > .6, .2; .1 < both -> 2 of 4
    assert both["iou"] == pytest.approx(0.5) and both["pixel_auc"] == pytest.approx(0.5)


def test_fake_with_empty_mask_and_threshold():
    out = compute_pixel_metrics([np.array([[0.5, 0.49]])], [np.array([[0, 0]])], [1])
    assert out["n_fake_empty"] == 1 and out["iou"] is None  # nothing to find: no IoU
    assert out["pixel_acc"] == pytest.approx(0.5)  # 0.5 is called manipulated (inclusive), 0.49 not
    assert mask_iou(np.array([[0.1]]), np.array([[0]])) is None
    assert mask_iou(np.array([[0.5, 0.7, 0.2]]), np.array([[1, 0, 1]])) == pytest.approx(1 / 3)


def test_pixel_metric_inputs_are_checked():
    with pytest.raises(MetricInputError, match="differ in shape"):
        compute_pixel_metrics([np.zeros((2, 2))], [np.zeros((2, 3))], [1])
    with pytest.raises(MetricInputError, match="binarise"):
        compute_pixel_metrics([np.zeros((1, 2))], [np.array([[0, 255]])], [1])
    with pytest.raises(MetricInputError, match="probabilities"):
        compute_pixel_metrics([np.array([[1.5, 0]])], [np.zeros((1, 2))], [1])


# ----------------------------------------------------------------------------- FF++ masks: layout -> extraction


FRAMES, SIDE = 8, 160
BOX = (50.0, 30.0, 110.0, 90.0)  # the stand-in detector's face box (60 px, in 160x120 frames)


def _mask_frame(i: int) -> np.ndarray:
    """Frame i of the mask video: a white block whose left edge moves 6 px a frame."""
    frame = np.zeros((120, SIDE), np.uint8)
    frame[35:85, 40 + 6 * i : 80 + 6 * i] = 255
    return frame


def _video_frame(i: int) -> np.ndarray:
    frame = np.full((120, SIDE, 3), 30 + 25 * i, np.uint8)
    frame[:, :, 2] = 200
    return frame


class FixedBox:
    """A face detector that finds one face at BOX in every frame."""

    def detect(self, frames):
        return [[Face(box=BOX, score=0.99)] for _ in frames]


def test_ffpp_mask_videos_are_indexed_and_cropped_frame_by_frame(tmp_path):
    root = tmp_path / "ffpp"
    videos = [_video_frame(i) for i in range(FRAMES)]
    lossless_video(root / "original_sequences/youtube/c23/videos/004.mp4", videos)
    lossless_video(root / "manipulated_sequences/Deepfakes/c23/videos/004_982.mp4", videos)
    lossless_video(root / "manipulated_sequences/Deepfakes/c23/videos/033_097.mp4", videos)  # no mask video
    masks = [np.repeat(_mask_frame(i)[:, :, None], 3, axis=2) for i in range(FRAMES)]
    lossless_video(root / "manipulated_sequences/Deepfakes/masks/videos/004_982.mp4", masks)

    manifest = read_layout("ffpp", root, methods="deepfakes", require_splits="false")
    mask_of = {s.video: s.mask for s in manifest}
    assert mask_of == {"004": None, "004_982": "manipulated_sequences/Deepfakes/masks/videos/004_982.mp4",
                       "033_097": None}

    out = tmp_path / "crops"
    report = extract_faces(manifest, out, frames_per_video=4, margin=1.3, size=64, detector=FixedBox())
    fake = next(v for v in report.videos if v.video == "004_982")
    assert fake.status == "ok" and fake.boxes_from == "source" and fake.masks == fake.crops == 4
    assert not fake.warnings
    rows = [s for s in Manifest.read(out) if s.video == "004_982"]
    assert len(rows) == 4 and all(s.mask for s in rows)
    assert all(s.mask is None for s in Manifest.read(out) if s.video != "004_982")
    marker = json.loads((out / fake.folder / MARKER).read_text())
    boxes = {f["index"]: f["faces"][0]["box"] for f in marker["frames"]}
    for sample in rows:
        mask = _png(out / sample.mask).astype(float)
        assert mask.shape == (64, 64)
        # the crop of the mask frame with the same index, through the same box ...
        expected = crop_face(_mask_frame(sample.frame), boxes[sample.frame], 1.3, 64).astype(float)
        error = np.abs(mask - expected).mean()
        assert error < 3.0
        # ... and not of a neighbouring frame (the block moves 6 px, ~5 crop px, a frame)
        for other in (sample.frame - 1, sample.frame + 1):
            if 0 <= other < FRAMES:
                neighbour = crop_face(_mask_frame(other), boxes[sample.frame], 1.3, 64).astype(float)
                assert np.abs(mask - neighbour).mean() > 3 * max(error, 1.0)
        # and the face crop beside it is the video frame of that same index
        with Image.open(out / sample.path) as crop:
            assert abs(np.asarray(crop)[..., 0].mean() - (30 + 25 * sample.frame)) < 3
