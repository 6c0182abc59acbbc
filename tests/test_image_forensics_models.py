"""Whole-image detectors (models/image_forensics.py): the DCT and Haar transforms against SciPy and
PyWavelets, the spectrum statistics, the patch map's locality, the frozen probe, the attribution
head and its targets, and the detector contract (outputs, one training step, ONNX) for all six."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_contract import check_one_step_lowers_loss, check_onnx_matches, check_outputs

from fakescope.models import MODELS, build_model, load_checkpoint, save_checkpoint
from fakescope.models.image_forensics import (
    DCT2d,
    HaarDWT2d,
    LinearProbe,
    SpectrumStandardiser,
    attribution_targets,
    dct_matrix,
)

ARCHS = ("dct_spectrum_linear", "dct_spectrum_cnn", "cnnf", "patch_forensics", "wavelet_branch", "linear_probe")
SMALL = {"dct_spectrum_linear": 32, "dct_spectrum_cnn": 32, "cnnf": 64, "patch_forensics": 64, "wavelet_branch": 64,
         "linear_probe": 64}  # test sizes (the DCT models are built for them)
FEATURES = {"dct_spectrum_linear": 32 * 32, "dct_spectrum_cnn": 128, "cnnf": 1280, "patch_forensics": 128,
            "wavelet_branch": 1280 + 256, "linear_probe": 1280}
CLASSES = ["real", "gan", "diffusion"]


def _model(arch: str, **kwargs):
    torch.manual_seed(0)
    if arch.startswith("dct_"):
        kwargs.setdefault("input_size", SMALL[arch])
    else:
        kwargs.setdefault("pretrained", False)
    return build_model(arch, **kwargs)


# ---------------------------------------------------------------------------- transforms


def test_dct_matches_scipy_orthonormal_dctn():
    scipy_fft = pytest.importorskip("scipy.fft")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 16, 16))
    expected = scipy_fft.dctn(x, axes=(-2, -1), norm="ortho")
    layer = DCT2d(16)
    np.testing.assert_allclose(layer(torch.from_numpy(x).float()).numpy(), expected, atol=2e-6)  # as the model runs
    layer.matrix = dct_matrix(16, torch.float64)
    np.testing.assert_allclose(layer(torch.from_numpy(x)).numpy(), expected, atol=1e-12)  # exactly the DCT-II
    d = dct_matrix(16, torch.float64)
    torch.testing.assert_close(d @ d.T, torch.eye(16, dtype=torch.float64), atol=1e-12, rtol=0)  # orthonormal
    with pytest.raises(ValueError, match="16x16"):
        DCT2d(16)(torch.zeros(1, 1, 8, 8))


def test_haar_dwt_matches_pywavelets():
    pywt = pytest.importorskip("pywt")
    rng = np.random.default_rng(0)
    for h, w in [(8, 12), (7, 9)]:  # even, and odd sides (pywt's symmetric extension)
        x = rng.normal(size=(2, 3, h, w))
        ours = HaarDWT2d(3).double()(torch.from_numpy(x)).numpy()
        assert ours.shape == (2, 12, (h + 1) // 2, (w + 1) // 2)
        ll, (lh, hl, hh) = pywt.dwt2(x, "haar", axes=(-2, -1))
        expected = np.stack([ll, lh, hl, hh], axis=2).reshape(ours.shape)  # per channel: LL, LH, HL, HH
        np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_spectrum_standardiser_accumulates_training_statistics_then_freezes():
    torch.manual_seed(0)
    layer = SpectrumStandardiser((1, 2, 2))
    batches = [torch.randn(8, 1, 2, 2) * torch.tensor([1.0, 10.0, 0.1, 3.0]).view(1, 1, 2, 2) + 5.0 for _ in range(3)]
    for b in batches:
        layer(b)
    everything = torch.cat(batches)
    torch.testing.assert_close(layer.mean, everything.mean(0))
    torch.testing.assert_close(layer.sq_mean, everything.square().mean(0))
    layer.eval()
    z = layer(everything)
    torch.testing.assert_close(z.mean(0), torch.zeros(1, 2, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(1, 2, 2), atol=1e-3, rtol=0)
    assert int(layer.batches) == 3  # eval forwards leave the statistics alone


def test_dct_models_see_the_spectrum_of_the_luma_and_need_their_size():
    model = _model("dct_spectrum_linear").eval()
    assert model.num_features == 32 * 32 and model.classifier.weight.abs().sum() == 0  # logistic regression from 0
    colour = _model("dct_spectrum_linear", color=True)
    assert colour.num_features == 3 * 32 * 32
    # an up-sampling grid (a GAN's artefact) shows in the log-spectrum at the matching frequencies
    x = torch.rand(1, 3, 32, 32) * 0.1
    grid = x.clone()
    grid[..., ::2, ::2] += 0.3
    diff = (model.log_spectrum(grid) - model.log_spectrum(x))[0, 0]
    assert diff[-1, -1] > 3 and diff[0, -1] > 3 and diff[-1, 0] > 3  # the Nyquist corners
    with pytest.raises(ValueError, match="input_size"):
        model(torch.rand(1, 3, 64, 64))
    with pytest.raises(NotImplementedError):
        model.cam_layer()


def test_log_spectrum_stays_float32_under_autocast():
    """The trainer autocasts to float16 on GPUs; the spectrum spans decades, so it is computed in
    float32 whatever the autocast (checked with the CPU's bfloat16 autocast)."""
    model = _model("dct_spectrum_cnn").eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        plain = model.log_spectrum(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cast = model.log_spectrum(x)
            logits = model(x)["logits"]
    assert cast.dtype == torch.float32 and torch.equal(cast, plain)
    assert torch.isfinite(logits).all()


# ---------------------------------------------------------------------------- contract


def test_all_are_registered_whole_image_models():
    for arch in ARCHS:
        spec = MODELS.get(arch).default_preprocess
        assert spec.subject == "image", arch
    sizes = {arch: MODELS.get(arch).default_preprocess.input_size for arch in ARCHS}
    assert sizes == {"dct_spectrum_linear": 64, "dct_spectrum_cnn": 64, "cnnf": 224, "patch_forensics": 128,
                     "wavelet_branch": 224, "linear_probe": 224}
    assert MODELS.get("cnnf").default_preprocess.mean == (0.5, 0.5, 0.5)  # the packaged Lite0 weights' normalisation


@pytest.mark.parametrize("arch", ARCHS)
def test_output_contract(arch):
    size = SMALL[arch]
    mask = (size // 8, size // 8) if arch == "patch_forensics" else None
    out = check_outputs(_model(arch), batch=2, size=size, feature_dim=FEATURES[arch], mask_shape=mask)
    assert "attribution" not in out
    with_classes = _model(arch, attribution_classes=CLASSES)
    assert with_classes.attribution_classes == CLASSES
    out = check_outputs(with_classes, batch=2, size=size, feature_dim=FEATURES[arch], mask_shape=mask)
    assert out["attribution"].shape == (2, 3) and torch.isfinite(out["attribution"]).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_one_step_lowers_loss(arch):
    check_one_step_lowers_loss(_model(arch), size=SMALL[arch])


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_matches(arch, tmp_path):
    model = _model(arch)
    if arch == "dct_spectrum_linear":  # zero-initialised: give it weights and statistics worth comparing
        torch.nn.init.normal_(model.classifier.weight, std=0.05)
        model.train()(torch.rand(8, 3, 32, 32))
    check_onnx_matches(model, size=SMALL[arch], tmp_dir=tmp_path)


def test_cam_layers_are_spatial_maps():
    for arch in ("cnnf", "patch_forensics", "wavelet_branch", "linear_probe"):
        model = _model(arch).eval()
        seen: dict[str, torch.Tensor] = {}
        handle = model.cam_layer().register_forward_hook(lambda m, i, o, seen=seen: seen.setdefault("out", o))
        with torch.no_grad():
            model(torch.randn(1, 3, 64, 64))
        handle.remove()
        assert seen["out"].dim() == 4 and seen["out"].shape[-1] > 1, arch


# ---------------------------------------------------------------------------- patch forensics


def test_patch_logits_are_local_and_their_mean_is_the_image_logit():
    model = _model("patch_forensics").eval()
    assert model.stride == 8
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    out = model(x)
    torch.testing.assert_close(out["logits"], out["mask"].mean(dim=(1, 2, 3)))
    out["mask"][0, 0, 8, 8].backward()  # one patch: which pixels can move it?
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0), as_tuple=True)
    extent = max(int(rows.max() - rows.min()), int(cols.max() - cols.min())) + 1
    assert extent == 67  # its receptive field (stem + 3 Lite0 stages), far smaller than the view


def test_patch_loss_broadcasts_the_image_label_to_every_patch():
    model = _model("patch_forensics", patch_weight=0.5).eval()
    out = model(torch.randn(2, 3, 64, 64))
    labels = torch.tensor([0.0, 1.0])
    losses = model.training_losses(out, labels)
    target = labels.view(2, 1, 1, 1).expand_as(out["mask"])
    torch.testing.assert_close(losses["patch_bce"], 0.5 * F.binary_cross_entropy_with_logits(out["mask"], target))
    assert _model("patch_forensics", patch_weight=0.0).training_losses(out, labels) == {}


# ---------------------------------------------------------------------------- linear probe


def test_linear_probe_trains_only_its_head_and_keeps_backbone_statistics():
    model = _model("linear_probe").train()
    assert isinstance(model, LinearProbe)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    assert not model.backbone.training and model.training
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    check_one_step_lowers_loss(model, size=64)
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())  # BN stats too


