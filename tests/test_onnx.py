"""The ONNX Runtime backend: shipped exports, parity with PyTorch on real media, backend choice,
`fakescope export`, and scanning with PyTorch out of reach."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.data.fingerprints import sha256_of
from fakescope.errors import FakescopeError
from fakescope.models.onnx import OnnxDetector
from fakescope.models.zoo import DEFAULT_MODEL, WEIGHTS_DIR, load_detector, zoo_entries
from fakescope.scan.scanner import Scanner, ScanSettings

pytest.importorskip("onnxruntime")


def _face_scores(report) -> np.ndarray:
    return np.array([f.score for r in report.results for f in r.faces])


def test_shipped_onnx_files_match_the_zoo_and_carry_the_checkpoints_metadata():
    with_onnx = {n: e for n, e in zoo_entries().items() if e.get("onnx_file")}
    assert DEFAULT_MODEL in with_onnx
    for name, entry in with_onnx.items():
        path = WEIGHTS_DIR / entry["onnx_file"]
        assert sha256_of(path) == entry["onnx_sha256"], name
        onnx_model, checkpoint = OnnxDetector(path, name=name), load_detector(name)
        assert onnx_model.preprocess == checkpoint.preprocess
        assert onnx_model.calibration == checkpoint.calibration
        assert onnx_model.arch == checkpoint.arch
        assert onnx_model.metadata["source_sha256"] == entry["sha256"]
        assert onnx_model.provenance == json.loads(json.dumps(checkpoint.provenance))
        assert onnx_model.metadata["parity"]["scores"] <= 1e-4


@pytest.mark.parametrize("video", [
    "real/004.mp4",
    pytest.param("fake/004_982.mp4", marks=pytest.mark.slow),
    pytest.param("fake/519_515.mp4", marks=pytest.mark.slow),
])
def test_default_model_scores_the_shared_videos_the_same_on_both_backends(shared_dir, video):
    path = shared_dir / "data/ffpp-videos" / video
    onnx = Scanner(ScanSettings(backend="onnx", device="cpu"))
    torch_scanner = Scanner(ScanSettings(backend="torch", device="cpu"))
    assert onnx.predictor.backend == "onnx" and torch_scanner.predictor.backend == "torch"
    with_onnx, with_torch = onnx.scan(path), torch_scanner.scan(path)
    assert with_onnx.results[0].status == "ok"
    a, b = _face_scores(with_onnx), _face_scores(with_torch)
    assert len(a) == len(b) >= 16
    assert np.abs(a - b).max() <= 1e-4
    assert abs(with_onnx.score - with_torch.score) <= 1e-4 and with_onnx.verdict == with_torch.verdict


def test_auto_backend_picks_onnx_on_cpu_and_pytorch_where_the_scan_needs_the_model(tmp_path):
    assert Scanner(ScanSettings(device="cpu")).predictor.backend == "onnx"
    # the default has a mask head, so its masks come from the ONNX graph too
    assert Scanner(ScanSettings(device="cpu", masks_dir=str(tmp_path))).predictor.backend == "onnx"
    # MesoNet has no mask head: its heatmaps are Grad-CAM, which needs PyTorch
    assert Scanner(ScanSettings(model="meso4-df", device="cpu", heatmap_dir=str(tmp_path))).predictor.backend == "torch"
    assert Scanner(ScanSettings(device="cpu", backend="torch")).predictor.backend == "torch"
    with pytest.raises(FakescopeError, match="Grad-CAM"):
        Scanner(ScanSettings(model="meso4-df", device="cpu", backend="onnx", heatmap_dir=str(tmp_path)))
    with pytest.raises(FakescopeError, match="unknown backend"):
        Scanner(ScanSettings(backend="tensorrt"))


def test_masks_from_the_onnx_graph_match_pytorchs(shared_dir, tmp_path):
    image = next((shared_dir / "data/ffpp-crops/deepfakes").rglob("*.png"))
    masks = {}
    for backend in ("onnx", "torch"):
        report = Scanner(ScanSettings(device="cpu", backend=backend, crops=True,
                                      masks_dir=str(tmp_path / backend))).scan(image)
        face = report.results[0].faces[0]
        assert face.mask_source == "mask_head"
        from PIL import Image

        masks[backend] = np.asarray(Image.open(face.mask), dtype=int)
    assert np.abs(masks["onnx"] - masks["torch"]).max() <= 1  # 8-bit PNGs: at most one grey level apart


def test_export_command_writes_a_file_that_scans_like_its_checkpoint(shared_dir, tmp_path):
    target = tmp_path / "meso.onnx"
    result = CliRunner().invoke(app, ["export", "meso4-df", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "largest difference from PyTorch" in result.output
    faces = sorted((shared_dir / "data/mesonet-samples").rglob("*.jpg"))[:4]
    from_onnx = Scanner(ScanSettings(model=str(target), crops=True, device="cpu")).scan(faces)
    from_torch = Scanner(ScanSettings(model="meso4-df", crops=True, device="cpu", backend="torch")).scan(faces)
    assert from_onnx.model["backend"] == "onnx"
    assert np.abs(_face_scores(from_onnx) - _face_scores(from_torch)).max() <= 1e-4
    bad = CliRunner().invoke(app, ["export", "meso4-df", "-o", str(tmp_path / "meso.pt")])
    assert bad.exit_code == 2 and ".onnx" in bad.output


def test_an_onnx_file_refuses_what_needs_pytorch(tmp_path):
    target = tmp_path / "meso.onnx"
    assert CliRunner().invoke(app, ["export", "meso4-df", "-o", str(target)]).exit_code == 0
    with pytest.raises(FakescopeError, match="ONNX"):
        Scanner(ScanSettings(model=str(target), backend="torch", device="cpu"))


def test_a_checkpoint_runs_on_onnx_runtime_through_the_export_cache(shared_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path / "cache"))
    checkpoint = WEIGHTS_DIR / zoo_entries()["meso4-f2f"]["file"]
    scanner = Scanner(ScanSettings(model=str(checkpoint), backend="onnx", crops=True, device="cpu"))
    assert scanner.predictor.backend == "onnx"
    assert len(list((tmp_path / "cache/onnx").glob("*.onnx"))) == 1
    faces = sorted((shared_dir / "data/mesonet-samples").rglob("*.jpg"))[:2]
    reference = Scanner(ScanSettings(model=str(checkpoint), backend="torch", crops=True, device="cpu")).scan(faces)
    assert np.abs(_face_scores(scanner.scan(faces)) - _face_scores(reference)).max() <= 1e-4


def test_scanning_face_crops_needs_no_pytorch(shared_dir):
    """With PyTorch made unimportable, a shipped model still scans (ONNX Runtime) and scores as
    PyTorch does."""
    image = next((shared_dir / "data/ffpp-crops/deepfakes").rglob("*.png"))
    code = (
        "import sys, json\n"
        "sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "from fakescope.scan.scanner import Scanner, ScanSettings\n"
        f"r = Scanner(ScanSettings(crops=True)).scan({str(image)!r})\n"
        "print(json.dumps([r.model['backend'], r.results[0].status, r.score, 'torch' in sys.modules and sys.modules['torch'] is not None]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    backend, status, score, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert (backend, status, imported) == ("onnx", "ok", False)
    reference = Scanner(ScanSettings(crops=True, backend="torch", device="cpu")).scan(image).score
    assert abs(score - reference) <= 1e-4


def test_an_export_of_the_raw_model_still_scores_calibrated_and_is_cached_apart(shared_dir, tmp_path, monkeypatch):
    """After raw_model() (the calibration hook removed) an export records that its logits are raw and
    OnnxDetector applies the calibration; the cache keeps it apart from the calibrated export."""
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path / "cache"))
    from PIL import Image

    from fakescope.models.predictor import Predictor

    crops = [np.asarray(Image.open(p).convert("RGB").resize((192, 192)))
             for p in sorted((shared_dir / "data/ffpp-crops/deepfakes").rglob("*.png"))[:4]]
    calibrated = Predictor(load_detector(DEFAULT_MODEL), device="cpu", backend="onnx").predict_crops(crops).scores
    raw = load_detector(DEFAULT_MODEL)
    raw.raw_model()
    assert not raw.logits_calibrated
    from_raw = Predictor(raw, device="cpu", backend="onnx").predict_crops(crops).scores
    assert len(list((tmp_path / "cache/onnx").glob("*.onnx"))) == 2
    assert np.abs(from_raw - calibrated).max() <= 1e-4
