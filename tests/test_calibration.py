"""Calibrated P(fake), three-way verdicts and leakage warnings, on real faces where it matters."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.data.fingerprints import file_fingerprint, pack
from fakescope.data.manifest import Manifest
from fakescope.evaluate.metrics import Decision, compute_metrics
from fakescope.evaluate.runner import evaluate
from fakescope.models.base import load_checkpoint, write_calibration
from fakescope.models.calibration import Calibration, fit_calibration, verdict
from fakescope.models.zoo import WEIGHTS_DIR
from fakescope.scan.scanner import Scanner, ScanSettings

MESO4_DF = WEIGHTS_DIR / "meso4-df.pt"


def test_platt_scaling_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logits))).astype(float)
    model_logits = 3.0 * true_logits + 1.0  # three times too confident, biased towards fake
    fit = fit_calibration(model_logits, labels, band=0.0)
    assert fit.scale == pytest.approx(1 / 3, rel=0.1)
    assert fit.bias == pytest.approx(-1 / 3, abs=0.15)
    assert fit.fitted_on["ece_after"] < 0.5 * fit.fitted_on["ece_before"]
    assert fit.fitted_on["log_loss_after"] < fit.fitted_on["log_loss_before"]


def test_threshold_keeps_every_groups_false_alarms_under_the_cap():
    rng = np.random.default_rng(1)
    # group b's reals score high: the threshold must rise until at most 5 % of them are over it
    logits = np.concatenate([rng.normal(-2, 1, 300), rng.normal(2, 1, 300), rng.normal(0.5, 1, 200), rng.normal(3, 1, 200)])
    labels = np.array([0] * 300 + [1] * 300 + [0] * 200 + [1] * 200, float)
    groups = ["a"] * 600 + ["b"] * 400
    fit = fit_calibration(logits, labels, groups, max_false_alarm=0.05, band=0.1)
    probs = 1 / (1 + np.exp(-(fit.scale * logits + fit.bias)))
    for g in ("a", "b"):
        reals = probs[(np.array(groups) == g) & (labels == 0)]
        assert np.mean(reals >= fit.threshold) <= 0.05
    assert fit.threshold > 0.6  # raised above 0.5 + band by group b
    assert fit.fitted_on["false_alarm_at_threshold"]["b"] <= 0.05
    assert fit.threshold - fit.band == pytest.approx(0.4)  # REAL below 0.5 - band


def test_verdicts_and_metrics_share_the_band():
    assert [verdict(p, 0.7, 0.3) for p in (0.39, 0.4, 0.69, 0.7)] == ["real", "uncertain", "uncertain", "fake"]
    assert verdict(0.5, 0.5) == "fake" and verdict(None, 0.5) is None
    m = compute_metrics([0, 0, 0, 1, 1], [0.1, 0.5, 0.8, 0.45, 0.9], decision=Decision(0.7, 0.3))
    assert m["false_alarm"] == pytest.approx(1 / 3)
    assert m["uncertain_share"] == pytest.approx(2 / 5)
    assert m["acc_decided"] == pytest.approx(2 / 3)  # 0.1 real, 0.9 fake right; 0.8 real called fake
    assert m["acc"] == pytest.approx(3 / 5)  # at 0.7: 0.8 (real) and 0.45 (fake) wrong


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """Meso-4 DF with a calibration that halves its logits and calls FAKE from 0.8, uncertain from 0.3."""
    path = tmp_path_factory.mktemp("cal") / "meso4_cal.pt"
    write_calibration(MESO4_DF, path, Calibration(scale=0.5, bias=0.25, threshold=0.8, band=0.5))
    return path


def test_calibration_travels_in_the_checkpoint(calibrated, shared_dir):
    from fakescope.data.dataset import FaceCropDataset

    manifest = Manifest.read(shared_dir / "data/mesonet-samples")
    detector = load_checkpoint(calibrated)
    assert (detector.threshold, detector.band) == (0.8, 0.5)
    batch = torch.stack([FaceCropDataset(manifest, detector.preprocess)[i]["image"] for i in range(len(manifest))])
    with torch.no_grad():
        calibrated_logits = detector.model(batch)["logits"]
        raw = detector.raw_model()(batch)["logits"]
    assert torch.allclose(calibrated_logits, 0.5 * raw + 0.25, atol=1e-5)


def test_scan_reports_uncertain_and_the_distance_to_the_threshold(calibrated, shared_dir, tmp_path):
    scanner = Scanner(ScanSettings(model=str(calibrated), crops=True, device="cpu"))
    report = scanner.scan(shared_dir / "data/mesonet-samples")
    assert report.settings["threshold"] == 0.8 and report.settings["uncertain_band"] == 0.5
    for result in report.results:
        assert result.verdict == verdict(result.score, 0.8, 0.5)
        assert result.from_threshold == pytest.approx(result.score - 0.8, abs=1e-4)
        assert result.tracks[0].verdict == result.verdict
    assert {r.verdict for r in report.results} <= {"fake", "real", "uncertain"}
    # the user's threshold wins over the model's
    assert Scanner(ScanSettings(model=str(calibrated), crops=True, device="cpu", threshold=0.5,
                                uncertain_band=0.0)).threshold == 0.5
    report.write_csv(tmp_path / "out.csv")
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert all(float(r["from_threshold"]) == pytest.approx(float(r["file_score"]) - 0.8, abs=1e-3) for r in rows)


def test_calibrate_command_fits_on_val_and_evaluate_warns_about_those_rows(shared_dir, tmp_path, one_torch_thread):
    crops = Manifest.read(shared_dir / "data/ffpp-crops")
    rows = Manifest([s for s in crops if s.path.startswith("deepfakes/")], crops.root).write(tmp_path / "df.csv")
    out = tmp_path / "cal.pt"
    result = CliRunner().invoke(app, ["calibrate", str(MESO4_DF), f"df={rows}", "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    detector = load_checkpoint(out)
    fit = detector.calibration.fitted_on
    assert fit["rows"] == 30 and fit["log_loss_after"] <= fit["log_loss_before"]
    assert fit["false_alarm_at_threshold"]["df"] <= 0.05
    assert detector.threshold >= 0.6
    evaluation = evaluate(out, [("df", Manifest.read(rows))], device="cpu")
    assert len(evaluation.warnings) == 1 and "30 of 30 rows" in evaluation.warnings[0]
    assert evaluation.pooled["threshold"] == detector.threshold
    refused = CliRunner().invoke(app, ["calibrate", str(MESO4_DF), str(rows), "-o", str(out), "--split", "test"])
    assert refused.exit_code == 2


def test_trained_on_rows_are_recognised_by_content_not_path(shared_dir, tmp_path):
    """A copy of a training image at another path is still flagged."""
    manifest = Manifest.read(shared_dir / "data/mesonet-samples")
    first = manifest.resolve(manifest.samples[0].path)
    payload = torch.load(MESO4_DF, map_location="cpu", weights_only=True)
    payload["provenance"]["data_fingerprints"] = {"train": pack([file_fingerprint(first)]), "val": ""}
    torch.save(payload, tmp_path / "m.pt")
    copy = tmp_path / "copy" / first.name
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    copies = Manifest([manifest.samples[0].__class__(path=str(copy), label=1)], tmp_path)
    warnings = evaluate(tmp_path / "m.pt", [("copies", copies)], device="cpu").warnings
    assert warnings == [w for w in warnings if "1 of 1 rows" in w and "trained on" in w] and len(warnings) == 1
    assert evaluate(MESO4_DF, [("copies", copies)], device="cpu").warnings == []
