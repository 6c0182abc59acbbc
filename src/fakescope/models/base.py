"""The detector contract and fakescope checkpoints.

A detector model is an `nn.Module` whose forward returns a dict:
  "logits":   (B,) fake logit; P(fake) = sigmoid(logit), whatever the paper's convention
  "mask":     optional (B, 1, H, W) forgery-mask logits, for models with a mask head
  "features": optional (B, D) embedding
  other keys: architecture-specific intermediates its own `training_losses` needs
Papers' extra training signals live on the model (`training_losses`,
`augment_training_batch`), so the trainer stays one loop for every architecture.
Preprocessing travels with the weights (`PreprocessSpec`), so inference crops and
normalises faces exactly as the model was trained.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..data.fingerprints import sha256_of
from ..errors import ModelLoadError
from ..registry import Registry
from .calibration import HasCalibration
from .spec import MIN_CROP_MARGIN, PreprocessSpec  # noqa: F401  (part of the contract; torch-free)

if TYPE_CHECKING:
    from .calibration import Calibration

CHECKPOINT_FORMAT = "fakescope-checkpoint"
TRAIN_STATE_FORMAT = "fakescope-train-state"  # a run's last.pt: model, optimiser and progress, for --resume
CHECKPOINT_VERSION = 1

class DetectorModel(nn.Module):
    """Base class every registered detector derives from."""

    #: default preprocessing for freshly built (untrained) models of this class
    default_preprocess = PreprocessSpec()

    #: constructor kwargs that only choose initial weights (e.g. ``imagenet_init``):
    #: a checkpoint's weights replace them, so checkpoints neither store nor apply them
    init_only_kwargs: tuple[str, ...] = ()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def cam_layer(self) -> nn.Module:
        """The layer whose activations Grad-CAM explains (the last spatial feature map)."""
        raise NotImplementedError

    # ---- training hooks: what a paper trains with beyond BCE on the logit (and the mask loss)

    def training_losses(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Architecture-specific loss terms, each a weighted scalar, added to the training loss.

        Called by the trainer after every training forward with that forward's output
        and the (B,) float labels (1 = fake); e.g. MAT's regional independence loss or
        M2TR's contrastive loss. Not part of the validation loss. Default: none.
        """
        return {}

    # ---- video level: a score for K frames of one face track from their per-frame features

    #: names of the video heads this architecture has (e.g. ("mean", "temporal")); empty: none,
    #: and a video's score is then an aggregate of its frame scores (scan's --aggregation)
    video_heads: tuple[str, ...] = ()

    def video_logits(self, features: torch.Tensor, head: str) -> torch.Tensor:
        """(B, K, D) per-frame ``features`` of B clips of K frames each -> (B,) video fake logits,
        by the named head (one of ``video_heads``). Trainable heads are trained on sequence
        samples (K frames of one video) alongside the frame loss."""
        raise NotImplementedError(f"{type(self).__name__} has no video heads")

    def video_window(self, head: str) -> int | None:
        """The most frames ``video_logits`` takes at once for ``head``: longer tracks are cut
        into near-equal consecutive windows whose P(fake) values are averaged. None: no limit."""
        return None

    def _record_trained_clip_length(self, frames: int) -> None:
        """In training, raise the buffer ``temporal_trained_frames`` (which a model with a
        trainable clip head registers; saved with the weights) to ``frames``, so that
        ``video_window`` can return the longest clip the head was trained on. In place on
        the buffer's device: no host sync in a training step."""
        if self.training:
            with torch.no_grad():
                self.temporal_trained_frames.clamp_(min=frames)

    def augment_training_batch(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Model-guided augmentation of a training batch (e.g. MAT's attention-guided
        augmentation); returns images of the same shape. Runs under ``torch.no_grad``
        before the training forward. Default: unchanged."""
        return images


def _import_families() -> None:
    from . import import_families

    import_families()


MODELS: Registry[type[DetectorModel]] = Registry("detector architecture", populate=_import_families)


def build_model(arch: str, **kwargs: Any) -> DetectorModel:
    return MODELS.get(arch)(**kwargs)


def save_checkpoint(
    path: str | Path,
    model: DetectorModel,
    arch: str,
    preprocess: PreprocessSpec,
    provenance: dict[str, Any] | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    calibration: "Calibration | None" = None,
) -> str:
    """Write a self-describing checkpoint; returns its sha256. `calibration` (models/calibration.py)
    makes the loaded model's logits calibrated and sets its threshold and uncertain band."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "arch": arch,
        "arch_kwargs": _architecture_kwargs(arch, arch_kwargs),
        "preprocess": preprocess.model_dump(),
        "provenance": provenance or {},
        "calibration": calibration.model_dump() if calibration is not None else None,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    torch.save(payload, path)
    return sha256_of(path)


def _architecture_kwargs(arch: str, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``kwargs`` without the ones that only pick initial weights (see ``init_only_kwargs``)."""
    drop = set(MODELS.get(arch).init_only_kwargs) if arch in MODELS else set()
    return {k: v for k, v in (kwargs or {}).items() if k not in drop}


def write_calibration(source: str | Path, target: str | Path, calibration: "Calibration",
                      provenance: dict[str, Any] | None = None) -> str:
    """Copy checkpoint `source` to `target` with `calibration` stored in it (and `provenance`
    keys set, if given); returns its sha256."""
    payload = torch.load(Path(source), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelLoadError(f"{source}: not a fakescope checkpoint")
    payload["calibration"] = calibration.model_dump()
    payload.setdefault("provenance", {}).update(provenance or {})
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, target)
    return sha256_of(target)


class LoadedDetector(HasCalibration):
    """A model with its preprocessing, its calibration and where it came from.

    With a calibration, `model`'s "logits" are already calibrated (a forward hook), so
    sigmoid(logits) is the calibrated P(fake) everywhere; `raw_model()` removes the hook
    (for fine-tuning, or refitting the calibration)."""

    def __init__(self, model: DetectorModel, arch: str, preprocess: PreprocessSpec, provenance: dict, name: str,
                 calibration: "Calibration | None" = None, arch_kwargs: dict | None = None,
                 sha256: str | None = None):
        from .calibration import Calibration, attach

        self.model = model.eval()
        self.arch = arch
        self.arch_kwargs = dict(arch_kwargs or {})
        self.preprocess = preprocess
        self.provenance = provenance
        self.name = name
        self.sha256 = sha256  # of the checkpoint file it was loaded from (keys the ONNX export cache)
        self.calibration = calibration or Calibration()
        self._hook = attach(self.model, self.calibration) if not self.calibration.is_identity else None

    @property
    def logits_calibrated(self) -> bool:
        """Whether `model`'s logits carry the calibration (false after `raw_model()`)."""
        return self._hook is not None or self.calibration.is_identity

    def raw_model(self) -> DetectorModel:
        """The model without its calibration hook (its logits as trained)."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        return self.model


def load_checkpoint(path: str | Path, expected_sha256: str | None = None) -> LoadedDetector:
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"checkpoint {path} does not exist")
    actual = sha256_of(path)
    if expected_sha256 is not None:
        if actual != expected_sha256:
            raise ModelLoadError(f"{path}: sha256 {actual} does not match the expected {expected_sha256}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    if isinstance(payload, dict) and payload.get("format") == TRAIN_STATE_FORMAT:
        raise ModelLoadError(
            f"{path}: a training state (what `fakescope train --resume` continues from), not a detector "
            f"checkpoint; scan and evaluate take the run's best.pt ({Path(path).with_name('best.pt')})"
        )
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelLoadError(
            f"{path}: not a fakescope checkpoint (convert published weights with `fakescope import-weights`)"
        )
    # initial-weight options (older checkpoints may hold them) must not load pretrained files here
    model = build_model(payload["arch"], **_architecture_kwargs(payload["arch"], payload.get("arch_kwargs")))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelLoadError(f"{path}: weights do not fit architecture {payload['arch']!r}: {exc}") from None
    preprocess = PreprocessSpec(**payload["preprocess"])
    from .calibration import Calibration

    calibration = Calibration(**payload["calibration"]) if payload.get("calibration") else None
    return LoadedDetector(model, payload["arch"], preprocess, payload.get("provenance", {}), name=path.name,
                          calibration=calibration, arch_kwargs=payload.get("arch_kwargs"), sha256=actual)
