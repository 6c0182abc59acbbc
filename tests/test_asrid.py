"""ASRID: output contract, parameter count by hand, one step on the frame loss and on the
combined clip loss, ONNX for the frame path, the video heads on (B, K, D), the positional
encoding's order sensitivity, checkpoints, profile and the recipe."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from model_contract import check_one_step_lowers_loss, check_onnx_matches, check_outputs, check_parameter_count

from fakescope.models import MODELS, build_model, load_checkpoint, save_checkpoint
from fakescope.models.asrid import ASRID, sinusoidal_positions
from fakescope.models.profile import profile

SMALL = 64  # stride 32: a 2 x 2 map of attention tokens, enough for every code path
D = 1152  # 576 backbone + 576 attention channels
RECIPE = Path(__file__).resolve().parents[1] / "configs/zoo/asrid.yaml"


def _small(**kwargs) -> ASRID:
    """One narrow temporal layer keeps the CPU tests fast; the structure is the same."""
    torch.manual_seed(0)
    return build_model("asrid", **{"temporal_layers": 1, "temporal_ff": 64, **kwargs})


def test_registered_with_its_preprocessing():
    assert MODELS.get("asrid") is ASRID
    spec = ASRID.default_preprocess
    assert (spec.input_size, spec.mean, spec.std, spec.margin) == (224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1.3)
    assert ASRID.video_heads == ("temporal", "mean")


def test_output_contract():
    model = _small()
    out = check_outputs(model, batch=2, size=SMALL, feature_dim=D)
    assert out["attention"].shape == (2, 2, 2)  # the mean attention each map position receives
    assert torch.allclose(out["attention"].sum(dim=(1, 2)), torch.ones(2), atol=1e-5)  # softmax rows average to 1
    assert model.cam_layer() is model.backbone.blocks[-1]
    with torch.no_grad():
        assert model.backbone.forward_features(torch.zeros(1, 3, 224, 224)).shape == (1, 576, 7, 7)


def test_parameter_count_by_hand():
    # timm mobilenetv3_small_100 (the paper's 2.54 M; timm's table: 2.54 M) = 2,542,856 with
    # its head: the pooled 1x1 conv 576 -> 1024 (576*1024 + 1024 = 590,848) and the
    # 1000-way classifier (1024*1000 + 1000 = 1,025,000). Without them: 927,008.
    backbone = 2_542_856 - 590_848 - 1_025_000
    attention = 3 * 576 * 576 + 3 * 576 + 576 * 576 + 576  # in-proj q/k/v + out-proj: 1,329,408
    norm = 2 * D  # LayerNorm over the 1152-d mix: 2,304
    static = (D * 288 + 288) + 2 * 288 + 1 + (288 + 1)  # fc1, BatchNorm1d, PReLU, fc2: 332,930
    layer = (3 * D * D + 3 * D) + (D * D + D) + (D * 1000 + 1000) + (1000 * D + D) + 4 * D  # 7,623,784
    dynamic = 6 * layer + (D + 1)  # six encoder layers and the clip classifier: 45,743,857
    reference = backbone + attention + norm + static + dynamic
    assert reference == 48_335_507
    torch.manual_seed(0)
    model = build_model("asrid")
    assert sum(p.numel() for p in model.backbone.parameters()) == backbone
    assert sum(p.numel() for p in model.dynamic_head.parameters()) == dynamic
    check_parameter_count(model, reference)


def test_clip_encoder_layers_are_pre_norm_unless_the_codes_post_norm_is_asked_for():
    # pre-norm by default: the post-norm head collapsed to a constant in training (asrid.py)
    assert all(layer.norm_first for layer in build_model("asrid", temporal_layers=2).dynamic_head.encoder.layers)
    post = build_model("asrid", temporal_layers=2, temporal_norm_first=False)
    assert not any(layer.norm_first for layer in post.dynamic_head.encoder.layers)


def test_one_step_lowers_the_frame_loss():
    check_one_step_lowers_loss(_small(), size=SMALL, batch=4)


def test_one_step_lowers_the_combined_clip_loss():
    """The trainer's clip step: B x K frames in one forward, 0.8 frame BCE + 0.2 clip BCE."""
    from fakescope.train.trainer import _ClipModel, clip_loss

    model = _small()
    clip = _ClipModel(model, "temporal")
    torch.manual_seed(1)
    k = 3
    frames = torch.randn(4 * k, 3, SMALL, SMALL)
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for module in model.modules():  # dropout off so the measurements are comparable
        if isinstance(module, torch.nn.Dropout):
            module.eval()

    def loss():
        return clip_loss(clip(frames, k), labels, k, 0.2)

    with torch.no_grad():
        before = loss().item()
    optimizer.zero_grad()
    loss().backward()
    assert model.dynamic_head.fc.weight.grad.abs().sum() > 0  # the clip loss reaches the dynamic head
    assert model.backbone.conv_stem.weight.grad.abs().sum() > 0
    optimizer.step()
    with torch.no_grad():
        after = loss().item()
    assert after < before, f"{before:.5f} -> {after:.5f}"


