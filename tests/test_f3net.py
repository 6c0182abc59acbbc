"""F3-Net: DCT and band filters, FAD / LFS heads, MixBlock, output contract, size, training step, ONNX, recipe."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_contract import check_one_step_lowers_loss, check_onnx_matches, check_outputs, check_parameter_count

from fakescope.models import MODELS, build_model, load_checkpoint, save_checkpoint
from fakescope.models.f3net import (
    F3Net,
    FADHead,
    LFSHead,
    MixBlock,
    dct_matrix,
    fad_base_filters,
    lfs_base_filters,
)

SMALL = 64  # FAD's filters are sized by the input: tests build input_size=64 (the default is 299)
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "zoo" / "f3net.yaml"


def _small(**kwargs) -> F3Net:
    torch.manual_seed(0)
    return build_model("f3net", input_size=SMALL, **kwargs)


def _calibrate_batch_norm(model: F3Net, size: int = SMALL) -> None:
    """Give batch norm real running statistics (fresh ones leave eval-mode features ~1e-4,
    which would make an output comparison vacuous)."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    torch.manual_seed(2)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, size, size))
    model.eval()


# ---------------------------------------------------------------- registration and contract


def test_registered_with_paper_preprocessing_and_defaults():
    assert MODELS.get("f3net") is F3Net
    spec = F3Net.default_preprocess
    assert (spec.input_size, spec.mean, spec.std, spec.margin) == (299, (0.5,) * 3, (0.5,) * 3, 1.3)
    with torch.device("meta"):
        model = build_model("f3net")
    assert model.mode == "Mix" and model.input_size == 299 and set(model.mix) == {"block7", "block12"}
    assert model.fad_head.bands == 3 and model.fad_xception.conv1.in_channels == 9  # the paper's N = 3 bands
    assert model.lfs_xception.conv1.in_channels == 6 and model.lfs_xception.conv1.stride == (1, 1)


def test_output_contract_and_grad_cam_layer():
    from fakescope.scan.explain import evidence_maps

    model = _small()
    out = check_outputs(model, batch=2, size=SMALL, feature_dim=4096)
    assert set(out) == {"logits", "features"}
    assert model.cam_layer() is model.final_map
    maps = evidence_maps(model.eval(), torch.randn(2, 3, SMALL, SMALL))
    assert maps.shape == (2, SMALL, SMALL) and np.isfinite(maps).all() and maps.max() <= 1.0


@pytest.mark.parametrize("mode, dim", [("Both", 4096), ("FAD", 2048), ("LFS", 2048)])
def test_ablation_modes(mode, dim):
    model = _small(mode=mode)
    assert model.mix is None
    assert (model.fad_head is None) == (mode == "LFS") and (model.lfs_head is None) == (mode == "FAD")
    check_outputs(model, batch=2, size=SMALL, feature_dim=dim)


def test_bad_arguments_and_inputs_are_refused():
    with pytest.raises(ValueError, match="mode"):
        build_model("f3net", mode="mix")
    with pytest.raises(ValueError, match="MixBlock"):
        build_model("f3net", input_size=56)  # the two streams reach 4 x 4 vs 3 x 3 grids
    with pytest.raises(ValueError, match="64 x 64"):
        _small().eval()(torch.randn(1, 3, 72, 72))


def test_parameter_count_matches_two_xceptions_plus_mixblocks():
    # Reference: Xception 22,855,952 parameters with its 1000-way head (Chollet, CVPR 2017,
    # Table 3; timm legacy_xception has the same). Each stream drops the head
    # (2048 * 1000 + 1000 = 2,049,000) -> 20,806,952; its first 3x3 conv takes 9 (FAD,
    # +6 * 32 * 9 = 1,728) resp. 6 (LFS, +3 * 32 * 9 = 864) channels instead of 3.
    # MixBlock (paper Sec. 3.3) on C channels: four 1x1 query/key convs 4 (C^2 + C), two
    # depthwise 1x1 convs 2C, two batch norms 4C, two gates: C = 728 -> 2,127,218;
    # C = 1024 -> 4,204,546. Learnable filters: FAD 3 * 299^2 = 268,203, LFS 6 * 10^2 = 600.
    # Binary head on the 4096-D concatenation: 4,097.
    # Total 2 * 20,806,952 + 1,728 + 864 + 2,127,218 + 4,204,546 + 268,203 + 600 + 4,097 = 48,221,160.
    # (Neither the paper nor PyDeepFakeDet / DeepfakeBench publishes a count.)
    trunk = 22_855_952 - (2048 * 1000 + 1000)
    mix = sum(4 * (c * c + c) + 2 * c + 4 * c + 2 for c in (728, 1024))
    reference = 2 * trunk + 6 * 32 * 9 + 3 * 32 * 9 + mix + 3 * 299**2 + 6 * 10**2 + 4096 + 1
    assert reference == 48_221_160
    torch.manual_seed(0)
    check_parameter_count(build_model("f3net"), reference)