# ---------------------------------------------------------------------------- attribution


def test_attribution_targets_from_names():
    targets = attribution_targets(CLASSES, ["gan", None, "real", "midjourney", "diffusion"])
    assert targets.dtype == torch.long and targets.tolist() == [1, -1, 0, -1, 2]


def test_attribution_loss_uses_the_targets_once_and_ignores_unknown_classes():
    model = _model("cnnf", attribution_classes=CLASSES, attribution_weight=0.5).eval()
    labels = torch.tensor([1.0, 0.0, 1.0])
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 64))
    assert model.training_losses(out, labels) == {}  # no targets set: no term
    model.set_attribution_targets(torch.tensor([1, 0, -1]))
    loss = model.training_losses(out, labels)["attribution"]
    expected = 0.5 * F.cross_entropy(out["attribution"][:2], torch.tensor([1, 0]))
    torch.testing.assert_close(loss, expected)
    assert model.training_losses(out, labels) == {}  # consumed
    model.set_attribution_targets(torch.tensor([-1, -1, -1]))
    assert model.training_losses(out, labels)["attribution"].item() == 0.0  # none known: zero, not NaN
    model.set_attribution_targets(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="batch of 3"):
        model.training_losses(out, labels)
    with pytest.raises(ValueError, match="without attribution_classes"):
        _model("cnnf").set_attribution_targets(torch.tensor([0]))
    with pytest.raises(ValueError, match="distinct"):
        _model("cnnf", attribution_classes=["real", "real"])


