"""Fakes synthesized from real faces (data.synthesis, `fakescope synth`), on real shared face crops."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fakescope.data.dataset import load_face_crop
from fakescope.data.manifest import Manifest, Sample
from fakescope.data.synthesis import (
    SyntheticFakeDataset,
    boundary_from_mask,
    detect_landmarks68,
    fit_landmarks68,
    landmark_mask,
    self_blend,
    template_five_points,
    xray_blend,
)
from fakescope.models.base import PreprocessSpec

N_FACES = 5
SIZE = 256


@pytest.fixture(scope="module")
def real_paths(shared_dir) -> list[Path]:
    paths = sorted((shared_dir / "data" / "ffpp-crops" / "deepfakes" / "real").glob("*.png"))[:N_FACES]
    if len(paths) < N_FACES:
        pytest.skip("not enough real ffpp crops in the shared data")
    return paths


@pytest.fixture(scope="module")
def faces(real_paths):
    """(images, MTCNN 5 points, fitted 68 landmarks) of the real crops, detected once."""
    from fakescope.scan.faces import MTCNNFaceDetector

    detector = MTCNNFaceDetector(min_face_size=80, min_confidence=0.9)  # crop faces are large: fast
    images = [load_face_crop(p, SIZE) for p in real_paths]
    five = []
    for image in images:
        found = detector.detect([image])[0]
        assert found, "MTCNN should find the face of a real ffpp crop"
        five.append(np.asarray(found[0].landmarks))
    landmarks = [fit_landmarks68(points) for points in five]
    return images, five, landmarks


def test_detect_landmarks68_finds_one_face_per_crop(faces):
    images, _, landmarks = faces
    from fakescope.scan.faces import MTCNNFaceDetector

    detector = MTCNNFaceDetector(min_face_size=32, min_confidence=0.9)
    found = detect_landmarks68(images[:1] + [np.full((SIZE, SIZE, 3), 127, np.uint8)], detector)
    assert detector.min_face_size == 32  # restored
    np.testing.assert_allclose(found[0], landmarks[0], atol=8.0)  # another pyramid: a few px off
    assert found[1] is None  # no face: the callers fall back to the ellipse mask


def _centre_and_corners(mask: np.ndarray) -> tuple[float, float]:
    h, w = mask.shape
    centre = float(mask[h // 2 - 8 : h // 2 + 8, w // 2 - 8 : w // 2 + 8].mean())
    c = 12
    corners = np.concatenate([mask[:c, :c].ravel(), mask[:c, -c:].ravel(), mask[-c:, :c].ravel(), mask[-c:, -c:].ravel()])
    return centre, float(corners.max())


def test_template_fit_lands_on_the_mtcnn_points(faces):
    _, five, landmarks = faces
    for points, lm in zip(five, landmarks):
        assert lm is not None and lm.shape == (68, 2)
        fitted = lm
        errors = np.linalg.norm(template_five_points(fitted) - points, axis=1)
        eye_distance = np.linalg.norm(points[0] - points[1])
        # A rigid mean shape cannot follow expression and head turn exactly: a few px at 256.
        assert errors.mean() < 0.08 * eye_distance, errors
        assert errors[:2].max() < 0.08 * eye_distance, errors  # eyes
        assert errors.max() < 12, errors
        # The 68 points lie on the face: inside the crop, chin below the mouth, brows above the eyes.
        assert (lm > -0.05 * SIZE).all() and (lm < 1.05 * SIZE).all()
        assert lm[8, 1] > lm[57, 1] > lm[33, 1] > lm[39, 1] > lm[19, 1]


def test_mask_is_soft_and_covers_the_face_not_the_corners(faces):
    _, _, landmarks = faces
    for seed, lm in enumerate(landmarks):
        mask = landmark_mask((SIZE, SIZE), lm, np.random.default_rng(seed), region="face")
        assert mask.dtype == np.float32 and mask.shape == (SIZE, SIZE)
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert ((mask > 0.05) & (mask < 0.95)).sum() > 200  # a soft edge
        centre, corners = _centre_and_corners(mask)
        assert centre > 0.9 and corners == 0.0
    # No landmarks: the central ellipse fallback behaves the same way.
    fallback = landmark_mask((SIZE, SIZE), None, np.random.default_rng(0))
    centre, corners = _centre_and_corners(fallback)
    assert centre > 0.9 and corners == 0.0 and ((fallback > 0.05) & (fallback < 0.95)).any()


def test_self_blend_changes_the_face_only(faces):
    images, _, landmarks = faces
    for seed, (image, lm) in enumerate(zip(images, landmarks)):
        rng = np.random.default_rng(seed)
        fake, mask = self_blend(image, lm, rng, region="face")
        assert fake.dtype == np.uint8 and fake.shape == image.shape and mask.shape == image.shape[:2]
        diff = np.abs(fake.astype(np.float32) - image.astype(np.float32)).mean(axis=2)
        outside, inside = mask < 1e-3, mask > 0.5 * mask.max()
        assert diff[outside].mean() < 0.5
        assert diff[inside].mean() > 1.0
        # Same generator seed, same fake.
        again, again_mask = self_blend(image, lm, np.random.default_rng(seed), region="face")
        assert np.array_equal(again, fake) and np.array_equal(again_mask, mask)


def test_xray_blend_takes_another_face_and_peaks_on_the_edge(faces):
    images, _, landmarks = faces
    target, target68 = images[0], landmarks[0]
    donors = list(zip(images[1:], landmarks[1:]))
    fake, mask, boundary, donor_index = xray_blend(target, target68, donors, np.random.default_rng(3), region="face")
    assert 0 <= donor_index < len(donors)
    assert not np.array_equal(donors[donor_index][0], target)
    diff = np.abs(fake.astype(np.float32) - target.astype(np.float32)).mean(axis=2)
    assert diff[mask < 1e-3].mean() < 0.5
    assert diff[mask > 0.9].mean() > 3.0  # another person's face inside
    np.testing.assert_allclose(boundary, boundary_from_mask(mask))
    assert boundary.max() > 0.98 and boundary.min() >= 0.0
    edge = (mask > 0.3) & (mask < 0.7)
    assert boundary[edge].min() > 0.8  # the boundary is the mask's edge ...
    assert boundary[mask > 0.999].max() < 0.01 and boundary[mask < 0.001].max() < 0.01  # ... and nothing else


@pytest.fixture(scope="module")
def landmark_json(tmp_path_factory, real_paths, faces):
    """Side JSON in the dataset's format, so the dataset tests need no MTCNN."""
    path = tmp_path_factory.mktemp("synth") / "landmarks.json"
    entries = {str(p): (lm / SIZE).tolist() for p, lm in zip(real_paths, faces[2])}
    path.write_text(json.dumps(entries))
    return path


