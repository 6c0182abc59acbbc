"""MAT (multi-attentional deepfake detection): contract, size, ONNX, and the paper's
parts -- bilinear attention pooling, regional independence loss, AGDA."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from model_contract import check_one_step_lowers_loss, check_onnx_matches, check_outputs, check_parameter_count

from fakescope.models import MODELS, build_model
from fakescope.models.mat import (
    MAT,
    AttentionModule,
    bilinear_attention_pooling,
    local_average,
    nearest_upsample,
)

SMALL = 64  # B4's stride 16 / 32 still leave 4x4 attention and 2x2 head maps
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> MAT:
    torch.manual_seed(0)
    return build_model("mat")


def _bn_buffers(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()
            if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


# ----------------------------------------------------------------------------- contract


def test_registered_with_authors_preprocessing(model):
    assert MODELS.get("mat") is MAT
    spec = MAT.default_preprocess
    assert (spec.input_size, spec.mean, spec.std) == (380, (0.5,) * 3, (0.5,) * 3)
    assert model.cam_layer() is model.backbone.bn2


def test_outputs(model):
    torch.manual_seed(0)
    out = check_outputs(model, batch=2, size=SMALL, feature_dim=512)  # 2 x mid_dims
    assert out["attention"].shape == (2, 4, 4, 4)  # M = 4 maps on the stride-16 grid
    assert (out["attention"] >= 0).all()  # ELU + 1
    assert out["part_features"].shape == (2, 4, 32)  # 32 = stage-2 channels
    assert torch.allclose(out["part_features"].norm(dim=-1), torch.ones(2, 4), atol=1e-5)


def test_parameter_count(model):
    # Reference, by hand from the authors' module definitions (models/MAT.py, MAT with
    # Texture_Enhance_v2) for B4 with M = 4, texture on b2 (N = 32 ch), attention on b5
    # (160 ch), head 1792 ch, mid_dims 256, and a 1-logit instead of a 2-way output.
    # Backbone: timm tf_efficientnet_b4 = 19,341,616 (Tan & Le's "19M") minus its
    # 1000-way classifier 1792 x 1000 + 1000 = 1,793,000 -> 17,548,616.
    backbone = 19_341_616 - (1792 * 1000 + 1000)
    c, m, n, d, mid = 160, 4, 32, 1792, 256
    attention = (c * c * 9 + c) + 2 * c + c * m + 2 * m  # 3x3 conv+bias, BN, 1x1 conv, BN: 231,528
    mn = m * n
    texture = ((n * n * 9 + n)  # extract 3x3
               + (mn * n * 25 + mn) + (mn * n * 9 + mn)  # conv0 5x5, conv1 3x3 (groups M)
               + (mn * 2 * n * 9 + mn) + (mn * 3 * n * 9 + mn) + (mn * 4 * n + mn)  # conv2, conv3, conv_last
               + 2 * (mn + 2 * mn + 3 * mn + 4 * mn + mn))  # bn1..bn4, bn_last: 352,672
    heads = ((mn * mid + mid) + (mid * mid + mid)  # projection_local
             + (d * mid + mid)  # project_final
             + (2 * mid * mid + mid) + (mid + 1))  # ensemble classifier, 1 logit: 689,409
    reference = backbone + attention + texture + heads  # 18,822,225
    assert reference == 18_822_225
    check_parameter_count(model, reference)


def test_one_step_lowers_loss():
    torch.manual_seed(0)
    check_one_step_lowers_loss(build_model("mat"), size=SMALL, batch=4)


def test_onnx_matches(model):
    check_onnx_matches(model, size=SMALL)


def test_autocast_forward_keeps_pooling_in_float32(model):
    m = copy.deepcopy(model).train()
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(torch.randn(2, 3, SMALL, SMALL))
    assert out["part_features"].dtype == torch.float32
    assert torch.isfinite(out["logits"].float()).all() and torch.isfinite(out["part_features"]).all()
    losses = m.training_losses(out, torch.tensor([0.0, 1.0]))
    assert all(torch.isfinite(v) for v in losses.values())


def test_profile_counts_flops_on_meta():
    from fakescope.models.profile import profile

    info = profile("mat")
    assert info["input_size"] == 380 and info["gflops"] is not None and info["gflops"] > 4.0  # B4 alone ~4.4


def test_recipe_validates():
    from fakescope.train.config import load_config

    cfg = load_config(REPO / "configs" / "zoo" / "mat.yaml")
    assert cfg.model.arch == "mat" and cfg.data.batch_size == 32 and cfg.optim.lr == 1e-3
    build_model("mat", **cfg.model.kwargs)  # the kwargs are accepted


# ----------------------------------------------------------------------------- building blocks


def test_bap_equals_manual_einsum():
    torch.manual_seed(0)
    feats = torch.randn(2, 3, 5, 5)
    att = torch.rand(2, 4, 5, 5)
    manual = (att[:, :, None] * feats[:, None]).sum(dim=(-1, -2))  # (B, M, N)
    manual_l2 = manual / manual.norm(dim=-1, keepdim=True)
    assert torch.allclose(bilinear_attention_pooling(feats, att, "l2"), manual_l2, atol=1e-6)
    # one feature copy per map (the texture block's output)
    copies = torch.randn(2, 4, 3, 5, 5)
    manual5 = (att[:, :, None] * copies).sum(dim=(-1, -2))
    assert torch.allclose(bilinear_attention_pooling(copies, att, "l2"),
                          manual5 / manual5.norm(dim=-1, keepdim=True), atol=1e-6)
    # attention-weighted average (the deep branch), maps on a coarser grid upsampled first
    small = torch.rand(2, 1, 3, 3)
    up = F.interpolate(small, size=(5, 5), mode="bilinear", align_corners=True) + 1e-8
    mean = (up[:, :, None] * feats[:, None]).sum(dim=(-1, -2)) / up.sum(dim=(-1, -2))[..., None]
    assert torch.allclose(bilinear_attention_pooling(feats, small, "mean"), mean, atol=1e-6)


@pytest.mark.parametrize("big,small", [(95, 24), (16, 4), (7, 3)])
def test_local_average_and_upsample_match_torch(big, small):
    torch.manual_seed(0)
    x = torch.randn(2, 3, big, big)
    assert torch.allclose(local_average(x, (small, small)), F.adaptive_avg_pool2d(x, small), atol=1e-5)
    y = torch.randn(2, 3, small, small)
    assert torch.equal(nearest_upsample(y, (big, big)), F.interpolate(y, size=(big, big), mode="nearest"))


def test_attention_border_is_the_authors_mask():
    mask = AttentionModule.border_mask(24, 24, "cpu")[0, 0]
    expected = torch.zeros(24, 24)
    expected[2:-2, 2:-2] = 1
    assert torch.equal(mask, expected)


# ----------------------------------------------------------------------------- regional independence loss


def test_ril_zero_within_margins_grows_outside(model):
    m = copy.deepcopy(model).eval()  # eval: no centre update while probing the loss
    centers = torch.zeros(4, 32)
    centers[torch.arange(4), torch.arange(4)] = 1.0  # pairwise sqrt(2) apart: inter term 0
    m.feature_centers.copy_(centers)
    direction = torch.zeros(4, 32)
    direction[:, 10] = 0.5  # Frobenius norm 1 over the 4 parts

    def loss(offsets, labels):
        parts = torch.stack([centers + o * direction for o in offsets])
        return float(m.regional_independence_loss(parts, torch.tensor(labels)))

    assert loss([0.0, 0.0], [0.0, 0.0]) == 0.0  # reals on their centres
    assert loss([0.0, 0.08], [0.0, 1.0]) == 0.0  # a fake 0.08 away: inside its 0.1 margin
    assert loss([0.0, 0.08], [0.0, 0.0]) > 0.0  # the same for a real: outside its 0.05 margin
    # moving away from the centres raises the loss (the real mean moves the centre by alpha / 2)
    grow = [loss([0.0, d], [0.0, 1.0]) for d in (0.2, 0.5, 1.0)]
    assert 0.0 < grow[0] < grow[1] < grow[2]
    # centres closer than the inter margin are pushed apart
    m.feature_centers.zero_()
    together = float(m.regional_independence_loss(torch.zeros(2, 4, 32), torch.tensor([0.0, 0.0])))
    assert together == pytest.approx(6 * 0.2 / 4 / 0.05)  # C(4,2) pairs x m_out / M / alpha, intra 0


def test_ril_centres_move_with_real_samples_only(model):
    m = copy.deepcopy(model).train()
    torch.manual_seed(0)
    start = torch.randn(4, 32)
    m.feature_centers.copy_(start)
    parts = torch.randn(3, 4, 32)
    m.regional_independence_loss(parts, torch.tensor([0.0, 0.0, 1.0]))
    expected = start + 0.05 * ((parts[0] - start) + (parts[1] - start)) / 3  # batch mean, fakes count 0
    assert torch.allclose(m.feature_centers, expected, atol=1e-6)
    before = m.feature_centers.clone()
    m.regional_independence_loss(parts, torch.tensor([1.0, 1.0, 1.0]))  # fakes only
    assert torch.equal(m.feature_centers, before)
    m.eval()
    m.regional_independence_loss(parts, torch.tensor([0.0, 0.0, 0.0]))  # not in training
    assert torch.equal(m.feature_centers, before)


def test_ril_alpha_decays_every_n_steps(model):
    m = copy.deepcopy(model).train()
    m.ril_alpha_decay_every = 2
    parts, labels = torch.randn(2, 4, 32, requires_grad=True), torch.tensor([0.0, 1.0])
    for _ in range(4):
        m.regional_independence_loss(parts, labels).backward()  # the in-place decay must not break backward
    assert parts.grad is not None and torch.isfinite(parts.grad).all()
    assert int(m.ril_steps) == 4 and float(m.ril_alpha) == pytest.approx(0.05 * 0.9**2)


# ----------------------------------------------------------------------------- AGDA


def _stub_attention(m: MAT, size=4):
    """Replace the attention pass by fixed maps: map k is one bright cell (k, k)."""
    att = torch.zeros(2, 4, size, size)
    for k in range(4):
        att[:, k, k, k] = 1.0 + k
    m._attention_and_parts = lambda images: (att, torch.zeros(2, 4, 32))
    return att


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_agda_changes_only_the_attended_region(model, mode):
    m = copy.deepcopy(model).train()
    m.agda_p, m.agda_mode = 1.0, mode
    att = _stub_attention(m)
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32) + 0.5  # no zero pixels: an erased pixel shows
    labels = torch.tensor([0.0, 1.0])
    labels_before = labels.clone()
    out = m.augment_training_batch(images, labels)
    assert out.shape == images.shape and torch.equal(labels, labels_before)
    index = m._agda_cache["index"]
    for b in range(2):
        chosen = att[b, index[b]][None, None]
        region = F.interpolate(chosen, size=(32, 32), mode="bilinear", align_corners=True)[0, 0]
        region = region / region.max()
        changed = (out[b] != images[b]).any(dim=0)
        assert not changed[region == 0].any(), "AGDA touched pixels outside the chosen map"
        assert changed[region >= 0.6].all()  # above the highest threshold: degraded / erased
        if mode == "hard":
            assert (out[b][:, region >= 0.6] == 0).all() and not changed[region < 0.4].any()


def test_agda_alters_a_random_subset(model):
    m = copy.deepcopy(model).train()
    m.agda_p = 0.5
    _stub_attention(m)
    torch.manual_seed(3)
    images = torch.rand(2, 3, 32, 32)
    altered = []
    for _ in range(12):
        out = m.augment_training_batch(images, torch.tensor([0.0, 1.0]))
        chosen = m._agda_cache["chosen"] if m._agda_cache else torch.zeros(2, dtype=torch.bool)
        per_sample = (out != images).flatten(1).any(dim=1)
        assert torch.equal(per_sample, chosen)  # exactly the drawn samples change
        altered.append(chosen)
    share = torch.stack(altered).float().mean()
    assert 0.2 < share < 0.8
    m.agda_p = 0.0
    assert m.augment_training_batch(images, torch.tensor([0.0, 1.0])) is images
    m.agda_p = 1.0
    assert m.eval().augment_training_batch(images, torch.tensor([0.0, 1.0])) is images  # only in training


def test_agda_keeps_bn_running_statistics(model):
    m = copy.deepcopy(model).train()
    m.agda_p = 1.0
    torch.manual_seed(0)
    images = torch.randn(2, 3, SMALL, SMALL)
    before = _bn_buffers(m)
    with torch.no_grad():
        out = m.augment_training_batch(images, torch.tensor([0.0, 1.0]))
    assert m.training and not torch.equal(out, images)
    after = _bn_buffers(m)
    assert all(torch.equal(before[k], after[k]) for k in before)
    with torch.no_grad():
        m(images)  # a training forward does move them (so the check above can fail)
    moved = _bn_buffers(m)
    assert any(not torch.equal(before[k], moved[k]) for k in before)


def test_agda_match_loss_only_for_the_augmented_batch(model):
    m = copy.deepcopy(model).train()
    m.agda_p = 1.0
    torch.manual_seed(0)
    images, labels = torch.randn(2, 3, SMALL, SMALL), torch.tensor([0.0, 1.0])
    with torch.no_grad():
        augmented = m.augment_training_batch(images, labels)
        losses = m.training_losses(m(augmented), labels)
        assert set(losses) == {"regional_independence", "agda_match"}
        assert float(losses["agda_match"]) >= 0.0
        assert set(m.training_losses(m(augmented.clone()), labels)) == {"regional_independence"}
