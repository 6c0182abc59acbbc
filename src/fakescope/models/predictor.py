"""One predictor: face crops in, P(fake) out (with masks and features on request).

Scan, evaluate, calibrate and the trainer's validation all score faces through `Predictor`,
which owns batching, the device, normalisation (`spec.normalise_crops`) and the backend:

* "torch": the PyTorch model, on CPU or GPU, with AMP if asked; Grad-CAM maps need it.
* "onnx": ONNX Runtime on CPU (`models/onnx.py`), 3-6x faster there for EfficientNet-family
  models, and it needs no PyTorch at all.
* "auto": ONNX Runtime on CPU where the model has an ONNX file (every shipped model with one,
  or a `.onnx` path) and no Grad-CAM is needed; PyTorch otherwise.

Every output comes back as NumPy: "logits" (calibrated where the model is), "scores" =
sigmoid(logits), and "mask" / "features" where the model returns them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from ..errors import FakescopeError
from .calibration import sigmoid
from .spec import PreprocessSpec, normalise_crops
from .onnx import OUTPUTS
from .video import frame_features

BACKENDS = ("auto", "torch", "onnx")


def onnx_path_of(name_or_path: str | Path | None) -> Optional[Path]:
    """The ONNX file for a shipped model name (if the zoo has one) or a `.onnx` path; else None."""
    from .zoo import DEFAULT_MODEL, WEIGHTS_DIR, zoo_entries

    key = str(name_or_path or DEFAULT_MODEL)
    entry = zoo_entries().get(key)
    if entry is not None:
        return WEIGHTS_DIR / entry["onnx_file"] if entry.get("onnx_file") else None
    return Path(key) if key.endswith(".onnx") else None


def open_detector(name_or_path: str | Path | None = None, backend: str = "auto", device: Any = "auto",
                  need_torch: bool = False):
    """The model to score with: an `OnnxDetector` where the backend will be ONNX Runtime and an
    ONNX file exists (loading it costs no PyTorch import), else a PyTorch `LoadedDetector`.
    `need_torch`: the caller needs the PyTorch model itself (a video head)."""
    from ..device import resolve_device

    check_backend(backend)
    resolved = resolve_device(device)
    onnx_file = onnx_path_of(name_or_path)
    if onnx_file is not None and backend != "torch" and resolved.type == "cpu" and not need_torch:
        from .onnx import OnnxDetector
        from .zoo import zoo_entries

        entry = zoo_entries().get(str(name_or_path or ""))
        name = str(name_or_path) if entry is not None else None
        if entry is not None:
            _check_sha256(onnx_file, entry.get("onnx_sha256"))
        return OnnxDetector(onnx_file, name=name)
    if str(name_or_path or "").endswith(".onnx"):
        raise FakescopeError(f"{name_or_path} is an ONNX file: it runs with --backend onnx (or auto) on the CPU; "
                             "--backend torch, --device cuda and video heads need the PyTorch checkpoint")
    from .zoo import load_detector

    return load_detector(name_or_path)


def _check_sha256(path: Path, expected: Optional[str]) -> None:
    from ..errors import ModelLoadError
    from ..data.fingerprints import sha256_of

    if expected is not None and sha256_of(path) != expected:
        raise ModelLoadError(f"{path}: sha256 does not match the zoo's {expected}; reinstall fakescope")


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise FakescopeError(f"unknown backend {backend!r}; use one of: {', '.join(BACKENDS)}")


@dataclass
class PredictionSet:
    """Outputs over a whole source, in its order."""

    scores: np.ndarray  # (N,) P(fake)
    logits: np.ndarray  # (N,) the model's (calibrated) fake logits
    features: Optional[list[np.ndarray]] = None  # (D,) per item, when asked for


class Predictor:
    """Scores normalised batches, face crops or datasets with one model, on one backend."""

    def __init__(self, detector, device: Any = "auto", batch_size: int = 32, backend: str = "auto",
                 grad_cam: bool = False, amp: bool = False, memory_format=None, _keep_mode: bool = False):
        """`detector`: a LoadedDetector, an OnnxDetector, or a bare DetectorModel (then give
        `preprocess` through `for_model`). `grad_cam`: maps will be asked for without a mask head,
        which only PyTorch gives (so "auto" stays on PyTorch for such a model)."""
        from ..device import resolve_device

        check_backend(backend)
        if batch_size < 1:
            raise FakescopeError(f"batch size must be at least 1, got {batch_size}")
        self.detector = detector
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.preprocess: PreprocessSpec = detector.preprocess
        self.amp = amp
        self.memory_format = memory_format
        self.backend = self._choose_backend(backend, grad_cam)
        self._onnx = None
        self.model = None
        if self.backend == "onnx":
            self._onnx = detector if getattr(detector, "backend", None) == "onnx" else _cached_export(detector)
        else:
            import torch

            self.model = detector.model.to(self.device)
            if not _keep_mode:  # a model mid-training keeps its mode; `dataset_batches` evals and restores it
                self.model.eval()
            if self.device.type == "cpu" and not _keep_mode and os.environ.get("OMP_NUM_THREADS") is None:
                torch.set_num_threads(os.cpu_count() or 1)

    @classmethod
    def for_model(cls, model, preprocess: PreprocessSpec, device: Any = "auto", batch_size: int = 32,
                  amp: bool = False, memory_format=None) -> "Predictor":
        """A PyTorch predictor over a bare model (the trainer's, mid-training)."""

        class _Bare:
            def __init__(self):
                self.model, self.preprocess, self.name = model, preprocess, type(model).__name__

        return cls(_Bare(), device=device, batch_size=batch_size, backend="torch", amp=amp,
                   memory_format=memory_format, _keep_mode=True)

    def _choose_backend(self, backend: str, grad_cam: bool) -> str:
        is_onnx = getattr(self.detector, "backend", None) == "onnx"
        if is_onnx:
            if backend == "torch":
                raise FakescopeError(f"{self.detector.name} is an ONNX model; --backend torch needs its checkpoint")
            if self.device.type != "cpu":
                raise FakescopeError("ONNX models run on the CPU here; use --device cpu (or the PyTorch checkpoint)")
            return "onnx"
        if backend == "onnx" and self.device.type != "cpu":
            raise FakescopeError(f"--backend onnx runs on the CPU; device {self.device} needs --backend torch or auto")
        if backend == "auto":
            return "torch"  # a PyTorch checkpoint in auto stays on PyTorch (open_detector picks ONNX files)
        return backend

    # ------------------------------------------------------------------ one batch
    def run(self, images) -> dict[str, np.ndarray]:
        """One batch of normalised (N, 3, S, S) images (NumPy or a tensor) -> NumPy outputs."""
        if self._onnx is not None:
            if not isinstance(images, np.ndarray):
                images = images.detach().cpu().numpy()
            out = self._onnx.run(images)
        else:
            out = {k: _to_numpy(v) for k, v in self._torch_forward(images).items() if k in OUTPUTS}
        out["logits"] = out["logits"].astype(np.float32, copy=False)
        out["scores"] = sigmoid(out["logits"]).astype(np.float32)
        return out

    def _torch_forward(self, images, call: Optional[Callable] = None) -> dict:
        import torch

        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        images = images.to(self.device, non_blocking=True)
        if self.memory_format is not None:
            images = images.contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, dtype=torch.float16,
                                                    enabled=self.amp):
            return (call or self.model)(images)

    def maps(self, images, grad_cam: bool = True):
        """Scores and forgery maps of one normalised batch (`scan.explain.ForgeryMaps`): the mask
        head's on either backend; Grad-CAM x P(fake) without one (PyTorch only; None if not allowed)."""
        from ..scan.explain import MASK_HEAD, ForgeryMaps, forgery_maps

        if self._onnx is not None:
            out = self.run(images)
            if out.get("mask") is not None:
                return ForgeryMaps(out["scores"], MASK_HEAD, out["mask"], out)
            if grad_cam:
                raise FakescopeError(f"model {self.detector.name!r} has no mask head; its Grad-CAM maps need "
                                     "PyTorch (--backend torch)")
            return ForgeryMaps(out["scores"], None, None, out)
        import torch

        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        maps = forgery_maps(self.model, images.to(self.device), allow_grad_cam=grad_cam)
        maps.output = {k: _to_numpy(v) for k, v in maps.output.items() if k in OUTPUTS}
        return maps

    # ------------------------------------------------------------------ many
    def crop_batches(self, crops: Sequence[np.ndarray]) -> Iterator[tuple[slice, np.ndarray]]:
        """(which crops, normalised batch) over RGB uint8 crops at the model's input size."""
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            yield slice(start, start + len(chunk)), normalise_crops(np.stack(chunk), self.preprocess)

    def predict_crops(self, crops: Sequence[np.ndarray], features: bool = False) -> PredictionSet:
        """P(fake) of RGB uint8 face crops (input-size squares, as `scan.faces.crop_face` cuts them)."""
        return self._collect((self.run(batch) for _, batch in self.crop_batches(crops)), features)

    def dataset_batches(self, dataset, num_workers: int = 0, call: Optional[Callable] = None,
                        maps: bool = False, grad_cam: bool = True) -> Iterator[tuple[dict, Any]]:
        """(batch, outputs) over a dataset yielding {"image": normalised tensor, ...} (or a ready
        DataLoader over one), in order.

        `maps`: the outputs are `ForgeryMaps` (see `maps`). `call(model, images)` replaces the
        plain PyTorch forward (a clip model's); its outputs stay as the model returns them."""
        from torch.utils.data import DataLoader

        loader = dataset if isinstance(dataset, DataLoader) else DataLoader(
            dataset, batch_size=self.batch_size, shuffle=False, num_workers=num_workers,
            pin_memory=self.device.type == "cuda")
        was_training = self.model.training if self.model is not None else False
        if self.model is not None:
            self.model.eval()
        try:
            for batch in loader:
                if call is not None:
                    yield batch, self._torch_forward(batch["image"], lambda x: call(self.model, x))
                elif maps:
                    yield batch, self.maps(batch["image"], grad_cam=grad_cam)
                else:
                    yield batch, self.run(batch["image"])
        finally:
            if self.model is not None:
                self.model.train(was_training)

    def predict(self, dataset, features: bool = False, num_workers: int = 0) -> PredictionSet:
        """P(fake) of every item of a dataset yielding {"image", ...}, in dataset order."""
        return self._collect((out for _, out in self.dataset_batches(dataset, num_workers)), features)

    def _collect(self, outputs: Iterable[dict], features: bool) -> PredictionSet:
        scores, logits, kept = [], [], [] if features else None
        for out in outputs:
            scores.append(out["scores"])
            logits.append(out["logits"])
            if kept is not None:
                kept.extend(frame_features(out, self.detector.name))
        empty = np.zeros(0, np.float32)
        return PredictionSet(np.concatenate(scores) if scores else empty, np.concatenate(logits) if logits else empty,
                             kept)


def _to_numpy(value) -> np.ndarray:
    return value.detach().float().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _cached_export(detector):
    """The ONNX export of a PyTorch `LoadedDetector`, made once per checkpoint (by sha256, and
    whether its calibration hook is on) in the cache folder ($FAKESCOPE_CACHE, else
    ~/.cache/fakescope/onnx)."""
    from .onnx import OnnxDetector, export_onnx

    sha256 = getattr(detector, "sha256", None)
    if sha256 is None:
        raise FakescopeError(f"model {detector.name!r} has no checkpoint file to export; use --backend torch")
    folder = Path(os.environ.get("FAKESCOPE_CACHE") or Path.home() / ".cache" / "fakescope") / "onnx"
    state = "calibrated" if getattr(detector, "logits_calibrated", True) else "raw"  # raw_model() unhooks it
    target = folder / f"{sha256[:16]}-{state}.onnx"
    if not target.is_file():
        partial = target.with_suffix(f".{os.getpid()}.partial")
        export_onnx(detector, partial)
        os.replace(partial, target)
    return OnnxDetector(target, name=detector.name, sha256=sha256)