def test_onnx_frame_path_matches():
    check_onnx_matches(_small(), size=SMALL)


@pytest.mark.parametrize("k", [1, 5])
def test_video_heads_on_clips(k):
    model = _small().eval()
    torch.manual_seed(2)
    features = torch.randn(3, k, D)
    with torch.no_grad():
        temporal = model.video_logits(features, "temporal")
        mean = model.video_logits(features, "mean")
        assert temporal.shape == (3,) and mean.shape == (3,) and torch.isfinite(temporal).all()
        # "mean": the frame classifier on the clip's mean feature
        assert torch.allclose(mean, model.static_head(features.mean(dim=1)))
    assert model.video_window("temporal") is None and model.video_window("mean") is None  # untrained: any length
    model.train()
    model.video_logits(features, "temporal")
    assert model.video_window("temporal") == k  # the clip length it has been trained on
    model.eval()
    with pytest.raises(ValueError, match="no video head 'lstm'"):
        model.video_logits(features, "lstm")
    with pytest.raises(ValueError, match=r"\(B, K, D\)"):
        model.video_logits(features[:, 0], "temporal")


def test_positional_encoding_makes_the_temporal_head_order_sensitive():
    torch.manual_seed(3)
    features = torch.randn(2, 6, D)
    reverse = features.flip(1)
    with torch.no_grad():
        ordered = _small().eval()
        assert not torch.allclose(ordered.video_logits(features, "temporal"),
                                  ordered.video_logits(reverse, "temporal"), atol=1e-4)
        # the same head without positions cannot tell the order: attention and the mean are permutation-invariant
        unordered = _small(positional_encoding=False).eval()
        assert torch.allclose(unordered.video_logits(features, "temporal"),
                              unordered.video_logits(reverse, "temporal"), atol=1e-5)
        assert torch.allclose(ordered.video_logits(features, "mean"), ordered.video_logits(reverse, "mean"), atol=1e-6)
    table = sinusoidal_positions(4, 6)
    assert torch.equal(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))  # sin 0, cos 0
    assert table[1, 0] == pytest.approx(torch.sin(torch.tensor(1.0)).item())  # wavelength 2 pi on channel 0


def test_checkpoint_round_trip_keeps_both_heads(tmp_path):
    model = _small(temporal_layers=2).eval()
    save_checkpoint(tmp_path / "a.pt", model, "asrid", ASRID.default_preprocess, arch_kwargs={"temporal_layers": 2, "temporal_ff": 64})
    loaded = load_checkpoint(tmp_path / "a.pt").model
    torch.manual_seed(4)
    x = torch.randn(3, 3, SMALL, SMALL)
    with torch.no_grad():
        a, b = model(x), loaded(x)
        assert torch.allclose(a["logits"], b["logits"], atol=1e-6)
        clip_a = model.video_logits(a["features"][None], "temporal")
        clip_b = loaded.video_logits(b["features"][None], "temporal")
    assert torch.allclose(clip_a, clip_b, atol=1e-6)


def test_profile_and_meta_construction():
    with torch.device("meta"):
        assert build_model("asrid").backbone.conv_stem.weight.is_meta
    info = profile("asrid")
    assert info["parameters"] == 48_335_507 and info["input_size"] == 224
    assert 0.1 < info["gflops"] < 0.2  # the frame path: MobileNetV3-Small's 0.06 plus attention over 49 tokens


def test_recipe_validates(monkeypatch):
    from fakescope.train.config import load_config

    monkeypatch.delenv("FAKESCOPE_SHARED", raising=False)
    cfg = load_config(RECIPE)
    assert cfg.model.arch == "asrid" and cfg.optim.name == "adamw"
    assert cfg.data.sequence.frames == 8 and cfg.data.sequence.head == "temporal"
    assert cfg.loss.video_weight == pytest.approx(0.2)  # w = 0.8 on the frame (static) loss
    assert cfg.data.train.split == "train" and cfg.data.val.split == "val"
    assert cfg.resolve_path(cfg.data.train.manifest) == RECIPE.parents[3] / "shared/data/ciplab-faces/manifest.csv"
