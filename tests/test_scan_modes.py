"""scan --mode: the whole-image path (views at the picture's own resolution, patch map, attribution)
and how its verdict sits beside the faces', with a small whole-image model registered here."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.errors import FakescopeError
from fakescope.models.base import DetectorModel, save_checkpoint
from fakescope.models.spec import PreprocessSpec
from fakescope.scan.results import FileResult
from fakescope.scan.scanner import Scanner, ScanSettings, parse_mode
from fakescope.scan.whole_image import cut_views


class BrightnessProbe(DetectorModel):
    """A whole-image 'detector' whose logit is the mean brightness of its view (scaled): views of
    known content give known scores, so the multi-view plumbing can be checked exactly."""

    default_preprocess = PreprocessSpec(input_size=32, subject="image")

    def __init__(self, attribution_classes=None):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(4.0))
        self.attribution_classes = attribution_classes
        self.head = torch.nn.Linear(1, len(attribution_classes)) if attribution_classes else None

    def forward(self, x):
        brightness = x.mean(dim=(1, 2, 3))
        out = {"logits": self.scale * (brightness - 0.5), "mask": self.scale * (x.mean(1, keepdim=True)[:, :, ::4, ::4] - 0.5)}
        if self.head is not None:
            out["attribution"] = self.head(brightness[:, None])
        return out


@pytest.fixture
def probe_checkpoint(register_model, tmp_path):
    register_model("test_brightness_probe", BrightnessProbe)
    model = BrightnessProbe(attribution_classes=["real", "gan", "diffusion"])
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[-4.0], [0.0], [4.0]]))
        model.head.bias.zero_()
    path = tmp_path / "probe.pt"
    save_checkpoint(path, model, "test_brightness_probe", BrightnessProbe.default_preprocess,
                    arch_kwargs={"attribution_classes": ["real", "gan", "diffusion"]})
    return path


def test_views_are_cut_at_the_pictures_resolution_not_resized():
    picture = np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    views, boxes, fitted = cut_views(picture, 64, 5)
    assert fitted is picture and len(views) == 5
    assert boxes[0] == (218, 118, 282, 182)  # the centre first
    assert set(boxes[1:]) == {(0, 0, 64, 64), (436, 0, 500, 64), (0, 236, 64, 300), (436, 236, 500, 300)}
    for view, (left, top, right, bottom) in zip(views, boxes):
        assert np.array_equal(view, picture[top:bottom, left:right])
    small = np.zeros((20, 40, 3), np.uint8)  # smaller than a view: upscaled once, keeping its shape
    views, boxes, fitted = cut_views(small, 32, 5)
    assert fitted.shape == (32, 64, 3) and len(views) == len(set(boxes)) == 3  # centre, left, right
    assert len(cut_views(np.zeros((32, 32, 3), np.uint8), 32, 9)[0]) == 1  # one view: the whole picture


def test_mode_image_scores_the_picture_whole_with_its_map_and_attribution(probe_checkpoint, tmp_path):
    picture = np.zeros((128, 256, 3), np.uint8)
    picture[:, 128:] = 255  # right half white: views there score high
    path = tmp_path / "half.png"
    Image.fromarray(picture).save(path)
    scanner = Scanner(ScanSettings(mode="image", image_model=str(probe_checkpoint), masks_dir=str(tmp_path / "masks"),
                                   device="cpu"))
    result = scanner.scan_file(path)
    whole = result.whole_image
    assert result.status == "ok" and result.score_source == "whole_image" and result.faces == []
    assert whole.views == 5 and len(whole.view_scores) == 5
    logits = [4.0 * (np.mean(picture[t:b, l:r]) / 255.0 - 0.5) for l, t, r, b in cut_views(picture, 32, 5)[1]]
    assert whole.score == pytest.approx(1 / (1 + np.exp(-np.mean(logits))), abs=1e-5)
    assert result.score == whole.score and result.verdict == whole.verdict
    assert set(whole.attribution) == {"real", "gan", "diffusion"} and sum(whole.attribution.values()) == pytest.approx(1, abs=1e-5)
    assert whole.generator == max(whole.attribution, key=whole.attribution.get)
    patch_map = np.asarray(Image.open(whole.patch_map))
    assert patch_map.shape == (128, 256)
    covered_left, covered_right = patch_map[:32, :32], patch_map[:32, -32:]  # corner views
    assert covered_right.mean() > 200 and covered_left.mean() < 60
    round_trip = FileResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert round_trip.whole_image == whole


def test_auto_scores_a_faceless_picture_whole_and_leaves_faces_to_the_face_path(probe_checkpoint, shared_dir, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((96, 96, 3), 200, np.uint8)).save(blank)
    scanner = Scanner(ScanSettings(image_model=str(probe_checkpoint), device="cpu"))  # mode auto
    faceless = scanner.scan_file(blank)
    assert faceless.status == "ok" and faceless.whole_image is not None and faceless.score_source == "whole_image"
    assert "analysed whole" in faceless.message
    face = scanner.scan_file(shared_dir / "data/ciplab-faces/real/0.jpg")
    assert face.faces and face.whole_image is None and face.score_source == "faces"
    both = Scanner(ScanSettings(mode="faces,image", image_model=str(probe_checkpoint), device="cpu")).scan_file(
        shared_dir / "data/ciplab-faces/real/0.jpg")
    assert both.faces and both.whole_image is not None  # both run, both show
    graver = max((both.whole_image.verdict, both.tracks[0].verdict), key=["real", "uncertain", "fake"].index)
    assert both.verdict == graver


def test_without_a_whole_image_model_auto_is_the_face_path(tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((96, 96, 3), 200, np.uint8)).save(blank)
    assert Scanner(ScanSettings(device="cpu")).scan_file(blank).status == "no_face"
    with pytest.raises(FakescopeError, match="--image-model"):
        Scanner(ScanSettings(mode="image", device="cpu"))


def test_a_face_model_is_refused_as_the_image_model():
    with pytest.raises(FakescopeError, match="scores face crops"):
        Scanner(ScanSettings(mode="image", image_model="efficientnet-lite0-faces", device="cpu"))


@pytest.mark.parametrize("text", ["bogus", "auto,faces", "", "faces,,imag"])
def test_bad_modes_are_refused(text):
    with pytest.raises(FakescopeError, match="--mode"):
        parse_mode(text)


def test_cli_prints_the_whole_picture_line(probe_checkpoint, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((96, 96, 3), 230, np.uint8)).save(blank)
    run = CliRunner().invoke(app, ["scan", str(blank), "--mode", "image", "--image-model", str(probe_checkpoint),
                                   "--json", str(tmp_path / "out.json")])
    assert run.exit_code == 0, run.output
    assert "whole picture: FAKE" in run.output and "generator: diffusion" in run.output
    saved = json.loads((tmp_path / "out.json").read_text())["results"][0]
    assert saved["whole_image"]["views"] == 5 and saved["score_source"] == "whole_image"


def test_mode_tamper_finds_a_casia_copy_move_and_the_report_shows_its_mask(shared_dir, tmp_path):
    from fakescope.scan.report import render_html

    sample = shared_dir / "data/image-forensics/casia2-samples/tampered/Tp_S_NNN_S_N_pla20095_pla20095_02347.png"
    report = Scanner(ScanSettings(mode="tamper", masks_dir=str(tmp_path / "masks"), device="cpu")).scan([sample])
    result = report.results[0]
    assert result.status == "ok" and result.verdict is None and result.faces == []  # evidence, not a P(fake)
    assert result.tamper.found and "copy_move_keypoint" in result.tamper.methods_found
    keypoint = next(f for f in result.tamper.findings if f.method == "copy_move_keypoint")
    assert keypoint.kind == "copy_move" and "copied" in keypoint.message
    truth = np.asarray(Image.open(sample.parent.parent / "mask" / sample.name)) > 127
    predicted = np.asarray(Image.open(keypoint.mask)) >= 128
    assert predicted.shape == truth.shape[:2]
    assert (predicted & truth).sum() > 0.5 * truth.sum()  # most of the pasted region is marked
    assert {f.method for f in result.tamper.findings} == {"copy_move_block", "copy_move_keypoint", "jpeg_ghost",
                                                         "noise_residual"}
    html = render_html(report.to_dict())
    assert "TAMPERED" in html and "copy_move_keypoint" in html and html.count("data:image/jpeg") >= 4
    assert "<svg" not in html  # a picture, not a video


def test_evaluate_scores_whole_images_as_scan_does(probe_checkpoint, tmp_path):
    """`fakescope evaluate` on a whole-image model uses the scanner's own views and mean logit."""
    from fakescope.data.manifest import Manifest
    from fakescope.evaluate.runner import evaluate

    rng = np.random.default_rng(1)
    names = []
    for i, label in enumerate((0, 1, 0, 1)):
        picture = rng.integers(0, 256, (80 + 40 * i, 120, 3), dtype=np.uint8)
        picture[:, 60:] //= (1 + label)  # different brightness per half: views differ
        Image.fromarray(picture).save(tmp_path / f"p{i}.png")
        names.append((f"p{i}.png", label))
    (tmp_path / "manifest.csv").write_text("path,label\n" + "".join(f"{n},{l}\n" for n, l in names))
    result = evaluate(str(probe_checkpoint), [("pictures", Manifest.read(tmp_path / "manifest.csv"))], device="cpu")
    scanner = Scanner(ScanSettings(mode="image", image_model=str(probe_checkpoint), device="cpu"))
    for prediction, (name, _) in zip(result.predictions_of("pictures"), names):
        assert prediction.score == pytest.approx(scanner.scan_file(tmp_path / name).whole_image.score, abs=1e-6)


