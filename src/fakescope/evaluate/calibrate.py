"""`fakescope calibrate`: fit a checkpoint's calibration on labelled validation rows and store it.

The model is scored without any calibration it may already have (its raw fake logits),
Platt scaling, the threshold and the uncertain band are fitted (models/calibration.py),
each dataset weighted equally, and the checkpoint is written again with them. Fit on
validation rows, never on the test rows the model is judged on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.dataset import FaceCropDataset
from ..data.fingerprints import file_fingerprint, pack, unpack
from ..data.manifest import Manifest
from ..errors import FakescopeError
from ..models.predictor import Predictor
from ..models.base import write_calibration
from ..models.calibration import Calibration, fit_calibration
from ..models.zoo import load_detector


def raw_logits(detector, manifest: Manifest, device: torch.device, batch_size: int = 64,
               num_workers: int = 0, image_views: int = 5) -> np.ndarray:
    """The model's uncalibrated fake logits for every row, in manifest order. A whole-image detector's
    are the mean logit of its views, as `scan --mode image` scores (so the fit calibrates what scans see)."""
    detector.raw_model()
    predictor = Predictor(detector, device=device, batch_size=batch_size, backend="torch")
    if detector.preprocess.subject == "image":
        from ..scan.whole_image import WholeImageScorer

        return WholeImageScorer(detector.name, device, views=image_views, predictor=predictor).manifest_logits(manifest)
    return predictor.predict(FaceCropDataset(manifest, detector.preprocess), num_workers=num_workers).logits


def calibrate_checkpoint(
    checkpoint: str | Path, datasets: Sequence[tuple[str, Manifest]], output: str | Path,
    max_false_alarm: float = 0.05, band: float = 0.1, device: str | torch.device = "auto",
    batch_size: int = 64, num_workers: int = 0,
) -> Calibration:
    from ..device import resolve_device

    source = Path(checkpoint)
    if not source.is_file():
        raise FakescopeError(f"{checkpoint}: calibrate takes a checkpoint file (a shipped model is calibrated already)",
                             code="not_found")
    torch_device = resolve_device(device)
    detector = load_detector(source)
    logits, labels, groups = [], [], []
    for name, manifest in datasets:
        logits.append(raw_logits(detector, manifest, torch_device, batch_size, num_workers))
        labels += manifest.labels()
        groups += [name] * len(manifest)
    try:
        calibration = fit_calibration(np.concatenate(logits), np.asarray(labels), groups,
                                      max_false_alarm=max_false_alarm, band=band)
    except ValueError as exc:
        raise FakescopeError(f"cannot calibrate {checkpoint}: {exc}") from None
    calibration.fitted_on["datasets"] = {name: len(m) for name, m in datasets}
    # the rows fitted on choose the model's verdicts: record them as validation data (leakage warnings)
    packed = dict(detector.provenance.get("data_fingerprints") or {})
    packed["val"] = pack(unpack(packed.get("val", "")) | {file_fingerprint(m.resolve(s.path))
                                                          for _, m in datasets for s in m})
    write_calibration(source, output, calibration, provenance={"data_fingerprints": packed})
    return calibration
