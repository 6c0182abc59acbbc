"""fakescope.tamper: training-free copy-move and splicing localization on real photos from ../shared.

The forgeries are made here from CIPLAB photos (benchmarks/tamper_casia.py builds the same ones, so its
numbers are reproducible). Copy-move ground truth is source ∪ copy, the usual convention.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from fakescope.evaluate.metrics import mask_f1
from fakescope.registry import UnknownNameError
from fakescope.tamper import TAMPER_METHODS, TamperFinding, analyse

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tamper_casia", ROOT / "benchmarks/tamper_casia.py")
forge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(forge)

METHODS = ("copy_move_block", "copy_move_keypoint", "jpeg_ghost", "noise_residual")


@pytest.fixture(scope="module")
def ciplab(shared_dir) -> Path:
    return shared_dir / "data/ciplab-faces/real"


def run(name: str, image: np.ndarray) -> TamperFinding:
    return TAMPER_METHODS.get(name)()(image)


def f1(mask: np.ndarray, truth: np.ndarray) -> float:
    """Pixel F1 at mask >= 0.5."""
    return mask_f1(mask, truth)


def test_registry_names_and_typo():
    assert list(TAMPER_METHODS) == sorted(METHODS)
    with pytest.raises(UnknownNameError, match="Did you mean 'jpeg_ghost'"):
        TAMPER_METHODS.get("jpeg_gohst")
    with pytest.raises(UnknownNameError):
        analyse(np.zeros((64, 64, 3), np.uint8), methods=["copy_move_blok"])


def test_contract_on_a_real_photo(ciplab):
    image = forge.read_rgb(ciplab / "0.jpg")
    findings = analyse(image)
    assert [f.method for f in findings] == sorted(METHODS)
    for f in findings:
        assert f.kind == ("copy_move" if f.method.startswith("copy_move") else "splicing")
        assert f.mask.shape == image.shape[:2] and f.mask.dtype == np.float32
        assert 0.0 <= f.mask.min() <= f.mask.max() <= 1.0
        assert 0.0 <= f.score <= 1.0 and f.found == (f.score >= 0.5)
        assert isinstance(f.message, str) and f.message and "\n" not in f.message
        json.dumps(f.detail)
    assert [f.method for f in analyse(image, methods=["jpeg_ghost"])] == ["jpeg_ghost"]


def test_too_small_input_is_reported_not_raised():
    tiny = np.full((12, 12, 3), 128, np.uint8)
    for f in analyse(tiny):
        assert not f.found and f.score == 0.0 and f.mask.shape == (12, 12) and not f.mask.any()
        assert "too small" in f.message
    with pytest.raises(ValueError):
        analyse(np.zeros((32, 32, 3), np.float32))


def test_keypoint_finds_rotated_scaled_copy(ciplab):
    image, truth = forge.rotated_copy(ciplab, angle=25.0, scale=1.2)
    f = run("copy_move_keypoint", image)
    assert f.found, f.message
    assert f1(f.mask, truth) >= 0.5
    region = f.detail["regions"][0]
    assert abs(abs(region["rotation_deg"]) - 25) < 3 and abs(region["scale"] - 1.2) < 0.06, region


def test_block_finds_translated_copy(ciplab):
    image, truth = forge.translated_copy(ciplab)
    f = run("copy_move_block", image)
    assert f.found, f.message
    assert f1(f.mask, truth) >= 0.8
    shift = f.detail["shifts"][0]
    assert (abs(shift["dx"]), abs(shift["dy"])) == (350, 230)


def test_copy_move_methods_quiet_on_pristine_photos(ciplab):
    for name in ("0.jpg", "1.jpg", "2.jpg", "3.jpg", "4.jpg", "7.jpg"):
        image = forge.read_rgb(ciplab / name)
        for method in ("copy_move_block", "copy_move_keypoint"):
            f = run(method, image)
            assert not f.found, (name, f.message)
            assert f.mask.max() < 0.5


def test_jpeg_ghost_of_low_quality_region(ciplab):
    image, truth = forge.ghost_splice(ciplab, q1=60, q2=95)
    f = run("jpeg_ghost", image)
    assert f.found, f.message
    assert f.mask[truth].mean() > 2 * f.mask[~truth].mean()
    assert "quality 60" in f.message
    single = run("jpeg_ghost", forge.jpeg_roundtrip(forge.textured_base(ciplab), 95))
    assert not single.found and single.score < f.score


def test_noise_residual_finds_noisier_region(ciplab):
    image, truth = forge.noise_splice(ciplab, sigma=6.0)
    f = run("noise_residual", image)
    assert f.found, f.message
    assert f.mask[truth].mean() > 3 * f.mask[~truth].mean()
    assert "noisier" in f.message
    clean = run("noise_residual", forge.read_rgb(ciplab / "6.jpg"))
    assert not clean.found and clean.score < f.score


def test_a_large_image_gets_a_full_size_mask(ciplab):
    """Methods work on a downscaled copy of a large picture; the mask comes back at its size
    (their speed is benchmarks/tamper_casia.py's to report, not a test's)."""
    image, truth = forge.translated_copy(ciplab)
    big = np.ascontiguousarray(np.repeat(np.repeat(image, 2, axis=0), 2, axis=1))  # 1200x800
    for method in METHODS:
        f = run(method, big)
        assert f.mask.shape == big.shape[:2] and f.mask.dtype == np.float32
