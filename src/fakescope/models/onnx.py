"""ONNX export and the ONNX Runtime detector: scanning without PyTorch, 3-6x faster on CPU.

An exported file is self-describing, like a checkpoint: its metadata (key "fakescope") holds
the architecture, preprocessing, provenance and calibration of the checkpoint it came from.
The graph takes normalised (N, 3, S, S) float32 faces (`spec.normalise_crops`) and returns
"logits" (calibrated: the checkpoint's calibration hook is traced into the graph, or, for a model
exported without it, `logits_calibrated` is false and `OnnxDetector` applies the calibration),
and "mask" / "features" where the model has them.
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import ModelLoadError
from .calibration import Calibration, HasCalibration, sigmoid
from .spec import PreprocessSpec

ONNX_FORMAT = "fakescope-onnx"
ONNX_VERSION = 1
METADATA_KEY = "fakescope"
OPSET = 17
# the contract's outputs, in graph order where present ("attribution": generator-class logits of
# whole-image detectors with an attribution head)
OUTPUTS = ("logits", "mask", "features", "attribution")
#: largest P(fake) difference from PyTorch an export may have (checked at export, recorded in the file)
EXPORT_TOLERANCE = 1e-4


def export_onnx(detector, path: str | Path, batch: int = 2) -> dict[str, Any]:
    """Write `detector` (a LoadedDetector) as an ONNX file with its metadata; returns the metadata,
    including `parity`: the largest output difference from PyTorch on a random batch.

    Raises ModelLoadError (one line) where the architecture does not export or does not match."""
    import torch

    model = detector.model.eval()
    size = detector.preprocess.input_size
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator)
    with torch.inference_mode():
        expected = model(x)
    names = [k for k in OUTPUTS if isinstance(expected.get(k), torch.Tensor)]

    class Outputs(torch.nn.Module):
        """The model's output dict as a tuple in a fixed order (what an ONNX graph returns)."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, images):
            out = self.model(images)
            return tuple(out[n] for n in names)

    wrapped = Outputs().eval()
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                wrapped, (x,), buffer, input_names=["image"], output_names=names, opset_version=OPSET,
                dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}}, dynamo=False,
            )
    except Exception as exc:  # an operator the exporter cannot express
        raise ModelLoadError(f"architecture {detector.arch!r} does not export to ONNX: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    import onnx

    proto = onnx.load_from_string(buffer.getvalue())
    session = _session(proto.SerializeToString(), threads=1)
    got = dict(zip(names, session.run(names, {"image": x.numpy()})))
    parity = {n: float(np.abs(got[n] - expected[n].float().numpy()).max()) for n in names}
    parity["scores"] = float(np.abs(sigmoid(got["logits"]) - sigmoid(expected["logits"].float().numpy())).max())
    if parity["scores"] > EXPORT_TOLERANCE:
        raise ModelLoadError(f"architecture {detector.arch!r}: ONNX Runtime's P(fake) differs from PyTorch's by "
                             f"{parity['scores']:.2e} (> {EXPORT_TOLERANCE:g}); keep --backend torch")
    from .. import __version__

    metadata = {
        "format": ONNX_FORMAT, "version": ONNX_VERSION, "name": detector.name, "arch": detector.arch,
        "arch_kwargs": detector.arch_kwargs, "preprocess": detector.preprocess.model_dump(),
        "provenance": detector.provenance, "calibration": detector.calibration.model_dump(),
        "logits_calibrated": getattr(detector, "logits_calibrated", True), "outputs": names, "parity": parity, "opset": OPSET,
        "source_sha256": getattr(detector, "sha256", None), "exported_by": f"fakescope {__version__}",
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return metadata


def _session(model: str | bytes, threads: Optional[int] = None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelLoadError("ONNX Runtime is not installed: pip install onnxruntime") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


class OnnxDetector(HasCalibration):
    """A detector on ONNX Runtime: what `LoadedDetector` offers, without PyTorch.

    `run(images)` takes normalised float32 (N, 3, S, S) and returns the output dict as NumPy;
    its logits are calibrated (see the module docstring)."""

    backend = "onnx"

    def __init__(self, path: str | Path, name: Optional[str] = None, threads: Optional[int] = None,
                 sha256: Optional[str] = None):
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"ONNX model {path} does not exist")
        try:  # ONNX Runtime reads the metadata itself: no `onnx` import (a second at start-up)
            session = _session(str(path), threads)
            metadata_props = dict(session.get_modelmeta().custom_metadata_map)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
        if METADATA_KEY not in metadata_props:
            raise ModelLoadError(f"{path}: an ONNX file without fakescope metadata; export it with `fakescope export`")
        meta = json.loads(metadata_props[METADATA_KEY])
        if meta.get("format") != ONNX_FORMAT:
            raise ModelLoadError(f"{path}: not a fakescope ONNX export")
        self.path = path
        self.metadata = meta
        self.session = session
        self.arch = meta["arch"]
        self.arch_kwargs = dict(meta.get("arch_kwargs") or {})
        self.preprocess = PreprocessSpec(**meta["preprocess"])
        self.provenance = meta.get("provenance") or {}
        self.calibration = Calibration(**(meta.get("calibration") or {}))
        self.outputs = list(meta["outputs"])
        # an export of a model whose calibration hook was removed: apply the calibration here instead
        self._calibrate_logits = not meta.get("logits_calibrated", True)
        self.name = name or meta.get("name") or path.name
        self.sha256 = sha256 or meta.get("source_sha256")

    @property
    def has_mask(self) -> bool:
        return "mask" in self.outputs

    def run(self, images: np.ndarray, outputs: Optional[list[str]] = None) -> dict[str, np.ndarray]:
        names = outputs or self.outputs
        values = dict(zip(names, self.session.run(names, {"image": np.ascontiguousarray(images, dtype=np.float32)})))
        if self._calibrate_logits and "logits" in values:
            values["logits"] = self.calibration.apply(values["logits"])
        return values