def test_profile_counts_gflops_on_meta_device():
    from fakescope.models.profile import profile

    info = profile("f3net")
    assert info["input_size"] == 299 and info["parameters"] == 48_221_160
    assert info["gflops"] is not None and 15 < info["gflops"] < 25  # two Xceptions (8.4 each) + DCTs + MixBlocks


def test_one_step_lowers_loss():
    check_one_step_lowers_loss(_small(), size=SMALL, batch=4, lr=1e-3)


def test_onnx_export_matches_pytorch():
    model = _small()
    _calibrate_batch_norm(model)
    with torch.no_grad():
        assert model(torch.randn(2, 3, SMALL, SMALL))["features"].abs().mean() > 1e-2  # a non-vacuous comparison
    check_onnx_matches(model, size=SMALL)


def test_checkpoint_round_trip_rebuilds_the_constant_filters(tmp_path):
    model = _small()
    _calibrate_batch_norm(model)
    with torch.no_grad():
        model.fad_head.learnable.normal_(0, 0.5)
    path = tmp_path / "f3net.pt"
    save_checkpoint(path, model, "f3net", F3Net.default_preprocess, arch_kwargs={"input_size": SMALL})
    assert not any(k.endswith((".dct", ".base", ".basis")) for k in torch.load(path)["state_dict"])
    loaded = load_checkpoint(path).model
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        assert torch.allclose(loaded(x)["logits"], model.eval()(x)["logits"], atol=1e-6)


# ---------------------------------------------------------------- DCT and FAD


@pytest.mark.parametrize("n", [10, 64, 299])
def test_dct_matrix_is_orthonormal_dct_ii(n):
    from scipy.fft import dctn

    d = dct_matrix(n)
    np.testing.assert_allclose(d @ d.T, np.eye(n), atol=1e-10)
    x = np.random.default_rng(0).normal(size=(n, n))
    np.testing.assert_allclose(d @ x @ d.T, dctn(x, type=2, norm="ortho"), atol=1e-9)


@pytest.mark.parametrize("size", [64, 299])
def test_fad_base_bands_partition_the_spectrum(size):
    bands = fad_base_filters(size)
    assert bands.shape == (3, size, size) and set(np.unique(bands)) == {0.0, 1.0}
    np.testing.assert_array_equal(bands.sum(0), np.ones((size, size)))  # disjoint and covering
    low, middle, high = bands
    assert low[0, 0] == 1 and high[-1, -1] == 1  # DC is low, the highest frequency is high
    # the paper: low = first 1/16 of the spectrum, middle 1/16-1/8, high the last 7/8
    shares = bands.reshape(3, -1).mean(1)
    np.testing.assert_allclose(shares, [1 / 16, 1 / 16, 7 / 8], atol=0.01)
    d = np.add.outer(np.arange(size), np.arange(size))  # bands are unions of whole anti-diagonals
    for band in bands:
        assert all(len(set(band[d == k])) == 1 for k in range(2 * size - 1))
    all_band = fad_base_filters(size, all_band=True)
    assert all_band.shape == (4, size, size) and (all_band[3] == 1).all()


def test_fad_bands_are_band_limited_and_sum_to_the_input():
    torch.manual_seed(0)
    head = FADHead(SMALL)
    assert torch.count_nonzero(head.learnable) == 0  # starts at the exact base filters
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        out = head(x)
    assert out.shape == (2, 9, SMALL, SMALL)
    bands = out.view(2, 3, 3, SMALL, SMALL)  # (B, band, RGB, H, W)
    torch.testing.assert_close(bands.sum(1), x, atol=1e-4, rtol=0)
    d = head.dct.double()
    for i in range(3):
        spectrum = d @ bands[:, i].double() @ d.T
        outside = spectrum * (1 - head.base[i].double())
        assert outside.abs().max() < 1e-4 and spectrum.abs().max() > 1  # only its own frequencies
    # a smooth image lives almost entirely in the low band
    ramp = torch.linspace(-1, 1, SMALL).expand(1, 3, SMALL, SMALL)
    with torch.no_grad():
        low = head(ramp)[:, :3]
    assert (low - ramp).abs().max() < 0.1


