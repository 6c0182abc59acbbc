"""Gram-Net: the Gram matrix as a texture statistic, the six texture branches, the
detector contract, parameter count, one training step, ONNX, recipe."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from model_contract import check_one_step_lowers_loss, check_onnx_matches, check_outputs, check_parameter_count

from fakescope.models import MODELS, build_model
from fakescope.models.gramnet import GRAM_CHANNELS, TAP_POINTS, GramBlock, GramNet, gram_matrix

SMALL = 64  # ResNet-18 strides by 32: layer4 is 2 x 2 here; the Gram matrices are 32 x 32 at any size
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "zoo" / "gramnet.yaml"


def _model(**kwargs) -> GramNet:
    torch.manual_seed(0)
    return build_model("gramnet", **kwargs)


# ---------------------------------------------------------------------------- the Gram matrix


def _direct_gram(f: torch.Tensor) -> torch.Tensor:
    """G[b, i, j] = sum over pixels of F_i F_j, divided by C·H·W (the authors' normalisation)."""
    b, c, h, w = f.shape
    return torch.einsum("bihw,bjhw->bij", f, f) / (c * h * w)


def test_gram_matrix_matches_direct_computation_and_is_symmetric_psd():
    torch.manual_seed(0)
    f = torch.randn(2, 5, 7, 9, dtype=torch.float64)
    g = gram_matrix(f)
    assert g.shape == (2, 5, 5)
    torch.testing.assert_close(g, _direct_gram(f), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g.transpose(1, 2), rtol=0, atol=1e-14)
    eigenvalues = torch.linalg.eigvalsh(g)
    assert (eigenvalues >= -1e-12).all(), eigenvalues
    # a rank-deficient case: 5 channels but only 3 pixels -> exactly 2 zero eigenvalues, none negative
    low_rank = torch.linalg.eigvalsh(gram_matrix(torch.randn(1, 5, 1, 3, dtype=torch.float64)))[0]
    assert (low_rank[:2].abs() < 1e-12).all() and (low_rank[2:] > 1e-6).all()


def test_gram_matrix_ignores_where_pixels_are():
    """The texture property: shuffling the pixels (the same way in every channel) keeps G,
    though the map itself is a different image."""
    torch.manual_seed(0)
    f = torch.randn(2, 8, 6, 10)
    perm = torch.randperm(6 * 10)
    shuffled = f.reshape(2, 8, -1)[:, :, perm].reshape(2, 8, 6, 10)
    assert not torch.allclose(shuffled, f)
    torch.testing.assert_close(gram_matrix(shuffled), gram_matrix(f), rtol=1e-5, atol=1e-6)
    # but it does see which channels fire together: decorrelating two channels changes it
    other = f.clone()
    other[:, 1] = other[:, 1, :, torch.randperm(10)]
    assert not torch.allclose(gram_matrix(other), gram_matrix(f), atol=1e-3)


def test_gram_matrix_stays_in_float16_range():
    """At 512 px the undivided pixel sum passes float16's 65504; dividing before the
    product keeps it finite (this is why gram_matrix scales by sqrt(H·W) first)."""
    f = torch.ones(1, 4, 300, 300, dtype=torch.float16)  # 90000 pixels
    flat = f.reshape(1, 4, -1)
    assert torch.isinf(torch.bmm(flat, flat.transpose(1, 2))).all()  # the naive order overflows
    g = gram_matrix(f)
    assert torch.isfinite(g).all()
    torch.testing.assert_close(g.float(), torch.full((1, 4, 4), 0.25), rtol=1e-3, atol=1e-3)  # 90000 / (4·90000)


def test_gram_block_gives_a_fixed_vector_at_any_resolution():
    torch.manual_seed(0)
    block = GramBlock(64).eval()
    with torch.no_grad():
        for h, w in [(40, 40), (23, 57), (5, 5)]:
            assert block(torch.randn(2, 64, h, w)).shape == (2, 32)
    # the reducing conv takes the tap to 32 channels: the Gram matrix it encodes is 32 x 32
    seen = {}

    def record(module, args):
        seen["gram"] = args[0].shape

    block.encode.register_forward_pre_hook(record)
    with torch.no_grad():
        block(torch.randn(1, 64, 11, 13))
    assert seen["gram"] == (1, 1, GRAM_CHANNELS, GRAM_CHANNELS)


# ---------------------------------------------------------------------------- the network


def test_registered_with_the_authors_input_size():
    assert MODELS.get("gramnet") is GramNet
    spec = GramNet.default_preprocess
    assert (spec.input_size, spec.mean, spec.std, spec.margin) == (512, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1.3)
    model = _model()
    assert [name for name, _ in TAP_POINTS] == ["image", "stem", "maxpool", "layer1", "layer2", "layer3"]
    assert [block.reduce[0].in_channels for block in model.gram_blocks.values()] == [3, 64, 64, 64, 128, 256]


def test_output_contract_and_features_are_the_concatenation():
    model = _model()
    assert model.cam_layer() is model.backbone.layer4
    captured = {}

    def record(module, inputs, output):
        captured["layer4"] = output

    model.cam_layer().register_forward_hook(record)
    out = check_outputs(model, batch=2, size=SMALL, feature_dim=512 + 6 * 32, mask_shape=None)
    assert captured["layer4"].shape == (2, 512, 2, 2)  # the last spatial map, for Grad-CAM
    torch.testing.assert_close(out["features"][:, :512], captured["layer4"].mean(dim=(2, 3)))
    # the six 32-d texture vectors follow, all scaled by one shared learnt scalar
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        base = model(x)["features"]
        model.gram_scale.fill_(3.0)
        tripled = model(x)["features"]
    torch.testing.assert_close(tripled[:, :512], base[:, :512])
    torch.testing.assert_close(tripled[:, 512:], 3.0 * base[:, 512:])
    assert base[:, 512:].abs().sum() > 0  # post-ReLU texture vectors are not all zero


def test_parameter_count_matches_the_authors_network():
    # No published count; this reference is counted by hand from the authors' resnet18_gram.py:
    #   ResNet-18 without its 1000-way fc: 11,689,512 - (512*1000 + 1000)     = 11,176,512
    #   six Gram blocks:
    #     reducing 3x3 convs to 32 ch, no bias: 9*32*(3+64+64+64+128+256)    =    166,752
    #     their BNs: 6 * 2*32                                                 =        384
    #     per block 3x3 1->16 (144) + BN (32) + 3x3 16->32 (4,608) + BN (64)
    #       = 4,848, times 6                                                  =     29,088
    #     the shared ScaleLayer                                               =          1
    #   head Linear(704, 512): 704*512 + 512                                  =    360,960
    #   their Linear(512, 2) (1,026) -> one fake logit, Linear(512, 1)        =        513
    #   total                                                                   11,734,210
    # (the authors' 2-way network: 11,734,210 - 513 + 1,026 = 11,734,723)
    resnet18_without_fc = 11_689_512 - (512 * 1000 + 1000)
    gram_blocks = 9 * 32 * (3 + 64 + 64 + 64 + 128 + 256) + 6 * 2 * 32 + 6 * (9 * 16 + 2 * 16 + 9 * 16 * 32 + 2 * 32) + 1
    reference = resnet18_without_fc + gram_blocks + (704 * 512 + 512) + (512 + 1)
    assert reference == 11_734_210
    model = _model()
    assert check_parameter_count(model, reference) == reference  # exact, not just within 5%
    assert sum(p.numel() for p in model.backbone.parameters()) == resnet18_without_fc


def test_one_step_lowers_the_loss():
    check_one_step_lowers_loss(_model(), size=SMALL, batch=4)


def test_onnx_matches_pytorch():
    check_onnx_matches(_model(), size=SMALL, batch=2)


def test_profile_counts_flops_on_the_meta_device():
    from fakescope.models.profile import profile

    info = profile("gramnet")
    assert info["parameters"] == 11_734_210 and info["input_size"] == 512
    # ResNet-18: 1.82 GFLOPs at 224 -> 9.5 at 512; the Gram branches add ~2.6 (mostly the
    # 3x3 reducing convs at stride 1 on the 512 and 256 px maps)
    assert info["gflops"] is not None and 11.0 < info["gflops"] < 13.5, info


def test_recipe_validates():
    from fakescope.train.config import load_config

    cfg = load_config(RECIPE)
    assert cfg.model.arch == "gramnet"
    assert cfg.data.batch_size == 16 and cfg.train.epochs == 10 and cfg.schedule.name == "none"
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("adamw", 3e-4, 1e-4)
    (downscale,) = cfg.augment.transforms
    assert downscale.name == "Downscale" and downscale.p == 1.0
    assert downscale.params["scale_range"] == [0.125, 0.5]  # 64-256 px of a 512 px face
    assert cfg.data.train.manifest.startswith("${FAKESCOPE_SHARED:-../../../shared}")
    assert cfg.output == "../../runs/gramnet"