def test_calibrating_a_whole_image_model_fits_the_logits_scan_sees(probe_checkpoint, tmp_path):
    """calibrate fits on the views' mean logit (what scan scores), and the scan then applies it."""
    from fakescope.data.manifest import Manifest
    from fakescope.evaluate.calibrate import calibrate_checkpoint, raw_logits
    from fakescope.models.zoo import load_detector

    rng = np.random.default_rng(2)
    rows = []
    for i in range(24):
        label = i % 2
        base = 150 if label else 90  # fakes brighter: the probe's logit separates them, not perfectly
        picture = np.clip(rng.normal(base, 40, (64 + 8 * (i % 5), 96, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(picture).save(tmp_path / f"p{i}.png")
        rows.append(f"p{i}.png,{label}\n")
    (tmp_path / "manifest.csv").write_text("path,label\n" + "".join(rows))
    manifest = Manifest.read(tmp_path / "manifest.csv")
    scanner = Scanner(ScanSettings(mode="image", image_model=str(probe_checkpoint), device="cpu"))
    logits = raw_logits(load_detector(probe_checkpoint), manifest, torch.device("cpu"))
    for i in (0, 7):
        expected = scanner._image_scorer.logit(np.asarray(Image.open(tmp_path / f"p{i}.png")))[0]
        assert logits[i] == pytest.approx(expected, abs=1e-5)
    calibrated = tmp_path / "calibrated.pt"
    calibration = calibrate_checkpoint(probe_checkpoint, [("pictures", manifest)], calibrated, device="cpu")
    after = Scanner(ScanSettings(mode="image", image_model=str(calibrated), device="cpu")).scan_file(tmp_path / "p0.png")
    assert after.whole_image.threshold == pytest.approx(calibration.threshold)
    # the calibration is affine per view, so it commutes with the mean over views
    expected = 1 / (1 + np.exp(-(calibration.scale * logits[0] + calibration.bias)))
    assert after.whole_image.score == pytest.approx(expected, abs=1e-5)