def test_fad_learnable_filters_train_with_the_papers_normalisation():
    head = FADHead(SMALL)
    with torch.no_grad():
        head.learnable.fill_(50.0)  # 2 sigmoid(50) - 1 = 1: every band passes everything on top of its base
    np.testing.assert_allclose(head.filters().detach().numpy(), 1 + fad_base_filters(SMALL), atol=1e-6)
    head = FADHead(SMALL)
    head(torch.randn(1, 3, SMALL, SMALL)).square().mean().backward()
    assert head.learnable.grad is not None and head.learnable.grad.abs().sum() > 0


# ---------------------------------------------------------------- LFS


def test_lfs_base_bands_partition_the_window():
    bands = lfs_base_filters(10, 6)
    assert bands.shape == (6, 10, 10)
    np.testing.assert_array_equal(bands.sum(0), np.ones((10, 10)))
    assert bands[0, 0, 0] == 1 and bands[5, 9, 9] == 1 and (bands.reshape(6, -1).sum(1) > 0).all()


def test_lfs_output_shape_at_299_is_149_by_149_by_m():
    head = LFSHead()
    with torch.no_grad():
        out = head(torch.rand(1, 3, 299, 299) * 2 - 1)
    assert out.shape == (1, 6, 149, 149) and torch.isfinite(out).all()
    assert head.output_side(299) == 149 and head.output_side(SMALL) == 32


def test_lfs_matches_a_direct_sliding_window_dct():
    """The strided-convolution SWDCT equals unfold + D p D^T, band filtering, L1 norm, log10."""
    torch.manual_seed(0)
    head = LFSHead()
    with torch.no_grad():
        head.learnable.normal_(0, 1.0)
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    with torch.no_grad():
        out = head(x)
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1) * 127.5 + 127.5
    patches = F.unfold(grey.double(), kernel_size=10, stride=2, padding=4)  # (B, 100, L)
    side = (24 + 8 - 10) // 2 + 1
    patches = patches.transpose(1, 2).reshape(2, side * side, 10, 10)
    d = torch.tensor(dct_matrix(10))
    spectra = d @ patches @ d.T  # (B, L, 10, 10)
    filters = head.filters().detach().double().view(6, 10, 10)
    l1 = (spectra.unsqueeze(2) * filters).abs().sum(dim=(-2, -1))  # (B, L, M)
    expected = torch.log10(l1 + head.eps).transpose(1, 2).reshape(2, 6, side, side)
    torch.testing.assert_close(out.double(), expected, atol=2e-4, rtol=0)


# ---------------------------------------------------------------- MixBlock


def test_mixblock_starts_as_identity_and_then_mixes_the_streams():
    torch.manual_seed(0)
    block = MixBlock(8)
    x_fad, x_lfs = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    for train in (True, False):
        block.train(train)
        y_fad, y_lfs = block(x_fad, x_lfs)
        assert torch.equal(y_fad, x_fad) and torch.equal(y_lfs, x_lfs)  # gates 2 sigmoid(0) - 1 = 0
    attention = block.attention(x_fad, x_lfs)
    assert attention.shape == (2, 8, 5, 5)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 8, 5))
    with torch.no_grad():
        block.gate_lfs.fill_(2.0)  # opens LFS -> FAD only
    block.train()
    y_fad, y_lfs = block(x_fad, x_lfs)
    assert not torch.allclose(y_fad, x_fad) and torch.equal(y_lfs, x_lfs)
    # the FAD update depends on the LFS features
    y_fad_other, _ = block(x_fad, torch.randn(2, 8, 5, 5))
    assert not torch.allclose(y_fad, y_fad_other)
    with pytest.raises(ValueError, match="equal square"):
        block(x_fad, torch.randn(2, 8, 4, 4))


# ---------------------------------------------------------------- recipe


def test_recipe_validates():
    from fakescope.train.config import load_config

    config = load_config(str(RECIPE))
    assert config.model.arch == "f3net" and config.model.kwargs["mode"] == "Mix"
    assert config.optim.name == "adamw" and math.isclose(config.optim.lr, 2e-4) and config.optim.weight_decay == 0
    assert tuple(config.optim.betas) == (0.9, 0.999)
    assert "../../../shared" in config.data.train.manifest and config.output == "../../runs/f3net"