def test_dataset_is_deterministic_and_balanced(real_paths, landmark_json):
    repeats = 8  # the same few faces many times over: enough items to count labels
    samples = [Sample(path=str(p), label=0) for p in real_paths] * repeats
    samples.append(Sample(path=str(real_paths[0]), label=1))  # fakes of the manifest are left out
    manifest = Manifest(samples, "/")
    spec = PreprocessSpec(input_size=SIZE)
    first = SyntheticFakeDataset(manifest, spec, kind="both", seed=7, landmarks_json=landmark_json)
    second = SyntheticFakeDataset(manifest, spec, kind="both", seed=7, landmarks_json=landmark_json)
    assert len(first) == N_FACES * repeats

    labels = []
    for index in range(len(first)):
        item = first[index]
        assert item["image"].shape == (3, SIZE, SIZE) and item["mask"].shape == (1, SIZE, SIZE)
        if item["label"] == 0:
            assert item["mask"].abs().sum() == 0
        else:
            assert item["mask"].max() > 0.2
        labels.append(int(item["label"]))
    assert 0.3 <= np.mean(labels) <= 0.7

    for index in (0, 3, 11):
        a, b = first[index], second[index]
        assert a["label"] == b["label"]
        assert a["image"].equal(b["image"]) and a["mask"].equal(b["mask"])
    fake_index = labels.index(1)
    other_seed = SyntheticFakeDataset(manifest, spec, kind="both", seed=8, landmarks_json=landmark_json)
    other_seed.p_fake = 1.0
    assert not other_seed[fake_index]["image"].equal(first[fake_index]["image"])


def test_synth_command_writes_fakes_masks_previews_and_manifest(real_paths, tmp_path):
    faces_dir = tmp_path / "reals"
    faces_dir.mkdir()
    for path in real_paths[:3]:
        shutil.copy(path, faces_dir / path.name)
    out_dir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "fakescope", "synth", str(faces_dir), str(out_dir), "--n", "2", "--kind", "both",
         "--seed", "1"],
        check=False, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with open(out_dir / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert {r["method"] for r in rows} == {"sbi", "xray"}
    import cv2

    for row in rows:
        assert row["label"] == "1"
        fake = cv2.imread(str(out_dir / row["path"]))
        mask = cv2.imread(str(out_dir / row["mask"]), cv2.IMREAD_GRAYSCALE)
        preview = cv2.imread(str(out_dir / row["path"].replace("_fake.png", "_preview.png")))
        assert fake.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE) and mask.max() > 0
        assert preview.shape == (SIZE, 4 * SIZE, 3)
        assert Path(row["source"]).is_file()
    assert (out_dir / "landmarks.json").is_file()
