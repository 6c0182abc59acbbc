"""M2TR: the DCT and its band filters, the multi-scale heads' patch attention, the
cross-modality roles, the contrastive loss, the detector contract with its full-size
mask, parameter count, training steps (with and without mask targets), ONNX, recipe,
and the video heads (mean, temporal): values, a training step, windows, checkpoints."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_contract import check_one_step_lowers_loss, check_onnx_matches, check_outputs, check_parameter_count

from fakescope.models import MODELS, build_model
from fakescope.models.m2tr import (
    BAND_EDGES,
    HEAD_GRIDS,
    M2TR,
    TEMPORAL_FRAMES,
    CrossModalityAttention,
    DCTBandFilter,
    MultiScaleAttention,
    band_masks,
    contrastive_loss,
    dct_matrix,
    patch_attention,
)

SMALL = 64  # stride-4 map 16 x 16: splits into the 1/2/4/8 grids (patches 16/8/4/2 px)
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "zoo" / "m2tr.yaml"


def _model(**kwargs) -> M2TR:
    torch.manual_seed(0)
    return build_model("m2tr", **{"input_size": SMALL, **kwargs})


# ---------------------------------------------------------------------------- the DCT and its bands


@pytest.mark.parametrize("n", [7, 16, 80])
def test_dct_matrix_is_orthonormal_dct_ii(n):
    scipy_fft = pytest.importorskip("scipy.fft")
    d = dct_matrix(n).double()
    torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-6)
    x = np.random.default_rng(0).standard_normal((n, 5))
    torch.testing.assert_close(d @ torch.from_numpy(x), torch.from_numpy(scipy_fft.dct(x, axis=0, norm="ortho")),
                               rtol=0, atol=1e-5)


def test_2d_dct_of_features_matches_scipy_and_inverts():
    scipy_fft = pytest.importorskip("scipy.fft")
    filt = DCTBandFilter(channels=3, height=12, width=20)
    x = torch.randn(2, 3, 12, 20)
    spectrum = filt.dct2(x)
    expected = scipy_fft.dctn(x.numpy().astype(np.float64), axes=(2, 3), norm="ortho")
    torch.testing.assert_close(spectrum.double(), torch.from_numpy(expected), rtol=0, atol=1e-4)
    torch.testing.assert_close(filt.idct2(spectrum), x, rtol=0, atol=1e-5)
    # orthonormal: energy is kept (Parseval)
    torch.testing.assert_close(spectrum.pow(2).sum(), x.pow(2).sum(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("shape", [(16, 16), (80, 80), (12, 20)])
def test_band_masks_partition_the_spectrum_from_low_to_high(shape):
    masks = band_masks(*shape)
    assert masks.shape == (3, *shape)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(masks.sum(0), torch.ones(shape))  # every frequency in exactly one band
    assert (masks.flatten(1).sum(1) > 0).all()
    assert masks[0, 0, 0] == 1 and masks[2, -1, -1] == 1  # DC is low, the highest frequency is high
    # ordered: along the diagonal the band index never decreases
    band_of = masks.argmax(0)
    diagonal = torch.stack([band_of[min(i, shape[0] - 1), min(i, shape[1] - 1)] for i in range(max(shape))])
    assert (diagonal[1:] >= diagonal[:-1]).all()
    with pytest.raises(ValueError, match="empty"):
        band_masks(4, 4)  # the middle band would hold no frequency of a 4 x 4 grid


def test_band_filters_with_zero_learnable_part_split_features_into_bands_that_add_up():
    torch.manual_seed(0)
    filt = DCTBandFilter(channels=4, height=16, width=16)
    assert torch.count_nonzero(filt.gain) == 0  # the learnable part starts at zero
    filters = filt.filters()  # (3, C, h, w)
    torch.testing.assert_close(filters.sum(0), torch.ones(4, 16, 16))
    for a in range(3):
        for b in range(a + 1, 3):
            assert (filters[a] * filters[b]).abs().sum() == 0  # disjoint supports
    x = torch.randn(2, 4, 16, 16)
    bands = filt(x).reshape(2, 3, 4, 16, 16)
    torch.testing.assert_close(bands.sum(1), x, rtol=0, atol=1e-5)  # low + middle + high = the features
    # a constant map is pure DC: all of it in the low band
    flat = filt(torch.full((1, 4, 16, 16), 3.0)).reshape(1, 3, 4, 16, 16)
    torch.testing.assert_close(flat[:, 0], torch.full((1, 4, 16, 16), 3.0), rtol=0, atol=1e-5)
    assert flat[:, 1:].abs().max() < 1e-5
    # a DCT basis image lands whole in the band of its frequency (u + v = 7: middle; 30: high)
    d = dct_matrix(16)
    for (u, v), band in (((3, 4), 1), ((15, 15), 2), ((0, 5), 0)):
        basis = torch.outer(d[u], d[v]).expand(1, 4, 16, 16)
        split = filt(basis).reshape(1, 3, 4, 16, 16)
        torch.testing.assert_close(split[:, band], basis, rtol=0, atol=1e-5)
        assert split.abs().sum() - split[:, band].abs().sum() < 1e-4
    # the learnable gain scales its own band only
    with torch.no_grad():
        filt.gain[:, 0, 0] = 1.0  # doubles the DC coefficient, in the low band
    changed = filt(x).reshape(2, 3, 4, 16, 16)
    assert not torch.allclose(changed[:, 0], bands[:, 0], atol=1e-4)
    torch.testing.assert_close(changed[:, 1:], bands[:, 1:])


# ---------------------------------------------------------------------------- multi-scale heads


def _direct_patch_attention(q, k, v, grid):
    """The definition, patch by patch: token = the flattened (d, ph, pw) block of a patch."""
    b, d, h, w = q.shape
    ph, pw = h // grid, w // grid
    cells = [(i, j) for i in range(grid) for j in range(grid)]

    def token(t, cell):
        i, j = cell
        return t[:, :, i * ph:(i + 1) * ph, j * pw:(j + 1) * pw].reshape(b, -1)

    out = torch.zeros_like(v)
    for cell in cells:
        scores = torch.stack([(token(q, cell) * token(k, other)).sum(1) for other in cells], dim=1)
        scores = scores / (d * ph * pw) ** 0.5
        weights = scores.softmax(dim=1)
        value = sum(weights[:, n, None] * token(v, other) for n, other in enumerate(cells))
        i, j = cell
        out[:, :, i * ph:(i + 1) * ph, j * pw:(j + 1) * pw] = value.reshape(b, d, ph, pw)
    return out


@pytest.mark.parametrize("grid", [1, 2, 4])
def test_patch_attention_matches_the_direct_computation(grid):
    torch.manual_seed(grid)
    q, k, v = (torch.randn(2, 3, 8, 12, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(patch_attention(q, k, v, grid), _direct_patch_attention(q, k, v, grid))
    if grid == 1:  # one token: attention over itself alone returns the values
        torch.testing.assert_close(patch_attention(q, k, v, 1), v)


@pytest.mark.parametrize("grid", [2, 4, 8])
def test_each_patch_is_one_token_of_its_grid(grid):
    """A value pixel reaches exactly the pixels at its offset inside every patch (each output
    token is a mix of whole value tokens); a query pixel changes its own patch only."""
    torch.manual_seed(0)
    h = w = 16
    q, k, v = (torch.randn(1, 2, h, w, dtype=torch.float64) for _ in range(3))
    base = patch_attention(q, k, v, grid)
    p = h // grid
    v2 = v.clone()
    v2[0, 1, 5, 6] += 1.0
    moved = (patch_attention(q, k, v2, grid) - base).abs().sum(1)[0] > 1e-12
    expected = torch.zeros(h, w, dtype=torch.bool)
    expected[5 % p::p, 6 % p::p] = True
    assert torch.equal(moved, expected), f"grid {grid}: value change reached {moved.nonzero().tolist()}"
    q2 = q.clone()
    q2[0, 0, 5, 6] += 1.0
    moved = (patch_attention(q2, k, v, grid) - base).abs().sum(1)[0] > 1e-12
    own_patch = torch.zeros(h, w, dtype=torch.bool)
    own_patch[(5 // p) * p:(5 // p + 1) * p, (6 // p) * p:(6 // p + 1) * p] = True
    assert moved[own_patch].all() and not moved[~own_patch].any()


def test_multi_scale_heads_split_channels_and_use_their_own_grids():
    torch.manual_seed(0)
    attention = MultiScaleAttention(channels=8, grids=HEAD_GRIDS).eval()
    x = torch.randn(2, 8, 16, 16)
    heads = attention.head_outputs(x)
    assert [h.shape for h in heads] == [torch.Size([2, 2, 16, 16])] * 4
    q, k, v = attention.query(x), attention.key(x), attention.value(x)
    for n, grid in enumerate(HEAD_GRIDS):
        part = slice(2 * n, 2 * n + 2)  # head n owns channels 2n, 2n + 1
        torch.testing.assert_close(heads[n], _direct_patch_attention(q[:, part], k[:, part], v[:, part], grid))
    with pytest.raises(ValueError, match="grid"):
        attention(torch.randn(1, 8, 12, 12))  # 12 does not split into 8 patches


# ---------------------------------------------------------------------------- cross-modality fusion


def test_cross_modality_queries_come_from_rgb_keys_and_values_from_frequency():
    torch.manual_seed(0)
    cma = CrossModalityAttention(channels=4).eval()
    rgb, freq = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        base = cma(rgb, freq)
        rgb2 = rgb.clone()
        rgb2[0, :, 2, 3] += 1.0
        moved_rgb = (cma(rgb2, freq) - base).abs().sum(1)[0] > 1e-6
        freq2 = freq.clone()
        freq2[0, :, 2, 3] += 1.0
        moved_freq = (cma(rgb, freq2) - base).abs().sum(1)[0] > 1e-6
    only = torch.zeros(6, 6, dtype=torch.bool)
    only[2, 3] = True
    assert torch.equal(moved_rgb, only)  # an RGB position is one query: it changes its own output only
    assert moved_freq.all()  # a frequency position is a key/value every query attends to


# ---------------------------------------------------------------------------- contrastive loss


def test_contrastive_loss_is_zero_when_reals_cluster_and_fakes_stay_away():
    labels = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    direction = torch.zeros(6, 16)
    direction[:3, :8] = 1.0  # reals: one direction (different scales: cosine ignores them)
    direction[:3] *= torch.tensor([[1.0], [2.0], [0.5]])
    direction[3:, 8:] = 1.0  # fakes: orthogonal to it
    separated = contrastive_loss(direction, labels, margin=0.5)
    assert separated.item() == pytest.approx(0.0, abs=1e-6)
    torch.manual_seed(0)
    mixed = contrastive_loss(torch.randn(6, 16), labels, margin=0.5)
    assert mixed.item() > 0.3
    same = contrastive_loss(torch.ones(6, 16), labels, margin=0.5)  # fakes on the centre: cos 1, 0.5 over the margin
    assert same.item() == pytest.approx(0.5, abs=1e-6)
    # scattered reals cost even without fakes; a batch without reals has no centre
    assert contrastive_loss(torch.randn(4, 16), torch.zeros(4)).item() > 0.3
    assert contrastive_loss(torch.randn(4, 16, requires_grad=True), torch.ones(4)).item() == 0.0


def test_contrastive_loss_gradient_pulls_reals_to_the_centre():
    torch.manual_seed(0)
    features = torch.randn(8, 32, requires_grad=True)
    labels = torch.tensor([0.0, 1.0] * 4)
    optimiser = torch.optim.Adam([features], lr=0.05)
    before = contrastive_loss(features, labels).item()
    for _ in range(50):
        optimiser.zero_grad()
        contrastive_loss(features, labels).backward()
        optimiser.step()
    after = contrastive_loss(features, labels).item()
    assert after < 0.2 * before, (before, after)


def test_training_losses_weight_the_contrastive_term():
    model = _model(contrastive_weight=0.25)
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    out = {"features": torch.randn(4, 1792), "logits": torch.zeros(4)}
    terms = model.training_losses(out, labels)
    assert set(terms) == {"contrastive"}
    torch.testing.assert_close(terms["contrastive"], 0.25 * contrastive_loss(out["features"], labels, 0.5))
    assert _model(contrastive_weight=0.0).training_losses(out, labels) == {}


# ---------------------------------------------------------------------------- the detector


def test_registered_with_the_authors_preprocessing():
    assert MODELS.get("m2tr") is M2TR
    spec = M2TR.default_preprocess
    assert (spec.input_size, spec.mean, spec.std) == (320, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_output_contract_with_a_full_resolution_mask_and_cam_layer():
    model = _model()
    captured = {}
    handle = model.cam_layer().register_forward_hook(lambda _m, _i, out: captured.setdefault("map", out))
    out = check_outputs(model, batch=2, size=SMALL, feature_dim=1792, mask_shape=(SMALL, SMALL))
    handle.remove()
    assert set(out) == {"logits", "features", "mask"}
    assert model.cam_layer() is model.layers[-1]
    assert captured["map"].shape == (2, 32, SMALL // 4, SMALL // 4)  # the fused stride-4 map
    assert len(model.layers) == 4 and [h for h in model.layers[0].transformer.attention.grids] == list(HEAD_GRIDS)


def test_size_checks():
    model = _model().eval()
    with pytest.raises(ValueError, match="built for 64x64"):
        model(torch.randn(1, 3, 96, 96))
    with pytest.raises(ValueError, match="multiple of 32"):
        build_model("m2tr", input_size=80)


def test_parameter_count_matches_the_authors_code():
    # Reference: the authors' M2TR (PyDeepFakeDet models/m2tr.py, configs/m2tr.yaml:
    # efficientnet-b4, IMG_SIZE 320, DEPTH 4, TEXTURE_LAYER b2 = 32 channels at 80 x 80),
    # counted from its layers, with a 1-way classifier and without the backbone's unused fc:
    #   EfficientNet-B4 without classifier                        17,548,616
    #   per layer: PatchTrans  q/k/v 1x1 3*(32*32+32) = 3,168, output 3x3 conv+BN 9,248+64,
    #                          FeedForward2D 2*(9,248+64) = 18,624                 -> 31,104
    #              FreqBlock   complex filter 80*41*32*2 = 209,920 + FeedForward2D 18,624 -> 228,544
    #              CMA_Block   q/k/v 1x1 3,168 + 1x1 conv+BN 1,056+64              ->  4,288
    #              = 263,936;  x 4 layers                                          1,055,744
    #   Linear(1792, 1)                                                                1,793
    reference = 17_548_616 + 4 * (31_104 + 228_544 + 4_288) + 1_793  # 18,606,153
    model = build_model("m2tr")  # 320 px
    temporal = sum(p.numel() for p in model.temporal.parameters())
    # the temporal video head (ours; the paper scores frames): LayerNorm(1792) 3,584 + Linear(1792, 128) 229,504
    # + positions 32*128 4,096 + encoder layer (attention 4*128*128 + 4*128 = 66,048, feed-forward
    # 128*256 + 256 + 256*128 + 128 = 65,920, two LayerNorms 512) 132,480 + LayerNorm(128) 256
    # + attention-pool score 129 + classifier 129
    assert temporal == 3_584 + 229_504 + 4_096 + 132_480 + 256 + 129 + 129 == 370_178
    count = check_parameter_count(model, reference + temporal)
    assert count - temporal == 18_648_634  # ours, incl. the 14k-parameter mask decoder the released model lacks


def test_meta_device_profile_counts_flops():
    from fakescope.models.profile import profile

    info = profile("m2tr")
    assert info["input_size"] == 320 and info["gflops"] is not None
    # the cross-modality attention alone: 4 layers x 2 products x 6400^2 positions x 32 channels
    assert info["gflops"] > 4 * 2 * 6400**2 * 32 / 1e9


def test_one_optimisation_step_lowers_the_loss():
    check_one_step_lowers_loss(_model(), size=SMALL, batch=4)


def test_a_step_with_mask_targets_lowers_bce_plus_mask_loss():
    model = _model(contrastive_weight=0.0).train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) or module.__class__.__name__ == "DropPath":
            module.eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, SMALL, SMALL, generator=generator)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    target = torch.zeros(4, 1, SMALL, SMALL)  # full-resolution masks, as the trainer gives them
    target[0, :, 16:40, 20:44] = 1.0
    target[2, :, 8:30, 30:60] = 1.0

    def loss_of():
        out = model(x)
        return (F.binary_cross_entropy_with_logits(out["logits"], labels)
                + F.binary_cross_entropy_with_logits(out["mask"], target))

    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = loss_of()
    optimiser.zero_grad()
    before.backward()
    assert model.layers[0].frequency.filter.gain.grad.abs().sum() > 0  # the mask loss reaches the band gains
    optimiser.step()
    with torch.no_grad():
        after = loss_of()
    assert after.item() < before.item()


def test_onnx_export_matches_pytorch():
    pytest.importorskip("onnxruntime")
    check_onnx_matches(_model(), size=SMALL)


def test_recipe_validates():
    from fakescope.train.config import load_config

    cfg = load_config(RECIPE)
    assert cfg.model.arch == "m2tr"
    assert cfg.loss.mask_weight > 0 and cfg.data.train.synthesis is not None
    size = cfg.model.kwargs.get("input_size", M2TR.default_preprocess.input_size)
    assert (cfg.preprocess.input_size or M2TR.default_preprocess.input_size) == size == 320


# ---------------------------------------------------------------------------- video heads


def test_mean_video_head_is_the_frame_classifier_on_the_mean_feature():
    model = _model().eval()
    assert M2TR.video_heads == ("mean", "temporal")
    torch.manual_seed(1)
    features = torch.randn(3, 5, 1792)
    with torch.no_grad():
        logits = model.video_logits(features, "mean")
        by_hand = features.mean(dim=1) @ model.classifier.weight[0] + model.classifier.bias[0]
    assert logits.shape == (3,)
    torch.testing.assert_close(logits, by_hand, rtol=0, atol=1e-5)
    # a one-frame clip is that frame's own score, as forward gives it
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(model.video_logits(out["features"].unsqueeze(1), "mean"), out["logits"],
                                   rtol=0, atol=1e-5)
    assert model.video_window("mean") is None  # any number of frames


def test_temporal_head_sees_frame_order_and_rejects_bad_clips():
    model = _model().eval()
    torch.manual_seed(2)
    features = torch.randn(2, 6, 1792)
    with torch.no_grad():
        forward = model.video_logits(features, "temporal")
        backward = model.video_logits(features.flip(1), "temporal")
        mean_forward, mean_backward = model.video_logits(features, "mean"), model.video_logits(features.flip(1), "mean")
    assert forward.shape == (2,) and torch.isfinite(forward).all()
    assert (forward - backward).abs().max() > 1e-4  # learned positions: the order of the frames matters
    torch.testing.assert_close(mean_forward, mean_backward)  # the mean head ignores it
    with pytest.raises(ValueError, match="1 to 32 frames"):
        model.video_logits(torch.randn(1, TEMPORAL_FRAMES + 1, 1792), "temporal")
    with pytest.raises(ValueError, match="no video head 'lstm'"):
        model.video_logits(features, "lstm")
    with pytest.raises(ValueError, match="1792"):
        model.video_logits(torch.randn(2, 4, 100), "temporal")


def test_one_step_on_clip_features_lowers_the_temporal_heads_bce():
    model = _model()
    torch.manual_seed(3)
    features = torch.randn(4, 8, 1792)  # B clips of K frames, the trainer's sequence samples
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    optimiser = torch.optim.AdamW(model.temporal.parameters(), lr=1e-3)

    def loss():
        return F.binary_cross_entropy_with_logits(model.video_logits(features, "temporal"), labels)

    model.eval()  # dropout off for the two measurements
    with torch.no_grad():
        before = loss().item()
    model.train()
    optimiser.zero_grad()
    loss().backward()
    assert model.temporal.project.weight.grad.abs().sum() > 0 and model.classifier.weight.grad is None
    optimiser.step()
    model.eval()
    with torch.no_grad():
        after = loss().item()
    assert after < before, (before, after)
    # training records the clip length, so inference scores long tracks in windows of it
    assert int(model.temporal_trained_frames) == 8 and model.video_window("temporal") == 8
    with torch.no_grad():
        model.video_logits(torch.randn(1, 20, 1792), "temporal")  # eval: scored, not recorded
    assert model.video_window("temporal") == 8


def test_untrained_temporal_head_window_is_its_position_table():
    assert _model().video_window("temporal") == TEMPORAL_FRAMES


def test_video_heads_round_trip_through_a_checkpoint(tmp_path):
    from fakescope.models.base import load_checkpoint, save_checkpoint

    model = _model()
    with torch.no_grad():
        model.video_logits(torch.randn(2, 6, 1792), "temporal")  # train mode: records 6 frames
    model.eval()
    save_checkpoint(tmp_path / "m2tr.pt", model, "m2tr", M2TR.default_preprocess.model_copy(update={"input_size": SMALL}),
                    arch_kwargs={"input_size": SMALL})
    loaded = load_checkpoint(tmp_path / "m2tr.pt").model
    features = torch.randn(2, 5, 1792)
    with torch.no_grad():
        for head in M2TR.video_heads:
            torch.testing.assert_close(loaded.video_logits(features, head), model.video_logits(features, head))
    assert loaded.video_window("temporal") == 6
