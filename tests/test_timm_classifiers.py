"""timm-backbone binary classifiers (resnet50, xception, vit_b16) and efficientnet_b4,
the plain-classifier rows of the model table: contract, sizes, Grad-CAM, one step, ONNX, recipes."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from model_contract import check_onnx_matches, check_one_step_lowers_loss, check_outputs, check_parameter_count

from fakescope.models import MODELS, build_model
from fakescope.models.timm_classifiers import ResNet50Detector, TokenGrid, ViTB16Detector, XceptionDetector

SMALL = 64  # the CNNs are fully convolutional: small inputs keep the CPU tests fast
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5,) * 3, (0.5,) * 3)
CNNS = ["resnet50", "xception", "efficientnet_b4"]
FEATURE_DIM = {"resnet50": 2048, "xception": 2048, "efficientnet_b4": 1792, "vit_b16": 768}


def _build(name: str, **kwargs):
    torch.manual_seed(0)
    return build_model(name, **kwargs)


@pytest.fixture(scope="module")
def vit():
    """One ViT-B/16 (86 M parameters) at its default 224 px, shared by the tests that
    do not change its weights."""
    return _build("vit_b16")


@pytest.mark.parametrize(
    "name, cls, size, norm",
    [
        ("resnet50", ResNet50Detector, 224, IMAGENET),
        ("xception", XceptionDetector, 299, HALF),  # FF++'s code normalises to [-1, 1]
        ("vit_b16", ViTB16Detector, 224, HALF),
        ("efficientnet_b4", MODELS.get("efficientnet_b4"), 380, IMAGENET),
    ],
)
def test_registered_with_preprocessing(name, cls, size, norm):
    assert MODELS.get(name) is cls
    spec = cls.default_preprocess
    assert (spec.input_size, spec.mean, spec.std, spec.margin) == (size, *norm, 1.3)
    assert cls.__doc__.splitlines()[0].strip()  # the one-line summary `fakescope models` shows


# Published counts include a 1000-way ImageNet classifier (D x 1000 weights + 1000
# biases); the binary variant replaces it with Linear(D, 1): reference - 1000 D - 1000 + D + 1.
REFERENCES = {
    # ResNet-50: 25.6 M (timm resnet50 / torchvision); D = 2048:
    # 25,600,000 - 2,049,000 + 2,049 = 23,553,049
    "resnet50": 25_600_000 - 2_049_000 + 2_049,
    # Xception: 22,855,952 (Chollet, CVPR 2017, Table 3); D = 2048:
    # 22,855,952 - 2,049,000 + 2,049 = 20,809,001
    "xception": 22_855_952 - 2_049_000 + 2_049,
    # ViT-B/16: 86 M (Dosovitskiy et al., ICLR 2021, Table 1); D = 768:
    # 86,000,000 - 769,000 + 769 = 85,231,769
    "vit_b16": 86_000_000 - 769_000 + 769,
    # EfficientNet-B4: 19 M (Tan & Le, ICML 2019, Table 2); D = 1792:
    # 19,000,000 - 1,793,000 + 1,793 = 17,208,793
    "efficientnet_b4": 19_000_000 - 1_793_000 + 1_793,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_parameter_count_matches_the_paper(name):
    with torch.device("meta"):  # counting needs no weights in memory
        model = build_model(name)
    count = check_parameter_count(model, REFERENCES[name])
    if name == "xception":  # Chollet gives an exact count: timm's legacy_xception is that network
        assert count == 20_809_001


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_profile_counts_flops_on_the_meta_device(name):
    from fakescope.models.profile import profile

    result = profile(name)
    assert result["gflops"] is not None and result["gflops"] > 0
    if name == "resnet50":  # the convention profile documents: ResNet-50 at 224 px is 4.1 GFLOPs
        assert abs(result["gflops"] - 4.1) <= 0.05 * 4.1


@pytest.mark.parametrize("name", CNNS)
def test_cnn_output_contract(name):
    check_outputs(_build(name), batch=2, size=SMALL, feature_dim=FEATURE_DIM[name])


def test_vit_output_contract(vit):
    check_outputs(vit, batch=2, size=224, feature_dim=768)


def _timm_pooled(backbone, x):
    return backbone.forward_head(backbone.forward_features(x), pre_logits=True)


@pytest.mark.parametrize("name", ["resnet50", "xception"])
def test_cnn_features_are_timms_pooled_features(name):
    model = _build(name).eval()
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out["features"], _timm_pooled(model.backbone, x))
        torch.testing.assert_close(out["logits"], model.classifier(out["features"])[:, 0])


def test_vit_forward_with_token_grid_is_timms_forward(vit):
    # the TokenGrid detour before the last block must change nothing
    vit.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        out = vit(x)
        torch.testing.assert_close(out["features"], _timm_pooled(vit.backbone, x), rtol=0, atol=1e-5)
        torch.testing.assert_close(out["logits"], vit.classifier(out["features"])[:, 0])


def test_token_grid_is_a_row_major_reshape():
    tokens = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4)  # (B, h*w, D), h=2, w=3
    grid = TokenGrid((2, 3))(tokens)
    assert grid.shape == (2, 4, 2, 3)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(grid[:, :, i, j], tokens[:, i * 3 + j])
    torch.testing.assert_close(grid.flatten(2).transpose(1, 2), tokens)
    assert not list(TokenGrid((2, 3)).parameters())


def test_cam_layers_are_the_last_spatial_maps(vit):
    shapes = {}
    for name in ("resnet50", "xception"):
        model = _build(name).eval()
        handle = model.cam_layer().register_forward_hook(lambda _m, _i, o, n=name: shapes.__setitem__(n, o.shape))
        with torch.no_grad():
            model(torch.randn(1, 3, SMALL, SMALL))
        handle.remove()
    assert shapes["resnet50"] == (1, 2048, 2, 2)  # stride 32
    assert shapes["xception"] == (1, 2048, 2, 2)  # exit flow, after the last separable conv's ReLU
    assert vit.cam_layer() is vit.token_grid


def _assert_valid_maps(maps, batch, size):
    assert maps.shape == (batch, size, size) and np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert maps.reshape(batch, -1).max(1).max() == pytest.approx(1.0)  # not all zero: gradients reach the map


@pytest.mark.parametrize("name", ["resnet50", "xception"])
def test_grad_cam_on_cnns(name):
    from fakescope.scan.explain import evidence_maps

    maps = evidence_maps(_build(name).eval(), torch.randn(2, 3, SMALL, SMALL))
    _assert_valid_maps(maps, 2, SMALL)


def test_grad_cam_on_vit_reaches_the_patch_grid(vit):
    from fakescope.scan.explain import grad_cam  # what evidence_maps runs for a model without a mask head

    torch.manual_seed(3)
    maps = grad_cam(vit.eval(), torch.randn(1, 3, 224, 224))
    _assert_valid_maps(maps, 1, 224)
    # the patch tokens *after* the last block do not reach the class token: had cam_layer
    # been there, every gradient would be zero and the map empty; check that ours varies
    assert maps.std() > 0.01


def test_dropout_is_configurable_and_acts_on_the_head_only():
    model = _build("resnet50", dropout=0.5).train()
    assert model.dropout.p == 0.5 and _build("resnet50").dropout.p == 0.0
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    first = model(x)
    torch.manual_seed(2)
    second = model(x)
    torch.testing.assert_close(first["features"], second["features"])  # dropout is after the features
    assert not torch.equal(first["logits"], second["logits"])


@pytest.mark.parametrize("name", CNNS)
def test_cnn_one_step_lowers_the_loss(name):
    check_one_step_lowers_loss(_build(name), size=SMALL, batch=2)


@pytest.mark.parametrize("name", CNNS)
def test_cnn_onnx_matches_pytorch(name):
    check_onnx_matches(_build(name), size=SMALL)


def test_vit_onnx_matches_pytorch(vit):
    check_onnx_matches(vit, size=224)


def test_vit_one_step_lowers_the_loss():
    # a ViT-B/16 built for 112 px (7 x 7 patches): the same blocks and head, a shorter
    # position embedding, 4x fewer tokens than at 224 -- and it checks img_size works
    model = _build("vit_b16", img_size=112)
    assert model.token_grid.grid_size == (7, 7)
    check_one_step_lowers_loss(model, size=112, batch=2, lr=1e-4)


@pytest.mark.parametrize("name", ["resnet50", "xception", "vit_b16", "efficientnet_b4"])
def test_recipe_validates(name):
    from conftest import REPO_ROOT

    from fakescope.train.config import load_config

    config = load_config(REPO_ROOT / "configs" / "zoo" / f"{name}.yaml")
    assert config.model.arch == name
    assert config.resolve_path(config.output) == REPO_ROOT / "runs" / name
    shared = config.resolve_path(config.data.train.manifest)
    assert shared.parts[-3:] == ("data", "ciplab-faces", "manifest.csv")
    if "FAKESCOPE_SHARED" not in os.environ:  # the default: ../shared beside the repository
        assert shared == REPO_ROOT.parent / "shared" / "data" / "ciplab-faces" / "manifest.csv"
    expected = {"resnet50": (2e-4, 32), "xception": (2e-4, 32), "vit_b16": (3e-5, 64), "efficientnet_b4": (2e-4, 32)}
    assert (config.optim.lr, config.data.batch_size) == expected[name]