def test_attribution_head_learns_with_patch_and_binary_losses():
    model = _model("patch_forensics", attribution_classes=CLASSES)
    images, labels, targets = torch.randn(4, 3, 64, 64), torch.tensor([0.0, 1.0, 1.0, 0.0]), torch.tensor([0, 1, 2, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        model.set_attribution_targets(targets)
        out = model(images)
        terms = model.training_losses(out, labels)
        assert set(terms) == {"attribution", "patch_bce"}
        return F.binary_cross_entropy_with_logits(out["logits"], labels) + sum(terms.values())

    model.eval()
    with torch.no_grad():
        before = loss().item()
    model.train()
    optimizer.zero_grad()
    loss().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        assert loss().item() < before


def test_checkpoint_keeps_attribution_classes_but_not_pretrained(tmp_path):
    model = _model("wavelet_branch", attribution_classes=CLASSES).eval()
    kwargs = {"pretrained": False, "attribution_classes": CLASSES}
    path = tmp_path / "w.pt"
    save_checkpoint(path, model, "wavelet_branch", model.default_preprocess, arch_kwargs=kwargs)
    loaded = load_checkpoint(path)
    assert loaded.arch_kwargs == {"attribution_classes": CLASSES}
    assert loaded.preprocess.subject == "image" and loaded.model.attribution_classes == CLASSES
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x)["attribution"], model(x)["attribution"])


def test_pretrained_backbones_load_offline():
    """The packaged ImageNet weights (backbones.py) reach every Lite0-based model."""
    from fakescope.models.backbones import efficientnet_lite0_imagenet

    reference = efficientnet_lite0_imagenet(num_classes=0).state_dict()
    for arch in ("cnnf", "wavelet_branch", "linear_probe"):
        model = build_model(arch)  # pretrained=True by default
        state = model.backbone.state_dict()
        assert all(torch.equal(state[k], reference[k]) for k in reference), arch
    patch = build_model("patch_forensics")
    torch.testing.assert_close(patch.stem[0].weight, reference["conv_stem.weight"], rtol=0, atol=0)
